/* POST /run/stream: a new sandbox's output as Server-Sent Events.
 *
 *   event: started   data: {"sandbox": "run-…"}
 *   event: progress  data: {"stage": "pulling", "layer": "sha256:…", "done": N, "total": N}
 *                          (only while an image is pulled; also "manifest" and
 *                          "present" for layers already in the store)
 *   event: progress  data: {"stage": "running"}
 *   event: output    data: {"content": "…", "data": "…", "stream": "stdout"|"stderr"}
 *   event: done      data: {"exit_code": N}
 *   event: error     data: {"message": "…"}
 *
 * Output is sent as it is produced (one chunk per read), split only at
 * UTF-8 sequence boundaries.  A comment line keeps an idle stream alive.
 * A client that goes away ends the command: its socket is watched while
 * the command runs, and the response's end cancels a job still running.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/common.h"
#include "server/http_internal.h"
#include "service/image.h"

#define KEEPALIVE_MS 15000

typedef struct sse {
  ak_job_t *job;
  /* An image being pulled before the run: a thread pulls, its progress
   * events wait in pbuf (under mu) and wake the reader through wake[0]. */
  bool pulling, pull_done, pull_thread;
  pthread_t thread;
  pthread_mutex_t mu;
  int wake[2];
  char *pbuf;
  size_t plen;
  unsigned long long last_ns;
  ak_spec_t spec;
  ak_error_t *pull_err;
  int watch_fd;
  long long deadline;
  bool timed_out, finished, slot;
  char *buf;
  size_t len, off;
  char pending[2][4]; /* the start of a UTF-8 sequence cut by a read */
  size_t n_pending[2];
} sse_t;

static void
add (sse_t *s, const char *text, size_t n)
{
  s->buf = ak_xrealloc (s->buf, s->len + n + 1);
  memcpy (s->buf + s->len, text, n);
  s->len += n;
}

static void
event (sse_t *s, const char *type, json_t *data)
{
  char *j = json_dumps (data, JSON_COMPACT);
  _cleanup_free_ char *line = NULL;
  json_decref (data);
  if (j == NULL)
    ak_oom ();
  line = ak_xasprintf ("event: %s\ndata: %s\n\n", type, j);
  free (j);
  add (s, line, strlen (line));
}

static void
output_event (sse_t *s, int stream, const char *data, size_t len)
{
  json_t *text = ak_json_text (data, len);
  event (s, "output", json_pack ("{s:O, s:O, s:s}", "content", text, "data", text, "stream",
                                 stream == 1 ? "stdout" : "stderr"));
  json_decref (text);
}

static void
on_output (int stream, const char *data, size_t len, void *arg)
{
  sse_t *s = arg;
  int k = stream - 1;
  size_t have = s->n_pending[k], whole;
  _cleanup_free_ char *joined = ak_xmalloc (have + len);

  memcpy (joined, s->pending[k], have);
  memcpy (joined + have, data, len);
  whole = ak_utf8_whole (joined, have + len);
  if (whole > 0)
    output_event (s, stream, joined, whole);
  s->n_pending[k] = have + len - whole;
  memcpy (s->pending[k], joined + whole, s->n_pending[k]);
}

static void
finish (sse_t *s)
{
  ak_error_t *err = NULL;
  int code = 0;

  for (int k = 0; k < 2; k++)
    if (s->n_pending[k] > 0)
      output_event (s, k + 1, s->pending[k], s->n_pending[k]);
  if (s->timed_out)
    event (s, "error",
           json_pack ("{s:s}", "message", "the command ran longer than this server's limit and was killed"));
  else if (ak_job_result (s->job, &code, &err) < 0)
    {
      event (s, "error", json_pack ("{s:o}", "message", ak_json_text (err->msg, strlen (err->msg))));
      ak_error_free (err);
    }
  else
    event (s, "done", json_pack ("{s:i}", "exit_code", code));
  s->finished = true;
}

/* ---- pulling an image first ---- */

static void
pull_event (sse_t *s, json_t *data)
{
  char *j = json_dumps (data, JSON_COMPACT);
  _cleanup_free_ char *line = NULL;
  json_decref (data);
  if (j == NULL)
    ak_oom ();
  line = ak_xasprintf ("event: progress\ndata: %s\n\n", j);
  free (j);
  pthread_mutex_lock (&s->mu);
  s->pbuf = ak_xrealloc (s->pbuf, s->plen + strlen (line) + 1);
  memcpy (s->pbuf + s->plen, line, strlen (line));
  s->plen += strlen (line);
  pthread_mutex_unlock (&s->mu);
  (void) !write (s->wake[1], "", 1);
}

static void
on_pull (ak_pull_event_t ev, const char *digest, uint64_t done, uint64_t total, void *data)
{
  static const char *const kind[] = { "manifest", "present", "pulling", "unpacked" };
  sse_t *s = data;
  if (ev == AK_PULL_LAYER_BYTES)
    {
      /* At most ten a second per stream, and always the last. */
      unsigned long long now = ak_now_ns ();
      if (now - s->last_ns < 100000000ull && done != total)
        return;
      s->last_ns = now;
    }
  pull_event (s, json_pack ("{s:s, s:s, s:s, s:I, s:I}", "stage", "pulling", "event", kind[ev],
                            ev == AK_PULL_MANIFEST ? "manifest" : "layer", digest, "done", (json_int_t) done,
                            "total", (json_int_t) total));
}

static void *
pull_main (void *arg)
{
  sse_t *s = arg;
  ak_error_t *err = NULL;
  if (ak_sandbox_image_prepare_progress (&s->spec, on_pull, s, &err) < 0)
    s->pull_err = err;
  pthread_mutex_lock (&s->mu);
  s->pull_done = true;
  pthread_mutex_unlock (&s->mu);
  (void) !write (s->wake[1], "", 1);
  return NULL;
}

/* While the image is pulled: its events as they come; then the run.
 * Returns -1 when the client left. */
static int
pump_pull (sse_t *s)
{
  struct pollfd p[2] = { { .fd = s->wake[0], .events = POLLIN }, { .fd = s->watch_fd, .events = POLLIN } };
  char drain[64];
  bool done;
  ak_error_t *err = NULL;

  if (poll (p, s->watch_fd >= 0 ? 2 : 1, KEEPALIVE_MS) < 0 && errno != EINTR)
    return -1;
  if (s->watch_fd >= 0 && (p[1].revents & (POLLHUP | POLLERR)))
    return -1;
  while (read (s->wake[0], drain, sizeof drain) > 0)
    ;
  pthread_mutex_lock (&s->mu);
  if (s->plen > 0)
    add (s, s->pbuf, s->plen);
  s->plen = 0;
  done = s->pull_done;
  pthread_mutex_unlock (&s->mu);
  if (!done)
    {
      if (s->len == 0)
        add (s, ": keep-alive\n\n", 14);
      return 0;
    }
  pthread_join (s->thread, NULL);
  s->pull_thread = false;
  s->pulling = false;
  if (s->pull_err != NULL)
    {
      event (s, "error", json_pack ("{s:o}", "message", ak_json_text (s->pull_err->msg, strlen (s->pull_err->msg))));
      s->finished = true;
      return 0;
    }
  ak_http_run_slot_take ();
  s->slot = true;
  ak_obs_run ();
  s->job = ak_job_run (&s->spec, &err);
  if (s->job == NULL)
    {
      event (s, "error", json_pack ("{s:o}", "message", ak_json_text (err->msg, strlen (err->msg))));
      ak_error_free (err);
      s->finished = true;
      return 0;
    }
  ak_http_job_register (s->job);
  s->deadline = ak_http_command_deadline ();
  event (s, "progress", json_pack ("{s:s}", "stage", "running"));
  return 0;
}

static ssize_t
reader (void *cls, uint64_t pos, char *buf, size_t max)
{
  sse_t *s = cls;
  size_t n;
  (void) pos;

  while (s->off == s->len)
    {
      int wait = KEEPALIVE_MS, r;
      if (s->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
      if (s->pulling)
        {
          s->off = s->len = 0;
          if (pump_pull (s) < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
          continue;
        }
      s->off = s->len = 0;
      if (s->deadline >= 0 && !s->timed_out)
        {
          long long left = s->deadline - ak_http_now_ms ();
          if (left <= 0)
            {
              s->timed_out = true;
              ak_job_cancel (s->job);
            }
          else if (left < wait)
            wait = (int) left;
        }
      r = ak_job_pump (s->job, wait, s->watch_fd, on_output, s);
      if (r == -2 || r == -1)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left: the free callback ends it */
      if (r == 1)
        finish (s);
      else if (s->len == 0 && wait == KEEPALIVE_MS)
        add (s, ": keep-alive\n\n", 14);
    }
  n = s->len - s->off < max ? s->len - s->off : max;
  memcpy (buf, s->buf + s->off, n);
  s->off += n;
  return (ssize_t) n;
}

static void
release (void *cls)
{
  sse_t *s = cls;
  /* A pull in progress is finished (what it stored stays), never cut. */
  if (s->pull_thread)
    pthread_join (s->thread, NULL);
  if (s->job != NULL)
    {
      ak_http_job_unregister (s->job);
      ak_job_free (s->job); /* cancels a command still running */
    }
  if (s->slot)
    ak_http_run_slot_give ();
  if (s->wake[0] >= 0)
    close (s->wake[0]), close (s->wake[1]);
  pthread_mutex_destroy (&s->mu);
  ak_spec_clear (&s->spec);
  ak_error_free (s->pull_err);
  free (s->pbuf);
  free (s->buf);
  free (s);
}

enum MHD_Result
ak_api_run_stream (ak_http_req_t *r, json_t *body)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  struct MHD_Response *resp;
  enum MHD_Result ret;
  sse_t *s;
  unsigned char rnd[4];
  char id[32];

  if (ak_api_run_spec (body, &spec, false, &err) < 0)
    {
      ak_spec_clear (&spec);
      return ak_http_fail_err (r, err);
    }
  s = ak_xcalloc (1, sizeof *s);
  pthread_mutex_init (&s->mu, NULL);
  s->wake[0] = s->wake[1] = -1;
  s->watch_fd = ak_http_client_fd (r);
  s->spec = spec;
  /* A present image starts at once; one to pull reports its progress. */
  s->pulling = !ak_sandbox_image_present (&s->spec);
  if (!s->pulling && ak_sandbox_image_prepare (&s->spec, &err) < 0)
    {
      ak_api_image_error (err);
      release (s);
      return ak_http_fail_err (r, err);
    }
  if (s->pulling)
    {
      if (pipe2 (s->wake, O_CLOEXEC | O_NONBLOCK) < 0)
        {
          ak_error_set (&err, errno, "pipe");
          s->wake[0] = s->wake[1] = -1;
          release (s);
          return ak_http_fail_err (r, err);
        }
      if (pthread_create (&s->thread, NULL, pull_main, s) != 0)
        {
          ak_error_set (&err, EAGAIN, "start the pull");
          release (s);
          return ak_http_fail_err (r, err);
        }
      s->pull_thread = true;
    }
  else
    {
      ak_http_run_slot_take ();
      s->slot = true;
      ak_obs_run ();
  s->job = ak_job_run (&s->spec, &err);
      if (s->job == NULL)
        {
          release (s);
          return ak_http_fail_err (r, err);
        }
      ak_http_job_register (s->job);
      s->deadline = ak_http_command_deadline ();
    }
  if (getentropy (rnd, sizeof rnd) < 0)
    memset (rnd, 0, sizeof rnd);
  snprintf (id, sizeof id, "run-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  event (s, "started", json_pack ("{s:s}", "sandbox", id));
  if (!s->pulling)
    event (s, "progress", json_pack ("{s:s}", "stage", "running"));
  resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16384, reader, s, release);
  if (resp == NULL)
    {
      release (s);
      return MHD_NO;
    }
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  ret = MHD_queue_response (r->conn, MHD_HTTP_OK, resp);
  MHD_destroy_response (resp);
  return ret;
}
