#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "service/sandbox.h"
#include "model/spec_json.h"
#include "common/child.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/job.h"

struct ak_job {
  int out, err;   /* read ends (non-blocking); -1 once at end of file */
  int done_fd;    /* readable once the worker has ended (a pidfd for a process) */
  /* ended and cancelled are also read by ak_job_cancel from other threads
   * (a server stopping): under lock. */
  pthread_mutex_t lock;
  bool ended, cancelled;
  int exit_code;
  ak_error_t *error;
  /* A worker process (run). */
  pid_t pid;
  int result_fd, events_fd;
  /* A worker thread (exec). */
  bool is_thread;
  pthread_t thread;
  int cancel_r, cancel_w;
  int out_w, err_w;
  char *name;
  ak_exec_req_t req;
};

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static ak_job_t *
job_new (int out[2], int err[2], ak_error_t **err_out)
{
  ak_job_t *j;
  if (pipe2 (out, O_CLOEXEC) < 0)
    return ak_error_set (err_out, errno, "pipe"), NULL;
  if (pipe2 (err, O_CLOEXEC) < 0)
    {
      close (out[0]), close (out[1]);
      return ak_error_set (err_out, errno, "pipe"), NULL;
    }
  fcntl (out[0], F_SETFL, O_NONBLOCK);
  fcntl (err[0], F_SETFL, O_NONBLOCK);
  j = ak_xcalloc (1, sizeof *j);
  pthread_mutex_init (&j->lock, NULL);
  j->out = out[0];
  j->err = err[0];
  j->done_fd = j->result_fd = j->events_fd = j->cancel_r = j->cancel_w = j->out_w = j->err_w = -1;
  j->pid = -1;
  return j;
}

/* ---- run: a worker process ------------------------------------------- */

/* A server has threads, and a child forked from it inherits every lock
 * another thread held at that moment (the allocator's among them), so the
 * child does nothing but exec: the worker is this program run anew with
 * AK_JOB_WORKER_COMMAND, and reads the spec from a descriptor. */

/* This program, opened once (ak_job_init): a worker is it run anew. */
static int self_fd = -1;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static int self_errno;

static void
open_self (void)
{
  self_fd = open ("/proc/self/exe", O_PATH | O_CLOEXEC);
  if (self_fd < 0)
    self_errno = errno;
}

int
ak_job_init (ak_error_t **err)
{
  pthread_once (&self_once, open_self);
  if (self_fd < 0)
    return ak_error_set (err, self_errno, "cannot open this program (/proc/self/exe) to run sandboxes with");
  return 0;
}

/* The worker's descriptors, as ak_worker_spawn renumbers them. */
enum { W_OUT = 3, W_ERR, W_REPORT, W_IN, W_SPEC, W_EVENTS, W_SELF };

/* What a worker does: {"op": OP, "args": ARGS} (steals args), in a memory
 * file the worker reads from its start: writing it cannot block on a
 * worker that has not started yet. */
static int
op_file (const char *op, json_t *args, ak_error_t **err)
{
  json_t *j = json_pack ("{s:s, s:o}", "op", op, "args", args);
  _cleanup_free_ char *text = j != NULL ? json_dumps (j, JSON_COMPACT) : NULL;
  _cleanup_close_ int fd = memfd_create ("agentkernel-job", MFD_CLOEXEC);

  json_decref (j);
  if (text == NULL)
    return ak_error_set (err, ENOMEM, "the worker's operation");
  if (fd < 0)
    return ak_error_set (err, errno, "memfd_create");
  if (ak_write_all (fd, text, strlen (text)) < 0 || lseek (fd, 0, SEEK_SET) < 0)
    return ak_error_set (err, errno, "writing the operation for the worker");
  return take_fd (&fd);
}

/* In the child of a threaded server, between fork and exec: only
 * async-signal-safe calls (another thread may have held the allocator's
 * or any library's lock at the fork, and nothing here may take one).
 * ak_worker_spawn gave it nothing but the descriptors above, the default
 * signal state, and a parent-death signal (kept across exec) so a dying
 * server ends its sandboxes. */
static _Noreturn void
exec_worker (void)
{
  static char *const argv[] = { (char *) "agentkernel", (char *) AK_JOB_WORKER_COMMAND, NULL };
  ak_error_t e = { 0, (char *) "cannot start the sandbox worker (execveat of this program)" };

  for (int fd = W_OUT; fd < W_SELF; fd++)
    if (fcntl (fd, F_SETFD, 0) < 0)
      _exit (125);
  syscall (SYS_execveat, W_SELF, "", argv, environ, AT_EMPTY_PATH);
  e.code = errno;
  (void) ak_report_error (W_REPORT, &e);
  _exit (125);
}

/* In the worker: each lifecycle event of the service layer goes to the
 * server ("EVENT NAME\n"), which tells its own observer (ak_job_op). */
static void
relay_event (const char *event, const char *name)
{
  _cleanup_free_ char *line = ak_xasprintf ("%s %s\n", event, name);
  (void) ak_write_all (W_EVENTS, line, strlen (line));
}

/* op "run": the spec; the command's exit status is the report. */
static int
worker_run (json_t *args, ak_error_t **err)
{
  ak_stdio_t io = { W_IN, W_OUT, W_ERR };
  ak_spec_t spec;
  int status = 0;

  if (ak_spec_from_json (args, &spec, err) < 0)
    return -1;
  if (ak_sandbox_run (&spec, &io, "server", &status, err) < 0)
    status = -1;
  ak_spec_clear (&spec);
  return status;
}

/* op "start": {"name": NAME}; the sandbox's supervisor is detached (its
 * own session, reparented away from the worker), so it outlives it. */
static int
worker_start (json_t *args, ak_error_t **err)
{
  const char *name = json_string_value (json_object_get (args, "name"));
  if (name == NULL)
    return ak_error_set (err, EINVAL, "the worker's start: no name");
  return ak_sandbox_start (name, err) < 0 ? -1 : 0;
}

int
ak_job_worker_main (void)
{
  ak_error_t *err = NULL;
  json_error_t jerr;
  json_t *j;
  const char *op;
  int value = -1;

  /* Started by exec_worker: not a command for anyone to run by hand.  What
   * it was given is closed again for what it runs. */
  for (int fd = W_OUT; fd <= W_EVENTS; fd++)
    if (fcntl (fd, F_SETFD, FD_CLOEXEC) < 0)
      {
        fprintf (stderr, "agentkernel: %s is run only by the server\n", AK_JOB_WORKER_COMMAND);
        return 125;
      }
  j = json_loadfd (W_SPEC, 0, &jerr);
  close (W_SPEC);
  if (j == NULL)
    ak_report_fail (W_REPORT, (ak_error_set (&err, 0, "the worker's operation: %s", jerr.text), err));
  ak_sandbox_set_observer (relay_event);
  op = json_string_value (json_object_get (j, "op"));
  if (op != NULL && strcmp (op, "run") == 0)
    value = worker_run (json_object_get (j, "args"), &err);
  else if (op != NULL && strcmp (op, "start") == 0)
    value = worker_start (json_object_get (j, "args"), &err);
  else
    ak_error_set (&err, EINVAL, "the worker's operation: unknown '%s'", op ? op : "");
  json_decref (j);
  if (err != NULL)
    ak_report_fail (W_REPORT, err);
  (void) ak_report_ok (W_REPORT, value);
  return 0;
}

/* Starts a worker for op (steals args).  out/err: where its output goes
 * (the write ends are closed here); *result: the read end of its report;
 * *events: of its events.  The worker's pid, or -1. */
static pid_t
spawn_op (const char *op, json_t *args, int out_w, int err_w, int *result, int *events, ak_error_t **err)
{
  int res[2] = { -1, -1 }, ev[2] = { -1, -1 };
  pid_t pid = -1;
  _cleanup_close_ int null_fd = -1;
  _cleanup_close_ int op_fd = -1;

  if (ak_job_init (err) < 0)
    {
      json_decref (args);
      return -1;
    }
  op_fd = op_file (op, args, err);
  if (op_fd < 0)
    return -1;
  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0)
    return ak_error_set (err, errno, "/dev/null");
  if (pipe2 (res, O_CLOEXEC) < 0 || pipe2 (ev, O_CLOEXEC) < 0)
    {
      ak_error_set (err, errno, "pipe");
      goto done;
    }
  {
    int keep[] = { out_w, err_w, res[1], null_fd, op_fd, ev[1], self_fd };
    ak_worker_t w = { .keep = keep, .n_keep = 7, .death_signal = SIGTERM };
    pid = ak_worker_spawn (&w, err);
  }
  if (pid == 0)
    exec_worker ();
done:
  if (res[1] >= 0)
    close (res[1]);
  if (ev[1] >= 0)
    close (ev[1]);
  if (pid < 0)
    {
      if (res[0] >= 0)
        close (res[0]);
      if (ev[0] >= 0)
        close (ev[0]);
      return -1;
    }
  /* Read once the worker has ended, without waiting for a process it
   * left behind that might still hold the pipe. */
  fcntl (ev[0], F_SETFL, O_NONBLOCK);
  *result = res[0];
  *events = ev[0];
  return pid;
}

/* The events a worker told (it has ended), to this process's observer. */
static void
tell_events (int *fd)
{
  char buf[4096];
  size_t len = 0;
  ssize_t n;

  if (*fd < 0)
    return;
  while (len < sizeof buf - 1 && ((n = read (*fd, buf + len, sizeof buf - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0)
      len += (size_t) n;
  buf[len] = '\0';
  for (char *line = buf, *nl; (nl = strchr (line, '\n')) != NULL; line = nl + 1)
    {
      char *sp = memchr (line, ' ', (size_t) (nl - line));
      *nl = '\0';
      if (sp != NULL)
        {
          *sp = '\0';
          ak_sandbox_notify (line, sp + 1);
        }
    }
  close (*fd);
  *fd = -1;
}

int
ak_job_start (const char *name, ak_error_t **err)
{
  _cleanup_close_ int null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  int result = -1, events = -1, value = 0, rc;
  pid_t pid;

  if (null_fd < 0)
    return ak_error_set (err, errno, "/dev/null");
  /* Its warnings go where the server's own do. */
  pid = spawn_op ("start", json_pack ("{s:s}", "name", name), null_fd, STDERR_FILENO, &result, &events, err);
  if (pid < 0)
    return -1;
  rc = ak_report_read (result, "the sandbox worker", &value, err);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  close (result);
  tell_events (&events);
  return rc;
}

ak_job_t *
ak_job_run (const ak_spec_t *spec, ak_error_t **err)
{
  int out[2], errp[2];
  ak_job_t *j;

  j = job_new (out, errp, err);
  if (j == NULL)
    return NULL;
  j->pid = spawn_op ("run", ak_spec_to_json (spec), out[1], errp[1], &j->result_fd, &j->events_fd, err);
  close (out[1]);
  close (errp[1]);
  out[1] = errp[1] = -1;
  if (j->pid < 0)
    goto fail;
  j->done_fd = (int) syscall (SYS_pidfd_open, j->pid, 0);
  if (j->done_fd < 0)
    {
      ak_error_set (err, errno, "pidfd_open");
      kill (j->pid, SIGKILL);
      waitpid (j->pid, NULL, 0);
      j->pid = -1;
      goto fail;
    }
  return j;
fail:
  j->ended = true;
  ak_job_free (j);
  return NULL;
}

/* ---- exec: a worker thread ------------------------------------------- */

static void *
exec_thread (void *arg)
{
  ak_job_t *j = arg;
  ak_stdio_t io = { -1, j->out_w, j->err_w };
  int null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  io.in = null_fd;
  if (null_fd < 0)
    ak_error_set (&j->error, errno, "/dev/null");
  else if (ak_sandbox_exec (j->name, &j->req, &io, &j->exit_code, &j->error) < 0 && j->error == NULL)
    ak_error_set (&j->error, 0, "exec failed");
  if (null_fd >= 0)
    close (null_fd);
  close_fd (&j->out_w);
  close_fd (&j->err_w);
  eventfd_write (j->done_fd, 1);
  return NULL;
}

ak_job_t *
ak_job_exec (const char *name, const ak_exec_req_t *req, ak_error_t **err)
{
  int out[2], errp[2], cancel[2];
  ak_job_t *j = job_new (out, errp, err);
  int rc;

  if (j == NULL)
    return NULL;
  j->is_thread = true;
  j->out_w = out[1];
  j->err_w = errp[1];
  j->name = ak_xstrdup (name);
  j->req = *req;
  j->req.sigfd = -1;
  j->done_fd = eventfd (0, EFD_CLOEXEC);
  if (j->done_fd < 0 || pipe2 (cancel, O_CLOEXEC) < 0)
    {
      ak_error_set (err, errno, "eventfd");
      goto fail;
    }
  j->cancel_r = cancel[0];
  j->cancel_w = cancel[1];
  j->req.cancel_fd = j->cancel_r;
  rc = pthread_create (&j->thread, NULL, exec_thread, j);
  if (rc != 0)
    {
      ak_error_set (err, rc, "pthread_create");
      goto fail;
    }
  return j;
fail:
  j->is_thread = false;
  j->ended = true;
  ak_job_free (j);
  return NULL;
}

/* ---- watching --------------------------------------------------------- */

static void
drain (ak_job_t *j, int *fd, int stream, ak_job_output_fn fn, void *arg, bool once)
{
  char buf[65536];
  while (*fd >= 0)
    {
      ssize_t n = read (*fd, buf, sizeof buf);
      if (n > 0)
        {
          if (fn)
            fn (stream, buf, (size_t) n, arg);
          if (once)
            return;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0 || errno != EAGAIN)
        close_fd (fd);
      return;
    }
}

static void
finish (ak_job_t *j, ak_job_output_fn fn, void *arg)
{
  if (j->is_thread)
    pthread_join (j->thread, NULL);
  else
    {
      while (waitpid (j->pid, NULL, 0) < 0 && errno == EINTR)
        ;
      j->pid = -1;
      (void) ak_report_read (j->result_fd, "the sandbox worker", &j->exit_code, &j->error);
      tell_events (&j->events_fd);
    }
  /* The worker's end closed every writer that matters; what is left in the
   * pipes is the last of the output. */
  drain (j, &j->out, 1, fn, arg, false);
  drain (j, &j->err, 2, fn, arg, false);
  pthread_mutex_lock (&j->lock);
  j->ended = true;
  pthread_mutex_unlock (&j->lock);
}

static long long
now_ms (void)
{
  return (long long) (ak_now_ns () / 1000000);
}

int
ak_job_pump (ak_job_t *j, int timeout_ms, int watch_fd, ak_job_output_fn fn, void *arg)
{
  long long until = timeout_ms < 0 ? -1 : now_ms () + timeout_ms;

  if (j->ended)
    return 1;
  for (;;)
    {
      struct pollfd p[4] = {
        { .fd = j->out, .events = POLLIN },
        { .fd = j->err, .events = POLLIN },
        { .fd = j->done_fd, .events = POLLIN },
        { .fd = watch_fd, .events = POLLRDHUP },
      };
      int left = until < 0 ? -1 : (int) (until - now_ms () > 0 ? until - now_ms () : 0);
      int r = poll (p, 4, left);
      bool output = false;
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        return 0;
      if (p[0].revents)
        drain (j, &j->out, 1, fn, arg, true), output = true;
      if (p[1].revents)
        drain (j, &j->err, 2, fn, arg, true), output = true;
      if (p[2].revents & POLLIN)
        {
          finish (j, fn, arg);
          return 1;
        }
      if (p[3].revents & (POLLRDHUP | POLLHUP | POLLERR))
        return -2;
      if (output)
        return 0;
    }
}

void
ak_job_cancel (ak_job_t *j)
{
  pthread_mutex_lock (&j->lock);
  if (!j->ended && !j->cancelled)
    {
      j->cancelled = true;
      /* Through the pidfd: the worker's pid cannot have been reused. */
      if (j->is_thread)
        (void) !write (j->cancel_w, "x", 1);
      else
        syscall (SYS_pidfd_send_signal, j->done_fd, SIGTERM, NULL, 0);
    }
  pthread_mutex_unlock (&j->lock);
}

int
ak_job_result (ak_job_t *j, int *exit_code, ak_error_t **err)
{
  if (j->error != NULL)
    return ak_error_coded (err, j->error->code, "%s", j->error->msg);
  *exit_code = j->exit_code;
  return 0;
}

void
ak_job_free (ak_job_t *j)
{
  if (j == NULL)
    return;
  if (!j->ended) /* only the owner sets it */
    {
      ak_job_cancel (j);
      while (ak_job_pump (j, -1, -1, NULL, NULL) == 0)
        ;
    }
  close_fd (&j->out);
  close_fd (&j->err);
  close_fd (&j->done_fd);
  close_fd (&j->result_fd);
  close_fd (&j->events_fd);
  close_fd (&j->cancel_r);
  close_fd (&j->cancel_w);
  close_fd (&j->out_w);
  close_fd (&j->err_w);
  ak_error_free (j->error);
  free (j->name);
  pthread_mutex_destroy (&j->lock);
  free (j);
}

/* ---- collecting ------------------------------------------------------- */

static void
append (char **buf, size_t *len, size_t cap, const char *data, size_t n, bool *truncated)
{
  if (*len + n > cap)
    {
      *truncated = true;
      n = cap - *len;
    }
  if (n == 0)
    return;
  *buf = ak_xrealloc (*buf, *len + n + 1);
  memcpy (*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

static void
capture (int stream, const char *data, size_t len, void *arg)
{
  ak_job_capture_t *c = arg;
  if (stream == 1)
    append (&c->out, &c->out_len, c->cap, data, len, &c->truncated);
  else
    append (&c->err, &c->err_len, c->cap, data, len, &c->truncated);
  append (&c->all, &c->all_len, 2 * c->cap, data, len, &c->truncated);
}

int
ak_job_collect (ak_job_t *j, long long deadline_ms, int watch_fd, ak_job_capture_t *cap, int *exit_code,
                ak_error_t **err)
{
  int outcome = 0, r;

  for (;;)
    {
      int wait = -1;
      if (deadline_ms >= 0 && outcome == 0)
        {
          long long left = deadline_ms - now_ms ();
          wait = left > 0 ? (int) left : 0;
        }
      r = ak_job_pump (j, wait, outcome == AK_JOB_CLIENT_GONE ? -1 : watch_fd, capture, cap);
      if (r == 1)
        break;
      if (r == -1)
        return ak_error_set (err, errno, "poll");
      if (r == -2 || (r == 0 && outcome == 0 && deadline_ms >= 0 && now_ms () >= deadline_ms))
        {
          outcome = r == -2 ? AK_JOB_CLIENT_GONE : AK_JOB_TIMED_OUT;
          ak_job_cancel (j);
        }
    }
  if (outcome != 0)
    {
      ak_job_result (j, exit_code, NULL);
      return outcome;
    }
  return ak_job_result (j, exit_code, err) < 0 ? -1 : 0;
}

void
ak_job_capture_clear (ak_job_capture_t *c)
{
  free (c->out);
  free (c->err);
  free (c->all);
  c->out = c->err = c->all = NULL;
  c->out_len = c->err_len = c->all_len = 0;
}
