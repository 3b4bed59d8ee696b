/* The agent's accept loop and the reaping duties of PID 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/session.h"
#include "common/cleanup.h"
#include "common/util.h"

/* Grace period after SIGTERM before everything in the sandbox is killed. */
#define STOP_GRACE_MS 3000

int
ak_agent_serve (int listen_fd, const ak_agent_conf_t *conf)
{
  sigset_t mask;
  _cleanup_close_ int sigfd = -1;
  long long stop_deadline = -1;

  /* PID 1 receives signals from outside only when it handles them, or
   * when they are blocked and read from a signalfd. */
  ak_block_owner_signals (&mask);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0)
    return 1;

  for (;;)
    {
      struct pollfd p[2] = { { .fd = sigfd, .events = POLLIN }, { .fd = listen_fd, .events = POLLIN } };
      int timeout = -1;
      if (stop_deadline >= 0)
        {
          struct timespec ts;
          long long now;
          clock_gettime (CLOCK_MONOTONIC, &ts);
          now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
          timeout = stop_deadline > now ? (int) (stop_deadline - now) : 0;
        }
      if (poll (p, stop_deadline >= 0 ? 1 : 2, timeout) < 0)
        {
          if (errno == EINTR)
            continue;
          return 1;
        }
      if (stop_deadline >= 0 && timeout == 0 && !(p[0].revents & POLLIN))
        return 0; /* leaving kills whatever is left (PID 1 exit) */
      if (p[0].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          if (read (sigfd, &si, sizeof si) != sizeof si)
            continue;
          if (si.ssi_signo == SIGCHLD)
            {
              while (waitpid (-1, NULL, WNOHANG) > 0)
                ;
              /* Stopping and nothing left: done. */
              if (stop_deadline >= 0 && waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD)
                return 0;
            }
          else if (stop_deadline < 0)
            {
              struct timespec ts;
              clock_gettime (CLOCK_MONOTONIC, &ts);
              stop_deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + STOP_GRACE_MS;
              close (listen_fd);
              kill (-1, SIGTERM);
              if (waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD)
                return 0;
            }
          else
            return 0;
        }
      if (stop_deadline < 0 && (p[1].revents & POLLIN))
        {
          int conn = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
          pid_t pid;
          if (conn < 0)
            continue;
          pid = fork ();
          if (pid == 0)
            {
              sigprocmask (SIG_UNBLOCK, &mask, NULL);
              close (sigfd);
              close (listen_fd);
              _exit (ak_session_serve (conn, conf));
            }
          close (conn);
        }
    }
}
