/* The microVM's network, host side.
 *
 * QEMU always runs in a network namespace of its own, created here before
 * it starts (it joins it first, before anything else of its confinement):
 *
 *   network off: the namespace is empty (a loopback that is down) and the
 *     VM has no NIC at all;
 *   network on: the namespace is set up by the container backend's own
 *     network code (netns.c) exactly as a container's is: with nftables,
 *     the egress policy (egress_ns.c, egress.c) redirects every TCP
 *     connection and DNS query leaving it to our policy process, which
 *     applies [security.domains], keeps the host's own addresses and the
 *     cloud metadata address out of reach and writes the egress audit;
 *     without nftables, slirp4netns or pasta give it plain NAT (with the
 *     same warning).  Inside it, QEMU's user-mode network (libslirp,
 *     `-netdev user`) gives the guest a virtio-net NIC on a network of its
 *     own, AK_VM_NET_*: every connection the guest makes is a connection
 *     QEMU makes from the namespace, and so meets the same policy as a
 *     container's command.
 *
 * The guest's network is not 10.0.2.0/24 (slirp's default) so that the
 * guest reaches 10.0.2.3, the namespace's resolver and the policy's proxy
 * (HTTP_PROXY), at the same address as a container does: QEMU passes
 * those connections and datagrams on to the namespace unchanged.  The
 * gateway of the guest's network stands, in slirp, for the loopback of
 * the namespace (never the host's: the namespace has its own).
 *
 * Published ports: QEMU forwards (hostfwd) 127.0.0.1:PORT of the namespace
 * to the guest's PORT, and the container backend's forwarder (portfwd.c)
 * carries the host's published port to 127.0.0.1:PORT of the namespace,
 * as it does for a container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "backend/microvm/microvm.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/netpolicy.h"

void
ak_vm_net_init (ak_vm_net_t *n)
{
  memset (n, 0, sizeof *n);
  n->ns = -1;
  n->holder = -1;
  n->net.pid = n->net.fwd_pid = -1;
  n->net.ready_fd = n->net.exit_fd = n->net.fwd_exit_fd = -1;
}

int
ak_vm_net_check (const ak_spec_t *spec, ak_error_t **err)
{
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return 0;
  if (ak_net_check (spec, err) < 0)
    return ak_error_prefix (err, "the microVM's network"), -1;
  return 0;
}

/* The lowest sandbox port published (65536: none). */
static unsigned
lowest_port (const ak_spec_t *spec)
{
  unsigned low = 65536;
  for (char **e = spec->ports; e != NULL && *e != NULL; e++)
    {
      ak_port_t p;
      if (ak_port_parse (*e, &p, NULL) == 0 && p.port < low)
        low = p.port;
    }
  return low;
}

static void
holder_stop (ak_vm_net_t *n, int *go)
{
  ak_closep (go);
  if (n->holder > 0)
    {
      kill (n->holder, SIGKILL);
      while (waitpid (n->holder, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  n->holder = -1;
}

int
ak_vm_net_start (const ak_spec_t *spec, ak_vm_net_t *n, ak_error_t **err)
{
  int go[2], ready[2];
  char c = 0;
  ssize_t r;
  pid_t parent = getpid ();
  unsigned low = lowest_port (spec);
  _cleanup_close_ int go_w = -1;

  ak_vm_net_init (n);
  n->on = ak_spec_sec (spec, AK_SEC_NETWORK);
  if (pipe2 (go, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  if (pipe2 (ready, O_CLOEXEC) < 0)
    {
      close (go[0]), close (go[1]);
      return ak_error_set (err, errno, "pipe");
    }
  /* A process that creates the namespace and stays in it while its
   * network is set up (the container backend's network code works on the
   * namespace of a process).  The namespace belongs to a user namespace
   * of its own in which root is root (the NAT helpers join a process's
   * user namespace before its network namespace, and cannot join the
   * host's, where they already are); QEMU joins only the network
   * namespace, and nothing else ever enters that user namespace. */
  n->holder = fork ();
  if (n->holder < 0)
    {
      close (go[0]), close (go[1]), close (ready[0]), close (ready[1]);
      return ak_error_set (err, errno, "fork");
    }
  if (n->holder == 0)
    {
      close (go[1]), close (ready[0]);
      if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != parent || unshare (CLONE_NEWUSER) < 0
          || write (ready[1], "U", 1) != 1 || read (go[0], &c, 1) != 1 || unshare (CLONE_NEWNET) < 0)
        _exit (1);
      /* QEMU, unprivileged, binds the published ports' forwards (hostfwd)
       * in the namespace: low ones too. */
      if (low < 1024)
        {
          char v[16];
          int fd = open ("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
          snprintf (v, sizeof v, "%u", low);
          if (fd < 0 || write (fd, v, strlen (v)) != (ssize_t) strlen (v))
            _exit (1);
          close (fd);
        }
      if (write (ready[1], "R", 1) != 1)
        _exit (1);
      /* Until the supervisor closes its end (or dies). */
      while (read (go[0], &c, 1) < 0 && errno == EINTR)
        ;
      _exit (0);
    }
  close (go[0]), close (ready[1]);
  go_w = go[1];
  do
    r = read (ready[0], &c, 1);
  while (r < 0 && errno == EINTR);
  if (r == 1)
    {
      _cleanup_free_ char *um = ak_xasprintf ("/proc/%d/uid_map", (int) n->holder);
      _cleanup_free_ char *gm = ak_xasprintf ("/proc/%d/gid_map", (int) n->holder);
      r = ak_write_string (um, "0 0 1\n", NULL) < 0 || ak_write_string (gm, "0 0 1\n", NULL) < 0
              || write (go_w, "g", 1) != 1
            ? -1
            : 0;
      if (r == 0)
        do
          r = read (ready[0], &c, 1);
        while (r < 0 && errno == EINTR);
    }
  close (ready[0]);
  if (r != 1)
    {
      holder_stop (n, &go_w);
      return ak_error_set (err, 0, "could not create the VM's network namespace");
    }
  {
    _cleanup_free_ char *p = ak_xasprintf ("/proc/%d/ns/net", (int) n->holder);
    n->ns = open (p, O_RDONLY | O_CLOEXEC);
    if (n->ns < 0)
      {
        holder_stop (n, &go_w);
        return ak_error_set (err, errno, "open %s", p);
      }
  }
  if (n->on)
    {
      ak_ids_t ids;
      void (*pipe_was) (int);
      int rc;
      ak_ids_plan (spec, false, &ids);
      /* Its helpers start with SIGPIPE as a container's do: the default
       * (the supervisor ignores it, and Debian 12's pasta takes an
       * ignored SIGPIPE for a failure to set its own handlers). */
      pipe_was = signal (SIGPIPE, SIG_DFL);
      rc = ak_net_start (n->holder, &ids, spec, &n->net, err);
      signal (SIGPIPE, pipe_was);
      if (rc < 0 || ak_net_wait_ready (&n->net, err) < 0)
        {
          holder_stop (n, &go_w);
          ak_vm_net_stop (n);
          return ak_error_prefix (err, "the microVM's network"), -1;
        }
    }
  /* Everything that joins the namespace has: it lives on in QEMU, the
   * policy's sockets and the descriptor. */
  holder_stop (n, &go_w);
  return 0;
}

void
ak_vm_net_stop (ak_vm_net_t *n)
{
  if (n->on)
    ak_net_stop (&n->net);
  n->on = false;
  ak_closep (&n->ns);
}

void
ak_vm_net_reaped (ak_vm_net_t *n, pid_t pid)
{
  if (pid == n->net.pid)
    n->net.pid = -1;
  if (pid == n->net.fwd_pid)
    n->net.fwd_pid = -1;
}

void
ak_vm_net_qemu_args (const ak_spec_t *spec, char ***argv)
{
  char *netdev;
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return;
  netdev = ak_xstrdup ("user,id=net0,net=" AK_VM_NET_NETWORK ",host=" AK_VM_NET_GATEWAY
                       ",dns=" AK_VM_NET_SLIRP_DNS ",ipv6=off");
  /* Each (protocol, port) of the guest once, from the namespace's
   * loopback, where the forwarder connects. */
  for (char **e = spec->ports; e != NULL && *e != NULL; e++)
    {
      ak_port_t p, q;
      bool seen = false;
      char *s;
      if (ak_port_parse (*e, &p, NULL) < 0)
        continue;
      for (char **f = spec->ports; f != e; f++)
        if (ak_port_parse (*f, &q, NULL) == 0 && q.port == p.port && q.udp == p.udp)
          seen = true;
      if (seen)
        continue;
      s = ak_xasprintf ("%s,hostfwd=%s:127.0.0.1:%u-" AK_VM_NET_ADDRESS ":%u", netdev, p.udp ? "udp" : "tcp",
                        p.port, p.port);
      free (netdev);
      netdev = s;
    }
  ak_strv_push (argv, "-netdev");
  ak_strv_push (argv, netdev);
  ak_strv_push (argv, "-device");
  ak_strv_push (argv, "virtio-net-device,netdev=net0");
  free (netdev);
}

json_t *
ak_vm_net_guest_config (const ak_spec_t *spec, const ak_vm_net_t *n)
{
  _cleanup_free_ char *resolv = NULL;
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return json_null ();
  /* The resolver a container would have: the policy's (or slirp4netns's)
   * at 10.0.2.3; with pasta, the host's own. */
  if (n->net.kind == AK_NET_PASTA)
    {
      char buf[4096];
      _cleanup_close_ int fd = open ("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
      ssize_t r = fd < 0 ? -1 : read (fd, buf, sizeof buf - 1);
      buf[r > 0 ? r : 0] = 0;
      resolv = ak_xstrdup (buf);
    }
  else
    resolv = ak_xstrdup ("nameserver " AK_NET_PROXY_ADDR "\n");
  return json_pack ("{s:s}", "resolv", resolv);
}
