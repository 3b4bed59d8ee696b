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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
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
#define SNIFF_MAX 32768
#define DNS_TTL 30
#define MAX_ADDRS 16
#define CONNECT_TIMEOUT_MS 15000

static const ak_egress_conf_t *conf;
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

typedef struct addr {
  int family;
  uint8_t a[16];
} addr_t;

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
        ak_netverdict_t w = ak_netpolicy_check_name (conf->pol, map[i].name, port);
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
static bool
addr_reachable (addr_t *a, unsigned port, const char **why, ak_netverdict_t *v)
{
  int cls = classify (a, why);
  ak_netverdict_t w = ak_netpolicy_check_addr (conf->pol, a->family, a->a, port);
  bool ip_rule = w.allow && w.rule != NULL;

  *v = w;
  if (cls == CLS_NEVER)
    return false;
  if (!w.allow && w.rule != NULL)
    return *why = "blocked", false;
  if (cls == CLS_LINKLOCAL && !ip_rule)
    return false;
  if (cls == CLS_PRIVATE && conf->pol->allowlist_only && !ip_rule)
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
static int
resolve (const char *name, int family, addr_t *out, size_t max)
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
  int n = resolve (name, a->family, got, MAX_ADDRS);
  for (int i = 0; i < n; i++)
    if (memcmp (got[i].a, a->a, alen (a->family)) == 0)
      return true;
  return false;
}

/* ---- audit ---- */

static void
audit (const char *event, const char *name, const addr_t *a, unsigned port, bool allow,
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
  ak_backend_audit_hook (event, conf->sandbox, f);
}

static char *
describe (const ak_netverdict_t *v)
{
  return ak_netverdict_describe (v, conf->pol->allowlist_only);
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
  v = ak_netpolicy_check_name (conf->pol, q.name, 0);
  rule = describe (&v);
  if (rcode == AK_DNS_NOERROR && !v.allow)
    rcode = AK_DNS_NXDOMAIN;
  else if (rcode == AK_DNS_NOERROR && (q.qtype == 1 || q.qtype == 28))
    {
      family = q.qtype == 1 ? AF_INET : AF_INET6;
      n = resolve (q.name, family, got, MAX_ADDRS);
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
          if (!addr_reachable (&got[i], 0, &why, &w) || got[i].family != family)
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
          ak_backend_audit_hook ("dns_query", conf->sandbox, f);
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
      struct pollfd p[2] = { { .fd = conf->dns[0], .events = POLLIN }, { .fd = conf->dns[1], .events = POLLIN } };
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

typedef struct conn {
  int cfd, ufd;
  atomic_llong in_bytes;
  atomic_bool denied; /* the client gets a reset, never a FIN */
  /* The status of the upstream's first answer (past interim 1xx ones other
   * than 101), once its status line has passed: -1 when it was none (not
   * HTTP, or the upstream ended first).  verdict_fd (an eventfd, -1: none)
   * is signalled when it is known. */
  atomic_int first_status;
  atomic_int verdict_fd;
} conn_t;

/* Reads the upstream's first status line(s) as they pass. */
typedef struct status_scan {
  uint8_t line[12]; /* "HTTP/1.1 101" */
  size_t line_len;
  bool skipping;    /* through an interim head, to its blank line */
  uint32_t tail;    /* its last four bytes */
} status_scan_t;

static void
first_status_set (conn_t *c, int status)
{
  int fd;
  atomic_store (&c->first_status, status);
  fd = atomic_load (&c->verdict_fd);
  if (fd >= 0)
    eventfd_write (fd, 1);
}

static void
status_scan (conn_t *c, status_scan_t *s, const uint8_t *d, size_t n)
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

/* A reset, not a FIN: the client fails at once. */
static void
reset (int fd)
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
      if (r <= 0 && c != NULL && atomic_load (&c->first_status) == 0)
        first_status_set (c, -1);
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
          if (c != NULL && atomic_load (&c->first_status) == 0)
            first_status_set (c, -1);
          return total;
        }
      if (c != NULL)
        status_scan (c, &scan, buf, (size_t) r);
      total += r;
    }
}

static void *
upstream_thread (void *arg)
{
  conn_t *c = arg;
  c->in_bytes = relay (c->ufd, c->cfd, &c->denied, c);
  return NULL;
}

static int
connect_upstream (const addr_t *a, unsigned port)
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
  ak_netverdict_t v = ak_netpolicy_check_name (conf->pol, h, port);

  if (!v.allow && v.rule != NULL)
    {
      *rule = describe (&v);
      return false;
    }
  if (ip_rule || !conf->pol->allowlist_only)
    return true;
  if (!v.allow)
    {
      *rule = describe (&v);
      return false;
    }
  /* The name must lead to this very address on the host. */
  if (!resolves_to (h, a))
    {
      *rule = ak_xasprintf ("%s does not resolve to this address on the host", h);
      return false;
    }
  *rule = describe (&v);
  return true;
}

enum { KIND_OTHER = 0, KIND_TLS = 1, KIND_HTTP = 2 };

/* Reads the client's first bytes until they say what they are (waiting
 * at most timeout_ms for each read when >= 0), after the `have` bytes
 * already in buf.  Returns the bytes read (kept in buf), or -1 when the
 * client is gone or silent; *kind says which protocol spoke. */
static ssize_t
sniff (int fd, uint8_t *buf, size_t have, size_t max, char *h1, char *h2, size_t hl, int timeout_ms,
       int *kind)
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

/* How long a client that reached an address no resolved name led to has
 * to say which name it wants (TLS or HTTP) before it is refused. */
#define NAME_WAIT_MS 10000

/* One connection, from the redirect to its end. */
typedef struct judged {
  addr_t a;
  unsigned port;
  bool ip_rule;
  bool need_name;     /* reached an address no allowed name led to */
  const char *pinned; /* every name must be this one (a proxy's target), or NULL */
  char name[256];
  char *rule; /* owned */
} judged_t;

static void
deny (int cfd, judged_t *j, const char *name, const char *rule)
{
  audit ("network_connect", name != NULL ? name : j->name, &j->a, j->port, false, rule, -1, -1);
  reset (cfd);
}

/* The names the first bytes carry, checked; false (and the connection
 * refused) when one is not allowed. */
static bool
check_names (int cfd, judged_t *j, const char *h1, const char *h2)
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
          audit ("network_connect", hs[i], &j->a, j->port, false, nrule, -1, -1);
          free (nrule);
          return false;
        }
      if (j->pinned != NULL)
        continue;
      if (!name_allowed (hs[i], &j->a, j->port, j->ip_rule, &nrule))
        {
          audit ("network_connect", hs[i], &j->a, j->port, false, nrule, -1, -1);
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
  audit ("network_connect", name != NULL && name[0] != '\0' ? name : j->name, &j->a, j->port, false,
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
      if (!check_names (-1, j, h1, h2))
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

/* From the first bytes on (len of them in buf, *kind from sniff):
 * checked, relayed both ways through c, until both ends are done.
 * Returns the bytes the client sent, or -1 when a request was refused
 * (both ends reset). */
static long long
pass_on (conn_t *c, pthread_t up, judged_t *j, uint8_t *buf, ssize_t len, int kind, bool one_request)
{
  long long out_bytes;
  bool refused = false;

  if (kind == KIND_HTTP && len > 0)
    {
      _cleanup_free_ uint8_t *head = ak_xmalloc (HEAD_MAX);
      http_flow_t f = { .st = H_HEAD, .head = head, .one_request = one_request, .c = c };
      atomic_store (&c->verdict_fd, eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK));
      out_bytes = flow_relay (c->cfd, c->ufd, j, &f, buf, (size_t) len, &refused);
    }
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
      reset (c->ufd);
      reset (c->cfd);
      return -1;
    }
  close (c->ufd);
  close (c->cfd);
  return out_bytes;
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
  audit ("network_connect", name, j->a.family != 0 ? &j->a : NULL, j->port, false, rule, -1, -1);
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
      if (!addr_reachable (&j->a, j->port, &why, &v))
        return why && strcmp (why, "blocked") != 0 ? ak_xstrdup (why) : describe (&v);
      j->ip_rule = v.allow && v.rule != NULL;
      if (conf->pol->allowlist_only && !j->ip_rule)
        return describe (&v);
      j->rule = describe (&v);
      return NULL;
    }
  v = ak_netpolicy_check_name (conf->pol, name, j->port);
  if ((!v.allow && v.rule != NULL) || (!v.allow && conf->pol->allowlist_only))
    return describe (&v);
  {
    int families[2] = { AF_INET, AF_INET6 };
    bool any = false;
    for (int f = 0; f < 2; f++)
      {
        addr_t got[MAX_ADDRS];
        int n = resolve (name, families[f], got, MAX_ADDRS);
        for (int i = 0; i < n; i++)
          {
            ak_netverdict_t w;
            any = true;
            if (addr_reachable (&got[i], j->port, &why, &w))
              {
                j->a = got[i];
                j->rule = describe (&v);
                return NULL;
              }
          }
      }
    return ak_xasprintf (any ? "%s resolves only to addresses the sandbox may not reach"
                             : "%s does not resolve on the host",
                         name);
  }
}

static void
proxy_handle (int cfd, judged_t *j)
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

  len = sniff (cfd, buf, 0, HEAD_MAX < SNIFF_MAX ? HEAD_MAX : SNIFF_MAX, h1, h2, sizeof h1, NAME_WAIT_MS,
               &kind);
  if (len < 0)
    {
      close (cfd);
      return;
    }
  end = kind == KIND_HTTP ? memmem (buf, (size_t) len, "\r\n\r\n", 4) : NULL;
  if (end == NULL || ak_http_parse_req (buf, (size_t) (end + 4 - buf), &r) < 0 || h2[0] == '\0')
    {
      audit ("network_connect", NULL, NULL, AK_NET_PROXY_PORT, false, "not a proxy request", -1, -1);
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
  c.ufd = connect_upstream (&j->a, j->port);
  if (c.ufd < 0)
    {
      _cleanup_free_ char *rule = ak_xasprintf ("%s; connect: %s", j->rule, strerror (errno));
      _cleanup_free_ char *text = ak_xasprintf ("agentkernel: %s:%u: %s", h2, j->port, strerror (errno));
      audit ("network_connect", h2, &j->a, j->port, false, rule, -1, -1);
      proxy_reply (cfd, 502, "Bad Gateway", text);
      close (cfd);
      free (j->rule);
      return;
    }
  if (pthread_create (&up, NULL, upstream_thread, &c) != 0)
    {
      free (j->rule);
      reset (c.ufd);
      reset (cfd);
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
        len = sniff (cfd, buf, rest, SNIFF_MAX, h1, h2, sizeof h1, -1, &kind);
      {
        addr_t lit;
        bool literal = inet_pton (AF_INET, j->name, lit.a) == 1 || inet_pton (AF_INET6, j->name, lit.a) == 1;
        j->pinned = literal ? NULL : j->name;
        j->need_name = literal && !j->ip_rule && conf->pol->allowlist_only;
      }
      if (len > 0 && !check_names (cfd, j, h1, h2))
        {
          atomic_store (&c.denied, true);
          shutdown (c.ufd, SHUT_RDWR);
          pthread_join (up, NULL);
          reset (c.ufd);
          reset (cfd);
          free (j->rule);
          return;
        }
      out_bytes = pass_on (&c, up, j, buf, len, kind, false);
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
          reset (cfd);
          reset (c.ufd);
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
            reset (c.ufd);
            reset (cfd);
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
    audit ("network_connect", j->name, &j->a, j->port, true, j->rule, out_bytes, c.in_bytes);
  free (j->rule);
  return;
bad:
  audit ("network_connect", h2, NULL, 0, false, "a malformed proxy request target", -1, -1);
  proxy_reply (cfd, 400, "Bad Request", "agentkernel: a malformed proxy request target");
  close (cfd);
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
      audit ("network_connect", NULL, NULL, 0, false, "not a redirected connection", -1, -1);
      reset (cfd);
      return;
    }
  addr_of (&dst, &j.a, &j.port);
  /* Our own resolver's address inside: DNS is answered over UDP only, and
   * the proxy listens there. */
  if (j.a.family == AF_INET && memcmp (j.a.a, &conf->nameserver, 4) == 0)
    {
      if (j.port == AK_NET_PROXY_PORT)
        {
          memset (&j.a, 0, sizeof j.a);
          proxy_handle (cfd, &j);
          return;
        }
      deny (cfd, &j, NULL, "the sandbox's resolver (UDP only)");
      return;
    }
  if (!addr_reachable (&j.a, j.port, &why, &v))
    {
      _cleanup_free_ char *r = why && strcmp (why, "blocked") != 0 ? ak_xstrdup (why) : describe (&v);
      map_allows (&j.a, j.port, j.name, sizeof j.name, &(ak_netverdict_t){ 0 });
      deny (cfd, &j, NULL, r);
      return;
    }
  j.ip_rule = v.allow && v.rule != NULL;
  /* In allowlist mode, an address no allowed name led to: the client must
   * name an allowed name that resolves to it, before anything is opened. */
  j.need_name = !j.ip_rule && conf->pol->allowlist_only
                && !map_allows (&j.a, j.port, j.name, sizeof j.name, &v);
  j.rule = describe (&v);
  if (j.need_name)
    {
      len = sniff (cfd, buf, 0, SNIFF_MAX, h1, h2, sizeof h1, NAME_WAIT_MS, &kind);
      if (len < 0 || (h1[0] == '\0' && h2[0] == '\0'))
        {
          deny (cfd, &j, NULL, j.rule);
          free (j.rule);
          return;
        }
      if (!check_names (cfd, &j, h1, h2))
        {
          reset (cfd);
          free (j.rule);
          return;
        }
    }
  else if (j.name[0] == '\0')
    map_allows (&j.a, j.port, j.name, sizeof j.name, &(ak_netverdict_t){ 0 });
  c.ufd = connect_upstream (&j.a, j.port);
  if (c.ufd < 0)
    {
      _cleanup_free_ char *r = ak_xasprintf ("%s; connect: %s", j.rule, strerror (errno));
      deny (cfd, &j, NULL, r);
      free (j.rule);
      return;
    }
  if (pthread_create (&up, NULL, upstream_thread, &c) != 0)
    {
      free (j.rule);
      reset (c.ufd);
      reset (cfd);
      return;
    }
  /* The client's first bytes go nowhere until its names are checked. */
  if (!j.need_name)
    {
      len = sniff (cfd, buf, 0, SNIFF_MAX, h1, h2, sizeof h1, -1, &kind);
      if (len > 0 && !check_names (cfd, &j, h1, h2))
        {
          atomic_store (&c.denied, true);
          shutdown (c.ufd, SHUT_RDWR);
          pthread_join (up, NULL);
          reset (c.ufd);
          reset (cfd);
          free (j.rule);
          return;
        }
    }
  out_bytes = pass_on (&c, up, &j, buf, len, kind, false);
  if (out_bytes >= 0)
    audit ("network_connect", j.name, &j.a, j.port, true, j.rule, out_bytes, c.in_bytes);
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

  conf = c;
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
                reset (fd);
                continue;
              }
            acc = ak_xmalloc (sizeof *acc);
            *acc = (accepted_t){ .fd = fd, .family = i == 0 ? AF_INET : AF_INET6 };
            if (pthread_create (&t, &attr, conn_thread, acc) != 0)
              {
                free (acc);
                atomic_fetch_sub (&n_conns, 1);
                reset (fd);
              }
          }
    }
}
