/* What a share must not show: agentkernel's own files and the caller's
 * credential stores.
 *
 * A share (the workspace, home, a volume) shows a host directory whole.
 * When agentkernel's state (every sandbox's spec.json, with its -e values),
 * its audit log or its recordings lie beneath one, a sandbox could read
 * them; so could it read ~/.ssh or ~/.aws through the home share.  Each such
 * path is covered, inside the new root only, by an empty read-only
 * directory or file from the staging tmpfs.
 *
 * The paths are host paths, canonical (the service resolved them), and so
 * are the shares' sources: a hidden path is found beneath the share's own
 * mount (the tree opened in sources.c, now attached), by its path relative
 * to the share's root, through openat2 without following any symlink.  A
 * symlink where agentkernel's state should be cannot redirect the cover:
 * the start fails instead.  A credential store that is itself a symlink
 * (dotfiles kept elsewhere in home) has its target covered, resolved within
 * the share only.  A share that lies inside a hidden path is covered whole.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"

/* In the staging tmpfs, the root of the mount namespace while set-up runs:
 * never part of the new root. */
#define EMPTY_DIR "/.hidden-dir"
#define EMPTY_FILE "/.hidden-file"

/* A detached, read-only bind of an empty directory or file. */
static int
empty_tree (bool dir, ak_error_t **err)
{
  struct ak_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
                                            | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
  const char *path = dir ? EMPTY_DIR : EMPTY_FILE;
  _cleanup_close_ int tree = -1;

  if (dir && mkdir (path, 0555) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "create %s", path);
  if (!dir)
    {
      int fd = open (path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0444);
      if (fd < 0)
        return ak_error_set (err, errno, "create %s", path);
      close (fd);
    }
  tree = ak_open_tree (AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return ak_error_set (err, errno, "open %s", path);
  if (ak_mount_setattr (tree, "", AT_EMPTY_PATH, &attr) < 0)
    return ak_error_set (err, errno, "make %s read-only", path);
  return take_fd (&tree);
}

/* Covers the object open as target with an empty one of its kind. */
static int
cover (int target, const char *what, ak_error_t **err)
{
  _cleanup_close_ int tree = -1;
  struct stat st;

  if (fstat (target, &st) < 0)
    return ak_error_set (err, errno, "hide %s", what);
  tree = empty_tree (S_ISDIR (st.st_mode), err);
  if (tree < 0)
    return ak_error_prefix (err, "hide %s", what);
  if (ak_move_mount (tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return ak_error_set (err, errno, "hide %s", what);
  return 0;
}

/* What follows dir in path ("" when they are equal), both canonical; NULL
 * when path is not dir or beneath it. */
static const char *
beneath (const char *path, const char *dir)
{
  size_t n = strlen (dir);

  while (n > 0 && dir[n - 1] == '/')
    n--;
  if (strncmp (path, dir, n) != 0 || (path[n] != '\0' && path[n] != '/'))
    return NULL;
  while (path[n] == '/')
    n++;
  return path + n;
}

/* One hidden path against one share (host source `source`, attached mount
 * `tree`, shown at `dest`).  strict: agentkernel's own files, where a
 * symlink on the way is refused; otherwise a credential store, whose
 * symlink is followed within the share. */
static int
hide_in_share (const char *source, int tree, const char *dest, const char *path, bool strict,
               char *const *shared, ak_error_t **err)
{
  const char *rel;
  _cleanup_close_ int target = -1;

  if (source == NULL || tree < 0)
    return 0;
  /* The share lies inside the hidden path: nothing of it may show, unless
   * it is one of the directories below a shared path (a named volume). */
  if (beneath (source, path) != NULL)
    {
      for (char *const *s = shared; s && *s; s++)
        if ((rel = beneath (source, *s)) != NULL && rel[0] != '\0' && strchr (rel, '/') == NULL)
          return 0;
      return cover (tree, dest, err);
    }
  rel = beneath (path, source);
  if (rel == NULL)
    return 0;
  target = ak_fs_openat (tree, rel, O_PATH | O_CLOEXEC, 0, AK_FS_NO_SYMLINKS);
  if (target < 0 && errno == ELOOP && !strict)
    target = ak_fs_openat (tree, rel, O_PATH | O_CLOEXEC, 0, AK_FS_IN_ROOT);
  if (target < 0 && (errno == ENOENT || errno == ENOTDIR))
    return 0; /* nothing there to show */
  if (target < 0)
    return ak_error_set (err, errno, "hide %s in %s%s", path, dest,
                         errno == ELOOP ? " (a symlink is on its way; refusing to show it)" : "");
  return cover (target, path, err);
}

static int
hide_everywhere (const ak_spec_t *spec, const ak_sources_t *src, const char *path, bool strict,
                 ak_error_t **err)
{
  if (hide_in_share (spec->home, src->home_tree, "/home/user", path, strict, NULL, err) < 0
      || hide_in_share (spec->cwd, src->cwd_tree, "/workspace", path, strict, NULL, err) < 0)
    return -1;
  for (size_t i = 0; i < spec->n_mounts && i < src->n_vols; i++)
    if (hide_in_share (spec->mounts[i].source, src->vol_trees[i], spec->mounts[i].dest, path,
                       strict, spec->shared_paths, err)
        < 0)
      return -1;
  return 0;
}

int
ak_hide_private (const ak_spec_t *spec, const ak_sources_t *src, ak_error_t **err)
{
  for (char **p = spec->private_paths; p != NULL && *p != NULL; p++)
    if (hide_everywhere (spec, src, *p, true, err) < 0)
      return -1;
  if (spec->show_credentials || spec->home == NULL || spec->home[0] != '/')
    return 0;
  for (const char *const *c = ak_credential_paths; *c != NULL; c++)
    {
      _cleanup_free_ char *path = ak_xasprintf ("%s/%s", spec->home, *c);
      if (hide_everywhere (spec, src, path, false, err) < 0)
        return ak_error_prefix (err, "credentials (to show them: [security] hide_credentials = "
                                     "false)");
    }
  return 0;
}
