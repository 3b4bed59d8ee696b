/* The local user at the other end of a server connection.
 *
 * A server without an API key runs commands with all of its user's rights,
 * so it must serve that user alone: any other local user can connect to a
 * loopback port.  For TCP the kernel's socket table (NETLINK_SOCK_DIAG)
 * tells which uid owns the client's socket; for a Unix socket, SO_PEERCRED.
 */
#ifndef AK_SERVER_PEER_H
#define AK_SERVER_PEER_H

#include <sys/types.h>

#include "common/error.h"

/* The uid of the process that owns the other end of connected socket fd.
 * Fails (-1, *err set) when it cannot be told, e.g. a peer on another host:
 * callers treat that as a stranger. */
int ak_peer_uid (int fd, uid_t *uid, ak_error_t **err);

#endif
