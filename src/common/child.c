#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <sys/ptrace.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static int
setup_worker (const ak_worker_t *w, pid_t parent)
{
  if (w->death_signal != 0)
    {
      if (prctl (PR_SET_PDEATHSIG, w->death_signal) < 0)
        return -1;
      /* The parent may have died before the signal was armed. */
      if (getppid () != parent)
        raise (w->death_signal);
    }
  if (w->null_stdio)
    {
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (null < 0 || dup2 (null, 0) < 0 || dup2 (null, 1) < 0 || dup2 (null, 2) < 0)
        return -1;
      if (null > 2)
        close (null);
    }
  /* First above the target range, so renumbering cannot clobber a
   * descriptor that is still to be moved. */
  for (size_t i = 0; i < w->n_keep; i++)
    if ((w->keep[i] = fcntl (w->keep[i], F_DUPFD_CLOEXEC, 3 + (int) w->n_keep)) < 0)
      return -1;
  for (size_t i = 0; i < w->n_keep; i++)
    {
      int to = 3 + (int) i;
      if (dup3 (w->keep[i], to, O_CLOEXEC) < 0)
        return -1;
      w->keep[i] = to;
    }
  /* Nothing else of the parent's: another client's socket, a lock or a
   * terminal kept open by a worker would outlive what it belonged to. */
  if (syscall (SYS_close_range, 3 + (unsigned) w->n_keep, ~0U, 0) < 0)
    return -1;
  ak_signals_default ();
  return 0;
}

pid_t
ak_worker_spawn (const ak_worker_t *w, ak_error_t **err)
{
  pid_t parent = getpid ();
  pid_t pid = fork ();

  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid > 0)
    {
      if (w->detach)
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
          ;
      return pid;
    }
  if (w->detach)
    {
      pid_t g;
      if (setsid () < 0)
        _exit (125);
      g = fork ();
      if (g != 0)
        _exit (g < 0 ? 125 : 0);
      parent = getppid ();
    }
  if (setup_worker (w, parent) < 0)
    _exit (125);
  return 0;
}

/* On the wire: kind ('O' or 'E'), value or code, message length, message. */
struct report_head {
  char kind;
  int32_t value;
  uint32_t len;
};

#define REPORT_MAX 4096

static int
send_report (int fd, char kind, int value, const char *msg)
{
  size_t len = msg ? strnlen (msg, REPORT_MAX) : 0;
  char buf[sizeof (struct report_head) + REPORT_MAX];
  struct report_head h = { .kind = kind, .value = value, .len = (uint32_t) len };

  memcpy (buf, &h, sizeof h);
  if (len > 0)
    memcpy (buf + sizeof h, msg, len);
  /* One write: a report is never interleaved with another writer's. */
  return ak_write_all (fd, buf, sizeof h + len);
}

int
ak_report_ok (int fd, int value)
{
  return send_report (fd, 'O', value, NULL);
}

int
ak_report_error (int fd, const ak_error_t *err)
{
  return send_report (fd, 'E', err ? err->code : 0, err ? err->msg : "failed");
}

_Noreturn void
ak_report_fail (int fd, ak_error_t *err)
{
  (void) ak_report_error (fd, err);
  _exit (125);
}

int
ak_report_read (int fd, const char *what, int *value, ak_error_t **err)
{
  struct report_head h;
  char msg[REPORT_MAX + 1];
  ssize_t n = ak_read_all (fd, &h, sizeof h);

  if (n != (ssize_t) sizeof h || (h.kind != 'O' && h.kind != 'E') || h.len > REPORT_MAX)
    return ak_error_set (err, 0, "%s exited before reporting", what);
  if (h.kind == 'O')
    {
      if (value != NULL)
        *value = h.value;
      return 0;
    }
  if (ak_read_all (fd, msg, h.len) != (ssize_t) h.len)
    return ak_error_set (err, 0, "%s exited before reporting", what);
  msg[h.len] = '\0';
  return ak_error_coded (err, h.value, "%s", msg);
}

pid_t
ak_wait_child (pid_t pid, int *status, int flags)
{
  for (;;)
    {
      int st;
      pid_t w = waitpid (pid, &st, flags | __WALL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return w;
      if (WIFSTOPPED (st))
        {
          /* Only a tracee reports a stop here (WUNTRACED is never asked):
           * a command that made its parent its tracer (PTRACE_TRACEME)
           * has no debugger behind it.  It is let go, with the signal it
           * stopped for unless that was a stop or a trap, which only a
           * debugger would have answered. */
          int sig = WSTOPSIG (st) & 0x7f;
          ptrace (PTRACE_DETACH, w, NULL, (void *) (long) (sig == SIGSTOP || sig == SIGTRAP ? 0 : sig));
          continue;
        }
      if (status != NULL)
        *status = st;
      return w;
    }
}
