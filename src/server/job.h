/* A command the HTTP API runs on a client's behalf, watched while it runs.
 *
 * POST /run starts a new sandbox: the backend's run() in a worker process
 * (the sandbox is cloned from a single-threaded process, and a crash stays
 * out of the server): this program executed anew with AK_JOB_WORKER_COMMAND,
 * so nothing of the threaded server lives on in it.  The same worker
 * starts persistent sandboxes (ak_job_start): it is told an operation and
 * its JSON arguments.  exec runs ak_sandbox_exec() in a
 * worker thread.  Either way the output arrives on two pipes the request's
 * own thread reads (ak_job_pump), so it can stream it, cap it, and notice
 * a client that went away or a deadline that passed, and end the command
 * (ak_job_cancel).
 */
#ifndef AK_SERVER_JOB_H
#define AK_SERVER_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "service/sandbox.h"
#include "model/spec.h"

typedef struct ak_job ak_job_t;

/* The hidden command a worker runs as (argv[1]); every program that serves
 * jobs hands it to ak_job_worker_main before anything else. */
#define AK_JOB_WORKER_COMMAND "__sandbox-worker"

/* Opens this program for the workers to run, once; called at start-up
 * (before the program could be replaced on disk), and by ak_job_run. */
int ak_job_init (ak_error_t **err);

/* The worker: runs the spec it was given and reports.  Its exit status. */
int ak_job_worker_main (void);

/* stream: 1 stdout, 2 stderr. */
typedef void (*ak_job_output_fn) (int stream, const char *data, size_t len, void *arg);

ak_job_t *ak_job_run (const ak_spec_t *spec, ak_error_t **err);

/* ak_sandbox_start in a worker (the sandbox's supervisor is forked from a
 * single-threaded process, and detached: it outlives the worker); waits
 * for it.  The events it made reach this process's observer. */
int ak_job_start (const char *name, ak_error_t **err);
ak_job_t *ak_job_exec (const char *name, const ak_exec_req_t *req, ak_error_t **err);

/* Waits up to timeout_ms (-1: no limit) for output or the end, passing
 * output to fn.  watch_fd (-1: none) is the client's socket: its hang-up
 * is reported.  Returns 1 once the job has ended and its output is
 * drained, 0 on timeout, -2 when watch_fd hung up, -1 on error. */
int ak_job_pump (ak_job_t *j, int timeout_ms, int watch_fd, ak_job_output_fn fn, void *arg);

/* Ends the command: SIGTERM relayed to it, everything killed 5 s later (a
 * new sandbox); SIGKILL (exec).  Pumping goes on until it has ended. */
void ak_job_cancel (ak_job_t *j);

/* After ak_job_pump returned 1: the exit code, or -1 with *err set when the
 * command could not be run at all. */
int ak_job_result (ak_job_t *j, int *exit_code, ak_error_t **err);

/* Cancels a job that has not ended, waits for it, frees everything. */
void ak_job_free (ak_job_t *j);

/* Runs j to the end, capturing up to cap bytes per stream (both streams
 * also interleaved into `output`), within deadline_ms (-1: none) and for
 * as long as watch_fd is connected. */
typedef struct ak_job_capture {
  char *out, *err, *all;
  size_t out_len, err_len, all_len, cap;
  bool truncated;
} ak_job_capture_t;

#define AK_JOB_TIMED_OUT 2
#define AK_JOB_CLIENT_GONE 3
/* 0 when it ran to its end (exit code in *exit_code), AK_JOB_TIMED_OUT
 * (killed at the deadline; *exit_code is its status), AK_JOB_CLIENT_GONE,
 * or -1 with *err set. */
int ak_job_collect (ak_job_t *j, long long deadline_ms, int watch_fd, ak_job_capture_t *cap, int *exit_code,
                    ak_error_t **err);
void ak_job_capture_clear (ak_job_capture_t *c);

#endif
