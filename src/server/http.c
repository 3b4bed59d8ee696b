/* The server's plumbing: the daemon, limits, authentication, responses and
 * the registry of running jobs.  Endpoints live in api.c and stream.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "service/sandbox.h"
#include "server/common.h"
#include "server/http_internal.h"
#include "server/peer.h"

const ak_http_opts_t *ak_http_opts;

static atomic_uint connections;

void
ak_http_opts_default (ak_http_opts_t *o)
{
  *o = (ak_http_opts_t){
    .host = "127.0.0.1",
    .port = 18888,
    .max_body = 32u * 1024 * 1024,
    .max_header = 64u * 1024,
    .max_connections = 256,
    .idle_timeout = 60,
    .body_timeout = 60,
    .command_timeout = 3600,
    .max_runs = 8,
    .reap_interval = 5,
  };
}

long long
ak_http_now_ms (void)
{
  return (long long) (ak_now_ns () / 1000000);
}

long long
ak_http_command_deadline (void)
{
  if (ak_http_opts->command_timeout == 0)
    return -1;
  return ak_http_now_ms () + (long long) ak_http_opts->command_timeout * 1000;
}

/* ---- responses --------------------------------------------------------- */

static enum MHD_Result
send_json (ak_http_req_t *r, unsigned status, json_t *j)
{
  char *text = json_dumps (j, JSON_COMPACT);
  struct MHD_Response *resp;
  enum MHD_Result ret;

  json_decref (j);
  if (text == NULL)
    ak_oom ();
  resp = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL)
    {
      free (text);
      return MHD_NO;
    }
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header (resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  ret = MHD_queue_response (r->conn, status, resp);
  MHD_destroy_response (resp);
  return ret;
}

enum MHD_Result
ak_http_ok (ak_http_req_t *r, unsigned status, json_t *data)
{
  return send_json (r, status, json_pack ("{s:b, s:o}", "success", 1, "data", data ? data : json_null ()));
}

enum MHD_Result
ak_http_fail (ak_http_req_t *r, unsigned status, const char *fmt, ...)
{
  _cleanup_free_ char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  ak_obs_error (status);
  return send_json (r, status,
                    json_pack ("{s:b, s:o}", "success", 0, "error", ak_json_text (msg, strlen (msg))));
}

unsigned
ak_http_status_of (const ak_error_t *err)
{
  switch (err ? err->code : 0)
    {
    case ENOENT:
      return MHD_HTTP_NOT_FOUND;
    case EEXIST:
    case EBUSY:
    case EALREADY:
    case ENOTCONN:
    case ENOTEMPTY:
      return MHD_HTTP_CONFLICT;
    case EINVAL:
    case ELOOP:
    case EISDIR:
    case ENOTDIR:
    case ENAMETOOLONG:
      return MHD_HTTP_BAD_REQUEST;
    case EFBIG:
      return MHD_HTTP_CONTENT_TOO_LARGE;
    case EACCES:
    case EPERM:
      return MHD_HTTP_FORBIDDEN;
    case ETIMEDOUT:
      return MHD_HTTP_GATEWAY_TIMEOUT;
    default:
      return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

enum MHD_Result
ak_http_fail_err (ak_http_req_t *r, ak_error_t *err)
{
  enum MHD_Result ret = ak_http_fail (r, ak_http_status_of (err), "%s", err ? err->msg : "failed");
  ak_error_free (err);
  return ret;
}

int
ak_http_client_fd (ak_http_req_t *r)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info (r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  return ci ? ci->connect_fd : -1;
}

/* ---- jobs and run slots ------------------------------------------------ */

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static ak_job_t **jobs;
static size_t n_jobs;
static bool stopping;

void
ak_http_job_register (ak_job_t *j)
{
  pthread_mutex_lock (&jobs_lock);
  jobs = ak_xrealloc (jobs, (n_jobs + 1) * sizeof *jobs);
  jobs[n_jobs++] = j;
  if (stopping)
    ak_job_cancel (j);
  pthread_mutex_unlock (&jobs_lock);
}

void
ak_http_job_unregister (ak_job_t *j)
{
  pthread_mutex_lock (&jobs_lock);
  for (size_t i = 0; i < n_jobs; i++)
    if (jobs[i] == j)
      {
        jobs[i] = jobs[--n_jobs];
        break;
      }
  pthread_mutex_unlock (&jobs_lock);
}

static void
cancel_all_jobs (void)
{
  pthread_mutex_lock (&jobs_lock);
  stopping = true;
  for (size_t i = 0; i < n_jobs; i++)
    ak_job_cancel (jobs[i]);
  pthread_mutex_unlock (&jobs_lock);
}

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_free = PTHREAD_COND_INITIALIZER;
static unsigned slots_used;

void
ak_http_run_slot_take (void)
{
  pthread_mutex_lock (&slots_lock);
  while (slots_used >= ak_http_opts->max_runs)
    pthread_cond_wait (&slots_free, &slots_lock);
  slots_used++;
  pthread_mutex_unlock (&slots_lock);
}

void
ak_http_run_slot_give (void)
{
  pthread_mutex_lock (&slots_lock);
  slots_used--;
  pthread_cond_signal (&slots_free);
  pthread_mutex_unlock (&slots_lock);
}

/* ---- authentication ---------------------------------------------------- */

/* Compares without an early exit, so the time taken does not tell how much
 * of a guess was right (nor, beyond its own length, the key's length). */
static bool
key_matches (const char *given, const char *key)
{
  size_t glen = strlen (given), klen = strlen (key);
  unsigned char diff = glen != klen;
  for (size_t i = 0; i < glen; i++)
    diff |= (unsigned char) given[i] ^ (unsigned char) key[i % klen];
  return diff == 0;
}

static bool
authorized (struct MHD_Connection *conn)
{
  const char *key = ak_http_opts->api_key;
  const char *auth, *xkey;
  bool ok = false;

  if (key == NULL)
    return true;
  auth = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  xkey = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "X-API-Key");
  if (auth != NULL && strncasecmp (auth, "Bearer ", 7) == 0)
    ok |= key_matches (auth + 7, key);
  if (xkey != NULL)
    ok |= key_matches (xkey, key);
  return ok;
}

/* Without a key, the server is its own user's alone: any local user can
 * reach a loopback port, and a command run for them would run with the
 * server user's rights (its home, its files, root's when root started it).
 * A connection whose owner cannot be told is a stranger's. */
static bool
own_user (struct MHD_Connection *conn, char **why)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  ak_error_t *err = NULL;
  uid_t uid;

  if (ak_http_opts->api_key != NULL)
    return true;
  if (ci == NULL || ak_peer_uid (ci->connect_fd, &uid, &err) < 0)
    {
      *why = ak_xasprintf ("forbidden: cannot tell which user connected (%s); this server serves "
                           "uid %u only, or clients with the API key (start it with "
                           "AGENTKERNEL_API_KEY set)",
                           err ? err->msg : "no socket", (unsigned) geteuid ());
      ak_error_free (err);
      return false;
    }
  if (uid == geteuid ())
    return true;
  *why = ak_xasprintf ("forbidden: this server serves uid %u only, and uid %u connected; to serve "
                       "other users, start it with AGENTKERNEL_API_KEY set and send the key",
                       (unsigned) geteuid (), (unsigned) uid);
  return false;
}

/* ---- the access handler ------------------------------------------------ */

static void
split_url (ak_http_req_t *r, const char *url)
{
  _cleanup_free_ char *copy = ak_xstrdup (url);
  char *save = NULL, *s;
  r->seg = ak_xcalloc (1, sizeof (char *));
  for (s = strtok_r (copy, "/", &save); s; s = strtok_r (NULL, "/", &save))
    {
      ak_strv_push (&r->seg, s);
      r->nseg++;
    }
}

static enum MHD_Result
access_handler (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  ak_http_req_t *r = *con_cls;
  (void) cls, (void) version;

  if (r == NULL)
    {
      const char *cl;
      r = ak_xcalloc (1, sizeof *r);
      *con_cls = r;
      r->conn = conn;
      r->method = method;
      r->url = url;
      r->started_ms = ak_http_now_ms ();
      if (atomic_fetch_add (&connections, 1) >= ak_http_opts->max_connections)
        return ak_http_fail (r, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "too many requests at once (this server serves %u); retry later",
                             ak_http_opts->max_connections);
      if (!authorized (conn))
        return ak_http_fail (r, MHD_HTTP_UNAUTHORIZED,
                             "unauthorized: send the API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'");
      {
        _cleanup_free_ char *why = NULL;
        if (!own_user (conn, &why))
          return ak_http_fail (r, MHD_HTTP_FORBIDDEN, "%s", why);
      }
      cl = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      if (cl != NULL && strtoull (cl, NULL, 10) > ak_http_opts->max_body)
        return ak_http_fail (r, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than %zu bytes",
                             ak_http_opts->max_body);
      split_url (r, url);
      return MHD_YES;
    }
  if (*upload_size > 0)
    {
      if (ak_http_now_ms () - r->started_ms > (long long) ak_http_opts->body_timeout * 1000)
        r->too_slow = true;
      else if (r->len + *upload_size > ak_http_opts->max_body)
        r->too_large = true;
      else if (!r->too_large)
        {
          r->body = ak_xrealloc (r->body, r->len + *upload_size + 1);
          memcpy (r->body + r->len, upload, *upload_size);
          r->len += *upload_size;
          r->body[r->len] = '\0';
        }
      *upload_size = 0;
      return MHD_YES;
    }
  if (r->too_slow)
    return ak_http_fail (r, MHD_HTTP_REQUEST_TIMEOUT, "request body took longer than %u s to arrive",
                         ak_http_opts->body_timeout);
  if (r->too_large)
    return ak_http_fail (r, MHD_HTTP_CONTENT_TOO_LARGE, "request body is larger than %zu bytes",
                         ak_http_opts->max_body);
  return ak_api_dispatch (r);
}

static void
request_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
  ak_http_req_t *r = *con_cls;
  (void) cls, (void) conn, (void) toe;
  if (r == NULL)
    return;
  atomic_fetch_sub (&connections, 1);
  ak_strv_free (r->seg);
  free (r->body);
  free (r);
  *con_cls = NULL;
}

/* Percent-decodes in place, except that an encoded NUL stays "%00" (so it
 * cannot cut a path short; file paths then refuse it). */
static size_t
unescape (void *cls, struct MHD_Connection *c, char *s)
{
  char *w = s;
  (void) cls, (void) c;
  for (char *p = s; *p; p++)
    {
      int hi = p[0] == '%' ? ak_hex_value (p[1]) : -1;
      int lo = hi >= 0 ? ak_hex_value (p[2]) : -1;
      if (lo >= 0 && (hi | lo) != 0)
        {
          *w++ = (char) (hi << 4 | lo);
          p += 2;
        }
      else
        *w++ = *p;
    }
  *w = '\0';
  return (size_t) (w - s);
}

static void
log_mhd (void *cls, const char *fmt, va_list ap)
{
  (void) cls;
  fputs ("agentkernel: serve: ", stderr);
  vfprintf (stderr, fmt, ap);
}

/* ---- expired sandboxes ------------------------------------------------- */

static void *
reaper (void *arg)
{
  (void) arg;
  for (;;)
    {
      int n = ak_sandbox_remove_expired ((long long) time (NULL));
      if (n > 0)
        fprintf (stderr, "agentkernel: serve: removed %d expired sandbox%s\n", n, n == 1 ? "" : "es");
      sleep (ak_http_opts->reap_interval);
    }
  return NULL;
}

/* ---- serving ----------------------------------------------------------- */

static bool
is_loopback (const struct sockaddr *sa)
{
  if (sa->sa_family == AF_INET)
    return (ntohl (((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK (&((const struct sockaddr_in6 *) sa)->sin6_addr);
  return false;
}

/* A Unix socket only its owner can connect to (0600, made so under a
 * umask rather than chmod'ed after bind, which would leave a window).  A
 * leftover socket at the path is replaced; anything else there is not. */
static int
unix_listener (const char *path, ak_error_t **err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct stat st;
  mode_t old;
  int fd, rc;

  if (strlen (path) >= sizeof sa.sun_path)
    return ak_error_set (err, 0, "socket path %s is too long (at most %zu bytes)", path,
                         sizeof sa.sun_path - 1);
  strcpy (sa.sun_path, path);
  if (lstat (path, &st) == 0)
    {
      if (!S_ISSOCK (st.st_mode))
        return ak_error_set (err, EEXIST, "%s exists and is not a socket", path);
      unlink (path);
    }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return ak_error_set (err, errno, "socket");
  old = umask (0177);
  rc = bind (fd, (struct sockaddr *) &sa, sizeof sa);
  umask (old);
  if (rc < 0 || listen (fd, 128) < 0)
    {
      int e = errno;
      close (fd);
      return ak_error_set (err, e, "cannot listen on %s", path);
    }
  return fd;
}

/* Signals are taken by the main thread only (sigwait); every other
 * thread, and so every request, inherits the mask. */
static void
block_signals (sigset_t *mask)
{
  sigemptyset (mask);
  sigaddset (mask, SIGINT);
  sigaddset (mask, SIGTERM);
  sigaddset (mask, SIGHUP);
  pthread_sigmask (SIG_BLOCK, mask, NULL);
  signal (SIGPIPE, SIG_IGN);
}

static int
serve_unix (const ak_http_opts_t *o, sigset_t *mask, ak_error_t **err)
{
  struct MHD_Daemon *d;
  pthread_t reaper_thread;
  int fd = unix_listener (o->socket_path, err), sig;

  if (fd < 0)
    return -1;
  d = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL
                            | MHD_USE_ERROR_LOG,
                        0, NULL, NULL, access_handler, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
                        MHD_OPTION_LISTEN_SOCKET, fd,
                        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                        MHD_OPTION_CONNECTION_LIMIT, (unsigned) (o->max_connections + 64),
                        MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout,
                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->max_header,
                        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                        MHD_OPTION_END);
  if (d == NULL)
    {
      int e = errno;
      close (fd);
      unlink (o->socket_path);
      return ak_error_set (err, e, "cannot serve on %s", o->socket_path);
    }
  fprintf (stderr, "agentkernel: serve: listening on unix:%s%s\n", o->socket_path,
           o->api_key ? " (API key required)" : "");
  ak_obs_init ();
  if (pthread_create (&reaper_thread, NULL, reaper, NULL) == 0)
    pthread_detach (reaper_thread);
  while (sigwait (mask, &sig) != 0 || sig == SIGHUP)
    ;
  fprintf (stderr, "agentkernel: serve: %s: ending running commands and stopping\n", strsignal (sig));
  cancel_all_jobs ();
  ak_obs_shutdown ();
  MHD_stop_daemon (d);
  unlink (o->socket_path);
  return 0;
}

int
ak_http_serve (const ak_http_opts_t *o, ak_error_t **err)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
  struct addrinfo *ai = NULL;
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *info;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  char port[16], shown[INET6_ADDRSTRLEN];
  sigset_t mask;
  pthread_t reaper_thread;
  int sig, rc;

  ak_http_opts = o;
  if (o->api_key != NULL && o->api_key[0] == '\0')
    return ak_error_set (err, 0, "AGENTKERNEL_API_KEY is set but empty: set a key, or unset it");
  if (o->socket_path != NULL)
    {
      block_signals (&mask);
      return serve_unix (o, &mask, err);
    }
  snprintf (port, sizeof port, "%u", o->port);
  rc = getaddrinfo (o->host, port, &hints, &ai);
  if (rc != 0)
    return ak_error_set (err, 0, "cannot use address '%s': %s", o->host, gai_strerror (rc));
  if (!is_loopback (ai->ai_addr) && o->api_key == NULL)
    {
      freeaddrinfo (ai);
      return ak_error_set (err, 0,
                           "refusing to listen on %s without an API key: anyone who can reach it could run "
                           "commands. Set AGENTKERNEL_API_KEY, or listen on 127.0.0.1",
                           o->host);
    }

  block_signals (&mask);

  d = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL
                            | MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                        0, NULL, NULL, access_handler, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
                        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                        MHD_OPTION_CONNECTION_LIMIT, (unsigned) (o->max_connections + 64),
                        MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout,
                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->max_header,
                        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                        MHD_OPTION_END);
  if (d == NULL)
    {
      int e = errno;
      freeaddrinfo (ai);
      return ak_error_set (err, e, "cannot listen on %s port %u", o->host, o->port);
    }
  freeaddrinfo (ai);
  info = MHD_get_daemon_info (d, MHD_DAEMON_INFO_LISTEN_FD);
  if (info == NULL || getsockname (info->listen_fd, (struct sockaddr *) &bound, &blen) < 0)
    {
      MHD_stop_daemon (d);
      return ak_error_set (err, errno, "getsockname");
    }
  if (bound.ss_family == AF_INET6)
    inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &bound)->sin6_addr, shown, sizeof shown);
  else
    inet_ntop (AF_INET, &((struct sockaddr_in *) &bound)->sin_addr, shown, sizeof shown);
  fprintf (stderr, "agentkernel: serve: listening on http://%s%s%s:%u%s\n", bound.ss_family == AF_INET6 ? "[" : "",
           shown, bound.ss_family == AF_INET6 ? "]" : "",
           ntohs (bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                              : ((struct sockaddr_in *) &bound)->sin_port),
           o->api_key ? " (API key required)" : "");
  ak_obs_init ();
  if (pthread_create (&reaper_thread, NULL, reaper, NULL) == 0)
    pthread_detach (reaper_thread);

  while (sigwait (&mask, &sig) != 0 || sig == SIGHUP)
    ;
  fprintf (stderr, "agentkernel: serve: %s: ending running commands and stopping\n", strsignal (sig));
  cancel_all_jobs ();
  ak_obs_shutdown ();
  MHD_stop_daemon (d);
  return 0;
}
