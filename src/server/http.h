/* The HTTP API server (`agentkernel serve`).
 *
 * libmicrohttpd parses HTTP; each connection gets its own thread, so a
 * request may block while its command runs.  Every response is JSON
 * {"success": true, "data": ...} or {"success": false, "error": "..."},
 * except POST /run/stream, which is Server-Sent Events.  Endpoints are thin
 * layers over the library (core/sandbox.h, core/detached.h, core/audit.h).
 */
#ifndef AK_SERVER_HTTP_H
#define AK_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

typedef struct ak_http_opts {
  const char *host;            /* address to bind (default 127.0.0.1) */
  const char *socket_path;     /* a Unix socket (0600) instead of host and port */
  unsigned port;               /* 0: any free port */
  const char *api_key;         /* NULL: no authentication (loopback only) */
  size_t max_body;             /* bytes of a request body */
  size_t max_header;           /* bytes of a request's line and headers */
  unsigned max_connections;    /* connections served at once */
  unsigned idle_timeout;       /* s without a byte from the client */
  unsigned body_timeout;       /* s to receive a whole request body */
  unsigned command_timeout;    /* s a command may run; 0: no limit */
  unsigned max_runs;           /* new sandboxes (run, batch) at once */
  unsigned reap_interval;      /* s between sweeps of expired sandboxes */
} ak_http_opts_t;

void ak_http_opts_default (ak_http_opts_t *o);

/* Serves until SIGINT or SIGTERM.  Refuses a non-loopback address without
 * an API key.  Prints "listening on http://HOST:PORT" on stderr once
 * ready. */
int ak_http_serve (const ak_http_opts_t *o, ak_error_t **err);

#endif
