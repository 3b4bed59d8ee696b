/* Landlock: the sandbox's file access confined to its own view.
 *
 * Mounts already decide what exists inside; Landlock makes the kernel
 * enforce, per process and irrevocably, what may be done with it: the root is
 * read/execute only (or writable only where a private layer backs it), no
 * device node can be created anywhere, device ioctls only under /dev, and
 * (ABI 6) no signals or abstract-socket connections leave the sandbox.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

/* Newer than the installed UAPI headers. */
#define LL_FS_TRUNCATE (1ULL << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)  /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

#define FS_READ                                                                            \
  (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_WRITE                                                                           \
  (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR                           \
   | LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG \
   | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM \
   | LANDLOCK_ACCESS_FS_REFER | LL_FS_TRUNCATE)

int
ak_landlock_abi (void)
{
  int abi;

  if (ak_test_disabled ("landlock"))
    return 0;
  abi = ak_landlock_create_ruleset (NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : abi;
}

static uint64_t
fs_mask_for_abi (int abi)
{
  uint64_t all = FS_READ | FS_WRITE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK
                 | LL_FS_IOCTL_DEV;
  if (abi < 2)
    all &= ~(uint64_t) LANDLOCK_ACCESS_FS_REFER;
  if (abi < 3)
    all &= ~LL_FS_TRUNCATE;
  if (abi < 5)
    all &= ~LL_FS_IOCTL_DEV;
  return all;
}

static int
allow (int ruleset, const char *path, uint64_t access, uint64_t handled, ak_error_t **err)
{
  struct landlock_path_beneath_attr pb = { .allowed_access = access & handled };
  _cleanup_close_ int fd = open (path, O_PATH | O_CLOEXEC);

  if (fd < 0)
    {
      if (errno == ENOENT)
        return 0;
      return ak_error_set (err, errno, "landlock: open %s", path);
    }
  /* A file (a volume of one file) takes only the rights that apply to
   * files; the kernel refuses directory rights on it. */
  {
    struct stat st;
    if (fstat (fd, &st) == 0 && !S_ISDIR (st.st_mode))
      pb.allowed_access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE
                           | LANDLOCK_ACCESS_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
  }
  pb.parent_fd = fd;
  if (ak_landlock_add_rule (ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
    return ak_error_set (err, errno, "landlock: add rule for %s", path);
  return 0;
}

int
ak_landlock_apply (const ak_spec_t *spec, ak_error_t **err)
{
  int abi = ak_landlock_abi ();
  struct ll_ruleset_attr attr = { 0 };
  _cleanup_close_ int rs = -1;
  uint64_t handled;
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);

  if (abi <= 0)
    return 1;
  handled = fs_mask_for_abi (abi);
  attr.handled_access_fs = handled;
  if (abi >= 6)
    attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
  rs = ak_landlock_create_ruleset ((const struct landlock_ruleset_attr *) &attr,
                                   abi >= 6 ? sizeof attr : 2 * sizeof (uint64_t), 0);
  if (rs < 0 && abi < 6)
    rs = ak_landlock_create_ruleset ((const struct landlock_ruleset_attr *) &attr, sizeof (uint64_t), 0);
  if (rs < 0)
    return ak_error_set (err, errno, "landlock: create ruleset");

  /* The private writable layer may be written anywhere; a read-only root
   * only in its scratch space and what the user shares read-write. */
  if (allow (rs, "/", ro ? FS_READ : FS_READ | FS_WRITE, handled, err) < 0)
    return -1;
  if (allow (rs, "/dev", FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LL_FS_IOCTL_DEV, handled, err) < 0)
    return -1;
  if (ro)
    {
      if (allow (rs, "/tmp", FS_READ | FS_WRITE, handled, err) < 0
          || allow (rs, "/dev/shm", FS_READ | FS_WRITE, handled, err) < 0)
        return -1;
      if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD)
          && allow (rs, "/workspace", FS_READ | FS_WRITE, handled, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < spec->n_mounts; i++)
    if (!spec->mounts[i].read_only
        && allow (rs, spec->mounts[i].dest, FS_READ | FS_WRITE, handled, err) < 0)
      return -1;
  if (ak_landlock_restrict_self (rs, 0) < 0)
    return ak_error_set (err, errno, "landlock: restrict self");
  return 0;
}
