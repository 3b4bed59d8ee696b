/* Published ports (-p/--publish, [network] ports): a host port forwarded
 * to a port of the sandbox, and nothing else.
 *
 * The supervisor binds every published port on the host itself, as the
 * caller, before anything else of the network starts: a port in use is
 * one clear error and the sandbox does not start.  A forwarder process
 * then joins the sandbox's network namespace (through its user namespace
 * for an unprivileged caller, who owns it; a root caller's stays in the
 * host's and becomes nobody), sheds every capability, and for each
 * connection or datagram on a host socket opens a socket of its own there,
 * to the published port on the sandbox's loopback (127.0.0.1, then ::1),
 * and splices the two.  The sandbox gets no route, address or port of the
 * host: it sees connections from its own loopback, to the one port.  It
 * works the same with the egress policy and with slirp4netns or pasta, as
 * root and unprivileged, and ends with the supervisor. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "backend/container/init.h"
#include "common/cleanup.h"
#include "common/util.h"

#define MAX_PORTS 64
#define MAX_FLOWS 256
#define FLOW_IDLE_S 120
#define NOBODY 65534

typedef struct pub {
  int fd; /* bound on the host */
  ak_port_t p;
} pub_t;

static pub_t pubs[MAX_PORTS];
static size_t n_pubs;

/* A socket in the sandbox's namespace, connected to its port. */
static int
inner_socket (unsigned port, int type)
{
  struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons ((uint16_t) port),
                             .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  int fd = socket (AF_INET, type | SOCK_CLOEXEC, 0);

  if (fd >= 0 && connect (fd, (struct sockaddr *) &s4, sizeof s4) == 0)
    return fd;
  if (fd >= 0)
    close (fd);
  fd = socket (AF_INET6, type | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &s6, sizeof s6) == 0)
    return fd;
  if (fd >= 0)
    close (fd);
  return -1;
}

static void
copy (int from, int to)
{
  char buf[65536];
  for (;;)
    {
      ssize_t r = read (from, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0 || ak_send_all (to, buf, (size_t) r) < 0)
        {
          if (r == 0)
            shutdown (to, SHUT_WR);
          else
            shutdown (from, SHUT_RDWR), shutdown (to, SHUT_RDWR);
          return;
        }
    }
}

typedef struct tcp_conn {
  int outer, inner;
  unsigned port;
} tcp_conn_t;

static void *
back_thread (void *arg)
{
  tcp_conn_t *c = arg;
  copy (c->inner, c->outer);
  return NULL;
}

/* Connections being forwarded: each holds two threads, so a host client
 * opening connections that the sandbox never answers is bounded. */
#define MAX_TCP_CONNS 512
static atomic_int n_tcp;

static void *
tcp_thread (void *arg)
{
  tcp_conn_t *c = arg;
  pthread_t t;

  c->inner = inner_socket (c->port, SOCK_STREAM);
  if (c->inner < 0)
    {
      /* Nothing listens there (yet): the client is refused at once. */
      struct linger l = { .l_onoff = 1, .l_linger = 0 };
      setsockopt (c->outer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      close (c->outer);
      free (c);
      atomic_fetch_sub (&n_tcp, 1);
      return NULL;
    }
  if (pthread_create (&t, NULL, back_thread, c) == 0)
    {
      copy (c->outer, c->inner);
      pthread_join (t, NULL);
    }
  close (c->inner);
  close (c->outer);
  free (c);
  atomic_fetch_sub (&n_tcp, 1);
  return NULL;
}

/* UDP: one socket inside per client address, forgotten when idle. */
typedef struct flow {
  int inner;
  size_t pub;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  time_t last;
} flow_t;

static flow_t flows[MAX_FLOWS];
static size_t n_flows;

static void
flow_drop (size_t i)
{
  close (flows[i].inner);
  flows[i] = flows[--n_flows];
}

static void
udp_in (size_t pi)
{
  char buf[65536];
  struct sockaddr_storage peer;
  socklen_t pl = sizeof peer;
  ssize_t n = recvfrom (pubs[pi].fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *) &peer, &pl);
  size_t i;

  if (n < 0)
    return;
  for (i = 0; i < n_flows; i++)
    if (flows[i].pub == pi && flows[i].peer_len == pl && memcmp (&flows[i].peer, &peer, pl) == 0)
      break;
  if (i == n_flows)
    {
      int fd = inner_socket (pubs[pi].p.port, SOCK_DGRAM);
      if (fd < 0)
        return;
      if (n_flows == MAX_FLOWS)
        {
          size_t oldest = 0;
          for (size_t k = 1; k < n_flows; k++)
            if (flows[k].last < flows[oldest].last)
              oldest = k;
          flow_drop (oldest);
        }
      i = n_flows++;
      flows[i] = (flow_t){ .inner = fd, .pub = pi, .peer_len = pl };
      memcpy (&flows[i].peer, &peer, pl);
    }
  flows[i].last = time (NULL);
  (void) send (flows[i].inner, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void
udp_back (size_t i)
{
  char buf[65536];
  ssize_t n = recv (flows[i].inner, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0)
    return;
  flows[i].last = time (NULL);
  (void) sendto (pubs[flows[i].pub].fd, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL,
                 (struct sockaddr *) &flows[i].peer, flows[i].peer_len);
}

static _Noreturn void
serve (int stop_fd)
{
  pthread_attr_t attr;

  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, 256 * 1024);
  for (;;)
    {
      struct pollfd p[1 + MAX_PORTS + MAX_FLOWS];
      size_t n = 0, nf = n_flows;
      time_t now = time (NULL);

      for (size_t i = 0; i < n_flows;)
        if (now - flows[i].last > FLOW_IDLE_S)
          flow_drop (i);
        else
          i++;
      nf = n_flows;
      p[n++] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
      for (size_t i = 0; i < n_pubs; i++)
        p[n++] = (struct pollfd){ .fd = pubs[i].fd, .events = POLLIN };
      for (size_t i = 0; i < nf; i++)
        p[n++] = (struct pollfd){ .fd = flows[i].inner, .events = POLLIN };
      if (poll (p, n, 10000) < 0)
        continue;
      if (p[0].revents != 0)
        _exit (0);
      for (size_t i = 0; i < nf; i++)
        if (p[1 + n_pubs + i].revents & POLLIN)
          udp_back (i);
      for (size_t i = 0; i < n_pubs; i++)
        {
          if (!(p[1 + i].revents & POLLIN))
            continue;
          if (pubs[i].p.udp)
            udp_in (i);
          else
            {
              int fd = accept4 (pubs[i].fd, NULL, NULL, SOCK_CLOEXEC);
              tcp_conn_t *c;
              pthread_t t;
              if (fd < 0)
                continue;
              if (atomic_fetch_add (&n_tcp, 1) >= MAX_TCP_CONNS)
                {
                  /* Over the bound: refused at once (a reset). */
                  struct linger l = { .l_onoff = 1, .l_linger = 0 };
                  setsockopt (fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
                  close (fd);
                  atomic_fetch_sub (&n_tcp, 1);
                  continue;
                }
              c = ak_xmalloc (sizeof *c);
              *c = (tcp_conn_t){ .outer = fd, .inner = -1, .port = pubs[i].p.port };
              if (pthread_create (&t, &attr, tcp_thread, c) != 0)
                {
                  close (fd);
                  free (c);
                  atomic_fetch_sub (&n_tcp, 1);
                }
            }
        }
    }
}

/* Into the sandbox's network namespace, without a capability left. */
static int
enter (pid_t pid, const ak_ids_t *ids)
{
  char path[64];
  _cleanup_close_ int ufd = -1, nfd = -1;
  struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct d[2] = { { 0 } };

  snprintf (path, sizeof path, "/proc/%d/ns/user", (int) pid);
  ufd = open (path, O_RDONLY | O_CLOEXEC);
  snprintf (path, sizeof path, "/proc/%d/ns/net", (int) pid);
  nfd = open (path, O_RDONLY | O_CLOEXEC);
  if (ufd < 0 || nfd < 0)
    return -1;
  if (!ids->caller_root && setns (ufd, CLONE_NEWUSER) < 0)
    return -1;
  if (setns (nfd, CLONE_NEWNET) < 0)
    return -1;
  if (ids->caller_root
      && (setgroups (0, NULL) < 0 || setresgid (NOBODY, NOBODY, NOBODY) < 0
          || setresuid (NOBODY, NOBODY, NOBODY) < 0))
    return -1;
  if (syscall (SYS_capset, &h, d) < 0 || prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -1;
  prctl (PR_SET_PDEATHSIG, SIGKILL); /* cleared by the change of ids */
  return 0;
}

static int
bind_port (const ak_port_t *p, ak_error_t **err)
{
  struct sockaddr_storage ss = { 0 };
  socklen_t sl;
  int one = 1, fd;
  _cleanup_free_ char *text = ak_port_text (p);

  fd = socket (p->family, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ak_error_set (err, errno, "publish %s: socket", text);
  if (p->family == AF_INET)
    {
      struct sockaddr_in *s = (struct sockaddr_in *) &ss;
      s->sin_family = AF_INET;
      s->sin_port = htons ((uint16_t) p->host_port);
      memcpy (&s->sin_addr, p->addr, 4);
      sl = sizeof *s;
    }
  else
    {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *) &ss;
      s->sin6_family = AF_INET6;
      s->sin6_port = htons ((uint16_t) p->host_port);
      memcpy (&s->sin6_addr, p->addr, 16);
      sl = sizeof *s;
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
  if (!p->udp)
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, (struct sockaddr *) &ss, sl) < 0 || (!p->udp && listen (fd, 128) < 0))
    {
      int e = errno;
      close (fd);
      if (e == EADDRINUSE)
        return ak_error_set (err, 0, "publish %s: host port %u/%s is already in use on the host", text,
                             p->host_port, p->udp ? "udp" : "tcp");
      if (e == EADDRNOTAVAIL)
        return ak_error_set (err, 0, "publish %s: the host has no such address", text);
      if (e == EACCES)
        return ak_error_set (err, 0, "publish %s: host port %u is privileged (below %s): run as root or "
                             "publish a higher port", text, p->host_port,
                             "net.ipv4.ip_unprivileged_port_start");
      return ak_error_set (err, e, "publish %s: bind", text);
    }
  return fd;
}

int
ak_portfwd_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net, ak_error_t **err)
{
  int ex[2], ready[2];
  pid_t f;
  char c = 0;
  ssize_t r;

  n_pubs = 0;
  for (char **e = spec->ports; e != NULL && *e != NULL; e++)
    {
      ak_port_t p;
      if (n_pubs == MAX_PORTS)
        {
          ak_error_set (err, 0, "at most %d published ports", MAX_PORTS);
          goto fail;
        }
      if (ak_port_parse (*e, &p, err) < 0)
        goto fail;
      pubs[n_pubs].p = p;
      pubs[n_pubs].fd = bind_port (&p, err);
      if (pubs[n_pubs].fd < 0)
        goto fail;
      n_pubs++;
    }
  if (n_pubs == 0)
    return 0;
  if (pipe2 (ex, O_CLOEXEC) < 0)
    {
      ak_error_set (err, errno, "pipe");
      goto fail;
    }
  if (pipe2 (ready, O_CLOEXEC) < 0)
    {
      ak_error_set (err, errno, "pipe");
      close (ex[0]), close (ex[1]);
      goto fail;
    }
  f = fork ();
  if (f < 0)
    {
      ak_error_set (err, errno, "fork the port forwarder");
      close (ex[0]), close (ex[1]), close (ready[0]), close (ready[1]);
      goto fail;
    }
  if (f == 0)
    {
      int keep[MAX_PORTS + 2];
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      signal (SIGPIPE, SIG_IGN);
      keep[0] = ex[0];
      keep[1] = ready[1];
      for (size_t i = 0; i < n_pubs; i++)
        keep[i + 2] = pubs[i].fd;
      if (ak_init_close_fds_except (keep, n_pubs + 2) < 0 || enter (pid, ids) < 0)
        _exit (1);
      if (write (ready[1], "R", 1) != 1)
        _exit (1);
      close (ready[1]);
      serve (ex[0]);
    }
  close (ex[0]);
  close (ready[1]);
  do
    r = read (ready[0], &c, 1);
  while (r < 0 && errno == EINTR);
  close (ready[0]);
  for (size_t i = 0; i < n_pubs; i++)
    close (pubs[i].fd);
  n_pubs = 0;
  net->fwd_pid = f;
  net->fwd_exit_fd = ex[1];
  if (r != 1 || c != 'R')
    return ak_error_set (err, 0, "the published ports could not be set up: the forwarder could not "
                         "enter the sandbox's network namespace");
  return 0;
fail:
  for (size_t i = 0; i < n_pubs; i++)
    close (pubs[i].fd);
  n_pubs = 0;
  return -1;
}
