/* The sandbox spec <-> JSON.  The reader treats its input as hostile: it is
 * both the stored form of a persistent sandbox (a file anyone with the
 * user's rights may have edited) and the body of API requests. */
#define _GNU_SOURCE
#include "model/spec_json.h"
#include "model/rulelist.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/seccomp_profile.h"

static const char *const res_names[AK_RES_N] = { "memory_mb", "cpu_millis", "pids", "vcpus", "log_mb", "disk_mb" };

/* ---- writing ---------------------------------------------------------- */

static json_t *
str_or_null (const char *s)
{
  return s != NULL ? json_string (s) : json_null ();
}

static json_t *
strv_to_json (char *const *v)
{
  json_t *a = json_array ();
  for (size_t i = 0; v != NULL && v[i] != NULL; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static unsigned long long
res_get (const ak_resources_t *r, int i)
{
  switch (i)
    {
    case 0:
      return r->memory_mb;
    case 1:
      return r->cpu_millis;
    case 2:
      return r->pids;
    case 3:
      return r->vcpus;
    case 4:
      return r->log_mb;
    default:
      return r->disk_mb;
    }
}

static const struct {
  unsigned type;
  const char *name;
} pin_types[] = {
  { S_IFDIR, "directory" }, { S_IFREG, "file" },   { S_IFCHR, "char-device" },
  { S_IFBLK, "block-device" }, { S_IFIFO, "fifo" }, { S_IFSOCK, "socket" },
};

/* A recorded source identity, or nothing when none was recorded. */
static void
pin_to_json (json_t *o, const char *key, const ak_fs_id_t *id)
{
  for (size_t i = 0; i < sizeof pin_types / sizeof pin_types[0]; i++)
    if (id->type == pin_types[i].type)
      json_object_set_new (o, key,
                           json_pack ("{s:I, s:I, s:s}", "dev", (json_int_t) id->dev, "ino",
                                      (json_int_t) id->ino, "type", pin_types[i].name));
}

json_t *
ak_spec_to_json (const ak_spec_t *spec)
{
  json_t *root = json_object ();
  json_t *sec = json_object ();
  json_t *res = json_object ();
  json_t *mounts = json_array ();
  json_t *files = json_array ();

  if (root == NULL || sec == NULL || res == NULL || mounts == NULL || files == NULL)
    ak_oom ();
  json_object_set_new (root, "version", json_integer (AK_SPEC_JSON_VERSION));
  json_object_set_new (root, "name", str_or_null (spec->name));
  json_object_set_new (root, "backend", str_or_null (spec->backend));
  json_object_set_new (root, "image", str_or_null (spec->image));
  json_object_set_new (root, "rootfs", str_or_null (spec->rootfs));
  pin_to_json (root, "rootfs_pin", &spec->rootfs_pin);
  if (spec->image_digest != NULL)
    {
      json_object_set_new (root, "image_digest", json_string (spec->image_digest));
      json_object_set_new (root, "image_layers", strv_to_json (spec->image_layers));
      json_object_set_new (root, "image_env", strv_to_json (spec->image_env));
    }

  json_object_set_new (sec, "profile",
                       json_pack ("{s:s, s:s}", "value", ak_profile_name (spec->sec.profile),
                                  "source", ak_source_name (spec->sec.profile_source)));
  for (int k = 0; k < AK_SEC_N; k++)
    json_object_set_new (sec, ak_sec_key_names[k],
                         json_pack ("{s:b, s:s, s:i}", "value", spec->sec.s[k].value, "source",
                                    ak_source_name (spec->sec.s[k].source), "line",
                                    spec->sec.s[k].line));
  {
    const ak_seccomp_sel_t *sc = &spec->sec.seccomp;
    json_t *o = json_pack ("{s:s, s:s, s:i}", "value", ak_seccomp_name (sc->kind), "source",
                           ak_source_name (sc->source), "line", sc->line);
    if (sc->kind == AK_SECCOMP_CUSTOM)
      {
        json_object_set_new (o, "file", json_string (sc->file));
        json_object_set_new (o, "text", json_string (sc->text));
        json_object_set_new (o, "under", json_string (ak_seccomp_name (sc->under)));
        json_object_set_new (o, "unsafe", json_boolean (sc->unsafe));
      }
    json_object_set_new (sec, "seccomp", o);
  }
  if (ak_netpolicy_has_rules (&spec->sec.domains))
    {
      ak_rules_t r = ak_rules_domains ((ak_netpolicy_t *) &spec->sec.domains);
      json_object_set_new (sec, "domains", ak_rules_to_json (&r, true));
    }
  if (ak_cmdpolicy_has_rules (&spec->sec.commands))
    {
      ak_rules_t r = ak_rules_commands ((ak_cmdpolicy_t *) &spec->sec.commands);
      json_object_set_new (sec, "commands", ak_rules_to_json (&r, true));
    }
  json_object_set_new (root, "security", sec);

  for (int i = 0; i < AK_RES_N; i++)
    json_object_set_new (res, res_names[i],
                         json_pack ("{s:I, s:s}", "value", (json_int_t) res_get (&spec->res, i),
                                    "source", ak_source_name (spec->res_source[i])));
  json_object_set_new (root, "resources", res);

  json_object_set_new (root, "cwd", str_or_null (spec->cwd));
  json_object_set_new (root, "home", str_or_null (spec->home));
  pin_to_json (root, "cwd_pin", &spec->cwd_pin);
  pin_to_json (root, "home_pin", &spec->home_pin);
  json_object_set_new (root, "env", strv_to_json (spec->env));
  json_object_set_new (root, "host_env", strv_to_json (spec->host_env));
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      json_t *m = json_pack ("{s:s?, s:s?, s:b}", "source", spec->mounts[i].source, "dest",
                             spec->mounts[i].dest, "read_only", spec->mounts[i].read_only);
      pin_to_json (m, "pin", &spec->mounts[i].pin);
      json_array_append_new (mounts, m);
    }
  json_object_set_new (root, "mounts", mounts);
  for (size_t i = 0; i < spec->n_files; i++)
    {
      json_t *f = json_pack ("{s:s?, s:s?, s:i}", "source", spec->files[i].source, "dest",
                             spec->files[i].dest, "line", spec->files[i].line);
      pin_to_json (f, "pin", &spec->files[i].pin);
      json_array_append_new (files, f);
    }
  json_object_set_new (root, "files", files);
  json_object_set_new (root, "workdir", str_or_null (spec->workdir));
  json_object_set_new (root, "argv", spec->argv != NULL ? strv_to_json (spec->argv) : json_null ());
  json_object_set_new (root, "as_root", json_boolean (spec->as_root));
  json_object_set_new (root, "show_credentials", json_boolean (spec->show_credentials));
  json_object_set_new (root, "hostname", str_or_null (spec->hostname));
  json_object_set_new (root, "agent", str_or_null (spec->agent));
  json_object_set_new (root, "compat_mode", str_or_null (spec->compat_mode));
  if (spec->ports != NULL)
    json_object_set_new (root, "ports", strv_to_json (spec->ports));
  return root;
}

/* ---- reading ---------------------------------------------------------- */

/* Checks on a string value: each returns NULL when `s` is acceptable, else
 * what was expected (for the message). */
typedef const char *(*str_check_fn) (const char *s);

/* "sha256:" and 64 lowercase hex digits: a layer is named by nothing else,
 * so its directory can never be a path of the spec's choosing. */
static const char *
check_digest (const char *s)
{
  if (strncmp (s, "sha256:", 7) != 0 || strlen (s) != 71 || strspn (s + 7, "0123456789abcdef") != 64)
    return "a sha256 digest";
  return NULL;
}

static const char *
check_any (const char *s)
{
  (void) s;
  return NULL;
}

static bool
has_control (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static const char *
check_name (const char *s)
{
  return ak_name_valid (s) ? NULL : "a name of 1-63 letters, digits, '-', '_'";
}

static const char *
check_word (const char *s)
{
  size_t n = strlen (s);
  if (n == 0 || n > 32)
    return "an identifier of 1-32 of [a-z0-9_-]";
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
      return "an identifier of 1-32 of [a-z0-9_-]";
  return NULL;
}

static const char *
check_text (const char *s)
{
  size_t n = strlen (s);
  return n > 0 && n < 4096 && !has_control (s) ? NULL : "a non-empty string without control characters";
}

/* A host path: absolute is enough, the host side is resolved by whoever
 * built the spec. */
static const char *
check_abs (const char *s)
{
  return s[0] == '/' && strlen (s) < PATH_MAX ? NULL : "an absolute path";
}

/* A path inside the sandbox must not climb out of its parent. */
static const char *
check_clean (const char *s)
{
  if (s[0] != '/' || strlen (s) >= PATH_MAX)
    return "an absolute path without '..'";
  for (const char *p = s; (p = strstr (p, "..")) != NULL; p += 2)
    if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
      return "an absolute path without '..'";
  return NULL;
}

static const char *
check_mount_dest (const char *s)
{
  if (check_clean (s) != NULL || strspn (s, "/") == strlen (s))
    return "an absolute path other than '/' without '..'";
  return NULL;
}

static const char *
check_env (const char *s)
{
  const char *eq = strchr (s, '=');
  return eq != NULL && eq != s ? NULL : "KEY=VALUE with a non-empty KEY";
}

/* A published port, in its canonical form. */
static const char *
check_port (const char *s)
{
  ak_port_t p;
  _cleanup_free_ char *canon = NULL;
  if (ak_port_parse (s, &p, NULL) < 0)
    return "a published port";
  canon = ak_port_text (&p);
  return strcmp (canon, s) == 0 ? NULL : "a published port";
}

static const char *
check_hostname (const char *s)
{
  size_t n = strlen (s);
  if (n == 0 || n > 63 || s[0] == '-')
    return "a hostname of 1-63 letters, digits and '-'";
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')
          || s[i] == '-'))
      return "a hostname of 1-63 letters, digits and '-'";
  return NULL;
}

/* Hostile strings are echoed shortened and with control bytes masked, so an
 * error message cannot drive the user's terminal. */
static char *
quote (const char *s)
{
  size_t n;
  char *q;

  if (s == NULL)
    s = "";
  n = strnlen (s, 64);
  q = ak_xstrndup (s, n);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char) q[i] < 0x20 || q[i] == 0x7f)
      q[i] = '?';
  if (s[n] != '\0')
    {
      char *l = ak_xasprintf ("%s...", q);
      free (q);
      q = l;
    }
  return q;
}

static const char *
sep (const char *where)
{
  return where[0] != '\0' ? ": " : "";
}

static int
bad (ak_error_t **err, const char *where, const char *msg)
{
  return ak_error_set (err, 0, "invalid spec: %s%s%s", where, sep (where), msg);
}

/* "<what> '<value>'<tail>", the value quoted safely. */
static int
bad_value (ak_error_t **err, const char *where, const char *what, const char *value,
           const char *tail)
{
  _cleanup_free_ char *q = quote (value);
  return ak_error_set (err, 0, "invalid spec: %s%s%s '%s'%s", where, sep (where), what, q, tail);
}

static const char *
type_name (const json_t *v)
{
  switch (json_typeof (v))
    {
    case JSON_OBJECT:
      return "an object";
    case JSON_ARRAY:
      return "an array";
    case JSON_STRING:
      return "a string";
    case JSON_INTEGER:
      return "an integer";
    case JSON_REAL:
      return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "a boolean";
    case JSON_NULL:
      return "null";
    }
  return "?";
}

static int
wrong_type (ak_error_t **err, const char *where, const char *expected, const json_t *v)
{
  return ak_error_set (err, 0, "invalid spec: %s%sexpected %s, got %s", where, sep (where), expected,
                       type_name (v));
}

static int
check_keys (const json_t *o, const char *where, const char *const *allowed, ak_error_t **err)
{
  const char *key;
  json_t *v;

  json_object_foreach ((json_t *) o, key, v)
    {
      const char *const *a;
      for (a = allowed; *a != NULL; a++)
        if (strcmp (*a, key) == 0)
          break;
      if (*a == NULL)
        return bad_value (err, where, "unknown field", key, "");
    }
  return 0;
}

static char *
join (const char *where, const char *key)
{
  return where[0] != '\0' ? ak_xasprintf ("%s.%s", where, key) : ak_xstrdup (key);
}

/* Validate a string value `v` at `where` into a new heap string. */
static int
take_string (const json_t *v, const char *where, str_check_fn check, char **out, ak_error_t **err)
{
  const char *s, *why;

  if (!json_is_string (v))
    return wrong_type (err, where, "a string", v);
  s = json_string_value (v);
  if (strlen (s) != json_string_length (v))
    return bad (err, where, "string contains a NUL byte");
  why = check (s);
  if (why != NULL)
    {
      _cleanup_free_ char *what = ak_xasprintf ("expected %s, got", why);
      return bad_value (err, where, what, s, "");
    }
  *out = ak_xstrdup (s);
  return 0;
}

/* An optional string field: absent keeps *out, null clears it (when
 * `nullable`), a string replaces it. */
static int
get_string (const json_t *o, const char *key, const char *where, bool nullable, str_check_fn check,
            char **out, ak_error_t **err)
{
  const json_t *v = json_object_get (o, key);
  _cleanup_free_ char *w = join (where, key);
  char *s = NULL;

  if (v == NULL)
    return 0;
  if (json_is_null (v) && nullable)
    {
      free (*out);
      *out = NULL;
      return 0;
    }
  if (!json_is_string (v))
    return wrong_type (err, w, nullable ? "a string or null" : "a string", v);
  if (take_string (v, w, check, &s, err) < 0)
    return -1;
  free (*out);
  *out = s;
  return 0;
}

static int
get_bool (const json_t *o, const char *key, const char *where, bool *out, ak_error_t **err)
{
  const json_t *v = json_object_get (o, key);
  if (v == NULL)
    return 0;
  if (!json_is_boolean (v))
    {
      _cleanup_free_ char *w = join (where, key);
      return wrong_type (err, w, "a boolean", v);
    }
  *out = json_is_true (v);
  return 0;
}

static int
get_uint (const json_t *o, const char *key, const char *where, unsigned long long max,
          unsigned long long *out, ak_error_t **err)
{
  const json_t *v = json_object_get (o, key);
  _cleanup_free_ char *w = NULL;

  if (v == NULL)
    return 0;
  w = join (where, key);
  if (!json_is_integer (v))
    return wrong_type (err, w, "an integer", v);
  if (json_integer_value (v) < 0 || (unsigned long long) json_integer_value (v) > max)
    return ak_error_set (err, 0, "invalid spec: %s: %lld is out of range (0-%llu)", w,
                         (long long) json_integer_value (v), max);
  *out = (unsigned long long) json_integer_value (v);
  return 0;
}

static int
get_line (const json_t *o, const char *where, int *out, ak_error_t **err)
{
  unsigned long long l = (unsigned long long) *out;
  if (get_uint (o, "line", where, INT_MAX, &l, err) < 0)
    return -1;
  *out = (int) l;
  return 0;
}

static int
get_source (const json_t *o, const char *where, ak_source_t *out, ak_error_t **err)
{
  const json_t *v = json_object_get (o, "source");
  _cleanup_free_ char *w = NULL;

  if (v == NULL)
    return 0;
  w = join (where, "source");
  if (!json_is_string (v))
    return wrong_type (err, w, "a string", v);
  for (int s = AK_SRC_DEFAULT; s <= AK_SRC_CLI; s++)
    if (strcmp (json_string_value (v), ak_source_name ((ak_source_t) s)) == 0
        && strlen (ak_source_name ((ak_source_t) s)) == json_string_length (v))
      {
        *out = (ak_source_t) s;
        return 0;
      }
  return bad_value (err, w, "unknown source", json_string_value (v),
                    " (expected default, profile, config or cli)");
}

/* `o[key]`, which must be an object when present; NULL when absent. */
static int
get_object (const json_t *o, const char *key, const char *where, const json_t **out,
            ak_error_t **err)
{
  const json_t *v = json_object_get (o, key);
  *out = NULL;
  if (v == NULL)
    return 0;
  if (!json_is_object (v))
    {
      _cleanup_free_ char *w = join (where, key);
      return wrong_type (err, w, "an object", v);
    }
  *out = v;
  return 0;
}

/* A string array; with `nullable`, null gives a NULL vector. */
static int
get_strv (const json_t *o, const char *key, bool nullable, str_check_fn check, char ***out,
          ak_error_t **err)
{
  const json_t *v = json_object_get (o, key);
  _cleanup_strv_ char **r = NULL;

  if (v == NULL)
    return 0;
  if (json_is_null (v) && nullable)
    {
      ak_strv_free (*out);
      *out = NULL;
      return 0;
    }
  if (!json_is_array (v))
    return wrong_type (err, key, nullable ? "an array of strings or null" : "an array of strings", v);
  r = ak_xcalloc (json_array_size (v) + 1, sizeof (char *));
  for (size_t i = 0; i < json_array_size (v); i++)
    {
      _cleanup_free_ char *w = ak_xasprintf ("%s[%zu]", key, i);
      if (take_string (json_array_get (v, i), w, check, &r[i], err) < 0)
        return -1;
    }
  ak_strv_free (*out);
  *out = steal_pointer (&r);
  return 0;
}

static int
seccomp_kind (const json_t *o, const char *key, const char *where, ak_seccomp_kind_t *out,
              ak_error_t **err)
{
  _cleanup_free_ char *w = join (where, key);
  _cleanup_free_ char *name = NULL;
  const json_t *v = json_object_get (o, key);
  ak_error_t *perr = NULL;

  if (v == NULL)
    return bad (err, w, "missing");
  if (take_string (v, w, check_any, &name, err) < 0)
    return -1;
  if (strcmp (name, "custom") == 0)
    *out = AK_SECCOMP_CUSTOM;
  else if (ak_seccomp_from_name (name, out, &perr) < 0)
    {
      ak_error_free (perr);
      return bad_value (err, w, "unknown seccomp profile", name,
                        " (expected default, permissive, moderate, ai-agent, restrictive or custom)");
    }
  return 0;
}

/* The seccomp selection; a custom profile's text is parsed again, so that
 * a stored spec edited behind agentkernel's back cannot hold one the
 * config layer would have refused. */
static int
parse_seccomp (const json_t *o, ak_spec_t *spec, ak_error_t **err)
{
  static const char *const keys[] = { "value", "source", "line", "file", "text", "under",
                                      "unsafe", NULL };
  static const char *const w = "security.seccomp";
  ak_seccomp_sel_t sel = { 0 };
  _cleanup_free_ char *file = NULL;
  _cleanup_free_ char *text = NULL;

  if (check_keys (o, w, keys, err) < 0 || seccomp_kind (o, "value", w, &sel.kind, err) < 0
      || get_source (o, w, &sel.source, err) < 0 || get_line (o, w, &sel.line, err) < 0
      || get_bool (o, "unsafe", w, &sel.unsafe, err) < 0)
    return -1;
  if (sel.kind != AK_SECCOMP_CUSTOM)
    {
      if (json_object_get (o, "file") || json_object_get (o, "text") || json_object_get (o, "under")
          || json_object_get (o, "unsafe"))
        return bad (err, w, "file, text, under and unsafe belong to a custom profile");
      ak_spec_set_seccomp (spec, sel.kind, sel.source, sel.line);
      return 0;
    }
  if (get_string (o, "file", w, false, check_text, &file, err) < 0
      || get_string (o, "text", w, false, check_any, &text, err) < 0
      || seccomp_kind (o, "under", w, &sel.under, err) < 0)
    return -1;
  if (file == NULL || text == NULL)
    return bad (err, w, "a custom profile needs its file and text");
  if (sel.under == AK_SECCOMP_DEFAULT || sel.under == AK_SECCOMP_CUSTOM)
    return bad (err, w, "under must name a built-in filter");
  if (ak_spec_set_seccomp_custom (spec, file, text, strlen (text), sel.under, sel.source, sel.line,
                                  err)
      < 0)
    return ak_error_prefix (err, "invalid spec: %s", w);
  spec->sec.seccomp.unsafe = sel.unsafe;
  return 0;
}

/* security.domains or security.commands: every entry is checked again,
 * so a stored spec changed by hand is held to the rules of the config
 * file. */
static int
parse_rules (const json_t *o, const ak_rules_t *r, ak_error_t **err)
{
  static const char *const keys[] = { "allowlist_only", "allow", "block", NULL };
  static const char *const mode_keys[] = { "value", "source", "line", NULL };
  const char *const entry_keys[] = { r->entry_key, "source", "line", NULL };
  _cleanup_free_ char *wm = join (r->section, "allowlist_only");
  const json_t *m;

  ak_rules_clear (r);
  if (!json_is_object (o))
    return wrong_type (err, r->section, "an object", o);
  if (check_keys (o, r->section, keys, err) < 0 || get_object (o, "allowlist_only", r->section, &m, err) < 0)
    return -1;
  if (m != NULL)
    {
      ak_source_t src = AK_SRC_DEFAULT;
      if (check_keys (m, wm, mode_keys, err) < 0 || get_bool (m, "value", wm, r->allowlist_only, err) < 0
          || get_source (m, wm, &src, err) < 0 || get_line (m, wm, r->allowlist_line, err) < 0)
        return -1;
      *r->allowlist_source = (int) src;
    }
  for (int list = AK_RULES_ALLOW; list <= AK_RULES_BLOCK; list++)
    {
      const json_t *a = json_object_get (o, ak_rules_list_name (list));
      _cleanup_free_ char *w = join (r->section, ak_rules_list_name (list));

      if (a == NULL)
        continue;
      if (!json_is_array (a))
        return wrong_type (err, w, "an array", a);
      for (size_t i = 0; i < json_array_size (a); i++)
        {
          const json_t *e = json_array_get (a, i);
          _cleanup_free_ char *we = ak_xasprintf ("%s[%zu]", w, i);
          _cleanup_free_ char *text = NULL;
          ak_source_t src = AK_SRC_CLI;
          int line = 0;

          if (!json_is_object (e))
            return wrong_type (err, we, "an object", e);
          if (check_keys (e, we, entry_keys, err) < 0
              || get_string (e, r->entry_key, we, false, check_any, &text, err) < 0
              || get_source (e, we, &src, err) < 0 || get_line (e, we, &line, err) < 0)
            return -1;
          if (text == NULL)
            {
              _cleanup_free_ char *msg = ak_xasprintf ("%s is required", r->entry_key);
              return bad (err, we, msg);
            }
          if (ak_rules_add (r, list, text, (int) src, line, err) < 0)
            return ak_error_prefix (err, "invalid spec: %s", we);
        }
    }
  return 0;
}

static int
parse_security (const json_t *sec, ak_spec_t *spec, ak_error_t **err)
{
  static const char *const keys[] = { "profile", "network", "mount_cwd", "mount_home",
                                      "pass_env", "read_only", "seccomp", "domains", "commands", NULL };
  static const char *const profile_keys[] = { "value", "source", NULL };
  static const char *const setting_keys[] = { "value", "source", "line", NULL };
  ak_rules_t domains = ak_rules_domains (&spec->sec.domains), commands = ak_rules_commands (&spec->sec.commands);
  const json_t *p;

  if (check_keys (sec, "security", keys, err) < 0)
    return -1;
  if (get_object (sec, "profile", "security", &p, err) < 0)
    return -1;
  if (p != NULL)
    {
      const json_t *v = json_object_get (p, "value");
      if (check_keys (p, "security.profile", profile_keys, err) < 0)
        return -1;
      if (v != NULL)
        {
          _cleanup_free_ char *name = NULL;
          ak_error_t *perr = NULL;
          if (take_string (v, "security.profile.value", check_any, &name, err) < 0)
            return -1;
          if (ak_profile_from_name (name, &spec->sec.profile, &perr) < 0)
            {
              ak_error_free (perr);
              return bad_value (err, "security.profile.value", "unknown profile", name,
                                " (expected permissive, moderate or restrictive)");
            }
        }
      if (get_source (p, "security.profile", &spec->sec.profile_source, err) < 0)
        return -1;
      /* Settings absent below follow the profile's table row. */
      ak_spec_set_profile (spec, spec->sec.profile, spec->sec.profile_source);
    }
  for (int k = 0; k < AK_SEC_N; k++)
    {
      const json_t *s;
      _cleanup_free_ char *w = join ("security", ak_sec_key_names[k]);
      if (get_object (sec, ak_sec_key_names[k], "security", &s, err) < 0)
        return -1;
      if (s == NULL)
        continue;
      if (check_keys (s, w, setting_keys, err) < 0 || get_bool (s, "value", w, &spec->sec.s[k].value, err) < 0
          || get_source (s, w, &spec->sec.s[k].source, err) < 0
          || get_line (s, w, &spec->sec.s[k].line, err) < 0)
        return -1;
    }
  if (get_object (sec, "seccomp", "security", &p, err) < 0)
    return -1;
  if (p != NULL && parse_seccomp (p, spec, err) < 0)
    return -1;
  if (get_object (sec, "domains", "security", &p, err) < 0)
    return -1;
  if (p != NULL && parse_rules (p, &domains, err) < 0)
    return -1;
  if (get_object (sec, "commands", "security", &p, err) < 0)
    return -1;
  return p != NULL ? parse_rules (p, &commands, err) : 0;
}

static int
parse_resources (const json_t *res, ak_spec_t *spec, ak_error_t **err)
{
  static const char *const keys[] = { "memory_mb", "cpu_millis", "pids", "vcpus", "log_mb", "disk_mb", NULL };
  static const char *const entry_keys[] = { "value", "source", NULL };

  if (check_keys (res, "resources", keys, err) < 0)
    return -1;
  for (int i = 0; i < AK_RES_N; i++)
    {
      const json_t *r;
      _cleanup_free_ char *w = join ("resources", res_names[i]);
      unsigned long long v = res_get (&spec->res, i);

      if (get_object (res, res_names[i], "resources", &r, err) < 0)
        return -1;
      if (r == NULL)
        continue;
      if (check_keys (r, w, entry_keys, err) < 0
          || get_uint (r, "value", w, i == 0 ? (unsigned long long) INT64_MAX : UINT_MAX, &v, err) < 0
          || get_source (r, w, &spec->res_source[i], err) < 0)
        return -1;
      switch (i)
        {
        case 0:
          spec->res.memory_mb = v;
          break;
        case 1:
          spec->res.cpu_millis = (unsigned) v;
          break;
        case 2:
          spec->res.pids = (unsigned) v;
          break;
        case 3:
          spec->res.vcpus = (unsigned) v;
          break;
        case 4:
          if (v > AK_LOG_MB_MAX)
            return ak_error_set (err, 0, "invalid spec: resources.log_mb above %d", AK_LOG_MB_MAX);
          spec->res.log_mb = (unsigned) v;
          break;
        default:
          if (v > AK_DISK_MB_MAX)
            return ak_error_set (err, 0, "invalid spec: resources.disk_mb above %u", AK_DISK_MB_MAX);
          spec->res.disk_mb = (unsigned) v;
          break;
        }
    }
  return 0;
}

/* An optional recorded identity; absent (a spec written before identities
 * were recorded) leaves it unrecorded, which a start refuses. */
static int
get_pin (const json_t *o, const char *key, const char *where, ak_fs_id_t *out, ak_error_t **err)
{
  static const char *const keys[] = { "dev", "ino", "type", NULL };
  const json_t *v = json_object_get (o, key), *dev, *ino, *type;
  _cleanup_free_ char *w = NULL;

  if (v == NULL || json_is_null (v))
    return 0;
  w = join (where, key);
  if (!json_is_object (v))
    return wrong_type (err, w, "an object", v);
  if (check_keys (v, w, keys, err) < 0)
    return -1;
  dev = json_object_get (v, "dev");
  ino = json_object_get (v, "ino");
  type = json_object_get (v, "type");
  if (!json_is_integer (dev) || !json_is_integer (ino) || !json_is_string (type))
    return bad (err, w, "expected dev and ino (integers) and type (a string)");
  for (size_t i = 0; i < sizeof pin_types / sizeof pin_types[0]; i++)
    if (strcmp (json_string_value (type), pin_types[i].name) == 0)
      {
        *out = (ak_fs_id_t){ .dev = (unsigned long long) json_integer_value (dev),
                             .ino = (unsigned long long) json_integer_value (ino),
                             .type = pin_types[i].type };
        return 0;
      }
  return bad_value (err, w, "unknown type", json_string_value (type), "");
}

static int
parse_mounts (const json_t *a, ak_spec_t *spec, ak_error_t **err)
{
  static const char *const keys[] = { "source", "dest", "read_only", "pin", NULL };

  if (!json_is_array (a))
    return wrong_type (err, "mounts", "an array", a);
  for (size_t i = 0; i < json_array_size (a); i++)
    {
      const json_t *m = json_array_get (a, i);
      _cleanup_free_ char *w = ak_xasprintf ("mounts[%zu]", i);
      ak_mount_t mt = { 0 };
      int rc;

      if (!json_is_object (m))
        return wrong_type (err, w, "an object", m);
      if (check_keys (m, w, keys, err) < 0)
        return -1;
      if (json_object_get (m, "source") == NULL || json_object_get (m, "dest") == NULL)
        return bad (err, w, "source and dest are required");
      rc = get_string (m, "source", w, false, check_abs, &mt.source, err);
      if (rc == 0)
        rc = get_string (m, "dest", w, false, check_mount_dest, &mt.dest, err);
      if (rc == 0)
        rc = get_bool (m, "read_only", w, &mt.read_only, err);
      if (rc == 0)
        rc = get_pin (m, "pin", w, &mt.pin, err);
      if (rc < 0)
        {
          free (mt.source);
          free (mt.dest);
          return -1;
        }
      spec->mounts = ak_xrealloc (spec->mounts, (spec->n_mounts + 1) * sizeof (ak_mount_t));
      spec->mounts[spec->n_mounts++] = mt;
    }
  return 0;
}

static int
parse_files (const json_t *a, ak_spec_t *spec, ak_error_t **err)
{
  static const char *const keys[] = { "source", "dest", "line", "pin", NULL };

  if (!json_is_array (a))
    return wrong_type (err, "files", "an array", a);
  for (size_t i = 0; i < json_array_size (a); i++)
    {
      const json_t *f = json_array_get (a, i);
      _cleanup_free_ char *w = ak_xasprintf ("files[%zu]", i);
      ak_inject_t in = { 0 };
      int rc;

      if (!json_is_object (f))
        return wrong_type (err, w, "an object", f);
      if (check_keys (f, w, keys, err) < 0)
        return -1;
      if (json_object_get (f, "source") == NULL || json_object_get (f, "dest") == NULL)
        return bad (err, w, "source and dest are required");
      rc = get_string (f, "source", w, false, check_abs, &in.source, err);
      if (rc == 0)
        rc = get_string (f, "dest", w, false, check_clean, &in.dest, err);
      if (rc == 0)
        rc = get_line (f, w, &in.line, err);
      if (rc == 0)
        rc = get_pin (f, "pin", w, &in.pin, err);
      if (rc < 0)
        {
          free (in.source);
          free (in.dest);
          return -1;
        }
      spec->files = ak_xrealloc (spec->files, (spec->n_files + 1) * sizeof (ak_inject_t));
      spec->files[spec->n_files++] = in;
    }
  return 0;
}

static int
parse_spec (const json_t *j, ak_spec_t *spec, ak_error_t **err)
{
  static const char *const keys[] = { "version", "name", "backend", "image", "rootfs",
                                      "rootfs_pin", "security", "resources", "cwd", "cwd_pin",
                                      "home", "home_pin", "env", "host_env", "mounts", "files",
                                      "workdir", "argv", "as_root", "show_credentials", "hostname", "agent",
                                      "compat_mode", "image_digest", "image_layers", "image_env", "ports", NULL };
  const json_t *v, *o;
  unsigned long long version = AK_SPEC_JSON_VERSION;

  if (j == NULL || !json_is_object (j))
    return j == NULL ? ak_error_set (err, 0, "invalid spec: no JSON value")
                     : wrong_type (err, "", "an object", j);
  if (check_keys (j, "", keys, err) < 0)
    return -1;
  if (get_uint (j, "version", "", UINT_MAX, &version, err) < 0)
    return -1;
  if (version != AK_SPEC_JSON_VERSION)
    return ak_error_set (err, 0, "invalid spec: version %llu is not supported (expected %d)", version,
                         AK_SPEC_JSON_VERSION);
  if (get_string (j, "name", "", true, check_name, &spec->name, err) < 0
      || get_string (j, "backend", "", false, check_word, &spec->backend, err) < 0
      || get_string (j, "image", "", false, check_text, &spec->image, err) < 0
      || get_string (j, "rootfs", "", true, check_abs, &spec->rootfs, err) < 0
      || get_pin (j, "rootfs_pin", "", &spec->rootfs_pin, err) < 0
      || get_string (j, "image_digest", "", true, check_digest, &spec->image_digest, err) < 0
      || get_strv (j, "image_layers", true, check_digest, &spec->image_layers, err) < 0
      || get_strv (j, "image_env", true, check_env, &spec->image_env, err) < 0)
    return -1;
  if ((spec->image_digest == NULL) != (spec->image_layers == NULL))
    return ak_error_set (err, 0, "invalid spec: image_digest and image_layers go together");
  if (get_object (j, "security", "", &o, err) < 0 || (o != NULL && parse_security (o, spec, err) < 0))
    return -1;
  if (get_object (j, "resources", "", &o, err) < 0 || (o != NULL && parse_resources (o, spec, err) < 0))
    return -1;
  if (get_string (j, "cwd", "", true, check_abs, &spec->cwd, err) < 0
      || get_string (j, "home", "", true, check_abs, &spec->home, err) < 0
      || get_pin (j, "cwd_pin", "", &spec->cwd_pin, err) < 0
      || get_pin (j, "home_pin", "", &spec->home_pin, err) < 0
      || get_strv (j, "env", false, check_env, &spec->env, err) < 0
      || get_strv (j, "host_env", false, check_env, &spec->host_env, err) < 0)
    return -1;
  if ((v = json_object_get (j, "mounts")) != NULL && parse_mounts (v, spec, err) < 0)
    return -1;
  if ((v = json_object_get (j, "files")) != NULL && parse_files (v, spec, err) < 0)
    return -1;
  if (get_string (j, "workdir", "", true, check_clean, &spec->workdir, err) < 0
      || get_strv (j, "argv", true, check_any, &spec->argv, err) < 0
      || get_bool (j, "as_root", "", &spec->as_root, err) < 0
      || get_bool (j, "show_credentials", "", &spec->show_credentials, err) < 0
      || get_string (j, "hostname", "", true, check_hostname, &spec->hostname, err) < 0
      || get_string (j, "agent", "", true, check_text, &spec->agent, err) < 0
      || get_string (j, "compat_mode", "", true, check_text, &spec->compat_mode, err) < 0
      || get_strv (j, "ports", true, check_port, &spec->ports, err) < 0)
    return -1;
  return 0;
}

int
ak_spec_from_json (const json_t *j, ak_spec_t *spec, ak_error_t **err)
{
  ak_spec_init (spec);
  if (parse_spec (j, spec, err) < 0)
    {
      ak_spec_clear (spec);
      ak_spec_init (spec);
      return -1;
    }
  return 0;
}

/* Where a value came from (source, line) never changes what a sandbox is. */
static void
strip_provenance (json_t *j)
{
  const char *k;
  json_t *v;
  size_t i;

  if (json_is_object (j))
    {
      json_object_del (j, "source");
      json_object_del (j, "line");
      json_object_foreach (j, k, v)
        strip_provenance (v);
    }
  else if (json_is_array (j))
    json_array_foreach (j, i, v)
      strip_provenance (v);
}

char *
ak_spec_pool_key (const ak_spec_t *spec)
{
  static const char *const claim_time[] = { "name", "argv", "env", "host_env", "workdir",
                                            "cwd", "cwd_pin", NULL };
  json_t *j = ak_spec_to_json (spec);
  char *s;

  for (size_t i = 0; claim_time[i] != NULL; i++)
    json_object_del (j, claim_time[i]);
  strip_provenance (j);
  s = json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref (j);
  if (s == NULL)
    ak_oom ();
  return s;
}
