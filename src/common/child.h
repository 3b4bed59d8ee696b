/* Forked helpers: one way to start a worker process, one way for it to tell
 * its parent how it went.
 *
 * A worker keeps only the descriptors it is given (renumbered from 3), has
 * every signal at its default, and optionally dies with its parent
 * (PR_SET_PDEATHSIG, re-checked against a parent that died before it was
 * set) or leaves the caller's session entirely (detach: new session, double
 * fork, so no one has to reap it and no terminal signal reaches it).
 *
 * The report channel is a pipe or stream socket carrying exactly one
 * report: success with a value, or an error (errno-style code and message).
 * A worker that exits without reporting is itself a clear error for the
 * parent, never a hang or a silent status.
 */
#ifndef AK_CHILD_H
#define AK_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

typedef struct ak_worker {
  int *keep;        /* descriptors the worker keeps; in the worker they are
                       updated to their new numbers 3, 4, ... */
  size_t n_keep;
  int death_signal; /* 0: none */
  bool detach;      /* new session, double fork (the worker is a grandchild) */
  bool null_stdio;  /* standard streams on /dev/null */
} ak_worker_t;

/* Like fork(): 0 in the worker, the child's pid in the parent (with detach,
 * the intermediate child, already reaped when this returns), -1 with *err.
 * A worker that cannot set itself up exits with status 125. */
pid_t ak_worker_spawn (const ak_worker_t *w, ak_error_t **err);

/* The worker's side: one report, then (for fail) _exit(125). */
int ak_report_ok (int fd, int value);
int ak_report_error (int fd, const ak_error_t *err);
_Noreturn void ak_report_fail (int fd, ak_error_t *err);

/* The parent's side: reads the one report.  Returns 0 with *value on
 * success; -1 with the worker's own error; -1 with "<what> exited before
 * reporting" when the channel closed without one. */
int ak_report_read (int fd, const char *what, int *value, ak_error_t **err);

/* waitpid (pid, status, flags) for a sandbox's own children, which never
 * returns a ptrace stop: a child that made its waiter its tracer
 * (PTRACE_TRACEME) is detached and waited for again. */
pid_t ak_wait_child (pid_t pid, int *status, int flags);

#endif
