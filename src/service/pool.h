/* The warm pool: a daemon (`agentkernel daemon start`) keeps sandboxes of
 * chosen shapes built and idle; `run` and the API's /run claim one whose
 * shape is exactly theirs instead of building a new one.
 *
 * A shape is a resolved spec (profile, every security setting, seccomp,
 * domains, resources, image, backend).  A claim matches when the
 * claimant's pool key (model/spec_json.h: the spec without argv, env,
 * workdir and workspace directory) equals the shape's; anything else, and
 * anything a claim cannot apply (volumes, [[files]], --rootfs, mount_home,
 * a persistent sandbox, a terminal on stdin), starts cold.  Each idle
 * sandbox serves one claim and is discarded; the daemon builds another in
 * the background.  Nothing waits for a sandbox: an empty pool, a busy
 * daemon or none at all is a cold start.
 *
 * The daemon listens on <state>/pool/daemon.sock (directory 0700, socket
 * 0600) and serves only its own user (SO_PEERCRED) in its own mount
 * namespace.  Its sandboxes die with it (PR_SET_PDEATHSIG): a killed
 * daemon leaves nothing running, and a new daemon starts with none.
 */
#ifndef AK_POOL_H
#define AK_POOL_H

#include <jansson.h>
#include <stdbool.h>

#include "backend/backend.h"
#include "model/config.h"
#include "model/spec.h"


typedef struct ak_pool_conf {
  unsigned size;     /* idle sandboxes kept per shape */
  ak_spec_t *shapes; /* owned by the caller */
  size_t n_shapes;
} ak_pool_conf_t;

/* Why spec cannot be pooled (NULL: it can), for `daemon start`. */
const char *ak_pool_unsuitable (const ak_spec_t *spec);

/* Runs the daemon in this process until `daemon stop` or SIGTERM/SIGINT.
 * ready_fd (or -1) gets the report of common/child.h once it listens. */
int ak_pool_daemon (const ak_pool_conf_t *conf, int ready_fd, ak_error_t **err);

/* The running daemon's status (NULL in *out: none runs). */
int ak_pool_status (json_t **out, ak_error_t **err);
/* Stops the running daemon and its sandboxes; 1 when none ran. */
int ak_pool_stop (ak_error_t **err);

/* ---- fronts ----
 *
 * The daemon also keeps AK_POOL_FRONTS agentkernel processes started and
 * waiting on <state>/pool/front.sock (0600), this program run with
 * AK_POOL_FRONT_COMMAND and the socket on descriptor 3.  The `agentkernel`
 * launcher (tools/agentkernel-launch.c), a small static program, hands a
 * `run` to one of them instead of starting this larger program: its
 * command line, environment, working directory, umask, ignored signals and
 * standard streams.  The front runs `run` as this program would, but
 * takes a warm sandbox or nothing: until the claimed sandbox has the
 * command, nothing is written, printed or started, and anything else
 * (no matching shape, an image to resolve, --keep, a terminal on stdin, a
 * claimant not exactly as confined as the daemon) sends the launcher back
 * to a cold start of this program with the same arguments.  Each front
 * serves one run and exits; the daemon starts another. */
#define AK_POOL_FRONT_COMMAND "__pool-front"
#define AK_POOL_FRONTS 2
/* Fronts at most, busy ones included: each run a front took holds it
 * until the run ends, and another is started as soon as none is idle, so
 * as many pooled runs as this can be under way at once (a launcher beyond
 * them waits for one to end). */
#define AK_POOL_FRONTS_MAX 512

/* In a front: from now on ak_sandbox_run takes a warm sandbox or returns
 * 1 at once having done nothing (not even the audit record); on_started
 * is called when the sandbox took the command, after its command_started
 * audit record. */
void ak_pool_front_begin (void (*on_started) (void));
bool ak_pool_front_active (void);
/* Whether this process's run asked the daemon or a shape's socket for a
 * sandbox (a front that did and got none tells the launcher so, and the
 * cold start it makes does not ask again: one claim, one hit or miss). */
bool ak_pool_asked (void);
/* This process does not ask (it is that cold start). */
void ak_pool_skip (void);
/* The launcher's word to agentkernel-core that a front asked already. */
#define AK_POOL_ASKED_ENV "AGENTKERNEL_POOL_ASKED"

/* In ak_sandbox_run: spec (resolved as the backend gets it) in a pooled
 * sandbox.  Returns 1 when the command ran there (*status), 0 when the
 * caller is to start cold (no daemon, no match, the claim refused), -1 on
 * an error after the command started. */
int ak_pool_try_run (const ak_backend_t *b, const ak_spec_t *spec, const ak_stdio_t *stdio,
                     int *status, ak_error_t **err);

#endif
