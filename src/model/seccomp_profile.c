/* Docker seccomp profiles (see seccomp_profile.h).
 *
 * The format, as Docker's default profile and runc read it:
 *   { "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
 *     "architectures": ["SCMP_ARCH_X86_64", ...],
 *     "archMap": [{ "architecture": "SCMP_ARCH_X86_64",
 *                   "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] }, ...],
 *     "syscalls": [{ "names": ["accept", ...], "action": "SCMP_ACT_ALLOW",
 *                    "errnoRet": 1,
 *                    "args": [{ "index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ" }],
 *                    "includes": { "caps": [...], "arches": [...], "minKernel": "4.8" },
 *                    "excludes": { ... } }, ...] }
 * Keys this parser does not know ("comment", "listenerMetadata") are
 * ignored, as Go's decoder ignores them; a duplicated key is an error (two
 * "action"s would leave the reader guessing which one a tool applies).
 * SCMP_ACT_NOTIFY and SCMP_ACT_TRACE are refused: no supervisor listens for
 * notifications and no tracer is attached, so either would only turn into
 * ENOSYS behind the user's back.
 */
#define _GNU_SOURCE
#include "model/seccomp_profile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"

/* The kernel returns errno values up to MAX_ERRNO. */
#define ERRNO_MAX 4095
/* Longer than any system call name; keeps messages and memory bounded. */
#define NAME_MAX_LEN 128

static const struct {
  const char *name;
  uint32_t token;
} arch_names[] = {
  { "SCMP_ARCH_X86", SCMP_ARCH_X86 },
  { "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 },
  { "SCMP_ARCH_X32", SCMP_ARCH_X32 },
  { "SCMP_ARCH_ARM", SCMP_ARCH_ARM },
  { "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
  { "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS },
  { "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64 },
  { "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32 },
  { "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL },
  { "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64 },
  { "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32 },
  { "SCMP_ARCH_PPC", SCMP_ARCH_PPC },
  { "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64 },
  { "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE },
  { "SCMP_ARCH_S390", SCMP_ARCH_S390 },
  { "SCMP_ARCH_S390X", SCMP_ARCH_S390X },
  { "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC },
  { "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64 },
  { "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64 },
#ifdef SCMP_ARCH_LOONGARCH64
  { "SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64 },
#endif
#ifdef SCMP_ARCH_M68K
  { "SCMP_ARCH_M68K", SCMP_ARCH_M68K },
#endif
#ifdef SCMP_ARCH_SH
  { "SCMP_ARCH_SH", SCMP_ARCH_SH },
  { "SCMP_ARCH_SHEB", SCMP_ARCH_SHEB },
#endif
};

/* The architecture this build runs on, as the profile names it. */
#if defined(__x86_64__) && defined(__ILP32__)
#define NATIVE_ARCH SCMP_ARCH_X32
#elif defined(__x86_64__)
#define NATIVE_ARCH SCMP_ARCH_X86_64
#elif defined(__i386__)
#define NATIVE_ARCH SCMP_ARCH_X86
#elif defined(__aarch64__)
#define NATIVE_ARCH SCMP_ARCH_AARCH64
#elif defined(__arm__)
#define NATIVE_ARCH SCMP_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH SCMP_ARCH_RISCV64
#elif defined(__s390x__)
#define NATIVE_ARCH SCMP_ARCH_S390X
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH SCMP_ARCH_PPC64LE
#elif defined(__powerpc64__)
#define NATIVE_ARCH SCMP_ARCH_PPC64
#else
#define NATIVE_ARCH 0u /* none matches: archMap adds nothing */
#endif

static const struct {
  const char *name;
  uint32_t action; /* for ERRNO, the errno is or-ed in */
} action_names[] = {
  { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
  { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO (0) },
  { "SCMP_ACT_KILL", SCMP_ACT_KILL },
  { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
  { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
  { "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
  { "SCMP_ACT_LOG", SCMP_ACT_LOG },
};

static const struct {
  const char *name;
  ak_scmp_op_t op;
} op_names[] = {
  { "SCMP_CMP_NE", AK_SCMP_NE }, { "SCMP_CMP_LT", AK_SCMP_LT }, { "SCMP_CMP_LE", AK_SCMP_LE },
  { "SCMP_CMP_EQ", AK_SCMP_EQ }, { "SCMP_CMP_GE", AK_SCMP_GE }, { "SCMP_CMP_GT", AK_SCMP_GT },
  { "SCMP_CMP_MASKED_EQ", AK_SCMP_MASKED_EQ },
};

/* Filter flags runc knows.  The filter is installed without flags: LOG and
 * SPEC_ALLOW (which would switch a speculation mitigation off) are accepted
 * and not applied, TSYNC is what a single-threaded init has anyway. */
static const char *const flag_names[] = { "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                          "SECCOMP_FILTER_FLAG_SPEC_ALLOW", NULL };

typedef struct parser {
  const char *file;
  ak_error_t **err;
} parser_t;

static int bad (const parser_t *p, const char *where, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
bad (const parser_t *p, const char *where, const char *fmt, ...)
{
  _cleanup_free_ char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  return ak_error_set (p->err, 0, "%s: %s: %s", p->file, where, msg);
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
wrong_type (const parser_t *p, const char *where, const char *want, const json_t *v)
{
  return ak_error_set (p->err, 0, "%s: %s: expected %s, got %s", p->file, where, want,
                       type_name (v));
}

/* A string without NUL bytes and of bounded length. */
static int
get_string (const parser_t *p, const json_t *v, const char *where, const char **out)
{
  if (!json_is_string (v))
    return wrong_type (p, where, "a string", v);
  if (json_string_length (v) != strlen (json_string_value (v)))
    return bad (p, where, "%s", "NUL byte in string");
  if (json_string_length (v) > NAME_MAX_LEN)
    return bad (p, where, "%s", "string too long");
  *out = json_string_value (v);
  return 0;
}

static int
get_uint (const parser_t *p, const json_t *v, const char *where, uint64_t max, uint64_t *out)
{
  if (!json_is_integer (v))
    return wrong_type (p, where, "an integer", v);
  if (json_integer_value (v) < 0 || (uint64_t) json_integer_value (v) > max)
    {
      return bad (p, where, "out of range (0 to %llu)", (unsigned long long) max);
    }
  *out = (uint64_t) json_integer_value (v);
  return 0;
}

/* An array of strings, or null (an empty list, as Go reads it). */
static int
get_strv (const parser_t *p, const json_t *v, const char *where, char ***out)
{
  _cleanup_strv_ char **r = NULL;

  if (json_is_null (v))
    return 0;
  if (!json_is_array (v))
    return wrong_type (p, where, "an array of strings", v);
  r = ak_xcalloc (json_array_size (v) + 1, sizeof (char *));
  for (size_t i = 0; i < json_array_size (v); i++)
    {
      _cleanup_free_ char *w = ak_xasprintf ("%s[%zu]", where, i);
      const char *s;
      if (get_string (p, json_array_get (v, i), w, &s) < 0)
        return -1;
      r[i] = ak_xstrdup (s);
    }
  *out = steal_pointer (&r);
  return 0;
}

/* Which architecture a name stands for: 0 for a well-formed name this
 * build's libseccomp does not know (skipped, as an unknown system call
 * is), -1 for anything else. */
static int
arch_token (const parser_t *p, const json_t *v, const char *where, uint32_t *out)
{
  const char *s;

  if (get_string (p, v, where, &s) < 0)
    return -1;
  for (size_t i = 0; i < sizeof arch_names / sizeof arch_names[0]; i++)
    if (strcmp (arch_names[i].name, s) == 0)
      {
        *out = arch_names[i].token;
        return 0;
      }
  if (strncmp (s, "SCMP_ARCH_", 10) != 0 || s[10] == '\0' || s[strspn (s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] != '\0')
    return bad (p, where, "unknown architecture '%s' (expected SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)", s);
  *out = 0;
  return 0;
}

static void
add_arch (ak_scmp_profile_t *prof, uint32_t token)
{
  if (token == 0)
    return;
  for (size_t i = 0; i < prof->n_arches; i++)
    if (prof->arches[i] == token)
      return;
  prof->arches = ak_xrealloc (prof->arches, (prof->n_arches + 1) * sizeof (uint32_t));
  prof->arches[prof->n_arches++] = token;
}

static int
get_action (const parser_t *p, const json_t *v, const char *where, uint32_t *out)
{
  const char *s;

  if (v == NULL)
    return bad (p, where, "%s", "missing");
  if (get_string (p, v, where, &s) < 0)
    return -1;
  for (size_t i = 0; i < sizeof action_names / sizeof action_names[0]; i++)
    if (strcmp (action_names[i].name, s) == 0)
      {
        *out = action_names[i].action;
        return 0;
      }
  if (strcmp (s, "SCMP_ACT_NOTIFY") == 0 || strcmp (s, "SCMP_ACT_TRACE") == 0)
    return bad (p, where,
                "%s is not supported: no supervisor or tracer watches the sandbox (use "
                "SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS or SCMP_ACT_LOG)",
                s);
  return bad (p, where,
              "unknown action '%s' (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, "
              "SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP or SCMP_ACT_LOG)",
              s);
}

/* ERRNO takes its errno from errnoRet (EPERM when absent, as Docker
 * does); errnoRet on another action is meaningless and refused. */
static int
with_errno (const parser_t *p, const json_t *ret, const char *where, uint32_t action,
            uint32_t fallback, uint32_t *out)
{
  uint64_t e = fallback;

  if (ret != NULL && !json_is_null (ret))
    {
      if (action != SCMP_ACT_ERRNO (0))
        return bad (p, where, "%s", "only SCMP_ACT_ERRNO takes an errno");
      if (get_uint (p, ret, where, ERRNO_MAX, &e) < 0)
        return -1;
    }
  *out = action == SCMP_ACT_ERRNO (0) ? SCMP_ACT_ERRNO ((uint32_t) e) : action;
  return 0;
}

static int
parse_arg (const parser_t *p, const json_t *a, const char *where, ak_scmp_arg_t *out)
{
  _cleanup_free_ char *wi = ak_xasprintf ("%s.index", where);
  _cleanup_free_ char *wv = ak_xasprintf ("%s.value", where);
  _cleanup_free_ char *wv2 = ak_xasprintf ("%s.valueTwo", where);
  _cleanup_free_ char *wo = ak_xasprintf ("%s.op", where);
  const json_t *v;
  const char *op;
  uint64_t n;

  if (!json_is_object (a))
    return wrong_type (p, where, "an object", a);
  if ((v = json_object_get (a, "index")) == NULL)
    return bad (p, wi, "%s", "missing");
  if (get_uint (p, v, wi, 5, &n) < 0)
    return -1;
  out->index = (unsigned) n;
  out->value = out->value_two = 0;
  if ((v = json_object_get (a, "value")) != NULL && get_uint (p, v, wv, INT64_MAX, &out->value) < 0)
    return -1;
  if ((v = json_object_get (a, "valueTwo")) != NULL
      && get_uint (p, v, wv2, INT64_MAX, &out->value_two) < 0)
    return -1;
  if ((v = json_object_get (a, "op")) == NULL)
    return bad (p, wo, "%s", "missing");
  if (get_string (p, v, wo, &op) < 0)
    return -1;
  for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
    if (strcmp (op_names[i].name, op) == 0)
      {
        out->op = op_names[i].op;
        return 0;
      }
  return bad (p, wo,
              "unknown operator '%s' (expected SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, "
              "SCMP_CMP_LE, SCMP_CMP_GE, SCMP_CMP_GT or SCMP_CMP_MASKED_EQ)",
              op);
}

/* "4.8": major and minor (a patch level is allowed and ignored). */
static int
parse_kernel (const parser_t *p, const json_t *v, const char *where, unsigned out[2])
{
  const char *s;
  unsigned long major, minor;
  char *end;

  if (get_string (p, v, where, &s) < 0)
    return -1;
  if (s[0] < '0' || s[0] > '9')
    return bad (p, where, "expected a kernel version such as \"4.8\", got '%s'", s);
  errno = 0;
  major = strtoul (s, &end, 10);
  if (errno != 0 || *end != '.' || end[1] < '0' || end[1] > '9' || major > 1000)
    return bad (p, where, "expected a kernel version such as \"4.8\", got '%s'", s);
  minor = strtoul (end + 1, &end, 10);
  if (errno != 0 || (*end != '\0' && *end != '.') || minor > 1000)
    return bad (p, where, "expected a kernel version such as \"4.8\", got '%s'", s);
  out[0] = (unsigned) major;
  out[1] = (unsigned) minor;
  return 0;
}

static int
parse_cond (const parser_t *p, const json_t *c, const char *where, ak_scmp_cond_t *out)
{
  const json_t *v;

  if (c == NULL || json_is_null (c))
    return 0;
  if (!json_is_object (c))
    return wrong_type (p, where, "an object", c);
  if ((v = json_object_get (c, "arches")) != NULL)
    {
      _cleanup_free_ char *w = ak_xasprintf ("%s.arches", where);
      if (get_strv (p, v, w, &out->arches) < 0)
        return -1;
    }
  if ((v = json_object_get (c, "caps")) != NULL)
    {
      _cleanup_free_ char *w = ak_xasprintf ("%s.caps", where);
      if (get_strv (p, v, w, &out->caps) < 0)
        return -1;
    }
  if ((v = json_object_get (c, "minKernel")) != NULL && !json_is_null (v))
    {
      _cleanup_free_ char *w = ak_xasprintf ("%s.minKernel", where);
      if (parse_kernel (p, v, w, out->min_kernel) < 0)
        return -1;
    }
  return 0;
}

static void
rule_clear (ak_scmp_rule_t *r)
{
  ak_strv_free (r->names);
  ak_strv_free (r->includes.arches);
  ak_strv_free (r->includes.caps);
  ak_strv_free (r->excludes.arches);
  ak_strv_free (r->excludes.caps);
  memset (r, 0, sizeof *r);
}

static int
parse_rule (const parser_t *p, const json_t *s, size_t idx, ak_scmp_rule_t *r)
{
  _cleanup_free_ char *where = ak_xasprintf ("syscalls[%zu]", idx);
  _cleanup_free_ char *w = NULL;
  const json_t *v, *names, *name;
  uint32_t action;

  if (!json_is_object (s))
    return wrong_type (p, where, "an object", s);
  names = json_object_get (s, "names");
  name = json_object_get (s, "name");
  if (names != NULL)
    {
      w = ak_xasprintf ("%s.names", where);
      if (get_strv (p, names, w, &r->names) < 0)
        return -1;
    }
  if (name != NULL && !json_is_null (name))
    {
      const char *n;
      free (w);
      w = ak_xasprintf ("%s.name", where);
      if (get_string (p, name, w, &n) < 0)
        return -1;
      ak_strv_push (&r->names, n);
    }
  if (r->names == NULL || r->names[0] == NULL)
    return bad (p, where, "%s", "no system call named (expected \"names\": [...] or \"name\")");
  for (size_t i = 0; r->names[i] != NULL; i++)
    if (r->names[i][0] == '\0')
      return bad (p, where, "%s", "empty system call name");
  free (w);
  w = ak_xasprintf ("%s.action", where);
  if (get_action (p, json_object_get (s, "action"), w, &action) < 0)
    return -1;
  free (w);
  w = ak_xasprintf ("%s.errnoRet", where);
  if (with_errno (p, json_object_get (s, "errnoRet"), w, action, EPERM, &r->action) < 0)
    return -1;
  if ((v = json_object_get (s, "args")) != NULL && !json_is_null (v))
    {
      free (w);
      w = ak_xasprintf ("%s.args", where);
      if (!json_is_array (v))
        return wrong_type (p, w, "an array", v);
      if (json_array_size (v) > 6)
        return bad (p, w, "%s", "more than 6 argument comparisons");
      for (size_t i = 0; i < json_array_size (v); i++)
        {
          _cleanup_free_ char *wa = ak_xasprintf ("%s[%zu]", w, i);
          if (parse_arg (p, json_array_get (v, i), wa, &r->args[i]) < 0)
            return -1;
          r->n_args = i + 1;
        }
    }
  free (w);
  w = ak_xasprintf ("%s.includes", where);
  if (parse_cond (p, json_object_get (s, "includes"), w, &r->includes) < 0)
    return -1;
  free (w);
  w = ak_xasprintf ("%s.excludes", where);
  return parse_cond (p, json_object_get (s, "excludes"), w, &r->excludes);
}

static int
parse_arches (const parser_t *p, const json_t *root, ak_scmp_profile_t *prof)
{
  const json_t *v = json_object_get (root, "architectures");
  uint32_t t;

  if (v != NULL && !json_is_null (v))
    {
      if (!json_is_array (v))
        return wrong_type (p, "architectures", "an array of strings", v);
      for (size_t i = 0; i < json_array_size (v); i++)
        {
          _cleanup_free_ char *w = ak_xasprintf ("architectures[%zu]", i);
          if (arch_token (p, json_array_get (v, i), w, &t) < 0)
            return -1;
          add_arch (prof, t);
        }
    }
  v = json_object_get (root, "archMap");
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_array (v))
    return wrong_type (p, "archMap", "an array", v);
  for (size_t i = 0; i < json_array_size (v); i++)
    {
      const json_t *m = json_array_get (v, i), *subs;
      _cleanup_free_ char *w = ak_xasprintf ("archMap[%zu]", i);
      _cleanup_free_ char *wa = ak_xasprintf ("archMap[%zu].architecture", i);
      _cleanup_free_ char *ws = ak_xasprintf ("archMap[%zu].subArchitectures", i);
      uint32_t main_arch;

      if (!json_is_object (m))
        return wrong_type (p, w, "an object", m);
      if (json_object_get (m, "architecture") == NULL)
        return bad (p, wa, "%s", "missing");
      if (arch_token (p, json_object_get (m, "architecture"), wa, &main_arch) < 0)
        return -1;
      subs = json_object_get (m, "subArchitectures");
      if (subs != NULL && !json_is_null (subs) && !json_is_array (subs))
        return wrong_type (p, ws, "an array of strings", subs);
      for (size_t j = 0; subs != NULL && j < json_array_size (subs); j++)
        {
          _cleanup_free_ char *wj = ak_xasprintf ("%s[%zu]", ws, j);
          if (arch_token (p, json_array_get (subs, j), wj, &t) < 0)
            return -1;
          /* Only the native architecture's entry applies. */
          if (main_arch == NATIVE_ARCH && main_arch != 0)
            add_arch (prof, t);
        }
      if (main_arch == NATIVE_ARCH && main_arch != 0)
        add_arch (prof, main_arch);
    }
  return 0;
}

static int
parse_flags (const parser_t *p, const json_t *root)
{
  const json_t *v = json_object_get (root, "flags");
  const char *s;

  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_array (v))
    return wrong_type (p, "flags", "an array of strings", v);
  for (size_t i = 0; i < json_array_size (v); i++)
    {
      _cleanup_free_ char *w = ak_xasprintf ("flags[%zu]", i);
      bool known = false;
      if (get_string (p, json_array_get (v, i), w, &s) < 0)
        return -1;
      for (size_t f = 0; flag_names[f] != NULL; f++)
        known = known || strcmp (flag_names[f], s) == 0;
      if (!known)
        return bad (p, w, "unknown filter flag '%s'", s);
    }
  return 0;
}

void
ak_scmp_profile_free (ak_scmp_profile_t *prof)
{
  if (prof == NULL)
    return;
  for (size_t i = 0; i < prof->n_rules; i++)
    rule_clear (&prof->rules[i]);
  free (prof->rules);
  free (prof->arches);
  free (prof);
}

static void
profile_freep (ak_scmp_profile_t **p)
{
  ak_scmp_profile_free (*p);
}

int
ak_scmp_profile_parse (const char *file, const char *text, size_t len, ak_scmp_profile_t **out,
                       ak_error_t **err)
{
  __attribute__ ((cleanup (profile_freep))) ak_scmp_profile_t *prof = NULL;
  parser_t p = { .file = file, .err = err };
  json_error_t jerr;
  json_t *root;
  const json_t *v, *lp;
  uint32_t action;
  int rc = -1;

  if (len > AK_SECCOMP_PROFILE_MAX)
    return ak_error_set (err, 0, "%s: larger than %d bytes", file, AK_SECCOMP_PROFILE_MAX);
  root = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return ak_error_set (err, 0, "%s:%d:%d: invalid JSON: %s", file, jerr.line, jerr.column,
                         jerr.text);
  prof = ak_xcalloc (1, sizeof *prof);
  if (!json_is_object (root))
    {
      wrong_type (&p, "the profile", "an object", root);
      goto out;
    }
  if (get_action (&p, json_object_get (root, "defaultAction"), "defaultAction", &action) < 0
      || with_errno (&p, json_object_get (root, "defaultErrnoRet"), "defaultErrnoRet", action,
                     EPERM, &prof->default_action)
             < 0)
    goto out;
  lp = json_object_get (root, "listenerPath");
  if (lp != NULL && !json_is_null (lp) && !(json_is_string (lp) && json_string_length (lp) == 0))
    {
      bad (&p, "listenerPath", "%s", "not supported: no supervisor listens for notifications");
      goto out;
    }
  if (parse_arches (&p, root, prof) < 0 || parse_flags (&p, root) < 0)
    goto out;
  v = json_object_get (root, "syscalls");
  if (v != NULL && !json_is_null (v))
    {
      if (!json_is_array (v))
        {
          wrong_type (&p, "syscalls", "an array", v);
          goto out;
        }
      prof->rules = ak_xcalloc (json_array_size (v) + 1, sizeof (ak_scmp_rule_t));
      for (size_t i = 0; i < json_array_size (v); i++)
        {
          prof->n_rules = i + 1;
          if (parse_rule (&p, json_array_get (v, i), i, &prof->rules[i]) < 0)
            goto out;
        }
    }
  *out = steal_pointer (&prof);
  rc = 0;
out:
  json_decref (root);
  return rc;
}

int
ak_scmp_profile_read (int dirfd, const char *dir, const char *path, bool beneath, char **text,
                      size_t *len, char **real, ak_error_t **err)
{
  _cleanup_close_ int fd = -1;
  _cleanup_free_ char *buf = NULL;
  char link[64];
  struct stat st;
  ssize_t n;

  if (*path == '\0')
    return ak_error_set (err, 0, "seccomp profile: empty path");
  if (beneath)
    {
      const char *rel = path;
      size_t dn = strlen (dir);
      /* An absolute path may still name a file under the directory. */
      if (path[0] == '/' && strcmp (dir, "/") != 0)
        {
          if (strncmp (path, dir, dn) != 0 || path[dn] != '/')
            return ak_error_set (err, 0, "seccomp profile '%s': outside the config file's directory %s",
                                 path, dir);
          rel = path + dn + 1;
        }
      fd = ak_fs_openat (dirfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0,
                         AK_FS_BENEATH);
      if (fd < 0 && errno == ELOOP)
        return ak_error_set (err, 0,
                             "seccomp profile '%s': is a symlink or goes through one, which is not "
                             "followed in a config file that is not trusted",
                             path);
      if (fd < 0 && errno == EXDEV)
        return ak_error_set (err, 0, "seccomp profile '%s': outside the config file's directory %s",
                             path, dir);
    }
  else
    fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return ak_error_set (err, errno, "seccomp profile '%s'", path);
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "seccomp profile '%s'", path);
  if (!S_ISREG (st.st_mode))
    return ak_error_set (err, 0, "seccomp profile '%s': not a regular file", path);
  if (st.st_size > AK_SECCOMP_PROFILE_MAX)
    return ak_error_set (err, 0, "seccomp profile '%s': larger than %d bytes", path,
                         AK_SECCOMP_PROFILE_MAX);
  /* Read one byte more than the cap: a file that grew since fstat shows. */
  buf = ak_xmalloc (AK_SECCOMP_PROFILE_MAX + 2);
  n = ak_read_all (fd, buf, AK_SECCOMP_PROFILE_MAX + 1);
  if (n < 0)
    return ak_error_set (err, errno, "seccomp profile '%s'", path);
  if (n > AK_SECCOMP_PROFILE_MAX)
    return ak_error_set (err, 0, "seccomp profile '%s': larger than %d bytes", path,
                         AK_SECCOMP_PROFILE_MAX);
  buf[n] = '\0';
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  *real = realpath (link, NULL);
  if (*real == NULL)
    *real = ak_xstrdup (path);
  *len = (size_t) n;
  *text = steal_pointer (&buf);
  return 0;
}

static const char *const kind_names[] = {
  [AK_SECCOMP_DEFAULT] = "default",   [AK_SECCOMP_PERMISSIVE] = "permissive",
  [AK_SECCOMP_MODERATE] = "moderate", [AK_SECCOMP_AI_AGENT] = "ai-agent",
  [AK_SECCOMP_RESTRICTIVE] = "restrictive", [AK_SECCOMP_CUSTOM] = "custom",
};

const char *
ak_seccomp_name (ak_seccomp_kind_t k)
{
  return (unsigned) k <= AK_SECCOMP_CUSTOM ? kind_names[k] : "?";
}

int
ak_seccomp_from_name (const char *name, ak_seccomp_kind_t *out, ak_error_t **err)
{
  for (int k = AK_SECCOMP_DEFAULT; k < AK_SECCOMP_CUSTOM; k++)
    if (name != NULL && strcmp (name, kind_names[k]) == 0)
      {
        *out = (ak_seccomp_kind_t) k;
        return 0;
      }
  return ak_error_set (err, 0,
                       "unknown seccomp profile '%s' (expected default, permissive, moderate, "
                       "ai-agent, restrictive, or the path of a Docker seccomp JSON file)",
                       name ? name : "");
}

bool
ak_seccomp_is_path (const char *value)
{
  size_t n = strlen (value);
  return strchr (value, '/') != NULL || (n > 5 && strcmp (value + n - 5, ".json") == 0);
}

ak_seccomp_kind_t
ak_seccomp_builtin (const ak_spec_t *spec)
{
  static const ak_seccomp_kind_t of_profile[] = {
    [AK_PROFILE_PERMISSIVE] = AK_SECCOMP_PERMISSIVE,
    [AK_PROFILE_MODERATE] = AK_SECCOMP_MODERATE,
    [AK_PROFILE_RESTRICTIVE] = AK_SECCOMP_RESTRICTIVE,
  };
  ak_seccomp_kind_t k = spec->sec.seccomp.kind;

  if (k == AK_SECCOMP_CUSTOM)
    k = spec->sec.seccomp.under;
  if (k == AK_SECCOMP_DEFAULT || k == AK_SECCOMP_CUSTOM)
    return (unsigned) spec->sec.profile <= AK_PROFILE_RESTRICTIVE ? of_profile[spec->sec.profile]
                                                                  : AK_SECCOMP_RESTRICTIVE;
  return k;
}

void
ak_spec_set_seccomp (ak_spec_t *spec, ak_seccomp_kind_t k, ak_source_t src, int line)
{
  ak_seccomp_sel_t *s = &spec->sec.seccomp;

  free (s->file);
  free (s->text);
  *s = (ak_seccomp_sel_t){ .kind = k, .source = src, .line = line };
}

int
ak_spec_set_seccomp_custom (ak_spec_t *spec, const char *file, const char *text, size_t len,
                            ak_seccomp_kind_t under, ak_source_t src, int line, ak_error_t **err)
{
  ak_scmp_profile_t *prof = NULL;
  ak_seccomp_sel_t *s = &spec->sec.seccomp;

  if (under == AK_SECCOMP_DEFAULT || under == AK_SECCOMP_CUSTOM)
    return ak_error_set (err, EINVAL, "seccomp: a custom profile goes on a built-in filter");
  if (ak_scmp_profile_parse (file, text, len, &prof, err) < 0)
    return -1;
  ak_scmp_profile_free (prof);
  ak_spec_set_seccomp (spec, AK_SECCOMP_CUSTOM, src, line);
  s->file = ak_xstrdup (file);
  s->text = ak_xstrndup (text, len);
  s->under = under;
  return 0;
}
