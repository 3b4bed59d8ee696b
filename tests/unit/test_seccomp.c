/* The compiled seccomp programs, read back and run here on made-up system
 * calls by a classic BPF interpreter of the test's own: what each profile
 * answers, without a kernel in the way (several of these calls would be
 * refused anyway for want of a capability, which hides a missing rule from
 * any test that makes the real call). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/seccomp_profile.h"

#define ALLOW SECCOMP_RET_ALLOW
#define KILL SECCOMP_RET_KILL_PROCESS
#define LOG SECCOMP_RET_LOG
#define ERRNO(e) (SECCOMP_RET_ERRNO | (e))
#define NR_FCHMODAT2 452

/* The built-ins, by index: 0 permissive, 1 moderate, 2 restrictive,
 * 3 ai-agent. */
#define N_BUILTIN 4
static const ak_seccomp_kind_t kinds[N_BUILTIN] = { AK_SECCOMP_PERMISSIVE, AK_SECCOMP_MODERATE,
                                                    AK_SECCOMP_RESTRICTIVE, AK_SECCOMP_AI_AGENT };

typedef struct {
  struct sock_filter *insns;
  size_t len;
} prog_t;

static prog_t progs[N_BUILTIN];

/* A compiled program read back from its memfd (which is closed). */
static int
read_prog (int fd, prog_t *out)
{
  off_t size = lseek (fd, 0, SEEK_END);
  out->insns = malloc ((size_t) size);
  out->len = (size_t) size / sizeof (struct sock_filter);
  if (pread (fd, out->insns, (size_t) size, 0) != size)
    return -1;
  close (fd);
  return 0;
}

static int
setup (void **state)
{
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      ak_error_t *err = NULL;
      int fd = ak_seccomp_compile_builtin (kinds[p], &err);
      if (fd < 0)
        {
          fprintf (stderr, "compile: %s\n", err->msg);
          return -1;
        }
      if (read_prog (fd, &progs[p]) < 0)
        return -1;
    }
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    free (progs[p].insns);
  return 0;
}

/* Runs a program the way the kernel does (classic BPF over seccomp_data).
 * Fails the test on anything a seccomp program may not contain: a jump out
 * of the program, a load outside seccomp_data, falling off the end. */
static uint32_t
run (const prog_t *prog, uint32_t arch, int nr, const uint64_t args[6])
{
  struct seccomp_data d = { .nr = nr, .arch = arch };
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };

  memcpy (d.args, args, sizeof d.args);
  for (size_t pc = 0; pc < prog->len; pc++)
    {
      const struct sock_filter *i = &prog->insns[pc];
      uint32_t src = BPF_SRC (i->code) == BPF_X ? x : i->k;
      bool taken = false;

      switch (BPF_CLASS (i->code))
        {
        case BPF_LD:
          if (i->code == (BPF_LD | BPF_W | BPF_ABS))
            {
              assert_true (i->k % 4 == 0 && i->k + 4 <= sizeof d);
              memcpy (&a, (const char *) &d + i->k, 4);
            }
          else if (i->code == (BPF_LD | BPF_IMM))
            a = i->k;
          else if (i->code == (BPF_LD | BPF_MEM))
            {
              assert_true (i->k < BPF_MEMWORDS);
              a = mem[i->k];
            }
          else
            fail_msg ("unexpected load %#x at %zu", i->code, pc);
          break;
        case BPF_LDX:
          if (i->code == (BPF_LDX | BPF_IMM))
            x = i->k;
          else if (i->code == (BPF_LDX | BPF_MEM))
            {
              assert_true (i->k < BPF_MEMWORDS);
              x = mem[i->k];
            }
          else
            fail_msg ("unexpected load %#x at %zu", i->code, pc);
          break;
        case BPF_ST:
        case BPF_STX:
          assert_true (i->k < BPF_MEMWORDS);
          mem[i->k] = BPF_CLASS (i->code) == BPF_ST ? a : x;
          break;
        case BPF_ALU:
          switch (BPF_OP (i->code))
            {
            case BPF_ADD: a += src; break;
            case BPF_SUB: a -= src; break;
            case BPF_MUL: a *= src; break;
            case BPF_DIV: assert_true (src != 0); a /= src; break;
            case BPF_MOD: assert_true (src != 0); a %= src; break;
            case BPF_AND: a &= src; break;
            case BPF_OR: a |= src; break;
            case BPF_XOR: a ^= src; break;
            case BPF_LSH: a <<= src & 31; break;
            case BPF_RSH: a >>= src & 31; break;
            case BPF_NEG: a = -a; break;
            default: fail_msg ("unexpected ALU op %#x at %zu", i->code, pc);
            }
          break;
        case BPF_JMP:
          if (BPF_OP (i->code) == BPF_JA)
            {
              pc += i->k;
              assert_true (pc < prog->len);
              break;
            }
          switch (BPF_OP (i->code))
            {
            case BPF_JEQ: taken = a == src; break;
            case BPF_JGT: taken = a > src; break;
            case BPF_JGE: taken = a >= src; break;
            case BPF_JSET: taken = (a & src) != 0; break;
            default: fail_msg ("unexpected jump %#x at %zu", i->code, pc);
            }
          pc += taken ? i->jt : i->jf;
          assert_true (pc + 1 < prog->len);
          break;
        case BPF_RET:
          return BPF_RVAL (i->code) == BPF_A ? a : i->k;
        case BPF_MISC:
          if (BPF_MISCOP (i->code) == BPF_TAX)
            x = a;
          else
            a = x;
          break;
        default:
          fail_msg ("unexpected instruction %#x at %zu", i->code, pc);
        }
    }
  fail_msg ("fell off the end of the program");
  return 0;
}

static uint32_t
call (size_t p, int nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
  const uint64_t args[6] = { a0, a1, a2, a3, 0, 0 };
  return run (&progs[p], AUDIT_ARCH_X86_64, nr, args);
}

static uint32_t
call0 (size_t p, int nr)
{
  return call (p, nr, 0, 0, 0, 0);
}

static void
test_fits_the_kernel (void **state)
{
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      assert_true (progs[p].len > 0);
      assert_true (progs[p].len <= BPF_MAXINSNS);
    }
}

/* Calls the kernel would refuse anyway for want of a capability: the
 * filter refuses them too, so a capability leak is not enough. */
static void
test_capability_calls_refused (void **state)
{
  static const int nrs[] = {
    SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module,
    SYS_reboot, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex, SYS_syslog,
    SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_swapon, SYS_swapoff, SYS_acct,
    SYS_quotactl, SYS_iopl, SYS_ioperm, SYS_sethostname, SYS_setdomainname, SYS_vhangup,
    SYS_open_by_handle_at, SYS_bpf, SYS_perf_event_open, SYS_unshare, SYS_setns, SYS_keyctl,
    SYS_add_key, SYS_request_key, SYS_io_uring_setup, SYS_userfaultfd, SYS_fanotify_init,
    SYS_move_mount, SYS_open_tree, SYS_fsopen, SYS_fsmount, SYS_fspick, SYS_mount_setattr,
    467 /* open_tree_attr */,
  };
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
      {
        uint32_t v = call0 (p, nrs[i]);
        if (v != ERRNO (EPERM))
          fail_msg ("profile %zu, system call %d: %#x, not EPERM", p, nrs[i], v);
      }
}

static void
test_moderate_adds (void **state)
{
  static const int nrs[] = { SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
                             SYS_pidfd_getfd, SYS_personality };
  (void) state;
  for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
    {
      assert_int_equal (call0 (0, nrs[i]), ALLOW);
      assert_int_equal (call0 (1, nrs[i]), ERRNO (EPERM));
      assert_int_equal (call0 (2, nrs[i]), ERRNO (EPERM));
      assert_int_equal (call0 (3, nrs[i]), ERRNO (EPERM));
    }
}

static void
test_everyday_calls_allowed (void **state)
{
  static const int nrs[] = {
    SYS_read, SYS_write, SYS_openat, SYS_close, SYS_execve, SYS_mmap, SYS_brk, SYS_futex,
    SYS_wait4, SYS_rt_sigaction, SYS_getdents64, SYS_newfstatat, SYS_statx, SYS_pipe2,
    SYS_dup3, SYS_fcntl, SYS_getrandom, SYS_rseq, SYS_clock_gettime, SYS_epoll_pwait,
    SYS_connect, SYS_exit_group, SYS_set_robust_list, SYS_prlimit64, SYS_renameat2,
  };
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
      if (call0 (p, nrs[i]) != ALLOW)
        fail_msg ("profile %zu refuses system call %d", p, nrs[i]);
}

/* Restrictive is an allowlist: a harmless call it does not list (and the
 * others allow) is refused. */
static void
test_restrictive_is_an_allowlist (void **state)
{
  static const int nrs[] = { SYS_name_to_handle_at, SYS_process_madvise, SYS_set_mempolicy,
                             SYS_mbind, SYS_modify_ldt, 457 /* statmount */ };
  (void) state;
  for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
    {
      assert_int_equal (call0 (1, nrs[i]), ALLOW);
      assert_int_equal (call0 (2, nrs[i]), ERRNO (EPERM));
    }
}

/* Above the newest call the filter knows, and in the numbering's gaps:
 * ENOSYS, in every profile, as from an older kernel. */
static void
test_unknown_calls_enosys (void **state)
{
  static const int nrs[] = { AK_SECCOMP_NR_MAX + 1, AK_SECCOMP_NR_MAX + 2, 480, 500, 1000,
                             4095, 0x3fffffff, 400 /* x86_64 gap */ };
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++)
        assert_int_equal (call0 (p, nrs[i]), ERRNO (ENOSYS));
      /* the newest known one has a rule of its own */
      assert_int_not_equal (call0 (p, AK_SECCOMP_NR_MAX), ERRNO (ENOSYS));
    }
}

static void
test_fall_back_calls_enosys (void **state)
{
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      assert_int_equal (call0 (p, SYS_clone3), ERRNO (ENOSYS));
      assert_int_equal (call (p, SYS_openat2, AT_FDCWD, 0, 0, 24), ERRNO (ENOSYS));
    }
}

static void
test_foreign_abi_killed (void **state)
{
  const uint64_t none[6] = { 0 };
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      assert_int_equal (run (&progs[p], AUDIT_ARCH_I386, 20, none), KILL);
      assert_int_equal (run (&progs[p], AUDIT_ARCH_X86_64, 0x40000000 | SYS_getpid, none), KILL);
      assert_int_equal (run (&progs[p], AUDIT_ARCH_X86_64, 0x40000000 | SYS_chmod, none), KILL);
    }
}

/* Every route to a set-id bit, with the harmless mode as the allow side. */
static void
test_set_id_refused (void **state)
{
  static const unsigned bad[] = { 04755, 02755, 06755, 04000, 02000, 0104755 };
  static const unsigned flags[] = { O_CREAT | O_WRONLY, O_TMPFILE | O_WRONLY,
                                    O_CREAT | O_EXCL | O_RDWR };
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
        {
          uint64_t m = bad[b];
          assert_int_equal (call (p, SYS_chmod, 0, m, 0, 0), ERRNO (EPERM));
          assert_int_equal (call (p, SYS_fchmod, 3, m, 0, 0), ERRNO (EPERM));
          assert_int_equal (call (p, SYS_fchmodat, AT_FDCWD, 0, m, 0), ERRNO (EPERM));
          assert_int_equal (call (p, NR_FCHMODAT2, AT_FDCWD, 0, m, 0), ERRNO (EPERM));
          assert_int_equal (call (p, SYS_creat, 0, m, 0, 0), ERRNO (EPERM));
          /* high bits the kernel ignores do not hide the mode */
          assert_int_equal (call (p, SYS_chmod, 0, m | 0xffff000000000000ull, 0, 0), ERRNO (EPERM));
          for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
            {
              assert_int_equal (call (p, SYS_open, 0, flags[f], m, 0), ERRNO (EPERM));
              assert_int_equal (call (p, SYS_openat, AT_FDCWD, 0, flags[f], m), ERRNO (EPERM));
            }
          /* mknod: refused outright in restrictive, for the bits elsewhere */
          assert_int_equal (call (p, SYS_mknod, 0, S_IFREG | m, 0, 0), ERRNO (EPERM));
          assert_int_equal (call (p, SYS_mknodat, AT_FDCWD, 0, S_IFREG | m, 0), ERRNO (EPERM));
        }
      assert_int_equal (call (p, SYS_chmod, 0, 0755, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_chmod, 0, 01777, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_fchmod, 3, 0644, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_fchmodat, AT_FDCWD, 0, 0700, 0), ALLOW);
      assert_int_equal (call (p, NR_FCHMODAT2, AT_FDCWD, 0, 0700, 0), ALLOW);
      assert_int_equal (call (p, SYS_creat, 0, 0644, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_open, 0, O_CREAT | O_WRONLY, 0666, 0), ALLOW);
      assert_int_equal (call (p, SYS_openat, AT_FDCWD, 0, O_TMPFILE | O_RDWR, 0600), ALLOW);
      /* without O_CREAT the kernel ignores the mode: whatever is there */
      assert_int_equal (call (p, SYS_openat, AT_FDCWD, 0, O_RDONLY, 04755), ALLOW);
      assert_int_equal (call (p, SYS_open, 0, O_RDONLY | O_DIRECTORY, 06777, 0), ALLOW);
    }
}

static void
test_device_nodes_refused (void **state)
{
  static const unsigned refused[] = { S_IFCHR, S_IFBLK, S_IFDIR, S_IFLNK, 0170000, 0030000 };
  static const unsigned allowed[] = { S_IFREG | 0644, S_IFIFO | 0600, S_IFSOCK | 0755, 0644 };
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        {
          assert_int_equal (call (p, SYS_mknod, 0, refused[i] | 0600, 0x103, 0), ERRNO (EPERM));
          assert_int_equal (call (p, SYS_mknodat, AT_FDCWD, 0, refused[i] | 0600, 0), ERRNO (EPERM));
        }
      for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        {
          uint32_t want = kinds[p] == AK_SECCOMP_RESTRICTIVE ? ERRNO (EPERM) : ALLOW;
          assert_int_equal (call (p, SYS_mknod, 0, allowed[i], 0, 0), want);
          assert_int_equal (call (p, SYS_mknodat, AT_FDCWD, 0, allowed[i], 0), want);
        }
    }
}

static void
test_namespaces_through_clone_refused (void **state)
{
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      assert_int_equal (call (p, SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0), ERRNO (EPERM));
      assert_int_equal (call (p, SYS_clone, CLONE_NEWNS | CLONE_VM, 0, 0, 0), ERRNO (EPERM));
      assert_int_equal (call (p, SYS_clone, CLONE_NEWTIME, 0, 0, 0), ERRNO (EPERM));
      assert_int_equal (call (p, SYS_clone, SIGCHLD, 0, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_clone, CLONE_VM | CLONE_THREAD | CLONE_SIGHAND, 0, 0, 0),
                        ALLOW);
    }
}

static void
test_terminal_injection_refused (void **state)
{
  (void) state;
  for (size_t p = 0; p < N_BUILTIN; p++)
    {
      assert_int_equal (call (p, SYS_ioctl, 0, TIOCSTI, 0, 0), ERRNO (EPERM));
      assert_int_equal (call (p, SYS_ioctl, 0, TIOCSTI | (1ull << 32), 0, 0), ERRNO (EPERM));
      assert_int_equal (call (p, SYS_ioctl, 0, TIOCLINUX, 0, 0), ERRNO (EPERM));
      assert_int_equal (call (p, SYS_ioctl, 0, TIOCGWINSZ, 0, 0), ALLOW);
    }
}

/* Restrictive (2) and ai-agent (3). */
static void
test_restrictive_socket_families (void **state)
{
  (void) state;
  for (size_t p = 2; p < 4; p++)
    {
      assert_int_equal (call (p, SYS_socket, AF_UNIX, SOCK_STREAM, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_socket, AF_INET, SOCK_DGRAM, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_socket, AF_INET6, SOCK_STREAM, 0, 0), ALLOW);
      assert_int_equal (call (p, SYS_socket, AF_NETLINK, SOCK_RAW, 0, 0), ALLOW);
      for (int f = 0; f < AF_MAX + 10; f++)
        if (f != AF_UNIX && f != AF_INET && f != AF_INET6 && f != AF_NETLINK)
          assert_int_equal (call (p, SYS_socket, (uint64_t) f, SOCK_STREAM, 0, 0),
                            ERRNO (EAFNOSUPPORT));
      /* the kernel reads an int: high bits must not smuggle a family past */
      assert_int_equal (call (p, SYS_socket, AF_ALG | (1ull << 32), SOCK_SEQPACKET, 0, 0),
                        ERRNO (EAFNOSUPPORT));
      assert_int_equal (call (p, SYS_socket, AF_PACKET | (1ull << 40), SOCK_RAW, 0, 0),
                        ERRNO (EAFNOSUPPORT));
    }
  assert_int_equal (call (1, SYS_socket, AF_PACKET, SOCK_RAW, 0, 0), ALLOW);
}

/* ai-agent: an allowlist like restrictive's, with what agents' toolchains
 * add; what they do not need stays refused. */
static void
test_ai_agent (void **state)
{
  static const int refused[] = { SYS_name_to_handle_at, SYS_process_madvise, SYS_modify_ldt,
                                 457 /* statmount */, SYS_ptrace, SYS_process_vm_readv,
                                 SYS_personality, SYS_io_uring_setup, SYS_userfaultfd,
                                 SYS_perf_event_open, SYS_bpf, SYS_add_key, SYS_keyctl,
                                 SYS_unshare, SYS_mount, SYS_kexec_load, SYS_init_module };
  static const int allowed[] = { SYS_memfd_create, SYS_eventfd2, SYS_inotify_init1,
                                 SYS_inotify_add_watch, SYS_epoll_create1, SYS_socket,
                                 SYS_connect, SYS_bind, SYS_listen, SYS_accept4, SYS_clone,
                                 SYS_vfork, SYS_execve, SYS_futex, SYS_set_mempolicy, SYS_mbind,
                                 SYS_pipe2, SYS_getrandom, SYS_statx, SYS_copy_file_range,
                                 SYS_timerfd_create, SYS_signalfd4, SYS_prctl, SYS_madvise };
  (void) state;
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (call0 (3, refused[i]) != ERRNO (EPERM))
      fail_msg ("ai-agent allows system call %d", refused[i]);
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    if (call (3, allowed[i], AF_INET, 0, 0, 0) != ALLOW)
      fail_msg ("ai-agent refuses system call %d", allowed[i]);
  /* FIFOs on disk, unlike restrictive */
  assert_int_equal (call (3, SYS_mknodat, AT_FDCWD, 0, S_IFIFO | 0600, 0), ALLOW);
  assert_int_equal (call (2, SYS_mknodat, AT_FDCWD, 0, S_IFIFO | 0600, 0), ERRNO (EPERM));
}

/* ---- custom profiles ---------------------------------------------------- */

/* What the kernel answers with several filters installed: each runs, and
 * the most restrictive action wins (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO,
 * ..., ALLOW); between equals, the most recently installed one's data. */
static uint32_t
stacked (const prog_t *ps, size_t n, uint32_t arch, int nr, const uint64_t args[6])
{
  uint32_t ret = SECCOMP_RET_ALLOW;
  for (size_t i = n; i-- > 0;)
    {
      uint32_t r = run (&ps[i], arch, nr, args);
      if ((int32_t) (r & SECCOMP_RET_ACTION_FULL) < (int32_t) (ret & SECCOMP_RET_ACTION_FULL)
          || i == n - 1)
        ret = r;
    }
  return ret;
}

typedef struct {
  prog_t p[2];
  size_t n;
} fstack_t;

/* The programs a spec with this custom profile loads, in order. */
static void
compile_custom (const char *text, ak_seccomp_kind_t under, bool unsafe, fstack_t *st)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  int fds[2], n;

  ak_spec_init (&spec);
  if (ak_spec_set_seccomp_custom (&spec, "test.json", text, strlen (text), under, AK_SRC_CLI, 0,
                                  &err)
      < 0)
    fail_msg ("%s", err->msg);
  spec.sec.seccomp.unsafe = unsafe;
  n = ak_seccomp_compile (&spec, fds, &err);
  if (n < 0)
    fail_msg ("%s", err->msg);
  st->n = (size_t) n;
  for (int i = 0; i < n; i++)
    {
      assert_int_equal (read_prog (fds[i], &st->p[i]), 0);
      assert_true (st->p[i].len <= BPF_MAXINSNS);
    }
  ak_spec_clear (&spec);
}

static void
stack_free (fstack_t *st)
{
  for (size_t i = 0; i < st->n; i++)
    free (st->p[i].insns);
}

static uint32_t
scall (const fstack_t *st, int nr, uint64_t a0, uint64_t a1)
{
  const uint64_t args[6] = { a0, a1, 0, 0, 0, 0 };
  return stacked (st->p, st->n, AUDIT_ARCH_X86_64, nr, args);
}

static char *
read_data (const char *name)
{
  _cleanup_free_ char *path = ak_xasprintf ("tests/data/seccomp/%s", name);
  ak_error_t *err = NULL;
  char *text = NULL;
  size_t len;
  if (ak_read_file (path, &text, &len, &err) < 0)
    fail_msg ("%s (run from the top of the tree)", err->msg);
  return text;
}

/* Docker's default profile, as Docker applies it to a process without
 * capabilities, on top of the floor. */
static void
test_docker_default (void **state)
{
  _cleanup_free_ char *text = read_data ("docker-default.json");
  const uint64_t none[6] = { 0 };
  fstack_t st;
  (void) state;

  compile_custom (text, AK_SECCOMP_PERMISSIVE, false, &st);
  assert_int_equal (st.n, 2);
  /* the allow list */
  assert_int_equal (scall (&st, SYS_read, 0, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_execve, 0, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_arch_prctl, 0, 0), ALLOW); /* includes.arches amd64 */
  assert_int_equal (scall (&st, SYS_ptrace, 0, 0), ALLOW);     /* includes.minKernel 4.8 */
  assert_int_equal (scall (&st, NR_FCHMODAT2, 0, 0755), ALLOW); /* newer than libseccomp */
  /* defaultErrnoRet 1 for what it does not list, even where the floor
   * answers ENOSYS (the one on top gives the errno) */
  assert_int_equal (scall (&st, AK_SECCOMP_NR_MAX + 1, 0, 0), ERRNO (1));
  assert_int_equal (scall (&st, SYS_kexec_load, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_vhangup, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_mbind, 0, 0), ERRNO (EPERM)); /* includes.caps: never */
  assert_int_equal (scall (&st, SYS_setns, 0, 0), ERRNO (EPERM));
  /* args: personality's values, socket's family, clone's flags */
  assert_int_equal (scall (&st, SYS_personality, 0, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_personality, 0xffffffff, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */, 0), ERRNO (1));
  assert_int_equal (scall (&st, SYS_socket, AF_INET, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_socket, 40 /* AF_VSOCK */, 0), ERRNO (1));
  assert_int_equal (scall (&st, SYS_clone, SIGCHLD, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_clone, CLONE_VM | CLONE_THREAD | CLONE_SIGHAND, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_clone, CLONE_NEWUSER | SIGCHLD, 0), ERRNO (1));
  assert_int_equal (scall (&st, SYS_clone, CLONE_NEWNET, 0), ERRNO (1));
  /* clone3: ENOSYS, so that libc falls back to clone */
  assert_int_equal (scall (&st, SYS_clone3, 0, 0), ERRNO (ENOSYS));
  /* the archMap added the 32-bit ABIs to the profile's own filter, but the
   * floor under it still ends a process that uses them */
  assert_int_equal (run (&st.p[1], AUDIT_ARCH_I386, 3 /* read */, none), ALLOW);
  assert_int_equal (stacked (st.p, 2, AUDIT_ARCH_I386, 3, none), KILL);
  stack_free (&st);
}

/* A profile that allows everything, and says so for the floor's calls:
 * the floor under it refuses them all the same. */
static void
test_hostile_profile (void **state)
{
  _cleanup_free_ char *text = read_data ("hostile.json");
  fstack_t st;
  (void) state;

  compile_custom (text, AK_SECCOMP_PERMISSIVE, false, &st);
  assert_int_equal (scall (&st, SYS_mount, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_unshare, CLONE_NEWUSER, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_setns, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_bpf, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_keyctl, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_clone, CLONE_NEWUSER, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_clone3, 0, 0), ERRNO (ENOSYS));
  assert_int_equal (scall (&st, SYS_ioctl, 0, TIOCSTI), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_chmod, 0, 04755), ERRNO (EPERM));
  assert_int_equal (scall (&st, AK_SECCOMP_NR_MAX + 1, 0, 0), ERRNO (ENOSYS));
  /* ptrace is not in the floor: the user's own profile may allow it ... */
  assert_int_equal (scall (&st, SYS_ptrace, 0, 0), LOG);
  stack_free (&st);
  /* ... but one from an untrusted config sits on the filter in force */
  compile_custom (text, AK_SECCOMP_MODERATE, false, &st);
  assert_int_equal (scall (&st, SYS_ptrace, 0, 0), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_mount, 0, 0), ERRNO (EPERM));
  stack_free (&st);
  /* --allow-unsafe-seccomp: the profile alone */
  compile_custom (text, AK_SECCOMP_PERMISSIVE, true, &st);
  assert_int_equal (st.n, 1);
  assert_int_equal (scall (&st, SYS_mount, 0, 0), LOG);
  assert_int_equal (scall (&st, SYS_unshare, 0, 0), LOG);
  stack_free (&st);
}

/* A profile's own refusals hold, with its errno; unknown names are
 * skipped; one argument compared twice becomes two rules. */
static void
test_custom_rules (void **state)
{
  static const char deny[]
      = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
        "{\"names\": [\"no_such_call\", \"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\","
        " \"errnoRet\": 13},"
        "{\"name\": \"getpid\", \"action\": \"SCMP_ACT_KILL_PROCESS\"},"
        "{\"names\": [\"fchmodat2\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38},"
        "{\"names\": [\"kill\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
        "  {\"index\": 1, \"value\": 9, \"op\": \"SCMP_CMP_EQ\"},"
        "  {\"index\": 1, \"value\": 15, \"op\": \"SCMP_CMP_EQ\"}]},"
        "{\"names\": [\"mount\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 95},"
        "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}";
  fstack_t st;
  (void) state;

  compile_custom (deny, AK_SECCOMP_PERMISSIVE, false, &st);
  assert_int_equal (scall (&st, SYS_mkdir, 0, 0), ERRNO (EACCES));
  assert_int_equal (scall (&st, SYS_mkdirat, 0, 0), ERRNO (EACCES));
  assert_int_equal (scall (&st, SYS_rmdir, 0, 0), ALLOW);
  assert_int_equal (scall (&st, SYS_getpid, 0, 0), KILL);
  assert_int_equal (scall (&st, NR_FCHMODAT2, 0, 0), ERRNO (ENOSYS));
  assert_int_equal (scall (&st, SYS_kill, 1, 9), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_kill, 1, 15), ERRNO (EPERM));
  assert_int_equal (scall (&st, SYS_kill, 1, 0), ALLOW);
  /* both refuse: the errno of the one on top */
  assert_int_equal (scall (&st, SYS_mount, 0, 0), ERRNO (EOPNOTSUPP));
  stack_free (&st);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_fits_the_kernel),
    cmocka_unit_test (test_capability_calls_refused),
    cmocka_unit_test (test_moderate_adds),
    cmocka_unit_test (test_everyday_calls_allowed),
    cmocka_unit_test (test_restrictive_is_an_allowlist),
    cmocka_unit_test (test_unknown_calls_enosys),
    cmocka_unit_test (test_fall_back_calls_enosys),
    cmocka_unit_test (test_foreign_abi_killed),
    cmocka_unit_test (test_set_id_refused),
    cmocka_unit_test (test_device_nodes_refused),
    cmocka_unit_test (test_namespaces_through_clone_refused),
    cmocka_unit_test (test_terminal_injection_refused),
    cmocka_unit_test (test_restrictive_socket_families),
    cmocka_unit_test (test_ai_agent),
    cmocka_unit_test (test_docker_default),
    cmocka_unit_test (test_hostile_profile),
    cmocka_unit_test (test_custom_rules),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
