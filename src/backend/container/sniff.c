/* Parsers of the egress policy (see sniff.h). */
#define _GNU_SOURCE
#include "backend/container/sniff.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/util.h"

static uint16_t
be16 (const uint8_t *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}

/* Copies a name of n bytes, lower case; false when it is not a plain host
 * name (so that no byte of it can mean anything to a later step). */
static bool
copy_name (const uint8_t *s, size_t n, char *out, size_t out_len)
{
  if (n == 0 || n >= out_len)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = s[i];
      if (!(isalnum (c) || c == '-' || c == '_' || c == '.' || c == ':'))
        return false;
      out[i] = (char) tolower (c);
    }
  out[n] = '\0';
  return true;
}

/* The handshake bytes of consecutive handshake records, up to the whole
 * first message; ClientHellos larger than one record are split. */
#define HS_MAX 32768

static ak_sniff_t
tls_sni (const uint8_t *buf, size_t len, uint8_t *hs, char *out, size_t out_len)
{
  size_t hs_len = 0, off = 0, need = 0, p, end;

  /* Gather handshake fragments until the ClientHello is whole. */
  for (;;)
    {
      size_t rl;
      if (off + 5 > len)
        return AK_SNIFF_MORE;
      if (buf[off] != 0x16)
        return AK_SNIFF_NONE;
      rl = be16 (buf + off + 3);
      if (rl == 0 || rl > 16384 + 2048)
        return AK_SNIFF_NONE;
      if (off + 5 + rl > len)
        {
          /* Take what there is: the hello may already be complete. */
          rl = len - off - 5;
          if (hs_len + rl > HS_MAX)
            return AK_SNIFF_NONE;
          memcpy (hs + hs_len, buf + off + 5, rl);
          hs_len += rl;
          if (hs_len >= 4)
            need = 4 + ((size_t) hs[1] << 16 | (size_t) hs[2] << 8 | hs[3]);
          if (hs_len >= 4 && hs_len >= need)
            break;
          return AK_SNIFF_MORE;
        }
      if (hs_len + rl > HS_MAX)
        return AK_SNIFF_NONE;
      memcpy (hs + hs_len, buf + off + 5, rl);
      hs_len += rl;
      off += 5 + rl;
      if (hs_len >= 4)
        {
          need = 4 + ((size_t) hs[1] << 16 | (size_t) hs[2] << 8 | hs[3]);
          if (need > HS_MAX)
            return AK_SNIFF_NONE;
          if (hs_len >= need)
            break;
        }
    }
  if (hs[0] != 0x01) /* ClientHello */
    return AK_SNIFF_NONE;
  end = need;
  p = 4 + 2 + 32; /* version, random */
  if (p + 1 > end)
    return AK_SNIFF_NONE;
  p += 1 + hs[p]; /* session id */
  if (p + 2 > end)
    return AK_SNIFF_NONE;
  p += 2 + be16 (hs + p); /* cipher suites */
  if (p + 1 > end)
    return AK_SNIFF_NONE;
  p += 1 + hs[p]; /* compression methods */
  if (p + 2 > end)
    return AK_SNIFF_NONE;
  if (p + 2 + be16 (hs + p) < end)
    end = p + 2 + be16 (hs + p);
  p += 2;
  while (p + 4 <= end)
    {
      uint16_t type = be16 (hs + p), el = be16 (hs + p + 2);
      size_t q = p + 4;
      if (q + el > end)
        return AK_SNIFF_NONE;
      if (type == 0) /* server_name */
        {
          size_t lend, nl;
          if (el < 2)
            return AK_SNIFF_NONE;
          lend = q + 2 + be16 (hs + q);
          if (lend > q + el)
            return AK_SNIFF_NONE;
          q += 2;
          /* The first host_name entry; servers take no other. */
          if (q + 3 > lend || hs[q] != 0)
            return AK_SNIFF_NONE;
          nl = be16 (hs + q + 1);
          if (q + 3 + nl > lend)
            return AK_SNIFF_NONE;
          return copy_name (hs + q + 3, nl, out, out_len) ? AK_SNIFF_FOUND : AK_SNIFF_NONE;
        }
      p = q + el;
    }
  return AK_SNIFF_NONE;
}

ak_sniff_t
ak_sniff_tls_sni (const uint8_t *buf, size_t len, char *out, size_t out_len)
{
  /* On the heap: a thread-local buffer this size would be zeroed at the
   * start of every process and thread of the program. */
  _cleanup_free_ uint8_t *hs = NULL;

  if (len >= 1 && buf[0] != 0x16)
    return AK_SNIFF_OTHER;
  if (len >= 2 && buf[1] != 0x03)
    return AK_SNIFF_OTHER;
  hs = ak_xmalloc (HS_MAX);
  return tls_sni (buf, len, hs, out, out_len);
}

/* "host", "host:port", "[v6]", "[v6]:port" -> host. */
static bool
host_of (const uint8_t *s, size_t n, char *out, size_t out_len)
{
  while (n > 0 && (s[0] == ' ' || s[0] == '\t'))
    s++, n--;
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  if (n > 0 && s[0] == '[')
    {
      const uint8_t *close = memchr (s, ']', n);
      if (close == NULL)
        return false;
      return copy_name (s + 1, (size_t) (close - s - 1), out, out_len);
    }
  for (size_t i = 0; i < n; i++)
    if (s[i] == ':')
      {
        n = i;
        break;
      }
  if (n > 0 && s[n - 1] == '.')
    n--;
  return copy_name (s, n, out, out_len);
}

#define HTTP_MAX 16384

static bool
method_char (uint8_t c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
         || (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

ak_sniff_t
ak_sniff_http_host (const uint8_t *buf, size_t len, char *out, size_t out_len, char *out2,
                    size_t out2_len)
{
  const uint8_t *line, *eol, *end;
  size_t i = 0;
  bool found = false;

  out2[0] = '\0';
  /* Servers skip empty lines before a request line (RFC 9112 2.2): so does
   * this, or "\r\nGET ..." would pass as not HTTP and go unchecked. */
  while (len > 0 && (buf[0] == '\r' || buf[0] == '\n'))
    {
      if (++i > 64)
        return AK_SNIFF_OTHER;
      buf++, len--;
    }
  if (len == 0)
    return AK_SNIFF_MORE;
  i = 0;
  /* A method: a token (RFC 9110 5.6.2, as servers accept it), then a space. */
  while (i < len && i < 16 && method_char (buf[i]))
    i++;
  if (i < len && (i == 0 || buf[i] != ' ' || i >= 16))
    return AK_SNIFF_OTHER;
  if (i == len)
    return len < 16 ? AK_SNIFF_MORE : AK_SNIFF_OTHER;
  end = memmem (buf, len, "\r\n\r\n", 4);
  if (end == NULL)
    return len >= HTTP_MAX ? AK_SNIFF_NONE : AK_SNIFF_MORE;
  /* Absolute-form target: "GET http://host[:port]/path HTTP/1.1". */
  {
    const uint8_t *t = buf + i + 1, *sp = memchr (t, ' ', (size_t) (end - t));
    if (sp != NULL && sp - t > 7 && (strncasecmp ((const char *) t, "http://", 7) == 0
                                     || (sp - t > 8 && strncasecmp ((const char *) t, "https://", 8) == 0)))
      {
        const uint8_t *h = t + (t[4] == ':' ? 7 : 8), *he = h;
        while (he < sp && *he != '/' && *he != '?' && *he != '#')
          he++;
        /* userinfo@host: only the host counts. */
        for (const uint8_t *a = h; a < he; a++)
          if (*a == '@')
            h = a + 1;
        if (!host_of (h, (size_t) (he - h), out2, out2_len))
          return AK_SNIFF_NONE;
      }
    else if (sp != NULL && i == 7 && memcmp (buf, "CONNECT", 7) == 0)
      {
        if (!host_of (t, (size_t) (sp - t), out2, out2_len))
          return AK_SNIFF_NONE;
      }
  }
  line = memchr (buf, '\n', (size_t) (end - buf) + 2);
  while (line != NULL && line < end)
    {
      line++;
      eol = memchr (line, '\n', (size_t) (end + 2 - line));
      if (eol == NULL)
        break;
      if (eol - line > 5 && strncasecmp ((const char *) line, "host:", 5) == 0)
        {
          size_t n = (size_t) (eol - line - 5);
          if (n > 0 && line[5 + n - 1] == '\r')
            n--;
          /* Two Host headers: which one a server takes is its business. */
          if (found || !host_of (line + 5, n, out, out_len))
            return AK_SNIFF_NONE;
          found = true;
        }
      line = eol;
    }
  return found ? AK_SNIFF_FOUND : AK_SNIFF_NONE;
}

static bool
token_is (const uint8_t *s, size_t n, const char *word)
{
  return n == strlen (word) && strncasecmp ((const char *) s, word, n) == 0;
}

static void
trim (const uint8_t **s, size_t *n)
{
  while (*n > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t'))
    (*s)++, (*n)--;
  while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
    (*n)--;
}

/* A decimal length of at most 18 digits, nothing else. */
static int
parse_length (const uint8_t *s, size_t n, unsigned long long *out)
{
  unsigned long long v = 0;
  if (n == 0 || n > 18)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return -1;
      v = v * 10 + (unsigned long long) (s[i] - '0');
    }
  *out = v;
  return 0;
}

int
ak_http_parse_req (const uint8_t *buf, size_t len, ak_http_req_t *r)
{
  const uint8_t *p = buf, *end = buf + len, *eol, *sp;
  bool have_len = false, have_te = false;

  memset (r, 0, sizeof *r);
  if (len < 4 || memcmp (end - 4, "\r\n\r\n", 4) != 0)
    return -1;
  eol = memmem (p, len, "\r\n", 2);
  sp = memchr (p, ' ', (size_t) (eol - p));
  if (sp == NULL || sp == p)
    return -1;
  for (const uint8_t *m = p; m < sp; m++)
    if (*m < 'A' || *m > 'Z')
      return -1;
  r->method_len = (size_t) (sp - p);
  r->target_off = r->method_len + 1;
  sp = memchr (sp + 1, ' ', (size_t) (eol - sp - 1));
  if (sp == NULL || (size_t) (sp - buf) == r->target_off || eol - sp < 9
      || memcmp (sp + 1, "HTTP/1.", 7) != 0)
    return -1;
  r->target_len = (size_t) (sp - buf) - r->target_off;
  r->line_end = (size_t) (eol - buf) + 2;
  if (token_is (buf, r->method_len, "CONNECT"))
    r->upgrade = true;
  for (p = eol + 2; p < end - 2; p = eol + 2)
    {
      const uint8_t *colon, *v;
      size_t vn;
      eol = memmem (p, (size_t) (end - p), "\r\n", 2);
      if (eol == NULL)
        return -1;
      if (p[0] == ' ' || p[0] == '\t')
        return -1; /* obsolete line folding */
      colon = memchr (p, ':', (size_t) (eol - p));
      if (colon == NULL || colon == p)
        return -1;
      for (const uint8_t *c = p; c < colon; c++)
        if (*c <= ' ' || *c >= 0x7f)
          return -1; /* "Content-Length :" and friends */
      v = colon + 1;
      vn = (size_t) (eol - v);
      trim (&v, &vn);
      if (token_is (p, (size_t) (colon - p), "content-length"))
        {
          unsigned long long l;
          if (parse_length (v, vn, &l) < 0 || (have_len && l != r->length))
            return -1;
          have_len = true;
          r->length = l;
        }
      else if (token_is (p, (size_t) (colon - p), "transfer-encoding"))
        {
          if (have_te || !token_is (v, vn, "chunked"))
            return -1;
          have_te = true;
        }
      else if (token_is (p, (size_t) (colon - p), "upgrade"))
        r->upgrade = true;
    }
  if (have_len && have_te)
    return -1;
  r->body = have_te ? AK_HTTP_BODY_CHUNKED : have_len ? AK_HTTP_BODY_LENGTH : AK_HTTP_BODY_NONE;
  return 0;
}

int
ak_http_chunk_size (const uint8_t *line, size_t len, unsigned long long *size)
{
  unsigned long long v = 0;
  size_t i = 0;

  for (; i < len && isxdigit (line[i]); i++)
    {
      if (i >= 15)
        return -1;
      v = v * 16 + (unsigned long long) (isdigit (line[i]) ? line[i] - '0' : (tolower (line[i]) - 'a' + 10));
    }
  if (i == 0 || (i < len && line[i] != ';'))
    return -1;
  for (; i < len; i++)
    if (line[i] < ' ' && line[i] != '\t')
      return -1;
  *size = v;
  return 0;
}

int
ak_dns_parse_query (const uint8_t *buf, size_t len, ak_dns_query_t *q)
{
  size_t p = 12, n = 0;

  memset (q, 0, sizeof (*q));
  if (len < 12)
    return -1;
  q->id = be16 (buf);
  q->flags = be16 (buf + 2);
  /* A query (QR 0), standard opcode, exactly one question. */
  if ((q->flags & 0x8000) != 0 || ((q->flags >> 11) & 0xf) != 0 || be16 (buf + 4) != 1)
    return -1;
  for (;;)
    {
      size_t l;
      if (p >= len)
        return -1;
      l = buf[p++];
      if (l == 0)
        break;
      /* No compression in a question; labels of 1-63 bytes. */
      if (l > 63 || p + l > len || n + l + 1 >= sizeof q->name)
        return -1;
      if (n > 0)
        q->name[n++] = '.';
      for (size_t i = 0; i < l; i++)
        {
          unsigned char c = buf[p + i];
          if (!(isalnum (c) || c == '-' || c == '_'))
            return -1;
          q->name[n++] = (char) tolower (c);
        }
      p += l;
    }
  q->name[n] = '\0';
  if (p + 4 > len || n == 0)
    return -1;
  q->qtype = be16 (buf + p);
  q->qclass = be16 (buf + p + 2);
  q->question_end = p + 4;
  return 0;
}

size_t
ak_dns_build_reply (const uint8_t *query, const ak_dns_query_t *q, int rcode, const uint8_t *addrs,
                    size_t n, size_t addr_len, uint32_t ttl, uint8_t *out, size_t out_len)
{
  size_t p = q->question_end;
  uint16_t flags = (uint16_t) (0x8000 | (q->flags & 0x0100) | 0x0080 | (rcode & 0xf));

  if (p > out_len)
    return 0;
  memcpy (out, query, p);
  out[2] = (uint8_t) (flags >> 8);
  out[3] = (uint8_t) flags;
  out[4] = 0, out[5] = 1; /* one question */
  out[6] = (uint8_t) (n >> 8), out[7] = (uint8_t) n;
  memset (out + 8, 0, 4); /* no authority, no additional records */
  for (size_t i = 0; i < n; i++)
    {
      if (p + 12 + addr_len > out_len)
        return 0;
      out[p++] = 0xc0, out[p++] = 0x0c; /* the question's name */
      out[p++] = 0, out[p++] = addr_len == 4 ? 1 : 28;
      out[p++] = 0, out[p++] = 1;
      out[p++] = (uint8_t) (ttl >> 24), out[p++] = (uint8_t) (ttl >> 16);
      out[p++] = (uint8_t) (ttl >> 8), out[p++] = (uint8_t) ttl;
      out[p++] = 0, out[p++] = (uint8_t) addr_len;
      memcpy (out + p, addrs + i * addr_len, addr_len);
      p += addr_len;
    }
  return p;
}
