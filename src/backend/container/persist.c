/* Persistent sandboxes: a detached supervisor per running sandbox.
 *
 * `start` forks a supervisor that leaves the caller's session (so closing
 * the terminal does not stop the sandbox), binds the agent's socket in the
 * sandbox's state directory, and runs the sandbox with the agent as PID 1
 * until it is stopped.  The writable layers live in the state directory
 * (persist/root, persist/upper, persist/work), so they survive stop/start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/child.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"
#include "proto/archive_dl.h"

static int
prepare_persist (const char *dir, const ak_ids_t *ids, char **persist, ak_error_t **err)
{
  static const char *const subdirs[] = { "", "/root", "/upper", "/work" };
  for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++)
    {
      _cleanup_free_ char *p = ak_xasprintf ("%s/persist%s", dir, subdirs[i]);
      /* persist/root is the sandbox's "/": traversable by every id inside. */
      if (mkdir (p, i == 1 ? 0755 : 0700) < 0 && errno != EEXIST)
        return ak_error_set (err, errno, "mkdir %s", p);
      /* Changed through a descriptor opened without following a symlink:
       * the state directory is the caller's, but nothing here needs to
       * trust a name twice. */
      {
        _cleanup_close_ int fd = open (p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
          return ak_error_set (err, errno, "open %s", p);
        if (i == 1 && fchmod (fd, 0755) < 0)
          return ak_error_set (err, errno, "chmod %s", p);
        /* Run by root, the layers belong to the sandbox's own host id. */
        if (ids->caller_root && fchown (fd, ids->host_uid, ids->host_gid) < 0)
          return ak_error_set (err, errno, "chown %s", p);
      }
    }
  *persist = ak_xasprintf ("%s/persist", dir);
  return 0;
}

static int
bind_socket (const char *dir, ak_error_t **err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_free_ char *path = ak_xasprintf ("%s/agent.sock", dir);
  _cleanup_close_ int fd = -1;

  if (strlen (path) >= sizeof sa.sun_path)
    return ak_error_set (err, ENAMETOOLONG, "agent socket %s", path);
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ak_error_set (err, errno, "socket");
  (void) unlink (path); /* left by a supervisor that was killed */
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod (path, 0600) < 0
      || listen (fd, 128) < 0)
    return ak_error_set (err, errno, "agent socket %s", path);
  return take_fd (&fd);
}

/* The supervisor: a detached worker whose only descriptor is the report
 * channel (3).  Its one report goes to `start`: "serving" with its own pid,
 * or why it could not start. */
static _Noreturn void
supervisor (const ak_spec_t *spec, const char *dir, int ready)
{
  ak_error_t *err = NULL;
  ak_ids_t ids;
  _cleanup_free_ char *persist = NULL;
  _cleanup_free_ char *log = ak_xasprintf ("%s/supervisor.log", dir);
  _cleanup_free_ char *sock = ak_xasprintf ("%s/agent.sock", dir);
  int fd, listen_fd, rc;

  fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0)
    dup2 (fd, 1), dup2 (fd, 2);
  ak_ids_plan (spec, true, &ids);
  if (prepare_persist (dir, &ids, &persist, &err) < 0 || (listen_fd = bind_socket (dir, &err)) < 0)
    ak_report_fail (ready, err);
  rc = ak_container_serve (spec, listen_fd, persist, &ready, &err);
  if (rc < 0)
    {
      /* Before it served, `start` is told; after, only the log is. */
      if (ready >= 0)
        (void) ak_report_error (ready, err);
      fprintf (stderr, "agentkernel: %s\n", err->msg);
    }
  (void) unlink (sock);
  _exit (rc < 0 ? 1 : 0);
}

int
ak_container_start (const ak_spec_t *spec, const char *dir, pid_t *pid, ak_error_t **err)
{
  int ready[2], served = 0;
  pid_t child;

  /* The agent serves file transfers with libarchive: loaded here, it is in
   * the agent's memory whatever the sandbox's root holds. */
  {
    ak_error_t *missing = NULL;
    if (ak_archive_load (&missing) < 0)
      {
        ak_warn ("%s; cp and file requests will fail in this sandbox", missing->msg);
        ak_error_free (missing);
      }
  }
  if (pipe2 (ready, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  {
    /* Detached: its own session (closing the terminal does not stop the
     * sandbox), reaped by no one of ours, keeping nothing of the caller's
     * (an inherited lock or socket would live as long as the sandbox). */
    int keep[] = { ready[1] };
    ak_worker_t w = { .keep = keep, .n_keep = 1, .detach = true, .null_stdio = true };
    child = ak_worker_spawn (&w, err);
    if (child == 0)
      supervisor (spec, dir, keep[0]);
  }
  close (ready[1]);
  if (child < 0)
    {
      close (ready[0]);
      return -1;
    }
  {
    _cleanup_free_ char *what = ak_xasprintf ("the sandbox supervisor (see %s/supervisor.log)", dir);
    int rc = ak_report_read (ready[0], what, &served, err);
    close (ready[0]);
    if (rc < 0)
      return -1;
  }
  *pid = (pid_t) served;
  return 0;
}

int
ak_container_connect (const char *dir, ak_error_t **err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_free_ char *path = ak_xasprintf ("%s/agent.sock", dir);
  _cleanup_close_ int fd = -1;

  if (strlen (path) >= sizeof sa.sun_path)
    return ak_error_set (err, ENAMETOOLONG, "agent socket %s", path);
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ak_error_set (err, errno, "socket");
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return ak_error_set (err, errno, "connect to the agent");
  return take_fd (&fd);
}

/* How long a stopping sandbox has before its supervisor is killed. */
#define STOP_TIMEOUT_MS 10000

/* SIGTERM to the supervisor (it relays it; the agent ends every process),
 * SIGKILL after STOP_TIMEOUT_MS.  Through a pidfd, so a recycled pid is
 * never signalled. */
int
ak_container_stop (const char *dir, pid_t supervisor, ak_error_t **err)
{
  _cleanup_close_ int pidfd = -1;
  struct pollfd p;

  (void) dir;
  pidfd = (int) syscall (SYS_pidfd_open, supervisor, 0);
  if (pidfd < 0)
    return errno == ESRCH ? 0 : ak_error_set (err, errno, "pidfd_open %d", (int) supervisor);
  if (ak_pidfd_send_signal (pidfd, SIGTERM) < 0 && errno != ESRCH)
    return ak_error_set (err, errno, "signal the sandbox supervisor");
  p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
  if (poll (&p, 1, STOP_TIMEOUT_MS) == 0)
    {
      (void) ak_pidfd_send_signal (pidfd, SIGKILL);
      (void) poll (&p, 1, STOP_TIMEOUT_MS);
    }
  return 0;
}
