/* probe: observes a sandbox from inside.
 *
 * Each subcommand tries one thing and prints what happened; the exit status
 * says whether it was allowed (0) or refused (1), 2 on a usage error.  Tests
 * run it through `agentkernel run` and assert both the allow and the deny
 * side of every rule.  Static, so it runs inside any root filesystem.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int
report (long rc, int expected_errno_if_allowed)
{
  /* Allowed: the call succeeded, or the kernel rejected our deliberately
   * bad arguments with a different error than the filter's EPERM. */
  (void) expected_errno_if_allowed;
  if (rc >= 0)
    {
      printf ("allowed\n");
      return 0;
    }
  if (errno == EPERM || errno == ENOSYS || errno == EAFNOSUPPORT || errno == EACCES)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  printf ("allowed (kernel said: %s)\n", strerror (errno));
  return 0;
}

/* Run fn in a child; report "killed" if a signal ended it. */
static int
in_child (long (*fn) (void))
{
  pid_t p = fork ();
  int st;
  if (p == 0)
    {
      long rc = fn ();
      _exit (rc < 0 ? (errno == EPERM ? 3 : 4) : 0);
    }
  waitpid (p, &st, 0);
  if (WIFSIGNALED (st))
    {
      printf ("killed by signal %d\n", WTERMSIG (st));
      return 1;
    }
  if (WEXITSTATUS (st) == 3)
    {
      printf ("denied: %s\n", strerror (EPERM));
      return 1;
    }
  printf ("allowed\n");
  return 0;
}

static long
x32_getpid (void)
{
  return syscall (0x40000000 | 39);
}

static long
i386_getpid (void)
{
  long ret = 20; /* __NR_getpid on i386 */
  __asm__ volatile ("int $0x80" : "+a"(ret) : : "memory");
  if (ret < 0 && ret > -4096)
    {
      errno = (int) -ret;
      return -1;
    }
  return ret;
}

static long
clone_newuser (void)
{
  long r = syscall (SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
  if (r == 0)
    _exit (0);
  if (r > 0)
    waitpid ((pid_t) r, NULL, 0);
  return r;
}

static int
try_syscall (const char *name)
{
  long rc;
  errno = 0;
  if (!strcmp (name, "mount"))
    rc = mount ("none", "/nonexistent-probe-dir", "tmpfs", 0, NULL);
  else if (!strcmp (name, "umount"))
    rc = umount2 ("/nonexistent-probe-dir", 0);
  else if (!strcmp (name, "unshare"))
    rc = unshare (CLONE_NEWUSER);
  else if (!strcmp (name, "setns"))
    rc = setns (-1, 0);
  else if (!strcmp (name, "clone-newuser"))
    return in_child (clone_newuser);
  else if (!strcmp (name, "clone3"))
    rc = syscall (SYS_clone3, NULL, 0);
  else if (!strcmp (name, "keyctl"))
    rc = syscall (SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -12345, 0);
  else if (!strcmp (name, "add_key"))
    rc = syscall (SYS_add_key, "user", NULL, NULL, 0, 0);
  else if (!strcmp (name, "request_key"))
    rc = syscall (SYS_request_key, "user", NULL, NULL, 0);
  else if (!strcmp (name, "bpf"))
    rc = syscall (SYS_bpf, -1, NULL, 0);
  else if (!strcmp (name, "perf_event_open"))
    rc = syscall (SYS_perf_event_open, NULL, 0, -1, -1, 0);
  else if (!strcmp (name, "io_uring_setup"))
    rc = syscall (SYS_io_uring_setup, 1, NULL);
  else if (!strcmp (name, "kexec_load"))
    rc = syscall (SYS_kexec_load, 0, 0, NULL, 0);
  else if (!strcmp (name, "init_module"))
    rc = syscall (SYS_init_module, NULL, 0, "");
  else if (!strcmp (name, "finit_module"))
    rc = syscall (SYS_finit_module, -1, "", 0);
  else if (!strcmp (name, "delete_module"))
    rc = syscall (SYS_delete_module, "probe_nonexistent", 0);
  else if (!strcmp (name, "reboot"))
    rc = syscall (SYS_reboot, 0, 0, 0, NULL);
  else if (!strcmp (name, "clock_settime"))
    rc = syscall (SYS_clock_settime, -1, NULL);
  else if (!strcmp (name, "settimeofday"))
    rc = syscall (SYS_settimeofday, NULL, NULL);
  else if (!strcmp (name, "ptrace"))
    {
      pid_t p = fork ();
      int st;
      if (p == 0)
        _exit (ptrace (PTRACE_TRACEME, 0, NULL, NULL) < 0 ? (errno == EPERM ? 3 : 4) : 0);
      waitpid (p, &st, 0);
      if (WEXITSTATUS (st) == 3)
        errno = EPERM, rc = -1;
      else
        rc = 0;
    }
  else if (!strcmp (name, "process_vm_readv"))
    rc = syscall (SYS_process_vm_readv, getpid (), NULL, 0, NULL, 0, 0);
  else if (!strcmp (name, "personality"))
    rc = personality (0xffffffff);
  else if (!strcmp (name, "userfaultfd"))
    rc = syscall (SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */);
  else if (!strcmp (name, "tiocsti"))
    {
      int fd = open ("/dev/null", O_RDONLY);
      char c = 'x';
      rc = ioctl (fd, TIOCSTI, &c);
      if (rc < 0 && errno == ENOTTY)
        rc = 0;
    }
  else if (!strcmp (name, "syslog"))
    rc = syscall (SYS_syslog, 0, NULL, 0);
  else if (!strcmp (name, "af_alg"))
    {
      rc = socket (AF_ALG, SOCK_SEQPACKET, 0);
      if (rc < 0 && errno == EAFNOSUPPORT)
        {
          printf ("denied: %s\n", strerror (errno));
          return 1;
        }
    }
  else if (!strncmp (name, "nr=", 3))
    {
      /* nr=N or nr=FIRST-LAST: denied only if every one is. */
      char *end;
      long first = strtol (name + 3, &end, 10), last = *end == '-' ? atol (end + 1) : first;
      for (long nr = first; nr <= last; nr++)
        {
          errno = 0;
          rc = syscall (nr, 0, 0, 0, 0, 0, 0);
          if (rc >= 0 || errno != ENOSYS)
            {
              printf ("allowed (system call %ld: %s)\n", nr, rc >= 0 ? "succeeded" : strerror (errno));
              return 0;
            }
        }
    }
  else if (!strcmp (name, "x32"))
    return in_child (x32_getpid);
  else if (!strcmp (name, "i386"))
    return in_child (i386_getpid);
  else
    {
      fprintf (stderr, "probe: unknown syscall %s\n", name);
      return 2;
    }
  return report (rc, 0);
}

static int
status_line (const char *key)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  int found = 0;
  while (f && fgets (line, sizeof line, f))
    if (strncmp (line, key, strlen (key)) == 0)
      {
        fputs (line, stdout);
        found = 1;
      }
  if (f)
    fclose (f);
  return found ? 0 : 1;
}

static int
try_write (const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write (fd, "probe\n", 6) != 6)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  close (fd);
  printf ("written\n");
  return 0;
}

static int
try_read (const char *path)
{
  char buf[256];
  int fd = open (path, O_RDONLY);
  ssize_t n;
  if (fd < 0)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  n = read (fd, buf, sizeof buf - 1);
  if (n < 0)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  buf[n] = 0;
  printf ("read %zd bytes\n", n);
  close (fd);
  return 0;
}

static int
try_connect (const char *host, const char *port)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) atoi (port)) };
  int s = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct pollfd p = { .fd = s, .events = POLLOUT };
  int e = 0;
  socklen_t l = sizeof e;
  if (inet_pton (AF_INET, host, &a.sin_addr) != 1)
    return 2;
  if (connect (s, (struct sockaddr *) &a, sizeof a) < 0 && errno != EINPROGRESS)
    {
      printf ("unreachable: %s\n", strerror (errno));
      return 1;
    }
  if (poll (&p, 1, 3000) != 1)
    {
      printf ("unreachable: timeout\n");
      return 1;
    }
  getsockopt (s, SOL_SOCKET, SO_ERROR, &e, &l);
  if (e != 0)
    {
      printf ("unreachable: %s\n", strerror (e));
      return 1;
    }
  printf ("connected\n");
  return 0;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int
print_env (void)
{
  size_t n = 0;
  char **v;
  while (environ[n])
    n++;
  v = calloc (n + 1, sizeof *v);
  memcpy (v, environ, n * sizeof *v);
  qsort (v, n, sizeof *v, cmp_str);
  for (size_t i = 0; i < n; i++)
    puts (v[i]);
  return 0;
}

static int
list_pids (void)
{
  DIR *d = opendir ("/proc");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir (d)))
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
      {
        char path[300], comm[64] = "";
        FILE *f;
        snprintf (path, sizeof path, "/proc/%s/comm", e->d_name);
        f = fopen (path, "r");
        if (f)
          {
            if (!fgets (comm, sizeof comm, f))
              comm[0] = 0;
            fclose (f);
          }
        comm[strcspn (comm, "\n")] = 0;
        printf ("%s %s\n", e->d_name, comm);
        n++;
      }
  if (d)
    closedir (d);
  return n > 0 ? 0 : 1;
}

static int
list_devices (void)
{
  DIR *d = opendir ("/dev");
  struct dirent *e;
  while (d && (e = readdir (d)))
    {
      char path[300];
      struct stat st;
      snprintf (path, sizeof path, "/dev/%s", e->d_name);
      if (lstat (path, &st) == 0 && (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode)))
        printf ("%s %c %u:%u\n", e->d_name, S_ISCHR (st.st_mode) ? 'c' : 'b', major (st.st_rdev),
                minor (st.st_rdev));
    }
  if (d)
    closedir (d);
  return 0;
}

static int
try_mknod (const char *path)
{
  if (mknod (path, S_IFCHR | 0666, makedev (1, 3)) < 0)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  printf ("created\n");
  return 0;
}

/* Give PATH the mode MODE (octal, e.g. 4755) through one system call,
 * creating it where the route creates.  The host then looks at the file:
 * a set-id bit must never get there.  Exit 0 when the call succeeded. */
static int
try_setid (const char *path, const char *route, const char *mode_s)
{
  mode_t mode = (mode_t) strtoul (mode_s, NULL, 8);
  long rc;
  int fd = -1;

  umask (0);
  unlink (path);
  /* The routes that change a mode need a file to change. */
  if (!strcmp (route, "chmod") || !strcmp (route, "fchmod") || !strcmp (route, "fchmodat")
      || !strcmp (route, "fchmodat2"))
    {
      fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0755);
      if (fd < 0)
        {
          printf ("probe: create %s: %s\n", path, strerror (errno));
          return 2;
        }
    }
  errno = 0;
  if (!strcmp (route, "chmod"))
    rc = chmod (path, mode);
  else if (!strcmp (route, "fchmod"))
    rc = fchmod (fd, mode);
  else if (!strcmp (route, "fchmodat"))
    rc = syscall (SYS_fchmodat, AT_FDCWD, path, mode);
  else if (!strcmp (route, "fchmodat2"))
    rc = syscall (452 /* fchmodat2 */, AT_FDCWD, path, mode, 0);
  else if (!strcmp (route, "open"))
    rc = syscall (SYS_open, path, O_WRONLY | O_CREAT | O_EXCL, mode);
  else if (!strcmp (route, "openat"))
    rc = syscall (SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, mode);
  else if (!strcmp (route, "creat"))
    rc = syscall (SYS_creat, path, mode);
  else if (!strcmp (route, "openat2"))
    {
      struct open_how how = { .flags = O_WRONLY | O_CREAT | O_EXCL, .mode = mode };
      rc = syscall (SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    }
  else if (!strcmp (route, "tmpfile"))
    {
      /* An unnamed file in PATH's directory, then linked in at PATH. */
      char dir[4096], self[64];
      snprintf (dir, sizeof dir, "%s", path);
      *(strrchr (dir, '/') ?: dir) = '\0';
      rc = syscall (SYS_openat, AT_FDCWD, dir[0] ? dir : ".", O_TMPFILE | O_WRONLY, mode);
      if (rc >= 0)
        {
          snprintf (self, sizeof self, "/proc/self/fd/%ld", rc);
          if (linkat (AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
            {
              printf ("probe: link %s: %s\n", path, strerror (errno));
              return 2;
            }
        }
    }
  else if (!strcmp (route, "mknod"))
    rc = syscall (SYS_mknod, path, S_IFREG | mode, 0);
  else if (!strcmp (route, "mknodat"))
    rc = syscall (SYS_mknodat, AT_FDCWD, path, S_IFREG | mode, 0);
  else
    {
      fprintf (stderr, "probe: unknown route %s\n", route);
      return 2;
    }
  if (rc < 0)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  printf ("allowed\n");
  return 0;
}

/* Touch `mb` MiB; the OOM killer ends us if a limit is lower. */
static int
eat_memory (const char *mb)
{
  size_t n = (size_t) atol (mb) << 20;
  char *p = mmap (NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  for (size_t i = 0; i < n; i += 4096)
    p[i] = 1;
  printf ("allocated %s MiB\n", mb);
  return 0;
}

/* Fork up to n sleeping children; report how many could be created. */
static int
fork_many (const char *count)
{
  int n = atoi (count), ok = 0;
  pid_t *kids = calloc ((size_t) n + 1, sizeof *kids);
  for (int i = 0; i < n; i++)
    {
      pid_t p = fork ();
      if (p < 0)
        break;
      if (p == 0)
        {
          pause ();
          _exit (0);
        }
      kids[ok++] = p;
    }
  printf ("forked %d\n", ok);
  for (int i = 0; i < ok; i++)
    kill (kids[i], SIGKILL);
  return ok == n ? 0 : 1;
}

static void *
spin (void *arg)
{
  volatile unsigned long x = 0;
  double end = *(double *) arg;
  struct timespec ts;
  do
    {
      for (int i = 0; i < 100000; i++)
        x++;
      clock_gettime (CLOCK_MONOTONIC, &ts);
    }
  while (ts.tv_sec + ts.tv_nsec / 1e9 < end);
  return NULL;
}

/* Busy-loop `threads` threads for `secs` seconds of wall time; print the CPU
 * time used per wall second (a CPU quota caps it). */
static int
cpu_share (const char *threads, const char *secs)
{
  int n = atoi (threads);
  pthread_t t[16];
  struct timespec a, b;
  struct rusage ru;
  double end, wall, cpu;
  clock_gettime (CLOCK_MONOTONIC, &a);
  end = a.tv_sec + a.tv_nsec / 1e9 + atof (secs);
  for (int i = 0; i < n && i < 16; i++)
    pthread_create (&t[i], NULL, spin, &end);
  for (int i = 0; i < n && i < 16; i++)
    pthread_join (t[i], NULL);
  clock_gettime (CLOCK_MONOTONIC, &b);
  getrusage (RUSAGE_SELF, &ru);
  wall = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf ("%.2f\n", cpu / wall);
  return 0;
}

static int
try_setuid (void)
{
  if (setuid (0) < 0)
    {
      printf ("denied: %s\n", strerror (errno));
      return 1;
    }
  printf ("allowed\n");
  return 0;
}

int
main (int argc, char **argv)
{
  const char *c = argc > 1 ? argv[1] : "";
  setvbuf (stdout, NULL, _IONBF, 0);
  if (!strcmp (c, "syscall") && argc == 3)
    return try_syscall (argv[2]);
  if (!strcmp (c, "status") && argc == 3)
    return status_line (argv[2]);
  if (!strcmp (c, "write") && argc == 3)
    return try_write (argv[2]);
  if (!strcmp (c, "read") && argc == 3)
    return try_read (argv[2]);
  if (!strcmp (c, "connect") && argc == 4)
    return try_connect (argv[2], argv[3]);
  if (!strcmp (c, "env"))
    return print_env ();
  if (!strcmp (c, "pids"))
    return list_pids ();
  if (!strcmp (c, "devices"))
    return list_devices ();
  if (!strcmp (c, "mknod") && argc == 3)
    return try_mknod (argv[2]);
  if (!strcmp (c, "setid") && argc == 5)
    return try_setid (argv[2], argv[3], argv[4]);
  if (!strcmp (c, "memory") && argc == 3)
    return eat_memory (argv[2]);
  if (!strcmp (c, "fork") && argc == 3)
    return fork_many (argv[2]);
  if (!strcmp (c, "cpu") && argc == 4)
    return cpu_share (argv[2], argv[3]);
  if (!strcmp (c, "setuid"))
    return try_setuid ();
  if (!strcmp (c, "ids"))
    {
      printf ("uid=%u gid=%u\n", getuid (), getgid ());
      return 0;
    }
  if (!strcmp (c, "nnp"))
    {
      printf ("%d\n", prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
      return 0;
    }
  fprintf (stderr, "usage: probe syscall NAME | status KEY | write PATH | read PATH | connect IP PORT |"
                   " env | pids | devices | mknod PATH | memory MB | fork N | cpu THREADS SECS |"
                   " setuid | ids | nnp | setid PATH ROUTE MODE\n");
  return 2;
}
