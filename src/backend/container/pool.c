/* Warm pool, container engine: an idle sandbox and its claim.
 *
 * An idle sandbox is an ordinary one (container.c) whose init stopped where
 * it waits for EXEC: root built and pivoted into, still holding the
 * capabilities of its own user namespace, nothing of the claimant's yet.
 * A claim is one AK_SYNC_CLAIM over the control channel with the
 * claimant's stdin, stdout, stderr, its entries in the message's text (its
 * value their length; ak_sync_send_data) or, beyond AK_SYNC_DATA_MAX, in a
 * sealed memfd after the streams (value 0), and last a front's badge
 * (common/peer.h).  The entries:
 *
 *   k<sha256:hex>     the digest of the pool key, which must be the pooled
 *                     spec's own (model/spec_json.h)
 *   a<arg>            the command, in order
 *   e<KEY=VALUE>      an explicit variable (-e)
 *   p<KEY=VALUE>      a variable pass_env lets through, as the claimant has it
 *   w<dir>            working directory inside, when the claimant names one
 *   u<octal>          the claimant's umask
 *   i<hex>            the signals the claimant ignores (bit n-1: signal n)
 *   c<dev>:<ino>:<type>:<path>   the workspace, pinned by the claimant
 *   h<path>           a path no share may show (the claimant's own)
 *
 * each ending in a NUL byte.  The owner checks the key, opens the workspace
 * as a cold start would (root: an idmapped tree of the pinned path; else a
 * helper in a mount namespace the sandbox's user namespace owns), and sends
 * EXEC with the streams, the memfd and the tree; the init attaches the tree
 * at /workspace and only then drops every privilege (container.c, 5b).
 * Without a workspace the sandbox is armed: its init dropped every
 * privilege before the claim and forked the command's process, to which
 * the owner forwards the streams and the claim as it came (in the message
 * or its memfd); the init's report channel
 * goes to the claimant (AK_SYNC_REPORT), which gets STARTED there from the
 * command's process as it execs, and then the exit status from the init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "backend/container/init.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fsutil.h"
#include "common/peer.h"
#include "common/util.h"
#include "model/spec_json.h"

/* How long an accepted claimant's claim is waited for before its peer is
 * checked (ak_pool_accept_claimant). */
#define CLAIM_FIRST_MS 2

/* ---- the daemon's side ---- */

pid_t
ak_container_pool_fork (int claim_listen, int death_signal, int *ctl, ak_error_t **err)
{
  int sv[2];
  pid_t parent = getpid (), pid;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ak_error_set (err, errno, "socketpair");
  pid = fork ();
  if (pid < 0)
    {
      close (sv[0]), close (sv[1]);
      return ak_error_set (err, errno, "fork");
    }
  if (pid == 0)
    {
      int keep[] = { 0, 1, 2, sv[1], ak_peer_badge (), claim_listen };
      if (prctl (PR_SET_PDEATHSIG, death_signal) < 0 || getppid () != parent)
        _exit (1);
      /* The daemon's listening socket and the other sandboxes' channels
       * are not this one's (its shape's listening socket and the daemon's
       * badge are: common/peer.h). */
      if (ak_init_close_fds_except (keep, claim_listen >= 0 ? 6 : 5) < 0)
        _exit (1);
      /* The daemon's signal state (it blocks SIGCHLD and SIGTERM for its
       * signalfd) is not the owner's, nor the command's: a cold start's
       * command gets the default one, and so does a pooled one. */
      {
        sigset_t none;
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
          if (sig != SIGKILL && sig != SIGSTOP)
            (void) sigaction (sig, &dfl, NULL);
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
      }
      *ctl = sv[1];
      return 0;
    }
  close (sv[1]);
  *ctl = sv[0];
  return pid;
}

int
ak_container_pool_start (const ak_spec_t *spec, int claim_listen, pid_t *owner, ak_error_t **err)
{
  int ctl;
  /* Dies with the daemon, and so does its sandbox (the init dies with
   * this process): a killed daemon leaves nothing running. */
  pid_t pid = ak_container_pool_fork (claim_listen, SIGKILL, &ctl, err);

  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      ak_error_t *e = NULL;
      if (ak_container_pool_serve (spec, ctl, claim_listen, &e) < 0)
        {
          (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, e ? e->msg : "pooled sandbox failed", NULL, 0);
          _exit (1);
        }
      _exit (0);
    }
  *owner = pid;
  return ctl;
}

int
ak_container_pool_wait (int ctl, ak_error_t **err)
{
  int type, value, rc;
  char text[1024];

  rc = ak_sync_recv (ctl, &type, &value, text, sizeof text, NULL, NULL);
  if (rc == 1 && type == AK_SYNC_READY)
    return 0;
  if (rc == 1 && type == AK_SYNC_CLAIMED)
    return 1;
  if (rc == 1 && type == AK_SYNC_ERROR)
    return ak_error_set (err, 0, "%s", text);
  return ak_error_set (err, rc < 0 ? errno : 0, "pooled sandbox ended during set-up");
}

int
ak_pool_take_claimant (int ctl)
{
  char buf[64];
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE (sizeof (int))];
  } u;
  struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf };
  struct cmsghdr *c;
  int fd = -1;
  ssize_t n;

  while ((n = recvmsg (ctl, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  c = n > 0 ? CMSG_FIRSTHDR (&m) : NULL;
  if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
      && c->cmsg_len == CMSG_LEN (sizeof (int)))
    memcpy (&fd, CMSG_DATA (c), sizeof (int));
  if (fd >= 0 && (m.msg_flags & MSG_CTRUNC))
    ak_closep (&fd);
  return fd;
}

int
ak_pool_accept_claimant (int claim_listen, ak_pool_first_t *first)
{
  _cleanup_close_ int c = accept4 (claim_listen, NULL, NULL, SOCK_CLOEXEC);
  struct pollfd p = { .fd = c, .events = POLLIN };
  ak_error_t *err = NULL;
  pid_t pid;

  first->n_fds = 0;
  first->have = false;
  if (c < 0)
    return -1;
  /* A claim sent with the daemon's badge comes from one of its fronts
   * (common/peer.h): read now, and no more is asked.  A claimant sends its
   * claim as it connects; one that takes longer than this is checked
   * before its claim is waited for. */
  if (poll (&p, 1, CLAIM_FIRST_MS) == 1 && (p.revents & POLLIN))
    {
      size_t base;
      if (ak_sync_recv (c, &first->type, &first->value, first->text, sizeof first->text, first->fds,
                        &first->n_fds)
          != 1)
        return -1;
      first->have = true;
      /* The badge follows the streams, and the claim's memfd when there
       * is one (value 0: ak_container_pool_claim). */
      base = first->value > 0 ? 3 : 4;
      if (first->type == AK_SYNC_CLAIM && first->n_fds == base + 1 && ak_peer_badge_is (first->fds[base]))
        {
          ak_closep (&first->fds[base]);
          first->n_fds = base;
          return take_fd (&c);
        }
    }
  /* Anyone else is served as the daemon itself would be, or not at all. */
  if (ak_peer_check (c, &pid, &err) < 0)
    {
      ak_error_free (err);
      for (size_t i = 0; i < first->n_fds; i++)
        close (first->fds[i]);
      first->n_fds = 0;
      first->have = false;
      return -1;
    }
  return take_fd (&c);
}

/* ---- the claim's bytes ---- */

static void
put (FILE *f, char tag, const char *s)
{
  fputc (tag, f);
  fputs (s, f);
  fputc ('\0', f);
}

/* The claim of spec, its entries in *out (malloc'd); -1 with *err. */
static int
claim_build (const ak_spec_t *spec, const char *key, char **out, size_t *out_len, ak_error_t **err)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  char key_id[AK_DIGEST_STR_LEN + 1];

  if (f == NULL)
    ak_oom ();
  /* The shape's key by its digest (the key itself is the whole spec). */
  ak_sha256_digest (key, strlen (key), key_id);
  put (f, 'k', key_id);
  for (char **a = spec->argv; a != NULL && *a != NULL; a++)
    put (f, 'a', *a);
  for (char **e = spec->env; e != NULL && *e != NULL; e++)
    put (f, 'e', *e);
  for (char **e = spec->host_env; e != NULL && *e != NULL; e++)
    put (f, 'p', *e);
  if (spec->workdir != NULL)
    put (f, 'w', spec->workdir);
  {
    /* The caller's umask, which a cold start's command inherits. */
    mode_t m = umask (0);
    char u[16];
    umask (m);
    snprintf (u, sizeof u, "%o", (unsigned) m);
    put (f, 'u', u);
  }
  {
    /* The signals the caller ignores, which a cold start's command
     * inherits through exec (nohup's SIGHUP, a harness's own). */
    char ign[32];
    snprintf (ign, sizeof ign, "%llx", (unsigned long long) ak_signals_ignored ());
    put (f, 'i', ign);
  }
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      /* Pinned here, in the claimant's own view: the owner opens exactly
       * this directory or nothing. */
      ak_fs_id_t id;
      _cleanup_free_ char *canon = NULL, *line = NULL;
      _cleanup_close_ int pin = ak_fs_pin (spec->cwd, &id, &canon, err);
      if (pin < 0)
        {
          fclose (f);
          free (buf);
          return ak_error_prefix (err, "mount_cwd: workspace");
        }
      line = ak_xasprintf ("%llu:%llu:%u:%s", id.dev, id.ino, id.type, canon);
      put (f, 'c', line);
    }
  for (char **h = spec->private_paths; h != NULL && *h != NULL; h++)
    put (f, 'h', *h);
  if (fclose (f) != 0)
    {
      free (buf);
      return ak_error_set (err, errno, "claim");
    }
  *out = buf;
  *out_len = len;
  return 0;
}

/* The next "<tag><text>\0" entry at *pos, or NULL at the end. */
static const char *
claim_next (const char *buf, size_t len, size_t *pos, char *tag)
{
  const char *s;
  if (*pos >= len)
    return NULL;
  s = buf + *pos;
  *tag = s[0];
  *pos += strlen (s) + 1;
  return s[0] != '\0' ? s + 1 : s;
}

/* ---- the owner's side ---- */

static bool
path_within (const char *inner, const char *outer)
{
  size_t n = strlen (outer);
  if (strcmp (outer, "/") == 0)
    return true;
  return strncmp (inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

/* A private path beneath the workspace (or the workspace within one) would
 * need a cover inside the share, which only set-up before pivoting makes:
 * such a claim starts cold. */
static int
check_private (const char *cwd, char *const *paths, ak_error_t **err)
{
  for (size_t i = 0; paths != NULL && paths[i] != NULL; i++)
    if (path_within (paths[i], cwd) || path_within (cwd, paths[i]))
      return ak_error_set (err, 0, "workspace %s holds or lies in %s, which a pooled sandbox cannot hide",
                           cwd, paths[i]);
  return 0;
}

int
ak_pool_claim_check (const ak_spec_t *spec, const char *key_id, const ak_ids_t *ids, const char *buf,
                     size_t len, ak_pool_helper_t *h, int *cwd_tree, ak_error_t **err)
{
  _cleanup_free_ char *cwd = NULL;
  _cleanup_free_ char **priv = NULL;
  size_t pos = 0, n_priv = 0;
  const char *s;
  char tag;
  bool key_ok = false;
  ak_fs_id_t pin = { 0 };

  priv = ak_xcalloc (ak_count_entries (buf, len) + 1, sizeof (char *));
  while ((s = claim_next (buf, len, &pos, &tag)) != NULL)
    if (tag == 'k')
      key_ok = strcmp (s, key_id) == 0;
    else if (tag == 'h')
      priv[n_priv++] = (char *) s;
    else if (tag == 'c')
      {
        int off = 0;
        if (sscanf (s, "%llu:%llu:%u:%n", &pin.dev, &pin.ino, &pin.type, &off) != 3 || off <= 0
            || s[off] != '/')
          return ak_error_set (err, 0, "claim: bad workspace");
        free (cwd);
        cwd = ak_xstrdup (s + off);
      }
  if (!key_ok)
    return ak_error_set (err, 0, "claim: not this pooled sandbox's spec");
  *cwd_tree = -1;
  if (!ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    return 0;
  if (cwd == NULL || pin.type == 0)
    return ak_error_set (err, 0, "claim: no workspace");
  if (check_private (cwd, priv, err) < 0 || check_private (cwd, spec->private_paths, err) < 0)
    return -1;
  if (ids->caller_root)
    {
      *cwd_tree = ak_sources_open_workspace (cwd, &pin, ids, true, err);
      return *cwd_tree < 0 ? -1 : 0;
    }
  /* Unprivileged: the helper opens it. */
  {
    _cleanup_free_ char *req = ak_xasprintf ("%llu:%llu:%u:%s", pin.dev, pin.ino, pin.type, cwd);
    int type, value, fds[AK_SYNC_MAX_FDS];
    size_t n_fds = 0;
    char text[1024];
    if (h->fd < 0 || strlen (req) >= sizeof text - 1)
      return ak_error_set (err, 0, "claim: workspace cannot be opened here");
    if (ak_sync_send (h->fd, AK_SYNC_CLAIM, 0, req, NULL, 0) < 0
        || ak_sync_recv (h->fd, &type, &value, text, sizeof text, fds, &n_fds) != 1)
      return ak_error_set (err, errno, "claim: workspace helper");
    if (type != AK_SYNC_READY || n_fds != 1)
      {
        for (size_t i = 0; i < n_fds; i++)
          close (fds[i]);
        return ak_error_set (err, 0, "%s", type == AK_SYNC_ERROR ? text : "claim: workspace helper");
      }
    *cwd_tree = fds[0];
  }
  return 0;
}

/* The helper: enters the sandbox's user namespace, makes a mount namespace
 * of its own (a copy of the host's view, owned by that user namespace, as a
 * cold start's init has before it pivots), and opens one workspace there
 * with the claimant's permissions (the same host user). */
static _Noreturn void
helper_main (pid_t init_pid, int fd)
{
  ak_error_t *err = NULL;
  char path[64], text[1024];
  int type, value, nsfd, tree, off = 0;
  ak_fs_id_t pin = { 0 };
  ak_ids_t ids = { 0 };

  snprintf (path, sizeof path, "/proc/%d/ns/user", (int) init_pid);
  nsfd = open (path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0 || setns (nsfd, CLONE_NEWUSER) < 0 || unshare (CLONE_NEWNS) < 0)
    {
      ak_error_set (&err, errno, "workspace helper: enter the sandbox's user namespace");
      goto fail;
    }
  close (nsfd);
  if (ak_sync_recv (fd, &type, &value, text, sizeof text, NULL, NULL) != 1 || type != AK_SYNC_CLAIM)
    _exit (0);
  if (sscanf (text, "%llu:%llu:%u:%n", &pin.dev, &pin.ino, &pin.type, &off) != 3 || off <= 0)
    {
      ak_error_set (&err, 0, "workspace helper: bad request");
      goto fail;
    }
  tree = ak_sources_open_workspace (text + off, &pin, &ids, false, &err);
  if (tree < 0)
    goto fail;
  (void) ak_sync_send (fd, AK_SYNC_READY, 0, NULL, &tree, 1);
  _exit (0);
fail:
  (void) ak_sync_send (fd, AK_SYNC_ERROR, 0, err ? err->msg : "workspace helper failed", NULL, 0);
  _exit (1);
}

int
ak_pool_helper_start (pid_t init_pid, ak_pool_helper_t *h, ak_error_t **err)
{
  int sv[2];
  pid_t parent = getpid ();

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ak_error_set (err, errno, "socketpair");
  h->pid = fork ();
  if (h->pid < 0)
    {
      close (sv[0]), close (sv[1]);
      return ak_error_set (err, errno, "fork");
    }
  if (h->pid == 0)
    {
      int keep[] = { 0, 1, 2, sv[1] };
      if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != parent
          || ak_init_close_fds_except (keep, 4) < 0)
        _exit (1);
      helper_main (init_pid, sv[1]);
    }
  close (sv[1]);
  h->fd = sv[0];
  return 0;
}

void
ak_pool_helper_stop (ak_pool_helper_t *h)
{
  ak_closep (&h->fd);
  if (h->pid > 0)
    {
      kill (h->pid, SIGKILL);
      while (waitpid (h->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  h->pid = -1;
}

/* ---- the init's side ---- */

int
ak_pool_init_claim (const ak_spec_t *spec, const char *text, const char *bytes, size_t bytes_len, const int *fds,
                    size_t n, ak_pool_claim_t *claim, ak_error_t **err)
{
  char *buf = NULL;
  _cleanup_close_ int rootfd = -1;
  bool has_cwd = text != NULL && strcmp (text, "cwd") == 0;
  size_t want = (bytes != NULL ? 3u : 4u) + (has_cwd ? 1u : 0u);
  const char *workdir = NULL, *s;
  size_t len = 0, pos = 0, na = 0, ne = 0, nh = 0;
  char tag;

  if (n != want)
    return ak_error_set (err, 0, "claim: %zu descriptors", n);
  claim->stdio = (ak_stdio_t){ fds[0], fds[1], fds[2] };
  if (bytes != NULL)
    {
      /* In its message (the owner's, ak_sync_send_data). */
      len = bytes_len;
      buf = claim->buf = ak_xmalloc (len + 1);
      memcpy (buf, bytes, len);
      buf[len] = '\0';
    }
  else
    {
      buf = claim->buf = ak_read_fd (fds[3], AK_POOL_CLAIM_MAX, &len, "claim", err);
      close (fds[3]);
      if (buf == NULL)
        return -1;
    }
  {
    /* One allocation for the three arrays, which point into the claim's
     * bytes, kept with them: an armed sandbox's command process has a
     * heap it shares with the init, copied page by page as it is written,
     * so it writes as little of it as it can. */
    size_t n_entries = ak_count_entries (buf, len) + 1;
    char **v = ak_xcalloc (3 * n_entries, sizeof (char *));
    claim->argv = v, claim->env = v + n_entries, claim->host_env = v + 2 * n_entries;
  }
  while ((s = claim_next (buf, len, &pos, &tag)) != NULL)
    if (tag == 'a')
      claim->argv[na++] = (char *) s;
    else if (tag == 'e')
      claim->env[ne++] = (char *) s;
    else if (tag == 'p')
      claim->host_env[nh++] = (char *) s;
    else if (tag == 'w')
      workdir = s;
    else if (tag == 'u')
      umask ((mode_t) (strtoul (s, NULL, 8) & 0777));
    else if (tag == 'i')
      ak_signals_ignore (strtoull (s, NULL, 16));
  if (na == 0)
    return ak_error_set (err, 0, "no command to run");
  if (workdir == NULL)
    workdir = ak_spec_default_workdir (spec, spec->as_root);
  if (has_cwd)
    {
      _cleanup_close_ int tree = fds[n - 1];
      rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        return ak_error_set (err, errno, "open /");
      if (ak_mounts_attach (rootfd, tree, "workspace", true, err) < 0)
        return ak_error_prefix (err, "mount_cwd");
    }
  if (chdir (workdir) < 0)
    return ak_error_set (err, errno, "working directory %s inside the sandbox", workdir);
  return 0;
}

/* ---- the claimant's side ---- */

/* The command is the sandbox's: said once (backend.h). */
static void
claim_started (bool *started)
{
  if (*started)
    return;
  *started = true;
  if (ak_backend_claim_started_hook != NULL)
    ak_backend_claim_started_hook ();
}

int
ak_container_pool_claim (int ctl, const ak_spec_t *spec, const char *key, const ak_stdio_t *stdio, int *status,
                         ak_error_t **err)
{
  _cleanup_close_ int claim = -1, sigfd = -1, report = -1;
  _cleanup_free_ char *buf = NULL;
  ak_stdio_t io = stdio != NULL ? *stdio : (ak_stdio_t){ 0, 1, 2 };
  int fds[5], rc = -1, sent;
  size_t len = 0, n = 0;
  bool started = false;
  sigset_t mask, orig;

  if (claim_build (spec, key, &buf, &len, err) < 0)
    return 0;
  /* In the message itself, or in a sealed memfd when larger. */
  if (len > AK_SYNC_DATA_MAX && (claim = ak_sealed_memfd ("agentkernel-claim", buf, len, err)) < 0)
    return 0;
  fds[n++] = io.in, fds[n++] = io.out, fds[n++] = io.err;
  if (claim >= 0)
    fds[n++] = claim;
  /* A front shows the daemon's badge (common/peer.h): its claim is taken
   * without a check of where it comes from. */
  if (ak_peer_badge () >= 0)
    fds[n++] = ak_peer_badge ();
  /* Signals for the command go to its owner, which relays them as a cold
   * start's supervisor does. */
  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGQUIT);
  sigprocmask (SIG_BLOCK, &mask, &orig);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0)
    {
      ak_error_set (err, errno, "signalfd");
      rc = 0;
      goto out;
    }
  sent = claim >= 0 ? ak_sync_send (ctl, AK_SYNC_CLAIM, 0, NULL, fds, n)
                    : ak_sync_send_data (ctl, AK_SYNC_CLAIM, buf, len, fds, n);
  if (sent < 0)
    {
      ak_error_set (err, errno, "claim");
      rc = 0;
      goto out;
    }
  for (;;)
    {
      struct pollfd p[3] = { { .fd = ctl, .events = POLLIN }, { .fd = sigfd, .events = POLLIN },
                             { .fd = report, .events = POLLIN } };
      int type, value, got[AK_SYNC_MAX_FDS];
      size_t n_fds = 0;
      char text[1024];
      if (poll (p, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          ak_error_set (err, errno, "poll");
          rc = started ? -1 : 0;
          break;
        }
      if (p[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          if (read (sigfd, &si, sizeof si) == sizeof si)
            (void) ak_sync_send (ctl, AK_SYNC_SIGNAL, (int) si.ssi_signo, NULL, NULL, 0);
        }
      if (report >= 0 && (p[2].revents & (POLLIN | POLLHUP)))
        {
          /* The armed sandbox's own report: STARTED from the command's
           * process as it execs, then the command's status from the init,
           * sent once every process of it is gone.  Without them (the
           * command never ran), the owner reports. */
          int r = ak_sync_recv (report, &type, &value, NULL, 0, NULL, NULL);
          if (r == 1 && type == AK_SYNC_STARTED)
            {
              claim_started (&started);
              continue;
            }
          if (r == 1 && type == AK_SYNC_EXIT)
            {
              claim_started (&started);
              *status = value;
              rc = 1;
              break;
            }
          ak_closep (&report);
        }
      if (!(p[0].revents & (POLLIN | POLLHUP)))
        continue;
      if (ak_sync_recv (ctl, &type, &value, text, sizeof text, got, &n_fds) != 1)
        {
          ak_error_set (err, 0, started ? "pooled sandbox ended without a status"
                                        : "no idle sandbox took the claim");
          rc = started ? -1 : 0;
          break;
        }
      if (type == AK_SYNC_REPORT && n_fds == 1 && report < 0)
        report = got[0], n_fds = 0;
      for (size_t i = 0; i < n_fds; i++)
        close (got[i]);
      if (type == AK_SYNC_STARTED)
        claim_started (&started);
      else if (type == AK_SYNC_WARN)
        ak_warn ("%s", text);
      else if (type == AK_SYNC_EXIT)
        {
          claim_started (&started);
          *status = value;
          rc = 1;
          break;
        }
      else if (type == AK_SYNC_ERROR)
        {
          ak_error_set (err, 0, "%s", text);
          rc = started ? -1 : 0;
          break;
        }
    }
out:
  sigprocmask (SIG_SETMASK, &orig, NULL);
  return rc;
}
