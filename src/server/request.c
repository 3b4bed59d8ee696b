#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"
#include "model/spec.h"
#include "model/netpolicy.h"
#include "server/request.h"

#define MAX_ARGS 4096
#define MAX_PATH 4095

void
ak_api_cmd_clear (ak_api_cmd_t *c)
{
  ak_strv_free (c->argv);
  ak_strv_free (c->env);
  free (c->workdir);
  free (c->profile);
  free (c->image);
  free (c->backend);
  ak_strv_free (c->allow_hosts);
  ak_strv_free (c->block_hosts);
  ak_cmdpolicy_clear (&c->commands);
  ak_strv_free (c->ports);
  memset (c, 0, sizeof *c);
}

void
ak_api_create_clear (ak_api_create_t *c)
{
  free (c->name);
  free (c->profile);
  free (c->image);
  free (c->backend);
  ak_strv_free (c->allow_hosts);
  ak_strv_free (c->block_hosts);
  ak_strv_free (c->labels);
  free (c->description);
  ak_cmdpolicy_clear (&c->commands);
  ak_strv_free (c->ports);
  memset (c, 0, sizeof *c);
}

void
ak_api_patch_clear (ak_api_patch_t *p)
{
  ak_strv_free (p->set);
  ak_strv_free (p->unset);
  free (p->description);
  memset (p, 0, sizeof *p);
}

void
ak_api_files_free (ak_api_file_t *files, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (files[i].path);
      free (files[i].data);
    }
  free (files);
}

static int
bad (ak_error_t **err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
bad (ak_error_t **err, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  ak_error_setv (err, 0, fmt, ap);
  va_end (ap);
  if (err != NULL && *err != NULL)
    (*err)->code = EINVAL;
  return -1;
}

json_t *
ak_api_parse_body (const char *body, size_t len, ak_error_t **err)
{
  json_error_t jerr;
  json_t *j;

  if (len == 0)
    return json_object ();
  j = json_loadb (body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (j == NULL)
    return bad (err, "malformed JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column), NULL;
  if (!json_is_object (j))
    {
      json_decref (j);
      return bad (err, "the JSON body must be an object"), NULL;
    }
  return j;
}

/* A string without NUL bytes (JSON allows \u0000; C strings do not). */
static const char *
plain_string (const json_t *v)
{
  const char *s = json_string_value (v);
  if (s == NULL || strlen (s) != json_string_length (v))
    return NULL;
  return s;
}

/* Optional fields: absent and null are the same. */
static const json_t *
field (const json_t *body, const char *key)
{
  const json_t *v = json_object_get (body, key);
  return json_is_null (v) ? NULL : v;
}

static int
only_keys (const json_t *body, const char *const *allowed, ak_error_t **err)
{
  const char *key;
  json_t *v;
  json_object_foreach ((json_t *) body, key, v)
    {
      bool ok = false;
      for (const char *const *a = allowed; *a && !ok; a++)
        ok = strcmp (*a, key) == 0;
      if (!ok)
        return bad (err, "unknown field '%.64s'", key);
    }
  return 0;
}

static int
opt_string (const json_t *body, const char *key, char **out, ak_error_t **err)
{
  const json_t *v = field (body, key);
  if (v == NULL)
    return 0;
  if (plain_string (v) == NULL)
    return bad (err, "'%s' must be a string", key);
  *out = ak_xstrdup (json_string_value (v));
  return 0;
}

static int
opt_bool (const json_t *body, const char *key, bool *out, ak_error_t **err)
{
  const json_t *v = field (body, key);
  if (v == NULL)
    return 0;
  if (!json_is_boolean (v))
    return bad (err, "'%s' must be true or false", key);
  *out = json_is_true (v);
  return 0;
}

static int
parse_command (const json_t *body, ak_api_cmd_t *out, ak_error_t **err)
{
  const json_t *cmd = json_object_get (body, "command");
  size_t i;
  json_t *v;

  if (!json_is_array (cmd) || json_array_size (cmd) == 0)
    return bad (err, "'command' must be a non-empty array of strings");
  if (json_array_size (cmd) > MAX_ARGS)
    return bad (err, "'command' has more than %d arguments", MAX_ARGS);
  out->argv = ak_xcalloc (json_array_size (cmd) + 1, sizeof (char *));
  json_array_foreach (cmd, i, v)
    {
      if (plain_string (v) == NULL)
        return bad (err, "'command[%zu]' must be a string without NUL bytes", i);
      out->argv[i] = ak_xstrdup (json_string_value (v));
    }
  if (out->argv[0][0] == '\0')
    return bad (err, "'command[0]' must not be empty");
  return 0;
}

static int
parse_profile (const json_t *body, char **out, ak_error_t **err)
{
  ak_profile_t p;
  if (opt_string (body, "profile", out, err) < 0)
    return -1;
  if (*out != NULL && ak_profile_from_name (*out, &p, NULL) < 0)
    return bad (err, "'profile' must be permissive, moderate or restrictive, not '%.64s'", *out);
  return 0;
}

static int
parse_backend (const json_t *body, char **out, ak_error_t **err)
{
  if (opt_string (body, "backend", out, err) < 0)
    return -1;
  if (*out != NULL && strcmp (*out, "container") != 0 && strcmp (*out, "microvm") != 0)
    return bad (err, "'backend' must be container or microvm, not '%.64s'", *out);
  return 0;
}

static int
parse_image (const json_t *body, char **out, ak_error_t **err)
{
  if (opt_string (body, "image", out, err) < 0)
    return -1;
  /* The reference itself is checked when it is resolved (and pulled). */
  if (*out != NULL && (**out == '\0' || strlen (*out) > 512 || strcspn (*out, " \t\r\n") != strlen (*out)))
    return bad (err, "'image' must be an image reference, 'host' or 'auto'");
  return 0;
}

/* allow_hosts / block_hosts: arrays of host patterns, each checked here so
 * that a malformed one is a 400 naming it. */
#define MAX_HOSTS 256

static int
parse_hosts (const json_t *body, const char *key, char ***out, ak_error_t **err)
{
  const json_t *a = field (body, key);
  size_t i;
  json_t *v;

  if (a == NULL)
    return 0;
  if (!json_is_array (a) || json_array_size (a) > MAX_HOSTS)
    return bad (err, "'%s' must be an array of at most %d host patterns", key, MAX_HOSTS);
  json_array_foreach (a, i, v)
    {
      const char *s = plain_string (v);
      ak_netpat_t p;
      if (s == NULL)
        return bad (err, "'%s[%zu]' must be a string without NUL bytes", key, i);
      if (ak_netpat_parse (s, &p, err) < 0)
        return ak_error_prefix (err, "'%s[%zu]'", key, i);
      ak_netpat_clear (&p);
      ak_strv_push (out, s);
    }
  return 0;
}

/* ports: ["8080:80", "127.0.0.1:5353:53/udp"], each checked here. */
#define MAX_PORTS 64

static int
parse_ports (const json_t *body, char ***out, ak_error_t **err)
{
  const json_t *a = field (body, "ports");
  size_t i;
  json_t *v;

  if (a == NULL)
    return 0;
  if (!json_is_array (a) || json_array_size (a) > MAX_PORTS)
    return bad (err, "'ports' must be an array of at most %d strings such as \"8080:80\"", MAX_PORTS);
  json_array_foreach (a, i, v)
    {
      const char *s = plain_string (v);
      ak_port_t p;
      if (s == NULL)
        return bad (err, "'ports[%zu]' must be a string without NUL bytes", i);
      if (ak_port_parse (s, &p, err) < 0)
        return ak_error_prefix (err, "'ports[%zu]'", i);
      ak_strv_push (out, s);
    }
  return 0;
}

static int
parse_all_hosts (const json_t *body, char ***allow, char ***block, ak_error_t **err)
{
  return parse_hosts (body, "allow_hosts", allow, err) < 0 || parse_hosts (body, "block_hosts", block, err) < 0
             ? -1
             : 0;
}

/* commands: the command policy (model/cmdpolicy.h), a 400 naming the
 * entry when one is malformed. */
static int
parse_commands (const json_t *body, ak_cmdpolicy_t *out, ak_error_t **err)
{
  const json_t *o = field (body, "commands");

  if (o == NULL)
    return 0;
  if (ak_cmdpolicy_from_json (o, AK_SRC_CLI, out, err) < 0)
    {
      if (err != NULL && *err != NULL)
        (*err)->code = EINVAL;
      return -1;
    }
  return 0;
}

int
ak_api_parse_run (const json_t *body, ak_api_cmd_t *out, ak_error_t **err)
{
  static const char *const keys[] = { "command", "image", "profile", "fast", "allow_hosts", "block_hosts", "commands",
                                      "ports", "backend", NULL };
  bool fast = true;

  memset (out, 0, sizeof *out);
  out->env = ak_xcalloc (1, sizeof (char *));
  /* "fast" asked for a pre-warmed pool; every start here is fast. */
  if (only_keys (body, keys, err) < 0 || parse_command (body, out, err) < 0 || parse_image (body, &out->image, err) < 0
      || parse_profile (body, &out->profile, err) < 0 || opt_bool (body, "fast", &fast, err) < 0
      || parse_backend (body, &out->backend, err) < 0
      || parse_all_hosts (body, &out->allow_hosts, &out->block_hosts, err) < 0
      || parse_commands (body, &out->commands, err) < 0
      || parse_ports (body, &out->ports, err) < 0)
    return -1;
  return 0;
}

static int
parse_env (const json_t *body, char ***env, ak_error_t **err)
{
  const json_t *e = field (body, "env");
  const char *key;
  json_t *v;
  size_t i;

  if (e == NULL)
    return 0;
  if (json_is_array (e))
    {
      json_array_foreach (e, i, v)
        {
          const char *kv = plain_string (v);
          if (kv == NULL || kv[0] == '=' || strchr (kv, '=') == NULL)
            return bad (err, "'env[%zu]' must be a KEY=VALUE string", i);
          ak_strv_push (env, kv);
        }
      return 0;
    }
  if (!json_is_object (e))
    return bad (err, "'env' must be an array of KEY=VALUE strings");
  json_object_foreach ((json_t *) e, key, v)
    {
      _cleanup_free_ char *kv = NULL;
      if (key[0] == '\0' || strchr (key, '=') != NULL || plain_string (v) == NULL)
        return bad (err, "'env' must map names without '=' to strings");
      kv = ak_xasprintf ("%s=%s", key, json_string_value (v));
      ak_strv_push (env, kv);
    }
  return 0;
}

int
ak_api_parse_exec (const json_t *body, ak_api_cmd_t *out, ak_error_t **err)
{
  static const char *const keys[] = { "command", "env", "workdir", "sudo", NULL };

  memset (out, 0, sizeof *out);
  out->env = ak_xcalloc (1, sizeof (char *));
  if (only_keys (body, keys, err) < 0 || parse_command (body, out, err) < 0 || parse_env (body, &out->env, err) < 0
      || opt_string (body, "workdir", &out->workdir, err) < 0 || opt_bool (body, "sudo", &out->sudo, err) < 0)
    return -1;
  if (out->workdir != NULL && (out->workdir[0] != '/' || strlen (out->workdir) > MAX_PATH))
    return bad (err, "'workdir' must be an absolute path");
  return 0;
}

/* A non-negative integer field no larger than max. */
static int
opt_uint (const json_t *body, const char *key, unsigned long long max, unsigned long long *out, ak_error_t **err)
{
  const json_t *v = field (body, key);
  if (v == NULL)
    return 0;
  if (!json_is_integer (v) || json_integer_value (v) < 0 || (unsigned long long) json_integer_value (v) > max)
    return bad (err, "'%s' must be an integer from 0 to %llu", key, max);
  *out = (unsigned long long) json_integer_value (v);
  return 0;
}

/* "labels": {key: value} as "KEY=VALUE" pairs (each checked, at most
 * AK_LABELS_MAX); with nulls, a null value names a key to remove. */
static int
parse_labels (const json_t *body, bool nulls, char ***set, char ***unset, ak_error_t **err)
{
  const json_t *obj = field (body, "labels");
  const char *key;
  json_t *v;
  char **checked = NULL;

  if (obj == NULL)
    return 0;
  if (!json_is_object (obj))
    return bad (err, "'labels' must be an object of strings");
  if (json_object_size (obj) > AK_LABELS_MAX)
    return bad (err, "too many labels (at most %d)", AK_LABELS_MAX);
  *set = ak_xcalloc (1, sizeof (char *));
  if (unset != NULL)
    *unset = ak_xcalloc (1, sizeof (char *));
  json_object_foreach ((json_t *) obj, key, v)
    {
      const char *value = plain_string (v);
      ak_error_t *e = NULL;
      if (nulls && json_is_null (v))
        {
          if (ak_label_check (key, "", &e) < 0)
            {
              ak_strv_free (checked);
              bad (err, "%s", e->msg);
              ak_error_free (e);
              return -1;
            }
          ak_strv_push (unset, key);
          continue;
        }
      if (value == NULL)
        {
          ak_strv_free (checked);
          return bad (err, "label '%.64s' must be a string%s", key, nulls ? " (or null to remove it)" : "");
        }
      if (ak_labels_set (&checked, key, value, &e) < 0)
        {
          ak_strv_free (checked);
          bad (err, "%s", e->msg);
          ak_error_free (e);
          return -1;
        }
      {
        _cleanup_free_ char *kv = ak_xasprintf ("%s=%s", key, value);
        ak_strv_push (set, kv);
      }
    }
  ak_strv_free (checked);
  return 0;
}

static int
parse_description (const json_t *body, char **out, ak_error_t **err)
{
  const json_t *v = field (body, "description");
  const char *text;
  ak_error_t *e = NULL;

  if (v == NULL)
    return 0;
  text = plain_string (v);
  if (text == NULL)
    return bad (err, "'description' must be a string");
  if (ak_description_check (text, &e) < 0)
    {
      bad (err, "%s", e->msg);
      ak_error_free (e);
      return -1;
    }
  *out = ak_xstrdup (text);
  return 0;
}

int
ak_api_parse_patch (const json_t *body, ak_api_patch_t *out, ak_error_t **err)
{
  static const char *const keys[] = { "labels", "description", NULL };

  memset (out, 0, sizeof *out);
  if (only_keys (body, keys, err) < 0)
    return -1;
  if (json_object_size (body) == 0)
    return bad (err, "nothing to change: send 'labels' and/or 'description'");
  if (parse_labels (body, true, &out->set, &out->unset, err) < 0 || parse_description (body, &out->description, err) < 0)
    return -1;
  if (json_is_null (json_object_get (body, "description")))
    out->description = ak_xstrdup ("");
  return 0;
}

int
ak_api_check_label_filter (const char *filter, ak_error_t **err)
{
  ak_error_t *e = NULL;
  if (ak_label_filter_check (filter, &e) < 0)
    {
      bad (err, "%s", e->msg);
      ak_error_free (e);
      return -1;
    }
  return 0;
}

int
ak_api_parse_create (const json_t *body, ak_api_create_t *out, ak_error_t **err)
{
  static const char *const keys[] = { "name",    "image",      "profile",    "vcpus",   "memory_mb",
                                      "volumes", "source_url", "source_ref", "secrets", "secret_files",
                                      "allow_hosts", "block_hosts", "disk_mb", "labels", "description", "commands",
                                      "ports", "backend", NULL };
  static const char *const refused[] = { "volumes", "source_url", "source_ref", "secrets", "secret_files", NULL };
  unsigned long long vcpus = 0, disk = 0;

  memset (out, 0, sizeof *out);
  if (only_keys (body, keys, err) < 0)
    return -1;
  for (const char *const *r = refused; *r; r++)
    {
      const json_t *v = field (body, *r);
      if (v != NULL && !(json_is_array (v) && json_array_size (v) == 0))
        return bad (err, "'%s' is not supported by this server", *r);
    }
  if (opt_string (body, "name", &out->name, err) < 0)
    return -1;
  if (out->name == NULL)
    return bad (err, "'name' is required");
  if (!ak_name_valid (out->name))
    return bad (err, "invalid sandbox name '%.64s' (1-63 of letters, digits, '-', '_')", out->name);
  if (parse_image (body, &out->image, err) < 0 || parse_profile (body, &out->profile, err) < 0
      || parse_backend (body, &out->backend, err) < 0
      || opt_uint (body, "memory_mb", 1024ULL * 1024 * 1024, &out->memory_mb, err) < 0
      || opt_uint (body, "vcpus", 1024, &vcpus, err) < 0
      || opt_uint (body, "disk_mb", AK_DISK_MB_MAX, &disk, err) < 0
      || parse_all_hosts (body, &out->allow_hosts, &out->block_hosts, err) < 0
      || parse_labels (body, false, &out->labels, NULL, err) < 0 || parse_description (body, &out->description, err) < 0
      || parse_commands (body, &out->commands, err) < 0
      || parse_ports (body, &out->ports, err) < 0)
    return -1;
  out->vcpus = (unsigned) vcpus;
  out->disk_mb = (unsigned) disk;
  return 0;
}

int
ak_api_parse_batch (const json_t *body, ak_api_cmd_t **cmds, size_t *n, ak_error_t **err)
{
  static const char *const keys[] = { "commands", NULL };
  static const char *const item_keys[] = { "command", "profile", "allow_hosts", "block_hosts", "backend", NULL };
  const json_t *arr = json_object_get (body, "commands");
  size_t i;
  json_t *v;

  *cmds = NULL;
  *n = 0;
  if (only_keys (body, keys, err) < 0)
    return -1;
  if (!json_is_array (arr) || json_array_size (arr) == 0 || json_array_size (arr) > AK_API_MAX_BATCH)
    return bad (err, "'commands' must be an array of 1 to %d {\"command\": [...]} objects", AK_API_MAX_BATCH);
  *cmds = ak_xcalloc (json_array_size (arr), sizeof (ak_api_cmd_t));
  json_array_foreach (arr, i, v)
    {
      ak_api_cmd_t *c = &(*cmds)[i];
      (*n)++;
      c->env = ak_xcalloc (1, sizeof (char *));
      if (!json_is_object (v))
        return bad (err, "'commands[%zu]' must be an object", i);
      if (only_keys (v, item_keys, err) < 0 || parse_command (v, c, err) < 0
          || parse_profile (v, &c->profile, err) < 0 || parse_backend (v, &c->backend, err) < 0
          || parse_all_hosts (v, &c->allow_hosts, &c->block_hosts, err) < 0)
        return ak_error_prefix (err, "commands[%zu]", i);
    }
  return 0;
}

/* The bytes a {content, encoding} pair stands for. */
static int
decode_content (const json_t *content, const char *encoding, char **data, size_t *len, ak_error_t **err)
{
  const char *text = json_string_value (content);
  if (text == NULL)
    return bad (err, "'content' must be a string");
  if (encoding == NULL || strcmp (encoding, "utf8") == 0 || strcmp (encoding, "utf-8") == 0)
    {
      *len = json_string_length (content);
      *data = ak_xmalloc (*len + 1);
      memcpy (*data, text, *len + 1);
      return 0;
    }
  if (strcmp (encoding, "base64") == 0)
    {
      if (!ak_base64_decode (text, json_string_length (content), data, len))
        return bad (err, "'content' is not valid base64");
      return 0;
    }
  return bad (err, "'encoding' must be \"utf8\" or \"base64\", not '%.32s'", encoding);
}

int
ak_api_parse_file_write (const json_t *body, const char *path, ak_api_file_t *out, ak_error_t **err)
{
  static const char *const keys[] = { "content", "encoding", NULL };
  _cleanup_free_ char *encoding = NULL;

  memset (out, 0, sizeof *out);
  if (only_keys (body, keys, err) < 0 || opt_string (body, "encoding", &encoding, err) < 0
      || decode_content (json_object_get (body, "content"), encoding, &out->data, &out->len, err) < 0
      || ak_api_file_path (path, "/", &out->path, err) < 0)
    return -1;
  return 0;
}

int
ak_api_parse_files (const json_t *body, const char *base, ak_api_file_t **files, size_t *n, ak_error_t **err)
{
  static const char *const keys[] = { "files", NULL };
  const json_t *map = json_object_get (body, "files");
  const char *key;
  json_t *v;

  *files = NULL;
  *n = 0;
  if (only_keys (body, keys, err) < 0)
    return -1;
  if (!json_is_object (map) || json_object_size (map) == 0 || json_object_size (map) > AK_API_MAX_FILES)
    return bad (err, "'files' must be an object of 1 to %d path: content pairs", AK_API_MAX_FILES);
  *files = ak_xcalloc (json_object_size (map), sizeof (ak_api_file_t));
  json_object_foreach ((json_t *) map, key, v)
    {
      ak_api_file_t *f = &(*files)[*n];
      (*n)++;
      if (ak_api_file_path (key, base, &f->path, err) < 0)
        return -1;
      if (decode_content (v, NULL, &f->data, &f->len, err) < 0)
        return ak_error_prefix (err, "files['%.128s']", key);
    }
  return 0;
}

int
ak_api_parse_duration (const char *s, long long *seconds, ak_error_t **err)
{
  if (s == NULL || *s == '\0')
    return bad (err, "a duration like \"30m\", \"1h\" or \"2d\" is required");
  switch (ak_parse_duration (s, seconds))
    {
    case 0:
      return 0;
    case AK_DURATION_LONG:
      return bad (err, "duration '%.32s' is longer than 366 days", s);
    case AK_DURATION_ZERO:
      return bad (err, "duration '%.32s' must be at least one second", s);
    default:
      return bad (err, "invalid duration '%.32s' (use e.g. \"45s\", \"30m\", \"1h30m\", \"2d\")", s);
    }
}

int
ak_api_parse_extend (const json_t *body, long long *seconds, ak_error_t **err)
{
  static const char *const keys[] = { "by", NULL };
  const json_t *by = json_object_get (body, "by");

  if (only_keys (body, keys, err) < 0)
    return -1;
  if (json_is_integer (by) && json_integer_value (by) > 0 && json_integer_value (by) <= 366LL * 86400)
    {
      *seconds = (long long) json_integer_value (by);
      return 0;
    }
  if (plain_string (by) == NULL)
    return bad (err, "'by' must be a duration string like \"30m\"");
  return ak_api_parse_duration (json_string_value (by), seconds, err);
}

int
ak_api_file_path (const char *rest, const char *base, char **inside, ak_error_t **err)
{
  _cleanup_free_ char *full = NULL;
  _cleanup_free_ char *copy = NULL;
  char *save = NULL, *comp;
  size_t n = 0;
  char *out;

  if (rest == NULL || rest[0] == '\0')
    return bad (err, "a file path is required");
  if (strstr (rest, "%00") != NULL)
    return bad (err, "file path contains a NUL byte");
  full = rest[0] == '/' ? ak_xstrdup (rest) : ak_xasprintf ("%s/%s", base ? base : "/", rest);
  if (strlen (full) > MAX_PATH)
    return bad (err, "file path is longer than %d bytes", MAX_PATH);
  copy = ak_xstrdup (full);
  out = ak_xmalloc (strlen (full) + 2);
  for (comp = strtok_r (copy, "/", &save); comp; comp = strtok_r (NULL, "/", &save))
    {
      if (strcmp (comp, ".") == 0 || strcmp (comp, "..") == 0)
        {
          free (out);
          return bad (err, "file path '%.128s' must not contain '.' or '..' components", rest);
        }
      out[n++] = '/';
      strcpy (out + n, comp);
      n += strlen (comp);
    }
  if (n == 0)
    {
      free (out);
      return bad (err, "file path '%.128s' names the root directory, not a file", rest);
    }
  out[n] = '\0';
  *inside = out;
  return 0;
}
