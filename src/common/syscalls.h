/* Raw system calls that glibc 2.36 does not wrap (or wraps awkwardly).
 *
 * Each returns -1 with errno set like a libc wrapper; where the kernel lacks
 * the call, errno is ENOSYS and callers fall back or report what is missing.
 */
#ifndef AK_SYSCALLS_H
#define AK_SYSCALLS_H

#include <errno.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* fork()-like clone: returns 0 in the child.  With CLONE_PIDFD the parent
 * receives a pidfd in *pidfd. */
static inline pid_t
ak_raw_clone (unsigned long flags, int *pidfd)
{
  return (pid_t) syscall (SYS_clone, flags | SIGCHLD, NULL, pidfd, NULL, NULL);
}

static inline int
ak_pivot_root (const char *new_root, const char *put_old)
{
  return (int) syscall (SYS_pivot_root, new_root, put_old);
}

static inline int
ak_pidfd_send_signal (int pidfd, int sig)
{
  return (int) syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

struct ak_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

static inline int
ak_open_tree (int dfd, const char *path, unsigned flags)
{
  return (int) syscall (SYS_open_tree, dfd, path, flags);
}

static inline int
ak_move_mount (int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags)
{
  return (int) syscall (SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static inline int
ak_mount_setattr (int dfd, const char *path, unsigned flags, struct ak_mount_attr *attr)
{
  return (int) syscall (SYS_mount_setattr, dfd, path, flags, attr, sizeof (*attr));
}

static inline int
ak_fsopen (const char *fstype, unsigned flags)
{
  return (int) syscall (SYS_fsopen, fstype, flags);
}

static inline int
ak_fsconfig (int fd, unsigned cmd, const char *key, const void *value, int aux)
{
  return (int) syscall (SYS_fsconfig, fd, cmd, key, value, aux);
}

static inline int
ak_fsmount (int fd, unsigned flags, unsigned attr_flags)
{
  return (int) syscall (SYS_fsmount, fd, flags, attr_flags);
}

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

static inline int
ak_landlock_create_ruleset (const struct landlock_ruleset_attr *attr, size_t size, uint32_t flags)
{
  return (int) syscall (SYS_landlock_create_ruleset, attr, size, flags);
}

static inline int
ak_landlock_add_rule (int fd, int type, const void *attr, uint32_t flags)
{
  return (int) syscall (SYS_landlock_add_rule, fd, type, attr, flags);
}

static inline int
ak_landlock_restrict_self (int fd, uint32_t flags)
{
  return (int) syscall (SYS_landlock_restrict_self, fd, flags);
}

#endif
