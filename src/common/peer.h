/* The process at the other end of a local socket, and whether to act for
 * it with this process's own privileges.
 *
 * The pool's claim sockets and fronts (service/pool.h) do things for their
 * peer that it asked for (open its workspace, run its command in a sandbox
 * built beforehand): they serve a peer only when it is this process as far
 * as isolation goes, that is the same user, the same user and mount
 * namespaces, the same root directory, and no more confined than this
 * process (no capability or bounding capability missing that this one has,
 * no seccomp mode, filter count or no_new_privs this one has not).  Any
 * other peer (in a chroot, in another namespace, under a tighter seccomp
 * filter or capability set) is refused and starts a sandbox of its own,
 * within its own limits.  A Landlock domain cannot be read from outside a
 * process; the rules above are what can be. */
#ifndef AK_PEER_H
#define AK_PEER_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* 0 with *pid when sock's peer may be served as above; -1 with *err (why
 * not) otherwise.  This process's own side is read once, at the first
 * call or at ak_peer_check_prepare (a server, before it waits for peers;
 * it must not change its own namespaces or privileges afterwards). */
int ak_peer_check (int sock, pid_t *pid, ak_error_t **err);
int ak_peer_check_prepare (void);

/* The pool daemon's badge: a memfd the daemon makes at start and hands to
 * the processes it starts as itself (its fronts, its sandboxes' owners),
 * close-on-exec and closed by every sandbox's init, so that no other
 * process holds it.  A claim that carries it comes from one of them, as
 * privileged as the daemon by construction: its peer needs no check. */
void ak_peer_badge_set (int fd);
/* This process's badge, or -1. */
int ak_peer_badge (void);
/* Whether fd is the badge itself (the same file, not a copy of it). */
bool ak_peer_badge_is (int fd);

#endif
