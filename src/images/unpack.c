/* Layer unpacking (see unpack.h for what is kept and the safety rules). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fsutil.h"
#include "common/util.h"
#include "images/unpack.h"
#include "proto/archive_dl.h"

#define MAX_ENTRIES 1000000

typedef struct layer {
  const char *name;
  int dirfd;
  uint64_t max_bytes, bytes;
  bool root;
} layer_t;

static int
entry_error (const layer_t *l, const char *entry, ak_error_t **err, int code, const char *why)
{
  return ak_error_coded (err, code ? code : EPERM, "layer %s: entry \"%s\": %s", l->name, entry, why);
}

/* "./a/b/" -> "a/b"; NULL for a name that may not be in a layer. */
static char *
clean_path (const char *raw, bool *is_root)
{
  _cleanup_free_ char *copy = ak_xstrdup (raw);
  char *out = ak_xcalloc (1, strlen (raw) + 1), *save = NULL, *tok;

  *is_root = false;
  if (raw[0] == '/')
    {
      free (out);
      return NULL;
    }
  for (tok = strtok_r (copy, "/", &save); tok != NULL; tok = strtok_r (NULL, "/", &save))
    {
      if (strcmp (tok, ".") == 0)
        continue;
      if (strcmp (tok, "..") == 0)
        {
          free (out);
          return NULL;
        }
      if (out[0] != '\0')
        strcat (out, "/");
      strcat (out, tok);
    }
  *is_root = out[0] == '\0';
  return out;
}

/* The stream's uncompressed digest, which the image config promises as
 * the layer's diff id: the layer directory is shared by every image that
 * names this diff id, so a layer must be what its name says. */
static int
check_diff_id (int blobfd, const char *diff_id, const char *name, uint64_t max_bytes, ak_error_t **err)
{
  /* File content plus room for every entry's headers: a small blob that
   * expands without end is stopped here, before any of it is written. */
  uint64_t limit = max_bytes + (uint64_t) MAX_ENTRIES * 1536, total = 0;
  struct archive *a = ak_la.archive_read_new ();
  struct archive_entry *e;
  char got[AK_DIGEST_STR_LEN + 1];
  ak_sha256_t sha;
  const void *buf;
  size_t len;
  int64_t off;
  int r;

  ak_la.archive_read_support_filter_all (a);
  ak_la.archive_read_support_format_raw (a);
  if (lseek (blobfd, 0, SEEK_SET) < 0 || ak_la.archive_read_open_fd (a, blobfd, 65536) != ARCHIVE_OK
      || ak_la.archive_read_next_header (a, &e) != ARCHIVE_OK)
    goto bad;
  ak_sha256_init (&sha);
  while ((r = ak_la.archive_read_data_block (a, &buf, &len, &off)) == ARCHIVE_OK)
    {
      total += len;
      if (total > limit)
        {
          ak_la.archive_read_free (a);
          return ak_error_coded (err, EFBIG, "layer %s expands past the size limit of %llu bytes", name,
                                 (unsigned long long) max_bytes);
        }
      ak_sha256_update (&sha, buf, len);
    }
  if (r != ARCHIVE_EOF)
    goto bad;
  ak_la.archive_read_free (a);
  ak_sha256_final (&sha, got);
  if (strcmp (got, diff_id) != 0)
    return ak_error_coded (err, EBADMSG, "layer %s: its content is %s, not the diff id %s its image names", name,
                           got, diff_id);
  return 0;
bad:
  ak_error_coded (err, EBADMSG, "layer %s: cannot decompress: %s", name,
                  ak_la.archive_error_string (a) ? ak_la.archive_error_string (a) : "truncated");
  ak_la.archive_read_free (a);
  return -1;
}

/* Removes what an earlier entry of this layer left at base (tar streams may
 * repeat a name; the last entry wins).  A directory stays if the new entry
 * is one too. */
static int
clear_slot (int parent, const char *base, bool keep_dir)
{
  struct stat st;

  if (fstatat (parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  if (S_ISDIR (st.st_mode))
    return keep_dir ? 1 : unlinkat (parent, base, AT_REMOVEDIR);
  return unlinkat (parent, base, 0);
}

static void
set_opaque (layer_t *l, int parent, const char *base)
{
  _cleanup_close_ int fd = -1;

  /* parent is an O_PATH descriptor, on which xattrs cannot be set. */
  fd = openat (parent, base ? base : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  fsetxattr (fd, "user.overlay.opaque", "y", 1, 0);
  if (l->root)
    fsetxattr (fd, "trusted.overlay.opaque", "y", 1, 0);
}

static mode_t
safe_mode (mode_t m)
{
  /* setuid and setgid never survive: see unpack.h. */
  return m & (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX);
}

/* Extended attributes kept: user.* only.  trusted.* and security.* carry
 * privileges or kernel metadata (file capabilities are setuid by another
 * name; trusted.overlay.* would steer overlayfs), and user.overlay.* is
 * overlayfs' own metadata under userxattr: an image never sets those. */
static void
set_xattrs (struct archive_entry *e, int fd)
{
  const char *name;
  const void *value;
  size_t size;

  ak_la.archive_entry_xattr_reset (e);
  while (ak_la.archive_entry_xattr_next (e, &name, &value, &size) == ARCHIVE_OK)
    if (strncmp (name, "user.", 5) == 0 && strncmp (name, "user.overlay.", 13) != 0)
      fsetxattr (fd, name, value, size, 0);
}

static int
write_data (layer_t *l, struct archive *a, int fd, const char *entry, ak_error_t **err)
{
  const void *buf;
  size_t len;
  int64_t off;
  int r;

  while ((r = ak_la.archive_read_data_block (a, &buf, &len, &off)) == ARCHIVE_OK)
    {
      l->bytes += len;
      if (l->bytes > l->max_bytes)
        return ak_error_coded (err, EFBIG, "layer %s expands past the size limit of %llu bytes (at \"%s\")", l->name,
                               (unsigned long long) l->max_bytes, entry);
      if (pwrite (fd, buf, len, off) != (ssize_t) len)
        return ak_error_set (err, errno ? errno : EIO, "layer %s: write \"%s\"", l->name, entry);
    }
  if (r != ARCHIVE_EOF)
    return ak_error_coded (err, EBADMSG, "layer %s: entry \"%s\": %s", l->name, entry, ak_la.archive_error_string (a));
  return 0;
}

static int
one_entry (layer_t *l, struct archive *a, struct archive_entry *e, ak_error_t **err)
{
  const char *raw = ak_la.archive_entry_pathname (e);
  _cleanup_free_ char *path = NULL;
  _cleanup_close_ int parent = -1, fd = -1;
  mode_t type = ak_la.archive_entry_filetype (e);
  mode_t mode = safe_mode (ak_la.archive_entry_mode (e));
  const char *base, *link;
  bool is_root;
  int rc;

  if (raw == NULL || (path = clean_path (raw, &is_root)) == NULL)
    return entry_error (l, raw ? raw : "(no name)", err, EPERM, "absolute or \"..\" names are refused");
  if (is_root)
    return 0;
  parent = ak_fs_open_parent (l->dirfd, path, true, &base);
  if (parent < 0)
    return entry_error (l, raw, err, errno,
                        errno == ELOOP ? "a parent is a symlink" : errno == ENOTDIR ? "a parent is not a directory"
                                                                                      : "cannot reach its directory");
  if (strncmp (base, ".wh.", 4) == 0)
    {
      if (strcmp (base, ".wh..wh..opq") == 0)
        {
          set_opaque (l, parent, NULL);
          return 0;
        }
      if (strncmp (base, ".wh..wh.", 8) == 0)
        return 0;
      if (clear_slot (parent, base + 4, false) < 0
          || mknodat (parent, base + 4, S_IFCHR | 0000, makedev (0, 0)) < 0)
        return entry_error (l, raw, err, errno,
                            "cannot make the overlay whiteout (a 0/0 character device; Linux 5.8 or later)");
      return 0;
    }
  if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)
    return 0;
  link = ak_la.archive_entry_hardlink (e);
  if (link != NULL)
    {
      _cleanup_free_ char *target = NULL;
      _cleanup_close_ int tparent = -1;
      const char *tbase;
      struct stat st;
      bool troot;

      if ((target = clean_path (link, &troot)) == NULL || troot)
        return entry_error (l, raw, err, EPERM, "a hard link out of the layer is refused");
      tparent = ak_fs_open_parent (l->dirfd, target, false, &tbase);
      if (tparent < 0 || fstatat (tparent, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR (st.st_mode))
        return entry_error (l, raw, err, EPERM, "a hard link to something not in the layer is refused");
      if (clear_slot (parent, base, false) < 0 || linkat (tparent, tbase, parent, base, 0) < 0)
        return entry_error (l, raw, err, errno, "cannot make the hard link");
      return 0;
    }
  rc = clear_slot (parent, base, type == AE_IFDIR);
  if (rc < 0)
    return entry_error (l, raw, err, errno, "cannot replace an earlier entry");
  switch (type)
    {
    case AE_IFDIR:
      if (rc == 0 && mkdirat (parent, base, 0700) < 0)
        return entry_error (l, raw, err, errno, "mkdir");
      /* An unprivileged owner keeps write and search access, so a
       * read-only directory's later entries (and later layers' whiteouts
       * at run time) can still be written; root needs no such bits. */
      if (fchmodat (parent, base, l->root ? mode : mode | S_IRWXU, 0) < 0)
        return entry_error (l, raw, err, errno, "chmod");
      fd = openat (parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0)
        set_xattrs (e, fd);
      break;
    case AE_IFREG:
      fd = openat (parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0)
        return entry_error (l, raw, err, errno, "create");
      if (write_data (l, a, fd, raw, err) < 0)
        return -1;
      if (l->root && fchown (fd, ak_la.archive_entry_uid (e), ak_la.archive_entry_gid (e)) < 0)
        return entry_error (l, raw, err, errno, "chown");
      if (fchmod (fd, mode) < 0)
        return entry_error (l, raw, err, errno, "chmod");
      set_xattrs (e, fd);
      {
        struct timespec ts[2] = { { ak_la.archive_entry_mtime (e), 0 }, { ak_la.archive_entry_mtime (e), 0 } };
        futimens (fd, ts);
      }
      return 0;
    case AE_IFLNK:
      if (ak_la.archive_entry_symlink (e) == NULL || symlinkat (ak_la.archive_entry_symlink (e), parent, base) < 0)
        return entry_error (l, raw, err, errno, "symlink");
      break;
    case AE_IFIFO:
      if (mkfifoat (parent, base, mode) < 0)
        return entry_error (l, raw, err, errno, "mkfifo");
      break;
    default:
      return entry_error (l, raw, err, EINVAL, "unknown entry type");
    }
  if (l->root
      && fchownat (parent, base, ak_la.archive_entry_uid (e), ak_la.archive_entry_gid (e), AT_SYMLINK_NOFOLLOW) < 0)
    return entry_error (l, raw, err, errno, "chown");
  /* Directories' times change with every later entry in them: only the
   * others keep the image's modification time. */
  if (type != AE_IFDIR)
    {
      struct timespec ts[2] = { { ak_la.archive_entry_mtime (e), 0 }, { ak_la.archive_entry_mtime (e), 0 } };
      utimensat (parent, base, ts, AT_SYMLINK_NOFOLLOW);
    }
  return 0;
}

int
ak_layer_unpack (int blobfd, const char *diff_id, const char *name, int dirfd, uint64_t max_bytes,
                 ak_error_t **err)
{
  layer_t l = { .name = name, .dirfd = dirfd, .max_bytes = max_bytes ? max_bytes : AK_LAYER_MAX_DEFAULT,
                .root = geteuid () == 0 };
  struct archive *a;
  struct archive_entry *e;
  unsigned long n = 0;
  int r, rc = -1;

  if (ak_archive_load (err) < 0)
    return -1;
  if (check_diff_id (blobfd, diff_id, name, l.max_bytes, err) < 0)
    return -1;
  a = ak_la.archive_read_new ();
  ak_la.archive_read_support_filter_all (a);
  ak_la.archive_read_support_format_tar (a);
  if (lseek (blobfd, 0, SEEK_SET) < 0 || ak_la.archive_read_open_fd (a, blobfd, 65536) != ARCHIVE_OK)
    {
      ak_error_coded (err, EBADMSG, "layer %s: %s", name, ak_la.archive_error_string (a));
      goto out;
    }
  while ((r = ak_la.archive_read_next_header (a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    {
      if (++n > MAX_ENTRIES)
        {
          ak_error_coded (err, EFBIG, "layer %s has more than %d entries", name, MAX_ENTRIES);
          goto out;
        }
      if (one_entry (&l, a, e, err) < 0)
        goto out;
    }
  if (r != ARCHIVE_EOF)
    {
      ak_error_coded (err, EBADMSG, "layer %s: %s", name, ak_la.archive_error_string (a));
      goto out;
    }
  rc = 0;
out:
  ak_la.archive_read_free (a);
  return rc;
}
