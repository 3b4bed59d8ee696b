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

/* Checks args against the subset of JSON Schema the tool schemas use: an
 * object with typed properties (string, optionally enum; boolean; array of
 * strings; object of strings), required keys, no other keys. */
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
      const char *type;
      if (p == NULL)
        return ak_error_set (err, 0, "unknown argument '%s'", key);
      type = json_string_value (json_object_get (p, "type"));
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
      else if (strcmp (type, "array") == 0)
        {
          json_t *e;
          if (!json_is_array (val) || json_array_size (val) == 0)
            return ak_error_set (err, 0, "argument '%s' must be a non-empty array of strings", key);
          json_array_foreach (val, i, e)
            if (!json_is_string (e))
              return ak_error_set (err, 0, "argument '%s' must be a non-empty array of strings", key);
        }
      else if (strcmp (type, "object") == 0)
        {
          const char *k;
          json_t *e;
          if (!json_is_object (val))
            return ak_error_set (err, 0, "argument '%s' must be an object of strings", key);
          json_object_foreach (val, k, e)
            if (!json_is_string (e))
              return ak_error_set (err, 0, "argument '%s': '%s' must be a string", key, k);
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
run_job (ak_job_t *job, tool_out_t *out, ak_error_t **err)
{
  ak_job_capture_t cap = { .cap = OUTPUT_CAP };
  int status = 0, rc;

  if (job == NULL)
    return -1;
  call_set_job (job);
  rc = ak_job_collect (job, -1, -1, &cap, &status, err);
  call_set_job (NULL);
  ak_job_free (job);
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
  return ak_server_hosts (spec, allow, block, err);
}

static int
tool_run (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  ak_spec_t spec;
  int rc = -1;

  /* The command gets pipes of its own: it never sees the server's stdin
   * or stdout, which carry the protocol. */
  if (ak_server_spec (arg_str (args, "profile"), &spec, err) == 0 && args_hosts (args, &spec, err) == 0)
    {
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
        rc = run_job (ak_job_run (&spec, err), out, err);
    }
  ak_spec_clear (&spec);
  return rc;
}

static int
tool_exec (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  _cleanup_strv_ char **argv = strv_from_json (json_object_get (args, "command"));
  _cleanup_strv_ char **env = ak_xcalloc (1, sizeof *env);
  ak_exec_req_t req = { .sigfd = -1 };
  const char *key;
  json_t *val;

  json_object_foreach (json_object_get (args, "env"), key, val)
    {
      if (key[0] == '\0' || strchr (key, '=') != NULL)
        return ak_error_set (err, 0, "invalid environment variable name '%s'", key);
      _cleanup_free_ char *kv = ak_xasprintf ("%s=%s", key, json_string_value (val));
      ak_strv_push (&env, kv);
    }
  req.argv = argv;
  req.env = env;
  req.workdir = arg_str (args, "workdir");
  return run_job (ak_job_exec (arg_str (args, "name"), &req, err), out, err);
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
  out->text = ak_xasprintf ("created sandbox %s (profile %s)", rec.name, ak_profile_name (spec.sec.profile));
  out->structured = json_pack ("{s:s, s:s, s:s}", "name", rec.name, "uuid", rec.uuid ? rec.uuid : "", "profile",
                               ak_profile_name (spec.sec.profile));
  rc = 0;
done:
  ak_record_clear (&rec);
  ak_spec_clear (&spec);
  return rc;
}

static int
tool_start (const json_t *args, tool_out_t *out, ak_error_t **err)
{
  if (ak_sandbox_start (arg_str (args, "name"), err) < 0)
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
  if (ak_sandbox_remove (arg_str (args, "name"), json_is_true (json_object_get (args, "force")), err) < 0)
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
  "reached (same patterns; wins over allow_hosts)\"}"
#define PATH_PROP "\"path\": {\"type\": \"string\", \"description\": \"Absolute path inside the sandbox\"}"
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
    SCHEMA (COMMAND_PROP ", " PROFILE_PROP ", " IMAGE_PROP ", " BACKEND_PROP ", " HOSTS_PROP, "\"command\""), tool_run },
  { "sandbox_create", "Record a persistent sandbox (start it with sandbox_start).",
    SCHEMA (NAME_PROP ", " PROFILE_PROP ", " IMAGE_PROP ", " BACKEND_PROP ", " HOSTS_PROP, "\"name\""), tool_create },
  { "sandbox_start", "Start a persistent sandbox.", SCHEMA (NAME_PROP, "\"name\""), tool_start },
  { "sandbox_stop", "Stop a running sandbox; its files are kept.", SCHEMA (NAME_PROP, "\"name\""), tool_stop },
  { "sandbox_remove", "Remove a sandbox and everything in it.",
    SCHEMA (NAME_PROP ", \"force\": {\"type\": \"boolean\", \"description\": \"Stop it first if running\"}",
            "\"name\""),
    tool_remove },
  { "sandbox_exec", "Run a command in a running sandbox; returns its exit code and output.",
    SCHEMA (NAME_PROP ", " COMMAND_PROP
                      ", \"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}, "
                      "\"description\": \"Extra environment variables\"}, "
                      "\"workdir\": {\"type\": \"string\", \"description\": \"Working directory inside\"}",
            "\"name\", \"command\""),
    tool_exec },
  { "sandbox_list", "List persistent sandboxes with their status and profile.", SCHEMA ("", ""), tool_list },
  { "sandbox_file_write", "Write a text file inside a running sandbox.",
    SCHEMA (NAME_PROP ", " PATH_PROP ", \"content\": {\"type\": \"string\", \"description\": \"File contents\"}",
            "\"name\", \"path\", \"content\""),
    tool_file_write },
  { "sandbox_file_read", "Read a file from inside a running sandbox.",
    SCHEMA (NAME_PROP ", " PATH_PROP, "\"name\", \"path\""), tool_file_read },
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
  resp = ak_mcp_handle_line (c->line, c->len);
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
      c->id = json_incref (id);
      c->line = ak_xmalloc (len + 1);
      memcpy (c->line, line, len);
      c->len = len;
      pthread_mutex_lock (&calls_lock);
      while (n_calls >= MAX_CALLS)
        pthread_cond_wait (&calls_changed, &calls_lock);
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
          free (c->line);
          free (c);
          pthread_attr_destroy (&attr);
          json_decref (req);
          return send_line (out_fd, reply (id, NULL, -32603, "cannot start a thread for the call"));
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
