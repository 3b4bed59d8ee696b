/* The sandbox's side of the egress policy: a network namespace whose only
 * way out is the policy's process (egress.c).
 *
 * Set up from outside while the init builds the root, by a short-lived
 * process that joins the sandbox's namespaces (user namespace first for an
 * unprivileged caller, whose own it is; a root caller's stays in the
 * host's, as its slirp4netns does):
 *   - loopback up, plus 10.0.2.100 (and fd00:a6b::100) on it and a default
 *     route through it, so that connect() to any address gets as far as
 *     nftables instead of failing with "network unreachable";
 *   - a TCP listener on 127.0.0.1 and [::1], and the resolver's UDP
 *     sockets on port 53, all created in the namespace;
 *   - nftables (the `nft` program): every TCP connection to an address not
 *     the sandbox's own is redirected to the listener, every UDP datagram
 *     to port 53 to the resolver; anything else leaving is rejected.
 * The sockets travel to the policy's process, which serves them from the
 * host's namespaces.  There is no link, route or NAT to the outside at
 * all: if the rules were gone, nothing would leave, not even DNS.  The
 * sandbox cannot change them: it holds no capability (caps.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/container/container.h"
#include "backend/container/egress.h"
#include "backend/container/init.h"
#include "common/cleanup.h"
#include "common/util.h"

#define SELF4 "10.0.2.100"
#define SELF6 "fd00:a6b::100"
#define NAMESERVER4 "10.0.2.3"

/* in6_ifreq and in6_rtmsg (linux/ipv6.h, linux/ipv6_route.h clash with
 * glibc's headers). */
struct ak_in6_ifreq {
  struct in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

struct ak_in6_rtmsg {
  struct in6_addr dst, src, gateway;
  uint32_t type;
  uint16_t dst_len, src_len;
  uint32_t metric;
  unsigned long info;
  uint32_t flags;
  int ifindex;
};

static int
fail_errno (char *msg, size_t len, const char *what)
{
  snprintf (msg, len, "%s: %s", what, strerror (errno));
  return -1;
}

/* 10.0.2.100/32 on lo:ak, a default route through lo. */
static int
routes4 (char *msg, size_t len)
{
  _cleanup_close_ int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { 0 };
  struct rtentry rt = { 0 };
  struct sockaddr_in *sin = (struct sockaddr_in *) &ifr.ifr_addr;
  char dev[] = "lo";

  if (s < 0)
    return fail_errno (msg, len, "socket");
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (s, SIOCGIFFLAGS, &ifr) < 0)
    return fail_errno (msg, len, "loopback flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (s, SIOCSIFFLAGS, &ifr) < 0)
    return fail_errno (msg, len, "bring loopback up");
  memset (&ifr, 0, sizeof ifr);
  strcpy (ifr.ifr_name, "lo:ak");
  sin->sin_family = AF_INET;
  inet_pton (AF_INET, SELF4, &sin->sin_addr);
  if (ioctl (s, SIOCSIFADDR, &ifr) < 0)
    return fail_errno (msg, len, "address " SELF4);
  inet_pton (AF_INET, "255.255.255.255", &sin->sin_addr);
  if (ioctl (s, SIOCSIFNETMASK, &ifr) < 0)
    return fail_errno (msg, len, "netmask of " SELF4);
  ((struct sockaddr_in *) &rt.rt_dst)->sin_family = AF_INET;
  ((struct sockaddr_in *) &rt.rt_genmask)->sin_family = AF_INET;
  rt.rt_flags = RTF_UP;
  rt.rt_dev = dev;
  if (ioctl (s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
    return fail_errno (msg, len, "default route");
  return 0;
}

/* The same for IPv6, when the kernel has it: without it, IPv6 connects
 * fail as unreachable, which leaks nothing. */
static bool
routes6 (void)
{
  _cleanup_close_ int s = socket (AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ak_in6_ifreq ifr = { 0 };
  struct ak_in6_rtmsg rt = { 0 };
  int idx = (int) if_nametoindex ("lo");

  if (s < 0 || idx == 0)
    return false;
  inet_pton (AF_INET6, SELF6, &ifr.addr);
  ifr.prefixlen = 128;
  ifr.ifindex = idx;
  if (ioctl (s, SIOCSIFADDR, &ifr) < 0 && errno != EEXIST)
    return false;
  rt.flags = RTF_UP;
  rt.metric = 1;
  rt.ifindex = idx;
  inet_pton (AF_INET6, SELF6, &rt.src);
  return ioctl (s, SIOCADDRT, &rt) == 0 || errno == EEXIST;
}

static int
listener (int family, int type, unsigned port)
{
  struct sockaddr_storage ss = { 0 };
  socklen_t sl;
  int one = 1;
  int fd = socket (family, type | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  if (family == AF_INET)
    {
      struct sockaddr_in *s = (struct sockaddr_in *) &ss;
      s->sin_family = AF_INET;
      s->sin_port = htons ((uint16_t) port);
      s->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
      sl = sizeof *s;
    }
  else
    {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *) &ss;
      s->sin6_family = AF_INET6;
      s->sin6_port = htons ((uint16_t) port);
      s->sin6_addr = in6addr_loopback;
      sl = sizeof *s;
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
  if (bind (fd, (struct sockaddr *) &ss, sl) < 0 || (type == SOCK_STREAM && listen (fd, 512) < 0))
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  return fd;
}

static unsigned
port_of (int fd)
{
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname (fd, (struct sockaddr *) &ss, &sl) < 0)
    return 0;
  return ntohs (ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                        : ((struct sockaddr_in6 *) &ss)->sin6_port);
}

const char *
ak_egress_nft (void)
{
  static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", NULL };
  for (size_t i = 0; paths[i] != NULL; i++)
    if (access (paths[i], X_OK) == 0)
      return paths[i];
  return NULL;
}

/* Runs nft on the ruleset, keeping CAP_NET_ADMIN across exec for a user
 * who is not uid 0 in the namespace. */
static int
run_nft (const char *rules, bool ambient, char *msg, size_t len)
{
  int in[2], out[2], st;
  pid_t p;
  ssize_t n;
  size_t got = 0;

  if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0)
    return fail_errno (msg, len, "pipe");
  p = fork ();
  if (p < 0)
    return fail_errno (msg, len, "fork nft");
  if (p == 0)
    {
      dup2 (in[0], 0);
      dup2 (out[1], 1);
      dup2 (out[1], 2);
      if (ambient)
        {
          struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
          struct __user_cap_data_struct d[2];
          if (syscall (SYS_capget, &h, d) < 0)
            _exit (126);
          d[CAP_NET_ADMIN / 32].inheritable |= 1u << (CAP_NET_ADMIN % 32);
          if (syscall (SYS_capset, &h, d) < 0
              || prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0)
            _exit (126);
        }
      execl (ak_egress_nft (), "nft", "-f", "-", (char *) NULL);
      _exit (127);
    }
  close (in[0]);
  close (out[1]);
  if (write (in[1], rules, strlen (rules)) != (ssize_t) strlen (rules))
    (void) 0;
  close (in[1]);
  while (got + 1 < len && (n = read (out[0], msg + got, len - got - 1)) > 0)
    got += (size_t) n;
  msg[got] = '\0';
  close (out[0]);
  while (waitpid (p, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED (st) && WEXITSTATUS (st) == 0)
    return 0;
  if (got == 0)
    snprintf (msg, len, "nft exited with status %d", WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
  return -1;
}

/* The joiner: configures the namespace of pid, sends the four sockets (and
 * a mask of which exist) over chan, or the reason it could not. */
static _Noreturn void
joiner (pid_t pid, const ak_ids_t *ids, int chan)
{
  char path[64], msg[1024] = "", rules[2048], mask[8] = "";
  int fds[4] = { -1, -1, -1, -1 }, send[4];
  size_t n = 0;
  int ufd, nfd;
  bool v6;

  snprintf (path, sizeof path, "/proc/%d/ns/user", (int) pid);
  ufd = open (path, O_RDONLY | O_CLOEXEC);
  snprintf (path, sizeof path, "/proc/%d/ns/net", (int) pid);
  nfd = open (path, O_RDONLY | O_CLOEXEC);
  if (ufd < 0 || nfd < 0)
    fail_errno (msg, sizeof msg, "open the sandbox's namespaces");
  else if (!ids->caller_root && setns (ufd, CLONE_NEWUSER) < 0)
    fail_errno (msg, sizeof msg, "join the sandbox's user namespace");
  else if (setns (nfd, CLONE_NEWNET) < 0)
    fail_errno (msg, sizeof msg, "join the sandbox's network namespace");
  if (msg[0] != '\0' || routes4 (msg, sizeof msg) < 0)
    goto out;
  v6 = routes6 ();
  fds[0] = listener (AF_INET, SOCK_STREAM, 0);
  fds[2] = listener (AF_INET, SOCK_DGRAM, 53);
  if (fds[0] < 0 || fds[2] < 0)
    {
      fail_errno (msg, sizeof msg, "the policy's listeners in the sandbox");
      goto out;
    }
  if (v6)
    {
      fds[1] = listener (AF_INET6, SOCK_STREAM, 0);
      fds[3] = listener (AF_INET6, SOCK_DGRAM, 53);
    }
  snprintf (rules, sizeof rules,
            "table inet agentkernel {\n"
            "  chain to_policy {\n"
            "    type nat hook output priority -100; policy accept;\n"
            "    ip daddr { 127.0.0.0/8, " SELF4 " } return\n"
            "    ip6 daddr { ::1, " SELF6 " } return\n"
            "    meta nfproto ipv4 meta l4proto tcp redirect to :%u\n"
            "%s"
            "    udp dport 53 redirect to :53\n"
            "  }\n"
            "  chain leaving {\n"
            "    type filter hook output priority 0; policy accept;\n"
            "    ip daddr { 127.0.0.0/8, " SELF4 " } accept\n"
            "    ip6 daddr { ::1, " SELF6 " } accept\n"
            "    meta l4proto tcp reject with tcp reset\n"
            "    reject\n"
            "  }\n"
            "}\n",
            port_of (fds[0]),
            fds[1] >= 0 ? (snprintf (path, sizeof path, "    meta nfproto ipv6 meta l4proto tcp redirect to :%u\n",
                                     port_of (fds[1])),
                           path)
                        : "");
  if (run_nft (rules, !ids->caller_root, msg, sizeof msg) < 0)
    goto out;
  for (int i = 0; i < 4; i++)
    {
      mask[i] = fds[i] >= 0 ? '1' : '0';
      if (fds[i] >= 0)
        send[n++] = fds[i];
    }
  mask[4] = '\0';
  ak_sync_send (chan, AK_SYNC_READY, 0, mask, send, n);
  _exit (0);
out:
  ak_sync_send (chan, AK_SYNC_ERROR, 0, msg, NULL, 0);
  _exit (1);
}

/* ---- privilege separation of a root caller's policy ----
 *
 * The policy parses what the sandbox sends (TLS, HTTP, DNS).  Run by root,
 * it gives that up before serving: it becomes nobody (no capability, no
 * way back), and its audit entries go, as JSON over a socket, to a writer
 * that stays root only to append them to root's audit log and does
 * nothing else. */

#define AUDIT_MSG_MAX 16384
#define NOBODY 65534

static int audit_sock = -1;

static void
forward_audit (const char *event, const char *sandbox, json_t *fields)
{
  json_t *m = json_pack ("{s:s, s:s?, s:o}", "event", event, "sandbox", sandbox, "fields", fields);
  char *text = m != NULL ? json_dumps (m, JSON_COMPACT) : NULL;
  if (text != NULL && strlen (text) < AUDIT_MSG_MAX)
    (void) send (audit_sock, text, strlen (text), MSG_NOSIGNAL);
  free (text);
  json_decref (m);
}

static _Noreturn void
audit_writer (int sock, ak_backend_audit_fn hook)
{
  static char buf[AUDIT_MSG_MAX + 1];
  for (;;)
    {
      ssize_t n = recv (sock, buf, AUDIT_MSG_MAX, 0);
      json_t *m, *fields;
      const char *event, *sandbox;
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        _exit (0);
      buf[n] = '\0';
      m = json_loads (buf, JSON_REJECT_DUPLICATES, NULL);
      event = json_string_value (json_object_get (m, "event"));
      sandbox = json_string_value (json_object_get (m, "sandbox"));
      fields = json_object_get (m, "fields");
      /* Only the policy's own events, whatever a subverted policy sends. */
      if (event != NULL && (strcmp (event, "network_connect") == 0 || strcmp (event, "dns_query") == 0)
          && json_is_object (fields) && hook != NULL)
        hook (event, sandbox, json_incref (fields));
      json_decref (m);
    }
}

static int
drop_root (char *msg, size_t len)
{
  int sv[2];
  pid_t w;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return fail_errno (msg, len, "audit socket");
  w = fork ();
  if (w < 0)
    return fail_errno (msg, len, "fork the audit writer");
  if (w == 0)
    {
      int keep[] = { sv[1] };
      ak_init_close_fds_except (keep, 1);
      audit_writer (sv[1], ak_backend_audit_hook);
    }
  close (sv[1]);
  audit_sock = sv[0];
  ak_backend_audit_hook = forward_audit;
  if (setgroups (0, NULL) < 0 || setresgid (NOBODY, NOBODY, NOBODY) < 0
      || setresuid (NOBODY, NOBODY, NOBODY) < 0)
    return fail_errno (msg, len, "become nobody");
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return fail_errno (msg, len, "no_new_privs");
  prctl (PR_SET_PDEATHSIG, SIGKILL); /* cleared by the change of ids */
  return 0;
}

/* The policy's process: has the joiner set the namespace up, says so on
 * ready_w (one byte 'R', or the error's text), then serves. */
static _Noreturn void
egress_main (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, int ready_w, int exit_r)
{
  int sv[2], type = 0, value, fds[4], got[4] = { -1, -1, -1, -1 }, null;
  char text[1024] = "";
  size_t n = 4, j = 0;
  pid_t jp;
  ak_egress_conf_t c = { .pol = &spec->sec.domains, .sandbox = spec->name, .stop_fd = exit_r };

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  signal (SIGPIPE, SIG_IGN);
  {
    int keep[] = { ready_w, exit_r };
    if (ak_init_close_fds_except (keep, 2) < 0)
      _exit (1);
  }
  null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    {
      dup2 (null, 0), dup2 (null, 1);
      if (getenv ("AK_DEBUG_NET") == NULL)
        dup2 (null, 2);
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    _exit (1);
  jp = fork ();
  if (jp < 0)
    _exit (1);
  if (jp == 0)
    {
      close (sv[0]);
      joiner (pid, ids, sv[1]);
    }
  close (sv[1]);
  if (ak_sync_recv (sv[0], &type, &value, text, sizeof text, fds, &n) != 1)
    {
      type = AK_SYNC_ERROR;
      snprintf (text, sizeof text, "the network set-up process died");
    }
  while (waitpid (jp, NULL, 0) < 0 && errno == EINTR)
    ;
  if (type != AK_SYNC_READY)
    {
      (void) !write (ready_w, text, strlen (text));
      _exit (1);
    }
  for (int i = 0; i < 4; i++)
    got[i] = text[i] == '1' && j < n ? fds[j++] : -1;
  c.tcp[0] = got[0], c.tcp[1] = got[1], c.dns[0] = got[2], c.dns[1] = got[3];
  inet_pton (AF_INET, NAMESERVER4, &c.nameserver);
  if (ids->caller_root && drop_root (text, sizeof text) < 0)
    {
      (void) !write (ready_w, text, strlen (text));
      _exit (1);
    }
  if (write (ready_w, "R", 1) != 1)
    _exit (1);
  close (ready_w);
  ak_egress_serve (&c);
}

int
ak_egress_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net,
                 ak_error_t **err)
{
  int ready[2], ex[2];

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  if (pipe2 (ex, O_CLOEXEC) < 0)
    {
      close (ready[0]), close (ready[1]);
      return ak_error_set (err, errno, "pipe");
    }
  net->pid = fork ();
  if (net->pid < 0)
    {
      close (ready[0]), close (ready[1]), close (ex[0]), close (ex[1]);
      return ak_error_set (err, errno, "fork the network policy");
    }
  if (net->pid == 0)
    egress_main (pid, ids, spec, ready[1], ex[0]);
  close (ready[1]);
  close (ex[0]);
  net->ready_fd = ready[0];
  net->exit_fd = ex[1];
  return 0;
}
