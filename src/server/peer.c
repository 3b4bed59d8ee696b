/* Which local user is at the other end of a connection (see peer.h). */
#define _GNU_SOURCE
#include "server/peer.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"

/* The client's own socket is the one whose source is our peer address and
 * whose destination is our local address: the kernel looks it up by that
 * exact 4-tuple and reports the uid that created it. */
static int
tcp_peer_uid (const struct sockaddr_storage *local, const struct sockaddr_storage *peer, uid_t *uid,
              ak_error_t **err)
{
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } q;
  union {
    struct nlmsghdr nlh;
    char buf[8192];
  } a;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  _cleanup_close_ int nl = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  struct timeval tv = { .tv_sec = 2 };
  ssize_t n;

  if (nl < 0)
    return ak_error_set (err, errno, "sock_diag socket");
  setsockopt (nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  memset (&q, 0, sizeof q);
  q.nlh.nlmsg_len = sizeof q;
  q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  q.nlh.nlmsg_flags = NLM_F_REQUEST;
  q.nlh.nlmsg_seq = 1;
  q.req.sdiag_family = (unsigned char) peer->ss_family;
  q.req.sdiag_protocol = IPPROTO_TCP;
  q.req.idiag_states = ~0U;
  q.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  q.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (peer->ss_family == AF_INET)
    {
      const struct sockaddr_in *p = (const struct sockaddr_in *) peer;
      const struct sockaddr_in *l = (const struct sockaddr_in *) local;
      q.req.id.idiag_sport = p->sin_port;
      q.req.id.idiag_dport = l->sin_port;
      memcpy (q.req.id.idiag_src, &p->sin_addr, 4);
      memcpy (q.req.id.idiag_dst, &l->sin_addr, 4);
    }
  else
    {
      const struct sockaddr_in6 *p = (const struct sockaddr_in6 *) peer;
      const struct sockaddr_in6 *l = (const struct sockaddr_in6 *) local;
      q.req.id.idiag_sport = p->sin6_port;
      q.req.id.idiag_dport = l->sin6_port;
      memcpy (q.req.id.idiag_src, &p->sin6_addr, 16);
      memcpy (q.req.id.idiag_dst, &l->sin6_addr, 16);
    }
  if (sendto (nl, &q, sizeof q, 0, (struct sockaddr *) &kernel, sizeof kernel) != (ssize_t) sizeof q)
    return ak_error_set (err, errno, "sock_diag request");
  n = recv (nl, &a, sizeof a, 0);
  if (n < 0)
    return ak_error_set (err, errno, "sock_diag answer");
  for (struct nlmsghdr *h = &a.nlh; NLMSG_OK (h, (size_t) n); h = NLMSG_NEXT (h, n))
    {
      if (h->nlmsg_type == NLMSG_ERROR)
        {
          const struct nlmsgerr *e = NLMSG_DATA (h);
          return ak_error_set (err, e->error < 0 ? -e->error : EIO,
                               "no local socket at the other end of the connection");
        }
      if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY
          && h->nlmsg_len >= NLMSG_LENGTH (sizeof (struct inet_diag_msg)))
        {
          const struct inet_diag_msg *m = NLMSG_DATA (h);
          *uid = m->idiag_uid;
          return 0;
        }
    }
  return ak_error_set (err, EIO, "sock_diag: no answer for the connection");
}

int
ak_peer_uid (int fd, uid_t *uid, ak_error_t **err)
{
  struct sockaddr_storage local, peer;
  socklen_t ll = sizeof local, pl = sizeof peer;

  if (getsockname (fd, (struct sockaddr *) &local, &ll) < 0
      || getpeername (fd, (struct sockaddr *) &peer, &pl) < 0)
    return ak_error_set (err, errno, "connection addresses");
  if (peer.ss_family == AF_UNIX)
    {
      struct ucred cr;
      socklen_t cl = sizeof cr;
      if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
        return ak_error_set (err, errno, "SO_PEERCRED");
      *uid = cr.uid;
      return 0;
    }
  if ((peer.ss_family != AF_INET && peer.ss_family != AF_INET6) || local.ss_family != peer.ss_family)
    return ak_error_set (err, EAFNOSUPPORT, "connection of address family %d", peer.ss_family);
  return tcp_peer_uid (&local, &peer, uid, err);
}
