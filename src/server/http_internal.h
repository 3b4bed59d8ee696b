/* Shared between the server's plumbing (http.c) and its endpoints
 * (api.c, stream.c).  Not a public interface. */
#ifndef AK_SERVER_HTTP_INTERNAL_H
#define AK_SERVER_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "server/http.h"
#include "server/job.h"

/* One request: its body and where it is in its life. */
typedef struct ak_http_req {
  struct MHD_Connection *conn;
  const char *method;
  char **seg; /* URL path segments (percent-decoded), NULL-terminated */
  size_t nseg;
  const char *url; /* the whole decoded path */
  char *body;
  size_t len;
  bool too_large, too_slow;
  long long started_ms;
} ak_http_req_t;

extern const ak_http_opts_t *ak_http_opts;

static inline bool
ak_http_is (const ak_http_req_t *r, const char *method)
{
  return strcmp (r->method, method) == 0;
}

/* Responses.  `data` is stolen.  Each returns what the access handler
 * returns. */
enum MHD_Result ak_http_ok (ak_http_req_t *r, unsigned status, json_t *data);
enum MHD_Result ak_http_fail (ak_http_req_t *r, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* A library error, with the status its code stands for; frees err. */
enum MHD_Result ak_http_fail_err (ak_http_req_t *r, ak_error_t *err);
unsigned ak_http_status_of (const ak_error_t *err);

/* The client's socket, to notice it hanging up while a command runs. */
int ak_http_client_fd (ak_http_req_t *r);

/* Milliseconds since some fixed point (CLOCK_MONOTONIC). */
long long ak_http_now_ms (void);
/* The deadline of a command started now (-1: none). */
long long ak_http_command_deadline (void);

/* Jobs the server is running, so a shutdown can end them. */
void ak_http_job_register (ak_job_t *j);
void ak_http_job_unregister (ak_job_t *j);
/* Bounds the number of sandboxes being created at once (run, batch). */
void ak_http_run_slot_take (void);
void ak_http_run_slot_give (void);

/* Endpoints: api.c routes (and runs, and manages sandboxes), stream.c
 * streams, api_io.c serves what is inside a sandbox. */
enum MHD_Result ak_api_dispatch (ak_http_req_t *r);
enum MHD_Result ak_api_run_stream (ak_http_req_t *r, json_t *body);
enum MHD_Result ak_api_file (ak_http_req_t *r, const char *name, json_t *body);
enum MHD_Result ak_api_files (ak_http_req_t *r, const char *name, json_t *body);
enum MHD_Result ak_api_logs (ak_http_req_t *r, const char *name);
enum MHD_Result ak_api_detached (ak_http_req_t *r, const char *name, json_t *body);

/* observe.c: the server's own state and its event stream. */
void ak_obs_init (void);     /* at start: counters from zero, events observed */
void ak_obs_shutdown (void); /* ends every event stream */
void ak_obs_run (void);      /* a command started in a new sandbox */
void ak_obs_exec (long long ms); /* a command in a persistent sandbox ended */
void ak_obs_error (unsigned status);
enum MHD_Result ak_api_status (ak_http_req_t *r);
enum MHD_Result ak_api_stats (ak_http_req_t *r);
enum MHD_Result ak_api_metrics (ak_http_req_t *r);
enum MHD_Result ak_api_events (ak_http_req_t *r, json_t *body);
enum MHD_Result ak_api_gc (ak_http_req_t *r, json_t *body);

/* The library's exec request for a checked API command. */
struct ak_api_cmd;
void ak_api_exec_req (const struct ak_api_cmd *cmd, ak_exec_req_t *req);

/* The spec a run request's sandbox gets, validated. */
/* The spec of a /run or /run/stream body; resolve_image: the image is
 * resolved (pulled when absent) here, else the caller does it. */
int ak_api_run_spec (const json_t *body, ak_spec_t *spec, bool resolve_image, ak_error_t **err);
/* An image error as the API answers it: 404 when it is not there, else 400. */
void ak_api_image_error (ak_error_t *err);

#endif
