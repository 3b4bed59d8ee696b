/* What the HTTP API tells about itself: GET /status, /stats, /metrics
 * (Prometheus text format) and /events (the sandboxes' lifecycle as
 * Server-Sent Events), and POST /gc.
 *
 * Counters live in this process only: they start at zero with the server.
 * Events are those of what this server does (its requests and its sweep of
 * expired sandboxes), told by the service layer's observer:
 *
 *   event: created|started|stopped|removed|expired
 *   id: N
 *   data: {"event": "...", "sandbox": "NAME", "time": "RFC 3339"}
 *
 * A comment line (": keep-alive") goes out when nothing else has for
 * ?keepalive=SECONDS (default 15).  At most MAX_SUBSCRIBERS streams at
 * once (503 beyond); a subscriber that falls more than MAX_BACKLOG bytes
 * behind is ended rather than buffered without bound.  A client that hangs
 * up ends its stream at once; so does the server's shutdown. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "service/sandbox.h"
#include "service/store.h"
#include "server/http_internal.h"

#define MAX_SUBSCRIBERS 32
#define MAX_BACKLOG (1u << 20)
#define KEEPALIVE_DEFAULT_S 15 /* below the default --idle-timeout (60 s) */

typedef enum MHD_Result result_t;

/* ---- counters ------------------------------------------------------------ */

static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 };
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

static const struct {
  unsigned status;
  const char *kind;
} error_kinds[] = {
  { 400, "bad_request" }, { 401, "unauthorized" },  { 403, "forbidden" },       { 404, "not_found" },
  { 405, "method_not_allowed" }, { 408, "request_timeout" }, { 409, "conflict" }, { 413, "too_large" },
  { 500, "internal" },    { 501, "not_implemented" }, { 503, "unavailable" },   { 504, "command_timeout" },
};
#define N_KINDS (sizeof error_kinds / sizeof error_kinds[0])

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long runs_total, execs_total, exec_bucket[N_BUCKETS], errors[N_KINDS + 1];
static double exec_sum;
static time_t started_at;
static atomic_ullong events_total;

void
ak_obs_run (void)
{
  pthread_mutex_lock (&stats_lock);
  runs_total++;
  pthread_mutex_unlock (&stats_lock);
}

void
ak_obs_exec (long long ms)
{
  double s = (double) ms / 1000.0;
  pthread_mutex_lock (&stats_lock);
  execs_total++;
  exec_sum += s;
  for (size_t i = 0; i < N_BUCKETS; i++)
    if (s <= buckets[i])
      exec_bucket[i]++;
  pthread_mutex_unlock (&stats_lock);
}

void
ak_obs_error (unsigned status)
{
  size_t k = N_KINDS; /* "other" */
  if (status < 400)
    return;
  for (size_t i = 0; i < N_KINDS; i++)
    if (error_kinds[i].status == status)
      k = i;
  pthread_mutex_lock (&stats_lock);
  errors[k]++;
  pthread_mutex_unlock (&stats_lock);
}

typedef struct counts {
  unsigned long long total, running, stopped, created, broken;
} counts_t;

static int
count_sandboxes (counts_t *c, ak_error_t **err)
{
  ak_record_t *recs = NULL;
  size_t n = 0;

  memset (c, 0, sizeof *c);
  if (ak_store_list (&recs, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      const char *st = recs[i].load_error ? "error" : ak_sandbox_status (&recs[i]);
      c->total++;
      if (strcmp (st, "running") == 0)
        c->running++;
      else if (strcmp (st, "stopped") == 0)
        c->stopped++;
      else if (strcmp (st, "created") == 0)
        c->created++;
      else
        c->broken++;
    }
  ak_store_list_free (recs, n);
  return 0;
}

static json_t *
counts_json (const counts_t *c)
{
  return json_pack ("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t) c->total, "running", (json_int_t) c->running,
                    "stopped", (json_int_t) c->stopped, "created", (json_int_t) c->created, "error",
                    (json_int_t) c->broken);
}

static unsigned subscriber_count (void);

result_t
ak_api_status (ak_http_req_t *r)
{
  counts_t c;
  ak_error_t *err = NULL;
  if (count_sandboxes (&c, &err) < 0)
    return ak_http_fail_err (r, err);
  return ak_http_ok (r, MHD_HTTP_OK,
                     json_pack ("{s:s, s:s, s:s, s:I, s:I, s:I}", "status", "ok", "version", AK_VERSION, "backend",
                                "container", "uptime_seconds", (json_int_t) (time (NULL) - started_at), "sandboxes",
                                (json_int_t) c.total, "running", (json_int_t) c.running));
}

result_t
ak_api_stats (ak_http_req_t *r)
{
  counts_t c;
  ak_error_t *err = NULL;
  json_t *errs, *j;

  if (count_sandboxes (&c, &err) < 0)
    return ak_http_fail_err (r, err);
  errs = json_object ();
  pthread_mutex_lock (&stats_lock);
  for (size_t i = 0; i <= N_KINDS; i++)
    if (errors[i] > 0)
      json_object_set_new (errs, i < N_KINDS ? error_kinds[i].kind : "other", json_integer ((json_int_t) errors[i]));
  j = json_pack ("{s:o, s:I, s:{s:I, s:f}, s:o, s:I, s:I, s:I}", "sandboxes", counts_json (&c), "runs_total",
                 (json_int_t) runs_total, "execs", "total", (json_int_t) execs_total, "seconds_total", exec_sum,
                 "errors", errs, "events_total", (json_int_t) atomic_load (&events_total), "event_subscribers",
                 (json_int_t) subscriber_count (), "uptime_seconds", (json_int_t) (time (NULL) - started_at));
  pthread_mutex_unlock (&stats_lock);
  return ak_http_ok (r, MHD_HTTP_OK, j);
}

static void
put (char **buf, size_t *len, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
put (char **buf, size_t *len, const char *fmt, ...)
{
  _cleanup_free_ char *line = NULL;
  va_list ap;
  size_t n;
  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  n = strlen (line);
  *buf = ak_xrealloc (*buf, *len + n + 1);
  memcpy (*buf + *len, line, n + 1);
  *len += n;
}

result_t
ak_api_metrics (ak_http_req_t *r)
{
  counts_t c;
  ak_error_t *err = NULL;
  char *text = NULL;
  size_t len = 0;
  struct MHD_Response *resp;
  result_t ret;

  if (count_sandboxes (&c, &err) < 0)
    return ak_http_fail_err (r, err);
  put (&text, &len, "# HELP agentkernel_sandboxes Persistent sandboxes by state.\n"
                    "# TYPE agentkernel_sandboxes gauge\n");
  put (&text, &len, "agentkernel_sandboxes{state=\"running\"} %llu\n", c.running);
  put (&text, &len, "agentkernel_sandboxes{state=\"stopped\"} %llu\n", c.stopped);
  put (&text, &len, "agentkernel_sandboxes{state=\"created\"} %llu\n", c.created);
  put (&text, &len, "agentkernel_sandboxes{state=\"error\"} %llu\n", c.broken);
  pthread_mutex_lock (&stats_lock);
  put (&text, &len,
       "# HELP agentkernel_runs_total Commands run in new sandboxes (/run, /run/stream, /batch/run).\n"
       "# TYPE agentkernel_runs_total counter\nagentkernel_runs_total %llu\n",
       runs_total);
  put (&text, &len, "# HELP agentkernel_exec_duration_seconds Commands run in persistent sandboxes, start to end.\n"
                    "# TYPE agentkernel_exec_duration_seconds histogram\n");
  for (size_t i = 0; i < N_BUCKETS; i++)
    put (&text, &len, "agentkernel_exec_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i], exec_bucket[i]);
  put (&text, &len, "agentkernel_exec_duration_seconds_bucket{le=\"+Inf\"} %llu\n", execs_total);
  put (&text, &len, "agentkernel_exec_duration_seconds_sum %.6f\n", exec_sum);
  put (&text, &len, "agentkernel_exec_duration_seconds_count %llu\n", execs_total);
  put (&text, &len, "# HELP agentkernel_errors_total Requests answered with an error, by kind.\n"
                    "# TYPE agentkernel_errors_total counter\n");
  for (size_t i = 0; i <= N_KINDS; i++)
    put (&text, &len, "agentkernel_errors_total{kind=\"%s\"} %llu\n", i < N_KINDS ? error_kinds[i].kind : "other",
         errors[i]);
  pthread_mutex_unlock (&stats_lock);
  put (&text, &len,
       "# HELP agentkernel_events_total Lifecycle events sent to /events.\n"
       "# TYPE agentkernel_events_total counter\nagentkernel_events_total %llu\n"
       "# HELP agentkernel_uptime_seconds Seconds since the server started.\n"
       "# TYPE agentkernel_uptime_seconds gauge\nagentkernel_uptime_seconds %lld\n",
       (unsigned long long) atomic_load (&events_total), (long long) (time (NULL) - started_at));
  resp = MHD_create_response_from_buffer (len, text, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL)
    {
      free (text);
      return MHD_NO;
    }
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  ret = MHD_queue_response (r->conn, MHD_HTTP_OK, resp);
  MHD_destroy_response (resp);
  return ret;
}

/* ---- garbage collection --------------------------------------------------- */

result_t
ak_api_gc (ak_http_req_t *r, json_t *body)
{
  int n;
  if (json_object_size (body) > 0)
    return ak_http_fail (r, MHD_HTTP_BAD_REQUEST, "POST /gc takes no fields");
  n = ak_sandbox_remove_expired ((long long) time (NULL));
  return ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:i}", "removed", n));
}

/* ---- the event stream ----------------------------------------------------- */

typedef struct subscriber {
  struct subscriber *next;
  int wake[2];
  char *buf; /* under subs_lock */
  size_t len;
  bool overflow, ended;
  /* the reader's own */
  char *out;
  size_t out_len, out_off;
  int watch_fd;
  int keepalive_ms;
  bool finished;
} subscriber_t;

static pthread_mutex_t subs_lock = PTHREAD_MUTEX_INITIALIZER;
static subscriber_t *subs;
static unsigned n_subs;
static bool shutting_down;
static unsigned long long event_id;

static unsigned
subscriber_count (void)
{
  unsigned n;
  pthread_mutex_lock (&subs_lock);
  n = n_subs;
  pthread_mutex_unlock (&subs_lock);
  return n;
}

static void
wake (subscriber_t *s)
{
  ssize_t rc = write (s->wake[1], "x", 1);
  (void) rc; /* a full pipe is already awake */
}

static void
on_event (const char *ev, const char *name)
{
  char when[32];
  time_t now = time (NULL);
  struct tm tm;
  _cleanup_free_ char *line = NULL;
  json_t *data;
  char *dj;

  gmtime_r (&now, &tm);
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  data = json_pack ("{s:s, s:s, s:s}", "event", ev, "sandbox", name, "time", when);
  dj = data ? json_dumps (data, JSON_COMPACT) : NULL;
  json_decref (data);
  if (dj == NULL)
    ak_oom ();
  pthread_mutex_lock (&subs_lock);
  line = ak_xasprintf ("event: %s\nid: %llu\ndata: %s\n\n", ev, ++event_id, dj);
  free (dj);
  for (subscriber_t *s = subs; s; s = s->next)
    {
      size_t n = strlen (line);
      if (s->overflow)
        continue;
      if (s->len + n > MAX_BACKLOG)
        s->overflow = true;
      else
        {
          s->buf = ak_xrealloc (s->buf, s->len + n + 1);
          memcpy (s->buf + s->len, line, n + 1);
          s->len += n;
        }
      wake (s);
    }
  pthread_mutex_unlock (&subs_lock);
  atomic_fetch_add (&events_total, 1);
}

void
ak_obs_init (void)
{
  started_at = time (NULL);
  ak_sandbox_set_observer (on_event);
}

void
ak_obs_shutdown (void)
{
  pthread_mutex_lock (&subs_lock);
  shutting_down = true;
  for (subscriber_t *s = subs; s; s = s->next)
    wake (s);
  pthread_mutex_unlock (&subs_lock);
}

static ssize_t
events_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
  subscriber_t *s = cls;
  size_t n;
  (void) pos;

  while (s->out_off == s->out_len)
    {
      struct pollfd p[2] = { { .fd = s->wake[0], .events = POLLIN }, { .fd = s->watch_fd, .events = POLLRDHUP } };
      char drain[64];
      bool overflow, stop;
      int rc;

      if (s->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
      s->out_off = s->out_len = 0;
      rc = poll (p, s->watch_fd >= 0 ? 2 : 1, s->keepalive_ms);
      if (rc < 0 && errno != EINTR)
        return MHD_CONTENT_READER_END_WITH_ERROR;
      if (s->watch_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left */
      while (read (s->wake[0], drain, sizeof drain) > 0)
        ;
      pthread_mutex_lock (&subs_lock);
      free (s->out);
      s->out = s->buf;
      s->out_len = s->len;
      s->buf = NULL;
      s->len = 0;
      overflow = s->overflow;
      stop = shutting_down;
      pthread_mutex_unlock (&subs_lock);
      if (overflow)
        {
          static const char msg[] = "event: error\ndata: {\"message\":\"this client fell too far behind; reconnect\"}\n\n";
          s->out = ak_xrealloc (s->out, s->out_len + sizeof msg);
          memcpy (s->out + s->out_len, msg, sizeof msg);
          s->out_len += sizeof msg - 1;
          s->finished = true;
        }
      else if (stop)
        s->finished = true;
      else if (s->out_len == 0 && rc == 0)
        {
          s->out = ak_xstrdup (": keep-alive\n\n");
          s->out_len = strlen (s->out);
        }
    }
  n = s->out_len - s->out_off < max ? s->out_len - s->out_off : max;
  memcpy (buf, s->out + s->out_off, n);
  s->out_off += n;
  return (ssize_t) n;
}

static void
events_release (void *cls)
{
  subscriber_t *s = cls;
  pthread_mutex_lock (&subs_lock);
  for (subscriber_t **p = &subs; *p; p = &(*p)->next)
    if (*p == s)
      {
        *p = s->next;
        n_subs--;
        break;
      }
  pthread_mutex_unlock (&subs_lock);
  close (s->wake[0]);
  close (s->wake[1]);
  free (s->buf);
  free (s->out);
  free (s);
}

result_t
ak_api_events (ak_http_req_t *r, json_t *body)
{
  const char *ka = MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, "keepalive");
  unsigned long keepalive = KEEPALIVE_DEFAULT_S;
  struct MHD_Response *resp;
  subscriber_t *s;
  result_t ret;

  if (json_object_size (body) > 0)
    return ak_http_fail (r, MHD_HTTP_BAD_REQUEST, "GET /events takes no body");
  /* Below the idle timeout, which would otherwise end a quiet stream. */
  unsigned long most = ak_http_opts->idle_timeout > 1 && ak_http_opts->idle_timeout <= 300
                           ? ak_http_opts->idle_timeout - 1
                           : 300;
  if (keepalive > most)
    keepalive = most;
  if (ka != NULL)
    {
      char *end = NULL;
      errno = 0;
      keepalive = strtoul (ka, &end, 10);
      if (ka[0] < '0' || ka[0] > '9' || *end != '\0' || errno != 0 || keepalive < 1 || keepalive > most)
        return ak_http_fail (r, MHD_HTTP_BAD_REQUEST,
                             "keepalive must be a number of seconds from 1 to %lu (below this server's --idle-timeout)",
                             most);
    }
  s = ak_xcalloc (1, sizeof *s);
  if (pipe2 (s->wake, O_CLOEXEC | O_NONBLOCK) < 0)
    {
      free (s);
      return ak_http_fail (r, MHD_HTTP_INTERNAL_SERVER_ERROR, "pipe: %s", strerror (errno));
    }
  s->watch_fd = ak_http_client_fd (r);
  s->keepalive_ms = (int) keepalive * 1000;
  pthread_mutex_lock (&subs_lock);
  if (n_subs >= MAX_SUBSCRIBERS || shutting_down)
    {
      pthread_mutex_unlock (&subs_lock);
      close (s->wake[0]);
      close (s->wake[1]);
      free (s);
      return ak_http_fail (r, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "too many event streams at once (this server serves %d); retry later", MAX_SUBSCRIBERS);
    }
  s->next = subs;
  subs = s;
  n_subs++;
  /* The first bytes say the stream is open (clients wait for headers). */
  s->buf = ak_xstrdup (": agentkernel events\n\n");
  s->len = strlen (s->buf);
  wake (s);
  pthread_mutex_unlock (&subs_lock);
  resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096, events_reader, s, events_release);
  if (resp == NULL)
    {
      events_release (s);
      return MHD_NO;
    }
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  ret = MHD_queue_response (r->conn, MHD_HTTP_OK, resp);
  MHD_destroy_response (resp);
  return ret;
}
