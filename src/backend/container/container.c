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
 *    8. Landlock
 *    9. every capability
 *   10. seccomp (last: it forbids what the steps above needed)
 *   11. fork the command; reap until it ends
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
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "agent/agent.h"
#include "backend/container/init.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

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
  const char *persist; /* persistent: the sandbox's state directory */
} init_ctx_t;

static _Noreturn void
init_fail (int sync, ak_error_t *err)
{
  ak_sync_send (sync, AK_SYNC_ERROR, 0, err ? err->msg : "sandbox setup failed", NULL, 0);
  _exit (1);
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

static _Noreturn void
sandbox_init (const init_ctx_t *c)
{
  ak_error_t *err = NULL;
  ak_sources_t src;
  int fds[64], type, value, status;
  size_t n_fds = 0;
  char mask[128];
  _cleanup_strv_ char **env = NULL;
  int listen_fd = -1;
  const char *persist_dir = c->persist;
  const char *hostname = c->spec->hostname ? c->spec->hostname : "agentkernel";

  /* 1.  Keep only the channel to the supervisor and the command's streams:
   * whatever else the caller held (a secret on fd 7, a host directory) is
   * not the sandbox's, not even its init's. */
  {
    int keep[] = { c->sync, c->stdio->in, c->stdio->out, c->stdio->err };
    if (ak_init_close_fds_except (keep, sizeof keep / sizeof keep[0]) < 0)
      _exit (1);
  }
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0)
    _exit (1);
  if (ak_sync_recv (c->sync, &type, &value, mask, sizeof mask, fds, &n_fds) != 1 || type != AK_SYNC_GO)
    _exit (1);
  /* 2. */
  /* GO carries the listening socket (serving) and, for a root caller, the
   * sources opened outside; the mask says which slots they fill. */
  if (c->serve && n_fds > 0)
    listen_fd = fds[--n_fds];
  if (c->ids->caller_root)
    {
      int slots[64];
      size_t n = strlen (mask), j = 0;
      for (size_t i = 0; i < n && i < 64; i++)
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
    _exit (1);
  /* 4. */
  if (ak_mounts_build_root (c->spec, c->ids, &src, c->net_helper, &err) < 0)
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
  if (ak_sync_recv (c->sync, &type, &value, NULL, 0, fds, &n_fds) != 1 || type != AK_SYNC_EXEC)
    _exit (1);
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
  /* 9. */
  if (ak_caps_drop_all (&err) < 0)
    init_fail (c->sync, err);
  (void) prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* 10. */
  if (n_fds == 1 && ak_seccomp_load (fds[0], &err) < 0)
    init_fail (c->sync, err);
  if (n_fds == 1)
    close (fds[0]);

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
  if (dup2 (c->stdio->in, 0) < 0 || dup2 (c->stdio->out, 1) < 0 || dup2 (c->stdio->err, 2) < 0)
    {
      ak_error_set (&err, errno, "standard streams");
      init_fail (c->sync, err);
    }
  env = ak_spec_build_env (c->spec);
  status = ak_init_run (c->spec->argv, env, c->origmask, report_started, (void *) &c->sync);
  if (status < 0)
    {
      ak_error_set (&err, errno, "fork command");
      init_fail (c->sync, err);
    }
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
  if (spec->rootfs == NULL && spec->image != NULL && strcmp (spec->image, "host") != 0)
    return ak_error_set (err, 0,
                         "image '%s': this build runs the 'host' image or a directory (--rootfs "
                         "DIR); pulling OCI images is not available",
                         spec->image);
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

/* Relay signals and wait for the sandbox to end. */
static int
supervise (pid_t pid, int pidfd, int sync, int sigfd, int *status, ak_error_t **err)
{
  bool have_status = false, stdin_tty = isatty (STDIN_FILENO);
  long long deadline = -1;
  int wstatus;

  for (;;)
    {
      struct pollfd p[3] = {
        { .fd = pidfd, .events = POLLIN },
        { .fd = sync, .events = POLLIN },
        { .fd = sigfd, .events = POLLIN },
      };
      int timeout = -1, r;
      if (deadline >= 0)
        {
          long long left = (deadline - (long long) ak_now_ns ()) / 1000000;
          timeout = left > 0 ? (int) left : 0;
        }
      r = poll (p, sync >= 0 ? 3 : 1, timeout);
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
          else if (type == AK_SYNC_EXIT)
            {
              *status = exit_code_of (value);
              have_status = true;
            }
          else if (type == AK_SYNC_ERROR)
            {
              ak_error_set (err, 0, "%s", text);
              have_status = true;
              *status = -1;
            }
        }
      if (p[2].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          if (read (sigfd, &si, sizeof si) == sizeof si)
            {
              bool from_tty = si.ssi_code == SI_KERNEL && stdin_tty;
              if (deadline >= 0)
                ak_pidfd_send_signal (pidfd, SIGKILL); /* a second signal: no more waiting */
              else
                {
                  if (!from_tty)
                    ak_pidfd_send_signal (pidfd, (int) si.ssi_signo);
                  if (si.ssi_signo != SIGQUIT || !from_tty)
                    deadline = (long long) ak_now_ns () + KILL_GRACE_MS * 1000000LL;
                }
            }
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
 * state directory; ready_fd: told once the agent serves). */
typedef struct launch {
  const ak_spec_t *spec;
  const ak_stdio_t *stdio;
  int listen_fd;
  const char *persist;
  int ready_fd;
} launch_t;

static int
launch (const launch_t *l, int *status, ak_error_t **err)
{
  const ak_spec_t *spec = l->spec;
  const ak_stdio_t *stdio = l->stdio;
  bool serve = l->listen_fd >= 0;
  ak_ids_t ids;
  _cleanup_close_ int seccomp_fd = -1;
  ak_cgroup_t cg = { 0 };
  ak_sources_t src;
  sigset_t mask, origmask;
  _cleanup_close_ int sigfd = -1;
  _cleanup_close_ int pidfd = -1;
  int sv[2] = { -1, -1 };
  pid_t pid = -1;
  ak_net_t net = { .pid = -1, .ready_fd = -1, .exit_fd = -1 };
  int ret = -1;
  bool network = ak_spec_sec (spec, AK_SEC_NETWORK);
  ak_stdio_t io = stdio ? *stdio : (ak_stdio_t){ 0, 1, 2 };

  ak_sources_init (&src);
  ak_ids_plan (spec, serve, &ids);
  if ((serve ? container_check_env (spec, err) : container_check (spec, err)) < 0)
    return -1;
  if (ak_landlock_abi () == 0 && ak_test_disabled ("landlock"))
    ak_warn ("Landlock is DISABLED by AK_TEST_DISABLE: file access is confined by mounts only");
  else if (ak_landlock_abi () == 0)
    ak_warn ("Landlock is not available (kernel without CONFIG_SECURITY_LANDLOCK, or 'landlock' "
             "missing from the lsm= boot parameter): file access is confined by mounts only");
  if (ids.caller_root && ak_sources_open (spec, &ids, true, l->persist, &src, err) < 0)
    goto out;
  if (ak_cgroup_create (spec, &cg, err) < 0)
    goto out;

  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGQUIT);
  sigprocmask (SIG_BLOCK, &mask, &origmask);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0)
    {
      ak_error_set (err, errno, "signalfd");
      goto out_mask;
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      ak_error_set (err, errno, "socketpair");
      goto out_mask;
    }

  pid = ak_raw_clone (NS_FLAGS | CLONE_PIDFD, &pidfd);
  if (pid < 0)
    {
      ak_error_set (err, errno,
                    "create the sandbox namespaces (user, mount, pid, ipc, uts, net)%s",
                    errno == EPERM || errno == ENOSPC ? "; user namespaces may be restricted on this host" : "");
      goto out_mask;
    }
  if (pid == 0)
    {
      init_ctx_t c = { .spec = spec, .ids = &ids, .stdio = &io,
                       .origmask = &origmask, .sync = sv[1], .serve = serve, .persist = l->persist,
                       .net_helper = network ? (int) ak_net_helper (NULL) : AK_NET_NONE };
      close (sv[0]);
      sandbox_init (&c);
    }
  close (sv[1]);
  sv[1] = -1;

  if (ak_userns_write_maps (pid, &ids, err) < 0)
    goto kill;
  {
    int fds[64];
    size_t n = ak_sources_fds (&src, fds, 64), k = 0;
    int valid[64];
    char m[128] = "";
    for (size_t i = 0; i < n && i < sizeof m - 1; i++)
      {
        m[i] = fds[i] >= 0 ? '1' : '0';
        if (fds[i] >= 0)
          valid[k++] = fds[i];
      }
    /* Only open descriptors can travel; the mask keeps their slots. */
    if (serve)
      valid[k++] = l->listen_fd;
    if (ak_sync_send (sv[0], AK_SYNC_GO, 0, m, valid, k) < 0)
      {
        ak_error_set (err, errno, "start sandbox init");
        goto kill;
      }
  }
  ak_sources_close (&src);
  /* The network comes up in parallel with the root being built. */
  if (network && ak_net_start (pid, &ids, &net, err) < 0)
    goto kill;
  /* Joining cgroups is slow on v1 hierarchies: it overlaps the root build.
   * The command starts only after EXEC, so it always runs inside them. */
  if (ak_cgroup_attach (&cg, pid, err) < 0)
    goto kill;
  /* So is compiling the seccomp filter. */
  if (ak_test_disabled ("seccomp"))
    ak_warn ("the seccomp filter is DISABLED by AK_TEST_DISABLE: this sandbox is weaker than its "
             "profile (for testing only)");
  else if ((seccomp_fd = ak_seccomp_compile (spec->sec.profile, err)) < 0)
    goto kill;
  if (wait_ready (sv[0], err) < 0)
    goto kill;
  if (network)
    {
      if (ak_net_wait_ready (&net, err) < 0)
        goto kill;
    }
  if (ak_sync_send (sv[0], AK_SYNC_EXEC, 0, NULL, &seccomp_fd, seccomp_fd >= 0 ? 1 : 0) < 0)
    {
      ak_error_set (err, errno, "start command");
      goto kill;
    }
  if (serve)
    {
      /* The agent serves once it reports STARTED. */
      int type = 0, value;
      char text[1024];
      if (ak_sync_recv (sv[0], &type, &value, text, sizeof text, NULL, NULL) != 1 || type != AK_SYNC_STARTED)
        {
          if (type == AK_SYNC_ERROR)
            ak_error_set (err, 0, "%s", text);
          else
            ak_error_set (err, 0, "sandbox agent exited during setup");
          goto kill;
        }
      if (l->ready_fd >= 0)
        {
          (void) !write (l->ready_fd, "", 1);
          close (l->ready_fd);
        }
    }
  ret = supervise (pid, pidfd, sv[0], sigfd, status, err);
  pid = -1;
  goto out_mask;

kill:
  ak_pidfd_send_signal (pidfd, SIGKILL);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  pid = -1;
out_mask:
  ak_net_stop (&net);
  if (sv[0] >= 0)
    close (sv[0]);
  sigprocmask (SIG_SETMASK, &origmask, NULL);
out:
  ak_sources_close (&src);
  ak_cgroup_destroy (&cg);
  return ret;
}

static int
container_run (const ak_spec_t *spec, const ak_stdio_t *stdio, int *status, ak_error_t **err)
{
  launch_t l = { .spec = spec, .stdio = stdio, .listen_fd = -1, .ready_fd = -1 };
  return launch (&l, status, err);
}

int
ak_container_serve (const ak_spec_t *spec, int listen_fd, const char *persist, int ready_fd,
                    ak_error_t **err)
{
  launch_t l = { .spec = spec, .listen_fd = listen_fd, .persist = persist, .ready_fd = ready_fd };
  int status = 0;
  return launch (&l, &status, err) < 0 ? -1 : status;
}

const ak_backend_t ak_container_backend = {
  .name = "container",
  .check = container_check,
  .run = container_run,
  .start = ak_container_start,
  .connect = ak_container_connect,
  .stop = ak_container_stop,
};
