/* Persistent sandboxes: the library calls every front end uses (CLI, HTTP
 * API, MCP).  Each takes the sandbox's lock for as long as it changes
 * state, so concurrent callers see one consistent answer.
 */
#ifndef AK_SANDBOX_H
#define AK_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "model/spec.h"
#include "service/store.h"

/* Ephemeral run (`run`, API /run, MCP): builds the sandbox with spec's
 * backend, runs spec->argv to completion with the given standard streams
 * (NULL: the caller's own), tears it down.  *status is the command's exit
 * status (128+N for signal N).  command_started is in the audit log before
 * anything is built, command_executed after; `via` names the front end.
 * In a pool front (service/pool.h) it returns 1, having done nothing, when
 * no warm sandbox took the command. */
int ak_sandbox_run (const ak_spec_t *spec, const ak_stdio_t *stdio, const char *via, int *status,
                    ak_error_t **err);
/* Host check (doctor) of the named backend: each finding reported. */
int ak_sandbox_doctor (const char *backend, ak_host_check_fn report, void *data, ak_error_t **err);
/* Whether spec names a backend this build has (nothing is started). */
int ak_sandbox_check_backend (const ak_spec_t *spec, ak_error_t **err);

/* Records spec (its host sources pinned first: ak_spec_pin_sources). */
int ak_sandbox_create (ak_spec_t *spec, ak_record_t *out, ak_error_t **err);
int ak_sandbox_start (const char *name, ak_error_t **err);
int ak_sandbox_stop (const char *name, ak_error_t **err);
/* Refuses a running sandbox unless force (then stops it first). */
int ak_sandbox_remove (const char *name, bool force, ak_error_t **err);
/* Sets the sandbox's expiry to `seconds` after the later of now and its
 * current expiry; *expires_at gets the new Unix time. */
int ak_sandbox_extend (const char *name, long long seconds, long long *expires_at, ak_error_t **err);
/* Removes (stopping first) every sandbox whose expiry is at or before now;
 * returns how many, and reports each one that could not be removed through
 * ak_warn. */
int ak_sandbox_remove_expired (long long now);
/* Changes a sandbox's labels and description (model/labels.h): with
 * replace, every label goes first; then each key of unset is removed and
 * each "KEY=VALUE" of set is set; description, when not NULL, replaces the
 * description ("" removes it).  Everything is checked before the record is
 * written: on failure nothing has changed.  out (may be NULL) gets the
 * record as written. */
int ak_sandbox_update_meta (const char *name, bool replace, char *const *set, char *const *unset,
                            const char *description, ak_record_t *out, ak_error_t **err);

/* Lifecycle events of the sandboxes this process acts on ("created",
 * "started", "stopped", "removed", "expired"), told to one observer (the
 * API server's event stream).  Called after the change is recorded, from
 * whichever thread made it; the observer must not block. */
typedef void (*ak_sandbox_observer_fn) (const char *event, const char *name);
void ak_sandbox_set_observer (ak_sandbox_observer_fn fn);
/* Tells the observer of an event made elsewhere (a worker process). */
void ak_sandbox_notify (const char *event, const char *name);

/* The IPv4 address of a running sandbox on its own network (heap string),
 * or NULL: not running, no network, or the engine cannot tell. */
char *ak_sandbox_address (const ak_record_t *r);

bool ak_sandbox_running (const ak_record_t *r);
const char *ak_sandbox_status (const ak_record_t *r);

/* One command in a running sandbox. */
typedef struct ak_exec_req {
  char *const *argv;
  char *const *env; /* explicit KEY=VALUE, on top of the sandbox's own */
  const char *workdir;
  bool root;
  bool tty;
  unsigned short rows, cols;
  /* Optional: a signalfd the caller reads SIGINT/SIGTERM/SIGHUP/SIGQUIT
   * (relayed to the command) and SIGWINCH (terminal resized) from; -1. */
  int sigfd;
  /* Optional: sees every byte of output (session recording). */
  void (*on_output) (const void *data, size_t len, void *arg);
  void *on_output_arg;
  /* Optional: when this fd becomes readable the command is killed (SIGKILL)
   * and the call returns once it has ended; values <= 0 mean none. */
  int cancel_fd;
} ak_exec_req_t;

/* Connects to a running sandbox's agent; returns the fd. */
int ak_sandbox_connect (const char *name, ak_error_t **err);

/* Runs req with the standard streams in io, passing stdin (until EOF),
 * stdout and stderr through; *exit_code is the command's status (128+N for
 * signal N).  Signals forwarded while it runs: see ak_exec_forward_signal. */
int ak_sandbox_exec (const char *name, const ak_exec_req_t *req, const ak_stdio_t *io, int *exit_code,
                     ak_error_t **err);

/* Copies between host and sandbox: exactly one of the two paths is inside
 * (sandbox != NULL names the sandbox the `inside` path belongs to). */
int ak_sandbox_copy_in (const char *name, const char *host_path, const char *inside, ak_error_t **err);
int ak_sandbox_copy_out (const char *name, const char *inside, const char *host_path, ak_error_t **err);

/* Writes a tar of `inside` (a directory or file of the running sandbox,
 * read as its user) to out_fd, as the sandbox's agent produced it: the
 * archive is the sandbox's content, untrusted; *bytes is its size. */
int ak_sandbox_export (const char *name, const char *inside, int out_fd, long long *bytes, ak_error_t **err);

/* Files of a running sandbox, for the API front ends.  Paths are absolute
 * and resolved inside the sandbox as its user, never through a symlink
 * (ELOOP) and never onto a directory (EISDIR); missing parent directories
 * of a written file are created.  Errors carry an errno-style code. */
int ak_sandbox_read_file (const char *name, const char *inside, size_t max, char **data, size_t *len,
                          ak_error_t **err);
int ak_sandbox_write_file (const char *name, const char *inside, const void *data, size_t len,
                           ak_error_t **err);
/* Removes a file, a symlink (not its target) or an empty directory. */
int ak_sandbox_remove_file (const char *name, const char *inside, ak_error_t **err);

#endif
