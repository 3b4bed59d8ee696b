/* The HTTP API's endpoints: routing, and each one as a thin layer over the
 * library.  Requests are checked by request.c before anything acts. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"
#include "service/image.h"
#include "service/sandbox.h"
#include "service/store.h"
#include "server/common.h"
#include "server/http_internal.h"
#include "server/job.h"
#include "server/request.h"

/* Output kept per stream. */
#define OUTPUT_CAP (4u * 1024 * 1024)

typedef enum MHD_Result result_t;

/* The sandbox name in the URL: checked before it names a path. */
static const char *
url_name (ak_http_req_t *r, ak_error_t **err)
{
  const char *name = r->seg[1];
  if (!ak_name_valid (name))
    return ak_error_coded (err, EINVAL, "invalid sandbox name '%.64s' (1-63 of letters, digits, '-', '_')", name),
           NULL;
  return name;
}

/* ---- commands --------------------------------------------------------- */

static json_t *
output_json (const ak_job_capture_t *c, int exit_code)
{
  json_t *j = json_pack ("{s:o, s:o, s:o, s:i}", "output", ak_json_text (c->all ? c->all : "", c->all_len), "stdout",
                         ak_json_text (c->out ? c->out : "", c->out_len), "stderr",
                         ak_json_text (c->err ? c->err : "", c->err_len), "exit_code", exit_code);
  if (c->truncated)
    json_object_set_new (j, "truncated", json_true ());
  return j;
}

/* Runs a job to its end for the request; NULL when the client went away
 * (then nothing is sent), else the response's data or *err. */
static json_t *
finish_job (ak_job_t *job, int watch_fd, bool *gone, ak_error_t **err)
{
  ak_job_capture_t cap = { .cap = OUTPUT_CAP };
  json_t *data = NULL;
  int code = 0, rc;

  ak_http_job_register (job);
  rc = ak_job_collect (job, ak_http_command_deadline (), watch_fd, &cap, &code, err);
  ak_http_job_unregister (job);
  ak_job_free (job);
  if (rc == AK_JOB_CLIENT_GONE)
    {
      *gone = true;
      ak_error_clear (err);
    }
  else if (rc == AK_JOB_TIMED_OUT)
    ak_error_coded (err, ETIMEDOUT, "the command ran longer than this server's limit of %u s and was killed",
                    ak_http_opts->command_timeout);
  else if (rc == 0)
    data = output_json (&cap, code);
  ak_job_capture_clear (&cap);
  return data;
}

static result_t
reply_job (ak_http_req_t *r, json_t *data, bool gone, ak_error_t *err)
{
  if (gone)
    return MHD_NO; /* nobody to answer: close */
  if (data == NULL)
    return ak_http_fail_err (r, err);
  return ak_http_ok (r, MHD_HTTP_OK, data);
}

void
ak_api_image_error (ak_error_t *err)
{
  /* An image that is not there is 404; one that cannot be had (an
   * unreachable or refusing registry, a bad reference) is the request's
   * error, 400. */
  if (err != NULL && err->code != ENOENT)
    err->code = EINVAL;
}

int
ak_api_run_spec (const json_t *body, ak_spec_t *spec, bool resolve_image, ak_error_t **err)
{
  ak_api_cmd_t cmd;
  int rc = -1;

  ak_spec_init (spec);
  if (ak_api_parse_run (body, &cmd, err) < 0)
    goto out;
  ak_spec_clear (spec);
  if (ak_server_spec (cmd.profile, spec, err) < 0
      || ak_server_hosts (spec, cmd.allow_hosts, cmd.block_hosts, err) < 0
      || ak_cmdpolicy_merge (&spec->sec.commands, &cmd.commands, err) < 0
      || ak_server_ports (spec, cmd.ports, err) < 0)
    goto out;
  spec->argv = cmd.argv;
  cmd.argv = NULL;
  if (cmd.image != NULL)
    {
      free (spec->image);
      spec->image = steal_pointer (&cmd.image);
    }
  if (cmd.backend != NULL)
    {
      free (spec->backend);
      spec->backend = steal_pointer (&cmd.backend);
    }
  /* The image is resolved (pulled when absent) before the run is accepted:
   * an unknown image is the request's error, not the run's. */
  if (ak_spec_validate (spec, err) < 0 || ak_backend_lookup (spec->backend, err) == NULL)
    goto out;
  if (resolve_image && ak_sandbox_image_prepare (spec, err) < 0)
    {
      ak_api_image_error (*err);
      goto out;
    }
  rc = 0;
out:
  if (rc < 0 && err && *err && (*err)->code == 0)
    (*err)->code = EINVAL;
  ak_api_cmd_clear (&cmd);
  return rc;
}

static json_t *
run_one (const ak_spec_t *spec, int watch_fd, bool *gone, ak_error_t **err)
{
  ak_job_t *job;
  json_t *data;

  ak_http_run_slot_take ();
  ak_obs_run ();
  job = ak_job_run (spec, err);
  data = job ? finish_job (job, watch_fd, gone, err) : NULL;
  ak_http_run_slot_give ();
  return data;
}

static result_t
api_run (ak_http_req_t *r, json_t *body)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  json_t *data = NULL;
  bool gone = false;

  if (ak_api_run_spec (body, &spec, true, &err) == 0)
    data = run_one (&spec, ak_http_client_fd (r), &gone, &err);
  ak_spec_clear (&spec);
  return reply_job (r, data, gone, err);
}

typedef struct batch_item {
  ak_spec_t spec;
  json_t *result;
  pthread_t thread;
  bool started;
} batch_item_t;

static void *
batch_thread (void *arg)
{
  batch_item_t *b = arg;
  ak_error_t *err = NULL;
  bool gone = false;
  json_t *data = run_one (&b->spec, -1, &gone, &err);

  if (data != NULL)
    {
      b->result = json_pack ("{s:O, s:n, s:O}", "output", json_object_get (data, "output"), "error", "exit_code",
                             json_object_get (data, "exit_code"));
      json_decref (data);
    }
  else
    {
      b->result = json_pack ("{s:n, s:o, s:n}", "output", "error",
                             ak_json_text (err ? err->msg : "failed", strlen (err ? err->msg : "failed")),
                             "exit_code");
      ak_error_free (err);
    }
  return NULL;
}

static result_t
api_batch (ak_http_req_t *r, json_t *body)
{
  ak_api_cmd_t *cmds = NULL;
  size_t n = 0;
  ak_error_t *err = NULL;
  batch_item_t *items;
  json_t *results;

  if (ak_api_parse_batch (body, &cmds, &n, &err) < 0)
    {
      for (size_t i = 0; i < n; i++)
        ak_api_cmd_clear (&cmds[i]);
      free (cmds);
      return ak_http_fail_err (r, err);
    }
  items = ak_xcalloc (n, sizeof *items);
  for (size_t i = 0; i < n && err == NULL; i++)
    {
      if (ak_server_spec (cmds[i].profile, &items[i].spec, &err) < 0
          || ak_server_hosts (&items[i].spec, cmds[i].allow_hosts, cmds[i].block_hosts, &err) < 0)
        {
          if (err->code == 0)
            err->code = EINVAL;
          ak_error_prefix (&err, "commands[%zu]", i);
          break;
        }
      items[i].spec.argv = cmds[i].argv;
      cmds[i].argv = NULL;
      if (cmds[i].backend != NULL)
        {
          free (items[i].spec.backend);
          items[i].spec.backend = steal_pointer (&cmds[i].backend);
        }
      if (ak_spec_validate (&items[i].spec, &err) < 0 || ak_backend_lookup (items[i].spec.backend, &err) == NULL)
        ak_error_prefix (&err, "commands[%zu]", i);
    }
  for (size_t i = 0; i < n && err == NULL; i++)
    items[i].started = pthread_create (&items[i].thread, NULL, batch_thread, &items[i]) == 0;
  results = json_array ();
  for (size_t i = 0; i < n; i++)
    {
      if (items[i].started)
        pthread_join (items[i].thread, NULL);
      else if (err == NULL)
        items[i].result = json_pack ("{s:n, s:s, s:n}", "output", "error", "cannot start a thread", "exit_code");
      if (items[i].result)
        json_array_append_new (results, items[i].result);
      ak_spec_clear (&items[i].spec);
      ak_api_cmd_clear (&cmds[i]);
    }
  free (items);
  free (cmds);
  if (err != NULL)
    {
      json_decref (results);
      if (err->code != EACCES) /* a refused profile stays 403 */
        err->code = EINVAL;
      return ak_http_fail_err (r, err);
    }
  return ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:o}", "results", results));
}

static result_t
api_exec (ak_http_req_t *r, const char *name, json_t *body)
{
  ak_api_cmd_t cmd;
  ak_exec_req_t req;
  ak_error_t *err = NULL;
  ak_job_t *job;
  json_t *data = NULL;
  bool gone = false;

  if (ak_api_parse_exec (body, &cmd, &err) == 0)
    {
      long long t0 = ak_http_now_ms ();
      ak_api_exec_req (&cmd, &req);
      job = ak_job_exec (name, &req, &err);
      if (job != NULL)
        data = finish_job (job, ak_http_client_fd (r), &gone, &err);
      if (data != NULL)
        ak_obs_exec (ak_http_now_ms () - t0);
    }
  ak_api_cmd_clear (&cmd);
  return reply_job (r, data, gone, err);
}

/* ---- sandboxes -------------------------------------------------------- */

static result_t
api_create (ak_http_req_t *r, json_t *body)
{
  ak_api_create_t c;
  ak_spec_t spec;
  ak_record_t rec = { 0 };
  ak_error_t *err = NULL;
  result_t ret;

  ak_spec_init (&spec);
  if (ak_api_parse_create (body, &c, &err) < 0)
    goto fail;
  ak_spec_clear (&spec);
  if (ak_server_spec (c.profile, &spec, &err) < 0)
    goto fail;
  if (ak_server_hosts (&spec, c.allow_hosts, c.block_hosts, &err) < 0
      || ak_cmdpolicy_merge (&spec.sec.commands, &c.commands, &err) < 0
      || ak_server_ports (&spec, c.ports, &err) < 0)
    {
      err->code = EINVAL;
      goto fail;
    }
  spec.name = ak_xstrdup (c.name);
  if (c.image != NULL)
    {
      free (spec.image);
      spec.image = ak_xstrdup (c.image);
    }
  if (c.backend != NULL)
    {
      free (spec.backend);
      spec.backend = ak_xstrdup (c.backend);
    }
  if (c.memory_mb > 0)
    spec.res.memory_mb = c.memory_mb, spec.res_source[0] = AK_SRC_CLI;
  if (c.vcpus > 0)
    spec.res.cpu_millis = c.vcpus * 1000, spec.res_source[1] = AK_SRC_CLI, spec.res.vcpus = c.vcpus,
    spec.res_source[3] = AK_SRC_CLI;
  if (c.disk_mb > 0)
    spec.res.disk_mb = c.disk_mb, spec.res_source[5] = AK_SRC_CLI;
  spec.labels = steal_pointer (&c.labels);
  spec.description = steal_pointer (&c.description);
  if (ak_spec_validate (&spec, &err) < 0)
    {
      err->code = EINVAL;
      goto fail;
    }
  if (ak_sandbox_image_prepare (&spec, &err) < 0)
    {
      ak_api_image_error (err);
      goto fail;
    }
  if (ak_sandbox_create (&spec, &rec, &err) < 0)
    goto fail;
  ak_record_clear (&rec);
  /* A sandbox made through the API is ready to use; one that cannot start
   * is not left behind. */
  if (ak_job_start (c.name, &err) < 0)
    {
      ak_error_t *rm = NULL;
      if (ak_sandbox_remove (c.name, true, &rm) < 0)
        ak_error_free (rm);
      goto fail;
    }
  if (ak_store_load (c.name, &rec, &err) < 0)
    goto fail;
  ret = ak_http_ok (r, MHD_HTTP_CREATED, ak_server_sandbox_json (&rec));
  ak_record_clear (&rec);
  ak_spec_clear (&spec);
  ak_api_create_clear (&c);
  return ret;
fail:
  ak_spec_clear (&spec);
  ak_api_create_clear (&c);
  return ak_http_fail_err (r, err);
}

typedef struct query_args {
  char **labels;   /* every ?label= */
  char *unknown;   /* the first argument that is not understood */
} query_args_t;

static enum MHD_Result
collect_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
  query_args_t *q = cls;
  (void) kind;
  if (strcmp (key, "label") == 0)
    ak_strv_push (&q->labels, value ? value : "");
  else if (q->unknown == NULL)
    q->unknown = ak_xstrdup (key);
  return MHD_YES;
}

static bool
labels_match_all (const ak_record_t *rec, char *const *filters)
{
  for (char *const *f = filters; f && *f; f++)
    if (!ak_labels_match (rec->labels, *f))
      return false;
  return true;
}

static result_t
api_list (ak_http_req_t *r)
{
  ak_record_t *recs = NULL;
  size_t n = 0;
  ak_error_t *err = NULL;
  json_t *arr;
  query_args_t q = { 0 };
  result_t ret;

  MHD_get_connection_values (r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
  if (q.unknown != NULL)
    ak_error_coded (&err, EINVAL, "unknown query argument '%.64s' (GET /sandboxes takes label=KEY:VALUE)", q.unknown);
  for (char **f = q.labels; err == NULL && f && *f; f++)
    ak_api_check_label_filter (*f, &err);
  if (err == NULL)
    ak_store_list (&recs, &n, &err);
  free (q.unknown);
  if (err != NULL)
    {
      ak_strv_free (q.labels);
      return ak_http_fail_err (r, err);
    }
  arr = json_array ();
  for (size_t i = 0; i < n; i++)
    {
      if (q.labels != NULL && (recs[i].load_error != NULL || !labels_match_all (&recs[i], q.labels)))
        continue;
      if (recs[i].load_error != NULL)
        json_array_append_new (arr, json_pack ("{s:s, s:s, s:s, s:s}", "name", recs[i].name, "status", "error",
                                               "backend", "container", "error", recs[i].load_error));
      else
        json_array_append_new (arr, ak_server_sandbox_json (&recs[i]));
    }
  ak_store_list_free (recs, n);
  ak_strv_free (q.labels);
  ret = ak_http_ok (r, MHD_HTTP_OK, arr);
  return ret;
}

static result_t
api_patch (ak_http_req_t *r, const char *name, json_t *body)
{
  ak_api_patch_t p;
  ak_record_t rec = { 0 };
  ak_error_t *err = NULL;
  result_t ret;

  if (ak_api_parse_patch (body, &p, &err) < 0
      || ak_sandbox_update_meta (name, false, p.set, p.unset, p.description, &rec, &err) < 0)
    {
      ak_api_patch_clear (&p);
      return ak_http_fail_err (r, err);
    }
  ak_api_patch_clear (&p);
  ret = ak_http_ok (r, MHD_HTTP_OK, ak_server_sandbox_json (&rec));
  ak_record_clear (&rec);
  return ret;
}

static result_t
api_get (ak_http_req_t *r, const char *name, bool by_uuid)
{
  ak_record_t rec = { 0 };
  ak_error_t *err = NULL;
  result_t ret;

  if ((by_uuid ? ak_store_find_uuid (name, &rec, &err) : ak_store_load (name, &rec, &err)) < 0)
    return ak_http_fail_err (r, err);
  ret = ak_http_ok (r, MHD_HTTP_OK, ak_server_sandbox_json (&rec));
  ak_record_clear (&rec);
  return ret;
}

static result_t
api_lifecycle (ak_http_req_t *r, const char *name, const char *what)
{
  ak_error_t *err = NULL;
  int rc;

  if (strcmp (what, "start") == 0)
    rc = ak_job_start (name, &err);
  else if (strcmp (what, "stop") == 0)
    rc = ak_sandbox_stop (name, &err);
  else
    rc = ak_sandbox_remove (name, true, &err);
  if (rc < 0)
    return ak_http_fail_err (r, err);
  if (strcmp (what, "remove") == 0)
    return ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:s, s:b}", "name", name, "removed", 1));
  return api_get (r, name, false);
}

static result_t
api_extend (ak_http_req_t *r, const char *name, json_t *body)
{
  ak_error_t *err = NULL;
  long long by, until;

  if (ak_api_parse_extend (body, &by, &err) < 0 || ak_sandbox_extend (name, by, &until, &err) < 0)
    return ak_http_fail_err (r, err);
  return ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:s, s:o}", "name", name, "expires_at", ak_server_rfc3339 (until)));
}

/* ---- routing ---------------------------------------------------------- */

static result_t
wrong_method (ak_http_req_t *r, const char *allowed)
{
  return ak_http_fail (r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %s (allowed: %s)", r->method, r->url,
                       allowed);
}

static result_t
route_sandbox (ak_http_req_t *r, const char *name, json_t *body)
{
  const char *what = r->nseg >= 3 ? r->seg[2] : NULL;

  if (what == NULL)
    {
      if (ak_http_is (r, "GET"))
        return api_get (r, name, false);
      if (ak_http_is (r, "DELETE"))
        return api_lifecycle (r, name, "remove");
      if (ak_http_is (r, "PATCH"))
        return api_patch (r, name, body);
      return wrong_method (r, "GET, PATCH, DELETE");
    }
  if (strcmp (what, "files") == 0)
    {
      if (r->nseg == 3 && ak_http_is (r, "POST"))
        return ak_api_files (r, name, body);
      if (ak_http_is (r, "GET") || ak_http_is (r, "PUT") || ak_http_is (r, "DELETE"))
        return ak_api_file (r, name, body);
      return wrong_method (r, "GET, PUT, DELETE");
    }
  if (strcmp (what, "exec") == 0 && r->nseg == 3)
    return ak_http_is (r, "POST") ? api_exec (r, name, body) : wrong_method (r, "POST");
  if (strcmp (what, "exec") == 0 && r->nseg == 4 && strcmp (r->seg[3], "detach") == 0)
    return ak_http_is (r, "POST") ? ak_api_detached (r, name, body) : wrong_method (r, "POST");
  if (strcmp (what, "exec") == 0 && r->nseg >= 4 && strcmp (r->seg[3], "detached") == 0
      && (r->nseg <= 5 || (r->nseg == 6 && strcmp (r->seg[5], "logs") == 0)))
    {
      if (ak_http_is (r, "GET") || (r->nseg == 5 && ak_http_is (r, "DELETE")))
        return ak_api_detached (r, name, body);
      return wrong_method (r, r->nseg == 5 ? "GET, DELETE" : "GET");
    }
  if (r->nseg == 3 && strcmp (what, "logs") == 0)
    return ak_http_is (r, "GET") ? ak_api_logs (r, name) : wrong_method (r, "GET");
  if (r->nseg == 3 && (strcmp (what, "start") == 0 || strcmp (what, "stop") == 0))
    return ak_http_is (r, "POST") ? api_lifecycle (r, name, what) : wrong_method (r, "POST");
  if (r->nseg == 3 && strcmp (what, "extend") == 0)
    return ak_http_is (r, "POST") ? api_extend (r, name, body) : wrong_method (r, "POST");
  return ak_http_fail (r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s %s", r->method, r->url);
}

/* agentkernel's features this server does not have: their endpoints
 * answer 501 naming the feature, whatever the method or the rest of the
 * path, so a client tells "not here" from "no such thing". */
static const char *
not_here (const char *first)
{
  static const char *const features[][2] = {
    { "orchestrations", "durable orchestrations" }, { "objects", "durable objects" },
    { "schedules", "schedules" },                   { "stores", "durable stores" },
    { "snapshots", "snapshots" },                   { "browser", "browser sessions" },
  };
  for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
    if (strcmp (first, features[i][0]) == 0)
      return features[i][1];
  return NULL;
}

result_t
ak_api_dispatch (ak_http_req_t *r)
{
  ak_error_t *err = NULL;
  json_t *body;
  result_t ret;
  char **s = r->seg;
  size_t n = r->nseg;

  if (n == 1 && strcmp (s[0], "health") == 0)
    return ak_http_is (r, "GET") ? ak_http_ok (r, MHD_HTTP_OK, json_string ("ok")) : wrong_method (r, "GET");
  if (n >= 1 && not_here (s[0]) != NULL)
    return ak_http_fail (r, MHD_HTTP_NOT_IMPLEMENTED,
                         "%s are not available in this server (agentkernel's %s endpoints are not implemented)",
                         not_here (s[0]), s[0]);
  body = ak_api_parse_body (r->body, r->len, &err);
  if (body == NULL)
    return ak_http_fail_err (r, err);
  if (n == 1 && (strcmp (s[0], "status") == 0 || strcmp (s[0], "stats") == 0 || strcmp (s[0], "metrics") == 0))
    {
      if (!ak_http_is (r, "GET"))
        ret = wrong_method (r, "GET");
      else if (json_object_size (body) > 0)
        ret = ak_http_fail (r, MHD_HTTP_BAD_REQUEST, "GET /%s takes no body", s[0]);
      else if (strcmp (s[0], "status") == 0)
        ret = ak_api_status (r);
      else if (strcmp (s[0], "stats") == 0)
        ret = ak_api_stats (r);
      else
        ret = ak_api_metrics (r);
    }
  else if (n == 1 && strcmp (s[0], "events") == 0)
    ret = ak_http_is (r, "GET") ? ak_api_events (r, body) : wrong_method (r, "GET");
  else if (n == 1 && strcmp (s[0], "gc") == 0)
    ret = ak_http_is (r, "POST") ? ak_api_gc (r, body) : wrong_method (r, "POST");
  else if (n == 1 && strcmp (s[0], "run") == 0)
    ret = ak_http_is (r, "POST") ? api_run (r, body) : wrong_method (r, "POST");
  else if (n == 2 && strcmp (s[0], "run") == 0 && strcmp (s[1], "stream") == 0)
    ret = ak_http_is (r, "POST") ? ak_api_run_stream (r, body) : wrong_method (r, "POST");
  else if (n == 2 && strcmp (s[0], "batch") == 0 && strcmp (s[1], "run") == 0)
    ret = ak_http_is (r, "POST") ? api_batch (r, body) : wrong_method (r, "POST");
  else if (n == 1 && strcmp (s[0], "sandboxes") == 0)
    ret = ak_http_is (r, "GET") ? api_list (r) : ak_http_is (r, "POST") ? api_create (r, body) : wrong_method (r, "GET, POST");
  else if (n == 3 && strcmp (s[0], "sandboxes") == 0 && strcmp (s[1], "by-uuid") == 0 && ak_http_is (r, "GET"))
    ret = api_get (r, s[2], true);
  else if (n >= 2 && strcmp (s[0], "sandboxes") == 0)
    {
      const char *name = url_name (r, &err);
      ret = name ? route_sandbox (r, name, body) : ak_http_fail_err (r, err);
    }
  else
    ret = ak_http_fail (r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s %s", r->method, r->url);
  json_decref (body);
  return ret;
}
