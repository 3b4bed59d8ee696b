/* Warm pool, microVM engine: a booted VM waiting for its claim.
 *
 * The owner (a child of the pool daemon, dying with it) boots the VM as a
 * cold start does, except that the workspace is not known yet: with
 * mount_cwd, the workspace's virtiofsd serves an empty staging directory
 * (vm.c), which the guest mounts nowhere.  It then reports READY on the
 * control channel and waits.  A claim is one AK_SYNC_CLAIM with a sealed
 * memfd holding a JSON object:
 *
 *   key        must equal the pooled spec's own pool key (model/spec_json.h)
 *   env        the claimant's -e values; host_env: what pass_env lets through
 *   cwd, pin   the workspace, canonical and pinned by the claimant
 *   private    paths no share may show (the claimant's own)
 *
 * The owner checks the key, opens the workspace exactly as pinned (never
 * following a symlink) as a detached tree idmapped so that its owner is the
 * staging virtiofsd's uid 1000 (read-only when the profile says so, which
 * the host enforces), and attaches it at the staging directory's "w" in
 * that virtiofsd's parent mount namespace, from where it propagates to
 * virtiofsd's own.  The guest is then sent CLAIM: it takes the
 * environment and mounts "w" of the staging share at /workspace, a name it
 * looks up for the first time (nothing cached hides the tree).  Only then
 * does the claimant get a connection to the VM's agent (AK_SYNC_STARTED)
 * and run the command over it as `run` does.  When the claimant is done or
 * gone (the control channel ends), the owner kills the VM: a VM serves one
 * claim, and the daemon kept no copy of its channel.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "backend/microvm/microvm.h"
#include "backend/microvm/mux.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"
#include "model/spec_json.h"

/* Largest claim accepted (the environment included). */
#define CLAIM_MAX (4u << 20)
/* How long the guest may take to mount a claim's workspace (TCG is slow). */
#define CLAIM_TIMEOUT_MS 30000
/* How long a claimant waits for the VM to be gone after its command. */
#define END_TIMEOUT_MS 15000

/* ---- the daemon's side ---- */

static _Noreturn void owner_main (const ak_spec_t *spec, int ctl, pid_t daemon);

int
ak_microvm_pool_start (const ak_spec_t *spec, int claim_listen, pid_t *owner, ak_error_t **err)
{
  pid_t parent = getpid (), pid;
  int ctl;

  /* Told when the daemon dies, even by SIGKILL: the owner then takes its
   * VM down (the VM's processes die with the owner).  The shape's
   * listening socket is not the owner's. */
  pid = ak_container_pool_fork (-1, SIGTERM, &ctl, err);
  if (pid < 0)
    return -1;
  if (pid == 0)
    owner_main (spec, ctl, parent);
  *owner = pid;
  return ctl;
}

/* ---- the owner ---- */

static bool
path_within (const char *inner, const char *outer)
{
  size_t n = strlen (outer);
  if (strcmp (outer, "/") == 0)
    return true;
  return strncmp (inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

/* A private path beneath the workspace (or the workspace within one) needs
 * a cover inside the share, which only a cold start makes. */
static int
check_private (const char *cwd, const json_t *paths, char *const *own, ak_error_t **err)
{
  size_t i;
  json_t *v;
  json_array_foreach (paths, i, v)
    if (json_is_string (v)
        && (path_within (json_string_value (v), cwd) || path_within (cwd, json_string_value (v))))
      return ak_error_set (err, 0, "workspace %s holds or lies in %s, which a pooled VM cannot hide",
                           cwd, json_string_value (v));
  for (size_t k = 0; own != NULL && own[k] != NULL; k++)
    if (path_within (own[k], cwd) || path_within (cwd, own[k]))
      return ak_error_set (err, 0, "workspace %s holds or lies in %s, which a pooled VM cannot hide",
                           cwd, own[k]);
  return 0;
}

static json_t *
claim_read (int fd, ak_error_t **err)
{
  size_t len = 0;
  _cleanup_free_ char *buf = ak_read_fd (fd, CLAIM_MAX, &len, "claim", err);
  json_t *j;

  if (buf == NULL)
    return NULL;
  j = json_loadb (buf, len, 0, NULL);
  if (!json_is_object (j))
    {
      json_decref (j);
      return ak_error_set (err, 0, "claim: not a JSON object"), NULL;
    }
  return j;
}

/* Attaches tree at the staging directory's "w", in the staging share's
 * mount namespace (a forked helper enters it). */
static int
attach_workspace (int ns, int tree, ak_error_t **err)
{
  int st;
  pid_t pid = fork ();
  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid == 0)
    {
      /* The mount point is opened without following a link (the staging
       * directory is read-only, but nothing here trusts that). */
      int at;
      if (setns (ns, CLONE_NEWNS) < 0)
        _exit (100);
      at = open ("/tmp/share/w", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (at < 0)
        _exit (101);
      if (ak_move_mount (tree, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        _exit (errno > 0 && errno < 100 ? errno : 102);
      _exit (0);
    }
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return ak_error_set (err, errno, "waitpid");
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    {
      int code = WIFEXITED (st) ? WEXITSTATUS (st) : 0;
      return ak_error_set (err, code > 0 && code < 100 ? code : 0, "attach the workspace to the VM's share%s",
                           code == 100 ? " (enter its mount namespace)" : code == 101 ? " (no staging directory)" : "");
    }
  return 0;
}

/* One control message to the guest and its answer (READY or FAIL); no
 * stream is open yet, so nothing else comes on the port. */
static int
guest_claim (ak_vm_t *v, const char *msg, ak_error_t **err)
{
  int chan = ak_vm_pool_chan (v);
  struct pollfd p = { .fd = chan, .events = POLLIN };
  uint8_t op, *pl = NULL;
  uint32_t id;
  size_t len;
  int r;

  if (ak_mux_send (chan, AK_MUX_CLAIM, 0, msg, strlen (msg)) < 0)
    return ak_error_set (err, errno, "send the VM its claim");
  while ((r = poll (&p, 1, CLAIM_TIMEOUT_MS)) < 0 && errno == EINTR)
    ;
  if (r == 0)
    return ak_error_set (err, ETIMEDOUT, "the VM did not take its claim within %d s", CLAIM_TIMEOUT_MS / 1000);
  if (r < 0 || ak_mux_recv (chan, &op, &id, &pl, &len) != 1)
    return ak_error_set (err, EIO, "the VM ended while taking its claim");
  r = 0;
  if (op == AK_MUX_FAIL)
    r = ak_error_set (err, EIO, "in the VM: %.*s", (int) len, (const char *) pl);
  else if (op != AK_MUX_READY || id != 0)
    r = ak_error_set (err, EPROTO, "the VM answered its claim with message %u", op);
  free (pl);
  return r;
}

/* Checks the claim against spec and brings its workspace and environment
 * into the VM. */
static int
take_claim (ak_vm_t *v, const ak_spec_t *spec, int fd, ak_error_t **err)
{
  json_t *j = claim_read (fd, err), *msg = NULL;
  _cleanup_free_ char *key = ak_spec_pool_key (spec), *text = NULL;
  _cleanup_close_ int tree = -1;
  const char *ckey, *cwd, *pin;
  int rc = -1;

  if (j == NULL)
    return -1;
  ckey = json_string_value (json_object_get (j, "key"));
  if (ckey == NULL || strcmp (ckey, key) != 0)
    {
      ak_error_set (err, 0, "claim: not this pooled VM's spec");
      goto out;
    }
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      ak_fs_id_t id = { 0 };
      int off = 0;
      /* The owner of the workspace becomes the staging virtiofsd's uid
       * 1000 (vm.c), and so the guest's sandbox user. */
      ak_ids_t ids = { .caller_root = true, .host_uid = AK_ROOTFUL_HOST_ID, .host_gid = AK_ROOTFUL_HOST_ID };
      cwd = json_string_value (json_object_get (j, "cwd"));
      pin = json_string_value (json_object_get (j, "pin"));
      if (cwd == NULL || cwd[0] != '/' || pin == NULL
          || sscanf (pin, "%llu:%llu:%u%n", &id.dev, &id.ino, &id.type, &off) != 3 || pin[off] != 0
          || id.type == 0)
        {
          ak_error_set (err, 0, "claim: no workspace");
          goto out;
        }
      if (check_private (cwd, json_object_get (j, "private"), spec->private_paths, err) < 0)
        goto out;
      tree = ak_sources_open_workspace (cwd, &id, &ids, true, err);
      if (tree < 0)
        goto out;
      if (ak_spec_sec (spec, AK_SEC_READ_ONLY))
        {
          struct ak_mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
          if (ak_mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro) < 0)
            {
              ak_error_set (err, errno, "make the workspace read-only");
              goto out;
            }
        }
      if (attach_workspace (ak_vm_pool_stage_ns (v), tree, err) < 0)
        goto out;
    }
  msg = json_pack ("{s:O?, s:O?}", "env", json_object_get (j, "env"), "host_env", json_object_get (j, "host_env"));
  text = msg != NULL ? json_dumps (msg, JSON_COMPACT) : NULL;
  if (text == NULL)
    {
      ak_error_set (err, 0, "claim: bad environment");
      goto out;
    }
  rc = guest_claim (v, text, err);
out:
  json_decref (msg);
  json_decref (j);
  return rc;
}

/* The owner's own files: removed once the VM has booted (its logs stay
 * open), or by the handler when the owner is told to end during the boot. */
static char owned_paths[3 + 16][64];
static size_t n_owned;
static char owned_dir[64];

static void
remove_owned (void)
{
  for (size_t i = 0; i < n_owned; i++)
    (void) unlink (owned_paths[i]);
  (void) rmdir (owned_dir);
}

static void
on_term (int sig)
{
  remove_owned ();
  _exit (1);
}

typedef struct owner {
  ak_vm_t *v;
  int sigfd, ctl, ep;
  bool stopping;
} owner_t;

/* The claimant ended (its channel closed), the VM ended, or the owner was
 * told to end: leave the relay. */
static int
owner_event (ak_mux_t *m)
{
  owner_t *o = m->data;
  struct epoll_event ev[4];
  int n = epoll_wait (o->ep, ev, 4, 0);
  for (int i = 0; i < n; i++)
    {
      if (ev[i].data.fd == o->ctl)
        return 1;
      if (ev[i].data.fd == o->sigfd)
        {
          struct signalfd_siginfo si;
          siginfo_t info = { 0 };
          while (read (o->sigfd, &si, sizeof si) == sizeof si)
            if (si.ssi_signo != SIGCHLD)
              return 1;
          if (waitid (P_PID, ak_vm_pool_qemu (o->v), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0)
            return 1;
        }
    }
  return 0;
}

static _Noreturn void
owner_end (ak_vm_t *v, int rc)
{
  ak_vm_pool_free (v);
  _exit (rc);
}

static _Noreturn void
owner_main (const ak_spec_t *spec, int ctl, pid_t daemon)
{
  char tmpl[] = "/tmp/agentkernel-vm.XXXXXX";
  ak_error_t *err = NULL;
  _cleanup_close_ int log = -1, lfd = -1, conn = -1, sigfd = -1, ep = -1;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  ak_vm_t *v = NULL;
  sigset_t mask;

  signal (SIGPIPE, SIG_IGN);
  if (mkdtemp (tmpl) == NULL)
    {
      ak_error_set (&err, errno, "mkdtemp");
      goto fail;
    }
  /* Until the VM has booted, a SIGTERM (the daemon stopping or dying)
   * removes what the owner made; the VM dies with the owner. */
  snprintf (owned_dir, sizeof owned_dir, "%s", tmpl);
  snprintf (owned_paths[n_owned++], sizeof owned_paths[0], "%s/vm.log", tmpl);
  snprintf (owned_paths[n_owned++], sizeof owned_paths[0], "%s/console.log", tmpl);
  snprintf (owned_paths[n_owned++], sizeof owned_paths[0], "%s/agent.sock", tmpl);
  for (int i = 0; i < 16; i++)
    snprintf (owned_paths[n_owned++], sizeof owned_paths[0], "%s/vfs%d.sock", tmpl, i);
  signal (SIGTERM, on_term);
  signal (SIGINT, on_term);
  signal (SIGHUP, on_term);
  if (getppid () != daemon)
    on_term (SIGTERM);

  log = open (owned_paths[0], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log >= 0)
    dup2 (log, 2);
  /* The agent socket: one connection, made now and handed to the
   * claimant, so the socket's path need not outlive the boot. */
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", owned_paths[2]);
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  conn = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || conn < 0 || bind (lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (lfd, 4) < 0
      || connect (conn, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      ak_error_set (&err, errno, "the VM's agent socket");
      goto fail;
    }
  v = ak_vm_pool_boot (spec, tmpl, log, daemon, &err);
  ak_block_owner_signals (&mask);
  remove_owned ();
  if (v == NULL)
    goto fail;
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    {
      ak_error_set (&err, errno, "signalfd");
      goto fail;
    }
  if (ak_sync_send (ctl, AK_SYNC_READY, 0, NULL, NULL, 0) < 0)
    owner_end (v, 1);

  /* Idle: a claim, the daemon gone, or the VM gone. */
  for (;;)
    {
      struct pollfd p[2] = { { .fd = ctl, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
      int type, value, fds[AK_SYNC_MAX_FDS];
      size_t n_fds = 0;
      char text[256];
      siginfo_t info = { 0 };
      if (poll (p, 2, 1000) < 0 && errno != EINTR)
        owner_end (v, 1);
      if (getppid () != daemon)
        owner_end (v, 1);
      if (p[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sigfd, &si, sizeof si) == sizeof si)
            if (si.ssi_signo != SIGCHLD)
              owner_end (v, 1);
          if (waitid (P_PID, ak_vm_pool_qemu (v), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0)
            owner_end (v, 1);
        }
      if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (ak_sync_recv (ctl, &type, &value, text, sizeof text, fds, &n_fds) != 1)
        owner_end (v, 0);
      if (type != AK_SYNC_CLAIM || n_fds != 1)
        {
          for (size_t i = 0; i < n_fds; i++)
            close (fds[i]);
          (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, "claim: bad request", NULL, 0);
          owner_end (v, 1);
        }
      {
        int rc = take_claim (v, spec, fds[0], &err);
        close (fds[0]);
        if (rc < 0)
          {
            (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, err->msg, NULL, 0);
            owner_end (v, 1);
          }
      }
      break;
    }
  if (ak_sync_send (ctl, AK_SYNC_STARTED, 0, NULL, &conn, 1) < 0)
    owner_end (v, 1);
  ak_closep (&conn);

  /* Claimed: relay the claimant's connection until it is done. */
  ep = epoll_create1 (EPOLL_CLOEXEC);
  {
    struct epoll_event e1 = { .events = EPOLLIN | EPOLLHUP, .data.fd = ctl };
    struct epoll_event e2 = { .events = EPOLLIN, .data.fd = sigfd };
    owner_t o = { .v = v, .sigfd = sigfd, .ctl = ctl, .ep = ep };
    ak_mux_t m = { .chan = ak_vm_pool_chan (v), .listen_fd = lfd, .extra_fd = ep, .data = &o,
                   .on_extra = owner_event };
    if (ep < 0 || epoll_ctl (ep, EPOLL_CTL_ADD, ctl, &e1) < 0 || epoll_ctl (ep, EPOLL_CTL_ADD, sigfd, &e2) < 0)
      owner_end (v, 1);
    (void) ak_mux_run (&m);
  }
  owner_end (v, 0);

fail:
  remove_owned ();
  (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, err != NULL ? err->msg : "pooled VM failed", NULL, 0);
  owner_end (v, 1);
}

/* ---- the claimant's side ---- */

/* The claim of spec as a sealed memfd. */
static int
claim_memfd (const ak_spec_t *spec, const char *key, ak_error_t **err)
{
  _cleanup_free_ char *text = NULL;
  json_t *j = json_object (), *env = json_array (), *henv = json_array (), *priv = json_array ();

  json_object_set_new (j, "key", json_string (key));
  for (char **e = spec->env; e != NULL && *e != NULL; e++)
    json_array_append_new (env, json_string (*e));
  for (char **e = spec->host_env; e != NULL && *e != NULL; e++)
    json_array_append_new (henv, json_string (*e));
  for (char **h = spec->private_paths; h != NULL && *h != NULL; h++)
    json_array_append_new (priv, json_string (*h));
  json_object_set_new (j, "env", env);
  json_object_set_new (j, "host_env", henv);
  json_object_set_new (j, "private", priv);
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      /* Pinned here, in the claimant's own view: the owner opens exactly
       * this directory or nothing. */
      ak_fs_id_t id;
      _cleanup_free_ char *canon = NULL, *pin = NULL;
      _cleanup_close_ int p = spec->cwd != NULL ? ak_fs_pin (spec->cwd, &id, &canon, err)
                                                : ak_error_set (err, 0, "no working directory");
      if (p < 0)
        {
          json_decref (j);
          return ak_error_prefix (err, "mount_cwd: workspace");
        }
      pin = ak_xasprintf ("%llu:%llu:%u", id.dev, id.ino, id.type);
      json_object_set_new (j, "cwd", json_string (canon));
      json_object_set_new (j, "pin", json_string (pin));
    }
  text = json_dumps (j, JSON_COMPACT);
  json_decref (j);
  if (text == NULL)
    return ak_error_set (err, 0, "claim: the environment is not valid UTF-8");
  return ak_sealed_memfd ("agentkernel-claim", text, strlen (text), err);
}

int
ak_microvm_pool_claim (int ctl, const ak_spec_t *spec, const char *key, const ak_stdio_t *stdio, int *status,
                       ak_error_t **err)
{
  _cleanup_close_ int claim = -1, conn = -1;
  ak_stdio_t io = stdio != NULL ? *stdio : (ak_stdio_t){ 0, 1, 2 };
  int type, value, fds[AK_SYNC_MAX_FDS], rc;
  size_t n_fds = 0;
  char text[1024];

  claim = claim_memfd (spec, key, err);
  if (claim < 0)
    return 0;
  if (ak_sync_send (ctl, AK_SYNC_CLAIM, 0, NULL, &claim, 1) < 0)
    return ak_error_set (err, errno, "claim"), 0;
  if (ak_sync_recv (ctl, &type, &value, text, sizeof text, fds, &n_fds) != 1)
    return ak_error_set (err, 0, "pooled VM ended before its claim"), 0;
  if (type != AK_SYNC_STARTED || n_fds != 1)
    {
      for (size_t i = 0; i < n_fds; i++)
        close (fds[i]);
      return ak_error_set (err, 0, "%s", type == AK_SYNC_ERROR ? text : "pooled VM: bad answer"), 0;
    }
  conn = fds[0];
  if (ak_backend_claim_started_hook != NULL)
    ak_backend_claim_started_hook ();
  ak_vm_warn (spec);
  rc = ak_vm_exec (conn, spec, &io, status, err);
  ak_closep (&conn);
  /* Done: the owner takes the VM down; nothing of the command runs once
   * this returns (the channel closes when the owner has ended). */
  (void) shutdown (ctl, SHUT_WR);
  {
    struct pollfd p = { .fd = ctl, .events = POLLIN };
    char c;
    while (poll (&p, 1, END_TIMEOUT_MS) > 0 && read (ctl, &c, 1) > 0)
      ;
  }
  return rc < 0 ? -1 : 1;
}
