/* Internals shared by the egress policy's files (egress.c: addresses and
 * names, DNS, a connection from the redirect to its relay; egress_http.c:
 * HTTP requests followed one by one, the upstream's switch of protocols,
 * and the proxy).  Not part of the public API. */
#ifndef AK_EGRESS_PRIVATE_H
#define AK_EGRESS_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/container/egress.h"
#include "model/netpolicy.h"

#define SNIFF_MAX 32768
#define MAX_ADDRS 16
/* How long a client that reached an address no resolved name led to has
 * to say which name it wants (TLS or HTTP) before it is refused. */
#define NAME_WAIT_MS 10000

/* What ak_egress_serve serves. */
extern const ak_egress_conf_t *egress_conf;

typedef struct addr {
  int family;
  uint8_t a[16];
} addr_t;

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

/* Which protocol a client's first bytes spoke (egress_sniff). */
enum { KIND_OTHER = 0, KIND_TLS = 1, KIND_HTTP = 2 };

/* Reads the upstream's first status line(s) as they pass. */
typedef struct status_scan {
  uint8_t line[12]; /* "HTTP/1.1 101" */
  size_t line_len;
  bool skipping;    /* through an interim head, to its blank line */
  uint32_t tail;    /* its last four bytes */
} status_scan_t;

/* The policy on addresses and names, the audit, the connection (egress.c). */
bool egress_addr_reachable (addr_t *a, unsigned port, const char **why, ak_netverdict_t *v);
int egress_resolve (const char *name, int family, addr_t *out, size_t max);
void egress_audit (const char *event, const char *name, const addr_t *a, unsigned port, bool allow,
                   const char *rule, long long out_bytes, long long in_bytes);
char *egress_describe (const ak_netverdict_t *v);
void egress_reset (int fd);
void *egress_upstream_thread (void *arg);
int egress_connect_upstream (const addr_t *a, unsigned port);
ssize_t egress_sniff (int fd, uint8_t *buf, size_t have, size_t max, char *h1, char *h2, size_t hl,
                      int timeout_ms, int *kind);
bool egress_check_names (int cfd, judged_t *j, const char *h1, const char *h2);
long long egress_pass_on (conn_t *c, pthread_t up, judged_t *j, uint8_t *buf, ssize_t len, int kind,
                          bool one_request);

/* HTTP (egress_http.c). */
/* What passed from the upstream, read for c's first status. */
void egress_status_scan (conn_t *c, status_scan_t *s, const uint8_t *d, size_t n);
/* The upstream ended (or failed) before c's first status was known. */
void egress_status_end (conn_t *c);
/* Relays the client's HTTP/1 stream (first[0..first_len) read already)
 * to c's upstream request by request; *refused when one was refused.
 * Returns the bytes read from the client. */
long long egress_http_relay (conn_t *c, judged_t *j, const uint8_t *first, size_t first_len,
                             bool one_request, bool *refused);
/* A connection to the proxy's port, served to its end. */
void egress_proxy_handle (int cfd, judged_t *j);

#endif
