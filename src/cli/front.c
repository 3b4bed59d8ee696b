/* A pool front (service/pool.h): started by the pool daemon with its front
 * socket on descriptor 3 and the write end of its busy pipe on 4, it waits
 * for one launcher (tools/agentkernel-launch.c), runs that launcher's
 * `run` as `agentkernel-core run` would in the launcher's place, and exits.
 *
 * The launcher's request: one message, "AKF2" followed by the request's
 * entries, with four descriptors (its stdin, stdout, stderr and working
 * directory); or, when the entries are larger than REQUEST_INLINE_MAX,
 * "AKF1" alone with five descriptors, a sealed memfd holding them first.
 * The entries are NUL-terminated:
 *
 *   a<arg>            the command line, argv[0] first
 *   e<KEY=VALUE>      the environment
 *   u<octal>          the umask
 *   i<hex>            the ignored signals (bit n-1: signal n)
 *
 * The answers: "S<pid>" once the warm sandbox has the command (from then
 * on the run is this front's: its messages are printed and its audit
 * records written; the launcher sends the signals it gets to <pid>, this
 * front, which relays them), "X<code>" with the exit status.  A connection closed before
 * "S" means nothing happened: the launcher starts agentkernel-core itself
 * (with AK_POOL_ASKED_ENV set when "C" came first: the pool was asked and
 * had nothing, and is not asked twice).
 * The launcher's end closing kills this front (F_SETSIG), as a killed
 * `agentkernel run` ends its sandbox: the claimed sandbox's owner sees its
 * claimant gone and kills the command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/peer.h"
#include "common/util.h"
#include "service/audit.h"
#include "service/pool.h"

#define FRONT_LISTEN 3
#define FRONT_BUSY 4
/* The daemon's badge, which its claims carry (common/peer.h); 5 is the
 * program the daemon started this one from. */
#define FRONT_BADGE 6
/* Largest request (command line and environment). */
#define REQUEST_MAX (4u << 20)
/* The largest that comes in the message itself (the launcher's
 * REQUEST_INLINE_MAX); a larger one comes in a sealed memfd. */
#define REQUEST_INLINE_MAX (48u << 10)
/* stdin, stdout, stderr, the working directory. */
#define REQUEST_FDS 4

static int client = -1;
/* The run's own messages, held until the sandbox has the command. */
static struct {
  FILE *out, *err;
  char *out_buf, *err_buf;
  size_t out_len, err_len;
  FILE *real_out, *real_err;
} held;

static void
hold_messages (void)
{
  held.real_out = stdout;
  held.real_err = stderr;
  held.out = open_memstream (&held.out_buf, &held.out_len);
  held.err = open_memstream (&held.err_buf, &held.err_len);
  if (held.out == NULL || held.err == NULL)
    ak_oom ();
  stdout = held.out;
  stderr = held.err;
}

static void
release_messages (bool print)
{
  if (held.out == NULL)
    return;
  fflush (held.out);
  fflush (held.err);
  stdout = held.real_out;
  stderr = held.real_err;
  if (print)
    {
      (void) ak_write_all (STDOUT_FILENO, held.out_buf, held.out_len);
      (void) ak_write_all (STDERR_FILENO, held.err_buf, held.err_len);
    }
  fclose (held.out);
  fclose (held.err);
  free (held.out_buf);
  free (held.err_buf);
  memset (&held, 0, sizeof held);
}

static void
answer (const char *text)
{
  while (send (client, text, strlen (text), MSG_NOSIGNAL) < 0 && errno == EINTR)
    ;
}

/* The sandbox has the command: the run is this front's now.  The
 * launcher learns this front's pid with it, for the signals it relays. */
static void
front_started (void)
{
  char s[32];
  release_messages (true);
  snprintf (s, sizeof s, "S%d", (int) getpid ());
  answer (s);
  /* Busy: the daemon starts another front when none is left idle.  Said
   * now, while the command runs, not as the run arrives (the daemon's
   * wake-up would be in the run's way); a run not taken ends this
   * process, which says it as well. */
  close (FRONT_BUSY);
}

/* The memfd's entries; NULL when it is not a sealed memfd of a sane size
 * whose entries all end. */
static char *
request_read (int fd, size_t *len)
{
  const int sealed = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
  int seals = fcntl (fd, F_GET_SEALS);
  ak_error_t *err = NULL;
  char *buf;

  if (seals < 0 || (seals & sealed) != sealed)
    return NULL;
  buf = ak_read_fd (fd, REQUEST_MAX, len, "request", &err);
  ak_error_free (err);
  if (buf != NULL && buf[*len - 1] != '\0')
    {
      free (buf);
      return NULL;
    }
  return buf;
}

/* The request: its entries in *out (NUL-terminated, malloc'd) and its
 * descriptors; -1 (nothing kept) for anything else. */
static int
request_recv (char **out, size_t *out_len, int fds[REQUEST_FDS])
{
  char *buf = ak_xmalloc (REQUEST_INLINE_MAX + 8);
  int got_fds[REQUEST_FDS + 1];
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE ((REQUEST_FDS + 1) * sizeof (int))];
  } u;
  struct iovec iov = { .iov_base = buf, .iov_len = REQUEST_INLINE_MAX + 8 };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct cmsghdr *c;
  ssize_t n;
  size_t got = 0;
  bool whole;

  while ((n = recvmsg (client, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  for (c = n >= 0 ? CMSG_FIRSTHDR (&m) : NULL; c != NULL; c = CMSG_NXTHDR (&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        size_t k = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        for (size_t i = 0; i < k; i++)
          {
            int fd;
            memcpy (&fd, CMSG_DATA (c) + i * sizeof (int), sizeof fd);
            if (got < REQUEST_FDS + 1)
              got_fds[got++] = fd;
            else
              close (fd);
          }
      }
  whole = n >= 4 && !(m.msg_flags & (MSG_CTRUNC | MSG_TRUNC));
  if (whole && memcmp (buf, "AKF2", 4) == 0 && n > 4 && buf[n - 1] == '\0' && got == REQUEST_FDS)
    {
      /* In the message itself. */
      memmove (buf, buf + 4, (size_t) n - 4);
      buf[n - 4] = '\0';
      *out = buf;
      *out_len = (size_t) n - 4;
      memcpy (fds, got_fds, sizeof got_fds[0] * REQUEST_FDS);
      return 0;
    }
  if (whole && n == 4 && memcmp (buf, "AKF1", 4) == 0 && got == REQUEST_FDS + 1
      && (*out = request_read (got_fds[0], out_len)) != NULL)
    {
      /* Too large for one message: in a sealed memfd. */
      close (got_fds[0]);
      free (buf);
      memcpy (fds, got_fds + 1, sizeof got_fds[0] * REQUEST_FDS);
      return 0;
    }
  for (size_t i = 0; i < got; i++)
    close (got_fds[i]);
  free (buf);
  return -1;
}

/* Becomes the launcher as far as `run` can tell: its streams, directory,
 * environment, umask and ignored signals.  Returns argc (0: a request this
 * front does not take). */
static int
become_client (char *buf, size_t len, const int fds[REQUEST_FDS], char ***argv_out)
{
  size_t n_entries = ak_count_entries (buf, len) + 1;
  char **argv = ak_xcalloc (n_entries, sizeof (char *));
  char **env = ak_xcalloc (n_entries, sizeof (char *));
  size_t na = 0, ne = 0;
  unsigned long long ign = 0;
  unsigned um = 022;

  for (size_t pos = 0; pos < len;)
    {
      char *s = buf + pos;
      pos += strlen (s) + 1;
      if (s[0] == 'a')
        argv[na++] = s + 1;
      else if (s[0] == 'e' && strchr (s + 1, '=') != NULL)
        env[ne++] = s + 1;
      else if (s[0] == 'u')
        um = (unsigned) strtoul (s + 1, NULL, 8) & 0777;
      else if (s[0] == 'i')
        ign = strtoull (s + 1, NULL, 16);
    }
  if (na < 2 || strcmp (argv[1], "run") != 0 || dup2 (fds[0], 0) < 0 || dup2 (fds[1], 1) < 0
      || dup2 (fds[2], 2) < 0 || fchdir (fds[3]) < 0)
    {
      free (argv);
      free (env);
      return 0;
    }
  environ = env;
  umask ((mode_t) um);
  ak_signals_ignore (ign);
  ak_signals_ignored_are (ign);
  *argv_out = argv;
  return (int) na;
}

/* Waits for a launcher (-1 on SIGTERM/SIGINT: the daemon stops).  The
 * socket is watched exclusively (EPOLLEXCLUSIVE): a launcher wakes one
 * idle front, not all of them. */
static int
wait_for_client (int sigfd)
{
  _cleanup_close_ int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event l = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0 };
  struct epoll_event g = { .events = EPOLLIN, .data.u32 = 1 };

  if (ep < 0 || epoll_ctl (ep, EPOLL_CTL_ADD, FRONT_LISTEN, &l) < 0 || epoll_ctl (ep, EPOLL_CTL_ADD, sigfd, &g) < 0)
    return -1;
  for (;;)
    {
      struct epoll_event ev[2];
      int n = epoll_wait (ep, ev, 2, -1), c;
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      for (int i = 0; i < n; i++)
        if (ev[i].data.u32 == 1)
          return -1;
      c = accept4 (FRONT_LISTEN, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0)
        return c;
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        return -1;
    }
}

int
ak_cli_front_main (void)
{
  sigset_t mask;
  _cleanup_close_ int sigfd = -1;
  int fds[REQUEST_FDS], argc, code;
  /* Kept to the end: the environment and arguments point into it. */
  char *buf = NULL;
  char **argv = NULL;
  size_t len = 0;
  char text[32];
  ak_error_t *err = NULL;
  pid_t peer;

  if (fcntl (FRONT_LISTEN, F_SETFD, FD_CLOEXEC) < 0 || fcntl (FRONT_BUSY, F_SETFD, FD_CLOEXEC) < 0
      || fcntl (FRONT_BADGE, F_SETFD, FD_CLOEXEC) < 0)
    {
      fprintf (stderr, "agentkernel: %s is run only by the pool daemon\n", AK_POOL_FRONT_COMMAND);
      return AK_EXIT_FAILURE;
    }
  /* The launcher's signals wait for the claim, which relays them to the
   * command (backend's pool_claim); the daemon's stop ends an idle front. */
  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGQUIT);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  ak_peer_badge_set (FRONT_BADGE);
  /* What does not depend on the run, done while waiting for one. */
  ak_audit_warm ();
  ak_audit_hold ();
  /* The JSON library seeds its hashing from /dev/urandom at its first
   * object (a run builds its pool key with it). */
  json_object_seed (0);
  (void) ak_peer_check_prepare ();
  ak_prefault (256 * 1024, 64 * 1024);
  if (sigfd < 0 || (client = wait_for_client (sigfd)) < 0)
    return 0;
  ak_closep (&sigfd);
  close (FRONT_LISTEN);
  /* The launcher sends its request right after connecting: a connection
   * that says nothing for this long holds no front. */
  {
    struct timeval tv = { .tv_sec = 5 };
    (void) setsockopt (client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  if (ak_peer_check (client, &peer, &err) < 0 || request_recv (&buf, &len, fds) < 0)
    {
      ak_error_free (err);
      return 0;
    }
  argc = become_client (buf, len, fds, &argv);
  for (int i = 0; i < REQUEST_FDS; i++)
    close (fds[i]);
  if (argc == 0)
    return 0;
  /* Dies with the launcher: its end closing is the kernel's SIGKILL here. */
  if (fcntl (client, F_SETOWN, getpid ()) < 0 || fcntl (client, F_SETSIG, SIGKILL) < 0
      || fcntl (client, F_SETFL, fcntl (client, F_GETFL) | O_ASYNC) < 0)
    return 0;
  {
    struct pollfd p = { .fd = client, .events = POLLIN };
    if (poll (&p, 1, 0) != 0)
      return 0;
  }
  /* Its records name the process the user started. */
  ak_audit_set_pid (peer);
  hold_messages ();
  ak_pool_front_begin (front_started);
  code = cmd_run (argc - 1, argv + 1);
  if (held.out != NULL)
    {
      /* Not taken (nothing was written, started or printed): the launcher
       * starts agentkernel-core run with the same arguments, told whether
       * the pool was asked already. */
      release_messages (false);
      if (ak_pool_asked ())
        answer ("C");
      return 0;
    }
  fflush (stdout);
  fflush (stderr);
  snprintf (text, sizeof text, "X%d", code);
  answer (text);
  /* Done: the launcher exits now, and its end closing kills this front
   * (above), whose own teardown then does not come before the launcher's
   * exit on a busy CPU.  At most a second. */
  {
    struct pollfd p = { .fd = client, .events = POLLIN };
    (void) poll (&p, 1, 1000);
  }
  return 0;
}
