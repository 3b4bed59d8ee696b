/* Extraction of a tar stream that came out of a sandbox, onto the host.
 *
 * Everything in the stream is the sandbox's to choose: names, types, link
 * targets, and the order of entries.  So every entry is created beneath a
 * descriptor on the destination, through parents opened without following
 * any symlink (common/fsutil): an absolute name or a ".." is refused, and a
 * symlink the stream created earlier ("d -> /etc", then "d/passwd") is never
 * gone through.  A symlink is created only when its target stays inside the
 * copied tree: relative, with its leading ".." no more than the link's depth
 * below the tree's top and none after a name.  Since every directory of the
 * tree is a real one made here, and every other link obeys the same rule,
 * such a target resolves inside the tree whatever it passes through.  Other
 * links are skipped with a warning naming them, so no later tool follows a
 * link from the copy to a host secret.  Only regular files, directories and
 * symlinks are made, with permission bits only (under the umask).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"
#include "proto/archive_dl.h"
#include "proto/tar_extract.h"

/* A name relative to the destination: no leading '/', no "..", nothing
 * empty; "." components and a trailing '/' are dropped.  Returns a new
 * string, or NULL when the name is not acceptable. */
static char *
clean_name (const char *name)
{
  _cleanup_free_ char *copy = ak_xstrdup (name);
  char *out = ak_xmalloc (strlen (name) + 1), *save = NULL;
  size_t n = 0;

  out[0] = '\0';
  if (name[0] == '/')
    goto bad;
  for (char *c = strtok_r (copy, "/", &save); c != NULL; c = strtok_r (NULL, "/", &save))
    {
      if (strcmp (c, ".") == 0)
        continue;
      if (strcmp (c, "..") == 0)
        goto bad;
      if (n > 0)
        out[n++] = '/';
      memcpy (out + n, c, strlen (c) + 1);
      n += strlen (c);
    }
  if (n > 0)
    return out;
bad:
  free (out);
  return NULL;
}

/* Whether a symlink at `name` (cleaned) pointing at `target` resolves
 * inside the tree whose top is name's first component. */
static bool
link_stays_inside (const char *name, const char *target)
{
  long depth = -1; /* directories between the top and the link */
  bool named = false;
  const char *p;

  for (p = name; *p != '\0'; p++)
    if (*p == '/')
      depth++;
  if (target[0] == '\0' || target[0] == '/' || depth < 0)
    return false;
  for (p = target; *p != '\0';)
    {
      size_t len = strcspn (p, "/");
      if (len == 2 && p[0] == '.' && p[1] == '.')
        {
          if (named || --depth < 0)
            return false;
        }
      else if (len > 0 && !(len == 1 && p[0] == '.'))
        named = true;
      p += len;
      while (*p == '/')
        p++;
    }
  return true;
}

/* Removes whatever non-directory holds base in parent, so that a new entry
 * replaces it rather than writing through it. */
static int
replace (int parent, const char *base)
{
  struct stat st;
  if (fstatat (parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  if (S_ISDIR (st.st_mode))
    {
      errno = EISDIR;
      return -1;
    }
  return unlinkat (parent, base, 0);
}

typedef struct dir_fix {
  char *name;
  mode_t mode;
  struct timespec mtime;
} dir_fix_t;

static int
make_dir (int parent, const char *base, mode_t mode)
{
  struct stat st;
  /* Owner access while the tree is filled; the entry's mode at the end. */
  if (mkdirat (parent, base, mode | 0700) == 0)
    return 0;
  if (errno != EEXIST)
    return -1;
  if (fstatat (parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode))
    return 0;
  if (replace (parent, base) < 0)
    return -1;
  return mkdirat (parent, base, mode | 0700);
}

static int
write_file (struct archive *in, int parent, const char *base, mode_t mode, la_int64_t size,
            const struct timespec *mtime, long long *written)
{
  _cleanup_close_ int fd = -1;
  const void *buf;
  size_t len;
  la_int64_t off;
  int r;

  if (replace (parent, base) < 0)
    return -1;
  fd = openat (parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0)
    return -1;
  while ((r = ak_la.archive_read_data_block (in, &buf, &len, &off)) == ARCHIVE_OK)
    {
      for (size_t done = 0; done < len;)
        {
          ssize_t n = pwrite (fd, (const char *) buf + done, len - done, (off_t) off + (off_t) done);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return -1;
          done += (size_t) n;
        }
      *written += (long long) len;
    }
  if (r != ARCHIVE_EOF)
    {
      /* The stream stopped inside this file: none of it is kept, rather
       * than a copy cut short. */
      (void) unlinkat (parent, base, 0);
      errno = EIO;
      return -1;
    }
  /* A sparse file may end with a hole. */
  if (size > 0 && ftruncate (fd, (off_t) size) < 0)
    return -1;
  (void) futimens (fd, (struct timespec[2]){ { .tv_nsec = UTIME_OMIT }, *mtime });
  return 0;
}

int
ak_tar_extract_untrusted (struct archive *in, int destfd, const char *newtop, long long *written,
                          ak_error_t **err)
{
  struct archive_entry *e;
  dir_fix_t *fixes = NULL;
  size_t n_fixes = 0;
  int ret = 0, r;

  *written = 0;
  while ((r = ak_la.archive_read_next_header (in, &e)) == ARCHIVE_OK)
    {
      const char *raw = ak_la.archive_entry_pathname (e);
      _cleanup_free_ char *renamed = NULL;
      _cleanup_free_ char *name = NULL;
      _cleanup_close_ int parent = -1;
      const char *base;
      unsigned type = ak_la.archive_entry_filetype (e);
      mode_t mode = ak_la.archive_entry_perm (e) & 0777;
      struct timespec mtime = { .tv_sec = ak_la.archive_entry_mtime (e) };

      if (raw == NULL || (name = clean_name (raw)) == NULL)
        {
          ret = ak_error_set (err, 0, "'%s': not a path inside the destination; nothing more copied",
                              raw ? raw : "");
          break;
        }
      if (newtop != NULL)
        {
          /* The archive's top component takes the target's name. */
          const char *rest = strchr (name, '/');
          renamed = ak_xasprintf ("%s%s", newtop, rest ? rest : "");
          free (name);
          name = steal_pointer (&renamed);
        }
      if ((type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
          || ak_la.archive_entry_hardlink (e) != NULL)
        {
          /* Device nodes, FIFOs, sockets and hard links stay in the sandbox. */
          ak_la.archive_read_data_skip (in);
          continue;
        }
      if (type == AE_IFLNK)
        {
          const char *target = ak_la.archive_entry_symlink (e);
          if (target == NULL || !link_stays_inside (name, target))
            {
              ak_warn ("cp: %s -> %s not created: the link points outside the copied tree", name,
                       target ? target : "");
              continue;
            }
        }
      parent = ak_fs_open_parent (destfd, name, true, &base);
      if (parent < 0)
        {
          ret = ak_error_set (err, errno, "%s%s", name,
                              errno == ELOOP ? ": a symlink is on its way; nothing more copied" : "");
          break;
        }
      if (type == AE_IFDIR)
        {
          if (make_dir (parent, base, mode) < 0)
            {
              ret = ak_error_set (err, errno, "%s", name);
              break;
            }
          fixes = ak_xrealloc (fixes, (n_fixes + 1) * sizeof *fixes);
          fixes[n_fixes++] = (dir_fix_t){ .name = ak_xstrdup (name), .mode = mode, .mtime = mtime };
        }
      else if (type == AE_IFLNK)
        {
          if (replace (parent, base) < 0
              || symlinkat (ak_la.archive_entry_symlink (e), parent, base) < 0)
            {
              ret = ak_error_set (err, errno, "%s", name);
              break;
            }
          (void) utimensat (parent, base, (struct timespec[2]){ { .tv_nsec = UTIME_OMIT }, mtime },
                            AT_SYMLINK_NOFOLLOW);
        }
      else if (write_file (in, parent, base, mode, ak_la.archive_entry_size (e), &mtime, written) < 0)
        {
          ret = ak_error_set (err, errno, "%s", name);
          break;
        }
    }
  if (ret == 0 && r != ARCHIVE_EOF)
    ret = ak_error_set (err, 0, "archive: %s", ak_la.archive_error_string (in));
  /* Directories last, deepest first: their final modes may forbid writing
   * into them, and filling them changed their times. */
  for (size_t i = n_fixes; i-- > 0;)
    {
      _cleanup_close_ int fd
          = ak_fs_openat (destfd, fixes[i].name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, AK_FS_BENEATH);
      if (fd >= 0)
        {
          struct stat st;
          if ((fixes[i].mode & 0700) != 0700 && fstat (fd, &st) == 0)
            (void) fchmod (fd, st.st_mode & fixes[i].mode & 0777);
          (void) futimens (fd, (struct timespec[2]){ { .tv_nsec = UTIME_OMIT }, fixes[i].mtime });
        }
      free (fixes[i].name);
    }
  free (fixes);
  return ret;
}
