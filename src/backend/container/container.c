/* Container backend: orchestration of one sandbox.
 *
 * Security-relevant order, in one place (sandbox_init below):
 *    1. drop every descriptor of the caller's, die with the supervisor
 *       (PDEATHSIG), wait for the id maps
 *    2. open what the user shares, with the caller's permissions
 *    3. become the sandbox user (one mapped id; no host privilege)
 *    4. build the root in a private mount namespace and pivot into it
 *    5. hostname, loopback, working directory
 *    6. own cgroup namespace, once the supervisor has placed us in our
 *       groups (it does so in parallel with steps 2-5)
 *    --- privileges dropped from here on, irrevocably ---
 *    7. no_new_privs
 *    8. Landlock (the sandbox's view, then the command policy's execute
 *       rights, decided in step 4 on the finished root)
 *    9. every capability
 *   10. seccomp (last: it forbids what the steps above needed)
 *   11. fork the command; reap until it ends
 *
 * A pooled sandbox stops before 6 until its claim (the claim brings the
 * command and workspace); one without a workspace goes on to 11 at once,
 * its command's process waiting there for the claim (armed, pool.c).
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
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "agent/agent.h"
#include "backend/container/init.h"
#include "common/child.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/peer.h"
#include "common/syscalls.h"
#include "common/util.h"
#include "model/spec_json.h"

#define NS_FLAGS                                                                          \
  (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)

/* Seconds a sandbox has to exit after a relayed SIGTERM/SIGINT/SIGHUP. */
#define KILL_GRACE_MS 5000

typedef struct init_ctx {
  const ak_spec_t *spec;
  const ak_ids_t *ids;
  const ak_stdio_t *stdio;
  const sigset_t *origmask;
  int sync;
  int net_helper;
  bool serve; /* persistent: the agent serves the listening socket (sent with GO) */
  bool pooled; /* warm pool: EXEC brings the claimant's command, streams and workspace */
  const char *persist; /* persistent: the sandbox's state directory */
} init_ctx_t;

/* Every failure of the init reaches the supervisor as AK_SYNC_ERROR with
 * what failed; none is a bare exit (where the channel itself is gone, the
 * supervisor reports the init's exit during set-up). */
static _Noreturn void
init_fail (int sync, ak_error_t *err)
{
  ak_sync_send (sync, AK_SYNC_ERROR, 0, err ? err->msg : "sandbox setup failed", NULL, 0);
  _exit (1);
}

static _Noreturn void
init_fail_errno (int sync, const char *what)
{
  ak_error_t *err = NULL;
  ak_error_set (&err, errno, "sandbox init: %s", what);
  init_fail (sync, err);
}

static const char *
workdir_of (const ak_spec_t *spec)
{
  if (spec->workdir != NULL)
    return spec->workdir;
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    return "/workspace";
  return spec->as_root ? "/root" : "/home/user";
}

static void
report_started (pid_t pid, void *data)
{
  ak_sync_send (*(int *) data, AK_SYNC_STARTED, (int) pid, NULL, NULL, 0);
}

static int exit_code_of (int wstatus);

/* An armed pooled sandbox (no workspace to attach): privileges are dropped
 * before the claim, and the command's process is forked ahead and waits
 * on chan for it (ak_init_run_armed).  The owner sends the claim straight
 * to that process. */
typedef struct armed {
  const init_ctx_t *c;
  int chan[2]; /* [0]: the owner's end (sent with READY), [1]: the waiting process's */
  /* The exit status goes straight to the claimant: [0] the init's end,
   * [1] the claimant's (sent with READY, handed on by the owner). */
  int report[2];
  volatile int *started; /* shared with the waiting process: it took a claim */
  ak_pool_claim_t claim;
} armed_t;

static void
armed_forked (pid_t pid, void *data)
{
  armed_t *a = data;
  int give[2] = { a->chan[0], a->report[1] };
  (void) pid;
  ak_closep (&a->chan[1]);
  (void) ak_sync_send (a->c->sync, AK_SYNC_READY, 0, NULL, give, 2);
  ak_closep (&a->chan[0]);
  ak_closep (&a->report[1]);
}

/* In the waiting process: the claim (stdin, stdout, stderr and the claim's
 * memfd), then the command's streams, directory and environment.  Anything
 * wrong is reported before the command runs: the claimant starts cold. */
static int
armed_prepare (void *data, char ***argv, char ***env)
{
  armed_t *a = data;
  const init_ctx_t *c = a->c;
  ak_error_t *err = NULL;
  int fds[AK_SYNC_MAX_FDS], type = 0, value;
  size_t n_fds = 0;
  char text[AK_SYNC_DATA_MAX + 2];
  ak_spec_t claimed;

  ak_closep (&a->chan[0]);
  if (ak_sync_recv (a->chan[1], &type, &value, text, sizeof text, fds, &n_fds) != 1 || type != AK_SYNC_EXEC
      || value < 0 || value > AK_SYNC_DATA_MAX)
    {
      for (size_t i = 0; i < n_fds; i++)
        close (fds[i]);
      return -1; /* the owner is gone: nothing to run */
    }
  ak_closep (&a->chan[1]);
  /* The claim as it came to the owner: in the message (value: its
   * length), or in a memfd after the streams. */
  if (ak_pool_init_claim (c->spec, "", value > 0 ? text : NULL, (size_t) value, fds, n_fds, &a->claim, &err) < 0)
    goto fail;
  if (dup2 (a->claim.stdio.in, 0) < 0 || dup2 (a->claim.stdio.out, 1) < 0
      || dup2 (a->claim.stdio.err, 2) < 0)
    {
      ak_error_set (&err, errno, "standard streams");
      goto fail;
    }
  /* The claimant's explicit and pass_env values on this sandbox's spec. */
  claimed = *c->spec;
  claimed.env = a->claim.env;
  claimed.host_env = a->claim.host_env;
  *env = ak_spec_build_env_in (&claimed, claimed.as_root, ak_dir_exists);
  *argv = a->claim.argv;
  *a->started = 1;
  /* Straight to the claimant, on the channel its status comes on: no
   * other process is woken while the command starts. */
  ak_sync_send (a->report[0], AK_SYNC_STARTED, (int) getpid (), NULL, NULL, 0);
  ak_closep (&a->report[0]);
  return 0;
fail:
  ak_closep (&a->report[0]);
  ak_sync_send (c->sync, AK_SYNC_ERROR, 0, err ? err->msg : "claim failed", NULL, 0);
  return -1;
}

static _Noreturn void
sandbox_init (const init_ctx_t *c)
{
  ak_error_t *err = NULL;
  ak_sources_t src;
  int fds[AK_SYNC_MAX_FDS], type, value, status;
  size_t n_fds = 0;
  char mask[AK_SYNC_MAX_FDS + 2];
  _cleanup_strv_ char **env = NULL;
  int listen_fd = -1;
  int exec_ruleset = -1, exec_info = -1;
  const char *persist_dir = c->persist;
  ak_pool_claim_t claim = { .stdio = { -1, -1, -1 } };
  const ak_stdio_t *stdio = c->stdio;
  const char *hostname = c->spec->hostname ? c->spec->hostname : "agentkernel";
  bool armed = c->pooled && !ak_spec_sec (c->spec, AK_SEC_MOUNT_CWD);
  armed_t arm = { .c = c, .chan = { -1, -1 }, .report = { -1, -1 } };

  /* 1.  Keep only the channel to the supervisor and the command's streams:
   * whatever else the caller held (a secret on fd 7, a host directory) is
   * not the sandbox's, not even its init's. */
  {
    int keep[] = { c->sync, c->stdio->in, c->stdio->out, c->stdio->err };
    if (ak_init_close_fds_except (keep, sizeof keep / sizeof keep[0]) < 0)
      init_fail_errno (c->sync, "close inherited descriptors");
  }
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0)
    init_fail_errno (c->sync, "parent-death signal");
  if (ak_sync_recv (c->sync, &type, &value, mask, sizeof mask, fds, &n_fds) != 1 || type != AK_SYNC_GO)
    init_fail_errno (c->sync, "no GO from the supervisor");
  /* 2. */
  /* GO carries the listening socket (serving) and, for a root caller, the
   * sources opened outside; the mask says which slots they fill. */
  if (c->serve && n_fds > 0)
    listen_fd = fds[--n_fds];
  if (c->ids->caller_root)
    {
      size_t n = strlen (mask), j = 0;
      _cleanup_free_ int *slots = ak_xcalloc (n + 1, sizeof (int));
      for (size_t i = 0; i < n; i++)
        slots[i] = mask[i] == '1' && j < n_fds ? fds[j++] : -1;
      ak_sources_from_fds (c->spec, slots, n, &src);
    }
  else
    {
      ak_sources_init (&src);
      if (ak_sources_open (c->spec, c->ids, false, persist_dir, &src, &err) < 0)
        init_fail (c->sync, err);
    }
  /* 3.  Changing ids clears the parent-death signal: set it again. */
  if (ak_userns_become (c->ids, &err) < 0)
    init_fail (c->sync, err);
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0)
    init_fail_errno (c->sync, "parent-death signal");
  /* 4. */
  if (ak_mounts_build_root (c->spec, c->ids, &src, c->net_helper, &exec_ruleset, &exec_info, &err) < 0)
    init_fail (c->sync, err);
  ak_sources_close (&src);
  /* 5. */
  if (sethostname (hostname, strlen (hostname)) < 0)
    {
      ak_error_set (&err, errno, "sethostname");
      init_fail (c->sync, err);
    }
  if (ak_net_loopback_up (&err) < 0)
    init_fail (c->sync, err);
  if (chdir (workdir_of (c->spec)) < 0)
    {
      ak_error_set (&err, errno, "working directory %s inside the sandbox", workdir_of (c->spec));
      init_fail (c->sync, err);
    }
  ak_sync_send (c->sync, AK_SYNC_READY, 0, NULL, NULL, 0);
  /* EXEC carries the seccomp filter, compiled meanwhile (none when tests
   * disable it). */
  n_fds = 0;
  if (ak_sync_recv (c->sync, &type, &value, mask, sizeof mask, fds, &n_fds) != 1 || type != AK_SYNC_EXEC)
    init_fail_errno (c->sync, "no EXEC from the supervisor");
  /* 5b. A pooled sandbox waited here, built but running nothing: the claim
   * brings the command, its streams and its workspace (ak_pool_init_claim).
   * Armed (no workspace to attach), it comes later, to the command's own
   * process, forked once privileges are dropped (11). */
  if (armed)
    {
      void *shared = mmap (NULL, sizeof (int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      if (shared == MAP_FAILED || socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, arm.chan) < 0
          || socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, arm.report) < 0)
        init_fail_errno (c->sync, "arm the pooled sandbox");
      arm.started = shared;
    }
  if (c->pooled && !armed)
    {
      size_t n_sec = (size_t) value;
      if (ak_pool_init_claim (c->spec, mask, NULL, 0, fds + n_sec, n_fds - n_sec, &claim, &err) < 0)
        init_fail (c->sync, err);
      n_fds = n_sec;
      stdio = &claim.stdio;
    }
  /* 6. */
  if (unshare (CLONE_NEWCGROUP) < 0)
    {
      ak_error_set (&err, errno, "cgroup namespace");
      init_fail (c->sync, err);
    }

  /* --- privilege drop --- */
  /* 7. */
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    {
      ak_error_set (&err, errno, "no_new_privs");
      init_fail (c->sync, err);
    }
  /* 8. */
  if (ak_landlock_apply (c->spec, &err) < 0)
    init_fail (c->sync, err);
  /* The command policy: execute only where it allows, stacked on top. */
  if (ak_execpolicy_apply (exec_ruleset, &err) < 0)
    init_fail (c->sync, err);
  /* 9. */
  if (ak_caps_drop_all (&err) < 0)
    init_fail (c->sync, err);
  (void) prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* 10.  Under a command policy, the exec listener first (the supervisor
   * reports what the policy denies); then the built-in filter, then a custom
   * profile's on top of it. */
  if (exec_info >= 0)
    {
      int watch[2] = { ak_execwatch_install (&err), exec_info };
      if (watch[0] < 0)
        init_fail (c->sync, err);
      if (ak_sync_send (c->sync, AK_SYNC_WATCH, 0, NULL, watch, 2) < 0)
        init_fail_errno (c->sync, "send the exec listener");
      close (watch[0]);
      close (watch[1]);
    }
  for (size_t i = 0; i < n_fds && i < 2; i++)
    if (ak_seccomp_load (fds[i], &err) < 0)
      init_fail (c->sync, err);
  for (size_t i = 0; i < n_fds; i++)
    close (fds[i]);

  /* 11. */
  if (c->serve)
    {
      ak_agent_conf_t conf = { .spec = c->spec, .user_uid = c->ids->inside_uid,
                               .user_gid = c->ids->inside_gid, .can_root = c->ids->with_root };
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (null >= 0)
        dup2 (null, 0), dup2 (null, 1), dup2 (null, 2);
      report_started (getpid (), (void *) &c->sync);
      _exit (ak_agent_serve (listen_fd, &conf));
    }
  if (armed)
    {
      status = ak_init_run_armed (armed_prepare, c->origmask, armed_forked, &arm);
      if (status < 0)
        {
          ak_error_set (&err, errno, "fork command");
          init_fail (c->sync, err);
        }
      (void) kill (-1, SIGKILL);
      /* Only a command that ran has a status for the claimant; one refused
       * before it ran was reported by its process (ERROR). */
      if (*arm.started)
        (void) ak_sync_send (arm.report[0], AK_SYNC_EXIT, exit_code_of (status), NULL, NULL, 0);
      ak_sync_send (c->sync, AK_SYNC_EXIT, status, NULL, NULL, 0);
      _exit (0);
    }
  if (dup2 (stdio->in, 0) < 0 || dup2 (stdio->out, 1) < 0 || dup2 (stdio->err, 2) < 0)
    {
      ak_error_set (&err, errno, "standard streams");
      init_fail (c->sync, err);
    }
  if (c->pooled)
    {
      /* The claimant's explicit and pass_env values on this sandbox's spec. */
      ak_spec_t claimed = *c->spec;
      claimed.env = claim.env;
      claimed.host_env = claim.host_env;
      env = ak_spec_build_env_in (&claimed, claimed.as_root, ak_dir_exists);
    }
  else
    env = ak_spec_build_env_in (c->spec, c->spec->as_root, ak_dir_exists);
  status = ak_init_run (c->pooled ? claim.argv : c->spec->argv, env, c->origmask, report_started,
                        (void *) &c->sync);
  if (status < 0)
    {
      ak_error_set (&err, errno, "fork command");
      init_fail (c->sync, err);
    }
  /* A pooled run's claimant is told the status before the namespaces are
   * torn down: nothing of the command may outlive that report. */
  if (c->pooled)
    (void) kill (-1, SIGKILL);
  ak_sync_send (c->sync, AK_SYNC_EXIT, status, NULL, NULL, 0);
  _exit (0);
}

/* What the host must offer for `spec`, command aside. */
static int
container_check_env (const ak_spec_t *spec, ak_error_t **err)
{
  if (ak_userns_check (err) < 0)
    return -1;
  if (ak_net_check (spec, err) < 0)
    return -1;
  /* A persistent sandbox's disk limit is a file system of its own, which
   * only root can mount; never a limit silently not applied. */
  if (spec->res.disk_mb > 0 && spec->name != NULL && geteuid () != 0)
    return ak_error_coded (err, EINVAL,
                           "disk_mb for a persistent sandbox needs agentkernel run as root (its layers "
                           "get a file system of that size); an unprivileged user can limit `run` "
                           "sandboxes (memory-backed) or leave disk_mb unset");
  if (ak_sources_count (spec) > AK_MAX_SOURCES)
    return ak_error_set (err, 0,
                         "too many volumes, [[files]] and image layers: %zu host sources, at most %d "
                         "(share a common parent directory instead of many volumes)",
                         ak_sources_count (spec) - 4, AK_MAX_SOURCES - 4);
  /* An image reaches the backend resolved: its layers in the store. */
  if (spec->rootfs == NULL && spec->image != NULL && strcmp (spec->image, "host") != 0
      && strncmp (spec->image, "dir:", 4) != 0 && spec->image_layer_dirs == NULL)
    return ak_error_set (err, 0, "image '%s' was not resolved to layers in the image store", spec->image);
  return 0;
}

static int
container_check (const ak_spec_t *spec, ak_error_t **err)
{
  if (container_check_env (spec, err) < 0)
    return -1;
  if (spec->argv == NULL || spec->argv[0] == NULL)
    return ak_error_set (err, 0, "no command to run");
  return 0;
}

static int
exit_code_of (int wstatus)
{
  if (WIFEXITED (wstatus))
    return WEXITSTATUS (wstatus);
  if (WIFSIGNALED (wstatus))
    return 128 + WTERMSIG (wstatus);
  return 125;
}

/* One relayed signal: to the sandbox, then SIGKILL after the grace period
 * (at once for a second one). */
static void
relay_signal (int pidfd, int signo, bool from_tty, long long *deadline)
{
  if (*deadline >= 0)
    ak_pidfd_send_signal (pidfd, SIGKILL); /* a second signal: no more waiting */
  else
    {
      if (!from_tty)
        ak_pidfd_send_signal (pidfd, signo);
      if (signo != SIGQUIT || !from_tty)
        *deadline = (long long) ak_now_ns () + KILL_GRACE_MS * 1000000LL;
    }
}

/* Relay signals and wait for the sandbox to end.  ctl (a pooled sandbox's
 * claimant, else -1) is told when the command starts, relays the
 * claimant's signals, and its end (the claimant is gone) ends the sandbox;
 * *reported: the claimant was told the status. */
static int
supervise (pid_t pid, int pidfd, int sync, int sigfd, ak_execwatch_t *watch, int ctl, int *status,
           bool *reported, ak_error_t **err)
{
  bool have_status = false, stdin_tty = ctl < 0 && isatty (STDIN_FILENO), watching = watch != NULL;
  long long deadline = -1;
  int wstatus;

  for (;;)
    {
      struct pollfd p[5] = {
        { .fd = pidfd, .events = POLLIN },
        { .fd = sync, .events = POLLIN },
        { .fd = sigfd, .events = POLLIN },
        { .fd = watching ? ak_execwatch_fd (watch) : -1, .events = POLLIN },
        { .fd = ctl, .events = POLLIN },
      };
      int timeout = -1, r;
      if (deadline >= 0)
        {
          long long left = (deadline - (long long) ak_now_ns ()) / 1000000;
          timeout = left > 0 ? (int) left : 0;
        }
      if (sync < 0)
        p[1].fd = -1, p[2].fd = -1, p[4].fd = -1;
      r = poll (p, 5, timeout);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return ak_error_set (err, errno, "poll");
      if (r == 0)
        {
          /* Grace period over: end the whole sandbox. */
          ak_pidfd_send_signal (pidfd, SIGKILL);
          deadline = -1;
          continue;
        }
      if (sync >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
        {
          int type, value;
          char text[1024];
          int rc = ak_sync_recv (sync, &type, &value, text, sizeof text, NULL, NULL);
          if (rc <= 0)
            sync = -1;
          else if (type == AK_SYNC_EXIT && !(have_status && *status < 0))
            {
              *status = exit_code_of (value);
              have_status = true;
              /* The claimant need not wait for the teardown. */
              if (ctl >= 0 && ak_sync_send (ctl, AK_SYNC_EXIT, *status, NULL, NULL, 0) == 0)
                ctl = -1, *reported = true;
            }
          else if (type == AK_SYNC_ERROR)
            {
              ak_error_set (err, 0, "%s", text);
              have_status = true;
              *status = -1;
            }
          else if (type == AK_SYNC_STARTED && ctl >= 0)
            (void) ak_sync_send (ctl, AK_SYNC_STARTED, 0, NULL, NULL, 0);
        }
      if (p[3].revents & POLLIN)
        ak_execwatch_handle (watch);
      else if (p[3].revents & (POLLHUP | POLLERR | POLLNVAL))
        watching = false; /* no process left under the filter */
      if (p[2].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          if (read (sigfd, &si, sizeof si) == sizeof si)
            relay_signal (pidfd, (int) si.ssi_signo, si.ssi_code == SI_KERNEL && stdin_tty, &deadline);
        }
      if (p[4].revents & (POLLIN | POLLHUP))
        {
          int type, value;
          if (ak_sync_recv (ctl, &type, &value, NULL, 0, NULL, NULL) != 1)
            {
              /* The claimant is gone: so is its command. */
              ak_pidfd_send_signal (pidfd, SIGKILL);
              ctl = -1;
            }
          else if (type == AK_SYNC_SIGNAL && value > 0 && value < 65)
            relay_signal (pidfd, value, false, &deadline);
        }
      if (p[0].revents & POLLIN)
        {
          while (waitpid (pid, &wstatus, 0) < 0)
            if (errno != EINTR)
              return ak_error_set (err, errno, "waitpid");
          /* Drain a last message sent just before init exited. */
          while (!have_status && sync >= 0)
            {
              int type, value;
              char text[1024];
              struct pollfd q = { .fd = sync, .events = POLLIN };
              if (poll (&q, 1, 0) <= 0 || ak_sync_recv (sync, &type, &value, text, sizeof text, NULL, NULL) <= 0)
                break;
              if (type == AK_SYNC_EXIT)
                *status = exit_code_of (value), have_status = true;
              else if (type == AK_SYNC_ERROR)
                {
                  ak_error_set (err, 0, "%s", text);
                  *status = -1, have_status = true;
                }
            }
          if (!have_status)
            *status = exit_code_of (wstatus);
          return *status < 0 ? -1 : 0;
        }
    }
}

/* Wait for the init to finish building the sandbox (or fail doing so). */
static int
wait_ready (int sync, ak_error_t **err)
{
  int type, value;
  char text[1024];
  int rc = ak_sync_recv (sync, &type, &value, text, sizeof text, NULL, NULL);
  if (rc == 1 && type == AK_SYNC_READY)
    return 0;
  if (rc == 1 && type == AK_SYNC_ERROR)
    return ak_error_set (err, 0, "%s", text);
  return ak_error_set (err, rc < 0 ? errno : 0, "sandbox init exited during setup");
}

/* Everything about one sandbox's life, for `run` (argv, stdio) and for a
 * persistent sandbox (listen_fd >= 0: the agent serves it; persist: its
 * state directory; *ready_fd: gets the report "serving" (the value is the
 * supervisor's pid) and is set to -1 once it has). */
typedef struct launch {
  const ak_spec_t *spec;
  const ak_stdio_t *stdio;
  int listen_fd;
  const char *persist;
  int *ready_fd;
  bool pooled; /* warm pool: built up to EXEC, which a claim sends */
} launch_t;

/* What a launch holds until it is over: launch_teardown() undoes whatever
 * of it was done, in reverse order, on every path. */
typedef struct launch_state {
  ak_ids_t ids;
  ak_sources_t src;
  ak_cgroup_t cg;
  ak_net_t net;
  ak_stdio_t io;
  bool network, masked;
  sigset_t origmask;
  int sigfd, sync, seccomp_fds[2];
  size_t n_seccomp;
  ak_execwatch_t *watch; /* the command policy's exec listener, or NULL */
  pid_t pid; /* the sandbox init, until reaped */
  int pidfd;
} launch_state_t;

static void
launch_teardown (launch_state_t *st)
{
  if (st->pid > 0)
    {
      ak_pidfd_send_signal (st->pidfd, SIGKILL);
      while (waitpid (st->pid, NULL, 0) < 0 && errno == EINTR)
        ;
      st->pid = -1;
    }
  ak_net_stop (&st->net);
  ak_closep (&st->sync);
  ak_closep (&st->pidfd);
  ak_execwatch_free (st->watch);
  st->watch = NULL;
  ak_closep (&st->sigfd);
  while (st->n_seccomp > 0)
    ak_closep (&st->seccomp_fds[--st->n_seccomp]);
  if (st->masked)
    sigprocmask (SIG_SETMASK, &st->origmask, NULL);
  ak_sources_close (&st->src);
  ak_cgroup_destroy (&st->cg);
}

#define _cleanup_launch_ __attribute__ ((cleanup (launch_teardown)))

/* Prepare: everything that can be checked or opened before a namespace
 * exists (host checks, the caller's sources for a root caller, cgroups,
 * the signals the supervisor relays). */
static int
launch_prepare (const launch_t *l, launch_state_t *st, ak_error_t **err)
{
  const ak_spec_t *spec = l->spec;
  bool serve = l->listen_fd >= 0;
  sigset_t mask;
  int sv[2];

  ak_ids_plan (spec, serve, &st->ids);
  if ((serve || l->pooled ? container_check_env (spec, err) : container_check (spec, err)) < 0)
    return -1;
  /* Only a pooled sandbox gets its workspace later (at its claim). */
  if (!l->pooled && ak_spec_sec (spec, AK_SEC_MOUNT_CWD) && spec->cwd == NULL)
    return ak_error_set (err, 0, "mount_cwd: no workspace directory given");
  if (ak_landlock_abi () == 0 && ak_test_disabled ("landlock"))
    ak_warn ("Landlock is DISABLED by AK_TEST_DISABLE: file access is confined by mounts only");
  else if (ak_landlock_abi () == 0)
    ak_warn ("Landlock is not available (kernel without CONFIG_SECURITY_LANDLOCK, or 'landlock' "
             "missing from the lsm= boot parameter): file access is confined by mounts only");
  if (st->ids.caller_root && ak_sources_open (spec, &st->ids, true, l->persist, &st->src, err) < 0)
    return -1;
  if (ak_cgroup_create (spec, &st->cg, err) < 0)
    return -1;

  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGQUIT);
  sigprocmask (SIG_BLOCK, &mask, &st->origmask);
  st->masked = true;
  st->sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (st->sigfd < 0)
    return ak_error_set (err, errno, "signalfd");
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ak_error_set (err, errno, "socketpair");
  st->sync = sv[0];
  return sv[1];
}

/* The sources (and the listening socket) travel to the init with GO; only
 * open descriptors can travel, so a mask keeps their slots. */
static int
send_go (const launch_t *l, launch_state_t *st, ak_error_t **err)
{
  size_t max = ak_sources_count (l->spec), k = 0, n;
  _cleanup_free_ int *fds = ak_xcalloc (max + 1, sizeof (int));
  _cleanup_free_ int *valid = ak_xcalloc (max + 2, sizeof (int));
  _cleanup_free_ char *m = ak_xcalloc (max + 1, 1);

  /* container_check_env keeps max within what one message carries. */
  n = ak_sources_fds (&st->src, fds, max);
  for (size_t i = 0; i < n; i++)
    {
      m[i] = fds[i] >= 0 ? '1' : '0';
      if (fds[i] >= 0)
        valid[k++] = fds[i];
    }
  if (l->listen_fd >= 0)
    valid[k++] = l->listen_fd;
  if (ak_sync_send (st->sync, AK_SYNC_GO, 0, m, valid, k) < 0)
    return ak_error_set (err, errno, "start sandbox init");
  ak_sources_close (&st->src);
  return 0;
}

/* Commit: the namespaces exist from here on.  The init builds the root
 * while the supervisor writes its id maps, brings the network up, joins
 * the cgroups and compiles the seccomp filter; the command starts (EXEC)
 * only once all of that is done. */
static int
launch_commit (const launch_t *l, launch_state_t *st, int init_sync, ak_error_t **err)
{
  const ak_spec_t *spec = l->spec;

  st->pid = ak_raw_clone (NS_FLAGS | CLONE_PIDFD, &st->pidfd);
  if (st->pid < 0)
    {
      close (init_sync);
      return ak_error_set (err, errno, "create the sandbox namespaces (user, mount, pid, ipc, uts, net)%s",
                           errno == EPERM || errno == ENOSPC ? "; user namespaces may be restricted on this host"
                                                            : "");
    }
  if (st->pid == 0)
    {
      init_ctx_t c = { .spec = spec, .ids = &st->ids, .stdio = &st->io,
                       .origmask = &st->origmask, .sync = init_sync, .serve = l->listen_fd >= 0,
                       .pooled = l->pooled,
                       .persist = l->persist,
                       .net_helper = st->network ? (int) ak_net_helper (NULL) : AK_NET_NONE };
      close (st->sync);
      sandbox_init (&c);
    }
  close (init_sync);

  if (ak_userns_write_maps (st->pid, &st->ids, err) < 0 || send_go (l, st, err) < 0)
    return -1;
  if (st->network && ak_net_start (st->pid, &st->ids, spec, &st->net, err) < 0)
    return -1;
  /* Joining cgroups is slow on v1 hierarchies: it overlaps the root build.
   * The command starts only after EXEC, so it always runs inside them. */
  if (ak_cgroup_attach (&st->cg, st->pid, err) < 0)
    return -1;
  /* So is compiling the seccomp filter. */
  if (ak_test_disabled ("seccomp"))
    ak_warn ("the seccomp filter is DISABLED by AK_TEST_DISABLE: this sandbox is weaker than its "
             "profile (for testing only)");
  else
    {
      int n = ak_seccomp_compile (spec, st->seccomp_fds, err);
      if (n < 0)
        return -1;
      st->n_seccomp = (size_t) n;
    }
  if (wait_ready (st->sync, err) < 0)
    return -1;
  if (st->network && ak_net_wait_ready (&st->net, err) < 0)
    return -1;
  if (l->pooled)
    return 0; /* EXEC comes with a claim (ak_container_pool_serve) */
  if (ak_sync_send (st->sync, AK_SYNC_EXEC, 0, NULL, st->seccomp_fds, st->n_seccomp) < 0)
    return ak_error_set (err, errno, "start command");
  if (ak_cmdpolicy_active (&spec->sec.commands))
    {
      /* The command policy's exec listener comes before anything runs. */
      int type = 0, value, fds[AK_SYNC_MAX_FDS];
      size_t n_fds = 0;
      char text[1024];
      if (ak_sync_recv (st->sync, &type, &value, text, sizeof text, fds, &n_fds) != 1
          || type != AK_SYNC_WATCH || n_fds != 2)
        {
          for (size_t i = 0; i < n_fds; i++)
            close (fds[i]);
          return ak_error_set (err, 0, "%s", type == AK_SYNC_ERROR ? text : "sandbox init exited during setup");
        }
      st->watch = ak_execwatch_new (spec, fds[0], fds[1], err);
      if (st->watch == NULL)
        return -1;
    }
  if (l->listen_fd >= 0)
    {
      /* The agent serves once it reports STARTED. */
      int type = 0, value;
      char text[1024];
      if (ak_sync_recv (st->sync, &type, &value, text, sizeof text, NULL, NULL) != 1
          || type != AK_SYNC_STARTED)
        return ak_error_set (err, 0, "%s", type == AK_SYNC_ERROR ? text : "sandbox agent exited during setup");
      if (l->ready_fd != NULL && *l->ready_fd >= 0)
        {
          (void) ak_report_ok (*l->ready_fd, (int) getpid ());
          ak_closep (l->ready_fd);
        }
    }
  return 0;
}

/* prepare, commit, supervise; teardown on every way out. */
static int
launch (const launch_t *l, int *status, ak_error_t **err)
{
  _cleanup_launch_ launch_state_t st = {
    .net = { .pid = -1, .ready_fd = -1, .exit_fd = -1 },
    .io = l->stdio ? *l->stdio : (ak_stdio_t){ 0, 1, 2 },
    .network = ak_spec_sec (l->spec, AK_SEC_NETWORK),
    .sigfd = -1, .sync = -1, .seccomp_fds = { -1, -1 }, .pid = -1, .pidfd = -1,
  };
  int init_sync, rc;

  ak_sources_init (&st.src);
  if ((init_sync = launch_prepare (l, &st, err)) < 0 || launch_commit (l, &st, init_sync, err) < 0)
    return -1;
  rc = supervise (st.pid, st.pidfd, st.sync, st.sigfd, st.watch, -1, status, &(bool){ false }, err);
  st.pid = -1; /* reaped */
  return rc;
}

static int
container_run (const ak_spec_t *spec, const ak_stdio_t *stdio, int *status, ak_error_t **err)
{
  launch_t l = { .spec = spec, .stdio = stdio, .listen_fd = -1 };
  return launch (&l, status, err);
}

int
ak_container_serve (const ak_spec_t *spec, int listen_fd, const char *persist, int *ready_fd,
                    ak_error_t **err)
{
  launch_t l = { .spec = spec, .listen_fd = listen_fd, .persist = persist, .ready_fd = ready_fd };
  int status = 0;
  return launch (&l, &status, err) < 0 ? -1 : status;
}

/* Warnings given while an idle sandbox was built: its claimant sees them
 * as a cold start's caller would (a degraded feature is never silent). */
static void
collect_warning (const char *msg, void *data)
{
  char ***list = data;
  size_t n = ak_strv_len (*list);
  *list = ak_xrealloc (*list, (n + 2) * sizeof (char *));
  (*list)[n] = ak_xstrdup (msg);
  (*list)[n + 1] = NULL;
}

static int
watch (int ep, int fd, uint32_t slot, uint32_t flags)
{
  struct epoll_event e = { .events = EPOLLIN | flags, .data.u32 = slot };
  return epoll_ctl (ep, EPOLL_CTL_ADD, fd, &e);
}

/* Warm pool: the owner of one idle sandbox, in a process of its own that
 * the daemon forked (ak_container_pool_start).  The sandbox is built up to
 * the point where only the command remains (READY received, network up,
 * seccomp compiled); ctl reports it idle, then carries at most one claim.
 * Whatever happens, the sandbox serves that one claim and is then torn down:
 * a used sandbox is never handed out again. */
int
ak_container_pool_serve (const ak_spec_t *spec, int ctl, int claim_listen, ak_error_t **err)
{
  launch_t l = { .spec = spec, .listen_fd = -1, .pooled = true };
  _cleanup_launch_ launch_state_t st = {
    .net = { .pid = -1, .ready_fd = -1, .exit_fd = -1 },
    .network = ak_spec_sec (spec, AK_SEC_NETWORK),
    .sigfd = -1, .sync = -1, .seccomp_fds = { -1, -1 }, .pid = -1, .pidfd = -1,
  };
  _cleanup_close_ int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  _cleanup_(ak_pool_helper_stop) ak_pool_helper_t helper = { .pid = -1, .fd = -1 };
  _cleanup_strv_ char **warnings = NULL;
  _cleanup_free_ char *key = ak_spec_pool_key (spec);
  char key_id[AK_DIGEST_STR_LEN + 1], text[AK_SYNC_DATA_MAX + 2];
  size_t base;
  bool reported = false;
  int init_sync, rc, status = 0;
  _cleanup_close_ int chan = -1, peer = -1, report = -1, ep = -1;
  int daemon_ctl = -1; /* a claimant came from the shape's socket: ctl before it */
  ak_pool_first_t first = { .have = false };

  if (null < 0)
    return ak_error_set (err, errno, "/dev/null");
  ak_set_warn_handler (collect_warning, &warnings);
  st.io = (ak_stdio_t){ null, null, null };
  ak_sources_init (&st.src);
  if ((init_sync = launch_prepare (&l, &st, err)) < 0 || launch_commit (&l, &st, init_sync, err) < 0)
    return -1;
  /* Unprivileged, the workspace can only be opened from a mount namespace
   * the sandbox's user namespace owns (as a cold start's init does): a
   * helper waits in one, made now, off the claim's path. */
  if (!st.ids.caller_root && ak_spec_sec (spec, AK_SEC_MOUNT_CWD)
      && ak_pool_helper_start (st.pid, &helper, err) < 0)
    return -1;
  /* Without a workspace to attach, nothing of the claim is needed before
   * privileges are dropped: the init drops them now and forks the
   * command's process, which waits for the claim on `chan`. */
  if (!ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      int type = 0, value, fds[AK_SYNC_MAX_FDS];
      size_t n_fds = 0;
      if (ak_sync_send (st.sync, AK_SYNC_EXEC, (int) st.n_seccomp, "arm", st.seccomp_fds, st.n_seccomp) < 0)
        return ak_error_set (err, errno, "arm the pooled sandbox");
      if (ak_sync_recv (st.sync, &type, &value, text, sizeof text, fds, &n_fds) != 1
          || type != AK_SYNC_READY || n_fds != 2)
        {
          for (size_t i = 0; i < n_fds; i++)
            close (fds[i]);
          return ak_error_set (err, 0, "%s", type == AK_SYNC_ERROR ? text : "pooled sandbox ended while armed");
        }
      chan = fds[0];
      report = fds[1];
    }
  if (ak_sync_send (ctl, AK_SYNC_READY, 0, NULL, NULL, 0) < 0)
    return ak_error_set (err, errno, "report idle");

  /* What a claimant is compared with, read while idle (common/peer.h);
   * the shape's key as claims name it (pool.c). */
  (void) ak_peer_check_prepare ();
  ak_sha256_digest (key, strlen (key), key_id);
  /* The heap is the daemon's, copied on write: its first allocation of
   * any size (the claim's) would sort the daemon's freed blocks and copy
   * the pages it writes.  Done while idle. */
  free (ak_xcalloc (1, 32 * 1024));
  /* Idle: the shape's socket is watched exclusively (EPOLLEXCLUSIVE), so
   * that a claimant's connection wakes one idle sandbox, not all of them. */
  ep = epoll_create1 (EPOLL_CLOEXEC);
  if (ep < 0 || watch (ep, ctl, 0, 0) < 0 || watch (ep, st.pidfd, 1, 0) < 0 || watch (ep, st.sigfd, 2, 0) < 0
      || (claim_listen >= 0 && watch (ep, claim_listen, 3, EPOLLEXCLUSIVE) < 0))
    return ak_error_set (err, errno, "epoll");
  for (;;)
    {
      struct pollfd p[4] = { { .fd = ctl }, { .fd = st.pidfd }, { .fd = st.sigfd }, { .fd = claim_listen } };
      struct epoll_event ev[4];
      int fds[AK_SYNC_MAX_FDS], type, value, n_ev;
      size_t n_fds = 0;
      n_ev = epoll_wait (ep, ev, 4, -1);
      if (n_ev < 0)
        {
          if (errno == EINTR)
            continue;
          return ak_error_set (err, errno, "epoll_wait");
        }
      for (int i = 0; i < n_ev; i++)
        p[ev[i].data.u32].revents = (short) ev[i].events;
      if (p[2].revents & POLLIN)
        return 0; /* the daemon stops: so does its idle sandbox */
      if (p[1].revents & POLLIN)
        return ak_error_set (err, 0, "idle sandbox ended");
      if (peer < 0 && (p[3].revents & POLLIN))
        {
          /* A claimant straight from the shape's socket (backend.h): the
           * daemon hears that this sandbox is taken once the claim went on
           * to the command, and nothing more. */
          peer = ak_pool_accept_claimant (claim_listen, &first);
          if (peer < 0)
            continue; /* another idle sandbox took it, or it was refused */
          daemon_ctl = ctl;
          /* With its claim in hand, this sandbox serves it first and
           * leaves the shape's socket afterwards. */
          if (!first.have)
            {
              (void) epoll_ctl (ep, EPOLL_CTL_DEL, claim_listen, NULL);
              ak_closep (&claim_listen);
            }
        }
      else if (!(p[0].revents & (POLLIN | POLLHUP)))
        continue;
      else if (peer < 0)
        {
          /* The daemon hands over the claimant's connection (backend.h,
           * pool_handoff): from here on ctl is the claimant. */
          peer = ak_pool_take_claimant (ctl);
          if (peer < 0)
            return 0; /* the daemon is gone */
        }
      if (ctl != peer && !first.have)
        {
          (void) epoll_ctl (ep, EPOLL_CTL_DEL, ctl, NULL);
          ctl = peer;
          if (watch (ep, ctl, 0, 0) < 0)
            return ak_error_set (err, errno, "epoll");
          continue;
        }
      ctl = peer;
      if (first.have)
        {
          /* Read with the connection (a front's claim, or a claimant's
           * that had come by the time its peer was checked). */
          rc = 1, type = first.type, value = first.value, n_fds = first.n_fds;
          memcpy (fds, first.fds, n_fds * sizeof fds[0]);
          memcpy (text, first.text, sizeof text);
          first.have = false;
        }
      else
        rc = ak_sync_recv (ctl, &type, &value, text, sizeof text, fds, &n_fds);
      if (rc <= 0)
        return 0; /* the claimant went away before claiming */
      /* The claim in the message (value: its length) or in a memfd after
       * the streams (pool.c); a badge after a check made already changes
       * nothing. */
      base = value > 0 ? 3 : 4;
      if (type == AK_SYNC_CLAIM && n_fds == base + 1)
        ak_closep (&fds[--n_fds]);
      if (type != AK_SYNC_CLAIM || n_fds != base || value < 0 || value > AK_SYNC_DATA_MAX)
        {
          for (size_t i = 0; i < n_fds; i++)
            close (fds[i]);
          return ak_error_set (err, 0, "pool: unexpected message");
        }
      {
        _cleanup_close_ int in = fds[0], out = fds[1], errfd = fds[2], claim = base > 3 ? fds[3] : -1;
        _cleanup_close_ int cwd_tree = -1;
        _cleanup_free_ char *read_in = NULL;
        const char *bytes = text;
        size_t len = (size_t) value;
        int exec_fds[8];
        size_t n = 0;
        text[len] = '\0';
        if (claim >= 0 && (bytes = read_in = ak_read_fd (claim, AK_POOL_CLAIM_MAX, &len, "claim", err)) == NULL)
          {
            (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, (*err)->msg, NULL, 0);
            return -1;
          }
        if (ak_pool_claim_check (spec, key_id, &st.ids, bytes, len, &helper, &cwd_tree, err) < 0)
          {
            (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, (*err)->msg, NULL, 0);
            return -1;
          }
        for (char **w = warnings; w != NULL && *w != NULL; w++)
          (void) ak_sync_send (ctl, AK_SYNC_WARN, 0, *w, NULL, 0);
        if (chan >= 0)
          {
            /* Armed: straight to the command's waiting process, the claim
             * as it came. */
            exec_fds[n++] = in, exec_fds[n++] = out, exec_fds[n++] = errfd;
            if (claim >= 0)
              exec_fds[n++] = claim;
            if ((claim >= 0 ? ak_sync_send (chan, AK_SYNC_EXEC, 0, "", exec_fds, n)
                            : ak_sync_send_data (chan, AK_SYNC_EXEC, bytes, len, exec_fds, n))
                < 0)
              {
                ak_error_set (err, errno, "start command");
                (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, (*err)->msg, NULL, 0);
                return -1;
              }
            ak_closep (&chan);
            /* The claimant hears the exit status from the init itself. */
            (void) ak_sync_send (ctl, AK_SYNC_REPORT, 0, NULL, &report, 1);
            ak_closep (&report);
            break;
          }
        /* The init takes its claim in a memfd (its message's text says
         * whether a workspace comes with it). */
        if (claim < 0 && (claim = ak_sealed_memfd ("agentkernel-claim", bytes, len, err)) < 0)
          {
            (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, (*err)->msg, NULL, 0);
            return -1;
          }
        for (size_t i = 0; i < st.n_seccomp; i++)
          exec_fds[n++] = st.seccomp_fds[i];
        exec_fds[n++] = in, exec_fds[n++] = out, exec_fds[n++] = errfd, exec_fds[n++] = claim;
        if (cwd_tree >= 0)
          exec_fds[n++] = cwd_tree;
        if (ak_sync_send (st.sync, AK_SYNC_EXEC, (int) st.n_seccomp, cwd_tree >= 0 ? "cwd" : "", exec_fds, n) < 0)
          {
            ak_error_set (err, errno, "start command");
            (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, (*err)->msg, NULL, 0);
            return -1;
          }
      }
      break;
    }
  ak_closep (&claim_listen);
  if (daemon_ctl >= 0)
    (void) ak_sync_send (daemon_ctl, AK_SYNC_CLAIMED, 0, NULL, NULL, 0);
  ak_pool_helper_stop (&helper);
  rc = supervise (st.pid, st.pidfd, st.sync, st.sigfd, NULL, ctl, &status, &reported, err);
  st.pid = -1; /* reaped */
  if (rc < 0)
    (void) ak_sync_send (ctl, AK_SYNC_ERROR, 0, (*err)->msg, NULL, 0);
  else if (!reported)
    (void) ak_sync_send (ctl, AK_SYNC_EXIT, status, NULL, NULL, 0);
  return rc;
}

const ak_backend_t ak_container_backend = {
  .name = "container",
  .check = container_check_env,
  .doctor = ak_container_doctor,
  .run = container_run,
  .start = ak_container_start,
  .connect = ak_container_connect,
  .stop = ak_container_stop,
  .address = ak_container_address,
  .pool_start = ak_container_pool_start,
  .pool_wait = ak_container_pool_wait,
  .pool_claim = ak_container_pool_claim,
  .pool_handoff = true,
};
