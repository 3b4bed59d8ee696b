/* Persistent sandboxes: a detached supervisor per running sandbox.
 *
 * `start` forks a supervisor that leaves the caller's session (so closing
 * the terminal does not stop the sandbox), binds the agent's socket in the
 * sandbox's state directory, and runs the sandbox with the agent as PID 1
 * until it is stopped.  The writable layers live in the state directory
 * (persist/root, persist/upper, persist/work), so they survive stop/start.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the sandbox's address ------------------------------------------------
 *
 * Read from the kernel's view of the sandbox's network namespace
 * (/proc/PID/net/fib_trie of a child of the supervisor that lives in it):
 * the first local /32 outside 127/8.  The sandbox holds no capability to
 * change its addresses, and what is read is checked as an address anyway. */

/* The whole of a small /proc file (heap), or NULL. */
static char *
slurp (const char *path)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  char *buf = NULL;
  size_t len = 0;
  if (fd < 0)
    return NULL;
  for (;;)
    {
      ssize_t n;
      buf = ak_xrealloc (buf, len + 4097);
      n = read (fd, buf + len, 4096);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (size_t) n;
      if (len > (1u << 20))
        break;
    }
  buf[len] = '\0';
  return buf;
}

/* Whether pid lives in another network namespace than the supervisor.
 * The namespace links of a sandbox's processes are not readable by an
 * unprivileged caller (they are not dumpable): then the routing tables
 * tell, the sandbox's being its own. */
static bool
other_netns (pid_t pid, pid_t supervisor)
{
  char pa[64], pb[64], la[64] = "", lb[64] = "";
  _cleanup_free_ char *ta = NULL, *tb = NULL;
  snprintf (pa, sizeof pa, "/proc/%d/ns/net", (int) pid);
  snprintf (pb, sizeof pb, "/proc/%d/ns/net", (int) supervisor);
  if (readlink (pa, la, sizeof la - 1) >= 0 && readlink (pb, lb, sizeof lb - 1) >= 0)
    return strcmp (la, lb) != 0;
  snprintf (pa, sizeof pa, "/proc/%d/net/fib_trie", (int) pid);
  snprintf (pb, sizeof pb, "/proc/%d/net/fib_trie", (int) supervisor);
  ta = slurp (pa);
  tb = slurp (pb);
  return ta != NULL && tb != NULL && strcmp (ta, tb) != 0;
}

static char *
fib_local_address (pid_t pid)
{
  char path[64], line[256], last[INET_ADDRSTRLEN] = "";
  FILE *f;
  char *found = NULL;

  snprintf (path, sizeof path, "/proc/%d/net/fib_trie", (int) pid);
  f = fopen (path, "re");
  if (f == NULL)
    return NULL;
  while (found == NULL && fgets (line, sizeof line, f) != NULL)
    {
      const char *p = strstr (line, "|-- ");
      struct in_addr a;
      if (p != NULL)
        {
          size_t n = strcspn (p + 4, " \n");
          last[0] = '\0';
          if (n < sizeof last)
            {
              memcpy (last, p + 4, n);
              last[n] = '\0';
            }
        }
      else if (strstr (line, "/32 host LOCAL") != NULL && last[0] != '\0' && inet_pton (AF_INET, last, &a) == 1
               && (ntohl (a.s_addr) >> 24) != 127)
        found = ak_xstrdup (last);
    }
  fclose (f);
  return found;
}

int
ak_container_address (const char *dir, pid_t supervisor, char **ip, ak_error_t **err)
{
  char path[64];
  _cleanup_free_ char *kids = NULL;
  size_t len = 0;
  FILE *f;
  (void) dir;

  *ip = NULL;
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int) supervisor, (int) supervisor);
  f = fopen (path, "re");
  if (f == NULL)
    return ak_error_set (err, errno, "open %s", path);
  if (getline (&kids, &len, f) < 0)
    {
      fclose (f);
      return 0; /* no child: nothing running */
    }
  fclose (f);
  for (char *save = NULL, *t = strtok_r (kids, " \n", &save); t != NULL && *ip == NULL;
       t = strtok_r (NULL, " \n", &save))
    {
      pid_t c = (pid_t) atoi (t);
      if (c > 0 && other_netns (c, supervisor))
        *ip = fib_local_address (c);
    }
  return 0;
}
