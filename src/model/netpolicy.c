/* Network policy patterns and verdicts (see netpolicy.h). */
#define _GNU_SOURCE
#include "model/netpolicy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/spec.h"

void
ak_netpat_clear (ak_netpat_t *p)
{
  free (p->text);
  free (p->name);
  memset (p, 0, sizeof (*p));
}

static bool
parse_port (const char *s, size_t n, unsigned *out)
{
  unsigned v = 0;
  if (n == 0 || n > 5)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return false;
      v = v * 10 + (unsigned) (s[i] - '0');
    }
  if (v < 1 || v > 65535)
    return false;
  *out = v;
  return true;
}

/* ":PORT" or ":PORT-PORT" (without the colon). */
static int
parse_ports (const char *s, ak_netpat_t *p, const char *text, ak_error_t **err)
{
  const char *dash = strchr (s, '-');
  bool ok;

  if (dash == NULL)
    {
      ok = parse_port (s, strlen (s), &p->port_lo);
      p->port_hi = p->port_lo;
    }
  else
    ok = parse_port (s, (size_t) (dash - s), &p->port_lo)
         && parse_port (dash + 1, strlen (dash + 1), &p->port_hi) && p->port_lo <= p->port_hi;
  if (!ok)
    return ak_error_set (err, 0,
                         "'%s': bad port '%s' (expected PORT or PORT-PORT, 1 to 65535, low to high)",
                         text, s);
  return 0;
}

/* A host name: labels of 1-63 letters, digits, '-' and '_', not starting
 * or ending with '-', 253 characters at most; the last label not all
 * digits (that is a malformed address, not a name). */
static bool
name_valid (const char *s)
{
  size_t n = strlen (s), label = 0;
  bool digits_only = true;

  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i <= n; i++)
    {
      char c = s[i];
      if (c == '.' || c == '\0')
        {
          if (label == 0 || label > 63 || s[i - 1] == '-')
            return false;
          if (c == '\0')
            break;
          label = 0;
          digits_only = true;
          continue;
        }
      if (!(isalnum ((unsigned char) c) || c == '-' || c == '_'))
        return false;
      if (label == 0 && c == '-')
        return false;
      if (!isdigit ((unsigned char) c))
        digits_only = false;
      label++;
    }
  return !digits_only;
}

static void
mask_prefix (uint8_t *a, size_t len, unsigned prefix)
{
  for (size_t i = 0; i < len; i++)
    {
      unsigned bits = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * (unsigned) i : 0;
      a[i] &= (uint8_t) (0xff00 >> bits);
    }
}

/* "ADDR" or "ADDR/PREFIX"; true when it is an address at all. */
static int
parse_addr (const char *host, ak_netpat_t *p, const char *text, bool *is_addr, ak_error_t **err)
{
  _cleanup_free_ char *a = ak_xstrdup (host);
  char *slash = strchr (a, '/');
  size_t len;

  *is_addr = false;
  if (slash != NULL)
    *slash = '\0';
  if (inet_pton (AF_INET, a, p->addr) == 1)
    p->family = AF_INET, len = 4;
  else if (inet_pton (AF_INET6, a, p->addr) == 1)
    p->family = AF_INET6, len = 16;
  else
    {
      if (slash != NULL || strchr (a, ':') != NULL)
        return ak_error_set (err, 0, "'%s': not a valid IPv4 or IPv6 address or CIDR", text);
      return 0;
    }
  *is_addr = true;
  p->kind = AK_NETPAT_ADDR;
  p->prefix = (unsigned) len * 8;
  if (slash != NULL)
    {
      char *end;
      long v;
      errno = 0;
      v = strtol (slash + 1, &end, 10);
      if (slash[1] == '\0' || *end != '\0' || errno != 0 || v < 0 || v > (long) len * 8
          || !isdigit ((unsigned char) slash[1]))
        return ak_error_set (err, 0, "'%s': bad prefix length '/%s' (0 to %zu)", text, slash + 1,
                             len * 8);
      p->prefix = (unsigned) v;
    }
  mask_prefix (p->addr, len, p->prefix);
  return 0;
}

int
ak_netpat_parse (const char *text, ak_netpat_t *out, ak_error_t **err)
{
  ak_netpat_t p = { .port_lo = 0, .port_hi = 65535 };
  _cleanup_free_ char *host = NULL;
  const char *s = text, *port = NULL;
  size_t n;
  bool is_addr;

  memset (out, 0, sizeof (*out));
  while (*s == ' ' || *s == '\t')
    s++;
  n = strlen (s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  if (n == 0)
    return ak_error_set (err, 0, "empty pattern");
  p.text = ak_xstrndup (s, n);
  if (strlen (p.text) != n)
    {
      ak_netpat_clear (&p);
      return ak_error_set (err, 0, "NUL byte in pattern");
    }
  if (p.text[0] == '[')
    {
      /* [IPv6] or [IPv6]:PORT */
      char *close = strchr (p.text, ']');
      if (close == NULL || (close[1] != '\0' && close[1] != ':'))
        goto bad_syntax;
      host = ak_xstrndup (p.text + 1, (size_t) (close - p.text - 1));
      if (close[1] == ':')
        port = close + 2;
      if (strchr (host, ':') == NULL)
        goto bad_syntax;
    }
  else
    {
      char *colon = strrchr (p.text, ':');
      /* More than one colon: an IPv6 address, written without a port. */
      if (colon != NULL && strchr (p.text, ':') == colon)
        {
          host = ak_xstrndup (p.text, (size_t) (colon - p.text));
          port = colon + 1;
        }
      else
        host = ak_xstrdup (p.text);
    }
  if (port != NULL && parse_ports (port, &p, p.text, err) < 0)
    goto fail;
  if (parse_addr (host, &p, p.text, &is_addr, err) < 0)
    goto fail;
  if (!is_addr)
    {
      char *h = host;
      size_t hl = strlen (h);
      if (hl > 0 && h[hl - 1] == '.')
        h[--hl] = '\0';
      for (size_t i = 0; i < hl; i++)
        h[i] = (char) tolower ((unsigned char) h[i]);
      if (strncmp (h, "*.", 2) == 0)
        {
          p.kind = AK_NETPAT_WILDCARD;
          h += 2;
        }
      else
        p.kind = AK_NETPAT_NAME;
      if (!name_valid (h))
        {
          if (strchr (h, '*') != NULL)
            ak_error_set (err, 0,
                          "'%s': a wildcard is written '*.example.com' (one leading '*.', "
                          "matching the names under example.com)",
                          p.text);
          else
            ak_error_set (err, 0,
                          "'%s': not a host name, wildcard, address or CIDR (a name is labels of "
                          "letters, digits, '-' and '_' separated by dots)",
                          p.text);
          goto fail;
        }
      p.name = ak_xstrdup (h);
    }
  *out = p;
  return 0;

bad_syntax:
  ak_error_set (err, 0, "'%s': expected [IPv6 address] or [IPv6 address]:PORT", p.text);
fail:
  ak_netpat_clear (&p);
  return -1;
}

void
ak_netpolicy_clear (ak_netpolicy_t *pol)
{
  for (size_t i = 0; i < pol->n_allow; i++)
    ak_netpat_clear (&pol->allow[i]);
  for (size_t i = 0; i < pol->n_block; i++)
    ak_netpat_clear (&pol->block[i]);
  free (pol->allow);
  free (pol->block);
  memset (pol, 0, sizeof (*pol));
}

static ak_netpat_t *
copy_pats (const ak_netpat_t *src, size_t n)
{
  ak_netpat_t *d;
  if (n == 0)
    return NULL;
  d = ak_xcalloc (n, sizeof (ak_netpat_t));
  for (size_t i = 0; i < n; i++)
    {
      d[i] = src[i];
      d[i].text = ak_xstrdup (src[i].text);
      d[i].name = src[i].name ? ak_xstrdup (src[i].name) : NULL;
    }
  return d;
}

void
ak_netpolicy_copy (ak_netpolicy_t *dst, const ak_netpolicy_t *src)
{
  *dst = *src;
  dst->allow = copy_pats (src->allow, src->n_allow);
  dst->block = copy_pats (src->block, src->n_block);
}

int
ak_netpolicy_add (ak_netpolicy_t *pol, ak_netlist_t list, const char *text, int source, int line,
                  ak_error_t **err)
{
  ak_netpat_t p;
  ak_netpat_t **arr = list == AK_NET_ALLOW ? &pol->allow : &pol->block;
  size_t *n = list == AK_NET_ALLOW ? &pol->n_allow : &pol->n_block;

  if (ak_netpat_parse (text, &p, err) < 0)
    return -1;
  p.source = source;
  p.line = line;
  *arr = ak_xrealloc (*arr, (*n + 1) * sizeof (ak_netpat_t));
  (*arr)[(*n)++] = p;
  return 0;
}

bool
ak_netpolicy_has_rules (const ak_netpolicy_t *pol)
{
  return pol->allowlist_only || pol->n_allow > 0 || pol->n_block > 0;
}

/* port 0: any port (a lookup).  A block rule then applies only when it
 * covers every port; an allow rule whenever it names the name. */
static bool
port_match (const ak_netpat_t *p, unsigned port, bool blocking)
{
  if (port == 0)
    return !blocking || (p->port_lo <= 1 && p->port_hi == 65535);
  return port >= p->port_lo && port <= p->port_hi;
}

static bool
name_match (const ak_netpat_t *p, const char *name)
{
  size_t n = strlen (name), m;

  if (n > 0 && name[n - 1] == '.')
    n--;
  if (p->kind == AK_NETPAT_NAME)
    return strlen (p->name) == n && strncasecmp (p->name, name, n) == 0;
  if (p->kind != AK_NETPAT_WILDCARD)
    return false;
  m = strlen (p->name);
  /* At least one label before the suffix: never the apex itself. */
  return n > m + 1 && name[n - m - 1] == '.' && strncasecmp (name + n - m, p->name, m) == 0;
}

static bool
match_name (const ak_netpat_t *p, const char *name, unsigned port, bool blocking)
{
  return port_match (p, port, blocking) && name_match (p, name);
}

bool
ak_netpat_match_name (const ak_netpat_t *p, const char *name, unsigned port)
{
  return match_name (p, name, port, false);
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address. */
static void
normalise (int *family, const uint8_t **addr)
{
  static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  if (*family == AF_INET6 && memcmp (*addr, mapped, 12) == 0)
    {
      *family = AF_INET;
      *addr += 12;
    }
}

static bool
match_addr (const ak_netpat_t *p, int family, const void *addr, unsigned port, bool blocking)
{
  const uint8_t *a = addr;
  uint8_t net[16];
  size_t len;

  normalise (&family, &a);
  if (p->kind != AK_NETPAT_ADDR || p->family != family || !port_match (p, port, blocking))
    return false;
  len = family == AF_INET ? 4 : 16;
  memcpy (net, a, len);
  mask_prefix (net, len, p->prefix);
  return memcmp (net, p->addr, len) == 0;
}

bool
ak_netpat_match_addr (const ak_netpat_t *p, int family, const void *addr, unsigned port)
{
  return match_addr (p, family, addr, port, false);
}

ak_netverdict_t
ak_netpolicy_check_name (const ak_netpolicy_t *pol, const char *name, unsigned port)
{
  for (size_t i = 0; i < pol->n_block; i++)
    if (match_name (&pol->block[i], name, port, true))
      return (ak_netverdict_t){ .allow = false, .rule = &pol->block[i] };
  for (size_t i = 0; i < pol->n_allow; i++)
    if (match_name (&pol->allow[i], name, port, false))
      return (ak_netverdict_t){ .allow = true, .rule = &pol->allow[i] };
  return (ak_netverdict_t){ .allow = !pol->allowlist_only, .rule = NULL };
}

const ak_netpat_t *
ak_netpolicy_addr_rule (const ak_netpolicy_t *pol, int family, const void *addr, unsigned port)
{
  for (size_t i = 0; i < pol->n_allow; i++)
    if (match_addr (&pol->allow[i], family, addr, port, false))
      return &pol->allow[i];
  return NULL;
}

ak_netverdict_t
ak_netpolicy_check_addr (const ak_netpolicy_t *pol, int family, const void *addr, unsigned port)
{
  const ak_netpat_t *r;
  for (size_t i = 0; i < pol->n_block; i++)
    if (match_addr (&pol->block[i], family, addr, port, true))
      return (ak_netverdict_t){ .allow = false, .rule = &pol->block[i] };
  r = ak_netpolicy_addr_rule (pol, family, addr, port);
  if (r != NULL)
    return (ak_netverdict_t){ .allow = true, .rule = r };
  return (ak_netverdict_t){ .allow = !pol->allowlist_only, .rule = NULL };
}

char *
ak_netverdict_describe (const ak_netverdict_t *v, bool allowlist_only)
{
  const ak_netpat_t *r = v->rule;
  if (r == NULL)
    return ak_xstrdup (v->allow ? "open network (no rule)" : "not in the allow list");
  if (r->source == AK_SRC_CONFIG && r->line > 0)
    return ak_xasprintf ("%s \"%s\" (config line %d)", v->allow ? "allow" : "block", r->text,
                         r->line);
  return ak_xasprintf ("%s \"%s\" (%s)", v->allow ? "allow" : "block", r->text,
                       ak_source_name ((ak_source_t) r->source));
}

/* ---- published ports ---- */

static bool
port_number (const char *s, size_t n, unsigned *out)
{
  unsigned long v = 0;
  if (n == 0 || n > 5)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return false;
      v = v * 10 + (unsigned long) (s[i] - '0');
    }
  if (v == 0 || v > 65535)
    return false;
  *out = (unsigned) v;
  return true;
}

int
ak_port_parse (const char *text, ak_port_t *out, ak_error_t **err)
{
  _cleanup_free_ char *s = ak_xstrdup (text);
  char *proto = strchr (s, '/'), *cport, *hport, *addr = NULL;
  static const char usage[] = "expected [ADDRESS:]HOSTPORT:PORT[/tcp|/udp], e.g. 8080:80";

  memset (out, 0, sizeof *out);
  if (proto != NULL)
    {
      *proto++ = '\0';
      if (strcmp (proto, "udp") == 0)
        out->udp = true;
      else if (strcmp (proto, "tcp") != 0)
        return ak_error_set (err, 0, "publish '%s': unknown protocol '%s' (tcp or udp)", text, proto);
    }
  cport = strrchr (s, ':');
  if (cport == NULL)
    return ak_error_set (err, 0, "publish '%s': %s", text, usage);
  *cport++ = '\0';
  hport = strrchr (s, ':');
  if (hport != NULL && (s[0] != '[' || hport > strchr (s, ']')))
    {
      *hport++ = '\0';
      addr = s;
    }
  else if (s[0] == '[')
    return ak_error_set (err, 0, "publish '%s': %s", text, usage);
  else
    hport = s;
  if (!port_number (hport, strlen (hport), &out->host_port))
    return ak_error_set (err, 0, "publish '%s': bad host port '%s' (1-65535)", text, hport);
  if (!port_number (cport, strlen (cport), &out->port))
    return ak_error_set (err, 0, "publish '%s': bad sandbox port '%s' (1-65535)", text, cport);
  out->family = AF_INET;
  if (addr == NULL || addr[0] == '\0')
    {
      inet_pton (AF_INET, "127.0.0.1", out->addr);
      return 0;
    }
  if (addr[0] == '[')
    {
      size_t n = strlen (addr);
      if (n < 3 || addr[n - 1] != ']')
        return ak_error_set (err, 0, "publish '%s': %s", text, usage);
      addr[n - 1] = '\0';
      addr++;
      out->family = AF_INET6;
    }
  else if (strchr (addr, ':') != NULL)
    return ak_error_set (err, 0, "publish '%s': an IPv6 address goes in brackets ([::1]:8080:80)", text);
  if (inet_pton (out->family, addr, out->addr) != 1)
    return ak_error_set (err, 0, "publish '%s': '%s' is not an IP address of the host", text, addr);
  return 0;
}

char *
ak_port_text (const ak_port_t *p)
{
  char a[INET6_ADDRSTRLEN] = "";
  inet_ntop (p->family, p->addr, a, sizeof a);
  return ak_xasprintf (p->family == AF_INET6 ? "[%s]:%u:%u/%s" : "%s:%u:%u/%s", a, p->host_port, p->port,
                       p->udp ? "udp" : "tcp");
}
