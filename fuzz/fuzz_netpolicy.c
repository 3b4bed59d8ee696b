/* libFuzzer target for what the egress policy reads from a sandbox and
 * from its rules: arbitrary bytes as a TLS ClientHello, an HTTP request,
 * a DNS query (and the answer built to it), an HTTP request head's framing
 * and a chunk-size line, and as a host pattern and a published port.
 * Beyond the sanitizers, it checks that a name found is a plain lower-case
 * host name within its buffer, that an answer echoes the question, and
 * that an accepted pattern matches consistently. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "backend/container/sniff.h"
#include "common/util.h"
#include "model/netpolicy.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_name (const char *n, size_t cap)
{
  size_t len = strnlen (n, cap);
  check (len < cap, "name terminated");
  for (size_t i = 0; i < len; i++)
    check ((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_'
               || n[i] == '.' || n[i] == ':',
           "name of host-name bytes");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char h1[64], h2[64];
  ak_dns_query_t q;
  uint8_t out[2048];
  static const uint8_t addrs[8] = { 192, 0, 2, 1, 192, 0, 2, 2 };

  if (ak_sniff_tls_sni (data, size, h1, sizeof h1) == AK_SNIFF_FOUND)
    check_name (h1, sizeof h1);
  if (ak_sniff_http_host (data, size, h1, sizeof h1, h2, sizeof h2) == AK_SNIFF_FOUND)
    {
      check_name (h1, sizeof h1);
      check_name (h2, sizeof h2);
    }
  {
    ak_http_req_t r;
    unsigned long long n;
    if (ak_http_parse_req (data, size, &r) == 0)
      {
        check (r.method_len > 0 && r.target_off == r.method_len + 1, "method before target");
        check (r.target_off + r.target_len < r.line_end && r.line_end <= size, "request line within the head");
        check (r.body <= AK_HTTP_BODY_CHUNKED, "a framing");
      }
    if (ak_http_chunk_size (data, size, &n) == 0)
      check (size > 0 && n < (1ULL << 60), "a chunk size of at most 15 hex digits");
  }
  if (ak_dns_parse_query (data, size, &q) == 0)
    {
      size_t n = ak_dns_build_reply (data, &q, 0, addrs, 2, 4, 30, out, sizeof out);
      check (q.question_end <= size, "question within the query");
      check (n == 0 || memcmp (out + 12, data + 12, q.question_end - 12) == 0, "question echoed");
    }
  if (size < 300)
    {
      char *text = ak_xstrndup ((const char *) data, size);
      ak_netpat_t p;
      ak_error_t *err = NULL;
      if (ak_netpat_parse (text, &p, &err) == 0)
        {
          check (p.port_lo <= p.port_hi && p.port_hi <= 65535, "port range");
          if (p.kind == AK_NETPAT_NAME)
            check (ak_netpat_match_name (&p, p.name, 0), "a name matches itself");
          if (p.kind == AK_NETPAT_WILDCARD)
            check (!ak_netpat_match_name (&p, p.name, 0), "a wildcard never matches its apex");
          if (p.kind == AK_NETPAT_ADDR)
            check (ak_netpat_match_addr (&p, p.family, p.addr, 0), "a network matches its address");
          ak_netpat_clear (&p);
        }
      else
        {
          check (err != NULL, "error message");
          ak_error_free (err);
        }
      {
        ak_port_t pt, again;
        if (ak_port_parse (text, &pt, NULL) == 0)
          {
            char *canon = ak_port_text (&pt);
            check (pt.host_port >= 1 && pt.host_port <= 65535 && pt.port >= 1 && pt.port <= 65535,
                   "ports in range");
            check (ak_port_parse (canon, &again, NULL) == 0 && memcmp (&pt, &again, sizeof pt) == 0,
                   "the canonical text parses to the same port");
            free (canon);
          }
      }
      free (text);
    }
  return 0;
}
