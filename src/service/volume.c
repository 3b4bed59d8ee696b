/* Named volumes (volume.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"
#include "service/audit.h"
#include "service/store.h"
#include "service/volume.h"

bool
ak_volume_slug_valid (const char *slug)
{
  size_t n = slug ? strlen (slug) : 0;
  if (n < 1 || n > 63)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = slug[i];
      bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      if (!alnum && (i == 0 || (c != '-' && c != '_')))
        return false;
    }
  return true;
}

static int
check_slug (const char *slug, ak_error_t **err)
{
  if (!ak_volume_slug_valid (slug))
    return ak_error_coded (err, EINVAL,
                           "invalid volume name '%s' (1-63 of a-z, 0-9, '-', '_', starting with a letter or "
                           "digit)",
                           slug ? slug : "");
  return 0;
}

/* <root>/volumes, opened (created 0700 when create). */
static int
open_volumes (bool create, ak_error_t **err)
{
  _cleanup_free_ char *root = ak_store_root ();
  _cleanup_close_ int rfd = -1;
  int fd;
  if (root == NULL)
    return ak_error_set (err, 0, "no state directory (set AGENTKERNEL_STATE_DIR or HOME)");
  if (create && ak_fs_mkdir_p (AT_FDCWD, root, 0700, err) < 0)
    return -1;
  rfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0)
    return ak_error_set (err, errno, "%s", root);
  if (create && mkdirat (rfd, "volumes", 0700) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "%s/volumes", root);
  fd = openat (rfd, "volumes", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT && !create ? ak_error_coded (err, ENOENT, "no volumes")
                                      : ak_error_set (err, errno, "%s/volumes", root);
  return fd;
}

char *
ak_volume_dir (const char *slug)
{
  _cleanup_free_ char *root = ak_store_root ();
  return root ? ak_xasprintf ("%s/volumes/%s", root, slug) : NULL;
}

/* The volume's lock (volumes/.SLUG.lock, never removed: a lock file that
 * is unlinked can be locked by two at once), taken with op (LOCK_SH,
 * LOCK_EX, with LOCK_NB or not). */
static int
lock_volume (int vfd, const char *slug, int op, ak_error_t **err)
{
  _cleanup_free_ char *name = ak_xasprintf (".%s.lock", slug);
  _cleanup_close_ int fd = openat (vfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

  if (fd < 0)
    return ak_error_set (err, errno, "volume '%s': its lock", slug);
  while (flock (fd, op) < 0)
    if (errno != EINTR)
      return ak_error_set (err, errno, "volume '%s': its lock", slug);
  return take_fd (&fd);
}

static int
create_locked (int vfd, const char *slug, bool exist_ok, char **path, ak_error_t **err)
{
  struct stat st;
  bool made = true;

  if (mkdirat (vfd, slug, 0755) < 0)
    {
      if (errno != EEXIST)
        return ak_error_set (err, errno, "volume '%s'", slug);
      if (!exist_ok)
        return ak_error_coded (err, EEXIST, "volume '%s' already exists", slug);
      made = false;
    }
  if (fstatat (vfd, slug, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
    return ak_error_set (err, ENOTDIR, "volume '%s' is not a directory", slug);
  if (made)
    ak_audit ("volume_created", NULL, json_pack ("{s:s}", "volume", slug));
  if (path != NULL)
    *path = ak_volume_dir (slug);
  return 0;
}

int
ak_volume_create (const char *slug, bool exist_ok, char **path, ak_error_t **err)
{
  _cleanup_close_ int vfd = -1, lock = -1;

  if (check_slug (slug, err) < 0 || (vfd = open_volumes (true, err)) < 0
      || (lock = lock_volume (vfd, slug, LOCK_SH, err)) < 0)
    return -1;
  return create_locked (vfd, slug, exist_ok, path, err);
}

int
ak_volume_hold (const char *slug, char **path, ak_error_t **err)
{
  _cleanup_close_ int vfd = -1, lock = -1;

  if (check_slug (slug, err) < 0 || (vfd = open_volumes (true, err)) < 0
      || (lock = lock_volume (vfd, slug, LOCK_SH, err)) < 0
      || create_locked (vfd, slug, true, path, err) < 0)
    return -1;
  return take_fd (&lock);
}

int
ak_volume_path (const char *slug, char **path, ak_error_t **err)
{
  _cleanup_close_ int vfd = -1;
  struct stat st;
  if (check_slug (slug, err) < 0)
    return -1;
  vfd = open_volumes (false, NULL);
  if (vfd < 0 || fstatat (vfd, slug, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
    return ak_error_coded (err, ENOENT, "no such volume '%s' (agentkernel volume create %s)", slug, slug);
  *path = ak_volume_dir (slug);
  return 0;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
ak_volume_list (char ***slugs, ak_error_t **err)
{
  int vfd = open_volumes (false, NULL);
  DIR *d;
  struct dirent *e;
  char **out = ak_xcalloc (1, sizeof (char *));

  *slugs = out;
  if (vfd < 0)
    return 0;
  d = fdopendir (vfd);
  if (d == NULL)
    {
      close (vfd);
      return ak_error_set (err, errno, "volumes");
    }
  while ((e = readdir (d)) != NULL)
    if (ak_volume_slug_valid (e->d_name) && e->d_type == DT_DIR)
      ak_strv_push (slugs, e->d_name);
  closedir (d);
  qsort (*slugs, ak_strv_len (*slugs), sizeof (char *), cmp_str);
  return 0;
}

/* Whether path is dir or lies below it. */
static bool
beneath_or_at (const char *path, const char *dir)
{
  size_t l = strlen (dir);
  return strncmp (path, dir, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

int
ak_volume_users (const char *slug, char ***names, ak_error_t **err)
{
  _cleanup_free_ char *path = NULL;
  _cleanup_free_ char *real = NULL;
  ak_record_t *recs = NULL;
  size_t n = 0;

  *names = ak_xcalloc (1, sizeof (char *));
  if (ak_volume_path (slug, &path, err) < 0)
    return -1;
  real = realpath (path, NULL);
  if (ak_store_list (&recs, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    for (size_t m = 0; recs[i].load_error == NULL && m < recs[i].spec.n_mounts; m++)
      {
        const char *src = recs[i].spec.mounts[m].source;
        /* The volume, or anything in it (-v .../volumes/SLUG/sub:/x). */
        if (beneath_or_at (src, path) || (real && beneath_or_at (src, real)))
          {
            ak_strv_push (names, recs[i].name);
            break;
          }
      }
  ak_store_list_free (recs, n);
  return 0;
}

int
ak_volume_delete (const char *slug, ak_error_t **err)
{
  char **users = NULL;
  _cleanup_close_ int vfd = -1, lock = -1;

  if (check_slug (slug, err) < 0)
    return -1;
  /* Held by a sandbox being started (not recorded yet, or a run that is
   * never recorded): not deleted under it. */
  vfd = open_volumes (false, NULL);
  if (vfd >= 0)
    {
      ak_error_t *e = NULL;
      lock = lock_volume (vfd, slug, LOCK_EX | LOCK_NB, &e);
      if (lock < 0)
        {
          int code = e->code;
          ak_error_free (e);
          return code == EWOULDBLOCK
                     ? ak_error_coded (err, EBUSY, "volume '%s' is in use by a sandbox that is starting or running",
                                       slug)
                     : ak_error_set (err, code, "volume '%s': its lock", slug);
        }
    }
  if (ak_volume_users (slug, &users, err) < 0)
    {
      ak_strv_free (users);
      return -1;
    }
  if (users[0] != NULL)
    {
      int rc = ak_error_coded (err, EBUSY, "volume '%s' is used by sandbox '%s'%s: remove %s first", slug,
                               users[0], users[1] ? " and others" : "", users[1] ? "them" : "it");
      ak_strv_free (users);
      return rc;
    }
  ak_strv_free (users);
  if (vfd < 0)
    return ak_error_coded (err, ENOENT, "no such volume '%s'", slug);
  if (ak_fs_remove_tree (vfd, slug, NULL, err) < 0)
    return -1;
  ak_audit ("volume_deleted", NULL, json_pack ("{s:s}", "volume", slug));
  return 0;
}

static void
du (int dfd, unsigned long long *bytes, unsigned long long *files, int depth)
{
  DIR *d = fdopendir (dfd);
  struct dirent *e;
  if (d == NULL)
    {
      close (dfd);
      return;
    }
  while ((e = readdir (d)) != NULL)
    {
      struct stat st;
      if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
        continue;
      if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      (*files)++;
      *bytes += (unsigned long long) st.st_blocks * 512ULL;
      if (S_ISDIR (st.st_mode) && depth < 256)
        {
          int c = openat (dirfd (d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (c >= 0)
            du (c, bytes, files, depth + 1);
        }
    }
  closedir (d);
}

int
ak_volume_usage (const char *slug, unsigned long long *bytes, unsigned long long *files, ak_error_t **err)
{
  _cleanup_close_ int vfd = -1;
  int fd;
  *bytes = *files = 0;
  if (check_slug (slug, err) < 0 || (vfd = open_volumes (false, err)) < 0)
    return -1;
  fd = openat (vfd, slug, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ak_error_coded (err, ENOENT, "no such volume '%s'", slug);
  du (fd, bytes, files, 0);
  return 0;
}
