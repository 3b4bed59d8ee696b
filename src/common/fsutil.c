/* Path safety: see fsutil.h for the rules every caller relies on. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* Set once openat2 has answered ENOSYS: the walk is used from then on. */
static bool openat2_missing;

static const char *
relative (const char *path)
{
  while (*path == '/')
    path++;
  return *path ? path : ".";
}

/* The last component of an O_NOFOLLOW open that failed: ELOOP when it is a
 * symlink (O_PATH|O_DIRECTORY reports ENOTDIR for one). */
static int
nofollow_errno (int dirfd, const char *name, int e)
{
  struct stat st;
  if (e == ENOTDIR && fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode))
    return ELOOP;
  return e;
}

int
ak_fs_walk (int dirfd, const char *path, int flags, mode_t mode)
{
  _cleanup_free_ char *copy = ak_xstrdup (relative (path));
  _cleanup_close_ int cur = openat (dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char *p = copy;

  if (cur < 0)
    return -1;
  for (;;)
    {
      char *comp, *slash;
      int next;
      bool last;

      while (*p == '/')
        p++;
      comp = p;
      slash = strchr (p, '/');
      if (slash != NULL)
        *slash = '\0';
      p = slash ? slash + 1 : p + strlen (p);
      while (*p == '/')
        p++;
      last = *p == '\0';
      if (strcmp (comp, "..") == 0)
        {
          errno = EXDEV;
          return -1;
        }
      if (last)
        {
          next = openat (cur, comp[0] ? comp : ".", flags | O_NOFOLLOW | O_CLOEXEC, mode);
          if (next < 0)
            errno = nofollow_errno (cur, comp, errno);
          return next;
        }
      if (comp[0] == '\0' || strcmp (comp, ".") == 0)
        continue;
      next = openat (cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        {
          errno = nofollow_errno (cur, comp, errno);
          return -1;
        }
      ak_closep (&cur);
      cur = next;
    }
}

int
ak_fs_openat (int dirfd, const char *path, int flags, mode_t mode, ak_fs_how_t how)
{
  const char *rel = relative (path);

  if (!openat2_missing)
    {
      struct open_how oh = {
        .flags = (uint64_t) (flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_NO_MAGICLINKS
                   | (how == AK_FS_BENEATH ? RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                      : how == AK_FS_NO_SYMLINKS ? RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS
                                                 : RESOLVE_IN_ROOT),
      };
      for (int tries = 0; tries < 16; tries++)
        {
          int fd = (int) syscall (SYS_openat2, dirfd, rel, &oh, sizeof oh);
          /* EAGAIN: a rename raced the lookup; the kernel asks for a retry. */
          if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
            {
              if (fd >= 0 || errno != ENOSYS)
                return fd;
              break;
            }
        }
      if (errno != ENOSYS)
        return -1;
      openat2_missing = true;
    }
  return ak_fs_walk (dirfd, rel, flags, mode);
}

static bool
bad_name (const char *base)
{
  return base[0] == '\0' || strcmp (base, ".") == 0 || strcmp (base, "..") == 0;
}

int
ak_fs_open_parent (int dirfd, const char *path, bool create, const char **base)
{
  _cleanup_free_ char *dir = ak_xstrdup (path);
  const char *last = strrchr (path, '/');
  char *save = NULL, *comp;
  _cleanup_close_ int cur = -1;

  *base = last ? last + 1 : path;
  if (bad_name (*base))
    {
      errno = **base == '\0' ? EISDIR : EINVAL;
      return -1;
    }
  dir[*base - path] = '\0';
  cur = openat (dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (comp = strtok_r (dir, "/", &save); cur >= 0 && comp; comp = strtok_r (NULL, "/", &save))
    {
      int next;
      if (strcmp (comp, ".") == 0 || strcmp (comp, "..") == 0)
        {
          errno = EINVAL;
          return -1;
        }
      next = ak_fs_openat (cur, comp, O_PATH | O_DIRECTORY, 0, AK_FS_NO_SYMLINKS);
      if (next < 0 && errno == ENOENT && create && (mkdirat (cur, comp, 0755) == 0 || errno == EEXIST))
        next = ak_fs_openat (cur, comp, O_PATH | O_DIRECTORY, 0, AK_FS_NO_SYMLINKS);
      ak_closep (&cur);
      cur = next;
    }
  return take_fd (&cur);
}

int
ak_fs_mkdir_p (int rootfd, const char *path, mode_t mode, ak_error_t **err)
{
  _cleanup_free_ char *copy = ak_xstrdup (relative (path));
  _cleanup_close_ int cur = -1;
  char *p = copy;

  cur = ak_fs_openat (rootfd, copy, O_PATH | O_DIRECTORY, 0, AK_FS_IN_ROOT);
  if (cur >= 0 || errno != ENOENT)
    return cur >= 0 ? take_fd (&cur) : ak_error_set (err, errno, "directory %s", path);
  cur = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0)
    return ak_error_set (err, errno, "directory %s", path);
  /* One prefix at a time, each resolved from the root as the kernel would
   * (symlinks inside the root are followed there); what is missing is made
   * in the directory just opened and re-opened without following. */
  while (*p)
    {
      char *slash = strchr (p, '/');
      int next;
      char saved = '\0';
      if (slash != NULL)
        saved = *slash, *slash = '\0';
      if (strcmp (p, "..") == 0)
        return ak_error_set (err, EINVAL, "directory %s: '..' is not allowed", path);
      if (p[0] != '\0' && strcmp (p, ".") != 0)
        {
          next = ak_fs_openat (rootfd, copy, O_PATH | O_DIRECTORY, 0, AK_FS_IN_ROOT);
          if (next < 0 && errno == ENOENT)
            {
              if (mkdirat (cur, p, mode) < 0 && errno != EEXIST)
                return ak_error_set (err, errno, "mkdir %s", copy);
              next = ak_fs_openat (cur, p, O_PATH | O_DIRECTORY, 0, AK_FS_NO_SYMLINKS);
            }
          if (next < 0 && errno == ELOOP)
            return ak_error_set (err, 0, "/%s is a symlink leading nowhere inside the root", copy);
          if (next < 0)
            return ak_error_set (err, errno, "directory /%s", copy);
          ak_closep (&cur);
          cur = next;
        }
      if (slash == NULL)
        break;
      *slash = saved;
      p = slash + 1;
    }
  return take_fd (&cur);
}

int
ak_fs_ensure_dir (int dirfd, const char *path, mode_t mode, ak_error_t **err)
{
  _cleanup_free_ char *copy = ak_xstrdup (relative (path));
  _cleanup_close_ int cur = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char *save = NULL;

  if (cur < 0)
    return ak_error_set (err, errno, "directory %s", path);
  for (char *comp = strtok_r (copy, "/", &save); comp; comp = strtok_r (NULL, "/", &save))
    {
      int next;
      if (strcmp (comp, ".") == 0)
        continue;
      if (strcmp (comp, "..") == 0)
        return ak_error_set (err, EINVAL, "directory %s: '..' is not allowed", path);
      next = ak_fs_openat (cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, AK_FS_NO_SYMLINKS);
      if (next < 0 && (errno == ELOOP || errno == ENOTDIR))
        {
          /* Not a directory (the sandbox may have left a symlink to a host
           * path here): remove it, whatever it is, and make a real one. */
          if (unlinkat (cur, comp, 0) < 0 && errno != ENOENT)
            return ak_error_set (err, errno, "%s: replace non-directory %s", path, comp);
          errno = ENOENT;
        }
      if (next < 0 && errno == ENOENT)
        {
          if (mkdirat (cur, comp, mode) < 0)
            return ak_error_set (err, errno, "mkdir %s", path);
          next = ak_fs_openat (cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, AK_FS_NO_SYMLINKS);
        }
      if (next < 0)
        return ak_error_set (err, errno, "directory %s", path);
      ak_closep (&cur);
      cur = next;
    }
  return take_fd (&cur);
}

/* The directory that will hold path (made as needed) and its last name. */
static int
parent_of (int rootfd, const char *path, const char **base, ak_error_t **err)
{
  _cleanup_free_ char *dir = ak_xstrdup (relative (path));
  char *slash = strrchr (dir, '/');

  *base = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
  if (bad_name (*base))
    return ak_error_set (err, EINVAL, "%s: not a file name", path);
  if (slash == NULL)
    {
      int fd = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
      return fd >= 0 ? fd : ak_error_set (err, errno, "%s", path);
    }
  *slash = '\0';
  return ak_fs_mkdir_p (rootfd, dir, 0755, err);
}

/* Removes whatever non-directory holds name, so a new one can be made. */
static int
clear_name (int dirfd, const char *name, const char *path, ak_error_t **err)
{
  struct stat st;
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : ak_error_set (err, errno, "%s", path);
  if (S_ISDIR (st.st_mode))
    return ak_error_set (err, EISDIR, "%s: a directory is in the way", path);
  if (unlinkat (dirfd, name, 0) < 0 && errno != ENOENT)
    return ak_error_set (err, errno, "%s: remove what was there", path);
  return 0;
}

int
ak_fs_create_file (int rootfd, const char *path, mode_t mode, ak_error_t **err)
{
  const char *base;
  _cleanup_close_ int dir = parent_of (rootfd, path, &base, err);
  _cleanup_close_ int fd = -1;

  if (dir < 0)
    return -1;
  for (int tries = 0; fd < 0 && tries < 4; tries++)
    {
      /* O_EXCL: never an existing inode (a symlink, or a hard link to a file
       * elsewhere), always a new one made here. */
      fd = openat (dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
      if (fd < 0 && errno != EEXIST)
        return ak_error_set (err, errno, "create %s", path);
      if (fd < 0 && clear_name (dir, base, path, err) < 0)
        return -1;
    }
  if (fd < 0)
    return ak_error_set (err, EEXIST, "create %s", path);
  if (fchmod (fd, mode & 07777) < 0)
    return ak_error_set (err, errno, "chmod %s", path);
  return take_fd (&fd);
}

int
ak_fs_write_file (int rootfd, const char *path, const void *data, size_t len, mode_t mode,
                  ak_error_t **err)
{
  _cleanup_close_ int fd = ak_fs_create_file (rootfd, path, mode, err);
  if (fd < 0)
    return -1;
  if (ak_write_all (fd, data, len) < 0)
    return ak_error_set (err, errno, "write %s", path);
  return 0;
}

int
ak_fs_copy_file (int rootfd, const char *path, int src, mode_t mode, ak_error_t **err)
{
  _cleanup_close_ int fd = ak_fs_create_file (rootfd, path, mode, err);
  char buf[65536];

  if (fd < 0)
    return -1;
  for (;;)
    {
      ssize_t n = read (src, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ak_error_set (err, errno, "read source of %s", path);
      if (n == 0)
        return 0;
      if (ak_write_all (fd, buf, (size_t) n) < 0)
        return ak_error_set (err, errno, "write %s", path);
    }
}

int
ak_fs_symlink (int rootfd, const char *path, const char *target, ak_error_t **err)
{
  const char *base;
  _cleanup_close_ int dir = parent_of (rootfd, path, &base, err);
  struct stat st;

  if (dir < 0)
    return -1;
  if (symlinkat (target, dir, base) == 0)
    return 0;
  if (errno != EEXIST || fstatat (dir, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ak_error_set (err, errno, "symlink %s", path);
  if (S_ISDIR (st.st_mode))
    return 0;
  if (clear_name (dir, base, path, err) < 0)
    return -1;
  if (symlinkat (target, dir, base) < 0)
    return ak_error_set (err, errno, "symlink %s", path);
  return 0;
}

int
ak_fs_touch (int rootfd, const char *path, ak_error_t **err)
{
  const char *base;
  _cleanup_close_ int dir = parent_of (rootfd, path, &base, err);
  struct stat st;
  int fd;

  if (dir < 0)
    return -1;
  if (fstatat (dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG (st.st_mode)
      && clear_name (dir, base, path, err) < 0)
    return -1;
  fd = openat (dir, base, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0)
    return ak_error_set (err, errno, "create %s", path);
  close (fd);
  fd = openat (dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ak_error_set (err, errno, "open %s", path);
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      return ak_error_set (err, EINVAL, "%s: not a regular file", path);
    }
  return fd;
}

/* An absolute path opened from "/" without following any symlink. */
static int
open_nofollow (const char *path, int flags)
{
  _cleanup_close_ int root = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return -1;
  if ((flags & O_PATH) == 0)
    flags |= O_NONBLOCK | O_NOCTTY; /* a FIFO must not block the start */
  return ak_fs_openat (root, path, flags | O_NOFOLLOW, 0, AK_FS_NO_SYMLINKS);
}

int
ak_fs_pin (const char *path, ak_fs_id_t *id, char **canonical, ak_error_t **err)
{
  _cleanup_free_ char *real = realpath (path, NULL);
  _cleanup_close_ int fd = -1;
  struct stat st;

  if (real == NULL)
    return ak_error_set (err, errno, "%s", path);
  fd = open_nofollow (real, O_PATH);
  if (fd < 0 || fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s", real);
  *id = (ak_fs_id_t){ .dev = st.st_dev, .ino = st.st_ino, .type = st.st_mode & S_IFMT };
  if (canonical != NULL)
    {
      free (*canonical);
      *canonical = steal_pointer (&real);
    }
  return take_fd (&fd);
}

int
ak_fs_open_pinned (const char *path, const ak_fs_id_t *id, int flags, const char *what,
                   ak_error_t **err)
{
  _cleanup_close_ int fd = -1;
  struct stat st;

  if (id->type == 0)
    return ak_error_set (err, 0, "%s %s: its identity was not recorded when the sandbox was created",
                         what, path);
  fd = open_nofollow (path, flags);
  if (fd < 0 && errno == ELOOP)
    return ak_error_set (err, 0,
                         "%s %s is now reached through a symlink, which it was not when the sandbox "
                         "was created: not started (re-create the sandbox if this is intended)",
                         what, path);
  if (fd < 0)
    return ak_error_set (err, errno, "%s %s", what, path);
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s %s", what, path);
  if ((unsigned long long) st.st_dev != id->dev || (unsigned long long) st.st_ino != id->ino
      || (st.st_mode & S_IFMT) != id->type)
    return ak_error_set (err, 0,
                         "%s %s was replaced since the sandbox was created (not the same %s any "
                         "more): not started (re-create the sandbox if this is intended)",
                         what, path, id->type == S_IFDIR ? "directory" : "file");
  return take_fd (&fd);
}

/* ---- removing a tree ----------------------------------------------------- */

/* One directory on the way down: its identity (to check the way back up),
 * its name in its parent, and the subdirectories still to remove. */
typedef struct rm_frame {
  dev_t dev;
  ino_t ino;
  char *name;
  char **pending;
  size_t n_pending;
} rm_frame_t;

/* Opens name (a directory) beneath dir without following a link, making it
 * readable first if its owner (us) left it closed. */
static int
rm_open_dir (int dir, const char *name)
{
  int fd = openat (dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && fchmodat (dir, name, 0700, 0) == 0)
    fd = openat (dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd;
}

/* Unlinks every non-directory in fd and lists its subdirectories into f. */
/* The mount a directory entry is on (0 when the kernel cannot say). */
static uint64_t
rm_mnt_id (int dir, const char *name)
{
  struct statx stx;
  if (statx (dir, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) < 0
      || !(stx.stx_mask & STATX_MNT_ID))
    return 0;
  return stx.stx_mnt_id;
}

static int
rm_scan (int fd, rm_frame_t *f, dev_t top_dev, uint64_t top_mnt, uint64_t *freed, ak_error_t **err)
{
  _cleanup_close_ int dup_fd = -1;
  struct stat st;
  DIR *d;
  struct dirent *e;
  int rc = 0;

  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "stat %s", f->name);
  if ((st.st_mode & S_IRWXU) != S_IRWXU)
    fchmod (fd, st.st_mode | S_IRWXU);
  dup_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0 || (d = fdopendir (dup_fd)) == NULL)
    return ak_error_set (err, errno, "read directory %s", f->name);
  dup_fd = -1;
  rewinddir (d);
  while (rc == 0)
    {
      struct stat es;
      errno = 0;
      e = readdir (d);
      if (e == NULL)
        {
          if (errno != 0)
            rc = ak_error_set (err, errno, "read directory %s", f->name);
          break;
        }
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (fstatat (fd, e->d_name, &es, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno != ENOENT)
            rc = ak_error_set (err, errno, "stat %s/%s", f->name, e->d_name);
          continue;
        }
      if (S_ISDIR (es.st_mode))
        {
          uint64_t mnt = top_mnt ? rm_mnt_id (fd, e->d_name) : 0;
          if (es.st_dev != top_dev || (mnt != 0 && mnt != top_mnt))
            rc = ak_error_set (err, EXDEV, "%s/%s is a mount point; unmount it first", f->name, e->d_name);
          else
            {
              f->pending = ak_xrealloc (f->pending, (f->n_pending + 1) * sizeof (char *));
              f->pending[f->n_pending++] = ak_xstrdup (e->d_name);
            }
          continue;
        }
      if (unlinkat (fd, e->d_name, 0) < 0 && errno != ENOENT)
        rc = ak_error_set (err, errno, "remove %s/%s", f->name, e->d_name);
      else if (freed != NULL && S_ISREG (es.st_mode) && es.st_nlink == 1)
        *freed += (uint64_t) es.st_size;
    }
  closedir (d);
  return rc;
}

int
ak_fs_remove_tree (int parent, const char *name, uint64_t *freed, ak_error_t **err)
{
  rm_frame_t *stack = NULL;
  size_t depth = 0, cap = 0;
  struct stat st, top;
  int cur = -1, rc = -1;
  uint64_t top_mnt;
  char *next_name = NULL;

  if (fstat (parent, &top) < 0)
    return ak_error_set (err, errno, "stat the parent of %s", name);
  if (fstatat (parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : ak_error_set (err, errno, "stat %s", name);
  if (!S_ISDIR (st.st_mode))
    {
      if (unlinkat (parent, name, 0) < 0 && errno != ENOENT)
        return ak_error_set (err, errno, "remove %s", name);
      if (freed != NULL && S_ISREG (st.st_mode) && st.st_nlink == 1)
        *freed += (uint64_t) st.st_size;
      return 0;
    }
  top_mnt = rm_mnt_id (parent, name);
  if (st.st_dev != top.st_dev || (top_mnt != 0 && top_mnt != rm_mnt_id (parent, ".")))
    return ak_error_set (err, EXDEV, "%s is a mount point; unmount it first", name);

  /* Depth first with one open directory at a time, however deep the tree:
   * down by name beneath the current directory (never following a link),
   * back up by "..", checked against the identity recorded on the way
   * down, so that nothing outside the tree is ever reached. */
  next_name = ak_xstrdup (name);
  cur = rm_open_dir (parent, name);
  if (cur < 0)
    {
      ak_error_set (err, errno, "open %s", name);
      goto out;
    }
  for (;;)
    {
      rm_frame_t *f;
      if (depth == cap)
        {
          cap = cap ? cap * 2 : 16;
          stack = ak_xrealloc (stack, cap * sizeof *stack);
        }
      f = &stack[depth++];
      memset (f, 0, sizeof *f);
      if (fstat (cur, &st) < 0)
        {
          ak_error_set (err, errno, "stat %s", name);
          goto out;
        }
      f->dev = st.st_dev;
      f->ino = st.st_ino;
      f->name = next_name;
      next_name = NULL;
      if (rm_scan (cur, f, top.st_dev, top_mnt, freed, err) < 0)
        goto out;
      /* Down into the next pending subdirectory, or up when none is left. */
      for (;;)
        {
          f = &stack[depth - 1];
          if (f->n_pending > 0)
            {
              int child = rm_open_dir (cur, f->pending[f->n_pending - 1]);
              f->n_pending--;
              if (child < 0)
                {
                  if (errno == ENOENT)
                    {
                      free (f->pending[f->n_pending]);
                      continue;
                    }
                  ak_error_set (err, errno, "open %s/%s", f->name, f->pending[f->n_pending]);
                  f->n_pending++;
                  goto out;
                }
              close (cur);
              cur = child;
              next_name = f->pending[f->n_pending];
              break; /* scan the child: a new frame */
            }
          /* Empty now: remove it from its parent. */
          if (depth == 1)
            {
              close (cur);
              cur = -1;
              if (unlinkat (parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                {
                  ak_error_set (err, errno, "remove %s", name);
                  goto out;
                }
              rc = 0;
              goto out;
            }
          {
            int up = openat (cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rm_frame_t *p = &stack[depth - 2];
            if (up < 0 || fstat (up, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino)
              {
                if (up >= 0)
                  close (up);
                ak_error_set (err, EXDEV, "%s moved while it was removed", f->name);
                goto out;
              }
            close (cur);
            cur = up;
            if (unlinkat (cur, f->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
              {
                ak_error_set (err, errno, "remove %s", f->name);
                goto out;
              }
            free (f->name);
            free (f->pending);
            depth--;
          }
        }
    }
out:
  if (cur >= 0)
    close (cur);
  free (next_name);
  for (size_t i = 0; i < depth; i++)
    {
      for (size_t j = 0; j < stack[i].n_pending; j++)
        free (stack[i].pending[j]);
      free (stack[i].pending);
      free (stack[i].name);
    }
  free (stack);
  return rc;
}
