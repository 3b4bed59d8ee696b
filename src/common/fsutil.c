/* Path safety: see fsutil.h for the rules every caller relies on. */
#define _GNU_SOURCE
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
