/* The sandbox's root filesystem, built in a private mount namespace.
 *
 * The host tree is first moved aside (pivot into a staging tmpfs, host at
 * /oldroot) so every host path is named explicitly from then on; the new
 * root is assembled under /newroot from: the image (the host's /usr behind
 * an overlay with a private upper layer, or read-only), a synthesised /etc,
 * a minimal /dev, a fresh /proc and /tmp, and the sources opened earlier
 * (workspace, home, volumes).  Finally the host tree is detached entirely,
 * so nothing of it remains reachable, and nothing mounted here is ever
 * visible on the host (the namespace is a slave copy, torn down with it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

#define NEWROOT "/newroot"

static int
mnt (const char *src, const char *dst, const char *type, unsigned long flags, const char *data,
     ak_error_t **err)
{
  if (mount (src, dst, type, flags, data) < 0)
    return ak_error_set (err, errno, "mount %s on %s", type ? type : (src ? src : "(none)"), dst);
  return 0;
}

static int
set_attr (const char *path, uint64_t set, bool recursive, ak_error_t **err)
{
  struct ak_mount_attr attr = { .attr_set = set };
  if (ak_mount_setattr (AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr) < 0)
    return ak_error_set (err, errno, "make %s read-only", path);
  return 0;
}

/* mkdir -p, tolerating existing directories. */
static int
mkdir_p (const char *path, mode_t mode, ak_error_t **err)
{
  char buf[PATH_MAX];
  size_t len = strlen (path);

  if (len >= sizeof buf)
    return ak_error_set (err, ENAMETOOLONG, "mkdir %s", path);
  memcpy (buf, path, len + 1);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (buf, mode) < 0 && errno != EEXIST)
          return ak_error_set (err, errno, "mkdir %s", buf);
        *p = '/';
      }
  if (mkdir (buf, mode) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "mkdir %s", buf);
  return 0;
}

static int
touch (const char *path, ak_error_t **err)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return ak_error_set (err, errno, "create %s", path);
  close (fd);
  return 0;
}

/* Bind a host path (under /oldroot) on a new mount point of the same kind. */
static int
bind_host (const char *host, const char *dst, bool read_only, ak_error_t **err)
{
  struct stat st;
  if (stat (host, &st) < 0)
    return ak_error_set (err, errno, "stat %s", host);
  if (S_ISDIR (st.st_mode) ? mkdir_p (dst, 0755, err) : touch (dst, err))
    return -1;
  if (mnt (host, dst, NULL, MS_BIND | MS_REC, NULL, err) < 0)
    return -1;
  return set_attr (dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0),
                   true, err);
}

/* Attach a detached tree opened by ak_sources_open(). */
static int
attach_tree (int tree, const char *dst, ak_error_t **err)
{
  struct stat st;
  if (fstat (tree, &st) < 0)
    return ak_error_set (err, errno, "stat source of %s", dst);
  if (S_ISDIR (st.st_mode) ? mkdir_p (dst, 0755, err) : touch (dst, err))
    return -1;
  if (ak_move_mount (tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return ak_error_set (err, errno, "attach %s", dst);
  return 0;
}

/* An overlay of `lower` with a private upper layer in the staging tmpfs:
 * the sandbox can write anywhere in it and the host never sees a byte. */
static int
overlay (const char *lower, const char *layers, const char *tag, const char *dst, ak_error_t **err)
{
  _cleanup_free_ char *upper = ak_xasprintf ("%s/upper/%s", layers, tag);
  _cleanup_free_ char *work = ak_xasprintf ("%s/work/%s", layers, tag);
  _cleanup_free_ char *opts = NULL;

  if (mkdir_p (upper, 0755, err) < 0 || mkdir_p (work, 0755, err) < 0)
    return ak_error_prefix (err, "overlay layer for %s", dst);
  opts = ak_xasprintf ("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work);
  if (mount ("overlay", dst, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
    return ak_error_set (err, errno,
                         "mount overlay on %s (the kernel needs overlayfs with unprivileged mounts, "
                         "Linux 5.11 or later: modprobe overlay)",
                         dst);
  return 0;
}

static int
build_host_image (const ak_spec_t *spec, const char *layers, ak_error_t **err)
{
  static const char *const dirs[] = { "usr", "etc", "var", "var/tmp", "run", "opt", "srv", "mnt",
                                      "root", "home", "dev", "proc", "tmp" };
  static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);
  char host[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];

  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      snprintf (dst, sizeof dst, NEWROOT "/%s", dirs[i]);
      if (mkdir (dst, 0755) < 0 && errno != EEXIST)
        return ak_error_set (err, errno, "mkdir %s", dst);
    }
  if (chmod (NEWROOT "/var/tmp", 01777) < 0)
    return ak_error_set (err, errno, "chmod /var/tmp");
  if (ro ? bind_host ("/oldroot/usr", NEWROOT "/usr", true, err)
         : overlay ("/oldroot/usr", layers, "usr", NEWROOT "/usr", err))
    return -1;
  /* Mirror the host's merged-/usr links, or show a real directory as is. */
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    {
      ssize_t n;
      struct stat st;
      snprintf (host, sizeof host, "/oldroot/%s", links[i]);
      snprintf (dst, sizeof dst, NEWROOT "/%s", links[i]);
      n = readlink (host, target, sizeof target - 1);
      if (n >= 0)
        {
          target[n] = '\0';
          if (symlink (target, dst) < 0 && errno != EEXIST)
            return ak_error_set (err, errno, "symlink %s", dst);
        }
      else if (lstat (host, &st) == 0 && S_ISDIR (st.st_mode))
        {
          if (bind_host (host, dst, true, err) < 0)
            return -1;
        }
    }
  return 0;
}

static int
build_dev (ak_error_t **err)
{
  static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
  static const char *const links[][2] = {
    { "/proc/self/fd", NEWROOT "/dev/fd" },     { "/proc/self/fd/0", NEWROOT "/dev/stdin" },
    { "/proc/self/fd/1", NEWROOT "/dev/stdout" }, { "/proc/self/fd/2", NEWROOT "/dev/stderr" },
    { "pts/ptmx", NEWROOT "/dev/ptmx" },
  };
  char host[64], dst[64];

  /* Only harmless character devices: no disks, no memory, no kmsg. */
  if (mnt ("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
    {
      snprintf (host, sizeof host, "/oldroot/dev/%s", nodes[i]);
      snprintf (dst, sizeof dst, NEWROOT "/dev/%s", nodes[i]);
      if (touch (dst, err) < 0 || mnt (host, dst, NULL, MS_BIND, NULL, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlink (links[i][0], links[i][1]) < 0)
      return ak_error_set (err, errno, "symlink %s", links[i][1]);
  if (mkdir (NEWROOT "/dev/pts", 0755) < 0 || mkdir (NEWROOT "/dev/shm", 01777) < 0)
    return ak_error_set (err, errno, "mkdir /dev");
  if (mnt ("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620", err) < 0)
    return -1;
  if (mnt ("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m", err) < 0)
    return -1;
  return 0;
}

/* Copy one injected file to its destination inside (parents created). */
static int
inject_file (int fd, const char *dest, ak_error_t **err)
{
  _cleanup_free_ char *path = ak_xasprintf (NEWROOT "%s", dest);
  _cleanup_free_ char *dir = ak_xstrdup (path);
  _cleanup_close_ int out = -1;
  char buf[65536];
  struct stat st;

  *strrchr (dir, '/') = '\0';
  if (mkdir_p (dir, 0755, err) < 0)
    return -1;
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "stat source of %s", dest);
  out = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 0755);
  if (out < 0)
    return ak_error_set (err, errno, "create %s", dest);
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ak_error_set (err, errno, "read source of %s", dest);
      if (n == 0)
        break;
      if (ak_write_all (out, buf, (size_t) n) < 0)
        return ak_error_set (err, errno, "write %s", dest);
    }
  return 0;
}

int
ak_mounts_build_root (const ak_spec_t *spec, const ak_ids_t *ids, ak_sources_t *src,
                      int net_helper, ak_error_t **err)
{
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);
  _cleanup_free_ char *home = ak_xstrdup (spec->as_root ? NEWROOT "/root" : NEWROOT "/home/user");
  /* Where the writable layers live: the staging tmpfs (gone with the run),
   * or a persistent sandbox's own directory (kept across stop/start). */
  const char *layers = src->persist_tree >= 0 ? "/persist" : "";

  /* 1. Nothing we mount propagates to the host. */
  if (mnt (NULL, "/", NULL, MS_SLAVE | MS_REC, NULL, err) < 0)
    return -1;
  /* 2. Stage: a tmpfs becomes "/", the host moves to /oldroot. */
  if (mnt ("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700", err) < 0)
    return -1;
  if (chdir ("/tmp") < 0 || mkdir ("oldroot", 0700) < 0 || mkdir ("newroot", 0755) < 0
      || mkdir ("upper", 0700) < 0 || mkdir ("work", 0700) < 0)
    return ak_error_set (err, errno, "prepare staging directory");
  if (ak_pivot_root (".", "oldroot") < 0 || chdir ("/") < 0)
    return ak_error_set (err, errno, "pivot_root into staging directory");
  if (src->persist_tree >= 0)
    {
      if (mkdir ("/persist", 0700) < 0 || attach_tree (src->persist_tree, "/persist", err) < 0
          || mkdir_p ("/persist/root", 0755, err) < 0)
        return ak_error_prefix (err, "sandbox state");
    }

  /* 3. The image. */
  if (spec->rootfs != NULL)
    {
      _cleanup_free_ char *lower = ak_xasprintf ("/oldroot%s", spec->rootfs);
      if (overlay (lower, layers, "root", NEWROOT, err) < 0)
        return -1;
      if (mkdir_p (NEWROOT "/dev", 0755, err) < 0 || mkdir_p (NEWROOT "/proc", 0755, err) < 0
          || mkdir_p (NEWROOT "/tmp", 01777, err) < 0)
        return -1;
    }
  else
    {
      if (src->persist_tree >= 0
              ? mnt ("/persist/root", NEWROOT, NULL, MS_BIND, NULL, err) < 0
                    || set_attr (NEWROOT, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false, err) < 0
              : mnt ("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", err) < 0)
        return -1;
      if (build_host_image (spec, layers, err) < 0)
        return -1;
      if (ak_etc_populate (NEWROOT "/etc", spec, net_helper, err) < 0)
        return ak_error_prefix (err, "/etc");
    }

  /* 4. Kernel interfaces and scratch space. */
  if (build_dev (err) < 0)
    return ak_error_prefix (err, "/dev");
  if (mnt ("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (mnt ("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=512m", err) < 0)
    return -1;

  /* 5. What the user shares. */
  if (mkdir_p (home, 0755, err) < 0)
    return -1;
  if (src->home_tree >= 0 && attach_tree (src->home_tree, NEWROOT "/home/user", err) < 0)
    return ak_error_prefix (err, "mount_home");
  if (src->cwd_tree >= 0 && attach_tree (src->cwd_tree, NEWROOT "/workspace", err) < 0)
    return ak_error_prefix (err, "mount_cwd");
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      _cleanup_free_ char *dst = ak_xasprintf (NEWROOT "%s", spec->mounts[i].dest);
      if (attach_tree (src->vol_trees[i], dst, err) < 0)
        return ak_error_prefix (err, "volume %s", spec->mounts[i].dest);
    }
  for (size_t i = 0; i < spec->n_files; i++)
    if (inject_file (src->file_fds[i], spec->files[i].dest, err) < 0)
      return ak_error_prefix (err, "[[files]]");

  /* 6. read_only: the root and everything in it that is not scratch space. */
  if (ro && set_attr (NEWROOT, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false, err) < 0)
    return -1;

  /* 7. Detach the host and enter the new root. */
  if (umount2 ("/oldroot", MNT_DETACH) < 0)
    return ak_error_set (err, errno, "detach host tree");
  if (chdir (NEWROOT) < 0 || ak_pivot_root (".", ".") < 0 || umount2 (".", MNT_DETACH) < 0
      || chdir ("/") < 0)
    return ak_error_set (err, errno, "pivot_root into the sandbox root");
  return 0;
}
