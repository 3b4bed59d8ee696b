/* Seccomp: the system calls a sandbox may make, per profile.
 *
 * One program in two parts, run in turn:
 *
 * - The gate decides by number alone.  It has a rule for every system call
 *   known when this file was last reviewed (up to AK_SECCOMP_NR_MAX):
 *   permissive and moderate allow all of them but a deny list; restrictive
 *   allows only what shells, coreutils, compilers, interpreters and git
 *   need, and refuses the rest with EPERM; ai-agent allows that and what
 *   coding agents' toolchains add (see ai_agent_allow).  Anything it has no rule for, in
 *   particular every system call added to the kernel later, gets ENOSYS as
 *   from an older kernel: libc falls back to what it replaced, and a kernel
 *   upgrade cannot open a way around a rule (as clone3 did around clone's
 *   flags, or openat2 around open's mode).
 * - The argument rules then look inside what the gate let through.
 *
 * Calls from a foreign ABI (i386, x32) kill the process, since they would
 * bypass the whole list.
 *
 * Refused in every profile: the mount API and namespace creation/entry (they
 * reopen what the mount and user namespaces closed), kernel keyrings, BPF,
 * perf_event_open, kexec, io_uring (a second syscall surface the filter
 * cannot see into), module loading, reboot, setting clocks, swap, acct,
 * quotactl, syslog, userfaultfd, open_by_handle_at, raw port I/O, and the
 * TIOCSTI/TIOCLINUX ioctls that would let the sandbox type into the user's
 * terminal.  This is the floor: the permissive filter is exactly it, and a
 * custom profile (seccomp_custom.c) is installed on top of it.  Moderate,
 * ai-agent and restrictive add ptrace and reading or writing other
 * processes' memory; ai-agent and restrictive also refuse socket families
 * other than Unix, IPv4, IPv6 and netlink; restrictive refuses mknod.
 *
 * No set-id bits across the boundary.  A shared directory's files belong on
 * the host to whoever owns them there (root, for root's workspace, through
 * the idmapped mount), so a set-id bit set inside would hand any local user
 * that owner's ids.  Refused with EPERM: chmod, fchmod, fchmodat and
 * fchmodat2 with S_ISUID or S_ISGID; open, openat and creat creating a file
 * (O_CREAT, O_TMPFILE) with either; mknod and mknodat of anything but a
 * regular file, FIFO or socket, or with either bit.  openat2 gets ENOSYS: its
 * mode lies in a struct the filter cannot read; glibc 2.36 never uses it for
 * open() or openat(), and programs that call it directly fall back to openat
 * as on kernels before 5.6.  No other call makes a set-id file: mkdir drops
 * both bits, write, truncate and chown clear them, and link and rename cannot
 * bring a file into a share from another mount (EXDEV).
 *
 * File capabilities need no rule: setting security.capability takes
 * CAP_SETFCAP over the file's owner, and no sandboxed process holds any
 * capability (every set empty, the bounding set too).  Even if one did, the
 * kernel stores a capability set from inside a user namespace as version 3,
 * bound to that namespace's root (the sandbox's host id, never 0), and
 * honours it only for processes whose namespace has that root: on the host
 * it grants nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"
#include "model/seccomp_profile.h"

/* System calls newer than the libseccomp we build with may name, by
 * number: since 424 every architecture but alpha shares one numbering.  A
 * call the kernel gains later stays ENOSYS until it is reviewed, added here
 * (and to the lists below if it must be refused, or to restrictive_allow)
 * and AK_SECCOMP_NR_MAX raised. */
static const struct {
  int nr;
  const char *name;
} newer[] = {
  { 451, "cachestat" },         { 452, "fchmodat2" },         { 453, "map_shadow_stack" },
  { 454, "futex_wake" },        { 455, "futex_wait" },        { 456, "futex_requeue" },
  { 457, "statmount" },         { 458, "listmount" },         { 459, "lsm_get_self_attr" },
  { 460, "lsm_set_self_attr" }, { 461, "lsm_list_modules" },  { 462, "mseal" },
  { 463, "setxattrat" },        { 464, "getxattrat" },        { 465, "listxattrat" },
  { 466, "removexattrat" },     { 467, "open_tree_attr" },    { 468, "file_getattr" },
  { 469, "file_setattr" },
};

static const char *const deny_always[] = {
  "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "open_tree_attr",
  "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "chroot", "unshare", "setns",
  "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "kexec_load", "kexec_file_load",
  "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module",
  "delete_module", "create_module", "reboot", "settimeofday", "stime", "clock_settime",
  "clock_adjtime", "adjtimex", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog",
  "userfaultfd", "open_by_handle_at", "lookup_dcookie", "iopl", "ioperm", "vhangup", "uselib",
  "nfsservctl", "fanotify_init", "sethostname", "setdomainname", NULL,
};

static const char *const deny_moderate[] = {
  "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "personality", NULL,
};

/* ENOSYS, so that libc falls back to a call whose arguments the filter can
 * read: clone3's flags and openat2's mode are behind a pointer. */
static const char *const fall_back[] = { "clone3", "openat2", NULL };

/* Restrictive: what ordinary programs (shells, coreutils, python, gcc, git,
 * node) use, and nothing that reaches beyond the sandbox's own processes
 * and files.  The calls of deny_always and deny_moderate stay refused even
 * if listed here. */
static const char *const restrictive_allow[] = {
  /* files */
  "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
  "pwritev2", "open", "openat", "creat", "close", "close_range", "lseek", "dup", "dup2", "dup3",
  "fcntl", "flock", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "truncate",
  "ftruncate", "fallocate", "fadvise64", "readahead", "sendfile", "copy_file_range", "splice",
  "tee", "vmsplice", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
  "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
  "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link",
  "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat",
  "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes",
  "utimensat", "futimesat", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
  "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
  "fremovexattr", "getxattrat", "listxattrat", "setxattrat", "removexattrat", "file_getattr",
  "memfd_create", "pipe", "pipe2", "inotify_init", "inotify_init1", "inotify_add_watch",
  "inotify_rm_watch", "ioctl",
  /* memory */
  "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore", "mlock",
  "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "pkey_alloc", "pkey_free",
  "pkey_mprotect", "get_mempolicy", "map_shadow_stack", "mseal", "remap_file_pages",
  /* processes, threads, signals */
  "execve", "execveat", "fork", "vfork", "clone", "exit", "exit_group", "wait4", "waitid",
  "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
  "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack",
  "pause", "restart_syscall", "pidfd_open", "pidfd_send_signal", "set_tid_address",
  "set_robust_list", "get_robust_list", "futex", "futex_waitv", "futex_wake", "futex_wait",
  "futex_requeue", "rseq", "arch_prctl", "prctl", "seccomp", "landlock_create_ruleset",
  "landlock_add_rule", "landlock_restrict_self", "capget", "capset",
  /* ids, limits, scheduling */
  "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
  "getresgid", "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid",
  "setresgid", "setfsuid", "setfsgid", "setgroups", "getpgid", "setpgid", "getpgrp", "getsid",
  "setsid", "getrlimit", "setrlimit", "prlimit64", "getrusage", "getpriority", "setpriority",
  "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
  "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
  "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
  "ioprio_get", "ioprio_set", "getcpu", "uname", "sysinfo", "getrandom",
  /* time */
  "time", "gettimeofday", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
  "alarm", "getitimer", "setitimer", "times", "timer_create", "timer_settime", "timer_gettime",
  "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
  /* waiting on descriptors */
  "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
  "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
  "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
  /* sockets (families: see socket_families) */
  "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
  "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
  "sendmmsg", "recvmmsg", "shutdown",
  /* System V and POSIX IPC, private to the sandbox's IPC namespace */
  "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
  "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
  "mq_notify", "mq_getsetattr", NULL,
};

/* ai-agent: restrictive's list and what coding agents' toolchains add
 * beyond it.  Node and V8 (memfd JIT pages, NUMA hints, worker threads),
 * Python, git, compilers and package managers (npm, pip, cargo) all run
 * within restrictive_allow; on top of it: FIFOs and sockets on disk (mkfifo
 * in build scripts; device nodes stay refused by the argument rules), NUMA
 * memory policy, and the newer attribute and cache calls glibc and
 * coreutils begin to use.  Everything the floor refuses and ptrace, other
 * processes' memory, kcmp, pidfd_getfd and personality stay refused: an
 * agent needs none of them to build and test code, and each is a way to
 * reach beyond its own process or to weaken the kernel's defences. */
static const char *const ai_agent_allow[] = {
  "mknod", "mknodat", "set_mempolicy", "mbind", "file_setattr", "cachestat", NULL,
};

/* The families restrictive allows: local sockets, the network (absent
 * unless the profile is widened), and netlink for getaddrinfo. */
static const int socket_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

static const unsigned long ns_flags[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
  CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME,
};

static const unsigned set_id_bits[] = { S_ISUID, S_ISGID };

/* The system call's name, NULL when this file does not know the number. */
static const char *
nr_name (int nr, char **to_free)
{
  *to_free = seccomp_syscall_resolve_num_arch (SCMP_ARCH_NATIVE, nr);
  if (*to_free != NULL)
    return *to_free;
  for (size_t i = 0; i < sizeof newer / sizeof newer[0]; i++)
    if (newer[i].nr == nr)
      return newer[i].name;
  return NULL;
}

int
ak_seccomp_nr (const char *name)
{
  int nr = seccomp_syscall_resolve_name (name);
  if (nr != __NR_SCMP_ERROR)
    return nr;
  for (size_t i = 0; i < sizeof newer / sizeof newer[0]; i++)
    if (strcmp (newer[i].name, name) == 0)
      return newer[i].nr;
  return __NR_SCMP_ERROR;
}

static bool
listed (const char *const *names, const char *name)
{
  for (; *names; names++)
    if (strcmp (*names, name) == 0)
      return true;
  return false;
}

/* The gate's verdict for one system call. */
static uint32_t
gate_action (ak_seccomp_kind_t kind, const char *name)
{
  if (name == NULL || listed (fall_back, name))
    return SCMP_ACT_ERRNO (ENOSYS);
  if (listed (deny_always, name))
    return SCMP_ACT_ERRNO (EPERM);
  if (kind != AK_SECCOMP_PERMISSIVE && listed (deny_moderate, name))
    return SCMP_ACT_ERRNO (EPERM);
  if (kind == AK_SECCOMP_RESTRICTIVE && !listed (restrictive_allow, name))
    return SCMP_ACT_ERRNO (EPERM);
  if (kind == AK_SECCOMP_AI_AGENT && !listed (restrictive_allow, name)
      && !listed (ai_agent_allow, name))
    return SCMP_ACT_ERRNO (EPERM);
  return SCMP_ACT_ALLOW;
}

/* The gate is built here rather than by libseccomp, which takes
 * milliseconds over a rule per system call: a binary search over runs of
 * numbers that share a verdict.  "Allow" jumps to the argument rules. */
typedef struct {
  struct sock_filter *insns;
  size_t n, cap;
} gate_t;

/* A jump to the argument rules, fixed up once the gate's length is known. */
#define TO_RULES UINT32_MAX

typedef struct {
  uint32_t first; /* the run goes on to the next run's first - 1 */
  uint32_t action;
} nr_run_t;

static size_t
emit (gate_t *g, struct sock_filter insn)
{
  if (g->n == g->cap)
    {
      g->cap = g->cap ? 2 * g->cap : 256;
      g->insns = ak_xrealloc (g->insns, g->cap * sizeof *g->insns);
    }
  g->insns[g->n] = insn;
  return g->n++;
}

static void
emit_search (gate_t *g, const nr_run_t *runs, size_t lo, size_t hi)
{
  size_t mid, to_left;

  if (hi - lo == 1)
    {
      if (runs[lo].action == SCMP_ACT_ALLOW)
        emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, TO_RULES, 0, 0));
      else
        emit (g, (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, runs[lo].action));
      return;
    }
  /* nr >= the middle run's first: the upper half, which follows; else a
   * long jump (conditional ones reach 255 instructions) to the lower. */
  mid = lo + (hi - lo) / 2;
  emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JGE | BPF_K, runs[mid].first, 1, 0));
  to_left = emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, 0, 0, 0));
  emit_search (g, runs, mid, hi);
  g->insns[to_left].k = (uint32_t) (g->n - to_left - 1);
  emit_search (g, runs, lo, mid);
}

static void
build_gate (gate_t *g, ak_seccomp_kind_t kind)
{
  nr_run_t runs[AK_SECCOMP_NR_MAX + 2];
  size_t n = 0;

  for (int nr = 0; nr <= AK_SECCOMP_NR_MAX + 1; nr++)
    {
      _cleanup_free_ char *to_free = NULL;
      uint32_t action = nr > AK_SECCOMP_NR_MAX ? SCMP_ACT_ERRNO (ENOSYS)
                                                : gate_action (kind, nr_name (nr, &to_free));
      if (n == 0 || runs[n - 1].action != action)
        runs[n++] = (nr_run_t){ (uint32_t) nr, action };
    }
  /* Another ABI, and x32's numbers on this one, go to the argument rules,
   * whose libseccomp prologue kills them. */
  emit (g, (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS,
                                          offsetof (struct seccomp_data, arch)));
  emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch_native (), 1, 0));
  emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, TO_RULES, 0, 0));
  emit (g, (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS,
                                          offsetof (struct seccomp_data, nr)));
  emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  emit (g, (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JA, TO_RULES, 0, 0));
  emit_search (g, runs, 0, n);
  for (size_t i = 0; i < g->n; i++)
    if (g->insns[i].code == (BPF_JMP | BPF_JA) && g->insns[i].k == TO_RULES)
      g->insns[i].k = (uint32_t) (g->n - i - 1);
}

/* EPERM for `name` when argument `mode_arg` has a set-id bit, and also,
 * when flags_arg >= 0, only if that argument creates a file. */
static int
refuse_set_id (scmp_filter_ctx ctx, const char *name, unsigned mode_arg, int flags_arg)
{
  static const unsigned creating[] = { O_CREAT, O_TMPFILE & ~O_DIRECTORY };
  int nr = ak_seccomp_nr (name);
  int rc = 0;

  if (nr == __NR_SCMP_ERROR)
    return 0;
  for (size_t b = 0; rc == 0 && b < 2; b++)
    {
      struct scmp_arg_cmp mode = SCMP_CMP (mode_arg, SCMP_CMP_MASKED_EQ, set_id_bits[b],
                                           set_id_bits[b]);
      if (flags_arg < 0)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 1, mode);
      for (size_t f = 0; flags_arg >= 0 && rc == 0 && f < 2; f++)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 2, mode,
                               SCMP_CMP ((unsigned) flags_arg, SCMP_CMP_MASKED_EQ, creating[f],
                                         creating[f]));
    }
  return rc;
}

/* mknod: regular files, FIFOs and sockets only, never with a set-id bit. */
static int
refuse_nodes (scmp_filter_ctx ctx, const char *name, unsigned mode_arg)
{
  int nr = ak_seccomp_nr (name);
  int rc = refuse_set_id (ctx, name, mode_arg, -1);

  for (unsigned t = 1; rc == 0 && t < 16; t++)
    {
      unsigned type = t << 12;
      if (type == S_IFREG || type == S_IFIFO || type == S_IFSOCK)
        continue;
      rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 1,
                             SCMP_CMP (mode_arg, SCMP_CMP_MASKED_EQ, S_IFMT, type));
    }
  return rc;
}

/* Restrictive's socket families.  The kernel reads the family as an int:
 * compared on the low 32 bits, and anything with high bits set refused. */
static int
refuse_families (scmp_filter_ctx ctx)
{
  int rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
                             SCMP_A0 (SCMP_CMP_GE, AF_MAX));
  for (int f = 0; rc == 0 && f < AF_MAX; f++)
    {
      bool ok = false;
      for (size_t i = 0; i < sizeof socket_families / sizeof socket_families[0]; i++)
        ok = ok || socket_families[i] == f;
      if (!ok)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
                               SCMP_A0 (SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t) f));
    }
  return rc;
}

static int
build_arg_rules (scmp_filter_ctx ctx, ak_seccomp_kind_t kind, ak_error_t **err)
{
  int rc = 0;

  for (size_t i = 0; rc == 0 && i < sizeof ns_flags / sizeof ns_flags[0]; i++)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (clone), 1,
                           SCMP_A0 (SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX));
  if (rc == 0 && (kind == AK_SECCOMP_RESTRICTIVE || kind == AK_SECCOMP_AI_AGENT))
    rc = refuse_families (ctx);
  if (rc == 0)
    rc = refuse_set_id (ctx, "chmod", 1, -1);
  if (rc == 0)
    rc = refuse_set_id (ctx, "fchmod", 1, -1);
  if (rc == 0)
    rc = refuse_set_id (ctx, "fchmodat", 2, -1);
  if (rc == 0)
    rc = refuse_set_id (ctx, "fchmodat2", 2, -1);
  if (rc == 0)
    rc = refuse_set_id (ctx, "creat", 1, -1);
  if (rc == 0)
    rc = refuse_set_id (ctx, "open", 2, 1);
  if (rc == 0)
    rc = refuse_set_id (ctx, "openat", 3, 2);
  if (rc == 0)
    rc = refuse_nodes (ctx, "mknod", 1);
  if (rc == 0)
    rc = refuse_nodes (ctx, "mknodat", 2);
  if (rc < 0)
    return ak_error_set (err, -rc, "seccomp: add argument rule");
  return 0;
}

/* The argument rules' libseccomp filter: a foreign ABI kills. */
static scmp_filter_ctx
new_filter (uint32_t def, ak_error_t **err)
{
  scmp_filter_ctx ctx = seccomp_init (def);
  int rc;

  if (ctx == NULL)
    {
      ak_error_set (err, ENOMEM, "seccomp: init");
      return NULL;
    }
  rc = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0)
    {
      seccomp_release (ctx);
      ak_error_set (err, -rc, "seccomp: set attributes");
      return NULL;
    }
  return ctx;
}

int
ak_seccomp_export (const struct sock_filter *prefix, size_t n, scmp_filter_ctx rules,
                   ak_error_t **err)
{
  _cleanup_close_ int mfd = -1;
  off_t len;
  int rc;

  /* The BPF goes into a sealed memfd the init only has to load. */
  mfd = memfd_create ("ak-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    return ak_error_set (err, errno, "seccomp: memfd");
  if (n > 0 && ak_write_all (mfd, prefix, n * sizeof *prefix) < 0)
    return ak_error_set (err, errno, "seccomp: write filter");
  rc = seccomp_export_bpf (rules, mfd);
  if (rc < 0)
    return ak_error_set (err, -rc, "seccomp: export filter");
  len = lseek (mfd, 0, SEEK_CUR);
  if (len > BPF_MAXINSNS * (off_t) sizeof (struct sock_filter))
    return ak_error_set (err, E2BIG, "seccomp: filter of %lld bytes", (long long) len);
  if (fcntl (mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return ak_error_set (err, errno, "seccomp: seal filter");
  return take_fd (&mfd);
}

int
ak_seccomp_compile_builtin (ak_seccomp_kind_t kind, ak_error_t **err)
{
  gate_t gate = { 0 };
  scmp_filter_ctx rules;
  int fd;

  if (kind < AK_SECCOMP_PERMISSIVE || kind > AK_SECCOMP_RESTRICTIVE)
    return ak_error_set (err, EINVAL, "seccomp: no built-in filter '%s'", ak_seccomp_name (kind));
  rules = new_filter (SCMP_ACT_ALLOW, err);
  if (rules == NULL)
    return -1;
  if (build_arg_rules (rules, kind, err) < 0)
    {
      seccomp_release (rules);
      return -1;
    }
  build_gate (&gate, kind);
  fd = ak_seccomp_export (gate.insns, gate.n, rules, err);
  free (gate.insns);
  seccomp_release (rules);
  return fd;
}

/* Custom profiles stack: the built-in under them first (it allows the
 * prctl that installs the second, which the custom one may not), then the
 * custom one.  The kernel runs every installed filter and applies the
 * strictest answer, so nothing the one under refuses can be allowed by the
 * one on top; where both refuse, the errno of the one on top is returned. */
int
ak_seccomp_compile (const ak_spec_t *spec, int fds[2], ak_error_t **err)
{
  const ak_seccomp_sel_t *sc = &spec->sec.seccomp;
  int n = 0;

  if (sc->kind != AK_SECCOMP_CUSTOM || !sc->unsafe)
    {
      if ((fds[n] = ak_seccomp_compile_builtin (ak_seccomp_builtin (spec), err)) < 0)
        return -1;
      n++;
    }
  else
    ak_warn ("UNSAFE: --allow-unsafe-seccomp: the custom seccomp profile %s runs alone, without "
             "the floor of refused system calls (mount, unshare, ptrace, bpf, keyctl, ...): the "
             "sandbox is only as strong as that file",
             sc->file);
  if (sc->kind == AK_SECCOMP_CUSTOM)
    {
      fds[n] = ak_seccomp_compile_custom (sc->file, sc->text, strlen (sc->text), err);
      if (fds[n] < 0)
        {
          while (n > 0)
            close (fds[--n]);
          return -1;
        }
      n++;
    }
  return n;
}

int
ak_seccomp_load (int fd, ak_error_t **err)
{
  struct sock_fprog prog;
  _cleanup_free_ struct sock_filter *filter = NULL;
  off_t size = lseek (fd, 0, SEEK_END);

  if (size <= 0 || size % (off_t) sizeof (struct sock_filter) != 0
      || size > BPF_MAXINSNS * (off_t) sizeof (struct sock_filter))
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
