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
 *
 * Once /newroot is mounted its content may be the sandbox's own (a
 * persistent root, a rootfs's writable layer): from then on every create,
 * write, chmod and mount point inside it is reached through a descriptor on
 * the root (common/fsutil.h), never as a string under /newroot, so a symlink
 * the sandbox planted cannot send set-up to the host.  Staging paths
 * (/persist, /lower, /newroot itself) are this process's own tmpfs.
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
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"

#define NEWROOT "/newroot"

/* Staging paths only. */
/* Mounts a new filesystem (or a bind of a host path) on the directory open
 * as target_fd, naming it by that descriptor (fchdir, then ".") rather than
 * a path the kernel would resolve again. */
static int
mount_on (int target_fd, const char *src, const char *type, unsigned long flags,
                const char *data, const char *what, ak_error_t **err)
{
  _cleanup_close_ int cwd = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int rc, e;

  if (fchdir (target_fd) < 0)
    return ak_error_set (err, errno, "mount on %s", what);
  /* "." is the directory already opened: nothing is looked up again. */
  rc = mount (src, ".", type, flags, data);
  e = errno;
  if ((cwd >= 0 ? fchdir (cwd) : chdir ("/")) < 0)
    return ak_error_set (err, errno, "return from %s", what);
  if (rc < 0)
    return ak_error_set (err, e, "mount %s on %s", type ? type : (src ? src : "(none)"), what);
  return 0;
}

/* Attaches a detached mount tree (open_tree) on the file or directory open
 * as target_fd (move_mount with MOVE_MOUNT_T_EMPTY_PATH). */
static int
attach_on (int tree, int target_fd, const char *what, ak_error_t **err)
{
  if (ak_move_mount (tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return ak_error_set (err, errno, "attach %s", what);
  return 0;
}

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

/* mkdir -p of a staging path (never one under /newroot). */
static int
staging_mkdir_p (const char *path, mode_t mode, ak_error_t **err)
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

int
ak_mounts_attach (int dirfd, int tree, const char *dst, bool owned, ak_error_t **err)
{
  _cleanup_close_ int target = -1;
  struct stat st;

  if (fstat (tree, &st) < 0)
    return ak_error_set (err, errno, "stat source of %s", dst);
  if (!S_ISDIR (st.st_mode))
    target = ak_fs_touch (dirfd, dst, err);
  else if (owned)
    target = ak_fs_ensure_dir (dirfd, dst, 0755, err);
  else
    target = ak_fs_mkdir_p (dirfd, dst, 0755, err);
  if (target < 0)
    return -1;
  return attach_on (tree, target, dst, err);
}

int
ak_mounts_bind_host (int dirfd, const char *host, const char *dst, bool read_only, ak_error_t **err)
{
  struct ak_mount_attr attr = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                                            | (read_only ? MOUNT_ATTR_RDONLY : 0) };
  _cleanup_close_ int tree
      = ak_open_tree (AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

  if (tree < 0)
    return ak_error_set (err, errno, "open %s", host);
  if (ak_mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0)
    return ak_error_set (err, errno, "set mount flags on %s", host);
  return ak_mounts_attach (dirfd, tree, dst, true, err);
}

/* An overlay of `lower` with a private upper layer in the staging tmpfs:
 * the sandbox can write anywhere in it and the host never sees a byte. */
static int
overlay (const char *lower, const char *layers, const char *tag, int target, const char *dst,
         ak_error_t **err)
{
  _cleanup_free_ char *upper = ak_xasprintf ("%s/upper/%s", layers, tag);
  _cleanup_free_ char *work = ak_xasprintf ("%s/work/%s", layers, tag);
  _cleanup_free_ char *opts = NULL;

  if (staging_mkdir_p (upper, 0755, err) < 0 || staging_mkdir_p (work, 0755, err) < 0)
    return ak_error_prefix (err, "overlay layer for %s", dst);
  opts = ak_xasprintf ("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work);
  if (mount_on (target, "overlay", "overlay", MS_NOSUID | MS_NODEV, opts, dst, err) < 0)
    return ak_error_prefix (err,
                            "(the kernel needs overlayfs with unprivileged mounts, Linux 5.11 or "
                            "later: modprobe overlay)");
  return 0;
}

static int
build_host_image (int rootfd, const ak_spec_t *spec, const char *layers, ak_error_t **err)
{
  static const char *const dirs[] = { "usr", "etc", "var", "var/tmp", "run", "opt", "srv", "mnt",
                                      "root", "home", "dev", "proc", "tmp" };
  static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);
  char host[PATH_MAX], target[PATH_MAX];

  /* Each one a real directory: whatever a persistent root left in its
   * place (a symlink to /oldroot/..., a file) is replaced. */
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      _cleanup_close_ int fd = ak_fs_ensure_dir (rootfd, dirs[i], 0755, err);
      if (fd < 0)
        return -1;
      if (strcmp (dirs[i], "var/tmp") == 0 && fchmod (fd, 01777) < 0)
        return ak_error_set (err, errno, "chmod /var/tmp");
    }
  if (ro)
    {
      if (ak_mounts_bind_host (rootfd, "/oldroot/usr", "usr", true, err) < 0)
        return -1;
    }
  else
    {
      _cleanup_close_ int usr = ak_fs_ensure_dir (rootfd, "usr", 0755, err);
      if (usr < 0 || overlay ("/oldroot/usr", layers, "usr", usr, "/usr", err) < 0)
        return -1;
    }
  /* Mirror the host's merged-/usr links, or show a real directory as is. */
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    {
      ssize_t n;
      struct stat st;
      snprintf (host, sizeof host, "/oldroot/%s", links[i]);
      n = readlink (host, target, sizeof target - 1);
      if (n >= 0)
        {
          target[n] = '\0';
          if (ak_fs_symlink (rootfd, links[i], target, err) < 0)
            return -1;
        }
      else if (lstat (host, &st) == 0 && S_ISDIR (st.st_mode))
        {
          if (ak_mounts_bind_host (rootfd, host, links[i], true, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* A fresh filesystem on a directory set-up owns (made real if it was not). */
static int
mount_fresh (int rootfd, const char *dst, mode_t mode, const char *type, unsigned long flags,
             const char *data, ak_error_t **err)
{
  _cleanup_close_ int fd = ak_fs_ensure_dir (rootfd, dst, mode, err);
  if (fd < 0)
    return -1;
  return mount_on (fd, type, type, flags, data, dst, err);
}

static int
build_dev (int rootfd, ak_error_t **err)
{
  static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
  static const char *const links[][2] = {
    { "/proc/self/fd", "dev/fd" },     { "/proc/self/fd/0", "dev/stdin" },
    { "/proc/self/fd/1", "dev/stdout" }, { "/proc/self/fd/2", "dev/stderr" },
    { "pts/ptmx", "dev/ptmx" },
  };
  char host[64], dst[64];

  /* Only harmless character devices: no disks, no memory, no kmsg. */
  if (mount_fresh (rootfd, "dev", 0755, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
    {
      _cleanup_close_ int tree = -1;
      _cleanup_close_ int target = -1;
      snprintf (host, sizeof host, "/oldroot/dev/%s", nodes[i]);
      snprintf (dst, sizeof dst, "dev/%s", nodes[i]);
      tree = ak_open_tree (AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (tree < 0)
        return ak_error_set (err, errno, "open %s", host);
      target = ak_fs_touch (rootfd, dst, err);
      if (target < 0 || attach_on (tree, target, dst, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (ak_fs_symlink (rootfd, links[i][1], links[i][0], err) < 0)
      return -1;
  if (mount_fresh (rootfd, "dev/pts", 0755, "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620", err) < 0)
    return -1;
  if (mount_fresh (rootfd, "dev/shm", 01777, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m", err) < 0)
    return -1;
  return 0;
}

/* Copy one injected file to its destination inside (parents created). */
static int
inject_file (int rootfd, int fd, const char *dest, ak_error_t **err)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "stat source of %s", dest);
  return ak_fs_copy_file (rootfd, dest, fd, st.st_mode & 0755, err);
}

/* An OCI image as the root: its layers (attached read-only in the staging
 * tmpfs, each opened in sources.c) as the overlay's lower stack, topmost
 * first, under the sandbox's own upper layer.  The layers' whiteouts (0/0
 * character devices) and opaque directories (user.overlay.opaque) are
 * overlayfs' own format, so the stack shows exactly the image. */
static int
image_root (const ak_sources_t *src, const char *layers, ak_error_t **err)
{
  _cleanup_close_ int newroot = open (NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
  _cleanup_free_ char *lower = ak_xstrdup ("");

  if (newroot < 0 || mkdir ("/layers", 0700) < 0)
    return ak_error_set (err, errno, "image: staging");
  for (size_t i = 0; i < src->n_layers; i++)
    {
      char dir[64];
      char *l;
      snprintf (dir, sizeof dir, "/layers/%zu", i);
      if (src->layer_trees[i] < 0 || mkdir (dir, 0700) < 0
          || ak_move_mount (src->layer_trees[i], "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return ak_error_set (err, src->layer_trees[i] < 0 ? EBADF : errno, "image: attach layer %zu", i);
      l = ak_xasprintf ("%s%s%s", dir, *lower ? ":" : "", lower);
      free (lower);
      lower = l;
    }
  return overlay (lower, layers, "root", newroot, "/", err);
}

int
ak_mounts_build_root (const ak_spec_t *spec, const ak_ids_t *ids, ak_sources_t *src,
                      int net_helper, int *exec_ruleset, int *exec_info, ak_error_t **err)
{
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);
  const char *home = spec->as_root ? "root" : "home/user";
  /* Where the writable layers live: the staging tmpfs (gone with the run),
   * or a persistent sandbox's own directory (kept across stop/start). */
  const char *layers = src->persist_tree >= 0 ? "/persist" : "";
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int homefd = -1;
  char staging_opts[64] = "mode=0700", root_opts[64] = "mode=0755", tmp_opts[64] = "mode=1777,size=512m";

  /* 1. Nothing we mount propagates to the host. */
  if (mnt (NULL, "/", NULL, MS_SLAVE | MS_REC, NULL, err) < 0)
    return -1;
  /* 2. Stage: a tmpfs becomes "/", the host moves to /oldroot. */
  /* disk_mb: the writable layers (in this staging tmpfs, the root's own
   * tmpfs, or a persistent sandbox's disk image) and /tmp are each that
   * size at most; writing past it is ENOSPC inside. */
  if (spec->res.disk_mb > 0)
    {
      _cleanup_free_ char *o = ak_xasprintf ("mode=0700,size=%um", spec->res.disk_mb);
      _cleanup_free_ char *o2 = ak_xasprintf ("mode=0755,size=%um", spec->res.disk_mb);
      _cleanup_free_ char *o3 = ak_xasprintf ("mode=1777,size=%um", spec->res.disk_mb);
      snprintf (staging_opts, sizeof staging_opts, "%s", o);
      snprintf (root_opts, sizeof root_opts, "%s", o2);
      snprintf (tmp_opts, sizeof tmp_opts, "%s", o3);
    }
  if (mnt ("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, staging_opts, err) < 0)
    return -1;
  if (chdir ("/tmp") < 0 || mkdir ("oldroot", 0700) < 0 || mkdir ("newroot", 0755) < 0
      || mkdir ("upper", 0700) < 0 || mkdir ("work", 0700) < 0)
    return ak_error_set (err, errno, "prepare staging directory");
  if (ak_pivot_root (".", "oldroot") < 0 || chdir ("/") < 0)
    return ak_error_set (err, errno, "pivot_root into staging directory");
  if (src->persist_tree >= 0)
    {
      if (mkdir ("/persist", 0700) < 0
          || ak_move_mount (src->persist_tree, "", AT_FDCWD, "/persist", MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return ak_error_set (err, errno, "sandbox state: attach /persist");
      if (staging_mkdir_p ("/persist/root", 0755, err) < 0)
        return ak_error_prefix (err, "sandbox state");
    }

  /* 3. The image, then a descriptor on it that every later step goes
   * through. */
  if (spec->rootfs != NULL)
    {
      /* The directory pinned and opened in sources.c, never its path again. */
      _cleanup_close_ int newroot = open (NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (newroot < 0 || src->rootfs_tree < 0 || mkdir ("/lower", 0755) < 0
          || ak_move_mount (src->rootfs_tree, "", AT_FDCWD, "/lower", MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return ak_error_set (err, src->rootfs_tree < 0 ? EBADF : errno, "rootfs %s: attach",
                             spec->rootfs);
      if (overlay ("/lower", layers, "root", newroot, "/", err) < 0)
        return -1;
    }
  else if (src->n_layers > 0)
    {
      if (image_root (src, layers, err) < 0)
        return -1;
    }
  else if (src->persist_tree >= 0
               ? mnt ("/persist/root", NEWROOT, NULL, MS_BIND, NULL, err) < 0
                     || set_attr (NEWROOT, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false, err) < 0
               : mnt ("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, root_opts, err) < 0)
    return -1;
  rootfd = open (NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ak_error_set (err, errno, "open " NEWROOT);
  if (src->n_layers > 0)
    {
      if (ak_etc_image (rootfd, spec, net_helper, err) < 0)
        return ak_error_prefix (err, "/etc");
    }
  else if (spec->rootfs == NULL)
    {
      if (build_host_image (rootfd, spec, layers, err) < 0)
        return -1;
      if (ak_etc_populate (rootfd, spec, net_helper, err) < 0)
        return ak_error_prefix (err, "/etc");
    }

  /* 4. Kernel interfaces and scratch space. */
  if (build_dev (rootfd, err) < 0)
    return ak_error_prefix (err, "/dev");
  if (mount_fresh (rootfd, "proc", 0755, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (mount_fresh (rootfd, "tmp", 01777, "tmpfs", MS_NOSUID | MS_NODEV, tmp_opts, err) < 0)
    return -1;

  /* 5. What the user shares. */
  homefd = ak_fs_ensure_dir (rootfd, home, 0755, err);
  if (homefd < 0)
    return -1;
  if (src->home_tree >= 0 && ak_mounts_attach (rootfd, src->home_tree, "home/user", true, err) < 0)
    return ak_error_prefix (err, "mount_home");
  if (src->cwd_tree >= 0 && ak_mounts_attach (rootfd, src->cwd_tree, "workspace", true, err) < 0)
    return ak_error_prefix (err, "mount_cwd");
  /* A pooled sandbox: the mount point its claim's workspace goes on. */
  if (src->cwd_tree < 0 && ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      _cleanup_close_ int ws = ak_fs_ensure_dir (rootfd, "workspace", 0755, err);
      if (ws < 0)
        return ak_error_prefix (err, "mount_cwd");
    }
  for (size_t i = 0; i < spec->n_mounts; i++)
    if (ak_mounts_attach (rootfd, src->vol_trees[i], spec->mounts[i].dest, false, err) < 0)
      return ak_error_prefix (err, "volume %s", spec->mounts[i].dest);
  if (ak_hide_private (spec, src, err) < 0)
    return -1;
  for (size_t i = 0; i < spec->n_files; i++)
    if (inject_file (rootfd, src->file_fds[i], spec->files[i].dest, err) < 0)
      return ak_error_prefix (err, "[[files]] %s", spec->files[i].dest);

  /* 6. read_only: the root and everything in it that is not scratch space. */
  if (ro && set_attr (NEWROOT, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false, err) < 0)
    return -1;

  /* 7. The command policy: blocked programs covered, the execute rights
   * decided on the files of the finished view (enforced with Landlock). */
  if (ak_execpolicy_prepare (rootfd, spec, AK_EXECPOLICY_USERNS, false, exec_ruleset, exec_info, err) < 0)
    return -1;

  /* 8. Detach the host and enter the new root. */
  if (umount2 ("/oldroot", MNT_DETACH) < 0)
    return ak_error_set (err, errno, "detach host tree");
  if (chdir (NEWROOT) < 0 || ak_pivot_root (".", ".") < 0 || umount2 (".", MNT_DETACH) < 0
      || chdir ("/") < 0)
    return ak_error_set (err, errno, "pivot_root into the sandbox root");
  return 0;
}
