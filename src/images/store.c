/* The image store (see store.h for the layout and the guarantees). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/digest.h"
#include "common/util.h"
#include "images/ref.h"
#include "images/store.h"

static const char *const SUBDIRS[] = { "blobs", "blobs/sha256", "layers", "layers/sha256", "tmp", "locks" };

static const char *
hex_of (const char *digest)
{
  return digest + 7;
}

static int
mkdir_at (int dirfd, const char *name, ak_error_t **err)
{
  if (mkdirat (dirfd, name, 0700) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "create the image store's %s", name);
  return 0;
}

int
ak_istore_open (const char *state_root, bool exclusive, ak_istore_t *s, ak_error_t **err)
{
  _cleanup_close_ int rootfd = -1;

  s->dirfd = s->lockfd = -1;
  s->path = ak_xasprintf ("%s/images", state_root);
  /* The state directory and its missing parents (a fresh account has no
   * ~/.local/share). */
  {
    _cleanup_free_ char *p = ak_xstrdup (state_root);
    for (char *c = p + 1; *c; c++)
      if (*c == '/')
        {
          *c = '\0';
          if (mkdir (p, 0700) < 0 && errno != EEXIST)
            return ak_error_set (err, errno, "create %s", p);
          *c = '/';
        }
  }
  if (mkdir (state_root, 0700) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "create the state directory %s", state_root);
  rootfd = open (state_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0 || mkdir_at (rootfd, "images", err) < 0)
    return rootfd < 0 ? ak_error_set (err, errno, "open %s", state_root) : -1;
  s->dirfd = openat (rootfd, "images", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s->dirfd < 0)
    return ak_error_set (err, errno, "open %s", s->path);
  for (size_t i = 0; i < sizeof SUBDIRS / sizeof SUBDIRS[0]; i++)
    if (mkdir_at (s->dirfd, SUBDIRS[i], err) < 0)
      return -1;
  s->lockfd = openat (s->dirfd, "store.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (s->lockfd < 0)
    return ak_error_set (err, errno, "open %s/store.lock", s->path);
  while (flock (s->lockfd, exclusive ? LOCK_EX : LOCK_SH) < 0)
    if (errno != EINTR)
      return ak_error_set (err, errno, "lock the image store");
  return 0;
}

void
ak_istore_close (ak_istore_t *s)
{
  ak_closep (&s->lockfd);
  ak_closep (&s->dirfd);
  free (s->path);
  s->path = NULL;
}

int
ak_istore_lock (ak_istore_t *s, const char *kind, const char *digest, ak_error_t **err)
{
  _cleanup_free_ char *name = ak_xasprintf ("locks/%s-%s", kind, hex_of (digest));
  int fd = openat (s->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0)
    return ak_error_set (err, errno, "open the lock %s", name);
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      {
        int saved = errno;
        close (fd);
        return ak_error_set (err, saved, "lock %s", name);
      }
  return fd;
}

static char *
blob_name (const char *digest)
{
  return ak_xasprintf ("blobs/sha256/%s", hex_of (digest));
}

bool
ak_istore_has_blob (ak_istore_t *s, const char *digest)
{
  _cleanup_free_ char *name = blob_name (digest);
  struct stat st;
  return fstatat (s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG (st.st_mode);
}

int
ak_istore_open_blob (ak_istore_t *s, const char *digest, ak_error_t **err)
{
  _cleanup_free_ char *name = blob_name (digest);
  int fd = openat (s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ak_error_coded (err, errno, "blob %s is not in the image store", digest);
  return fd;
}

static char *
tmp_name (const char *kind)
{
  unsigned long long r = 0;
  if (getrandom (&r, sizeof r, 0) != sizeof r)
    r = ak_now_ns ();
  return ak_xasprintf ("tmp/%s-%d-%016llx", kind, (int) getpid (), r);
}

int
ak_istore_tmpfile (ak_istore_t *s, char **name, ak_error_t **err)
{
  int fd;

  *name = tmp_name ("blob");
  fd = openat (s->dirfd, *name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      free (*name);
      *name = NULL;
      return ak_error_set (err, errno, "create a file in %s/tmp", s->path);
    }
  return fd;
}

static int
sync_dir (ak_istore_t *s, const char *sub)
{
  _cleanup_close_ int fd = openat (s->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? -1 : fsync (fd);
}

int
ak_istore_commit_blob (ak_istore_t *s, int fd, const char *name, const char *digest, ak_error_t **err)
{
  _cleanup_free_ char *dest = blob_name (digest);

  if (fsync (fd) < 0 || renameat (s->dirfd, name, s->dirfd, dest) < 0)
    {
      int saved = errno;
      unlinkat (s->dirfd, name, 0);
      return ak_error_set (err, saved, "store blob %s", digest);
    }
  sync_dir (s, "blobs/sha256");
  return 0;
}

int
ak_istore_put_blob (ak_istore_t *s, const char *digest, const char *data, size_t len, ak_error_t **err)
{
  _cleanup_free_ char *name = NULL;
  _cleanup_close_ int fd = -1;
  char got[AK_DIGEST_STR_LEN + 1];

  ak_sha256_digest (data, len, got);
  if (strcmp (got, digest) != 0)
    return ak_error_coded (err, EBADMSG, "blob %s does not match its digest (got %s)", digest, got);
  if (ak_istore_has_blob (s, digest))
    return 0;
  if ((fd = ak_istore_tmpfile (s, &name, err)) < 0)
    return -1;
  if (ak_write_all (fd, data, len) < 0)
    {
      int saved = errno;
      unlinkat (s->dirfd, name, 0);
      return ak_error_set (err, saved, "write blob %s", digest);
    }
  return ak_istore_commit_blob (s, fd, name, digest, err);
}

int
ak_istore_read_blob (ak_istore_t *s, const char *digest, size_t max, char **data, size_t *len, ak_error_t **err)
{
  _cleanup_close_ int fd = ak_istore_open_blob (s, digest, err);
  char got[AK_DIGEST_STR_LEN + 1];
  struct stat st;
  char *buf;

  if (fd < 0)
    return -1;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (size_t) st.st_size > max)
    return ak_error_coded (err, EFBIG, "blob %s in the image store is not a file of at most %zu bytes", digest, max);
  buf = ak_xmalloc ((size_t) st.st_size + 1);
  if (ak_read_all (fd, buf, (size_t) st.st_size) != st.st_size)
    {
      free (buf);
      return ak_error_set (err, errno ? errno : EIO, "read blob %s", digest);
    }
  buf[st.st_size] = '\0';
  /* Read back from disk is re-checked: the store is ours, but a manifest
   * decides which layers a sandbox gets, so it is verified at every use. */
  ak_sha256_digest (buf, (size_t) st.st_size, got);
  if (strcmp (got, digest) != 0)
    {
      free (buf);
      return ak_error_coded (err, EBADMSG, "blob %s in the image store is corrupt (its content is %s): "
                             "remove the image and pull it again", digest, got);
    }
  *data = buf;
  *len = (size_t) st.st_size;
  return 0;
}

static char *
layer_name (const char *diff_id)
{
  return ak_xasprintf ("layers/sha256/%s", hex_of (diff_id));
}

bool
ak_istore_has_layer (ak_istore_t *s, const char *diff_id)
{
  _cleanup_free_ char *name = layer_name (diff_id);
  struct stat st;
  return fstatat (s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode);
}

char *
ak_istore_layer_path (ak_istore_t *s, const char *diff_id)
{
  return ak_xasprintf ("%s/layers/sha256/%s", s->path, hex_of (diff_id));
}

int
ak_istore_tmpdir (ak_istore_t *s, char **name, ak_error_t **err)
{
  int fd;

  *name = tmp_name ("layer");
  if (mkdirat (s->dirfd, *name, 0755) < 0
      || (fd = openat (s->dirfd, *name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    {
      int saved = errno;
      free (*name);
      *name = NULL;
      return ak_error_set (err, saved, "create a directory in %s/tmp", s->path);
    }
  return fd;
}

int
ak_istore_commit_layer (ak_istore_t *s, const char *name, const char *diff_id, ak_error_t **err)
{
  _cleanup_free_ char *dest = layer_name (diff_id);
  _cleanup_close_ int fd = openat (s->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  /* The layer's files are flushed as a whole (syncfs) before the rename
   * makes the layer visible. */
  if (fd < 0 || syncfs (fd) < 0 || renameat (s->dirfd, name, s->dirfd, dest) < 0)
    return ak_error_set (err, errno, "store layer %s", diff_id);
  sync_dir (s, "layers/sha256");
  return 0;
}

int
ak_istore_refs_load (ak_istore_t *s, json_t **refs, ak_error_t **err)
{
  _cleanup_close_ int fd = openat (s->dirfd, "refs.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  json_error_t jerr;

  if (fd < 0 && errno == ENOENT)
    {
      *refs = json_object ();
      return 0;
    }
  if (fd < 0)
    return ak_error_set (err, errno, "open %s/refs.json", s->path);
  *refs = json_loadfd (fd, 0, &jerr);
  if (*refs == NULL || !json_is_object (*refs))
    {
      json_decref (*refs);
      *refs = NULL;
      return ak_error_set (err, 0, "%s/refs.json is not a JSON object: %s", s->path, jerr.text);
    }
  return 0;
}

int
ak_istore_refs_set (ak_istore_t *s, const char *key, json_t *val, ak_error_t **err)
{
  _cleanup_close_ int lock = openat (s->dirfd, "refs.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  _cleanup_free_ char *name = NULL, *text = NULL;
  _cleanup_close_ int fd = -1;
  json_t *refs = NULL;
  int rc = -1;

  if (lock < 0 || flock (lock, LOCK_EX) < 0)
    {
      json_decref (val);
      return ak_error_set (err, errno, "lock %s/refs.json", s->path);
    }
  if (ak_istore_refs_load (s, &refs, err) < 0)
    {
      json_decref (val);
      return -1;
    }
  if (val == NULL && json_object_del (refs, key) < 0)
    {
      ak_error_coded (err, ENOENT, "no image %s", key);
      goto out;
    }
  if (val != NULL)
    json_object_set_new (refs, key, val);
  text = json_dumps (refs, JSON_INDENT (2) | JSON_SORT_KEYS);
  if ((fd = ak_istore_tmpfile (s, &name, err)) < 0)
    goto out;
  if (ak_write_all (fd, text, strlen (text)) < 0 || fsync (fd) < 0
      || renameat (s->dirfd, name, s->dirfd, "refs.json") < 0)
    {
      ak_error_set (err, errno, "write %s/refs.json", s->path);
      unlinkat (s->dirfd, name, 0);
      goto out;
    }
  fsync (s->dirfd);
  rc = 0;
out:
  json_decref (refs);
  return rc;
}

int
ak_istore_remove_tree (int parent, const char *name, uint64_t *freed)
{
  ak_error_t *err = NULL;
  if (ak_fs_remove_tree (parent, name, freed, &err) < 0)
    {
      errno = err->code ? err->code : EIO;
      ak_error_free (err);
      return -1;
    }
  return 0;
}

static bool
kept (char *const *keep, const char *hex)
{
  for (; keep != NULL && *keep != NULL; keep++)
    if (strncmp (*keep, "sha256:", 7) == 0 && strcmp (*keep + 7, hex) == 0)
      return true;
  return false;
}

static int
sweep (ak_istore_t *s, const char *sub, char *const *keep, bool all, uint64_t *freed, ak_error_t **err)
{
  int fd = openat (s->dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct dirent *e;
  DIR *d;
  int rc = 0;

  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return ak_error_set (err, errno, "read %s/%s", s->path, sub);
    }
  while ((e = readdir (d)) != NULL)
    {
      if (e->d_name[0] == '.' || (!all && kept (keep, e->d_name)))
        continue;
      if (ak_istore_remove_tree (dirfd (d), e->d_name, freed) < 0 && rc == 0)
        rc = ak_error_set (err, errno, "remove %s/%s/%s", s->path, sub, e->d_name);
    }
  closedir (d);
  return rc;
}

int
ak_istore_gc (ak_istore_t *s, char *const *keep, uint64_t *freed, ak_error_t **err)
{
  *freed = 0;
  if (sweep (s, "blobs/sha256", keep, false, freed, err) < 0 || sweep (s, "layers/sha256", keep, false, freed, err) < 0)
    return -1;
  /* Nothing is in progress while the store is held exclusively: what is
   * in tmp/ and locks/ was left by killed pulls. */
  if (sweep (s, "tmp", NULL, true, freed, err) < 0 || sweep (s, "locks", NULL, true, freed, err) < 0)
    return -1;
  return 0;
}
