/* POST /run/stream: a new sandbox's output as Server-Sent Events.
 *
 *   event: started   data: {"sandbox": "run-…"}
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/common.h"
#include "server/http_internal.h"

#define KEEPALIVE_MS 15000

typedef struct sse {
  ak_job_t *job;
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
  ak_http_job_unregister (s->job);
  ak_job_free (s->job); /* cancels a command still running */
  if (s->slot)
    ak_http_run_slot_give ();
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

  if (ak_api_run_spec (body, &spec, &err) < 0)
    {
      ak_spec_clear (&spec);
      return ak_http_fail_err (r, err);
    }
  s = ak_xcalloc (1, sizeof *s);
  ak_http_run_slot_take ();
  s->slot = true;
  s->job = ak_job_run (&spec, &err);
  ak_spec_clear (&spec);
  if (s->job == NULL)
    {
      ak_http_run_slot_give ();
      free (s);
      return ak_http_fail_err (r, err);
    }
  ak_http_job_register (s->job);
  s->watch_fd = ak_http_client_fd (r);
  s->deadline = ak_http_command_deadline ();
  if (getentropy (rnd, sizeof rnd) < 0)
    memset (rnd, 0, sizeof rnd);
  snprintf (id, sizeof id, "run-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  event (s, "started", json_pack ("{s:s}", "sandbox", id));
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
