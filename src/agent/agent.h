/* The in-sandbox agent: PID 1 of a persistent sandbox.
 *
 * It serves the framed protocol (proto/proto.h) on a listening socket that
 * was bound outside the sandbox and handed in as a descriptor: no path
 * inside the sandbox leads to it, so sandboxed processes cannot talk to it.
 * Each connection is served by its own process (a slow client never stalls
 * another): EXEC runs a command (pipes or a PTY), FILE_READ/FILE_WRITE move
 * tar streams in and out of the sandbox's own view.  The agent runs with
 * every restriction of the sandbox already applied.
 */
#ifndef AK_AGENT_H
#define AK_AGENT_H

#include <sys/types.h>

#include "model/spec.h"

typedef struct ak_agent_conf {
  const ak_spec_t *spec;
  uid_t user_uid; /* the sandbox user inside (1000) */
  gid_t user_gid;
  int can_root;   /* uid 0 is mapped and held in the saved set */
} ak_agent_conf_t;

/* Serves until SIGTERM; returns the exit status for the init. */
int ak_agent_serve (int listen_fd, const ak_agent_conf_t *conf);

#endif
