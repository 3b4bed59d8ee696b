/* Host sources: the directories and files of the caller that a sandbox shows.
 *
 * They are opened as detached mount trees (open_tree) or plain fds while
 * still running with the caller's own permissions, so the sandbox never
 * needs to be able to name a host path: later steps attach what was opened
 * here, and nothing else of the host is reachable.  When agentkernel runs as
 * root, the trees are idmapped so that their owner appears as the sandbox
 * user and files it creates belong to that owner on the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

void
ak_sources_init (ak_sources_t *s)
{
  memset (s, 0, sizeof (*s));
  s->cwd_tree = -1;
  s->home_tree = -1;
  s->persist_tree = -1;
}

void
ak_sources_close (ak_sources_t *s)
{
  ak_closep (&s->cwd_tree);
  ak_closep (&s->home_tree);
  ak_closep (&s->persist_tree);
  for (size_t i = 0; i < s->n_vols; i++)
    ak_closep (&s->vol_trees[i]);
  for (size_t i = 0; i < s->n_files; i++)
    ak_closep (&s->file_fds[i]);
  free (s->vol_trees);
  free (s->file_fds);
  ak_sources_init (s);
}

static int
open_tree_of (const char *path, const ak_ids_t *ids, bool idmap, bool read_only, ak_error_t **err)
{
  _cleanup_close_ int tree = -1;
  /* Private: a clone of a shared mount stays in the host mount's peer
   * group, and whatever set-up mounts beneath it (a persistent root's /dev,
   * a volume inside the workspace) would also appear on the host. */
  struct ak_mount_attr attr = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                                .propagation = MS_PRIVATE };
  struct stat st;

  tree = ak_open_tree (AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
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

int
ak_sources_open (const ak_spec_t *spec, const ak_ids_t *ids, bool idmap, const char *persist,
                 ak_sources_t *s, ak_error_t **err)
{
  /* Owned by the sandbox's own host id already: no idmap. */
  if (persist != NULL)
    {
      s->persist_tree = open_tree_of (persist, ids, false, false, err);
      if (s->persist_tree < 0)
        return ak_error_prefix (err, "sandbox state");
    }
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      s->cwd_tree = open_tree_of (spec->cwd, ids, idmap, false, err);
      if (s->cwd_tree < 0)
        return ak_error_prefix (err, "mount_cwd");
    }
  if (ak_spec_sec (spec, AK_SEC_MOUNT_HOME) && spec->home != NULL)
    {
      s->home_tree = open_tree_of (spec->home, ids, idmap, true, err);
      if (s->home_tree < 0)
        return ak_error_prefix (err, "mount_home");
    }
  s->vol_trees = ak_xcalloc (spec->n_mounts, sizeof (int));
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      const ak_mount_t *m = &spec->mounts[i];
      struct stat st;
      /* A single file is bind-mounted as is; a directory as a tree. */
      if (stat (m->source, &st) == 0 && !S_ISDIR (st.st_mode))
        s->vol_trees[i] = open_tree_of (m->source, ids, false, m->read_only, err);
      else
        s->vol_trees[i] = open_tree_of (m->source, ids, idmap && !m->read_only, m->read_only, err);
      s->n_vols = i + 1;
      if (s->vol_trees[i] < 0)
        return ak_error_prefix (err, "volume %s", m->source);
    }
  s->file_fds = ak_xcalloc (spec->n_files, sizeof (int));
  for (size_t i = 0; i < spec->n_files; i++)
    {
      struct stat st;
      s->file_fds[i] = open (spec->files[i].source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
      s->n_files = i + 1;
      if (s->file_fds[i] < 0)
        return ak_error_set (err, errno, "file %s", spec->files[i].source);
      if (fstat (s->file_fds[i], &st) < 0 || !S_ISREG (st.st_mode))
        return ak_error_set (err, 0, "file %s: not a regular file", spec->files[i].source);
    }
  return 0;
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
  s->vol_trees = ak_xcalloc (spec->n_mounts, sizeof (int));
  for (size_t i = 0; i < spec->n_mounts; i++)
    s->vol_trees[i] = k < n ? fds[k++] : -1;
  s->n_vols = spec->n_mounts;
  s->file_fds = ak_xcalloc (spec->n_files, sizeof (int));
  for (size_t i = 0; i < spec->n_files; i++)
    s->file_fds[i] = k < n ? fds[k++] : -1;
  s->n_files = spec->n_files;
}
