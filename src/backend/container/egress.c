/* The egress policy: the only way out of a sandbox's network namespace.
 *
 * The namespace has no link to anywhere (netns.c): every TCP connection
 * the sandbox opens to an address not its own is redirected by nftables to
 * a listener that lives in the namespace but is served here, outside, and
 * every DNS query to this process's resolver.  For each connection this
 * process learns the original destination (SO_ORIGINAL_DST), judges it
 * against the policy, and only then opens a connection of its own from the
 * host and splices the two.  Nothing else leaves: no route, no NAT, no UDP
 * but DNS to us.
 *
 * A connection is allowed when
 *   - its address is not the host's own, loopback, unspecified, multicast
 *     or the cloud metadata address (never, whatever the rules say), nor
 *     link-local (only with an IP rule naming it), nor private in allowlist
 *     mode (only with an IP rule naming it), nor named by a block rule;
 *   - in allowlist mode: an IP rule allows it, or a name the sandbox
 *     resolved through us to that address is allowed on that port;
 *   - the TLS server name or HTTP Host (and absolute-form target) the
 *     client sends first is not blocked and, in allowlist mode, is allowed
 *     and resolves on the host to that very address (so neither `curl
 *     --resolve` nor a Host header can point an allowed name elsewhere or
 *     front another name).
 * A denied connection is reset at once.  Every decision goes to the audit
 * hook (ak_backend_audit_hook).
 *
 * This file holds the policy on addresses and names, DNS, and a connection
 * from its redirect to its relay; egress_http.c follows plain HTTP request
 * by request and serves the proxy.
 */
#define _GNU_SOURCE
#include "backend/container/egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/container/egress_private.h"
#include "backend/container/sniff.h"
#include "common/cleanup.h"
#include "common/util.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define MAX_CONNS 1024
#define MAP_MAX 4096
#define DNS_TTL 30
#define CONNECT_TIMEOUT_MS 15000

const ak_egress_conf_t *egress_conf;
static atomic_int n_conns;

/* Names the sandbox resolved through us, and to what: in allowlist mode a
 * connection to an address is allowed through a name that led there. */
typedef struct mapped {
  int family;
  uint8_t addr[16];
  char name[256];
} mapped_t;

static mapped_t map[MAP_MAX];
static size_t map_n, map_next;
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t
alen (int family)
{
  return family == AF_INET ? 4 : 16;
}

static void
map_add (const char *name, const addr_t *a)
{
  pthread_mutex_lock (&map_lock);
  for (size_t i = 0; i < map_n; i++)
    if (map[i].family == a->family && memcmp (map[i].addr, a->a, alen (a->family)) == 0
        && strcmp (map[i].name, name) == 0)
      {
        pthread_mutex_unlock (&map_lock);
        return;
      }
  map[map_next].family = a->family;
  memcpy (map[map_next].addr, a->a, 16);
  snprintf (map[map_next].name, sizeof map[map_next].name, "%s", name);
  map_next = (map_next + 1) % MAP_MAX;
  if (map_n < MAP_MAX)
    map_n++;
  pthread_mutex_unlock (&map_lock);
}

/* The names mapped to a, allowed on port: the first allowed one (its rule
 * in *v), else the first one at all (for the audit), in name. */
static bool
map_allows (const addr_t *a, unsigned port, char *name, size_t name_len, ak_netverdict_t *v)
{
  bool ok = false;
  name[0] = '\0';
  pthread_mutex_lock (&map_lock);
  for (size_t i = 0; i < map_n && !ok; i++)
    if (map[i].family == a->family && memcmp (map[i].addr, a->a, alen (a->family)) == 0)
      {
        ak_netverdict_t w = ak_netpolicy_check_name (egress_conf->pol, map[i].name, port);
        if (name[0] == '\0' || w.allow)
          snprintf (name, name_len, "%s", map[i].name);
        if (w.allow)
          *v = w, ok = true;
      }
  pthread_mutex_unlock (&map_lock);
  return ok;
}

/* ---- what an address is ---- */

enum { CLS_PUBLIC, CLS_PRIVATE, CLS_LINKLOCAL, CLS_NEVER };

static bool
in4 (const uint8_t *a, uint32_t net, unsigned prefix)
{
  uint32_t v = (uint32_t) a[0] << 24 | (uint32_t) a[1] << 16 | (uint32_t) a[2] << 8 | a[3];
  uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
  return (v & mask) == (net & mask);
}

/* The host's own addresses, read each time: they change (a VPN comes up)
 * and a stale list would let the sandbox reach a service of the host. */
static bool
is_host_addr (const addr_t *a)
{
  struct ifaddrs *ifs, *i;
  bool found = false;

  if (getifaddrs (&ifs) < 0)
    return true; /* fail closed */
  for (i = ifs; i != NULL && !found; i = i->ifa_next)
    {
      if (i->ifa_addr == NULL || i->ifa_addr->sa_family != a->family)
        continue;
      if (a->family == AF_INET)
        found = memcmp (&((struct sockaddr_in *) i->ifa_addr)->sin_addr, a->a, 4) == 0;
      else
        found = memcmp (&((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr, a->a, 16) == 0;
    }
  freeifaddrs (ifs);
  return found;
}

static int
classify (addr_t *a, const char **why)
{
  static const uint8_t mapped4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  static const uint8_t metadata6[16] = { 0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54 };

  if (a->family == AF_INET6 && memcmp (a->a, mapped4, 12) == 0)
    {
      memmove (a->a, a->a + 12, 4);
      a->family = AF_INET;
    }
  if (is_host_addr (a))
    return *why = "an address of the host", CLS_NEVER;
  if (a->family == AF_INET)
    {
      const uint8_t *b = a->a;
      if (in4 (b, 0xa9fea9fe, 32))
        return *why = "the cloud metadata address", CLS_NEVER;
      if (in4 (b, 0x7f000000, 8))
        return *why = "a loopback address", CLS_NEVER;
      if (in4 (b, 0, 8) || in4 (b, 0xe0000000, 4) || in4 (b, 0xf0000000, 4))
        return *why = "not a unicast address", CLS_NEVER;
      if (in4 (b, 0xa9fe0000, 16))
        return *why = "a link-local address", CLS_LINKLOCAL;
      if (in4 (b, 0x0a000000, 8) || in4 (b, 0xac100000, 12) || in4 (b, 0xc0a80000, 16)
          || in4 (b, 0x64400000, 10))
        return *why = "a private address", CLS_PRIVATE;
      return CLS_PUBLIC;
    }
  if (memcmp (a->a, metadata6, 16) == 0)
    return *why = "the cloud metadata address", CLS_NEVER;
  if (IN6_IS_ADDR_LOOPBACK ((struct in6_addr *) a->a) || IN6_IS_ADDR_UNSPECIFIED ((struct in6_addr *) a->a)
      || a->a[0] == 0xff)
    return *why = "not a unicast address", CLS_NEVER;
  if (a->a[0] == 0xfe && (a->a[1] & 0xc0) == 0x80)
    return *why = "a link-local address", CLS_LINKLOCAL;
  if ((a->a[0] & 0xfe) == 0xfc)
    return *why = "a private address", CLS_PRIVATE;
  return CLS_PUBLIC;
}

/* Whether an address may be given to, or reached by, the sandbox at all
 * (before rules on names): *ip_rule set when an IP rule allows it. */
bool
egress_addr_reachable (addr_t *a, unsigned port, const char **why, ak_netverdict_t *v)
{
  int cls = classify (a, why);
  ak_netverdict_t w = ak_netpolicy_check_addr (egress_conf->pol, a->family, a->a, port);
  bool ip_rule = w.allow && w.rule != NULL;

  *v = w;
  if (cls == CLS_NEVER)
    return false;
  if (!w.allow && w.rule != NULL)
    return *why = "blocked", false;
  if (cls == CLS_LINKLOCAL && !ip_rule)
    return false;
  if (cls == CLS_PRIVATE && egress_conf->pol->allowlist_only && !ip_rule)
    return false;
  *why = NULL;
  return true;
}

/* ---- names, resolved on the host ---- */

/* A hosts file (test builds: ak_test_hosts_file) answers instead of the
 * host's resolver, and alone: a name it lacks does not exist. */
static int
resolve_file (const char *file, const char *name, int family, addr_t *out, size_t max)
{
  FILE *f = fopen (file, "re");
  char line[1024];
  size_t n = 0;
  bool named = false;

  if (f == NULL)
    return -1;
  while (fgets (line, sizeof line, f) != NULL && n < max)
    {
      char *save = NULL, *ip = strtok_r (line, " \t\r\n", &save), *h;
      addr_t a = { 0 };
      if (ip == NULL || ip[0] == '#')
        continue;
      a.family = strchr (ip, ':') ? AF_INET6 : AF_INET;
      if (inet_pton (a.family, ip, a.a) != 1)
        continue;
      while ((h = strtok_r (NULL, " \t\r\n", &save)) != NULL && h[0] != '#')
        if (strcasecmp (h, name) == 0)
          {
            named = true;
            if (a.family == family)
              out[n++] = a;
            break;
          }
    }
  fclose (f);
  return named || n > 0 ? (int) n : -1;
}

/* Addresses of name in family; -1 when the name does not exist. */
int
egress_resolve (const char *name, int family, addr_t *out, size_t max)
{
  const char *file = ak_test_hosts_file ();
  struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM }, *res, *r;
  size_t n = 0;
  int rc;

  if (file != NULL)
    return resolve_file (file, name, family, out, max);
  rc = getaddrinfo (name, NULL, &hints, &res);
  if (rc == EAI_NONAME || rc == EAI_NODATA)
    return rc == EAI_NODATA ? 0 : -1;
  if (rc != 0)
    return -2;
  for (r = res; r != NULL && n < max; r = r->ai_next)
    {
      addr_t a = { .family = r->ai_family };
      if (r->ai_family == AF_INET)
        memcpy (a.a, &((struct sockaddr_in *) r->ai_addr)->sin_addr, 4);
      else if (r->ai_family == AF_INET6)
        memcpy (a.a, &((struct sockaddr_in6 *) r->ai_addr)->sin6_addr, 16);
      else
        continue;
      out[n++] = a;
    }
  freeaddrinfo (res);
  return (int) n;
}

static bool
resolves_to (const char *name, const addr_t *a)
{
  addr_t got[MAX_ADDRS];
  int n = egress_resolve (name, a->family, got, MAX_ADDRS);
  for (int i = 0; i < n; i++)
    if (memcmp (got[i].a, a->a, alen (a->family)) == 0)
      return true;
  return false;
}

/* ---- audit ---- */

void
egress_audit (const char *event, const char *name, const addr_t *a, unsigned port, bool allow,
       const char *rule, long long out_bytes, long long in_bytes)
{
  char text[INET6_ADDRSTRLEN] = "";
  json_t *f;

  if (ak_backend_audit_hook == NULL)
    return;
  if (a != NULL)
    inet_ntop (a->family, a->a, text, sizeof text);
  f = json_pack ("{s:s, s:s}", "verdict", allow ? "allow" : "deny", "rule", rule ? rule : "");
  if (f == NULL)
    return;
  if (name != NULL && name[0] != '\0')
    json_object_set_new (f, "name", json_string (name));
  if (a != NULL)
    json_object_set_new (f, "address", json_string (text));
  if (port != 0)
    json_object_set_new (f, "port", json_integer (port));
  if (out_bytes >= 0)
    {
      json_object_set_new (f, "bytes_out", json_integer (out_bytes));
      json_object_set_new (f, "bytes_in", json_integer (in_bytes));
    }
  ak_backend_audit_hook (event, egress_conf->sandbox, f);
}

char *
egress_describe (const ak_netverdict_t *v)
{
  return ak_netverdict_describe (v, egress_conf->pol->allowlist_only);
}

/* ---- DNS ---- */

static void
dns_answer (int fd, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
            socklen_t fromlen)
{
  ak_dns_query_t q;
  uint8_t out[1024], packed[MAX_ADDRS * 16];
  addr_t got[MAX_ADDRS];
  size_t n_ok = 0, rlen;
  int rcode = AK_DNS_NOERROR, family = 0, n = 0;
  ak_netverdict_t v;
  char *rule = NULL;

  if (ak_dns_parse_query (buf, len, &q) < 0)
    return; /* not a query we answer: no reply at all */
  if (q.qclass != 1)
    rcode = AK_DNS_REFUSED;
  v = ak_netpolicy_check_name (egress_conf->pol, q.name, 0);
  rule = egress_describe (&v);
  if (rcode == AK_DNS_NOERROR && !v.allow)
    rcode = AK_DNS_NXDOMAIN;
  else if (rcode == AK_DNS_NOERROR && (q.qtype == 1 || q.qtype == 28))
    {
      family = q.qtype == 1 ? AF_INET : AF_INET6;
      n = egress_resolve (q.name, family, got, MAX_ADDRS);
      if (n == -1)
        rcode = AK_DNS_NXDOMAIN;
      else if (n < 0)
        rcode = AK_DNS_SERVFAIL;
      /* Only addresses the sandbox may reach are told: no rebinding to the
       * host, loopback, link-local or (allowlist) private ranges. */
      for (int i = 0; i < n; i++)
        {
          const char *why;
          ak_netverdict_t w;
          if (!egress_addr_reachable (&got[i], 0, &why, &w) || got[i].family != family)
            continue;
          memcpy (packed + n_ok * alen (family), got[i].a, alen (family));
          map_add (q.name, &got[i]);
          n_ok++;
        }
    }
  /* Any other type of an allowed name: no data (never forwarded). */
  if (v.allow && n > 0 && n_ok == 0)
    {
      /* Allowed, but every address it has is one the sandbox may not reach. */
      free (rule);
      rule = ak_xstrdup ("resolves only to addresses the sandbox may not reach");
      v.allow = false;
    }
  if (ak_backend_audit_hook != NULL)
    {
      json_t *f = json_pack ("{s:s, s:s, s:s}", "verdict", v.allow ? "allow" : "deny", "rule", rule,
                             "name", q.name);
      json_t *answers = json_array ();
      if (f != NULL && answers != NULL)
        {
          char text[INET6_ADDRSTRLEN];
          for (size_t i = 0; i < n_ok; i++)
            if (inet_ntop (family, packed + i * alen (family), text, sizeof text) != NULL)
              json_array_append_new (answers, json_string (text));
          json_object_set_new (f, "type", q.qtype == 1    ? json_string ("A")
                                          : q.qtype == 28 ? json_string ("AAAA")
                                                          : json_integer (q.qtype));
          json_object_set_new (f, "answers", answers);
          ak_backend_audit_hook ("dns_query", egress_conf->sandbox, f);
        }
      else
        json_decref (answers), json_decref (f);
    }
  free (rule);
  rlen = ak_dns_build_reply (buf, &q, rcode, packed, n_ok, family == AF_INET ? 4 : 16, DNS_TTL, out,
                             sizeof out);
  if (rlen > 0)
    (void) sendto (fd, out, rlen, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *) from, fromlen);
}

static void *
dns_thread (void *arg)
{
  (void) arg;
  for (;;)
    {
      struct pollfd p[2] = { { .fd = egress_conf->dns[0], .events = POLLIN },
                             { .fd = egress_conf->dns[1], .events = POLLIN } };
      if (poll (p, 2, -1) < 0)
        continue;
      for (int i = 0; i < 2; i++)
        if (p[i].revents & POLLIN)
          {
            uint8_t buf[1500];
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t r = recvfrom (p[i].fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *) &from, &fl);
            if (r > 0)
              dns_answer (p[i].fd, buf, (size_t) r, &from, fl);
          }
    }
  return NULL;
}

/* ---- TCP ---- */

/* A reset, not a FIN: the client fails at once. */
void
egress_reset (int fd)
{
  struct linger l = { .l_onoff = 1, .l_linger = 0 };
  setsockopt (fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close (fd);
}

/* Copies from until EOF; then half-closes to (unless *denied by then).
 * With c, what passes is also read for c's first status.  Returns the
 * bytes copied. */
static long long
relay (int from, int to, atomic_bool *denied, conn_t *c)
{
  status_scan_t scan = { .line_len = 0 };
  uint8_t buf[65536];
  long long total = 0;
  for (;;)
    {
      ssize_t r = read (from, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0 && c != NULL)
        egress_status_end (c);
      if (r <= 0)
        {
          if (denied != NULL && atomic_load (denied))
            return total;
          if (r < 0)
            shutdown (from, SHUT_RDWR), shutdown (to, SHUT_RDWR);
          else
            shutdown (to, SHUT_WR);
          return total;
        }
      if (ak_send_all (to, buf, (size_t) r) < 0)
        {
          shutdown (from, SHUT_RDWR), shutdown (to, SHUT_RDWR);
          if (c != NULL)
            egress_status_end (c);
          return total;
        }
      if (c != NULL)
        egress_status_scan (c, &scan, buf, (size_t) r);
      total += r;
    }
}

void *
egress_upstream_thread (void *arg)
{
  conn_t *c = arg;
  c->in_bytes = relay (c->ufd, c->cfd, &c->denied, c);
  return NULL;
}

int
egress_connect_upstream (const addr_t *a, unsigned port)
{
  struct sockaddr_storage ss = { 0 };
  socklen_t sl;
  int fd = socket (a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct pollfd p;
  int e = 0;

  if (fd < 0)
    return -1;
  if (a->family == AF_INET)
    {
      struct sockaddr_in *s = (struct sockaddr_in *) &ss;
      s->sin_family = AF_INET, s->sin_port = htons ((uint16_t) port);
      memcpy (&s->sin_addr, a->a, 4);
      sl = sizeof *s;
    }
  else
    {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *) &ss;
      s->sin6_family = AF_INET6, s->sin6_port = htons ((uint16_t) port);
      memcpy (&s->sin6_addr, a->a, 16);
      sl = sizeof *s;
    }
  if (connect (fd, (struct sockaddr *) &ss, sl) < 0 && errno != EINPROGRESS)
    goto fail;
  p = (struct pollfd){ .fd = fd, .events = POLLOUT };
  if (poll (&p, 1, CONNECT_TIMEOUT_MS) != 1)
    {
      errno = ETIMEDOUT;
      goto fail;
    }
  sl = sizeof e;
  if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0 || e != 0)
    {
      errno = e;
      goto fail;
    }
  /* Blocking from here: one thread per direction. */
  if (fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) < 0)
    goto fail;
  return fd;
fail:
  e = errno;
  close (fd);
  errno = e;
  return -1;
}

/* The name check of the first bytes: TLS server name, HTTP Host and
 * absolute-form target.  Returns true to go on; *rule says why not. */
static bool
name_allowed (const char *h, const addr_t *a, unsigned port, bool ip_rule, char **rule)
{
  ak_netverdict_t v = ak_netpolicy_check_name (egress_conf->pol, h, port);

  if (!v.allow && v.rule != NULL)
    {
      *rule = egress_describe (&v);
      return false;
    }
  if (ip_rule || !egress_conf->pol->allowlist_only)
    return true;
  if (!v.allow)
    {
      *rule = egress_describe (&v);
      return false;
    }
  /* The name must lead to this very address on the host. */
  if (!resolves_to (h, a))
    {
      *rule = ak_xasprintf ("%s does not resolve to this address on the host", h);
      return false;
    }
  *rule = egress_describe (&v);
  return true;
}

/* Reads the client's first bytes until they say what they are (waiting
 * at most timeout_ms for each read when >= 0), after the `have` bytes
 * already in buf.  Returns the bytes read (kept in buf), or -1 when the
 * client is gone or silent; *kind says which protocol spoke. */
ssize_t
egress_sniff (int fd, uint8_t *buf, size_t have, size_t max, char *h1, char *h2, size_t hl,
              int timeout_ms, int *kind)
{
  size_t len = have;
  h1[0] = h2[0] = '\0';
  *kind = KIND_OTHER;
  for (;;)
    {
      ssize_t r;
      ak_sniff_t t, w;
      if (len > 0)
        {
          t = ak_sniff_tls_sni (buf, len, h1, hl);
          if (t == AK_SNIFF_FOUND || t == AK_SNIFF_NONE)
            return *kind = KIND_TLS, (ssize_t) len;
          w = ak_sniff_http_host (buf, len, h1, hl, h2, hl);
          if (w == AK_SNIFF_FOUND || w == AK_SNIFF_NONE)
            return *kind = KIND_HTTP, (ssize_t) len;
          if ((t == AK_SNIFF_OTHER && w == AK_SNIFF_OTHER) || len == max)
            {
              h1[0] = h2[0] = '\0';
              return (ssize_t) len;
            }
        }
      if (timeout_ms >= 0)
        {
          struct pollfd p = { .fd = fd, .events = POLLIN };
          int pr = poll (&p, 1, timeout_ms);
          if (pr < 0 && errno == EINTR)
            continue;
          if (pr <= 0)
            return len > 0 ? (ssize_t) len : -1;
        }
      r = read (fd, buf + len, max - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return len > 0 ? (ssize_t) len : -1;
      len += (size_t) r;
    }
}

static void
addr_of (const struct sockaddr_storage *ss, addr_t *a, unsigned *port)
{
  memset (a, 0, sizeof *a);
  a->family = ss->ss_family;
  if (ss->ss_family == AF_INET)
    {
      const struct sockaddr_in *s = (const struct sockaddr_in *) ss;
      memcpy (a->a, &s->sin_addr, 4);
      *port = ntohs (s->sin_port);
    }
  else
    {
      const struct sockaddr_in6 *s = (const struct sockaddr_in6 *) ss;
      memcpy (a->a, &s->sin6_addr, 16);
      *port = ntohs (s->sin6_port);
    }
}

static void
deny (int cfd, judged_t *j, const char *name, const char *rule)
{
  egress_audit ("network_connect", name != NULL ? name : j->name, &j->a, j->port, false, rule, -1, -1);
  egress_reset (cfd);
}

/* The names the first bytes carry, checked; false (and the connection
 * refused) when one is not allowed. */
bool
egress_check_names (int cfd, judged_t *j, const char *h1, const char *h2)
{
  const char *hs[2] = { h1, h2 };
  for (int i = 0; i < 2; i++)
    {
      char *nrule = NULL;
      if (hs[i][0] == '\0')
        continue;
      if (j->pinned != NULL && strcasecmp (hs[i], j->pinned) != 0)
        {
          nrule = ak_xasprintf ("%s is not %s, the proxy request's target", hs[i], j->pinned);
          egress_audit ("network_connect", hs[i], &j->a, j->port, false, nrule, -1, -1);
          free (nrule);
          return false;
        }
      if (j->pinned != NULL)
        continue;
      if (!name_allowed (hs[i], &j->a, j->port, j->ip_rule, &nrule))
        {
          egress_audit ("network_connect", hs[i], &j->a, j->port, false, nrule, -1, -1);
          free (nrule);
          return false;
        }
      if (nrule != NULL)
        {
          free (j->rule);
          j->rule = nrule;
        }
    }
  if (h1[0] != '\0' || h2[0] != '\0')
    snprintf (j->name, sizeof j->name, "%s", h1[0] != '\0' ? h1 : h2);
  return true;
}



/* From the first bytes on (len of them in buf, *kind from egress_sniff):
 * checked, relayed both ways through c, until both ends are done.
 * Returns the bytes the client sent, or -1 when a request was refused
 * (both ends reset). */
long long
egress_pass_on (conn_t *c, pthread_t up, judged_t *j, uint8_t *buf, ssize_t len, int kind,
                bool one_request)
{
  long long out_bytes;
  bool refused = false;

  if (kind == KIND_HTTP && len > 0)
    out_bytes = egress_http_relay (c, j, buf, (size_t) len, one_request, &refused);
  else if (len > 0 && ak_send_all (c->ufd, buf, (size_t) len) < 0)
    {
      out_bytes = 0;
      shutdown (c->ufd, SHUT_RDWR), shutdown (c->cfd, SHUT_RDWR);
    }
  else if (len < 0)
    {
      out_bytes = 0;
      shutdown (c->ufd, SHUT_WR);
    }
  else
    out_bytes = len + relay (c->cfd, c->ufd, NULL, NULL);
  if (refused)
    {
      atomic_store (&c->denied, true);
      shutdown (c->ufd, SHUT_RDWR);
    }
  pthread_join (up, NULL);
  if (atomic_load (&c->verdict_fd) >= 0)
    close (atomic_load (&c->verdict_fd));
  if (refused)
    {
      egress_reset (c->ufd);
      egress_reset (c->cfd);
      return -1;
    }
  close (c->ufd);
  close (c->cfd);
  return out_bytes;
}

static void
handle (int cfd, int family)
{
  struct sockaddr_storage dst;
  socklen_t dl = sizeof dst;
  judged_t j = { 0 };
  const char *why = NULL;
  char h1[256] = "", h2[256] = "";
  ak_netverdict_t v;
  conn_t c = { .cfd = cfd, .ufd = -1, .verdict_fd = -1 };
  pthread_t up;
  _cleanup_free_ uint8_t *buf = ak_xmalloc (SNIFF_MAX);
  ssize_t len = 0;
  int kind = KIND_OTHER;
  long long out_bytes;

  memset (&dst, 0, sizeof dst);
  if (getsockopt (cfd, family == AF_INET ? SOL_IP : SOL_IPV6,
                  family == AF_INET ? SO_ORIGINAL_DST : IP6T_SO_ORIGINAL_DST, &dst, &dl)
      < 0)
    {
      /* Not redirected: a connection to the listener itself. */
      egress_audit ("network_connect", NULL, NULL, 0, false, "not a redirected connection", -1, -1);
      egress_reset (cfd);
      return;
    }
  addr_of (&dst, &j.a, &j.port);
  /* Our own resolver's address inside: DNS is answered over UDP only, and
   * the proxy listens there. */
  if (j.a.family == AF_INET && memcmp (j.a.a, &egress_conf->nameserver, 4) == 0)
    {
      if (j.port == AK_NET_PROXY_PORT)
        {
          memset (&j.a, 0, sizeof j.a);
          egress_proxy_handle (cfd, &j);
          return;
        }
      deny (cfd, &j, NULL, "the sandbox's resolver (UDP only)");
      return;
    }
  if (!egress_addr_reachable (&j.a, j.port, &why, &v))
    {
      _cleanup_free_ char *r = why && strcmp (why, "blocked") != 0 ? ak_xstrdup (why) : egress_describe (&v);
      map_allows (&j.a, j.port, j.name, sizeof j.name, &(ak_netverdict_t){ 0 });
      deny (cfd, &j, NULL, r);
      return;
    }
  j.ip_rule = v.allow && v.rule != NULL;
  /* In allowlist mode, an address no allowed name led to: the client must
   * name an allowed name that resolves to it, before anything is opened. */
  j.need_name = !j.ip_rule && egress_conf->pol->allowlist_only
                && !map_allows (&j.a, j.port, j.name, sizeof j.name, &v);
  j.rule = egress_describe (&v);
  if (j.need_name)
    {
      len = egress_sniff (cfd, buf, 0, SNIFF_MAX, h1, h2, sizeof h1, NAME_WAIT_MS, &kind);
      if (len < 0 || (h1[0] == '\0' && h2[0] == '\0'))
        {
          deny (cfd, &j, NULL, j.rule);
          free (j.rule);
          return;
        }
      if (!egress_check_names (cfd, &j, h1, h2))
        {
          egress_reset (cfd);
          free (j.rule);
          return;
        }
    }
  else if (j.name[0] == '\0')
    map_allows (&j.a, j.port, j.name, sizeof j.name, &(ak_netverdict_t){ 0 });
  c.ufd = egress_connect_upstream (&j.a, j.port);
  if (c.ufd < 0)
    {
      _cleanup_free_ char *r = ak_xasprintf ("%s; connect: %s", j.rule, strerror (errno));
      deny (cfd, &j, NULL, r);
      free (j.rule);
      return;
    }
  if (pthread_create (&up, NULL, egress_upstream_thread, &c) != 0)
    {
      free (j.rule);
      egress_reset (c.ufd);
      egress_reset (cfd);
      return;
    }
  /* The client's first bytes go nowhere until its names are checked. */
  if (!j.need_name)
    {
      len = egress_sniff (cfd, buf, 0, SNIFF_MAX, h1, h2, sizeof h1, -1, &kind);
      if (len > 0 && !egress_check_names (cfd, &j, h1, h2))
        {
          atomic_store (&c.denied, true);
          shutdown (c.ufd, SHUT_RDWR);
          pthread_join (up, NULL);
          egress_reset (c.ufd);
          egress_reset (cfd);
          free (j.rule);
          return;
        }
    }
  out_bytes = egress_pass_on (&c, up, &j, buf, len, kind, false);
  if (out_bytes >= 0)
    egress_audit ("network_connect", j.name, &j.a, j.port, true, j.rule, out_bytes, c.in_bytes);
  free (j.rule);
}

typedef struct accepted {
  int fd, family;
} accepted_t;

static void *
conn_thread (void *arg)
{
  accepted_t acc = *(accepted_t *) arg;
  free (arg);
  handle (acc.fd, acc.family);
  atomic_fetch_sub (&n_conns, 1);
  return NULL;
}

_Noreturn void
ak_egress_serve (const ak_egress_conf_t *c)
{
  pthread_attr_t attr;
  pthread_t t;

  egress_conf = c;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, 512 * 1024);
  if (pthread_create (&t, &attr, dns_thread, NULL) != 0)
    _exit (1);
  for (;;)
    {
      struct pollfd p[3] = {
        { .fd = c->tcp[0], .events = POLLIN },
        { .fd = c->tcp[1], .events = POLLIN },
        { .fd = c->stop_fd, .events = POLLIN },
      };
      if (poll (p, 3, -1) < 0)
        continue;
      if (p[2].revents != 0)
        _exit (0);
      for (int i = 0; i < 2; i++)
        if (p[i].revents & POLLIN)
          {
            int fd = accept4 (p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            accepted_t *acc;
            if (fd < 0)
              continue;
            if (atomic_fetch_add (&n_conns, 1) >= MAX_CONNS)
              {
                atomic_fetch_sub (&n_conns, 1);
                egress_reset (fd);
                continue;
              }
            acc = ak_xmalloc (sizeof *acc);
            *acc = (accepted_t){ .fd = fd, .family = i == 0 ? AF_INET : AF_INET6 };
            if (pthread_create (&t, &attr, conn_thread, acc) != 0)
              {
                free (acc);
                atomic_fetch_sub (&n_conns, 1);
                egress_reset (fd);
              }
          }
    }
}
