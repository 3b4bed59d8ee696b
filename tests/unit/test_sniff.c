/* The egress policy's parsers of untrusted bytes: TLS server name, HTTP
 * Host, DNS queries and answers. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/container/sniff.h"

static size_t
put16 (uint8_t *p, size_t v)
{
  p[0] = (uint8_t) (v >> 8), p[1] = (uint8_t) v;
  return 2;
}

/* A ClientHello carrying `sni` (none when NULL), in records of at most
 * `frag` bytes of handshake each. */
static size_t
client_hello (const char *sni, size_t frag, uint8_t *out)
{
  uint8_t hs[512], *p = hs + 4;
  size_t n, hl, o = 0, off = 0;

  *p++ = 3, *p++ = 3;
  memset (p, 0x11, 32), p += 32;
  *p++ = 0;                            /* session id */
  p += put16 (p, 2), *p++ = 0x13, *p++ = 1; /* one cipher suite */
  *p++ = 1, *p++ = 0;                  /* null compression */
  {
    uint8_t *ext_len = p, *e;
    p += 2;
    e = p;
    /* An unrelated extension first. */
    p += put16 (p, 0x000a), p += put16 (p, 4), p += put16 (p, 2), p += put16 (p, 0x001d);
    if (sni != NULL)
      {
        n = strlen (sni);
        p += put16 (p, 0), p += put16 (p, n + 5), p += put16 (p, n + 3);
        *p++ = 0;
        p += put16 (p, n);
        memcpy (p, sni, n), p += n;
      }
    put16 (ext_len, (size_t) (p - e));
  }
  hl = (size_t) (p - hs);
  hs[0] = 1, hs[1] = 0;
  put16 (hs + 2, hl - 4);
  while (off < hl)
    {
      size_t k = hl - off < frag ? hl - off : frag;
      out[o++] = 0x16, out[o++] = 3, out[o++] = 1;
      o += put16 (out + o, k);
      memcpy (out + o, hs + off, k);
      o += k, off += k;
    }
  return o;
}

static void
test_tls (void **state)
{
  uint8_t b[1024];
  char name[256];
  size_t n;
  (void) state;

  n = client_hello ("Api.Example.COM", 4096, b);
  assert_int_equal (ak_sniff_tls_sni (b, n, name, sizeof name), AK_SNIFF_FOUND);
  assert_string_equal (name, "api.example.com");
  /* Every prefix asks for more; none is mistaken for a name. */
  for (size_t i = 0; i < n; i++)
    assert_int_equal (ak_sniff_tls_sni (b, i, name, sizeof name), AK_SNIFF_MORE);
  /* Split over several records. */
  n = client_hello ("split.example", 7, b);
  assert_int_equal (ak_sniff_tls_sni (b, n, name, sizeof name), AK_SNIFF_FOUND);
  assert_string_equal (name, "split.example");
  n = client_hello (NULL, 4096, b);
  assert_int_equal (ak_sniff_tls_sni (b, n, name, sizeof name), AK_SNIFF_NONE);
  /* A name with bytes no host name has is no name. */
  n = client_hello ("evil.example\r\nX", 4096, b);
  assert_int_equal (ak_sniff_tls_sni (b, n, name, sizeof name), AK_SNIFF_NONE);
  /* Too long for the caller's buffer. */
  n = client_hello ("a-long-name.example", 4096, b);
  assert_int_equal (ak_sniff_tls_sni (b, n, name, 8), AK_SNIFF_NONE);
  assert_int_equal (ak_sniff_tls_sni ((const uint8_t *) "GET / HTTP/1.1\r\n", 16, name, sizeof name),
                    AK_SNIFF_OTHER);
  assert_int_equal (ak_sniff_tls_sni ((const uint8_t *) "SSH-2.0-x", 9, name, sizeof name),
                    AK_SNIFF_OTHER);
  /* A lying extension length stays inside the buffer. */
  n = client_hello ("x.example", 4096, b);
  b[n - 12] = 0xff;
  (void) ak_sniff_tls_sni (b, n, name, sizeof name);
}

static ak_sniff_t
http (const char *req, char *h1, char *h2)
{
  return ak_sniff_http_host ((const uint8_t *) req, strlen (req), h1, 256, h2, 256);
}

static void
test_http (void **state)
{
  char h1[256], h2[256];
  (void) state;

  assert_int_equal (http ("GET / HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n\r\n", h1, h2),
                    AK_SNIFF_FOUND);
  assert_string_equal (h1, "example.com");
  assert_string_equal (h2, "");
  assert_int_equal (http ("GET / HTTP/1.1\r\nhost:[2001:db8::1]:80\r\n\r\n", h1, h2), AK_SNIFF_FOUND);
  assert_string_equal (h1, "2001:db8::1");
  assert_int_equal (http ("GET http://user@other.example:81/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
                          h1, h2),
                    AK_SNIFF_FOUND);
  assert_string_equal (h1, "a.example");
  assert_string_equal (h2, "other.example");
  assert_int_equal (http ("CONNECT tunnel.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n", h1, h2),
                    AK_SNIFF_FOUND);
  assert_string_equal (h2, "tunnel.example");
  assert_int_equal (http ("GET / HTTP/1.1\r\nHost: a.example\r\n", h1, h2), AK_SNIFF_MORE);
  assert_int_equal (http ("GE", h1, h2), AK_SNIFF_MORE);
  assert_int_equal (http ("GET / HTTP/1.0\r\n\r\n", h1, h2), AK_SNIFF_NONE);
  /* Two Host headers: refused rather than guessed. */
  assert_int_equal (http ("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", h1, h2),
                    AK_SNIFF_NONE);
  assert_int_equal (http ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", h1, h2), AK_SNIFF_NONE);
  /* Any token is a method to some server: judged as HTTP, never passed as
   * something else. */
  assert_int_equal (http ("get / HTTP/1.1\r\n\r\n", h1, h2), AK_SNIFF_NONE);
  assert_int_equal (http ("GET_X / HTTP/1.1\r\nHost: b.example\r\n\r\n", h1, h2), AK_SNIFF_FOUND);
  assert_string_equal (h1, "b.example");
  /* Empty lines before the request line are skipped, as servers do. */
  assert_int_equal (http ("\r\n\r\nGET / HTTP/1.1\r\nHost: b.example\r\n\r\n", h1, h2), AK_SNIFF_FOUND);
  assert_string_equal (h1, "b.example");
  assert_int_equal (http ("\r\n", h1, h2), AK_SNIFF_MORE);
  assert_int_equal (http ("SSH-2.0-OpenSSH_9.2\r\n", h1, h2), AK_SNIFF_OTHER);
  assert_int_equal (http ("\x16\x03\x01", h1, h2), AK_SNIFF_OTHER);
}

static int
req (const char *head, ak_http_req_t *r)
{
  return ak_http_parse_req ((const uint8_t *) head, strlen (head), r);
}

static void
test_http_framing (void **state)
{
  ak_http_req_t r;
  unsigned long long n;
  (void) state;

  assert_int_equal (req ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
  assert_int_equal (r.body, AK_HTTP_BODY_NONE);
  assert_int_equal (r.method_len, 3);
  assert_int_equal (r.target_len, 1);
  assert_false (r.upgrade);
  assert_int_equal (req ("POST /x HTTP/1.1\r\nContent-Length: 12\r\ncontent-length:12\r\n\r\n", &r), 0);
  assert_int_equal (r.body, AK_HTTP_BODY_LENGTH);
  assert_int_equal (r.length, 12);
  assert_int_equal (req ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 0);
  assert_int_equal (r.body, AK_HTTP_BODY_CHUNKED);
  assert_int_equal (req ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &r), 0);
  assert_true (r.upgrade);
  assert_int_equal (req ("CONNECT a:443 HTTP/1.1\r\n\r\n", &r), 0);
  assert_true (r.upgrade);
  /* What servers read differently is refused. */
  assert_int_equal (req ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r), -1);
  assert_int_equal (req ("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), -1);
  assert_int_equal (req ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &r), -1);
  assert_int_equal (req ("POST / HTTP/1.1\r\nContent-Length : 1\r\n\r\n", &r), -1);
  assert_int_equal (req ("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", &r), -1);
  assert_int_equal (req ("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", &r), -1);
  assert_int_equal (req ("GET / HTTP/1.1\r\nHost: a\r\n", &r), -1);
  assert_int_equal (req ("GET /\r\n\r\n", &r), -1);
  assert_int_equal (ak_http_chunk_size ((const uint8_t *) "1A;x=y", 6, &n), 0);
  assert_int_equal (n, 26);
  assert_int_equal (ak_http_chunk_size ((const uint8_t *) "0", 1, &n), 0);
  assert_int_equal (n, 0);
  assert_int_equal (ak_http_chunk_size ((const uint8_t *) "", 0, &n), -1);
  assert_int_equal (ak_http_chunk_size ((const uint8_t *) " 1", 2, &n), -1);
  assert_int_equal (ak_http_chunk_size ((const uint8_t *) "1 ", 2, &n), -1);
  assert_int_equal (ak_http_chunk_size ((const uint8_t *) "ffffffffffffffffff", 18, &n), -1);
}

static void
test_dns (void **state)
{
  static const uint8_t q[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'W', 'w', 'W',
                               7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1 };
  static const uint8_t addrs[8] = { 198, 51, 100, 10, 198, 51, 100, 11 };
  uint8_t bad[sizeof q], out[512];
  ak_dns_query_t d;
  size_t n;
  (void) state;

  assert_int_equal (ak_dns_parse_query (q, sizeof q, &d), 0);
  assert_string_equal (d.name, "www.example");
  assert_int_equal (d.qtype, 1);
  assert_int_equal (d.id, 0x1234);
  for (size_t i = 0; i < sizeof q; i++)
    assert_int_equal (ak_dns_parse_query (q, i, &d), -1);
  memcpy (bad, q, sizeof q);
  bad[2] |= 0x80; /* a response */
  assert_int_equal (ak_dns_parse_query (bad, sizeof q, &d), -1);
  memcpy (bad, q, sizeof q);
  bad[12] = 0xc0; /* compression in a question */
  assert_int_equal (ak_dns_parse_query (bad, sizeof q, &d), -1);
  memcpy (bad, q, sizeof q);
  bad[14] = '.';
  assert_int_equal (ak_dns_parse_query (bad, sizeof q, &d), -1);

  assert_int_equal (ak_dns_parse_query (q, sizeof q, &d), 0);
  n = ak_dns_build_reply (q, &d, AK_DNS_NOERROR, addrs, 2, 4, 30, out, sizeof out);
  assert_int_equal (n, sizeof q + 2 * 16);
  assert_int_equal (out[2] & 0x80, 0x80);
  assert_int_equal (out[7], 2);
  assert_memory_equal (out + n - 4, addrs + 4, 4);
  n = ak_dns_build_reply (q, &d, AK_DNS_NXDOMAIN, NULL, 0, 4, 30, out, sizeof out);
  assert_int_equal (n, sizeof q);
  assert_int_equal (out[3] & 0xf, 3);
  assert_int_equal (ak_dns_build_reply (q, &d, 0, addrs, 2, 4, 30, out, sizeof q + 10), 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_tls),
    cmocka_unit_test (test_http),
    cmocka_unit_test (test_http_framing),
    cmocka_unit_test (test_dns),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
