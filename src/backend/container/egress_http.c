/* The egress policy's HTTP: requests followed one by one on a plain HTTP
 * connection, each one's Host and target checked before it is passed on;
 * the upstream's answer to the first read for a switch of protocols
 * (Upgrade and 101, CONNECT and 2xx); and the proxy the sandbox's
 * HTTP_PROXY points to (CONNECT host:port and absolute http:// requests).
 * The connection around them is egress.c's. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/container/egress_private.h"
#include "backend/container/sniff.h"
#include "common/cleanup.h"
#include "common/util.h"

/* ---- the upstream's first answer ---- */

static void
first_status_set (conn_t *c, int status)
{
  int fd;
  atomic_store (&c->first_status, status);
  fd = atomic_load (&c->verdict_fd);
  if (fd >= 0)
    eventfd_write (fd, 1);
}

void
egress_status_scan (conn_t *c, status_scan_t *s, const uint8_t *d, size_t n)
{
  for (size_t i = 0; i < n && atomic_load (&c->first_status) == 0; i++)
    {
      if (s->skipping)
        {
          s->tail = s->tail << 8 | d[i];
          if (s->tail == 0x0d0a0d0a)
            s->skipping = false, s->line_len = 0, s->tail = 0;
          continue;
        }
      s->line[s->line_len++] = d[i];
      if (s->line_len < sizeof s->line)
        continue;
      {
        const uint8_t *l = s->line;
        int code = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
        bool ok = memcmp (l, "HTTP/1.", 7) == 0 && (l[7] == '0' || l[7] == '1') && l[8] == ' ';
        for (int k = 9; k < 12; k++)
          ok = ok && l[k] >= '0' && l[k] <= '9';
        if (!ok)
          first_status_set (c, -1);
        else if (code >= 100 && code < 200 && code != 101)
          s->skipping = true;
        else
          first_status_set (c, code);
      }
    }
}

void
egress_status_end (conn_t *c)
{
  if (atomic_load (&c->first_status) == 0)
    first_status_set (c, -1);
}

/* ---- plain HTTP, request by request ----
 *
 * A connection whose first bytes are an HTTP/1 request is followed
 * request by request (the framing of each: Content-Length, chunked), and
 * every request's Host and target are checked as the first one's were
 * before its head is passed on: a kept-alive connection cannot name
 * another host in its second request.  Framing that servers could read
 * differently (request smuggling) is refused.  Only when the first request
 * asked to switch protocols (Upgrade, CONNECT) and the upstream's answer
 * to it did (101 Switching Protocols; 2xx to a CONNECT) are the bytes
 * after it the new protocol's, passed on unread: the flow waits for that
 * answer before it reads on.  An Upgrade the server did not honour, or
 * one asked later on the connection (whose answer is not told apart from
 * the earlier ones' bodies), leaves every later request checked. */

#define HEAD_MAX 65536

enum { H_HEAD, H_BODY, H_CHUNK_LINE, H_CHUNK_DATA, H_CHUNK_END, H_TRAILER, H_OPAQUE };

typedef struct http_flow {
  int st;
  unsigned long long left;
  conn_t *c;        /* NULL: no switch of protocols is followed */
  unsigned long long requests;
  bool switching;   /* the request under way asked to switch (Upgrade, CONNECT) */
  bool connect;     /* ... and is a CONNECT */
  bool one_request; /* the proxy's plain HTTP: the flow ends with its first request */
  bool checked;     /* the next head's names were checked already */
  uint8_t *head;    /* HEAD_MAX */
  size_t head_len;
  uint8_t line[1024];
  size_t line_len;
} http_flow_t;

enum { FLOW_ON = 0, FLOW_DONE = 1, FLOW_BROKEN = -1, FLOW_REFUSED = -2 };

static int
flow_refuse (judged_t *j, const char *name, const char *why)
{
  egress_audit ("network_connect", name != NULL && name[0] != '\0' ? name : j->name, &j->a, j->port, false,
         why, -1, -1);
  return FLOW_REFUSED;
}

/* Whether the upstream's answer to the first request switched protocols;
 * waits for it (or for the client to hang up, or the upstream to end). */
static bool
flow_switched (http_flow_t *f)
{
  int s, fd = f->c != NULL ? atomic_load (&f->c->verdict_fd) : -1;

  if (fd < 0)
    return false;
  while ((s = atomic_load (&f->c->first_status)) == 0)
    {
      struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = f->c->cfd, .events = POLLRDHUP } };
      eventfd_t v;
      if (poll (p, 2, -1) < 0 && errno != EINTR)
        return false;
      if (p[1].revents != 0)
        return false;
      if (p[0].revents != 0)
        (void) eventfd_read (fd, &v);
    }
  return s == 101 || (f->connect && s >= 200 && s < 300);
}

static int
flow_request_done (http_flow_t *f)
{
  bool switching = f->switching;

  f->switching = false;
  if (f->one_request)
    return FLOW_DONE;
  f->st = switching && flow_switched (f) ? H_OPAQUE : H_HEAD;
  return FLOW_ON;
}

/* A complete head in f->head: checked, then passed on. */
static int
flow_head (http_flow_t *f, judged_t *j, int ufd)
{
  char h1[256], h2[256];
  ak_http_req_t r;
  ak_sniff_t w = ak_sniff_http_host (f->head, f->head_len, h1, sizeof h1, h2, sizeof h2);

  if (w != AK_SNIFF_FOUND && w != AK_SNIFF_NONE)
    return flow_refuse (j, NULL, "not an HTTP request on an HTTP connection");
  if (w == AK_SNIFF_NONE)
    {
      /* No name at all is judged by the address; a Host header that could
       * not be read (two of them, a malformed one) is refused. */
      for (const uint8_t *l = memchr (f->head, '\n', f->head_len); l != NULL && l + 6 < f->head + f->head_len;
           l = memchr (l + 1, '\n', (size_t) (f->head + f->head_len - l - 1)))
        if (strncasecmp ((const char *) l + 1, "host:", 5) == 0)
          return flow_refuse (j, NULL, "an HTTP request with a Host header that cannot be read");
      h1[0] = '\0';
    }
  if (!f->checked)
    {
      if (h1[0] == '\0' && h2[0] == '\0' && j->need_name)
        return flow_refuse (j, NULL, "a request naming no host, to an address no allowed name led to");
      if (!egress_check_names (-1, j, h1, h2))
        return FLOW_REFUSED;
    }
  f->checked = false;
  if (ak_http_parse_req (f->head, f->head_len, &r) < 0)
    return flow_refuse (j, h1, "an HTTP request whose framing is malformed or ambiguous");
  if (ak_send_all (ufd, f->head, f->head_len) < 0)
    return FLOW_BROKEN;
  f->head_len = 0;
  f->switching = r.upgrade && f->requests++ == 0;
  f->connect = r.method_len == 7 && memcmp (f->head, "CONNECT", 7) == 0;
  if (r.body == AK_HTTP_BODY_CHUNKED)
    f->st = H_CHUNK_LINE;
  else if (r.body == AK_HTTP_BODY_LENGTH && r.length > 0)
    f->st = H_BODY, f->left = r.length;
  else
    return flow_request_done (f);
  return FLOW_ON;
}

/* Passes the client's bytes d[0..n) on to ufd as the flow allows. */
static int
flow_feed (http_flow_t *f, judged_t *j, int ufd, const uint8_t *d, size_t n)
{
  while (n > 0)
    switch (f->st)
      {
      case H_OPAQUE:
        return ak_send_all (ufd, d, n) == 0 ? FLOW_ON : FLOW_BROKEN;
      case H_BODY:
      case H_CHUNK_DATA:
        {
          size_t k = n < f->left ? n : (size_t) f->left;
          if (ak_send_all (ufd, d, k) < 0)
            return FLOW_BROKEN;
          d += k, n -= k, f->left -= k;
          if (f->left > 0)
            break;
          if (f->st == H_CHUNK_DATA)
            f->st = H_CHUNK_END, f->left = 2;
          else if (flow_request_done (f) == FLOW_DONE)
            return FLOW_DONE;
          break;
        }
      case H_CHUNK_END:
        if (d[0] != (f->left == 2 ? '\r' : '\n'))
          return flow_refuse (j, NULL, "a chunk of an HTTP request not ended by CRLF");
        if (ak_send_all (ufd, d, 1) < 0)
          return FLOW_BROKEN;
        d++, n--;
        if (--f->left == 0)
          f->st = H_CHUNK_LINE;
        break;
      case H_CHUNK_LINE:
      case H_TRAILER:
        {
          const uint8_t *nl = memchr (d, '\n', n);
          size_t k = nl != NULL ? (size_t) (nl - d) + 1 : n;
          unsigned long long size;
          if (f->line_len + k > sizeof f->line)
            return flow_refuse (j, NULL, "an over-long chunk line in an HTTP request");
          memcpy (f->line + f->line_len, d, k);
          f->line_len += k;
          if (ak_send_all (ufd, d, k) < 0)
            return FLOW_BROKEN;
          d += k, n -= k;
          if (nl == NULL)
            break;
          if (f->line_len < 2 || f->line[f->line_len - 2] != '\r')
            return flow_refuse (j, NULL, "a chunk line of an HTTP request not ended by CRLF");
          if (f->st == H_TRAILER)
            {
              bool empty = f->line_len == 2;
              f->line_len = 0;
              if (empty && flow_request_done (f) == FLOW_DONE)
                return FLOW_DONE;
              break;
            }
          if (ak_http_chunk_size (f->line, f->line_len - 2, &size) < 0)
            return flow_refuse (j, NULL, "a malformed chunk size in an HTTP request");
          f->line_len = 0;
          if (size == 0)
            f->st = H_TRAILER;
          else
            f->st = H_CHUNK_DATA, f->left = size;
          break;
        }
      case H_HEAD:
        {
          size_t old = f->head_len, k = n < HEAD_MAX - old ? n : HEAD_MAX - old;
          const uint8_t *end;
          char h1[256], h2[256];
          int rc;
          if (old == 0 && (d[0] == '\r' || d[0] == '\n'))
            {
              /* Empty lines between requests. */
              if (ak_send_all (ufd, d, 1) < 0)
                return FLOW_BROKEN;
              d++, n--;
              break;
            }
          memcpy (f->head + old, d, k);
          end = memmem (f->head + (old > 3 ? old - 3 : 0), old + k - (old > 3 ? old - 3 : 0),
                        "\r\n\r\n", 4);
          if (end != NULL)
            {
              size_t used = (size_t) (end + 4 - f->head) - old;
              f->head_len = old + used;
              d += used, n -= used;
              rc = flow_head (f, j, ufd);
              if (rc != FLOW_ON)
                return rc;
              break;
            }
          f->head_len = old + k;
          d += k, n -= k;
          if (ak_sniff_http_host (f->head, f->head_len, h1, sizeof h1, h2, sizeof h2) == AK_SNIFF_OTHER)
            {
              rc = flow_head (f, j, ufd);
              if (rc != FLOW_ON)
                return rc;
              break;
            }
          if (f->head_len == HEAD_MAX)
            return flow_refuse (j, NULL, "an over-long HTTP request head");
          break;
        }
      }
  return FLOW_ON;
}

/* Relays the client's stream through the flow (first[0..first_len) were
 * read already) until the client ends, the flow is done, or a request is
 * refused (*refused).  Returns the bytes read from the client. */
static long long
flow_relay (int cfd, int ufd, judged_t *j, http_flow_t *f, const uint8_t *first, size_t first_len,
            bool *refused)
{
  _cleanup_free_ uint8_t *buf = ak_xmalloc (65536);
  long long total = (long long) first_len;
  int rc = first_len > 0 ? flow_feed (f, j, ufd, first, first_len) : FLOW_ON;

  for (;;)
    {
      ssize_t r;
      if (rc == FLOW_REFUSED)
        {
          *refused = true;
          return total;
        }
      if (rc == FLOW_BROKEN)
        {
          shutdown (cfd, SHUT_RDWR), shutdown (ufd, SHUT_RDWR);
          return total;
        }
      if (rc == FLOW_DONE)
        return total;
      r = read (cfd, buf, 65536);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          if (r < 0)
            shutdown (cfd, SHUT_RDWR), shutdown (ufd, SHUT_RDWR);
          else
            shutdown (ufd, SHUT_WR);
          return total;
        }
      total += r;
      rc = flow_feed (f, j, ufd, buf, (size_t) r);
    }
}

long long
egress_http_relay (conn_t *c, judged_t *j, const uint8_t *first, size_t first_len, bool one_request,
                   bool *refused)
{
  _cleanup_free_ uint8_t *head = ak_xmalloc (HEAD_MAX);
  http_flow_t f = { .st = H_HEAD, .head = head, .one_request = one_request, .c = c };

  atomic_store (&c->verdict_fd, eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK));
  return flow_relay (c->cfd, c->ufd, j, &f, first, first_len, refused);
}

/* ---- the proxy (HTTP_PROXY and friends point here) ---- */

static void
proxy_reply (int fd, int code, const char *reason, const char *text)
{
  char m[1024];
  int n = snprintf (m, sizeof m,
                    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n%s\n",
                    code, reason, strlen (text) + 1, text);
  if (n > 0 && (size_t) n < sizeof m)
    (void) ak_send_all (fd, m, (size_t) n);
}

static void
proxy_deny (int cfd, judged_t *j, const char *name, const char *rule)
{
  _cleanup_free_ char *text = ak_xasprintf ("agentkernel: %s:%u is refused by the sandbox's network "
                                            "policy (%s)",
                                            name, j->port, rule);
  egress_audit ("network_connect", name, j->a.family != 0 ? &j->a : NULL, j->port, false, rule, -1, -1);
  proxy_reply (cfd, 403, "Forbidden", text);
  close (cfd);
}

/* host[:port] (or [v6]:port) of a target; the port is def when absent
 * (0 def: required).  Returns false when malformed. */
static bool
split_hostport (const char *t, size_t n, unsigned def, unsigned *port)
{
  const char *colon = NULL;
  if (n > 0 && t[0] == '[')
    {
      const char *close = memchr (t, ']', n);
      if (close == NULL)
        return false;
      if ((size_t) (close - t) + 1 < n)
        {
          if (close[1] != ':')
            return false;
          colon = close + 1;
        }
    }
  else
    colon = memrchr (t, ':', n);
  if (colon == NULL)
    return *port = def, def != 0;
  {
    unsigned long v = 0;
    const char *p = colon + 1, *e = t + n;
    if (p == e || e - p > 5)
      return false;
    for (; p < e; p++)
      {
        if (*p < '0' || *p > '9')
          return false;
        v = v * 10 + (unsigned long) (*p - '0');
      }
    if (v == 0 || v > 65535)
      return false;
    *port = (unsigned) v;
  }
  return true;
}

/* The proxy's request, judged: the target's address in j->a, or the
 * reason it is refused. */
static char *
proxy_judge (judged_t *j, const char *name)
{
  addr_t lit = { 0 };
  const char *why = NULL;
  ak_netverdict_t v;

  if (inet_pton (AF_INET, name, lit.a) == 1 || inet_pton (AF_INET6, name, lit.a) == 1)
    {
      lit.family = strchr (name, ':') != NULL ? AF_INET6 : AF_INET;
      j->a = lit;
      if (!egress_addr_reachable (&j->a, j->port, &why, &v))
        return why && strcmp (why, "blocked") != 0 ? ak_xstrdup (why) : egress_describe (&v);
      j->ip_rule = v.allow && v.rule != NULL;
      if (egress_conf->pol->allowlist_only && !j->ip_rule)
        return egress_describe (&v);
      j->rule = egress_describe (&v);
      return NULL;
    }
  v = ak_netpolicy_check_name (egress_conf->pol, name, j->port);
  if ((!v.allow && v.rule != NULL) || (!v.allow && egress_conf->pol->allowlist_only))
    return egress_describe (&v);
  {
    int families[2] = { AF_INET, AF_INET6 };
    bool any = false;
    for (int f = 0; f < 2; f++)
      {
        addr_t got[MAX_ADDRS];
        int n = egress_resolve (name, families[f], got, MAX_ADDRS);
        for (int i = 0; i < n; i++)
          {
            ak_netverdict_t w;
            any = true;
            if (egress_addr_reachable (&got[i], j->port, &why, &w))
              {
                j->a = got[i];
                j->rule = egress_describe (&v);
                return NULL;
              }
          }
      }
    return ak_xasprintf (any ? "%s resolves only to addresses the sandbox may not reach"
                             : "%s does not resolve on the host",
                         name);
  }
}

void
egress_proxy_handle (int cfd, judged_t *j)
{
  _cleanup_free_ uint8_t *buf = ak_xmalloc (SNIFF_MAX);
  _cleanup_free_ char *why = NULL, *target = NULL;
  char h1[256], h2[256];
  const uint8_t *end;
  ak_http_req_t r;
  ssize_t len;
  int kind;
  bool is_connect;
  size_t hlen, rest;
  conn_t c = { .cfd = cfd, .ufd = -1, .verdict_fd = -1 };
  pthread_t up;
  long long out_bytes;

  len = egress_sniff (cfd, buf, 0, HEAD_MAX < SNIFF_MAX ? HEAD_MAX : SNIFF_MAX, h1, h2, sizeof h1,
                      NAME_WAIT_MS, &kind);
  if (len < 0)
    {
      close (cfd);
      return;
    }
  end = kind == KIND_HTTP ? memmem (buf, (size_t) len, "\r\n\r\n", 4) : NULL;
  if (end == NULL || ak_http_parse_req (buf, (size_t) (end + 4 - buf), &r) < 0 || h2[0] == '\0')
    {
      egress_audit ("network_connect", NULL, NULL, AK_NET_PROXY_PORT, false, "not a proxy request", -1, -1);
      proxy_reply (cfd, 400, "Bad Request",
                   "agentkernel: the sandbox's proxy takes CONNECT host:port and absolute http:// "
                   "requests");
      close (cfd);
      return;
    }
  hlen = (size_t) (end + 4 - buf);
  rest = (size_t) len - hlen;
  is_connect = r.method_len == 7 && memcmp (buf, "CONNECT", 7) == 0;
  target = ak_xstrndup ((const char *) buf + r.target_off, r.target_len);
  if (is_connect)
    {
      if (!split_hostport (target, strlen (target), 0, &j->port))
        goto bad;
    }
  else
    {
      /* http://[userinfo@]host[:port][/path]: plain HTTP only (https goes
       * through CONNECT). */
      const char *h = target + 7, *he, *at;
      if (strncasecmp (target, "http://", 7) != 0)
        goto bad;
      he = h + strcspn (h, "/?#");
      at = memrchr (h, '@', (size_t) (he - h));
      if (at != NULL)
        h = at + 1;
      if (!split_hostport (h, (size_t) (he - h), 80, &j->port))
        goto bad;
      /* One Host header at most: an upstream could read a second one. */
      {
        size_t nhost = 0;
        for (size_t k = 0; k + 6 <= hlen; k++)
          if (buf[k] == '\n' && strncasecmp ((const char *) buf + k + 1, "host:", 5) == 0)
            nhost++;
        if (nhost > 1)
          {
            proxy_deny (cfd, j, h2, "two Host headers");
            return;
          }
      }
      /* The Host header names the same host as the target. */
      if (h1[0] != '\0' && strcmp (h1, h2) != 0)
        {
          _cleanup_free_ char *rule = ak_xasprintf ("the Host header names %s, the target %s", h1, h2);
          proxy_deny (cfd, j, h1, rule);
          return;
        }
    }
  snprintf (j->name, sizeof j->name, "%s", h2);
  why = proxy_judge (j, h2);
  if (why != NULL)
    {
      proxy_deny (cfd, j, h2, why);
      free (j->rule);
      return;
    }
  c.ufd = egress_connect_upstream (&j->a, j->port);
  if (c.ufd < 0)
    {
      _cleanup_free_ char *rule = ak_xasprintf ("%s; connect: %s", j->rule, strerror (errno));
      _cleanup_free_ char *text = ak_xasprintf ("agentkernel: %s:%u: %s", h2, j->port, strerror (errno));
      egress_audit ("network_connect", h2, &j->a, j->port, false, rule, -1, -1);
      proxy_reply (cfd, 502, "Bad Gateway", text);
      close (cfd);
      free (j->rule);
      return;
    }
  if (pthread_create (&up, NULL, egress_upstream_thread, &c) != 0)
    {
      free (j->rule);
      egress_reset (c.ufd);
      egress_reset (cfd);
      return;
    }
  if (is_connect)
    {
      static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
      /* Inside the tunnel: the TLS server name, or every HTTP request's
       * Host, must be the CONNECT target (or, for an address, allowed as
       * a direct connection to it would be). */
      memmove (buf, buf + hlen, rest);
      if (ak_send_all (cfd, ok, sizeof ok - 1) < 0)
        len = -1;
      else
        len = egress_sniff (cfd, buf, rest, SNIFF_MAX, h1, h2, sizeof h1, -1, &kind);
      {
        addr_t lit;
        bool literal = inet_pton (AF_INET, j->name, lit.a) == 1 || inet_pton (AF_INET6, j->name, lit.a) == 1;
        j->pinned = literal ? NULL : j->name;
        j->need_name = literal && !j->ip_rule && egress_conf->pol->allowlist_only;
      }
      if (len > 0 && !egress_check_names (cfd, j, h1, h2))
        {
          atomic_store (&c.denied, true);
          shutdown (c.ufd, SHUT_RDWR);
          pthread_join (up, NULL);
          egress_reset (c.ufd);
          egress_reset (cfd);
          free (j->rule);
          return;
        }
      out_bytes = egress_pass_on (&c, up, j, buf, len, kind, false);
    }
  else
    {
      /* The request goes on in origin form, with Connection: close (a
       * connection to the proxy carries one request; the client opens
       * the next one), without the proxy's own headers. */
      const char *path = target + 7 + strcspn (target + 7, "/?#");
      char *line = (char *) buf + r.line_end, *eol;
      _cleanup_free_ char *head = NULL;
      size_t hn = 0;
      FILE *m = open_memstream (&head, &hn);
      if (m == NULL)
        {
          egress_reset (cfd);
          egress_reset (c.ufd);
          pthread_join (up, NULL);
          free (j->rule);
          return;
        }
      fprintf (m, "%.*s %s%s %.8s\r\n", (int) r.method_len, (const char *) buf, path[0] == '/' ? "" : "/",
               path, (const char *) buf + r.target_off + r.target_len + 1);
      for (; line < (char *) buf + hlen - 2; line = eol + 2)
        {
          eol = memmem (line, (size_t) ((char *) buf + hlen - line), "\r\n", 2);
          if (strncasecmp (line, "proxy-connection:", 17) == 0 || strncasecmp (line, "proxy-authorization:", 20) == 0
              || strncasecmp (line, "connection:", 11) == 0 || strncasecmp (line, "keep-alive:", 11) == 0)
            continue;
          fprintf (m, "%.*s\r\n", (int) (eol - line), line);
        }
      fprintf (m, "Connection: close\r\n\r\n");
      fclose (m);
      {
        _cleanup_free_ uint8_t *fhead = ak_xmalloc (HEAD_MAX);
        http_flow_t f = { .st = H_HEAD, .head = fhead, .one_request = true };
        bool refused = false;
        /* The rewritten head, then the body by the original's framing. */
        if (ak_send_all (c.ufd, head, hn) < 0)
          rest = 0, shutdown (c.ufd, SHUT_RDWR), shutdown (cfd, SHUT_RDWR);
        if (r.body == AK_HTTP_BODY_CHUNKED)
          f.st = H_CHUNK_LINE;
        else if (r.body == AK_HTTP_BODY_LENGTH && r.length > 0)
          f.st = H_BODY, f.left = r.length;
        if (f.st == H_HEAD)
          out_bytes = (long long) hlen;
        else
          out_bytes = (long long) hlen + flow_relay (cfd, c.ufd, j, &f, buf + hlen, rest, &refused);
        if (refused)
          {
            atomic_store (&c.denied, true);
            shutdown (c.ufd, SHUT_RDWR);
          }
        pthread_join (up, NULL);
        if (refused)
          {
            egress_reset (c.ufd);
            egress_reset (cfd);
            out_bytes = -1;
          }
        else
          {
            close (c.ufd);
            close (cfd);
          }
      }
    }
  if (out_bytes >= 0)
    egress_audit ("network_connect", j->name, &j->a, j->port, true, j->rule, out_bytes, c.in_bytes);
  free (j->rule);
  return;
bad:
  egress_audit ("network_connect", h2, NULL, 0, false, "a malformed proxy request target", -1, -1);
  proxy_reply (cfd, 400, "Bad Request", "agentkernel: a malformed proxy request target");
  close (cfd);
}
