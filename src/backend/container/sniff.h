/* What the egress policy reads of a sandbox's traffic, as pure parsers of
 * untrusted bytes: the server name of a TLS ClientHello, the Host of an
 * HTTP request, a DNS query and its answer.  No allocation, no side
 * effects; every length is checked against the buffer. */
#ifndef AK_SNIFF_H
#define AK_SNIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ak_sniff {
  AK_SNIFF_MORE = 0,  /* could be this protocol: more bytes are needed */
  AK_SNIFF_FOUND = 1, /* the name is in out */
  AK_SNIFF_NONE = 2,  /* this protocol, but no name in it (or malformed) */
  AK_SNIFF_OTHER = 3, /* not this protocol */
} ak_sniff_t;

/* The first bytes a client sent.  The name is copied into out (NUL
 * terminated, lower case); a name that does not fit, or holds bytes other
 * than letters, digits, '-', '_' and '.', is AK_SNIFF_NONE. */
ak_sniff_t ak_sniff_tls_sni (const uint8_t *buf, size_t len, char *out, size_t out_len);
/* The Host header of an HTTP/1 request (its port and any brackets of an
 * IPv6 literal removed); with an absolute-form target ("GET http://h/"),
 * that host too, in out2 (empty when there is none). */
ak_sniff_t ak_sniff_http_host (const uint8_t *buf, size_t len, char *out, size_t out_len,
                               char *out2, size_t out2_len);

/* The framing of an HTTP/1 request whose complete head (request line,
 * header lines and the blank line) is buf[0..len): what follows the head
 * before the next request.  Strict where servers differ (request
 * smuggling): returns -1 for two Content-Length values that differ, both
 * Content-Length and Transfer-Encoding, a Transfer-Encoding other than
 * "chunked" alone, a folded header line, a malformed length. */
typedef enum ak_http_body {
  AK_HTTP_BODY_NONE = 0,
  AK_HTTP_BODY_LENGTH = 1,
  AK_HTTP_BODY_CHUNKED = 2,
} ak_http_body_t;

typedef struct ak_http_req {
  ak_http_body_t body;
  unsigned long long length; /* AK_HTTP_BODY_LENGTH */
  bool upgrade;              /* an Upgrade header or a CONNECT: another protocol may follow */
  size_t method_len;         /* the method is buf[0..method_len) */
  size_t target_off, target_len; /* the request target */
  size_t line_end;           /* offset just past the request line's "\r\n" */
} ak_http_req_t;

int ak_http_parse_req (const uint8_t *buf, size_t len, ak_http_req_t *r);

/* A chunk-size line without its "\r\n" (hex digits, then an optional
 * ";extension"): 0 and the size, or -1. */
int ak_http_chunk_size (const uint8_t *line, size_t len, unsigned long long *size);

/* A DNS query with one question: its name (lower case, no trailing dot),
 * type and class.  Returns 0, or -1 when the bytes are no such query. */
typedef struct ak_dns_query {
  uint16_t id, flags, qtype, qclass;
  char name[256];
  size_t question_end; /* offset just past the question */
} ak_dns_query_t;

int ak_dns_parse_query (const uint8_t *buf, size_t len, ak_dns_query_t *q);

#define AK_DNS_NOERROR 0
#define AK_DNS_FORMERR 1
#define AK_DNS_SERVFAIL 2
#define AK_DNS_NXDOMAIN 3
#define AK_DNS_NOTIMP 4
#define AK_DNS_REFUSED 5

/* The answer to q (whose bytes are in query): rcode, and n addresses of
 * addr_len bytes each (4: A records, 16: AAAA) with ttl.  Returns the
 * length written to out, or 0 when it does not fit. */
size_t ak_dns_build_reply (const uint8_t *query, const ak_dns_query_t *q, int rcode,
                           const uint8_t *addrs, size_t n, size_t addr_len, uint32_t ttl,
                           uint8_t *out, size_t out_len);

#endif
