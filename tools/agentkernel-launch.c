/* agentkernel: the launcher.
 *
 * A small static program (musl where it is installed: no dynamic loader,
 * and a C library start-up that costs a tenth of glibc's on a machine
 * where each CPUID instruction traps to a hypervisor) in front of
 * agentkernel-core, the program itself, which lies next to it.  For `run`
 * while a pool daemon is up it hands the run to one of the daemon's fronts
 * (service/pool.h, src/cli/front.c: an agentkernel-core process started
 * beforehand), which claims a warm sandbox in this program's place; for
 * everything else, and for any run the front does not take, it becomes
 * agentkernel-core with the same arguments and environment (execve: same
 * process, same pid, nothing of this program left).
 *
 * Links nothing of the project (another C library): what it shares with
 * agentkernel-core is the protocol in src/cli/front.c and the state
 * directory's location (service/store.c, ak_store_root).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

/* The largest request sent in the message itself (front.c). */
#define REQUEST_INLINE_MAX (48u << 10)

extern char **environ;

static volatile sig_atomic_t front_pid, got_signal;

static _Noreturn void
exec_core (char **argv)
{
  char self[PATH_MAX], core[PATH_MAX + 32];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  char *slash;

  if (n <= 0 || (size_t) n >= sizeof self - 1)
    {
      /* No /proc (a bare chroot): agentkernel-core as the shell would
       * find it. */
      execvp ("agentkernel-core", argv);
      fprintf (stderr, "agentkernel: cannot find agentkernel-core (no /proc/self/exe, none on PATH): %s\n",
               strerror (errno));
      _exit (125);
    }
  self[n] = '\0';
  slash = strrchr (self, '/');
  *slash = '\0';
  snprintf (core, sizeof core, "%s/agentkernel-core", self);
  execve (core, argv, environ);
  fprintf (stderr, "agentkernel: cannot run %s: %s\n", core, strerror (errno));
  _exit (125);
}

/* <state>/pool/front.sock, as agentkernel-core finds its state directory;
 * 0 when there is none to try. */
static int
front_address (struct sockaddr_un *sa)
{
  const char *s = getenv ("AGENTKERNEL_STATE_DIR"), *x = getenv ("XDG_DATA_HOME"), *h = getenv ("HOME");
  int n;

  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (s != NULL && *s != '\0')
    n = snprintf (sa->sun_path, sizeof sa->sun_path, "%s/pool/front.sock", s);
  else if (x != NULL && x[0] == '/')
    n = snprintf (sa->sun_path, sizeof sa->sun_path, "%s/agentkernel/pool/front.sock", x);
  else if (h != NULL && h[0] == '/')
    n = snprintf (sa->sun_path, sizeof sa->sun_path, "%s/.local/share/agentkernel/pool/front.sock", h);
  else
    return 0;
  return n > 0 && (size_t) n < sizeof sa->sun_path;
}

static int
put (char **buf, size_t *len, size_t *cap, char tag, const char *s)
{
  size_t n = strlen (s) + 2;
  if (*len + n > *cap)
    {
      size_t c = (*cap + n) * 2;
      char *b = realloc (*buf, c);
      if (b == NULL)
        return -1;
      *buf = b, *cap = c;
    }
  (*buf)[*len] = tag;
  memcpy (*buf + *len + 1, s, n - 1);
  *len += n;
  return 0;
}

/* The signals this process ignores, which a command inherits, asked of
 * the kernel one by one (the C library hides the signals it keeps for
 * itself, 32 to 34, which a caller may ignore too). */
static unsigned long long
ignored_signals (void)
{
  unsigned long long set = 0;

  for (int sig = 1; sig < 65; sig++)
    {
      struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long long mask;
      } old;
      if (sig != SIGKILL && sig != SIGSTOP && syscall (SYS_rt_sigaction, sig, NULL, &old, sizeof old.mask) == 0
          && old.handler == (void *) SIG_IGN)
        set |= 1ULL << (sig - 1);
    }
  return set;
}

/* The request's entries (front.c), in *buf (malloc'd); -1 when out of
 * memory. */
static int
request_build (char **argv, char **out, size_t *out_len)
{
  char *buf = NULL, num[32];
  size_t len = 0, cap = 0;
  mode_t um = umask (0);

  umask (um);
  /* One allocation for all of it, most of the time. */
  for (char **e = environ; e != NULL && *e != NULL; e++)
    cap += strlen (*e) + 2;
  for (char **a = argv; *a != NULL; a++)
    cap += strlen (*a) + 2;
  cap += 64;
  buf = malloc (cap);
  if (buf == NULL)
    return -1;
  for (char **a = argv; *a != NULL; a++)
    if (put (&buf, &len, &cap, 'a', *a) < 0)
      return -1;
  for (char **e = environ; e != NULL && *e != NULL; e++)
    if (put (&buf, &len, &cap, 'e', *e) < 0)
      return -1;
  snprintf (num, sizeof num, "%o", (unsigned) um);
  if (put (&buf, &len, &cap, 'u', num) < 0)
    return -1;
  snprintf (num, sizeof num, "%llx", ignored_signals ());
  if (put (&buf, &len, &cap, 'i', num) < 0)
    return -1;
  *out = buf;
  *out_len = len;
  return 0;
}

/* A request too large for one message, as a sealed memfd; -1 on failure. */
static int
request_memfd (const char *buf, size_t len)
{
  int fd = memfd_create ("agentkernel-run", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -1;
  for (size_t off = 0; off < len;)
    {
      ssize_t w = write (fd, buf + off, len - off);
      if (w <= 0)
        {
          close (fd);
          return -1;
        }
      off += (size_t) w;
    }
  if (fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

static void
on_signal (int sig)
{
  got_signal = sig;
  if (front_pid > 0)
    kill ((pid_t) front_pid, sig);
}

/* One answer of the front; 0 when its end closed. */
static ssize_t
answer (int s, char *buf, size_t size)
{
  ssize_t n;
  while ((n = recv (s, buf, size - 1, 0)) < 0 && errno == EINTR)
    ;
  if (n < 0)
    n = 0;
  buf[n] = '\0';
  return n;
}

/* Dies of the signal this process got while the front had the run and
 * did not take it: the caller asked for the command to end before it
 * began. */
static void
die_of_pending_signal (void)
{
  int sig = got_signal;
  sigset_t none;
  if (sig == 0)
    return;
  signal (sig, SIG_DFL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  raise (sig);
  _exit (128 + sig);
}

int
main (int argc, char **argv)
{
  static const int relayed[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
  struct sockaddr_un sa;
  int s, req = -1, cwd, fds[5];
  size_t n_fds = 0, len;
  char buf[64], *entries;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE (sizeof fds)];
  } u;
  struct iovec iov[2] = { { .iov_base = (void *) "AKF2", .iov_len = 4 } };
  struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf };
  struct cmsghdr *c;

  /* Only a plain `run` may go to a front; a terminal on stdin means job
   * control, which needs the command in this session (a cold start). */
  if (argc < 3 || strcmp (argv[1], "run") != 0 || isatty (STDIN_FILENO) || !front_address (&sa))
    exec_core (argv);
  s = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0 || connect (s, (struct sockaddr *) &sa, sizeof sa) < 0)
    exec_core (argv);
  if (request_build (argv, &entries, &len) < 0)
    exec_core (argv);
  /* In the message itself ("AKF2"), or in a sealed memfd when larger
   * ("AKF1"): either way nothing the front reads can change under it. */
  if (len > REQUEST_INLINE_MAX)
    {
      if ((req = request_memfd (entries, len)) < 0)
        exec_core (argv);
      iov[0].iov_base = (void *) "AKF1";
      m.msg_iovlen = 1;
      fds[n_fds++] = req;
    }
  else
    {
      iov[1].iov_base = entries;
      iov[1].iov_len = len;
    }
  cwd = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0)
    exec_core (argv);
  fds[n_fds++] = 0, fds[n_fds++] = 1, fds[n_fds++] = 2, fds[n_fds++] = cwd;
  memset (&u, 0, sizeof u);
  m.msg_controllen = CMSG_SPACE (n_fds * sizeof (int));
  c = &u.h;
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (n_fds * sizeof (int));
  memcpy (CMSG_DATA (c), fds, n_fds * sizeof (int));
  /* The caller's signals go to the front, which relays them to the
   * command; an ignored one stays ignored (the command inherits that). */
  for (size_t i = 0; i < sizeof relayed / sizeof relayed[0]; i++)
    {
      struct sigaction old, act = { .sa_handler = on_signal };
      sigemptyset (&act.sa_mask);
      if (sigaction (relayed[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
        sigaction (relayed[i], &act, NULL);
    }
  while (sendmsg (s, &m, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      exec_core (argv);
  if (req >= 0)
    close (req);
  close (cwd);
  free (entries);
  /* "S<pid>", "X<code>" (front.c); an end before "S" is a cold start. */
  if (answer (s, buf, sizeof buf) <= 0 || buf[0] != 'S')
    {
      /* "C": the pool was asked and had nothing; agentkernel-core does
       * not ask again (src/cli/main.c). */
      if (buf[0] == 'C')
        setenv ("AGENTKERNEL_POOL_ASKED", "1", 1);
      goto cold;
    }
  /* A signal that came before is the command's now. */
  front_pid = atoi (buf + 1);
  if (got_signal != 0)
    kill ((pid_t) front_pid, got_signal);
  if (answer (s, buf, sizeof buf) <= 0 || buf[0] != 'X')
    {
      fprintf (stderr, "agentkernel: the pool's front ended without the command's status\n");
      return 125;
    }
  return atoi (buf + 1);

cold:
  close (s);
  die_of_pending_signal ();
  for (size_t i = 0; i < sizeof relayed / sizeof relayed[0]; i++)
    {
      struct sigaction act;
      if (sigaction (relayed[i], NULL, &act) == 0 && act.sa_handler == on_signal)
        signal (relayed[i], SIG_DFL);
    }
  exec_core (argv);
}
