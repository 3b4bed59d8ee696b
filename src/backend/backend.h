/* The backend interface: one struct of function pointers per engine.
 *
 * Backends consume a resolved ak_spec_t and never parse flags or files.
 * A new engine is a new set of files filling this struct and one line in
 * backend.c.
 */
#ifndef AK_BACKEND_H
#define AK_BACKEND_H

#include <stdbool.h>
#include <jansson.h>
#include <sys/types.h>

#include "common/error.h"
#include "model/spec.h"

/* Standard streams of a sandboxed command. */
typedef struct ak_stdio {
  int in, out, err;
} ak_stdio_t;

/* One finding of a host check (`agentkernel doctor`). */
typedef struct ak_host_check {
  const char *name; /* "user namespaces" */
  bool ok;
  bool needed;      /* sandboxes cannot run as documented without it (else: degraded) */
  const char *detail; /* what was found */
  const char *fix;    /* one line: how to get it, when !ok */
} ak_host_check_t;
typedef void (*ak_host_check_fn) (const ak_host_check_t *c, void *data);

typedef struct ak_backend {
  const char *name;
  /* Checks everything this engine can use on this host, reporting each
   * finding (doctor); starts nothing that outlives the call. */
  void (*doctor) (ak_host_check_fn report, void *data);
  /* Checks that this host can give `spec` the isolation it asks for, without
   * starting anything.  Fails naming what is missing and how to fix it. */
  int (*check) (const ak_spec_t *spec, ak_error_t **err);
  /* Ephemeral run: build the sandbox, run spec->argv to completion, tear
   * everything down.  *status receives the command's exit status, or 128+N
   * when it was killed by signal N. */
  int (*run) (const ak_spec_t *spec, const ak_stdio_t *stdio, int *status, ak_error_t **err);
  /* Persistent: start the sandbox whose state directory is dir, with the
   * agent serving dir/agent.sock; returns once it serves, with the pid of
   * the process that owns the sandbox (signal it to stop). */
  int (*start) (const ak_spec_t *spec, const char *dir, pid_t *supervisor, ak_error_t **err);
  /* Persistent: a connection to the agent of the sandbox started from dir
   * (the framed protocol of proto/ runs over it); returns the fd. */
  int (*connect) (const char *dir, ak_error_t **err);
  /* Persistent: ends the sandbox owned by `supervisor` (started from dir):
   * the agent is asked to end every process, then everything is killed after
   * a grace period.  Returns once it is gone. */
  int (*stop) (const char *dir, pid_t supervisor, ak_error_t **err);

  /* Warm pool (service/pool.c); NULL when the engine has none.
   * pool_start: in the daemon, starts one sandbox for spec, built up to the
   * point where only the command remains, in a process of its own (*owner,
   * a child of the caller, which dies with the caller).  Returns at once
   * with the control channel, which pool_wait reads once: 0 when the
   * sandbox is idle, -1 when it could not be built.  spec has no argv,
   * workdir, env or workspace directory: a claim brings them.
   * pool_claim: in the claimant, which the daemon handed ctl: runs spec
   * (key: its pool key, the pooled spec's) in that sandbox with stdio, relays
   * the signals run() relays.  Returns 1 when the command ran (*status as
   * run()), 0 when the sandbox could not take it before the command started
   * (the caller starts cold; *err says why), -1 on an error after that.
   * Either way the sandbox is gone afterwards.
   * claim_listen (-1: none): for a pool_handoff engine, the shape's own
   * listening socket.  An idle sandbox's owner accepts one claimant from
   * it directly (the daemon not in between), then says so on ctl, and
   * pool_wait, called again on an idle sandbox's channel, returns 1 (0 is
   * never returned then; -1: the sandbox ended). */
  int (*pool_start) (const ak_spec_t *spec, int claim_listen, pid_t *owner, ak_error_t **err);
  int (*pool_wait) (int ctl, ak_error_t **err);
  int (*pool_claim) (int ctl, const ak_spec_t *spec, const char *key, const ak_stdio_t *stdio, int *status,
                     ak_error_t **err);
  /* pool_handoff: the claim goes the other way round, one hand-over
   * shorter.  The claimant calls pool_claim at once on its own connection
   * to the daemon (ctl); on a hit the daemon sends that connection (one
   * message, one descriptor) over the idle sandbox's control channel, and
   * pool_claim talks to the sandbox's owner over it; on a miss the daemon
   * closes it (pool_claim returns 0: cold start).  The claimant may also
   * connect to the shape's listening socket (claim_listen) and call
   * pool_claim on that connection: the same exchange, one hop shorter. */
  bool pool_handoff;
  /* Persistent, optional: the IPv4 address the running sandbox owned by
   * `supervisor` has on its own network (*ip: heap string, or NULL when it
   * has none, e.g. without network). */
  int (*address) (const char *dir, pid_t supervisor, char **ip, ak_error_t **err);
} ak_backend_t;

const ak_backend_t *ak_backend_lookup (const char *name, ak_error_t **err);

/* Where a backend reports what its egress policy decides: every connection
 * ("network_connect") and name lookup ("dns_query") of a sandbox, with the
 * sandbox's name (NULL for an anonymous run) and the fields (stolen).  Set
 * by the service layer (the audit log); NULL: not reported.  Called from
 * several threads of the policy's process. */
typedef void (*ak_backend_audit_fn) (const char *event, const char *sandbox, json_t *fields);
extern ak_backend_audit_fn ak_backend_audit_hook;

/* Called once by pool_claim when the claimed sandbox took the command (it
 * runs or is about to), before its status; NULL: nothing to call.  Set by
 * the service layer for the pool's fronts (service/pool.h). */
extern void (*ak_backend_claim_started_hook) (void);

#endif
