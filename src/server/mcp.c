/* MCP server: JSON-RPC 2.0 framing, method dispatch and the sandbox tools.
 *
 * Every tool's arguments are checked against the same JSON Schema that
 * tools/list advertises (schema_check), so what a client is told and what
 * the server accepts cannot drift apart.  Output of sandboxed commands is
 * untrusted bytes: it is captured in memory files, capped, and made valid
 * UTF-8 before it goes into a response.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "service/image.h"
#include "service/sandbox.h"
#include "model/spec.h"
#include "service/store.h"
#include "server/common.h"
#include "server/job.h"
#include "server/mcp.h"
#include "server/request.h"
#include "service/detached.h"

#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602

#define DEFAULT_PROTOCOL "2025-06-18"
/* Output kept per stream and largest file read: a response must stay small
 * enough for a model's context and for the client's line buffer. */
#define OUTPUT_CAP (1024 * 1024)
#define FILE_CAP (8 * 1024 * 1024)
#define LINE_CAP (64 * 1024 * 1024)

static bool dry_run;

void
ak_mcp_set_dry_run (bool on)
{
  dry_run = on;
}

/* ---- Tool argument schemas ------------------------------------------- */

/* One value against one type of the subset the tool schemas use: string
 * (optionally enum), boolean, integer (optionally minimum and maximum),
 * non-empty array of strings, object of strings. */
static int schema_check (const json_t *schema, const json_t *args, ak_error_t **err);

static int
check_type (const char *type, const json_t *p, const char *key, const json_t *val, ak_error_t **err)
{
  size_t i;
  if (strcmp (type, "string") == 0)
    {
      const json_t *en = json_object_get (p, "enum"), *e;
      bool found = en == NULL;
      if (!json_is_string (val))
        return ak_error_set (err, 0, "argument '%s' must be a string", key);
      json_array_foreach (en, i, e)
        if (json_equal (e, val))
          found = true;
      if (!found)
        return ak_error_set (err, 0, "argument '%s' has an unsupported value '%s'", key, json_string_value (val));
    }
  else if (strcmp (type, "boolean") == 0)
    {
      if (!json_is_boolean (val))
        return ak_error_set (err, 0, "argument '%s' must be a boolean", key);
    }
  else if (strcmp (type, "integer") == 0)
    {
      const json_t *lo = json_object_get (p, "minimum"), *hi = json_object_get (p, "maximum");
      if (!json_is_integer (val) || (lo && json_integer_value (val) < json_integer_value (lo))
          || (hi && json_integer_value (val) > json_integer_value (hi)))
        return ak_error_set (err, 0, "argument '%s' must be an integer from %lld to %lld", key,
                             lo ? (long long) json_integer_value (lo) : (long long) INT64_MIN,
                             hi ? (long long) json_integer_value (hi) : (long long) INT64_MAX);
    }
  else if (strcmp (type, "array") == 0)
    {
      json_t *e;
      if (!json_is_array (val) || json_array_size (val) == 0)
        return ak_error_set (err, 0, "argument '%s' must be a non-empty array of strings", key);
      json_array_foreach (val, i, e)
        if (!json_is_string (e))
          return ak_error_set (err, 0, "argument '%s' must be a non-empty array of strings", key);
    }
  else if (strcmp (type, "object") == 0 && json_object_get (p, "properties") != NULL)
    {
      /* An object with its own properties (commands): checked as the
       * arguments are. */
      if (schema_check (p, val, err) < 0)
        return ak_error_prefix (err, "argument '%s'", key);
    }
  else if (strcmp (type, "object") == 0)
    {
      const char *k;
      json_t *e;
      if (!json_is_object (val))
        return ak_error_set (err, 0, "argument '%s' must be an object of strings", key);
      json_object_foreach ((json_t *) val, k, e)
        if (!json_is_string (e))
          return ak_error_set (err, 0, "argument '%s': '%s' must be a string", key, k);
    }
  return 0;
}

/* Checks args against the tool's schema: typed properties (a type, or a
 * list of types any of which will do), required keys, no other keys. */
static int
schema_check (const json_t *schema, const json_t *args, ak_error_t **err)
{
  const json_t *props = json_object_get (schema, "properties");
  const json_t *req = json_object_get (schema, "required");
  const char *key;
  json_t *val;
  size_t i;

  if (!json_is_object (args))
    return ak_error_set (err, 0, "arguments must be an object");
  json_object_foreach ((json_t *) args, key, val)
    {
      const json_t *p = json_object_get (props, key);
      const json_t *type, *t;
      if (p == NULL)
        return ak_error_set (err, 0, "unknown argument '%s'", key);
      type = json_object_get (p, "type");
      if (json_is_string (type))
        {
          if (check_type (json_string_value (type), p, key, val, err) < 0)
            return -1;
          continue;
        }
      {
        bool ok = false;
        json_array_foreach (type, i, t)
          if (!ok && check_type (json_string_value (t), p, key, val, NULL) == 0)
            ok = true;
        if (!ok)
          return ak_error_set (err, 0, "argument '%s' must be an array of \"KEY=VALUE\" strings or an object of strings",
                               key);
      }
    }
  json_array_foreach (req, i, val)
    if (json_object_get (args, json_string_value (val)) == NULL)
      return ak_error_set (err, 0, "missing required argument '%s'", json_string_value (val));
  return 0;
}

/* ---- Running things -------------------------------------------------- */

typedef struct tool_out {
  char *text;         /* heap */
  json_t *structured; /* owned reference, or NULL */
} tool_out_t;

static void
warn_to_stderr (const char *msg, void *data)
{
  fprintf (stderr, "agentkernel: warning: %s\n", msg);
}

/* ---- Calls in flight --------------------------------------------------
 *
 * tools/call requests run on threads of their own, so a long command does
 * not hold up the others, and notifications/cancelled can end one: its
 * command is cancelled and no response is sent for it (as the protocol
 * asks). */

typedef struct call {
  json_t *id;
  ak_job_t *job; /* the command it runs, while it runs */
  bool cancelled;
  /* Calls naming the same sandbox run in the order they arrived: each
   * waits for every earlier one with its key (NULL: waits for none). */
  char *key;
  unsigned long long seq;
  char *line;
  size_t len;
  struct call *next;
} call_t;

#define MAX_CALLS 16

static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t calls_changed = PTHREAD_COND_INITIALIZER;
static call_t *calls;
static unsigned n_calls;
static __thread call_t *current_call;
static unsigned long long next_seq;

/* Whether an earlier call on c's sandbox is still in flight (calls_lock
 * held). */
static bool
call_must_wait (const call_t *c)
{
  if (c->key == NULL)
    return false;
  for (const call_t *o = calls; o; o = o->next)
    if (o != c && o->key != NULL && o->seq < c->seq && strcmp (o->key, c->key) == 0)
      return true;
  return false;
}
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* The running call's command (NULL once it ended). */
static void
call_set_job (ak_job_t *j)
{
  pthread_mutex_lock (&calls_lock);
  if (current_call != NULL)
    {
      current_call->job = j;
      if (j != NULL && current_call->cancelled)
        ak_job_cancel (j);
    }
  pthread_mutex_unlock (&calls_lock);
}

static void
cancel_calls (const json_t *id)
{
  pthread_mutex_lock (&calls_lock);
  for (call_t *c = calls; c; c = c->next)
    if (id == NULL || json_equal (c->id, id))
      {
        c->cancelled = true;
        if (c->job != NULL)
          ak_job_cancel (c->job);
      }
  pthread_mutex_unlock (&calls_lock);
}

/* Runs a command's job to its end, its output captured; the call's
 * cancellation ends it. */
static int
run_job (ak_job_t *job, long long timeout_ms, tool_out_t *out, ak_error_t **err)
{
  ak_job_capture_t cap = { .cap = OUTPUT_CAP };
  int status = 0, rc;
  long long deadline = timeout_ms > 0 ? (long long) (ak_now_ns () / 1000000) + timeout_ms : -1;

  if (job == NULL)
    return -1;
  call_set_job (job);
  rc = ak_job_collect (job, deadline, -1, &cap, &status, err);
  call_set_job (NULL);
  ak_job_free (job);
  if (rc == AK_JOB_TIMED_OUT)
    ak_error_set (err, ETIMEDOUT, "the command ran longer than timeout_ms (%lld ms) and was killed", timeout_ms);
  if (rc == 0)
    {
      /* The result of a command: its exit code and both streams, as text
       * for the model and as structuredContent for programs. */
      json_t *js_out = ak_json_text (cap.out ? cap.out : "", cap.out_len);
      json_t *js_err = ak_json_text (cap.err ? cap.err : "", cap.err_len);
      out->text = ak_xasprintf ("exit_code: %d\n%s%s%s%s", status, json_string_value (js_out),
                                cap.err_len > 0 ? "\nstderr:\n" : "", json_string_value (js_err),
                                cap.truncated ? "\n[output truncated]" : "");
      out->structured = json_pack ("{s:i, s:o, s:o}", "exit_code", status, "stdout", js_out, "stderr", js_err);
    }
  ak_job_capture_clear (&cap);
  return rc == 0 ? 0 : -1;
}

static char **
strv_from_json (const json_t *arr)
{
  char **v = ak_xcalloc (json_array_size (arr) + 1, sizeof *v);
  size_t i;
  json_t *e;
  json_array_foreach (arr, i, e)
    v[i] = ak_xstrdup (json_string_value (e));
  return v;
}

static const char *
arg_str (const json_t *args, const char *key)
{
  return json_string_value (json_object_get (args, key));
}

/* allow_hosts and block_hosts of a tool's arguments. */
static int
args_hosts (const json_t *args, ak_spec_t *spec, ak_error_t **err)
{
  _cleanup_strv_ char **allow = strv_from_json (json_object_get (args, "allow_hosts"));
  _cleanup_strv_ char **block = strv_from_json (json_object_get (args, "block_hosts"));
  _cleanup_strv_ char **ports = strv_from_json (json_object_get (args, "ports"));
  const json_t *c = json_object_get (args, "commands");
  ak_cmdpolicy_t pol;
  int rc;

  if (ak_server_hosts (spec, allow, block, err) < 0 || ak_server_ports (spec, ports, err) < 0)
    return -1;
  /* The command policy (model/cmdpolicy.h), added to the server's. */
  if (c == NULL)
    return 0;
  if (ak_cmdpolicy_from_json (c, AK_SRC_CLI, &pol, err) < 0)
    return -1;
  rc = ak_cmdpolicy_merge (&spec->sec.commands, &pol, err);
  ak_cmdpolicy_clear (&pol);
  return rc;
}

/* "env" as ["KEY=VALUE", ...] (agentkernel's sandbox_exec) or
 * {"KEY": "VALUE"} (its sandbox_run): KEY=VALUE pairs, each checked. */
static int
args_env (const json_t *args, char ***out, ak_error_t **err)
{
  const json_t *env = json_object_get (args, "env");
  const char *key;
  json_t *val;
  size_t i;

  *out = ak_xcalloc (1, sizeof (char *));
  json_array_foreach (env, i, val)
    {
      const char *kv = json_string_value (val), *eq = strchr (kv, '=');
      if (eq == NULL || eq == kv || strlen (kv) != json_string_length (val))
        return ak_error_set (err, 0, "env[%zu] must be KEY=VALUE", i);
      ak_strv_push (out, kv);
    }
  json_object_foreach ((json_t *) env, key, val)
    {
      _cleanup_free_ char *kv = NULL;
      if (key[0] == '\0' || strchr (key, '=') != NULL || strlen (json_string_value (val)) != json_string_length (val))
        return ak_error_set (err, 0, "invalid environment variable '%s'", key);
      kv = ak_xasprintf ("%s=%s", key, json_string_value (val));
      ak_strv_push (out, kv);
    }
  return 0;
}

static long long
arg_timeout (const json_t *args)
{
  const json_t *t = json_object_get (args, "timeout_ms");
  return t ? (long long) json_integer_value (t) : 0;
}

static int
tool_run (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  ak_spec_t spec;
  _cleanup_strv_ char **env = NULL;
  const json_t *network = json_object_get (args, "network");
  const char *cwd = arg_str (args, "cwd");
  int rc = -1;

  /* The command gets pipes of its own: it never sees the server's stdin
   * or stdout, which carry the protocol.  "fast" is accepted and changes
   * nothing: every run here is a new sandbox, started in milliseconds. */
  if (ak_server_spec (arg_str (args, "profile"), &spec, err) < 0 || args_hosts (args, &spec, err) < 0
      || args_env (args, &env, err) < 0)
    goto done;
  for (char **e = env; *e; e++)
    if (ak_spec_add_env (&spec, *e, err) < 0)
      goto done;
  /* network: false takes the network away; true never gives a profile
   * more than it has (the server's --max-profile decides that). */
  if (json_is_false (network))
    ak_spec_set_security (&spec, AK_SEC_NETWORK, false, AK_SRC_CLI, 0);
  else if (json_is_true (network) && !ak_spec_sec (&spec, AK_SEC_NETWORK))
    {
      ak_error_set (err, EACCES, "profile %s has no network; ask for profile moderate or permissive instead",
                    ak_profile_name (spec.sec.profile));
      goto done;
    }
  if (cwd != NULL)
    {
      if (cwd[0] != '/')
        {
          ak_error_set (err, EINVAL, "cwd must be an absolute path inside the sandbox");
          goto done;
        }
      free (spec.workdir);
      spec.workdir = ak_xstrdup (cwd);
    }
  spec.argv = strv_from_json (json_object_get (args, "command"));
  if (arg_str (args, "image") != NULL)
    {
      free (spec.image);
      spec.image = ak_xstrdup (arg_str (args, "image"));
    }
  if (arg_str (args, "backend") != NULL)
    {
      free (spec.backend);
      spec.backend = ak_xstrdup (arg_str (args, "backend"));
    }
  if (ak_spec_validate (&spec, err) == 0 && ak_sandbox_check_backend (&spec, err) == 0
      && ak_sandbox_image_prepare (&spec, err) == 0)
    rc = run_job (ak_job_run (&spec, err), arg_timeout (args), out, err);
done:
  ak_spec_clear (&spec);
  return rc;
}

/* The exec request of sandbox_exec and sandbox_exec_detach's arguments. */
static int
args_exec_req (const json_t *args, char ***argv, char ***env, ak_exec_req_t *req, ak_error_t **err)
{
  const char *workdir = arg_str (args, "workdir");
  *argv = strv_from_json (json_object_get (args, "command"));
  if (args_env (args, env, err) < 0)
    return -1;
  if (workdir != NULL && workdir[0] != '/')
    return ak_error_set (err, EINVAL, "workdir must be an absolute path inside the sandbox");
  *req = (ak_exec_req_t){ .argv = *argv, .env = *env, .workdir = workdir,
                          .root = json_is_true (json_object_get (args, "sudo")), .sigfd = -1 };
  return 0;
}

static int
tool_exec (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_strv_ char **argv = NULL;
  _cleanup_strv_ char **env = NULL;
  ak_exec_req_t req;

  if (args_exec_req (args, &argv, &env, &req, err) < 0)
    return -1;
  return run_job (ak_job_exec (arg_str (args, "name"), &req, err), arg_timeout (args), out, err);
}

static int
tool_create (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  ak_spec_t spec;
  ak_record_t rec = { 0 };
  int rc = -1;

  if (ak_server_spec (arg_str (args, "profile"), &spec, err) < 0 || args_hosts (args, &spec, err) < 0)
    goto done;
  spec.name = ak_xstrdup (arg_str (args, "name"));
  if (arg_str (args, "image") != NULL)
    {
      free (spec.image);
      spec.image = ak_xstrdup (arg_str (args, "image"));
    }
  if (arg_str (args, "backend") != NULL)
    {
      free (spec.backend);
      spec.backend = ak_xstrdup (arg_str (args, "backend"));
    }
  if (ak_spec_validate (&spec, err) < 0 || ak_sandbox_check_backend (&spec, err) < 0 || ak_sandbox_create (&spec, &rec, err) < 0)
    goto done;
  /* Created and started, as agentkernel's sandbox_create does; one that
   * cannot start is not left behind. */
  if (ak_job_start (rec.name, err) < 0)
    {
      ak_error_t *rm = NULL;
      if (ak_sandbox_remove (rec.name, true, &rm) < 0)
        ak_error_free (rm);
      goto done;
    }
  out->text = ak_xasprintf ("created and started sandbox %s (profile %s)", rec.name, ak_profile_name (spec.sec.profile));
  out->structured = json_pack ("{s:s, s:s, s:s, s:s}", "name", rec.name, "uuid", rec.uuid ? rec.uuid : "", "profile",
                               ak_profile_name (spec.sec.profile), "status", "running");
  rc = 0;
done:
  ak_record_clear (&rec);
  ak_spec_clear (&spec);
  return rc;
}

static int
tool_start (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  if (ak_job_start (arg_str (args, "name"), err) < 0)
    return -1;
  out->text = ak_xasprintf ("started sandbox %s", arg_str (args, "name"));
  return 0;
}

static int
tool_stop (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  if (ak_sandbox_stop (arg_str (args, "name"), err) < 0)
    return -1;
  out->text = ak_xasprintf ("stopped sandbox %s", arg_str (args, "name"));
  return 0;
}

static int
tool_remove (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  /* agentkernel's sandbox_remove removes a running sandbox too. */
  if (ak_sandbox_remove (arg_str (args, "name"), true, err) < 0)
    return -1;
  out->text = ak_xasprintf ("removed sandbox %s", arg_str (args, "name"));
  return 0;
}

static int
tool_list (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  ak_record_t *recs = NULL;
  size_t n = 0;
  json_t *arr = json_array ();
  char *text = NULL;
  size_t text_len = 0;
  FILE *f;

  if (ak_store_list (&recs, &n, err) < 0)
    {
      json_decref (arr);
      return -1;
    }
  f = open_memstream (&text, &text_len);
  if (f == NULL)
    abort ();
  if (n == 0)
    fputs ("no sandboxes", f);
  for (size_t i = 0; i < n; i++)
    {
      const ak_record_t *r = &recs[i];
      const char *status = r->load_error ? "error" : ak_sandbox_status (r);
      const char *profile = r->load_error ? "" : ak_profile_name (r->spec.sec.profile);
      fprintf (f, "%s%s\t%s\t%s", i ? "\n" : "", r->name, status, r->load_error ? r->load_error : profile);
      json_array_append_new (arr, json_pack ("{s:s, s:s, s:s, s:s, s:s}", "name", r->name, "status", status,
                                             "profile", profile, "uuid", r->uuid ? r->uuid : "", "created",
                                             r->created ? r->created : ""));
    }
  fclose (f);
  ak_store_list_free (recs, n);
  out->text = text;
  out->structured = json_pack ("{s:o}", "sandboxes", arr);
  return 0;
}

static int
tool_file_write (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  const json_t *content = json_object_get (args, "content");
  if (ak_sandbox_write_file (arg_str (args, "name"), arg_str (args, "path"), json_string_value (content),
                             json_string_length (content), err)
      < 0)
    return -1;
  out->text = ak_xasprintf ("wrote %zu bytes to %s", json_string_length (content), arg_str (args, "path"));
  return 0;
}

static int
tool_file_read (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_free_ char *data = NULL;
  size_t len = 0;

  if (ak_sandbox_read_file (arg_str (args, "name"), arg_str (args, "path"), FILE_CAP, &data, &len, err) < 0)
    return -1;
  out->text = ak_utf8_clean (data, len, &len);
  return 0;
}

static int
tool_write_files (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  const char *name = arg_str (args, "name");
  ak_record_t rec = { 0 };
  ak_api_file_t *files = NULL;
  size_t n = 0, written = 0;
  _cleanup_free_ char *base = NULL;
  json_t *body;
  int rc;

  if (ak_store_load (name, &rec, err) < 0)
    return -1;
  base = ak_xstrdup (ak_spec_default_workdir (&rec.spec, false));
  ak_record_clear (&rec);
  /* Every path is checked before the first file is written. */
  body = json_pack ("{s:O}", "files", json_object_get (args, "files"));
  rc = ak_api_parse_files (body, base, &files, &n, err);
  json_decref (body);
  for (; rc == 0 && written < n; written++)
    if (ak_sandbox_write_file (name, files[written].path, files[written].data, files[written].len, err) < 0)
      {
        ak_error_prefix (err, "%s (%zu of %zu files written before it)", files[written].path, written, n);
        rc = -1;
      }
  ak_api_files_free (files, n);
  if (rc < 0)
    return -1;
  out->text = ak_xasprintf ("wrote %zu file%s", written, written == 1 ? "" : "s");
  out->structured = json_pack ("{s:I}", "written", (json_int_t) written);
  return 0;
}

/* A detached command's record as the tools show it. */
static json_t *
detached_out (const char *name, json_t *s, tool_out_t *out)
{
  json_t *code = json_object_get (s, "exit_code");
  bool running = strcmp (json_string_value (json_object_get (s, "status")) ?: "", "running") == 0;
  const char *status = running ? "running" : json_integer_value (code) == 0 ? "completed" : "failed";
  json_t *j = json_pack ("{s:O, s:s, s:O, s:s}", "id", json_object_get (s, "id"), "sandbox", name, "command",
                         json_object_get (s, "command"), "status", status);
  if (code != NULL)
    json_object_set (j, "exit_code", code);
  if (json_object_get (s, "pid") != NULL)
    json_object_set (j, "pid", json_object_get (s, "pid"));
  if (json_object_get (s, "started") != NULL)
    json_object_set (j, "started_at", json_object_get (s, "started"));
  if (out != NULL)
    {
      if (code != NULL)
        out->text = ak_xasprintf ("command %s in %s: %s (exit code %lld)", json_string_value (json_object_get (s, "id")),
                                  name, status, (long long) json_integer_value (code));
      else
        out->text = ak_xasprintf ("command %s in %s: %s", json_string_value (json_object_get (s, "id")), name, status);
    }
  json_decref (s);
  return j;
}

static int
tool_exec_detach (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_strv_ char **argv = NULL;
  _cleanup_strv_ char **env = NULL;
  _cleanup_free_ char *id = NULL;
  ak_exec_req_t req;
  json_t *s;

  if (args_exec_req (args, &argv, &env, &req, err) < 0
      || ak_detached_start (arg_str (args, "name"), &req, &id, err) < 0
      || (s = ak_detached_status (arg_str (args, "name"), id, err)) == NULL)
    return -1;
  out->structured = detached_out (arg_str (args, "name"), s, out);
  free (out->text);
  out->text = ak_xasprintf ("started detached command %s in %s (id %s)", argv[0], arg_str (args, "name"), id);
  return 0;
}

/* The sandbox that holds detached command `id`: "name" when given, else
 * the one sandbox whose commands include it (agentkernel's tools name the
 * command only).  Heap string. */
static char *
detached_owner (const json_t *args, ak_error_t **err)
{
  const char *id = arg_str (args, "id");
  ak_record_t *recs = NULL;
  size_t n = 0;
  char *found = NULL;

  if (arg_str (args, "name") != NULL)
    return ak_xstrdup (arg_str (args, "name"));
  if (ak_store_list (&recs, &n, err) < 0)
    return NULL;
  for (size_t i = 0; i < n && found == NULL; i++)
    {
      json_t *st;
      if (recs[i].load_error != NULL)
        continue;
      st = ak_detached_status (recs[i].name, id, NULL);
      if (st != NULL)
        found = ak_xstrdup (recs[i].name);
      json_decref (st);
    }
  ak_store_list_free (recs, n);
  if (found == NULL)
    ak_error_set (err, ENOENT, "no detached command '%.64s' in any sandbox", id);
  return found;
}

static int
tool_exec_status (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_free_ char *name = detached_owner (args, err);
  json_t *s;
  if (name == NULL || (s = ak_detached_status (name, arg_str (args, "id"), err)) == NULL)
    return -1;
  out->structured = detached_out (name, s, out);
  return 0;
}

static int
tool_exec_kill (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_free_ char *name = detached_owner (args, err);
  json_t *s;
  if (name == NULL || ak_detached_kill (name, arg_str (args, "id"), err) < 0
      || (s = ak_detached_status (name, arg_str (args, "id"), err)) == NULL)
    return -1;
  out->structured = detached_out (name, s, out);
  return 0;
}

/* The last OUTPUT_CAP bytes of a detached command's stream (the rotated
 * older part, then the current one): the end says how it went, and a long
 * log is never read whole into memory. */
static int
log_tail (const char *name, const char *id, const char *stream, char **data, size_t *len, ak_error_t **err)
{
  int fds[2];
  size_t want = OUTPUT_CAP, got = 0;
  off_t size[2] = { 0, 0 };

  if (ak_detached_log_fds (name, id, stream, fds, err) < 0)
    return -1;
  for (int k = 0; k < 2; k++)
    {
      struct stat st;
      if (fds[k] >= 0 && fstat (fds[k], &st) == 0)
        size[k] = st.st_size;
    }
  *data = ak_xmalloc (OUTPUT_CAP + 1);
  /* From the older file only what the current one does not fill. */
  for (int k = 0; k < 2; k++)
    {
      size_t from_this = k == 1 ? want : (size[1] >= (off_t) want ? 0 : want - (size_t) size[1]);
      off_t off = size[k] > (off_t) from_this ? size[k] - (off_t) from_this : 0;
      while (fds[k] >= 0 && got < OUTPUT_CAP)
        {
          ssize_t n = pread (fds[k], *data + got, OUTPUT_CAP - got, off);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            break;
          got += (size_t) n;
          off += n;
        }
      if (fds[k] >= 0)
        close (fds[k]);
    }
  (*data)[got] = '\0';
  *len = got;
  return 0;
}

static int
tool_exec_logs (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_free_ char *name = detached_owner (args, err);
  const char *which = arg_str (args, "stream");
  _cleanup_free_ char *o = NULL, *e = NULL;
  size_t olen = 0, elen = 0;
  json_t *jo, *je;

  if (name == NULL)
    return -1;
  if ((which == NULL || strcmp (which, "stdout") == 0)
      && log_tail (name, arg_str (args, "id"), "stdout", &o, &olen, err) < 0)
    return -1;
  if ((which == NULL || strcmp (which, "stderr") == 0)
      && log_tail (name, arg_str (args, "id"), "stderr", &e, &elen, err) < 0)
    return -1;
  jo = ak_json_text (o ? o : "", olen);
  je = ak_json_text (e ? e : "", elen);
  if (which != NULL)
    out->text = ak_xstrdup (json_string_value (strcmp (which, "stdout") == 0 ? jo : je));
  else
    out->text = ak_xasprintf ("%s%s%s", json_string_value (jo), elen > 0 ? "\nstderr:\n" : "", json_string_value (je));
  out->structured = json_object ();
  if (which == NULL || strcmp (which, "stdout") == 0)
    json_object_set (out->structured, "stdout", jo);
  if (which == NULL || strcmp (which, "stderr") == 0)
    json_object_set (out->structured, "stderr", je);
  json_decref (jo);
  json_decref (je);
  return 0;
}

static int
tool_exec_list (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  ak_record_t *recs = NULL;
  size_t n = 0;
  json_t *all = json_array ();
  char *text = NULL;
  size_t text_len = 0;
  FILE *f;

  if (arg_str (args, "name") != NULL)
    {
      recs = ak_xcalloc (1, sizeof *recs);
      if (ak_store_load (arg_str (args, "name"), &recs[0], err) < 0)
        {
          free (recs);
          json_decref (all);
          return -1;
        }
      n = 1;
    }
  else if (ak_store_list (&recs, &n, err) < 0)
    {
      json_decref (all);
      return -1;
    }
  f = open_memstream (&text, &text_len);
  if (f == NULL)
    abort ();
  for (size_t i = 0; i < n; i++)
    {
      json_t *list, *e;
      size_t k;
      if (recs[i].load_error != NULL || (list = ak_detached_list (recs[i].name, NULL)) == NULL)
        continue;
      json_array_foreach (list, k, e)
        {
          json_t *d = detached_out (recs[i].name, json_incref (e), NULL);
          fprintf (f, "%s%s\t%s\t%s", json_array_size (all) ? "\n" : "", json_string_value (json_object_get (d, "id")),
                   recs[i].name, json_string_value (json_object_get (d, "status")));
          json_array_append_new (all, d);
        }
      json_decref (list);
    }
  if (json_array_size (all) == 0)
    fputs ("no detached commands", f);
  fclose (f);
  ak_store_list_free (recs, n);
  out->text = text;
  out->structured = json_pack ("{s:o}", "commands", all);
  return 0;
}

static int
tool_extend_ttl (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  const char *by = arg_str (args, "by") ? arg_str (args, "by") : "1h";
  long long seconds, until;
  json_t *when;

  if (ak_api_parse_duration (by, &seconds, err) < 0 || ak_sandbox_extend (arg_str (args, "name"), seconds, &until, err) < 0)
    return -1;
  when = ak_server_rfc3339 (until);
  out->text = ak_xasprintf ("sandbox %s now expires at %s", arg_str (args, "name"), json_string_value (when));
  out->structured = json_pack ("{s:s, s:o}", "name", arg_str (args, "name"), "expires_at", when);
  return 0;
}

static int
tool_info (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  ak_record_t rec = { 0 };
  json_t *j;
  if (ak_store_load (arg_str (args, "name"), &rec, err) < 0)
    return -1;
  j = ak_server_sandbox_json (&rec);
  ak_record_clear (&rec);
  out->text = json_dumps (j, JSON_INDENT (2));
  if (out->text == NULL)
    ak_oom ();
  out->structured = j;
  return 0;
}

/* ---- The tool table --------------------------------------------------- */

#define PROFILE_PROP                                                                                                   \
  "\"profile\": {\"type\": \"string\", \"enum\": [\"permissive\", \"moderate\", \"restrictive\"], "                  \
  "\"description\": \"Security profile (default moderate)\"}"
#define NAME_PROP "\"name\": {\"type\": \"string\", \"description\": \"Name of a persistent sandbox\"}"
#define COMMAND_PROP                                                                                                   \
  "\"command\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"minItems\": 1, "                           \
  "\"description\": \"The command and its arguments (no shell unless you run one)\"}"
#define IMAGE_PROP                                                                                                     \
  "\"image\": {\"type\": \"string\", \"description\": \"OCI image to run (pulled when absent), 'host' (the "      \
  "default: the host's own userland) or 'auto' (chosen from the project's files)\"}"
#define BACKEND_PROP                                                                                                   \
  "\"backend\": {\"type\": \"string\", \"enum\": [\"container\", \"microvm\"], \"description\": \"container "  \
  "(default) or microvm (its own kernel in a QEMU microVM)\"}"
#define HOSTS_PROP                                                                                                     \
  "\"allow_hosts\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"description\": \"Only these hosts are "   \
  "reached (example.com, *.example.com, 10.0.0.0/8, each optionally :PORT or :PORT-PORT)\"}, "                        \
  "\"block_hosts\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"description\": \"These hosts are never "  \
  "reached (same patterns; wins over allow_hosts)\"}, "                                                              \
  "\"commands\": {\"type\": \"object\", \"description\": \"Command policy: programs (names, or absolute paths "   \
  "inside) that may (allow; only these unless allowlist_only is false) or may never (block) be executed\", "      \
  "\"properties\": {\"allow\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"block\": {\"type\": "    \
  "\"array\", \"items\": {\"type\": \"string\"}}, \"allowlist_only\": {\"type\": \"boolean\"}}, "                  \
  "\"additionalProperties\": false}, "                                                                                 \
  "\"ports\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"description\": \"Ports published on the "  \
  "host: [ADDR:]HOSTPORT:PORT[/udp], e.g. 8080:80 (127.0.0.1 unless ADDR)\"}"
#define PATH_PROP "\"path\": {\"type\": \"string\", \"description\": \"Absolute path inside the sandbox\"}"
#define ENV_PROP                                                                                                       \
  "\"env\": {\"type\": [\"array\", \"object\"], \"items\": {\"type\": \"string\"}, "                               \
  "\"additionalProperties\": {\"type\": \"string\"}, "                                                             \
  "\"description\": \"Environment variables: [\\\"KEY=VALUE\\\", ...] or {\\\"KEY\\\": \\\"VALUE\\\"}\"}"
#define TIMEOUT_PROP                                                                                                   \
  "\"timeout_ms\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 86400000, "                                \
  "\"description\": \"Kill the command after this many milliseconds (default: no limit)\"}"
#define SUDO_PROP "\"sudo\": {\"type\": \"boolean\", \"description\": \"Run the command as the sandbox's root\"}"
#define WORKDIR_PROP "\"workdir\": {\"type\": \"string\", \"description\": \"Working directory inside the sandbox\"}"
#define ID_PROP                                                                                                        \
  "\"id\": {\"type\": \"string\", \"description\": \"The detached command's id\"}, "                                 \
  "\"name\": {\"type\": \"string\", \"description\": \"Its sandbox (optional: found by the id)\"}"
#define SCHEMA(props, req)                                                                                             \
  "{\"type\": \"object\", \"properties\": {" props "}, \"required\": [" req "], \"additionalProperties\": false}"

typedef struct tool {
  const char *name;
  const char *description;
  const char *schema;
  int (*fn) (const json_t *args, tool_out_t *out, ak_error_t **err);
} tool_t;

static const tool_t tools[] = {
  { "sandbox_run", "Run a command in a new sandbox that is removed when it ends; returns its exit code and output.",
    SCHEMA (COMMAND_PROP ", " PROFILE_PROP ", " IMAGE_PROP ", " BACKEND_PROP ", " HOSTS_PROP ", " ENV_PROP ", " TIMEOUT_PROP
                         ", \"cwd\": {\"type\": \"string\", \"description\": \"Working directory inside the sandbox\"}"
                         ", \"fast\": {\"type\": \"boolean\", \"description\": \"Accepted; every run is a new sandbox, "
                         "started in milliseconds\"}"
                         ", \"network\": {\"type\": \"boolean\", \"description\": \"false: no network; true: the "
                         "profile's network (refused for a profile without one)\"}",
            "\"command\""),
    tool_run },
  { "sandbox_create", "Create a persistent sandbox and start it.",
    SCHEMA (NAME_PROP ", " PROFILE_PROP ", " IMAGE_PROP ", " BACKEND_PROP ", " HOSTS_PROP, "\"name\""), tool_create },
  { "sandbox_start", "Start a stopped sandbox.", SCHEMA (NAME_PROP, "\"name\""), tool_start },
  { "sandbox_stop", "Stop a running sandbox; its files are kept.", SCHEMA (NAME_PROP, "\"name\""), tool_stop },
  { "sandbox_remove", "Remove a sandbox and everything in it (stopped first if running).",
    SCHEMA (NAME_PROP ", \"force\": {\"type\": \"boolean\", \"description\": \"Accepted: a running sandbox is always "
                      "stopped first\"}",
            "\"name\""),
    tool_remove },
  { "sandbox_exec", "Run a command in a running sandbox; returns its exit code and output.",
    SCHEMA (NAME_PROP ", " COMMAND_PROP ", " ENV_PROP ", " WORKDIR_PROP ", " SUDO_PROP ", " TIMEOUT_PROP,
            "\"name\", \"command\""),
    tool_exec },
  { "sandbox_list", "List persistent sandboxes with their status and profile.", SCHEMA ("", ""), tool_list },
  { "sandbox_info", "A sandbox's status, profile, image, limits, expiry and labels.", SCHEMA (NAME_PROP, "\"name\""),
    tool_info },
  { "sandbox_file_write", "Write a text file inside a running sandbox.",
    SCHEMA (NAME_PROP ", " PATH_PROP ", \"content\": {\"type\": \"string\", \"description\": \"File contents\"}",
            "\"name\", \"path\", \"content\""),
    tool_file_write },
  { "sandbox_file_read", "Read a file from inside a running sandbox.",
    SCHEMA (NAME_PROP ", " PATH_PROP, "\"name\", \"path\""), tool_file_read },
  { "sandbox_write_files", "Write several text files inside a running sandbox in one call.",
    SCHEMA (NAME_PROP ", \"files\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}, "
                      "\"description\": \"Path (absolute, or relative to the working directory) to content\"}",
            "\"name\", \"files\""),
    tool_write_files },
  { "sandbox_exec_detach", "Start a command in a running sandbox and leave it running; returns its id.",
    SCHEMA (NAME_PROP ", " COMMAND_PROP ", " ENV_PROP ", " WORKDIR_PROP ", " SUDO_PROP, "\"name\", \"command\""),
    tool_exec_detach },
  { "sandbox_exec_status", "The status of a detached command (running, completed, failed) and its exit code.",
    SCHEMA (ID_PROP, "\"id\""), tool_exec_status },
  { "sandbox_exec_logs", "The output so far of a detached command.",
    SCHEMA (ID_PROP ", \"stream\": {\"type\": \"string\", \"enum\": [\"stdout\", \"stderr\"], \"description\": "
                    "\"One stream only (default: both)\"}",
            "\"id\""),
    tool_exec_logs },
  { "sandbox_exec_kill", "Kill a detached command.", SCHEMA (ID_PROP, "\"id\""), tool_exec_kill },
  { "sandbox_exec_list", "List the detached commands of a sandbox (or of every sandbox).",
    SCHEMA ("\"name\": {\"type\": \"string\", \"description\": \"A sandbox (default: all)\"}", ""), tool_exec_list },
  { "sandbox_extend_ttl", "Move a sandbox's expiry later.",
    SCHEMA (NAME_PROP ", \"by\": {\"type\": \"string\", \"description\": \"How much later: 30m, 1h, 2d (default 1h)\"}",
            "\"name\""),
    tool_extend_ttl },
};
#define N_TOOLS (sizeof tools / sizeof tools[0])

static json_t *
tool_schema (const tool_t *t)
{
  json_t *s = json_loads (t->schema, 0, NULL);
  if (s == NULL)
    abort (); /* a broken table is a programming error */
  return s;
}

static json_t *
tools_list (void)
{
  json_t *arr = json_array ();
  for (size_t i = 0; i < N_TOOLS; i++)
    json_array_append_new (arr, json_pack ("{s:s, s:s, s:o}", "name", tools[i].name, "description",
                                           tools[i].description, "inputSchema", tool_schema (&tools[i])));
  return json_pack ("{s:o}", "tools", arr);
}

/* Error messages may quote paths and other bytes that are not UTF-8. */
static json_t *
tool_error (const char *msg)
{
  return json_pack ("{s:[{s:s, s:o}], s:b}", "content", "type", "text", "text", ak_json_text (msg, strlen (msg)),
                    "isError", 1);
}

static json_t *
tools_call (const char *name, const json_t *args)
{
  const tool_t *t = NULL;
  tool_out_t out = { 0 };
  ak_error_t *err = NULL;
  json_t *schema, *res;
  json_t *empty = NULL;
  int rc;

  for (size_t i = 0; i < N_TOOLS; i++)
    if (strcmp (tools[i].name, name) == 0)
      t = &tools[i];
  if (t == NULL)
    {
      _cleanup_free_ char *msg = ak_xasprintf ("unknown tool '%s'", name);
      return tool_error (msg);
    }
  if (args == NULL)
    args = empty = json_object ();
  schema = tool_schema (t);
  rc = schema_check (schema, args, &err);
  json_decref (schema);
  if (rc == 0 && dry_run)
    out.text = ak_xstrdup ("dry run");
  else if (rc == 0)
    rc = t->fn (args, &out, &err);
  json_decref (empty);
  if (rc < 0)
    {
      res = tool_error (err ? err->msg : "failed");
      ak_error_free (err);
      free (out.text);
      json_decref (out.structured);
      return res;
    }
  res = json_pack ("{s:[{s:s, s:o}], s:b}", "content", "type", "text", "text", ak_json_text (out.text, strlen (out.text)),
                   "isError", 0);
  if (out.structured != NULL)
    json_object_set_new (res, "structuredContent", out.structured);
  free (out.text);
  return res;
}

/* ---- JSON-RPC -------------------------------------------------------- */

static char *
reply (json_t *id, json_t *result, int code, const char *msg)
{
  json_t *r = json_pack ("{s:s, s:O}", "jsonrpc", "2.0", "id", id ? id : json_null ());
  char *s;
  if (result != NULL)
    json_object_set_new (r, "result", result);
  else if (msg != NULL)
    json_object_set_new (r, "error", json_pack ("{s:i, s:s}", "code", code, "message", msg));
  else
    json_object_set_new (r, "error", json_pack ("{s:i, s:s}", "code", -32603, "message", "internal error"));
  s = json_dumps (r, JSON_COMPACT);
  json_decref (r);
  if (s == NULL)
    abort (); /* only out of memory: every string in r is valid UTF-8 */
  return s;
}

static json_t *
initialize (const json_t *params)
{
  const char *asked = json_string_value (json_object_get (params, "protocolVersion"));
  const char *version = DEFAULT_PROTOCOL;
  if (asked != NULL && (strcmp (asked, "2025-06-18") == 0 || strcmp (asked, "2024-11-05") == 0))
    version = asked;
  return json_pack ("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion", version, "capabilities", "tools",
                    "serverInfo", "name", "agentkernel", "version", AK_VERSION);
}

static char *
dispatch (json_t *req)
{
  json_t *id = json_object_get (req, "id");
  json_t *params = json_object_get (req, "params");
  const char *method = json_string_value (json_object_get (req, "method"));
  bool notification = id == NULL;

  if (id != NULL && !json_is_string (id) && !json_is_integer (id))
    return reply (NULL, NULL, RPC_INVALID_REQUEST, "invalid request: id must be a string or an integer");
  if (!json_is_string (json_object_get (req, "jsonrpc")) || strcmp (json_string_value (json_object_get (req, "jsonrpc")), "2.0") != 0)
    return reply (id, NULL, RPC_INVALID_REQUEST, "invalid request: jsonrpc must be \"2.0\"");
  if (method == NULL)
    {
      /* A client's response to a request we never send: nothing to say. */
      if (id != NULL && (json_object_get (req, "result") || json_object_get (req, "error")))
        return NULL;
      return reply (id, NULL, RPC_INVALID_REQUEST, "invalid request: method must be a string");
    }
  if (params != NULL && !json_is_object (params))
    return notification ? NULL : reply (id, NULL, RPC_INVALID_PARAMS, "invalid params: params must be an object");
  if (notification)
    return NULL; /* notifications/initialized, cancelled, ...: no reply */

  if (strcmp (method, "initialize") == 0)
    {
      json_t *v = json_object_get (params, "protocolVersion");
      if (v != NULL && !json_is_string (v))
        return reply (id, NULL, RPC_INVALID_PARAMS, "invalid params: protocolVersion must be a string");
      return reply (id, initialize (params), 0, NULL);
    }
  if (strcmp (method, "ping") == 0)
    return reply (id, json_object (), 0, NULL);
  if (strcmp (method, "tools/list") == 0)
    return reply (id, tools_list (), 0, NULL);
  if (strcmp (method, "tools/call") == 0)
    {
      const char *name = json_string_value (json_object_get (params, "name"));
      json_t *args = json_object_get (params, "arguments");
      if (name == NULL)
        return reply (id, NULL, RPC_INVALID_PARAMS, "invalid params: name must be a string");
      if (args != NULL && !json_is_object (args))
        return reply (id, NULL, RPC_INVALID_PARAMS, "invalid params: arguments must be an object");
      return reply (id, tools_call (name, args), 0, NULL);
    }
  {
    _cleanup_free_ char *msg = ak_xasprintf ("method not found: %s", method);
    return reply (id, NULL, RPC_METHOD_NOT_FOUND, msg);
  }
}

char *
ak_mcp_handle_line (const char *line, size_t len)
{
  json_error_t jerr;
  json_t *req;
  char *resp;
  size_t i;

  if (len > 0 && line[len - 1] == '\r')
    len--;
  for (i = 0; i < len && strchr (" \t\r\n", line[i]) != NULL && line[i] != '\0'; i++)
    ;
  if (i == len)
    return NULL;
  req = json_loadb (line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
  if (req == NULL)
    return reply (NULL, NULL, RPC_PARSE_ERROR, "parse error");
  if (!json_is_object (req))
    resp = reply (NULL, NULL, RPC_INVALID_REQUEST, "invalid request: not a JSON object");
  else
    resp = dispatch (req);
  json_decref (req);
  return resp;
}

/* Writes one response line; calls on other threads write theirs too. */
static int
send_line (int fd, char *resp)
{
  size_t n = strlen (resp);
  int rc;
  resp = ak_xrealloc (resp, n + 2);
  resp[n] = '\n';
  pthread_mutex_lock (&out_lock);
  rc = ak_write_all (fd, resp, n + 1);
  pthread_mutex_unlock (&out_lock);
  if (rc < 0)
    fprintf (stderr, "agentkernel: mcp-server: write: %s\n", strerror (errno));
  free (resp);
  return rc < 0 ? -1 : 0;
}

static int out_fd_calls;

static void *
call_thread (void *arg)
{
  call_t *c = arg;
  char *resp;
  bool cancelled;

  current_call = c;
  pthread_mutex_lock (&calls_lock);
  while (call_must_wait (c))
    pthread_cond_wait (&calls_changed, &calls_lock);
  cancelled = c->cancelled;
  pthread_mutex_unlock (&calls_lock);
  /* A call cancelled while it waited is not run at all. */
  resp = cancelled ? NULL : ak_mcp_handle_line (c->line, c->len);
  pthread_mutex_lock (&calls_lock);
  cancelled = c->cancelled;
  pthread_mutex_unlock (&calls_lock);
  /* Answered while still counted: the server waits for this before it
   * exits. */
  if (resp != NULL && !cancelled)
    send_line (out_fd_calls, resp);
  else
    free (resp);
  pthread_mutex_lock (&calls_lock);
  for (call_t **pp = &calls; *pp; pp = &(*pp)->next)
    if (*pp == c)
      {
        *pp = c->next;
        break;
      }
  n_calls--;
  pthread_cond_broadcast (&calls_changed);
  pthread_mutex_unlock (&calls_lock);
  json_decref (c->id);
  free (c->key);
  free (c->line);
  free (c);
  return NULL;
}

/* A tools/call goes to a thread of its own (at most MAX_CALLS at once);
 * notifications/cancelled cancels one; everything else is answered here. */
static int
handle_and_send (int out_fd, const char *line, size_t len)
{
  json_t *req = json_loadb (line, len, JSON_REJECT_DUPLICATES, NULL);
  const char *method = json_string_value (json_object_get (req, "method"));
  json_t *id = json_object_get (req, "id");
  char *resp;

  if (method != NULL && id == NULL && strcmp (method, "notifications/cancelled") == 0)
    {
      json_t *which = json_object_get (json_object_get (req, "params"), "requestId");
      if (json_is_string (which) || json_is_integer (which))
        cancel_calls (which);
      json_decref (req);
      return 0;
    }
  if (method != NULL && strcmp (method, "tools/call") == 0 && (json_is_string (id) || json_is_integer (id))
      && !dry_run)
    {
      call_t *c = ak_xcalloc (1, sizeof *c);
      pthread_t t;
      pthread_attr_t attr;
      const char *key = json_string_value (
          json_object_get (json_object_get (json_object_get (req, "params"), "arguments"), "name"));
      c->id = json_incref (id);
      c->key = key ? ak_xstrdup (key) : NULL;
      c->line = ak_xmalloc (len + 1);
      memcpy (c->line, line, len);
      c->len = len;
      pthread_mutex_lock (&calls_lock);
      if (n_calls >= MAX_CALLS)
        {
          /* Refused at once rather than waited for: this thread must go on
           * reading (a cancellation of a long call may be next). */
          char *busy;
          pthread_mutex_unlock (&calls_lock);
          json_decref (c->id);
          free (c->key);
          free (c->line);
          free (c);
          busy = reply (id, NULL, -32000, "too many calls in flight (16): send it again when one has ended");
          json_decref (req);
          return send_line (out_fd, busy);
        }
      c->seq = next_seq++;
      c->next = calls;
      calls = c;
      n_calls++;
      out_fd_calls = out_fd;
      pthread_attr_init (&attr);
      pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create (&t, &attr, call_thread, c) != 0)
        {
          calls = c->next;
          n_calls--;
          pthread_mutex_unlock (&calls_lock);
          json_decref (c->id);
          free (c->key);
          free (c->line);
          free (c);
          pthread_attr_destroy (&attr);
          resp = reply (id, NULL, -32603, "cannot start a thread for the call");
          json_decref (req);
          return send_line (out_fd, resp);
        }
      pthread_attr_destroy (&attr);
      pthread_mutex_unlock (&calls_lock);
      json_decref (req);
      return 0;
    }
  json_decref (req);
  resp = ak_mcp_handle_line (line, len);
  return resp ? send_line (out_fd, resp) : 0;
}

/* Waits for the calls still running (the end of input is how a client
 * says it has nothing more to ask; it may still read their answers). */
static void
finish_calls (void)
{
  pthread_mutex_lock (&calls_lock);
  while (n_calls > 0)
    pthread_cond_wait (&calls_changed, &calls_lock);
  pthread_mutex_unlock (&calls_lock);
}

static int
serve_lines (int in_fd, int out_fd)
{
  size_t cap = 65536, used = 0;
  _cleanup_free_ char *buf = ak_xmalloc (cap);
  bool discarding = false;

  ak_set_warn_handler (warn_to_stderr, NULL);
  for (;;)
    {
      char *nl;
      size_t start = 0;
      ssize_t n;

      while ((nl = memchr (buf + start, '\n', used - start)) != NULL)
        {
          size_t len = (size_t) (nl - (buf + start));
          if (!discarding && handle_and_send (out_fd, buf + start, len) < 0)
            return -1;
          discarding = false;
          start += len + 1;
        }
      memmove (buf, buf + start, used - start);
      used -= start;
      if (used >= LINE_CAP)
        {
          /* Keep memory bounded: answer once, then drop the rest of the line. */
          if (!discarding
              && send_line (out_fd, reply (NULL, NULL, RPC_PARSE_ERROR, "parse error: request line too long")) < 0)
            return -1;
          discarding = true;
          used = 0;
        }
      if (cap - used < 65536)
        {
          cap *= 2;
          buf = ak_xrealloc (buf, cap);
        }
      n = read (in_fd, buf + used, cap - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          fprintf (stderr, "agentkernel: mcp-server: read: %s\n", strerror (errno));
          return -1;
        }
      if (n == 0)
        return used > 0 && !discarding ? handle_and_send (out_fd, buf, used) : 0;
      used += (size_t) n;
    }
}

int
ak_mcp_serve (int in_fd, int out_fd)
{
  int rc = serve_lines (in_fd, out_fd);
  if (rc < 0)
    cancel_calls (NULL); /* nobody to answer */
  finish_calls ();
  return rc;
}
