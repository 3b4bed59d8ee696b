/* vmm-probe: plays a compromised VMM.
 *
 * The test build of agentkernel runs it instead of QEMU (AK_TEST_VMM),
 * under exactly QEMU's jail (src/backend/microvm/jail.c).  It tries what a
 * guest that took over QEMU would try next and prints one line per attempt
 * on its stdout (the VM's console.log):
 *   vmm-probe NAME: ok | ERRNO_NAME
 * then "vmm-probe done".  AK_PROBE_PID is another VM's QEMU (host pid),
 * AK_PROBE_FILES a colon-separated list of host files to open.  Static: the
 * jail holds no C library of its own version.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void
say (const char *name, long rc)
{
  if (rc >= 0)
    printf ("vmm-probe %s: ok\n", name);
  else
    printf ("vmm-probe %s: %s\n", name, strerrorname_np (errno) ? strerrorname_np (errno) : "?");
  fflush (stdout);
}

int
main (void)
{
  const char *other = getenv ("AK_PROBE_PID");
  const char *files = getenv ("AK_PROBE_FILES");
  pid_t opid = other ? (pid_t) atoi (other) : 0;
  char buf[64], host[64] = "";
  struct iovec local = { buf, sizeof buf }, remote = { buf, sizeof buf };
  struct rlimit rl;
  char *const targv[] = { "true", NULL }, *const tenv[] = { NULL };

  printf ("vmm-probe uid: %u\n", (unsigned) getuid ());
  printf ("vmm-probe pid: %d\n", (int) getpid ());
  gethostname (host, sizeof host - 1);
  printf ("vmm-probe hostname: %s\n", host);
  {
    DIR *d = opendir ("/");
    struct dirent *e;
    printf ("vmm-probe root:");
    while (d != NULL && (e = readdir (d)) != NULL)
      if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
        printf (" %s", e->d_name);
    printf ("\n");
    if (d != NULL)
      closedir (d);
  }
  getrlimit (RLIMIT_CORE, &rl);
  printf ("vmm-probe core: %llu\n", (unsigned long long) rl.rlim_max);
  getrlimit (RLIMIT_NOFILE, &rl);
  printf ("vmm-probe nofile: %llu\n", (unsigned long long) rl.rlim_max);

  /* Other processes. */
  say ("ptrace-other", ptrace (PTRACE_ATTACH, opid, NULL, NULL));
  say ("process_vm_readv-self", process_vm_readv (getpid (), &local, 1, &remote, 1, 0));
  say ("kill-self", kill (getpid (), 0));
  say ("kill-other", kill (opid, SIGKILL));
  /* The kernel's wider surfaces. */
  say ("mount", mount ("none", "/boot", "tmpfs", 0, NULL));
  say ("umount", umount2 ("/usr", MNT_DETACH));
  say ("chroot", chroot ("/usr"));
  say ("unshare-user", unshare (CLONE_NEWUSER));
  say ("setns", setns (-1, 0));
  say ("bpf", syscall (SYS_bpf, 5 /* BPF_PROG_LOAD */, NULL, 0));
  say ("keyctl", syscall (SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  say ("perf_event_open", syscall (SYS_perf_event_open, NULL, 0, -1, -1, 0));
  say ("userfaultfd", syscall (SYS_userfaultfd, 0));
  say ("io_uring_setup", syscall (SYS_io_uring_setup, 1, NULL));
  say ("init_module", syscall (SYS_init_module, NULL, 0, ""));
  say ("kexec_load", syscall (SYS_kexec_load, 0, 0, NULL, 0));
  /* Privileges. */
  say ("setuid-0", setuid (0));
  rl = (struct rlimit){ 65536, 65536 };
  say ("raise-nofile", setrlimit (RLIMIT_NOFILE, &rl));
  say ("dup-to-4096", dup2 (1, 4096));
  /* Exec, once started. */
  say ("access-true", access ("/usr/bin/true", X_OK));
  say ("execve", execve ("/usr/bin/true", targv, tenv));
  {
    int fd = open ("/usr/bin/true", O_RDONLY | O_CLOEXEC);
    say ("execveat", syscall (SYS_execveat, fd, "", targv, tenv, AT_EMPTY_PATH));
  }
  /* Files. */
  say ("write-root", open ("/probe-file", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  say ("open-kvm", open ("/dev/kvm", O_RDWR | O_CLOEXEC));
  say ("open-proc", open ("/proc/self/status", O_RDONLY | O_CLOEXEC));
  say ("read-kernel", open ("/boot/vmlinuz", O_RDONLY | O_CLOEXEC));
  say ("write-kernel", open ("/boot/vmlinuz", O_WRONLY | O_CLOEXEC));
  for (char *list = files ? strdup (files) : NULL, *save = NULL, *f = list ? strtok_r (list, ":", &save) : NULL;
       f != NULL; f = strtok_r (NULL, ":", &save))
    {
      char name[4200];
      snprintf (name, sizeof name, "open %s", f);
      say (name, open (f, O_RDONLY | O_CLOEXEC));
    }
  printf ("vmm-probe done\n");
  return 0;
}
