/* The warm pool's daemon and its clients (see pool.h).
 *
 * The daemon only matches: on a hit it passes the claimant's connection to
 * one idle sandbox's owner over that sandbox's control channel
 * (SCM_RIGHTS; backend.h, pool_handoff), or for an engine without
 * hand-over answers with the control channel itself; from then on the
 * claimant talks to that sandbox's owner directly (pool_claim).  For a
 * hand-over engine the daemon is not even in between: each shape has a
 * socket of its own (claim-<digest of its key>.sock) on which its idle
 * sandboxes' owners accept claimants themselves; the daemon accepts there
 * only when the shape has no idle sandbox (a miss).  The daemon
 * forgets a claimed sandbox, reaps its owner when it ends and only then
 * builds its replacement.  So claims run concurrently, never share a sandbox (a
 * channel is handed out once), and a slow command never holds up the
 * daemon.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/child.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/peer.h"
#include "common/util.h"
#include "model/cmdpolicy.h"
#include "model/spec_json.h"
#include "service/audit.h"
#include "service/image.h"
#include "service/pool.h"
#include "service/store.h"

#define MSG_MAX (1u << 20)
/* A shape whose sandboxes keep failing to build is retried this often. */
#define RETRY_NS (5LL * 1000000000LL)
/* A claimed sandbox's replacement is built once its command has ended, or
 * this long after the claim: building one takes a CPU for a few
 * milliseconds, which a claim's command, just starting, should not share. */
#define REFILL_DELAY_NS (250LL * 1000000LL)
/* ... and once its command has ended, after this: the run's last steps
 * (its status, the caller's exit) come first, on a small machine the same
 * CPU. */
#define REFILL_AFTER_NS (10LL * 1000000LL)

/* ---- the socket ---- */

static char *
pool_dir (ak_error_t **err)
{
  _cleanup_free_ char *root = ak_store_root ();
  if (root == NULL)
    return ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME"), NULL;
  return ak_xasprintf ("%s/pool", root);
}

/* Names the fronts' socket for sock_addr_of. */
static const char FRONT_KEY[] = "front";

/* The daemon's socket (key NULL), the fronts' (FRONT_KEY), or the socket
 * of the shape with this pool key. */
static int
sock_addr_of (const char *key, struct sockaddr_un *sa, ak_error_t **err)
{
  _cleanup_free_ char *dir = pool_dir (err);
  char name[64];
  if (dir == NULL)
    return -1;
  if (key == NULL)
    snprintf (name, sizeof name, "daemon.sock");
  else if (key == FRONT_KEY)
    snprintf (name, sizeof name, "front.sock");
  else
    {
      char d[AK_DIGEST_STR_LEN + 1];
      ak_sha256_digest (key, strlen (key), d);
      /* 128 bits of it: a path must fit in sun_path. */
      snprintf (name, sizeof name, "claim-%.32s.sock", d + 7);
    }
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if ((size_t) snprintf (sa->sun_path, sizeof sa->sun_path, "%s/%s", dir, name) >= sizeof sa->sun_path)
    return ak_error_set (err, ENAMETOOLONG, "pool socket %s/%s", dir, name);
  return 0;
}

static int
sock_addr (struct sockaddr_un *sa, ak_error_t **err)
{
  return sock_addr_of (NULL, sa, err);
}

/* One message; fd (or NULL) receives a descriptor that came with it. */
static int
msg_send (int s, const char *text, int fd)
{
  struct iovec iov = { .iov_base = (void *) text, .iov_len = strlen (text) };
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE (sizeof (int))];
  } u;
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

  if (fd >= 0)
    {
      memset (&u, 0, sizeof u);
      m.msg_control = u.buf;
      m.msg_controllen = sizeof u.buf;
      CMSG_FIRSTHDR (&m)->cmsg_level = SOL_SOCKET;
      CMSG_FIRSTHDR (&m)->cmsg_type = SCM_RIGHTS;
      CMSG_FIRSTHDR (&m)->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (CMSG_FIRSTHDR (&m)), &fd, sizeof (int));
    }
  while (sendmsg (s, &m, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      return -1;
  return 0;
}

static char *
msg_recv (int s, int *fd)
{
  _cleanup_free_ char *buf = ak_xmalloc (MSG_MAX + 1);
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE (sizeof (int) * 4)];
  } u;
  struct iovec iov = { .iov_base = buf, .iov_len = MSG_MAX };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf };
  ssize_t n;

  if (fd != NULL)
    *fd = -1;
  while ((n = recvmsg (s, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  if (n <= 0 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
    return NULL;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&m); c != NULL; c = CMSG_NXTHDR (&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        size_t k = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        for (size_t i = 0; i < k; i++)
          {
            int x;
            memcpy (&x, CMSG_DATA (c) + i * sizeof (int), sizeof (int));
            if (fd != NULL && *fd < 0)
              *fd = x;
            else
              close (x);
          }
      }
  buf[n] = '\0';
  return steal_pointer (&buf);
}

/* A connection to the running daemon's socket (key NULL) or to the socket
 * of its shape with this key, or -1 (errno ENOENT/ECONNREFUSED when none
 * listens, EPERM when what listens is not this user's). */
static int
daemon_connect_to (const char *key)
{
  struct sockaddr_un sa;
  _cleanup_close_ int s = -1;

  if (sock_addr_of (key, &sa, NULL) < 0)
    return -1;
  struct ucred cred;
  socklen_t len = sizeof cred;

  s = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0 || connect (s, (struct sockaddr *) &sa, sizeof sa) < 0)
    return -1;
  /* Only a daemon of this user hands out sandboxes to it: one that another
   * user placed there would decide what "isolated" means. */
  if (getsockopt (s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid ())
    {
      errno = EPERM;
      return -1;
    }
  return take_fd (&s);
}

static int
daemon_connect (void)
{
  return daemon_connect_to (NULL);
}

/* One request, one reply. */
static json_t *
daemon_call (int s, json_t *req, int *fd)
{
  _cleanup_free_ char *text = json_dumps (req, JSON_COMPACT);
  _cleanup_free_ char *reply = NULL;
  json_decref (req);
  if (text == NULL || msg_send (s, text, -1) < 0 || (reply = msg_recv (s, fd)) == NULL)
    return NULL;
  return json_loads (reply, 0, NULL);
}

/* ---- the client ---- */

const char *
ak_pool_unsuitable (const ak_spec_t *spec)
{
  if (spec->name != NULL)
    return "a persistent sandbox";
  if (spec->rootfs != NULL)
    return "--rootfs";
  if (spec->n_mounts > 0)
    return "volumes";
  if (spec->n_files > 0)
    return "[[files]]";
  if (ak_spec_sec (spec, AK_SEC_MOUNT_HOME))
    return "mount_home";
  /* Its exec listener is set up with the command (not yet done here). */
  if (ak_cmdpolicy_active (&spec->sec.commands))
    return "a command policy";
  /* A test build's switches weaken a sandbox: never across processes. */
  if (getenv ("AK_TEST_DISABLE") != NULL)
    return "AK_TEST_DISABLE";
  return NULL;
}

static bool asked, skip;

bool
ak_pool_asked (void)
{
  return asked;
}

void
ak_pool_skip (void)
{
  skip = true;
}

int
ak_pool_try_run (const ak_backend_t *b, const ak_spec_t *spec, const ak_stdio_t *stdio,
                 int *status, ak_error_t **err)
{
  _cleanup_close_ int s = -1, ctl = -1;
  _cleanup_free_ char *key = NULL;
  ak_error_t *why = NULL;
  json_t *reply;
  int rc;

  if (skip || b->pool_claim == NULL || ak_pool_unsuitable (spec) != NULL || spec->argv == NULL
      || spec->argv[0] == NULL)
    return 0;
  /* The terminal's job control (foreground group, ^Z) needs the command in
   * the caller's session: a cold start. */
  if (stdio == NULL && isatty (STDIN_FILENO))
    return 0;
  key = ak_spec_pool_key (spec);
  /* Straight to the shape's idle sandboxes when the daemon has the shape;
   * else through the daemon, which counts the claim it cannot match. */
  if (b->pool_handoff && (ctl = daemon_connect_to (key)) >= 0)
    asked = true;
  else if ((s = daemon_connect ()) < 0)
    return 0;
  else if ((asked = true) && b->pool_handoff)
    {
      /* The claim follows on this connection without waiting for an
       * answer: the daemon hands the connection to an idle sandbox, or
       * closes it (backend.h). */
      json_t *req = json_pack ("{s:s, s:s, s:b}", "op", "claim", "key", key, "handoff", true);
      _cleanup_free_ char *text = json_dumps (req, JSON_COMPACT);
      json_decref (req);
      if (text == NULL || msg_send (s, text, -1) < 0)
        return 0;
      ctl = take_fd (&s);
    }
  else
    {
      reply = daemon_call (s, json_pack ("{s:s, s:s}", "op", "claim", "key", key), &ctl);
      rc = reply != NULL && json_is_true (json_object_get (reply, "hit")) && ctl >= 0;
      json_decref (reply);
      if (!rc)
        return 0;
      ak_closep (&s);
    }
  rc = b->pool_claim (ctl, spec, key, stdio, status, &why);
  if (rc == 0)
    {
      /* Refused before the command started: nothing of it ran. */
      if (getenv ("AK_POOL_DEBUG") != NULL && why != NULL)
        ak_warn ("warm pool: %s; starting cold", why->msg);
      ak_error_free (why);
      return 0;
    }
  if (rc < 0)
    {
      *err = why;
      return -1;
    }
  ak_error_free (why);
  return 1;
}

int
ak_pool_status (json_t **out, ak_error_t **err)
{
  _cleanup_close_ int s = daemon_connect ();
  *out = NULL;
  if (s < 0)
    return 0;
  *out = daemon_call (s, json_pack ("{s:s}", "op", "status"), NULL);
  if (*out == NULL)
    return ak_error_set (err, errno, "pool daemon: no status");
  return 0;
}

int
ak_pool_stop (ak_error_t **err)
{
  _cleanup_close_ int s = daemon_connect ();
  json_t *r;
  char c;

  if (s < 0)
    return 1;
  r = daemon_call (s, json_pack ("{s:s}", "op", "stop"), NULL);
  if (r == NULL)
    return ak_error_set (err, errno, "pool daemon: no answer to stop");
  json_decref (r);
  /* The daemon closes the connection once it and its sandboxes are gone. */
  while (read (s, &c, 1) < 0 && errno == EINTR)
    ;
  return 0;
}

/* ---- the daemon ---- */

typedef enum { E_STARTING, E_IDLE } entry_state_t;

typedef struct entry {
  size_t shape;
  pid_t owner;
  int ctl;
  entry_state_t state;
} entry_t;

/* A sandbox handed out, until its owner ends (or the refill delay is
 * over): the daemon keeps only its pid, never its channel. */
typedef struct claimed {
  size_t shape;
  pid_t owner;
  long long until;
} claimed_t;

typedef struct shape {
  const ak_spec_t *spec; /* resolved as ak_sandbox_run resolves */
  const ak_backend_t *b;
  char *key;
  int lfd; /* its own socket (hand-over engines), or -1 */
  unsigned long long hits, misses, failures;
  long long retry_at;
  char *last_error;
} shape_t;

typedef struct daemon {
  const ak_pool_conf_t *conf;
  shape_t *shapes;
  ak_spec_t *specs; /* the shapes' resolved copies */
  int *holds;        /* image layers held in use */
  entry_t *entries;
  size_t n_entries;
  claimed_t *claimed;
  size_t n_claimed;
  unsigned long long unmatched;
  bool stopping;
  /* The fronts (pool.h): idle ones have busy >= 0, the read end of a pipe
   * whose write end the front closes when it takes a run. */
  struct front {
    pid_t pid;
    int busy;
  } *fronts;
  size_t n_fronts;
  int front_lfd, self_fd;
  long long fronts_retry_at, fronts_refill_at;
  unsigned long long fronts_served;
} daemon_t;

static void
entry_drop (daemon_t *d, size_t i, bool kill_owner)
{
  if (kill_owner && d->entries[i].owner > 0)
    kill (d->entries[i].owner, SIGKILL);
  ak_closep (&d->entries[i].ctl);
  d->entries[i] = d->entries[--d->n_entries];
}

static void
refill (daemon_t *d)
{
  long long now = (long long) ak_now_ns ();
  for (size_t s = 0; s < d->conf->n_shapes && !d->stopping; s++)
    {
      shape_t *sh = &d->shapes[s];
      size_t have = 0;
      bool busy = false;
      if (sh->retry_at > now)
        continue;
      for (size_t i = 0; i < d->n_claimed; i++)
        busy |= d->claimed[i].shape == s && d->claimed[i].until > now;
      if (busy)
        continue;
      for (size_t i = 0; i < d->n_entries; i++)
        have += d->entries[i].shape == s;
      while (have < d->conf->size)
        {
          ak_error_t *err = NULL;
          pid_t owner;
          int ctl = sh->b->pool_start (sh->spec, sh->lfd, &owner, &err);
          if (ctl < 0)
            {
              free (sh->last_error);
              sh->last_error = ak_xstrdup (err->msg);
              ak_error_free (err);
              sh->retry_at = now + RETRY_NS;
              break;
            }
          d->entries = ak_xrealloc (d->entries, (d->n_entries + 1) * sizeof (entry_t));
          d->entries[d->n_entries++] = (entry_t){ .shape = s, .owner = owner, .ctl = ctl,
                                                  .state = E_STARTING };
          have++;
        }
    }
}

static size_t fronts_idle (const daemon_t *d);

static json_t *
status_json (const daemon_t *d)
{
  json_t *shapes = json_array ();
  unsigned long long hits = 0, misses = d->unmatched;
  for (size_t s = 0; s < d->conf->n_shapes; s++)
    {
      const shape_t *sh = &d->shapes[s];
      size_t idle = 0, starting = 0;
      for (size_t i = 0; i < d->n_entries; i++)
        if (d->entries[i].shape == s)
          d->entries[i].state == E_IDLE ? idle++ : starting++;
      hits += sh->hits, misses += sh->misses;
      json_array_append_new (
          shapes, json_pack ("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:s?}", "backend",
                             sh->spec->backend, "profile", ak_profile_name (sh->spec->sec.profile),
                             "image", sh->spec->image ? sh->spec->image : "host", "network",
                             ak_spec_sec (sh->spec, AK_SEC_NETWORK), "idle", (json_int_t) idle,
                             "starting", (json_int_t) starting, "hits", (json_int_t) sh->hits,
                             "misses", (json_int_t) sh->misses, "failures",
                             (json_int_t) sh->failures, "last_error", sh->last_error));
    }
  return json_pack ("{s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "pid", (json_int_t) getpid (), "pool_size",
                    (json_int_t) d->conf->size, "shapes", shapes, "hits", (json_int_t) hits,
                    "misses", (json_int_t) misses, "unmatched", (json_int_t) d->unmatched, "fronts_idle",
                    (json_int_t) fronts_idle (d), "fronts_served", (json_int_t) d->fronts_served);
}

/* Idle sandbox i is claimed: the daemon forgets it (its owner serves the
 * claim) and builds its replacement once its command ended. */
static void
claim_taken (daemon_t *d, size_t i)
{
  d->shapes[d->entries[i].shape].hits++;
  d->claimed = ak_xrealloc (d->claimed, (d->n_claimed + 1) * sizeof (claimed_t));
  d->claimed[d->n_claimed++] = (claimed_t){ .shape = d->entries[i].shape, .owner = d->entries[i].owner,
                                            .until = (long long) ak_now_ns () + REFILL_DELAY_NS };
  entry_drop (d, i, false);
}

/* A claimant on the socket of a shape that has no idle sandbox: its
 * connection closed (it starts cold). */
static void
shape_miss (daemon_t *d, size_t s)
{
  int c = accept4 (d->shapes[s].lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0)
    return;
  d->shapes[s].misses++;
  close (c);
}

static size_t
idle_of (const daemon_t *d, size_t s)
{
  size_t n = 0;
  for (size_t i = 0; i < d->n_entries; i++)
    n += d->entries[i].shape == s && d->entries[i].state == E_IDLE;
  return n;
}

/* No sandbox for this claim: an answer, or for a hand-over claim the end
 * of its connection (the claim queued on it is never read). */
static void
claim_refuse (int c, bool handoff)
{
  if (!handoff)
    (void) msg_send (c, "{\"hit\":false}", -1);
}

static void
serve_claim (daemon_t *d, int c, const char *key, bool handoff)
{
  for (size_t s = 0; s < d->conf->n_shapes; s++)
    {
      shape_t *sh = &d->shapes[s];
      if (strcmp (sh->key, key) != 0)
        continue;
      for (size_t i = 0; i < d->n_entries; i++)
        if (d->entries[i].shape == s && d->entries[i].state == E_IDLE)
          {
            /* Handed out once: the daemon keeps no copy of the channel (nor,
             * for a hand-over, of the claimant's connection). */
            int sent = handoff && sh->b->pool_handoff ? msg_send (d->entries[i].ctl, "claimant", c)
                                                      : msg_send (c, "{\"hit\":true}", d->entries[i].ctl);
            if (sent == 0)
              claim_taken (d, i);
            return;
          }
      sh->misses++;
      claim_refuse (c, handoff);
      return;
    }
  d->unmatched++;
  claim_refuse (c, handoff);
}

/* One client: its own user in the daemon's own mount namespace only. */
static void
serve_client (daemon_t *d, int listen_fd)
{
  _cleanup_close_ int c = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  _cleanup_free_ char *text = NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  struct timeval tv = { .tv_sec = 1 };
  json_t *req;
  const char *op = NULL, *key = NULL;
  int handoff = 0;

  if (c < 0)
    return;
  if (getsockopt (c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid ())
    return;
  (void) setsockopt (c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  text = msg_recv (c, NULL);
  if (text == NULL || (req = json_loads (text, 0, NULL)) == NULL)
    return;
  if (json_unpack (req, "{s:s, s?:s, s?:b}", "op", &op, "key", &key, "handoff", &handoff) < 0)
    op = "";
  if (strcmp (op, "claim") == 0 && key != NULL)
    {
      /* A workspace is opened by path in the daemon's view, with its
       * privileges: a claimant that sees another mount table, or is more
       * confined than the daemon, starts cold (common/peer.h). */
      ak_error_t *why = NULL;
      pid_t pid;
      if (ak_peer_check (c, &pid, &why) < 0)
        {
          ak_error_free (why);
          d->unmatched++;
          claim_refuse (c, handoff);
        }
      else
        serve_claim (d, c, key, handoff);
    }
  else if (strcmp (op, "status") == 0)
    {
      json_t *st = status_json (d);
      _cleanup_free_ char *out = json_dumps (st, JSON_COMPACT);
      json_decref (st);
      if (out != NULL)
        (void) msg_send (c, out, -1);
    }
  else if (strcmp (op, "stop") == 0)
    {
      (void) msg_send (c, "{\"ok\":true}", -1);
      d->stopping = true;
      /* Held open until everything is gone (ak_pool_stop waits on it). */
      (void) !dup (c);
    }
  json_decref (req);
}

/* ---- the fronts (pool.h) ---- */

static size_t
fronts_idle (const daemon_t *d)
{
  size_t n = 0;
  for (size_t i = 0; i < d->n_fronts; i++)
    n += d->fronts[i].busy >= 0;
  return n;
}

/* One more front: this program again (the descriptor the daemon opened on
 * itself at start), the front socket on descriptor 3, the write end of its
 * busy pipe on 4, the badge on 6 (common/peer.h).  It dies with the
 * daemon. */
static int
front_spawn (daemon_t *d, ak_error_t **err)
{
  int pipefd[2];
  pid_t pid;

  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  {
    int keep[] = { d->front_lfd, pipefd[1], d->self_fd, ak_peer_badge () };
    ak_worker_t w = { .keep = keep, .n_keep = 4, .death_signal = SIGKILL, .null_stdio = true };
    pid = ak_worker_spawn (&w, err);
    if (pid == 0)
      {
        static char *const argv[] = { (char *) "agentkernel", (char *) AK_POOL_FRONT_COMMAND, NULL };
        if (fcntl (3, F_SETFD, 0) == 0 && fcntl (4, F_SETFD, 0) == 0 && fcntl (6, F_SETFD, 0) == 0)
          syscall (SYS_execveat, 5, "", argv, environ, AT_EMPTY_PATH);
        _exit (125);
      }
  }
  close (pipefd[1]);
  if (pid < 0)
    {
      close (pipefd[0]);
      return -1;
    }
  d->fronts = ak_xrealloc (d->fronts, (d->n_fronts + 1) * sizeof *d->fronts);
  d->fronts[d->n_fronts].pid = pid;
  d->fronts[d->n_fronts++].busy = pipefd[0];
  return 0;
}

/* AK_POOL_FRONTS idle fronts when no run is in one; while runs are, one
 * more only when none is idle (starting a front takes a CPU for about a
 * millisecond, which a run just starting should not share), and after a
 * front ended, REFILL_AFTER_NS later unless none is idle. */
static void
fronts_refill (daemon_t *d)
{
  size_t idle = fronts_idle (d);
  size_t want = idle < d->n_fronts ? 1 : AK_POOL_FRONTS;
  long long now = (long long) ak_now_ns ();

  if (d->front_lfd < 0 || d->stopping || d->fronts_retry_at > now || (idle > 0 && d->fronts_refill_at > now))
    return;
  while (idle < want && d->n_fronts < AK_POOL_FRONTS_MAX)
    {
      ak_error_t *err = NULL;
      if (front_spawn (d, &err) < 0)
        {
          ak_warn ("warm pool: cannot start a front: %s", err->msg);
          ak_error_free (err);
          d->fronts_retry_at = now + RETRY_NS;
          return;
        }
      idle++;
    }
}

/* Reaps ended owners and fronts; a claimed sandbox's end lets its shape
 * refill, a front's end lets another start. */
static void
reap (daemon_t *d)
{
  pid_t p;
  while ((p = waitpid (-1, NULL, WNOHANG)) > 0)
    {
      for (size_t i = 0; i < d->n_claimed; i++)
        if (d->claimed[i].owner == p)
          {
            long long soon = (long long) ak_now_ns () + REFILL_AFTER_NS;
            d->claimed[i].owner = 0;
            if (d->claimed[i].until > soon)
              d->claimed[i].until = soon;
            break;
          }
      for (size_t i = 0; i < d->n_fronts; i++)
        if (d->fronts[i].pid == p)
          {
            ak_closep (&d->fronts[i].busy);
            d->fronts[i] = d->fronts[--d->n_fronts];
            d->fronts_refill_at = (long long) ak_now_ns () + REFILL_AFTER_NS;
            break;
          }
    }
}

/* Drops claims whose delay is over; returns the poll timeout (ms) until
 * the next one is. */
static int
claims_expire (daemon_t *d)
{
  long long now = (long long) ak_now_ns (), next = -1;
  for (size_t i = d->n_claimed; i-- > 0;)
    if (d->claimed[i].until <= now)
      d->claimed[i] = d->claimed[--d->n_claimed];
    else if (next < 0 || d->claimed[i].until < next)
      next = d->claimed[i].until;
  if (next < 0)
    return 1000;
  return (int) ((next - now) / 1000000 + 1);
}

/* Ends every sandbox: idle ones are torn down by their owners, claimed
 * ones get SIGTERM (relayed to the command, which has the usual grace
 * period); whatever remains after it is killed. */
static void
shutdown_all (daemon_t *d)
{
  long long deadline = (long long) ak_now_ns () + 7LL * 1000000000LL;
  kill (0, SIGTERM);
  while (d->n_entries > 0)
    entry_drop (d, 0, false);
  for (;;)
    {
      pid_t p = waitpid (-1, NULL, WNOHANG);
      if (p < 0 && errno == ECHILD)
        break;
      if (p > 0)
        continue;
      if ((long long) ak_now_ns () > deadline)
        {
          kill (0, SIGKILL);
          while (waitpid (-1, NULL, 0) > 0 || errno == EINTR)
            ;
          break;
        }
      usleep (10000);
    }
}

/* A socket at sa, for this user only; a socket left there by a killed
 * daemon (nothing answers on it) is replaced. */
static int
listen_at (const struct sockaddr_un *sa, ak_error_t **err)
{
  _cleanup_close_ int s = -1;

  if (unlink (sa->sun_path) < 0 && errno != ENOENT)
    return ak_error_set (err, errno, "remove %s", sa->sun_path);
  s = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0)
    return ak_error_set (err, errno, "socket");
  {
    mode_t old = umask (0177);
    int rc = bind (s, (const struct sockaddr *) sa, sizeof *sa);
    umask (old);
    if (rc < 0)
      return ak_error_set (err, errno, "bind %s", sa->sun_path);
  }
  if (chmod (sa->sun_path, 0600) < 0 || listen (s, 64) < 0)
    return ak_error_set (err, errno, "listen on %s", sa->sun_path);
  return take_fd (&s);
}

static int
daemon_listen (ak_error_t **err)
{
  _cleanup_free_ char *dir = pool_dir (err);
  _cleanup_free_ char *root = ak_store_root ();
  struct sockaddr_un sa;
  _cleanup_close_ int probe = -1;
  struct stat st;

  if (dir == NULL || root == NULL)
    return -1;
  if ((mkdir (root, 0700) < 0 && errno != EEXIST) || (mkdir (dir, 0700) < 0 && errno != EEXIST))
    return ak_error_set (err, errno, "create %s", dir);
  /* The directory guards the socket: ours, and only ours. */
  if (lstat (dir, &st) < 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ())
    return ak_error_set (err, 0, "%s is not a directory owned by this user", dir);
  if ((st.st_mode & 0077) != 0 && chmod (dir, 0700) < 0)
    return ak_error_set (err, errno, "chmod %s", dir);
  if (sock_addr (&sa, err) < 0)
    return -1;
  probe = daemon_connect ();
  if (probe >= 0)
    return ak_error_set (err, EEXIST, "a pool daemon already runs (agentkernel daemon status)");
  /* Shapes' sockets a killed daemon left: nothing answers on them. */
  {
    DIR *dp = opendir (dir);
    struct dirent *e;
    while (dp != NULL && (e = readdir (dp)) != NULL)
      {
        size_t n = strlen (e->d_name);
        if (strncmp (e->d_name, "claim-", 6) == 0 && n > 11 && strcmp (e->d_name + n - 5, ".sock") == 0)
          (void) unlinkat (dirfd (dp), e->d_name, 0);
      }
    if (dp != NULL)
      closedir (dp);
  }
  return listen_at (&sa, err);
}

/* A shape resolved as ak_sandbox_run resolves a spec (its image pulled
 * when absent and held, what it hides, its home canonical), so that the
 * claimant's key and the shape's compare. */
static int
shape_resolve (const ak_spec_t *in, ak_spec_t *out, int *hold, ak_error_t **err)
{
  json_t *j = ak_spec_to_json (in);
  int rc = ak_spec_from_json (j, out, err);
  json_decref (j);
  if (rc < 0)
    return -1;
  if (out->image != NULL && (ak_spec_wants_image (out) || strcmp (out->image, "auto") == 0)
      && (ak_sandbox_image_prepare (out, err) < 0 || ak_sandbox_image_dirs (out, hold, err) < 0))
    return -1;
  out->private_paths = ak_store_private_paths (getenv ("AGENTKERNEL_AUDIT_LOG") != NULL ? ak_audit_path ()
                                                                                       : NULL);
  ak_strv_free (out->argv);
  out->argv = NULL;
  free (out->cwd);
  out->cwd = NULL;
  if (out->home != NULL)
    {
      char *home = realpath (out->home, NULL);
      if (home != NULL)
        free (out->home), out->home = home;
    }
  return 0;
}

/* The shapes' and fronts' sockets gone: a claimant from now on starts
 * cold at once. */
static void
shapes_unlisten (daemon_t *d)
{
  if (d->front_lfd >= 0)
    {
      struct sockaddr_un sa;
      if (sock_addr_of (FRONT_KEY, &sa, NULL) == 0)
        unlink (sa.sun_path);
      ak_closep (&d->front_lfd);
    }
  for (size_t s = 0; s < d->conf->n_shapes; s++)
    if (d->shapes[s].lfd >= 0)
      {
        struct sockaddr_un sa;
        if (sock_addr_of (d->shapes[s].key, &sa, NULL) == 0)
          unlink (sa.sun_path);
        ak_closep (&d->shapes[s].lfd);
      }
}

static void
daemon_free (daemon_t *d)
{
  shapes_unlisten (d);
  for (size_t s = 0; s < d->conf->n_shapes; s++)
    {
      free (d->shapes[s].key);
      free (d->shapes[s].last_error);
      if (d->specs != NULL)
        ak_spec_clear (&d->specs[s]);
      if (d->holds != NULL)
        ak_closep (&d->holds[s]);
    }
  for (size_t i = 0; i < d->n_entries; i++)
    ak_closep (&d->entries[i].ctl);
  for (size_t i = 0; i < d->n_fronts; i++)
    ak_closep (&d->fronts[i].busy);
  free (d->fronts);
  ak_closep (&d->self_fd);
  free (d->entries);
  free (d->claimed);
  free (d->shapes);
  free (d->specs);
  free (d->holds);
}

int
ak_pool_daemon (const ak_pool_conf_t *conf, int ready_fd, ak_error_t **err)
{
  daemon_t d = { .conf = conf, .front_lfd = -1, .self_fd = -1 };
  _cleanup_close_ int lfd = -1, sigfd = -1;
  sigset_t mask;
  int rc = -1;

  if (getenv ("AK_TEST_DISABLE") != NULL)
    return ak_error_set (err, 0, "the pool daemon does not run with AK_TEST_DISABLE set");
  if (conf->size == 0 || conf->size > AK_DAEMON_POOL_SIZE_MAX)
    return ak_error_set (err, 0, "[daemon] pool_size: %u, must be 1 to %d", conf->size, AK_DAEMON_POOL_SIZE_MAX);
  d.shapes = ak_xcalloc (conf->n_shapes + 1, sizeof (shape_t));
  d.specs = ak_xcalloc (conf->n_shapes + 1, sizeof (ak_spec_t));
  d.holds = ak_xcalloc (conf->n_shapes + 1, sizeof (int));
  for (size_t s = 0; s < conf->n_shapes; s++)
    d.holds[s] = d.shapes[s].lfd = -1;
  for (size_t s = 0; s < conf->n_shapes; s++)
    {
      const char *why = ak_pool_unsuitable (&conf->shapes[s]);
      if (why != NULL)
        {
          ak_error_set (err, 0, "[daemon] shape %zu (%s): %s cannot be pooled", s + 1,
                        ak_profile_name (conf->shapes[s].sec.profile), why);
          goto out;
        }
      d.shapes[s].b = ak_backend_lookup (conf->shapes[s].backend, err);
      if (d.shapes[s].b == NULL)
        goto out;
      if (d.shapes[s].b->pool_start == NULL)
        {
          ak_error_set (err, 0, "[daemon] shape %zu: the %s backend has no warm pool", s + 1,
                        d.shapes[s].b->name);
          goto out;
        }
      if (shape_resolve (&conf->shapes[s], &d.specs[s], &d.holds[s], err) < 0)
        {
          ak_error_prefix (err, "[daemon] shape %zu", s + 1);
          goto out;
        }
      if (d.shapes[s].b->check (&d.specs[s], err) < 0)
        goto out;
      d.shapes[s].spec = &d.specs[s];
      d.shapes[s].key = ak_spec_pool_key (&d.specs[s]);
    }
  lfd = daemon_listen (err);
  if (lfd < 0)
    goto out;
  for (size_t s = 0; s < conf->n_shapes; s++)
    {
      struct sockaddr_un sa;
      bool dup = false;
      for (size_t t = 0; t < s; t++)
        dup |= strcmp (d.shapes[t].key, d.shapes[s].key) == 0;
      /* A shape listed twice is served by its first entry's socket. */
      if (!d.shapes[s].b->pool_handoff || dup)
        continue;
      if (sock_addr_of (d.shapes[s].key, &sa, err) < 0 || (d.shapes[s].lfd = listen_at (&sa, err)) < 0)
        goto out;
    }
  /* The badge its fronts and owners show each other (common/peer.h). */
  {
    int badge = memfd_create ("agentkernel-pool-badge", MFD_CLOEXEC);
    if (badge < 0)
      {
        ak_error_set (err, errno, "memfd_create");
        goto out;
      }
    ak_peer_badge_set (badge);
  }
  /* The fronts: this very program, pinned now. */
  {
    struct sockaddr_un sa;
    d.self_fd = open ("/proc/self/exe", O_PATH | O_CLOEXEC);
    if (d.self_fd < 0)
      {
        ak_error_set (err, errno, "cannot open this program (/proc/self/exe) for the pool's fronts");
        goto out;
      }
    if (sock_addr_of (FRONT_KEY, &sa, err) < 0 || (d.front_lfd = listen_at (&sa, err)) < 0)
      goto out;
  }
  ak_block_owner_signals (&mask);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    {
      ak_error_set (err, errno, "signalfd");
      goto out;
    }
  /* Its own process group: stopping signals every owner at once. */
  (void) setpgid (0, 0);
  if (ready_fd >= 0)
    (void) ak_report_ok (ready_fd, (int) getpid ());

  while (!d.stopping)
    {
      _cleanup_free_ struct pollfd *p = NULL;
      size_t n;
      int timeout = claims_expire (&d);
      size_t nf;
      fronts_refill (&d);
      refill (&d);
      n = d.n_entries;
      nf = d.n_fronts;
      p = ak_xcalloc (n + 2 + conf->n_shapes + nf, sizeof (struct pollfd));
      p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
      p[1] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
      for (size_t i = 0; i < n; i++)
        p[i + 2] = (struct pollfd){ .fd = d.entries[i].ctl, .events = POLLIN };
      /* A shape's own socket while it has no idle sandbox (else its
       * owners take what comes). */
      for (size_t s = 0; s < conf->n_shapes; s++)
        p[n + 2 + s] = (struct pollfd){ .fd = idle_of (&d, s) == 0 ? d.shapes[s].lfd : -1, .events = POLLIN };
      for (size_t f = 0; f < nf; f++)
        p[n + 2 + conf->n_shapes + f] = (struct pollfd){ .fd = d.fronts[f].busy, .events = POLLIN };
      if (d.fronts_retry_at > 0 && timeout > RETRY_NS / 1000000)
        timeout = (int) (RETRY_NS / 1000000);
      {
        long long left = d.fronts_refill_at - (long long) ak_now_ns ();
        if (left > 0 && timeout > left / 1000000 + 1)
          timeout = (int) (left / 1000000 + 1);
      }
      if (poll (p, n + 2 + conf->n_shapes + nf, timeout) < 0 && errno != EINTR)
        {
          ak_error_set (err, errno, "poll");
          break;
        }
      /* A front that took a run closed its end of the pipe (before any
       * reaping below reorders the fronts). */
      for (size_t f = 0; f < nf; f++)
        if ((p[n + 2 + conf->n_shapes + f].revents & (POLLIN | POLLHUP | POLLERR)) && f < d.n_fronts
            && d.fronts[f].busy == p[n + 2 + conf->n_shapes + f].fd)
          {
            ak_closep (&d.fronts[f].busy);
            d.fronts_served++;
          }
      if (p[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sigfd, &si, sizeof si) == sizeof si)
            if (si.ssi_signo != SIGCHLD)
              d.stopping = true;
          reap (&d);
        }
      /* Entries, last first: dropping one moves the last into its slot. */
      for (size_t i = n; i-- > 0;)
        {
          if (!(p[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) || i >= d.n_entries
              || d.entries[i].ctl != p[i + 2].fd)
            continue;
          shape_t *sh = &d.shapes[d.entries[i].shape];
          if (d.entries[i].state == E_STARTING)
            {
              ak_error_t *e = NULL;
              if (sh->b->pool_wait (d.entries[i].ctl, &e) == 0)
                {
                  d.entries[i].state = E_IDLE;
                  continue;
                }
              sh->failures++;
              free (sh->last_error);
              sh->last_error = ak_xstrdup (e->msg);
              ak_warn ("warm pool: %s", e->msg);
              ak_error_free (e);
              sh->retry_at = (long long) ak_now_ns () + RETRY_NS;
            }
          else if (sh->lfd >= 0 && sh->b->pool_wait (d.entries[i].ctl, NULL) == 1)
            {
              /* It took a claimant from the shape's socket. */
              claim_taken (&d, i);
              continue;
            }
          /* Else an idle sandbox's owner never speaks again: it ended. */
          entry_drop (&d, i, true);
        }
      for (size_t s = 0; s < conf->n_shapes; s++)
        if (p[n + 2 + s].revents & POLLIN)
          shape_miss (&d, s);
      if (p[0].revents & POLLIN)
        serve_client (&d, lfd);
    }
  rc = 0;
  {
    struct sockaddr_un sa;
    if (sock_addr (&sa, NULL) == 0)
      unlink (sa.sun_path);
  }
  ak_closep (&lfd);
  shapes_unlisten (&d);
  shutdown_all (&d);
out:
  daemon_free (&d);
  return rc;
}
