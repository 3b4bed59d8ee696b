/* Networking: every sandbox has its own network namespace.
 *
 * network = false: only loopback, brought up here; nothing outside is
 * reachable, DNS included.  network = true: the egress policy (egress.c,
 * egress_ns.c) when nftables is installed: no NAT at all, every TCP
 * connection and DNS query goes through a process of ours that applies
 * [security.domains] and keeps the host's own addresses and the cloud
 * metadata address out of reach.  Without nftables, and only when no host
 * rule is in force, a user-mode NAT helper gives the namespace outbound
 * connectivity, with a warning that the host's addresses are then
 * reachable: slirp4netns (preferred: it is ready in a
 * few milliseconds) or pasta from Debian's passt.  Either is started so that
 * the host's loopback services stay out of reach (slirp4netns
 * --disable-host-loopback; pasta without gateway mapping or port forwards),
 * and slirp4netns confines itself (--enable-sandbox --enable-seccomp).
 * AK_NET_HELPER=policy|slirp4netns|pasta picks one explicitly.
 *
 * A helper never touches the host's mounts.  slirp4netns's sandbox makes
 * only "/" private (not recursively) before it pivots and detaches the old
 * root: started in the host's mount namespace where "/" is shared (systemd's
 * default), the detach propagates and unmounts /dev/pts, /dev/shm, the
 * cgroup hierarchies, ... on the host.  So a root caller's helper first gets
 * a mount namespace of its own whose every mount is private (see
 * private_mounts()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
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
find_exe (const char *name)
{
  static char buf[64];
  static const char *const dirs[] = { "/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin" };
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      snprintf (buf, sizeof buf, "%s/%s", dirs[i], name);
      if (access (buf, X_OK) == 0)
        return buf;
    }
  return NULL;
}

ak_net_helper_t
ak_net_helper (const char **path)
{
  const char *want = getenv ("AK_NET_HELPER");
  const char *p = NULL;
  ak_net_helper_t h = AK_NET_NONE;

  if (want == NULL || strcmp (want, "policy") == 0)
    {
      p = ak_egress_nft ();
      if (p != NULL)
        h = AK_NET_POLICY;
    }
  if (h == AK_NET_NONE && (want == NULL || strcmp (want, "slirp4netns") == 0))
    {
      p = find_exe ("slirp4netns");
      if (p != NULL)
        h = AK_NET_SLIRP4NETNS;
    }
  if (h == AK_NET_NONE && (want == NULL || strcmp (want, "pasta") == 0))
    {
      p = find_exe ("pasta");
      if (p != NULL)
        h = AK_NET_PASTA;
    }
  if (path != NULL)
    *path = p;
  return h;
}

int
ak_net_check (const ak_spec_t *spec, ak_error_t **err)
{
  ak_net_helper_t kind;

  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return 0;
  kind = ak_net_helper (NULL);
  /* Never run a policy unenforced. */
  if (ak_netpolicy_has_rules (&spec->sec.domains) && kind != AK_NET_POLICY)
    return ak_error_set (err, 0,
                         "host rules ([security.domains], --allow-host, --block-host) are "
                         "enforced by agentkernel's egress policy, which needs nftables: apt-get "
                         "install nftables%s",
                         getenv ("AK_NET_HELPER") != NULL ? " (and AK_NET_HELPER unset)" : "");
  if (kind == AK_NET_POLICY)
    return 0;
  if (kind == AK_NET_NONE)
    return ak_error_set (err, 0,
                         "network = true needs a user-mode network helper and none is installed: "
                         "apt-get install slirp4netns (or passt); or run with --no-network");
  /* Both helpers open a TAP device from inside the sandbox's namespaces,
   * with the caller's own permissions. */
  if (access ("/dev/net/tun", R_OK | W_OK) < 0)
    return ak_error_set (err, errno,
                         "network = true needs read-write access to /dev/net/tun for user-mode "
                         "networking (Debian's default is mode 0666: chmod 0666 /dev/net/tun); or "
                         "run with --no-network");
  ak_warn ("the sandbox's network is plain NAT (%s): it reaches the host's own addresses and the "
           "cloud metadata address; %s",
           kind == AK_NET_PASTA ? "pasta" : "slirp4netns",
           getenv ("AK_NET_HELPER") != NULL ? "unset AK_NET_HELPER for the egress policy"
                                            : "apt-get install nftables for the egress policy");
  return 0;
}

/* Gives a root caller's helper a mount namespace in which nothing
 * propagates back to the host, whatever it mounts or unmounts: run by root,
 * slirp4netns stays in the host's user namespace, and so would the mount
 * namespace its sandbox creates.
 *
 * An unprivileged caller's helper is left where it is, for it needs
 * nothing and could not do otherwise.  It holds no capability in the
 * initial user namespace, which owns the host's mount namespace, so it can
 * neither unmount there nor create a mount namespace beside it; a mount
 * namespace it creates lies in a user namespace it joined (slirp4netns, not
 * run by root, joins the sandbox's; so does pasta), and the kernel turns
 * every shared mount copied into such a namespace into a slave
 * (CL_SHARED_TO_SLAVE): propagation flows in, never out.  A user namespace
 * of its own, to unshare in, would keep it out of the sandbox's. */
static int
private_mounts (const ak_ids_t *ids)
{
  if (!ids->caller_root)
    return 0;
  if (unshare (CLONE_NEWNS) < 0)
    return -1;
  return mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

static _Noreturn void
exec_helper (ak_net_helper_t kind, const char *exe, pid_t pid, int ready_w, int exit_r,
             const ak_ids_t *ids)
{
  bool caller_root = ids->caller_root;
  char netns[64], userns[64], ready[32], exitfd[32], nspath[96], runas[48];
  const char *argv[32];
  int n = 0, null, ufd, nfd;

  snprintf (userns, sizeof userns, "/proc/%d/ns/user", (int) pid);
  snprintf (netns, sizeof netns, "/proc/%d/ns/net", (int) pid);
  /* Opened here, with our privileges, and handed over by descriptor: both
   * helpers shed their capabilities before they would open the paths. */
  ufd = open (userns, O_RDONLY);
  nfd = open (netns, O_RDONLY);
  if (ufd < 0 || nfd < 0)
    _exit (126);
  /* Fails closed: the ready pipe closes without a byte and the run stops. */
  if (private_mounts (ids) < 0)
    _exit (126);
  snprintf (userns, sizeof userns, "/proc/self/fd/%d", ufd);
  snprintf (netns, sizeof netns, "/proc/self/fd/%d", nfd);
  null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    {
      dup2 (null, 0);
      dup2 (null, 1);
      if (getenv ("AK_DEBUG_NET") == NULL)
        dup2 (null, 2);
    }
  if (kind == AK_NET_PASTA)
    prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (kind == AK_NET_SLIRP4NETNS)
    {
      snprintf (ready, sizeof ready, "--ready-fd=%d", ready_w);
      snprintf (exitfd, sizeof exitfd, "--exit-fd=%d", exit_r);
      snprintf (nspath, sizeof nspath, "--userns-path=%s", userns);
      argv[n++] = "slirp4netns";
      argv[n++] = "--configure";
      argv[n++] = "--mtu=65520";
      argv[n++] = "--disable-host-loopback";
      /* Its own mount-namespace sandbox needs uid 0 mapped in the sandbox's
       * user namespace, which only a root caller's helper can do without it
       * (and there, inside the private namespace above); a user's helper
       * runs with that user's own rights anyway. */
      if (caller_root)
        argv[n++] = "--enable-sandbox";
      argv[n++] = "--enable-seccomp";
      argv[n++] = ready;
      argv[n++] = exitfd;
      argv[n++] = nspath;
      argv[n++] = "--netns-type=path";
      argv[n++] = netns;
      argv[n++] = "eth0";
    }
  else
    {
      /* In the foreground, as our child (it dies with us), reporting
       * readiness by writing its pid into our pipe. */
      snprintf (ready, sizeof ready, "/proc/self/fd/%d", ready_w);
      argv[n++] = "pasta";
      argv[n++] = "--config-net";
      argv[n++] = "--quiet";
      argv[n++] = "--foreground";
      argv[n++] = "--pid";
      argv[n++] = ready;
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
      if (caller_root)
        {
          /* pasta's default for root, "nobody", could not use the
           * descriptors; it drops its capabilities either way. */
          snprintf (runas, sizeof runas, "0:0");
          argv[n++] = "--runas";
          argv[n++] = runas;
        }
      argv[n++] = "--userns";
      argv[n++] = userns;
      argv[n++] = "--netns";
      argv[n++] = netns;
    }
  argv[n] = NULL;
  execv (exe, (char *const *) argv);
  _exit (127);
}

static int
net_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net, ak_error_t **err)
{
  const char *exe = NULL;
  int ready[2] = { -1, -1 }, ex[2] = { -1, -1 };

  net->kind = ak_net_helper (&exe);
  if (net->kind == AK_NET_POLICY)
    return ak_egress_start (pid, ids, spec, net, err);
  if (net->kind == AK_NET_NONE)
    return ak_error_set (err, 0, "no network helper: apt-get install slirp4netns");
  if (pipe2 (ready, O_CLOEXEC) < 0 || pipe2 (ex, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  net->pid = fork ();
  if (net->pid < 0)
    return ak_error_set (err, errno, "fork network helper");
  if (net->pid == 0)
    {
      if (net->kind == AK_NET_SLIRP4NETNS)
        {
          /* Detach slirp4netns (its exit takes tens of milliseconds nobody
           * should wait for): an intermediate process exits at once and
           * init reaps the helper.  It still ends with us: exit_fd closes
           * when we exit, however we exit. */
          pid_t p = fork ();
          if (p != 0)
            _exit (p < 0 ? 1 : 0);
        }
      /* The helper's ends must survive exec. */
      fcntl (ready[1], F_SETFD, 0);
      fcntl (ex[0], F_SETFD, 0);
      exec_helper (net->kind, exe, pid, ready[1], ex[0], ids);
    }
  if (net->kind == AK_NET_SLIRP4NETNS)
    {
      int st;
      while (waitpid (net->pid, &st, 0) < 0 && errno == EINTR)
        ;
      net->pid = -1;
    }
  close (ready[1]);
  close (ex[0]);
  net->ready_fd = ready[0];
  /* Closing this (or our death) tells slirp4netns to exit. */
  net->exit_fd = ex[1];
  return 0;
}

int
ak_net_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net,
              ak_error_t **err)
{
  memset (net, 0, sizeof (*net));
  net->pid = net->fwd_pid = -1;
  net->ready_fd = net->exit_fd = net->fwd_exit_fd = -1;
  /* The published ports first: a host port in use stops the start before
   * anything else is set up. */
  if (ak_portfwd_start (pid, ids, spec, net, err) < 0)
    {
      ak_net_stop (net);
      return -1;
    }
  return net_start (pid, ids, spec, net, err);
}

int
ak_net_wait_ready (ak_net_t *net, ak_error_t **err)
{
  char c[1024];
  ssize_t n;

  /* Both helpers write to the ready pipe once the namespace is configured,
   * and close it without a byte if they fail; the egress policy writes 'R',
   * or what failed. */
  do
    n = read (net->ready_fd, c, net->kind == AK_NET_POLICY ? sizeof c - 1 : 1);
  while (n < 0 && errno == EINTR);
  ak_closep (&net->ready_fd);
  if (n == 1 && (net->kind != AK_NET_POLICY || c[0] == 'R'))
    return 0;
  ak_net_stop (net);
  if (net->kind == AK_NET_POLICY)
    {
      c[n > 0 ? n : 0] = '\0';
      return ak_error_set (err, 0,
                           "the sandbox's egress policy could not be set up: %s; run with "
                           "--no-network",
                           n > 0 ? c : "its process died");
    }
  if (net->kind == AK_NET_SLIRP4NETNS)
    return ak_error_set (err, 0, "slirp4netns failed to set up the sandbox network; run with "
                         "--no-network, or try AK_NET_HELPER=pasta");
  return ak_error_set (err, 0, "pasta failed to set up the sandbox network; run with "
                       "--no-network, or try AK_NET_HELPER=slirp4netns");
}

void
ak_net_stop (ak_net_t *net)
{
  ak_closep (&net->ready_fd);
  ak_closep (&net->exit_fd);
  /* slirp4netns (detached) exits once exit_fd is closed; pasta is our
   * child. */
  if (net->pid > 0)
    {
      kill (net->pid, SIGKILL);
      while (waitpid (net->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  net->pid = -1;
  ak_closep (&net->fwd_exit_fd);
  if (net->fwd_pid > 0)
    {
      kill (net->fwd_pid, SIGKILL);
      while (waitpid (net->fwd_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  net->fwd_pid = -1;
}
