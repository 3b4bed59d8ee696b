/* Seccomp: the system calls a sandbox may never make, per profile.
 *
 * Default allow, with a deny list that grows as the profile tightens.  Denied
 * calls fail with EPERM (ENOSYS for clone3, so libc falls back to clone,
 * whose flags the filter can inspect); calls from a foreign ABI (i386, x32)
 * kill the process, since they would bypass the whole list.
 *
 * Every profile: the mount API and namespace creation/entry (they reopen
 * what the mount and user namespaces closed), kernel keyrings, BPF,
 * perf_event_open, kexec, io_uring (a second syscall surface the filter
 * cannot see into), module loading, reboot, setting clocks, swap, acct,
 * quotactl, syslog, userfaultfd, open_by_handle_at, raw port I/O, and the
 * TIOCSTI/TIOCLINUX ioctls that would let the sandbox type into the user's
 * terminal.  Moderate and restrictive add ptrace and reading or writing
 * other processes' memory; restrictive also refuses exotic socket families
 * and device-node creation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

static const char *const deny_always[] = {
  "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
  "fsmount", "fspick", "mount_setattr", "chroot", "unshare", "setns", "keyctl", "add_key",
  "request_key", "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "io_uring_setup",
  "io_uring_enter", "io_uring_register", "init_module", "finit_module", "delete_module",
  "create_module", "reboot", "settimeofday", "stime", "clock_settime", "clock_adjtime",
  "adjtimex", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "userfaultfd",
  "open_by_handle_at", "lookup_dcookie", "iopl", "ioperm", "vhangup", "uselib", "nfsservctl",
  "fanotify_init", "sethostname", "setdomainname", NULL,
};

static const char *const deny_moderate[] = {
  "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "personality", NULL,
};

static const char *const deny_restrictive[] = { "mknod", "mknodat", NULL };

/* Socket families an untrusted program has no business opening. */
static const int exotic_families[] = {
  AF_PACKET, AF_KEY, AF_ALG, AF_VSOCK, AF_BLUETOOTH, AF_TIPC, AF_RDS, AF_XDP, AF_NFC,
  AF_CAN,    AF_LLC, AF_X25, AF_AX25, AF_APPLETALK, AF_IPX, AF_DECnet, AF_PPPOX, AF_ATMPVC,
  AF_ATMSVC, AF_IRDA, AF_NETROM, AF_ROSE, AF_ISDN, AF_PHONET, AF_IEEE802154, AF_CAIF,
  AF_KCM, AF_QIPCRTR, AF_SMC, AF_MCTP,
};

static const unsigned long ns_flags[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
  CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME,
};

static int
deny_list (scmp_filter_ctx ctx, const char *const *names, ak_error_t **err)
{
  for (; *names; names++)
    {
      int nr = seccomp_syscall_resolve_name (*names);
      int rc;
      if (nr == __NR_SCMP_ERROR)
        continue; /* not a syscall on this architecture */
      rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 0);
      if (rc < 0)
        return ak_error_set (err, -rc, "seccomp: deny %s", *names);
    }
  return 0;
}

static int
build (scmp_filter_ctx ctx, ak_profile_t profile, ak_error_t **err)
{
  int rc;

  if (deny_list (ctx, deny_always, err) < 0)
    return -1;
  if (profile != AK_PROFILE_PERMISSIVE && deny_list (ctx, deny_moderate, err) < 0)
    return -1;
  if (profile == AK_PROFILE_RESTRICTIVE && deny_list (ctx, deny_restrictive, err) < 0)
    return -1;

  rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (ENOSYS), SCMP_SYS (clone3), 0);
  for (size_t i = 0; rc == 0 && i < sizeof ns_flags / sizeof ns_flags[0]; i++)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (clone), 1,
                           SCMP_A0 (SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX));
  if (profile == AK_PROFILE_RESTRICTIVE)
    for (size_t i = 0; rc == 0 && i < sizeof exotic_families / sizeof exotic_families[0]; i++)
      rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
                             SCMP_A0 (SCMP_CMP_EQ, (scmp_datum_t) exotic_families[i]));
  if (rc < 0)
    return ak_error_set (err, -rc, "seccomp: add argument rule");
  return 0;
}

int
ak_seccomp_compile (ak_profile_t profile, ak_error_t **err)
{
  scmp_filter_ctx ctx;
  _cleanup_close_ int mfd = -1;
  int rc;

  ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx == NULL)
    return ak_error_set (err, ENOMEM, "seccomp: init");
  rc = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0)
    {
      seccomp_release (ctx);
      return ak_error_set (err, -rc, "seccomp: set attributes");
    }
  if (build (ctx, profile, err) < 0)
    {
      seccomp_release (ctx);
      return -1;
    }
  /* Export the BPF into a sealed memfd the init only has to load. */
  mfd = memfd_create ("ak-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    {
      seccomp_release (ctx);
      return ak_error_set (err, errno, "seccomp: memfd");
    }
  rc = seccomp_export_bpf (ctx, mfd);
  seccomp_release (ctx);
  if (rc < 0)
    return ak_error_set (err, -rc, "seccomp: export filter");
  if (fcntl (mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return ak_error_set (err, errno, "seccomp: seal filter");
  return take_fd (&mfd);
}

int
ak_seccomp_load (int fd, ak_error_t **err)
{
  struct sock_fprog prog;
  _cleanup_free_ struct sock_filter *filter = NULL;
  off_t size = lseek (fd, 0, SEEK_END);

  if (size <= 0 || size % (off_t) sizeof (struct sock_filter) != 0 || size > 65536)
    return ak_error_set (err, EINVAL, "seccomp: filter has size %lld", (long long) size);
  filter = ak_xmalloc ((size_t) size);
  if (pread (fd, filter, (size_t) size, 0) != size)
    return ak_error_set (err, errno, "seccomp: read filter");
  prog.len = (unsigned short) (size / (off_t) sizeof (struct sock_filter));
  prog.filter = filter;
  if (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
    return ak_error_set (err, errno, "seccomp: load filter (the kernel needs CONFIG_SECCOMP_FILTER)");
  return 0;
}
