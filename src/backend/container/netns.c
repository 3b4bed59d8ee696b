/* Networking: every sandbox has its own network namespace.
 *
 * network = false: only loopback, brought up here; nothing outside is
 * reachable, DNS included.  network = true: pasta (Debian's passt) gives the
 * namespace user-mode NAT for outbound traffic.  It is started with every
 * inbound and namespace-to-host forwarding off and without mapping the
 * gateway to the host, so the host's loopback services stay out of reach.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/util.h"

int
ak_net_loopback_up (ak_error_t **err)
{
  struct ifreq ifr = { 0 };
  _cleanup_close_ int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (s < 0)
    return ak_error_set (err, errno, "socket");
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (s, SIOCGIFFLAGS, &ifr) < 0)
    return ak_error_set (err, errno, "get loopback flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (s, SIOCSIFFLAGS, &ifr) < 0)
    return ak_error_set (err, errno, "bring loopback up");
  return 0;
}

static const char *
pasta_path (void)
{
  static const char *const candidates[] = { "/usr/bin/pasta", "/usr/local/bin/pasta", "/bin/pasta" };
  const char *env = getenv ("AK_PASTA");
  if (env != NULL)
    return env;
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (access (candidates[i], X_OK) == 0)
      return candidates[i];
  return NULL;
}

int
ak_net_check (const ak_spec_t *spec, ak_error_t **err)
{
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return 0;
  if (pasta_path () == NULL)
    return ak_error_set (err, 0,
                         "network = true needs pasta for user-mode networking, which is not "
                         "installed: apt-get install passt (or run with --no-network)");
  return 0;
}

pid_t
ak_net_start (pid_t pid, const ak_ids_t *ids, ak_error_t **err)
{
  char netns[64], userns[64];
  const char *pasta = pasta_path ();
  pid_t helper;

  if (pasta == NULL)
    return ak_error_set (err, 0, "pasta not found: apt-get install passt");
  snprintf (netns, sizeof netns, "/proc/%d/ns/net", (int) pid);
  snprintf (userns, sizeof userns, "/proc/%d/ns/user", (int) pid);
  helper = fork ();
  if (helper < 0)
    return ak_error_set (err, errno, "fork network helper");
  if (helper == 0)
    {
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      /* Opened here, with our privileges, and handed over by descriptor:
       * pasta sheds its capabilities before it opens the namespaces. */
      int ufd = open (userns, O_RDONLY), nfd = open (netns, O_RDONLY);
      const char *argv[32];
      if (ufd < 0 || nfd < 0)
        _exit (126);
      snprintf (userns, sizeof userns, "/proc/self/fd/%d", ufd);
      snprintf (netns, sizeof netns, "/proc/self/fd/%d", nfd);
      int n = 0;
      if (null >= 0)
        {
          dup2 (null, 0);
          dup2 (null, 1);
          if (getenv ("AK_DEBUG_PASTA") == NULL)
            dup2 (null, 2);
        }
      argv[n++] = "pasta";
      argv[n++] = "--config-net";
      argv[n++] = "--quiet";
      /* Outbound NAT only: no inbound forwards, no way to the host's loopback. */
      argv[n++] = "-t";
      argv[n++] = "none";
      argv[n++] = "-u";
      argv[n++] = "none";
      argv[n++] = "-T";
      argv[n++] = "none";
      argv[n++] = "-U";
      argv[n++] = "none";
      argv[n++] = "--no-map-gw";
      if (ids->caller_root)
        {
          /* pasta would drop to "nobody", who may not enter the sandbox's
           * namespaces; it drops its own capabilities once inside. */
          argv[n++] = "--runas";
          argv[n++] = "0:0";
        }
      argv[n++] = "--userns";
      argv[n++] = userns;
      argv[n++] = "--netns";
      argv[n++] = netns;
      argv[n] = NULL;
      execv (pasta, (char *const *) argv);
      _exit (127);
    }
  return helper;
}

int
ak_net_wait_ready (pid_t helper, ak_error_t **err)
{
  int status;
  /* pasta forks into the background once the namespace is configured: its
   * first process exiting with 0 means the network is up. */
  while (waitpid (helper, &status, 0) < 0)
    if (errno != EINTR)
      return ak_error_set (err, errno, "wait for pasta");
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
    return ak_error_set (err, 0, "could not run pasta: apt-get install passt");
  return ak_error_set (err, 0, "pasta failed to set up the sandbox network (status %d); run with "
                       "--no-network, or check that pasta works: pasta --config-net true", status);
}
