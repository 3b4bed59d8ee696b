/* The sandbox init: PID 1 of the sandbox's PID namespace.
 *
 * It forks the user's command, forwards the signals agentkernel relays,
 * reaps every orphan, and reports the command's wait status.  When it exits
 * the kernel kills whatever is left in the namespace, so a sandbox never
 * outlives its command (nor its supervisor: PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/init.h"
#include "common/child.h"
#include "common/util.h"

static volatile pid_t command_pid;

static void
forward (int sig, siginfo_t *si, void *uc)
{
  (void) uc;
  /* A terminal's signals (SI_KERNEL) already reached the command, which
   * shares the foreground process group; only relayed ones are forwarded. */
  if (si != NULL && si->si_code == SI_KERNEL)
    return;
  if (command_pid > 0)
    kill (command_pid, sig);
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };

static void
exec_command (char **argv, char **env, const sigset_t *origmask)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaction (forwarded[i], &dfl, NULL);
  sigprocmask (SIG_SETMASK, origmask, NULL);
  /* Only the three standard streams cross into the command: a descriptor
   * the caller happened to hold (a secret on fd 7, a host directory) would
   * otherwise reach past every mount and Landlock rule. */
  if (close_range (3, ~0U, 0) < 0)
    _exit (126);
  environ = env;
  execvp (argv[0], argv);
  {
    int e = errno;
    dprintf (STDERR_FILENO, "agentkernel: %s: %s\n", argv[0],
             e == ENOENT ? "command not found" : strerror (e));
    _exit (e == ENOENT ? 127 : 126);
  }
}

int
ak_init_close_fds_except (const int *keep, size_t n)
{
  unsigned next = 3;

  /* Ascending over the kept ones, closing each gap below them. */
  for (;;)
    {
      unsigned lowest = ~0U;
      for (size_t i = 0; i < n; i++)
        if (keep[i] >= (int) next && (unsigned) keep[i] < lowest)
          lowest = (unsigned) keep[i];
      if (lowest == ~0U)
        return close_range (next, ~0U, 0);
      if (lowest > next && close_range (next, lowest - 1, 0) < 0)
        return -1;
      next = lowest + 1;
    }
}

/* Forks the command's process (prepare, when given, brings its command
 * first), forwards signals to it and reaps until it ends. */
static int
run (char **argv, char **env, int (*prepare) (void *data, char ***argv, char ***env),
     const sigset_t *origmask, void (*started) (pid_t, void *), void *data)
{
  struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
  sigset_t all;
  pid_t pid;
  int status = 0;

  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaction (forwarded[i], &sa, NULL);

  pid = fork ();
  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      if (prepare != NULL && prepare (data, &argv, &env) < 0)
        _exit (125);
      exec_command (argv, env, origmask);
    }
  command_pid = pid;
  if (started != NULL)
    started (pid, data);

  sigfillset (&all);
  sigprocmask (SIG_UNBLOCK, &all, NULL);
  for (;;)
    {
      int st;
      pid_t w = ak_wait_child (-1, &st, 0);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (w == pid)
        {
          status = st;
          break;
        }
    }
  return status;
}

int
ak_init_run (char **argv, char **env, const sigset_t *origmask, void (*started) (pid_t, void *),
             void *data)
{
  return run (argv, env, NULL, origmask, started, data);
}

int
ak_init_run_armed (int (*prepare) (void *data, char ***argv, char ***env), const sigset_t *origmask,
                   void (*forked) (pid_t, void *), void *data)
{
  return run (NULL, NULL, prepare, origmask, forked, data);
}
