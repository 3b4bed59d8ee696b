/* The network policy of a sandbox ([security.domains], --allow-host,
 * --block-host): its pattern grammar and its verdicts, as pure code.
 *
 * A pattern is one of
 *   example.com           that name only
 *   *.example.com         names under it, never the apex
 *   192.0.2.7, 2001:db8::1, 10.20.0.0/16, 2001:db8::/32   an address or CIDR
 * each optionally followed by :PORT or :PORT-PORT (an IPv6 address with a
 * port is written in brackets: [2001:db8::1]:443).  Without a port a
 * pattern covers every port.
 *
 * Verdicts: a block rule wins over an allow rule; with allowlist_only only
 * what an allow rule names is reached, else everything but what a block
 * rule names.  Names match name patterns only and addresses address
 * patterns only: an IP literal is allowed only by an IP/CIDR rule.
 *
 * Ownership: a policy owns its patterns; ak_netpolicy_clear() frees them.
 */
#ifndef AK_NETPOLICY_H
#define AK_NETPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef enum ak_netpat_kind {
  AK_NETPAT_NAME = 0,
  AK_NETPAT_WILDCARD,
  AK_NETPAT_ADDR,
} ak_netpat_kind_t;

typedef struct ak_netpat {
  char *text; /* as written (trimmed) */
  ak_netpat_kind_t kind;
  char *name;        /* NAME: the name; WILDCARD: the suffix after "*."; lower case */
  int family;        /* ADDR: AF_INET or AF_INET6 */
  uint8_t addr[16];  /* ADDR: network address (host bits cleared) */
  unsigned prefix;   /* ADDR: prefix length */
  unsigned port_lo, port_hi; /* 1-65535; 0-65535 when no port was given */
  int source;        /* ak_source_t of spec.h: where it came from */
  int line;          /* config line when it came from a config file */
} ak_netpat_t;

typedef struct ak_netpolicy {
  ak_netpat_t *allow;
  size_t n_allow;
  ak_netpat_t *block;
  size_t n_block;
  bool allowlist_only;
  int allowlist_source; /* ak_source_t; AK_SRC_DEFAULT when never set */
  int allowlist_line;
} ak_netpolicy_t;

/* The policy's HTTP proxy inside a sandbox with network on (the
 * resolver's address, TCP): HTTP_PROXY, HTTPS_PROXY and ALL_PROXY point
 * at it when rules are in force. */
#define AK_NET_PROXY_ADDR "10.0.2.3"
#define AK_NET_PROXY_PORT 3128
#define AK_NET_PROXY_URL "http://10.0.2.3:3128"
#define AK_NET_NO_PROXY "localhost,127.0.0.1,::1,10.0.2.100"

typedef enum ak_netlist { AK_NET_ALLOW = 0, AK_NET_BLOCK = 1 } ak_netlist_t;

/* Parses one pattern into *out (owned by the caller: ak_netpat_clear).
 * On a malformed pattern fails with a message saying what is wrong. */
int ak_netpat_parse (const char *text, ak_netpat_t *out, ak_error_t **err);
void ak_netpat_clear (ak_netpat_t *p);

void ak_netpolicy_clear (ak_netpolicy_t *pol);
/* Deep copy of src into dst (dst uninitialised). */
void ak_netpolicy_copy (ak_netpolicy_t *dst, const ak_netpolicy_t *src);
/* Parses `text` and appends it to the list, recording source and line.
 * The error names only the pattern; callers add file and line. */
int ak_netpolicy_add (ak_netpolicy_t *pol, ak_netlist_t list, const char *text, int source,
                      int line, ak_error_t **err);
/* Whether the policy says anything at all (a rule or allowlist mode). */
bool ak_netpolicy_has_rules (const ak_netpolicy_t *pol);

/* A verdict and the rule that decided it (NULL: the default of the mode). */
typedef struct ak_netverdict {
  bool allow;
  const ak_netpat_t *rule;
} ak_netverdict_t;

/* Verdict for a connection to `name` on `port` (1-65535), or for a name
 * lookup when port is 0: a lookup is denied by a block rule covering every
 * port, and in allowlist mode allowed by any allow rule naming the name.
 * `name` is compared case-insensitively, a trailing dot ignored. */
ak_netverdict_t ak_netpolicy_check_name (const ak_netpolicy_t *pol, const char *name,
                                         unsigned port);
/* Verdict for a connection to an address (family AF_INET/AF_INET6, addr in
 * network order) on `port`, judged by IP/CIDR rules only.  An IPv4-mapped
 * IPv6 address is judged as the IPv4 address. */
ak_netverdict_t ak_netpolicy_check_addr (const ak_netpolicy_t *pol, int family,
                                         const void *addr, unsigned port);
/* Whether an allow rule names this address (for reach to private ranges,
 * which only an explicit IP rule opens). */
const ak_netpat_t *ak_netpolicy_addr_rule (const ak_netpolicy_t *pol, int family,
                                           const void *addr, unsigned port);

/* Whether a pattern matches a name / an address on a port (0: any). */
bool ak_netpat_match_name (const ak_netpat_t *p, const char *name, unsigned port);
bool ak_netpat_match_addr (const ak_netpat_t *p, int family, const void *addr, unsigned port);

/* Where a rule came from, for messages and the audit log: "config line 12",
 * "cli", "api", "default allow (open network)", "not in the allow list". */
char *ak_netverdict_describe (const ak_netverdict_t *v, bool allowlist_only);

/* A published port (-p/--publish, [network] ports, the API's and MCP's
 * ports): [ADDR:]HOSTPORT:PORT[/tcp|/udp].  ADDR is an IPv4 or IPv6
 * address (in brackets with a port after it), 127.0.0.1 when absent. */
typedef struct ak_port {
  int family; /* of addr: AF_INET or AF_INET6 */
  uint8_t addr[16];
  unsigned host_port, port;
  bool udp;
} ak_port_t;

int ak_port_parse (const char *text, ak_port_t *out, ak_error_t **err);
/* The canonical text: "127.0.0.1:8080:80/tcp", "[::1]:53:53/udp". */
char *ak_port_text (const ak_port_t *p);

#endif
