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
#include "common/util.h"

#define ALLOW SECCOMP_RET_ALLOW
#define KILL SECCOMP_RET_KILL_PROCESS
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
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
