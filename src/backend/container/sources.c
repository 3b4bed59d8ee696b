/* Host sources: the directories and files of the caller that a sandbox shows.
 *
 * They are opened as detached mount trees (open_tree) or plain fds while
 * still running with the caller's own permissions, so the sandbox never
 * needs to be able to name a host path: later steps attach what was opened
 * here, and nothing else of the host is reachable.  Each is opened by its
 * canonical path without following symlinks and compared with the identity
 * recorded at create (ak_spec_pin_sources), so a source swapped for a
 * symlink after create is refused, never followed.  When agentkernel runs
 * as root, the trees are idmapped so that their owner appears as the
 * sandbox user and files it creates belong to that owner on the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"

void
ak_sources_init (ak_sources_t *s)
{
  memset (s, 0, sizeof (*s));
  s->cwd_tree = -1;
  s->home_tree = -1;
  s->persist_tree = -1;
  s->rootfs_tree = -1;
}

void
ak_sources_close (ak_sources_t *s)
{
  ak_closep (&s->cwd_tree);
  ak_closep (&s->home_tree);
  ak_closep (&s->persist_tree);
  ak_closep (&s->rootfs_tree);
  for (size_t i = 0; i < s->n_layers; i++)
    ak_closep (&s->layer_trees[i]);
  free (s->layer_trees);
  for (size_t i = 0; i < s->n_vols; i++)
    ak_closep (&s->vol_trees[i]);
  for (size_t i = 0; i < s->n_files; i++)
    ak_closep (&s->file_fds[i]);
  free (s->vol_trees);
  free (s->file_fds);
  ak_sources_init (s);
}

/* A detached mount tree of the object open as fd. */
static int
tree_of (int fd, const char *path, const ak_ids_t *ids, bool idmap, bool read_only, ak_error_t **err)
{
  _cleanup_close_ int tree = -1;
  /* Private: a clone of a shared mount stays in the host mount's peer
   * group, and whatever set-up mounts beneath it (a persistent root's /dev,
   * a volume inside the workspace) would also appear on the host. */
  struct ak_mount_attr attr = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                                .propagation = MS_PRIVATE };
  struct stat st;

  tree = ak_open_tree (fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
  if (tree < 0)
    {
      if (errno == ENOSYS)
        return ak_error_set (err, 0, "the kernel lacks open_tree (Linux 5.2 or later is needed)");
      return ak_error_set (err, errno, "open %s", path);
    }
  if (read_only)
    attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (ak_mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0)
    return ak_error_set (err, errno, "set mount flags on %s", path);
  if (idmap)
    {
      _cleanup_close_ int userns = -1;
      if (fstat (tree, &st) < 0)
        return ak_error_set (err, errno, "stat %s", path);
      userns = ak_userns_idmap_fd (st.st_uid, st.st_gid, ids, err);
      if (userns < 0)
        return ak_error_prefix (err, "idmap %s", path);
      attr = (struct ak_mount_attr){ .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) userns };
      /* Idmapping applies to the top mount only: submounts keep host ids,
       * which the sandbox user can at most read. */
      if (ak_mount_setattr (tree, "", AT_EMPTY_PATH, &attr) < 0)
        return ak_error_set (err, errno == EINVAL ? 0 : errno,
                             "%s: its filesystem does not support idmapped mounts, which sharing a "
                             "directory needs when agentkernel runs as root; run agentkernel as "
                             "the directory's owner instead%s",
                             path, errno == EINVAL ? "" : " (mount_setattr failed)");
    }
  return take_fd (&tree);
}

/* A host source, opened without following any symlink and checked against
 * the identity recorded when the sandbox was created: the path is only a
 * name, and what it names now may be what the sandbox (which can write the
 * workspace) made of it since.  A persistent sandbox must have identities
 * (pinned); an ephemeral run, whose spec was resolved moments ago, pins its
 * sources here. */
static int
open_source (const char *path, const ak_fs_id_t *pin, bool pinned, int flags, const char *what,
             ak_error_t **err)
{
  ak_fs_id_t now;
  _cleanup_free_ char *canon = NULL;
  int fd;

  if (pin->type != 0)
    return ak_fs_open_pinned (path, pin, flags, what, err);
  if (pinned)
    return ak_error_set (err, 0,
                         "%s %s: this sandbox was created by an older agentkernel, which did not "
                         "record what its host sources are; re-create it (agentkernel remove, then "
                         "create) to start it",
                         what, path);
  fd = ak_fs_pin (path, &now, &canon, err);
  if (fd < 0)
    return ak_error_prefix (err, "%s", what);
  close (fd);
  return ak_fs_open_pinned (canon, &now, flags, what, err);
}

/* A directory or file source as a detached tree. */
static int
open_tree_source (const char *path, const ak_fs_id_t *pin, bool pinned, const ak_ids_t *ids,
                  bool idmap, bool read_only, const char *what, ak_error_t **err)
{
  _cleanup_close_ int fd = open_source (path, pin, pinned, O_PATH, what, err);
  struct stat st;

  if (fd < 0)
    return -1;
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s %s", what, path);
  /* A single file is bind-mounted as is; a directory as a tree. */
  return tree_of (fd, path, ids, idmap && S_ISDIR (st.st_mode), read_only, err);
}

/* disk_mb for a persistent sandbox (root only): its writable layers live
 * in an ext4 file system of exactly that size, in an image file beside the
 * state directory (made at the first start), mounted through a loop device
 * as a detached mount that the host's mount table never shows; the loop
 * device goes with the mount (autoclear). */
static int
persist_disk (const char *persist, const ak_spec_t *spec, const ak_ids_t *ids, ak_error_t **err)
{
  _cleanup_free_ char *img = ak_xasprintf ("%s.img", persist);
  _cleanup_close_ int fd = -1, ctl = -1, loop = -1, fs = -1, root = -1;
  _cleanup_free_ char *dev = NULL;
  uint64_t size = (uint64_t) spec->res.disk_mb << 20;
  struct stat st;
  int mnt;

  fd = open (img, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "disk_mb: %s", img);
  if (!S_ISREG (st.st_mode))
    return ak_error_set (err, 0, "disk_mb: %s is not a regular file", img);
  if (st.st_size == 0)
    {
      _cleanup_free_ char *owner = ak_xasprintf ("root_owner=%u:%u", ids->host_uid, ids->host_gid);
      _cleanup_free_ char *path = ak_xasprintf ("/proc/self/fd/%d", fd);
      char *const argv[] = { (char *) "mke2fs", (char *) "-q", (char *) "-F", (char *) "-t", (char *) "ext4",
                             (char *) "-m", (char *) "0", (char *) "-E", owner, path, NULL };
      pid_t pid;
      int status = 0;
      if (ftruncate (fd, (off_t) size) < 0)
        return ak_error_set (err, errno, "disk_mb: size %s", img);
      pid = fork ();
      if (pid < 0)
        return ak_error_set (err, errno, "fork");
      if (pid == 0)
        {
          int null = open ("/dev/null", O_RDWR);
          if (null >= 0)
            dup2 (null, 0), dup2 (null, 1);
          fcntl (fd, F_SETFD, 0);
          execvp ("mke2fs", argv);
          execv ("/sbin/mke2fs", argv);
          _exit (127);
        }
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        {
          (void) !ftruncate (fd, 0);
          return ak_error_set (err, 0,
                               "disk_mb: making the file system failed (mke2fs %s; install e2fsprogs)",
                               WIFEXITED (status) && WEXITSTATUS (status) == 127 ? "not found" : "failed");
        }
    }
  else if ((uint64_t) st.st_size != size)
    return ak_error_set (err, 0, "disk_mb: %s is not %u MiB", img, spec->res.disk_mb);

  ctl = open ("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0)
    return ak_error_set (err, errno, "disk_mb needs loop devices (/dev/loop-control: modprobe loop)");
  for (int tries = 0; loop < 0 && tries < 16; tries++)
    {
      struct loop_config cfg = { .fd = (uint32_t) fd, .info = { .lo_flags = LO_FLAGS_AUTOCLEAR } };
      long n = ioctl (ctl, LOOP_CTL_GET_FREE);
      if (n < 0)
        return ak_error_set (err, errno, "disk_mb: no free loop device");
      free (dev);
      dev = ak_xasprintf ("/dev/loop%ld", n);
      loop = open (dev, O_RDWR | O_CLOEXEC);
      if (loop < 0)
        return ak_error_set (err, errno, "disk_mb: %s", dev);
      if (ioctl (loop, LOOP_CONFIGURE, &cfg) < 0)
        {
          int e = errno;
          ak_closep (&loop);
          if (e != EBUSY)
            return ak_error_set (err, e, "disk_mb: attach %s to %s", img, dev);
        }
    }
  if (loop < 0)
    return ak_error_set (err, EBUSY, "disk_mb: no loop device could be attached");
  fs = ak_fsopen ("ext4", FSOPEN_CLOEXEC);
  if (fs < 0 || ak_fsconfig (fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0
      || ak_fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return ak_error_set (err, errno, "disk_mb: mount the file system of %s", img);
  mnt = ak_fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (mnt < 0)
    return ak_error_set (err, errno, "disk_mb: mount the file system of %s", img);
  /* The layers' directories, as prepare_persist makes them. */
  root = openat (mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int i = 0; root >= 0 && i < 3; i++)
    {
      static const char *const sub[] = { "root", "upper", "work" };
      _cleanup_close_ int d = -1;
      if (mkdirat (root, sub[i], i == 0 ? 0755 : 0700) < 0 && errno != EEXIST)
        break;
      d = openat (root, sub[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (d < 0 || fchown (d, ids->host_uid, ids->host_gid) < 0)
        {
          close (mnt);
          return ak_error_set (err, errno, "disk_mb: %s in %s", sub[i], img);
        }
    }
  if (root < 0)
    {
      close (mnt);
      return ak_error_set (err, errno, "disk_mb: open the file system of %s", img);
    }
  return mnt;
}

int
ak_sources_open (const ak_spec_t *spec, const ak_ids_t *ids, bool idmap, const char *persist,
                 ak_sources_t *s, ak_error_t **err)
{
  /* A persistent sandbox (one with a state directory) was created earlier:
   * each source must still be what create recorded. */
  bool pinned = persist != NULL;

  /* Owned by the sandbox's own host id already: no idmap. */
  if (persist != NULL && spec->res.disk_mb > 0)
    {
      s->persist_tree = persist_disk (persist, spec, ids, err);
      if (s->persist_tree < 0)
        return ak_error_prefix (err, "sandbox state");
    }
  else if (persist != NULL)
    {
      _cleanup_close_ int fd = open (persist, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      s->persist_tree = fd < 0 ? ak_error_set (err, errno, "open %s", persist)
                               : tree_of (fd, persist, ids, false, false, err);
      if (s->persist_tree < 0)
        return ak_error_prefix (err, "sandbox state");
    }
  if (spec->rootfs != NULL)
    {
      /* The lower layer of the root overlay: read-only, never idmapped. */
      s->rootfs_tree = open_tree_source (spec->rootfs, &spec->rootfs_pin, pinned, ids, false, true,
                                         "rootfs", err);
      if (s->rootfs_tree < 0)
        return -1;
    }
  /* An image's layers: agentkernel's own store, read-only.  Run by root,
   * what the image gives to root is shown as the sandbox user's (the only
   * id it has), so the image is usable and its upper layer writable. */
  s->layer_trees = ak_xcalloc (ak_strv_len (spec->image_layer_dirs) + 1, sizeof (int));
  for (char **d = spec->image_layer_dirs; d != NULL && *d != NULL; d++)
    {
      _cleanup_close_ int fd = open (*d, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int t = fd < 0 ? ak_error_set (err, errno, "image layer %s", *d)
                     : tree_of (fd, *d, ids, idmap, true, err);
      if (t < 0)
        return ak_error_prefix (err, "image %s", spec->image);
      s->layer_trees[s->n_layers++] = t;
    }
  /* A pooled sandbox has none yet: its claim brings it. */
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD) && spec->cwd != NULL)
    {
      s->cwd_tree = open_tree_source (spec->cwd, &spec->cwd_pin, pinned, ids, idmap, false,
                                      "mount_cwd: workspace", err);
      if (s->cwd_tree < 0)
        return -1;
    }
  if (ak_spec_sec (spec, AK_SEC_MOUNT_HOME) && spec->home != NULL)
    {
      s->home_tree = open_tree_source (spec->home, &spec->home_pin, pinned, ids, idmap, true,
                                       "mount_home: home", err);
      if (s->home_tree < 0)
        return -1;
    }
  s->vol_trees = ak_xcalloc (spec->n_mounts, sizeof (int));
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      const ak_mount_t *m = &spec->mounts[i];
      s->vol_trees[i] = open_tree_source (m->source, &m->pin, pinned, ids, idmap && !m->read_only,
                                          m->read_only, "volume", err);
      s->n_vols = i + 1;
      if (s->vol_trees[i] < 0)
        return -1;
    }
  s->file_fds = ak_xcalloc (spec->n_files, sizeof (int));
  for (size_t i = 0; i < spec->n_files; i++)
    {
      struct stat st;
      s->file_fds[i] = open_source (spec->files[i].source, &spec->files[i].pin, pinned, O_RDONLY,
                                    "[[files]] source", err);
      s->n_files = i + 1;
      if (s->file_fds[i] < 0)
        return -1;
      if (fstat (s->file_fds[i], &st) < 0 || !S_ISREG (st.st_mode))
        return ak_error_set (err, 0, "file %s: not a regular file", spec->files[i].source);
    }
  return 0;
}

int
ak_sources_open_workspace (const char *path, const ak_fs_id_t *pin, const ak_ids_t *ids, bool idmap,
                           ak_error_t **err)
{
  return open_tree_source (path, pin, true, ids, idmap, false, "mount_cwd: workspace", err);
}

size_t
ak_sources_count (const ak_spec_t *spec)
{
  return 4 + ak_strv_len (spec->image_layer_dirs) + spec->n_mounts + spec->n_files;
}

size_t
ak_sources_fds (const ak_sources_t *s, int *fds, size_t max)
{
  size_t n = 0;
  if (n < max)
    fds[n++] = s->cwd_tree;
  if (n < max)
    fds[n++] = s->home_tree;
  if (n < max)
    fds[n++] = s->persist_tree;
  if (n < max)
    fds[n++] = s->rootfs_tree;
  for (size_t i = 0; i < s->n_layers && n < max; i++)
    fds[n++] = s->layer_trees[i];
  for (size_t i = 0; i < s->n_vols && n < max; i++)
    fds[n++] = s->vol_trees[i];
  for (size_t i = 0; i < s->n_files && n < max; i++)
    fds[n++] = s->file_fds[i];
  return n;
}

void
ak_sources_from_fds (const ak_spec_t *spec, const int *fds, size_t n, ak_sources_t *s)
{
  size_t k = 0;
  ak_sources_init (s);
  s->cwd_tree = k < n ? fds[k++] : -1;
  s->home_tree = k < n ? fds[k++] : -1;
  s->persist_tree = k < n ? fds[k++] : -1;
  s->rootfs_tree = k < n ? fds[k++] : -1;
  s->n_layers = ak_strv_len (spec->image_layer_dirs);
  s->layer_trees = ak_xcalloc (s->n_layers + 1, sizeof (int));
  for (size_t i = 0; i < s->n_layers; i++)
    s->layer_trees[i] = k < n ? fds[k++] : -1;
  s->vol_trees = ak_xcalloc (spec->n_mounts, sizeof (int));
  for (size_t i = 0; i < spec->n_mounts; i++)
    s->vol_trees[i] = k < n ? fds[k++] : -1;
  s->n_vols = spec->n_mounts;
  s->file_fds = ak_xcalloc (spec->n_files, sizeof (int));
  for (size_t i = 0; i < spec->n_files; i++)
    s->file_fds[i] = k < n ? fds[k++] : -1;
  s->n_files = spec->n_files;
}
