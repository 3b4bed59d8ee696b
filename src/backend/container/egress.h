/* The egress policy's process (egress.c, egress_http.c): serves the
 * listeners that the sandbox's network namespace redirects every TCP
 * connection and DNS query to, from outside, and decides each against the
 * policy. */
#ifndef AK_EGRESS_H
#define AK_EGRESS_H

#include <netinet/in.h>

#include "model/netpolicy.h"

typedef struct ak_egress_conf {
  const ak_netpolicy_t *pol;
  const char *sandbox;  /* its name in audit entries, or NULL */
  int tcp[2];           /* listening TCP sockets in the sandbox's namespace (IPv4, IPv6; -1: none) */
  int dns[2];           /* UDP sockets of the resolver there (IPv4, IPv6; -1: none) */
  int stop_fd;          /* readable or hung up: exit */
  struct in_addr nameserver; /* the resolver's address inside */
} ak_egress_conf_t;

/* Serves until stop_fd says so, then exits the process. */
_Noreturn void ak_egress_serve (const ak_egress_conf_t *c);

#endif
