/* agentkernel.toml onto a sandbox spec (see config.h). */
#define _GNU_SOURCE
#include "model/config.h"
#include "model/agents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"
#include "model/rulelist.h"
#include "model/seccomp_profile.h"
#include "model/toml.h"

/* What a run of the loader needs to name places in messages. */
typedef struct cfg {
  const char *file;
  char *dir; /* realpath of the directory holding the file */
  ak_spec_t *spec;
  bool untrusted;
  char ***refused;
} cfg_t;

static const char *const tables[] = { "sandbox", "agent", "resources", "security",
                                      "network", "build",  "files",     "daemon", NULL };
static const char *const sandbox_keys[] = { "name", "base_image", "backend", NULL };
static const char *const agent_keys[] = { "preferred", "compatibility_mode", NULL };
static const char *const resources_keys[] = { "vcpus", "memory_mb", "pids", "cpu", "log_mb", "disk_mb", NULL };
static const char *const security_keys[] = { "profile",  "network",   "mount_cwd", "mount_home",
                                             "pass_env", "read_only", "hide_credentials", "seccomp",
                                             "domains", "commands", NULL };
static const char *const files_keys[] = { "source", "dest", NULL };

size_t
ak_edit_distance (const char *a, const char *b)
{
  size_t n = strlen (a), m = strlen (b);
  _cleanup_free_ size_t *row = ak_xcalloc (m + 1, sizeof (size_t));
  size_t result;

  for (size_t j = 0; j <= m; j++)
    row[j] = j;
  for (size_t i = 1; i <= n; i++)
    {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= m; j++)
        {
          size_t up = row[j];
          size_t best = diag + (a[i - 1] != b[j - 1]);
          if (up + 1 < best)
            best = up + 1;
          if (row[j - 1] + 1 < best)
            best = row[j - 1] + 1;
          row[j] = best;
          diag = up;
        }
    }
  result = row[m];
  return result;
}

static bool
in_list (const char *const *list, const char *s)
{
  for (size_t i = 0; list[i] != NULL; i++)
    if (strcmp (list[i], s) == 0)
      return true;
  return false;
}

/* A typo is worth a warning, not a failure: an older agentkernel must still
 * start with a newer file.  The suggestion makes the typo easy to spot. */
static void
warn_unknown (const cfg_t *c, unsigned line, const char *what, const char *key, const char *table,
              const char *const *known)
{
  const char *best = NULL;
  size_t best_d = 3;

  for (size_t i = 0; known != NULL && known[i] != NULL; i++)
    {
      size_t d = ak_edit_distance (key, known[i]);
      if (d < best_d)
        best_d = d, best = known[i];
    }
  ak_warn ("%s:%u: unknown %s '%s'%s%s%s%s%s", c->file, line, what, key, table ? " in " : "",
           table ? table : "", best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
}

static int
type_error (const cfg_t *c, unsigned line, const char *table, const char *key, const char *want,
            const ak_toml_value_t *v, ak_error_t **err)
{
  return ak_error_set (err, 0, "%s:%u: %s %s: expected %s, got %s", c->file, line, table, key, want,
                       ak_toml_type_name (ak_toml_type (v)));
}

static int
get_string (const cfg_t *c, const ak_toml_entry_t *e, const char *table, const char **out,
            ak_error_t **err)
{
  size_t len;
  if (!ak_toml_as_string (e->value, out, &len))
    return type_error (c, e->line, table, e->key, "a string", e->value, err);
  if (len != strlen (*out))
    return ak_error_set (err, 0, "%s:%u: %s %s: NUL byte in string", c->file, e->line, table, e->key);
  return 0;
}

static int
get_uint (const cfg_t *c, const ak_toml_entry_t *e, const char *table, int64_t max,
          unsigned long long *out, ak_error_t **err)
{
  int64_t v;
  if (!ak_toml_as_int (e->value, &v))
    return type_error (c, e->line, table, e->key, "an integer", e->value, err);
  if (v < 0 || v > max)
    return ak_error_set (err, 0, "%s:%u: %s %s: %lld is out of range (0 to %lld)", c->file, e->line,
                         table, e->key, (long long) v, (long long) max);
  *out = (unsigned long long) v;
  return 0;
}

static void
set_str (char **field, const char *v)
{
  free (*field);
  *field = ak_xstrdup (v);
}

/* The table named `name`, or NULL when absent; a non-table is an error. */
static int
get_table (const cfg_t *c, const ak_toml_value_t *root, const char *name,
           const ak_toml_value_t **out, ak_error_t **err)
{
  ak_toml_entry_t e;
  *out = NULL;
  if (!ak_toml_table_find (root, name, &e))
    return 0;
  if (ak_toml_type (e.value) != AK_TOML_TABLE)
    return ak_error_set (err, 0, "%s:%u: %s: expected a table, got %s", c->file, e.line, name,
                         ak_toml_type_name (ak_toml_type (e.value)));
  *out = e.value;
  return 0;
}

static void
warn_unknown_keys (const cfg_t *c, const ak_toml_value_t *t, const char *table,
                   const char *const *known)
{
  size_t it = 0;
  ak_toml_entry_t e;
  while (ak_toml_table_next (t, &it, &e))
    if (!in_list (known, e.key))
      warn_unknown (c, e.line, "key", e.key, table, known);
}

/* An untrusted file asked for more than the profile in force: drop it, say
 * so, and say how to allow it.  Never silent, never fatal (a repository's
 * file must not stop the user's run). */
static void
refuse (const cfg_t *c, unsigned line, const char *table, const char *key, const char *value,
        const char *why)
{
  ak_warn ("%s:%u: %s %s = %s ignored: it would widen %s, and %s is not trusted (pass "
           "--config %s, or run 'agentkernel config trust %s')",
           c->file, line, table, key, value, why, c->file, c->file, c->file);
  if (c->refused != NULL)
    {
      _cleanup_free_ char *s = ak_xasprintf ("%u: %s %s = %s", line, table, key, value);
      ak_strv_push (c->refused, s);
    }
}

/* Whether value v for a security key gives the sandbox more than it has:
 * read_only is the one key where false is the wider setting. */
static bool
sec_widens (const ak_spec_t *spec, ak_sec_key_t k, bool v)
{
  bool cur = spec->sec.s[k].value;
  return k == AK_SEC_READ_ONLY ? (cur && !v) : (!cur && v);
}

/* 0 means no limit, the widest of all. */
static bool
limit_widens (unsigned long long cur, unsigned long long v)
{
  return cur != 0 && (v == 0 || v > cur);
}

/* [security] seccomp: a built-in's name, or a Docker profile's path
 * relative to the config file's directory.  An untrusted file may name a
 * built-in at least as strict as the one in force, or a profile of its own,
 * which is then installed on top of the filter in force (never instead of
 * it): either way it can only take away. */
static int
apply_seccomp (const cfg_t *c, const ak_toml_entry_t *e, ak_error_t **err)
{
  ak_seccomp_kind_t k, cur = ak_seccomp_builtin (c->spec);
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ char *real = NULL;
  _cleanup_close_ int dir = -1;
  const char *v;
  size_t len;

  if (get_string (c, e, "[security]", &v, err) < 0)
    return -1;
  if (!ak_seccomp_is_path (v))
    {
      if (ak_seccomp_from_name (v, &k, err) < 0)
        return ak_error_prefix (err, "%s:%u: [security] seccomp", c->file, e->line);
      if (c->untrusted && c->spec->sec.seccomp.kind == AK_SECCOMP_CUSTOM)
        {
          _cleanup_free_ char *q = ak_xasprintf ("\"%s\"", v);
          refuse (c, e->line, "[security]", "seccomp", q, "the custom seccomp profile in force");
          return 0;
        }
      if (c->untrusted
          && (k == AK_SECCOMP_DEFAULT ? cur : k) < cur)
        {
          _cleanup_free_ char *q = ak_xasprintf ("\"%s\"", v);
          _cleanup_free_ char *why = ak_xasprintf ("seccomp filter %s", ak_seccomp_name (cur));
          refuse (c, e->line, "[security]", "seccomp", q, why);
          return 0;
        }
      ak_spec_set_seccomp (c->spec, k, AK_SRC_CONFIG, (int) e->line);
      return 0;
    }
  dir = open (c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return ak_error_set (err, errno, "%s: directory %s", c->file, c->dir);
  if (ak_scmp_profile_read (dir, c->dir, v, c->untrusted, &text, &len, &real, err) < 0
      || ak_spec_set_seccomp_custom (c->spec, real, text, len,
                                     c->untrusted ? cur : AK_SECCOMP_PERMISSIVE, AK_SRC_CONFIG,
                                     (int) e->line, err)
             < 0)
    return ak_error_prefix (err, "%s:%u: [security] seccomp", c->file, e->line);
  return 0;
}

/* What differs between the policies a config file gives entries for. */
typedef struct rules_cfg {
  const char *table;    /* "[security.domains]" */
  const char *in_force; /* what an untrusted allow entry would widen */
  /* The entry's own check; *never (the reason) when an untrusted file may
   * not add it even where it may add allow entries. */
  int (*check) (const char *s, const char **never, ak_error_t **err);
} rules_cfg_t;

static int
domains_check (const char *s, const char **never, ak_error_t **err)
{
  ak_netpat_t p;
  if (ak_netpat_parse (s, &p, err) < 0)
    return -1;
  /* An address could open ranges the open network keeps closed. */
  *never = p.kind == AK_NETPAT_ADDR ? "the addresses the sandbox reaches" : NULL;
  ak_netpat_clear (&p);
  return 0;
}

static int
commands_check (const char *s, const char **never, ak_error_t **err)
{
  *never = NULL;
  return ak_cmd_entry_check (s, err);
}

static const rules_cfg_t domains_cfg = { "[security.domains]", "the allow list in force", domains_check };
static const rules_cfg_t commands_cfg = { "[security.commands]", "the command allow list in force",
                                          commands_check };

/* One list of [security.domains] (patterns, netpolicy.h) or
 * [security.commands] (cmdpolicy.h); a malformed entry fails naming file,
 * line and entry.  An untrusted file may add block entries and turn
 * allowlist mode on, never widen: its allow entries count only when they
 * are what puts the sandbox in allowlist mode (widen_ok: nothing was
 * allowed before but everything), and never those rc->check says not to
 * (addresses). */
static int
rules_list (const cfg_t *c, const ak_toml_value_t *t, const rules_cfg_t *rc, const ak_rules_t *r, int list,
            bool widen_ok, size_t *added, ak_error_t **err)
{
  const char *key = ak_rules_list_name (list);
  ak_toml_entry_t e;
  size_t n;

  if (!ak_toml_table_find (t, key, &e))
    return 0;
  if (ak_toml_type (e.value) != AK_TOML_ARRAY)
    return ak_error_set (err, 0, "%s:%u: %s %s: expected an array of strings, got %s", c->file, e.line, rc->table,
                         key, ak_toml_type_name (ak_toml_type (e.value)));
  n = ak_toml_array_len (e.value);
  for (size_t i = 0; i < n; i++)
    {
      const ak_toml_value_t *v = ak_toml_array_get (e.value, i);
      unsigned line = ak_toml_line (v) ? ak_toml_line (v) : e.line;
      const char *s, *never = NULL;
      size_t len;

      if (!ak_toml_as_string (v, &s, &len) || len != strlen (s))
        return ak_error_set (err, 0, "%s:%u: %s %s: entry %zu: expected a string, got %s", c->file, line,
                             rc->table, key, i + 1, ak_toml_type_name (ak_toml_type (v)));
      if (rc->check (s, &never, err) < 0)
        return ak_error_prefix (err, "%s:%u: %s %s: entry %zu", c->file, line, rc->table, key, i + 1);
      if (list == AK_RULES_ALLOW && c->untrusted && (!widen_ok || never != NULL))
        {
          _cleanup_free_ char *q = ak_xasprintf ("[\"%s\"]", s);
          refuse (c, line, rc->table, key, q, never != NULL ? never : rc->in_force);
          continue;
        }
      if (ak_rules_add (r, list, s, AK_SRC_CONFIG, (int) line, err) < 0)
        return -1;
      (*added)++;
    }
  return 0;
}

/* [security.domains] or [security.commands]; was_open: the policy so far
 * allows everything. */
static int
apply_rules (const cfg_t *c, const ak_toml_entry_t *te, const rules_cfg_t *rc, const ak_rules_t *r, bool was_open,
             ak_error_t **err)
{
  static const char *const keys[] = { "allow", "block", "allowlist_only", NULL };
  bool have_mode = false, mode = false;
  size_t added = 0, blocked = 0;
  ak_toml_entry_t e;

  if (ak_toml_type (te->value) != AK_TOML_TABLE)
    return type_error (c, te->line, "[security]", te->key, "a table", te->value, err);
  warn_unknown_keys (c, te->value, rc->table, keys);
  if (ak_toml_table_find (te->value, "allowlist_only", &e))
    {
      if (!ak_toml_as_bool (e.value, &mode))
        return type_error (c, e.line, rc->table, e.key, "a boolean", e.value, err);
      have_mode = true;
    }
  if (rules_list (c, te->value, rc, r, AK_RULES_BLOCK, true, &blocked, err) < 0
      || rules_list (c, te->value, rc, r, AK_RULES_ALLOW, was_open && (!have_mode || mode), &added, err) < 0)
    return -1;
  if (have_mode)
    {
      if (c->untrusted && !mode && *r->allowlist_only)
        refuse (c, e.line, rc->table, "allowlist_only", "false", rc->in_force);
      else
        {
          *r->allowlist_only = mode;
          *r->allowlist_source = AK_SRC_CONFIG;
          *r->allowlist_line = (int) e.line;
        }
    }
  else if (added > 0)
    {
      /* An allow list means "only these" unless the file says otherwise,
       * as --allow-host and --allow-cmd do. */
      ak_toml_table_find (te->value, "allow", &e);
      *r->allowlist_only = true;
      *r->allowlist_source = AK_SRC_CONFIG;
      *r->allowlist_line = (int) e.line;
    }
  return 0;
}

static int
apply_domains (const cfg_t *c, const ak_toml_entry_t *de, ak_error_t **err)
{
  ak_netpolicy_t *pol = &c->spec->sec.domains;
  ak_rules_t r = ak_rules_domains (pol);
  return apply_rules (c, de, &domains_cfg, &r, !pol->allowlist_only && pol->n_allow == 0, err);
}

static int
apply_commands (const cfg_t *c, const ak_toml_entry_t *ce, ak_error_t **err)
{
  ak_cmdpolicy_t *pol = &c->spec->sec.commands;
  ak_rules_t r = ak_rules_commands (pol);
  return apply_rules (c, ce, &commands_cfg, &r, !pol->allowlist_only, err);
}

static int
apply_security (const cfg_t *c, const ak_toml_value_t *t, bool profile_from_cli, ak_error_t **err)
{
  ak_toml_entry_t e;
  size_t it = 0;

  /* The profile first, wherever it is written: explicit keys refine it. */
  if (ak_toml_table_find (t, "profile", &e))
    {
      const char *name;
      ak_profile_t p;
      if (get_string (c, &e, "[security]", &name, err) < 0)
        return -1;
      if (ak_profile_from_name (name, &p, err) < 0)
        return ak_error_prefix (err, "%s:%u: [security] profile", c->file, e.line);
      /* The enum runs from loosest to strictest. */
      if (!profile_from_cli && c->untrusted && p < c->spec->sec.profile)
        {
          _cleanup_free_ char *q = ak_xasprintf ("\"%s\"", name);
          _cleanup_free_ char *why
              = ak_xasprintf ("profile %s", ak_profile_name (c->spec->sec.profile));
          refuse (c, e.line, "[security]", "profile", q, why);
        }
      else if (!profile_from_cli)
        ak_spec_set_profile (c->spec, p, AK_SRC_CONFIG);
    }
  while (ak_toml_table_next (t, &it, &e))
    {
      int k;
      bool b;
      if (strcmp (e.key, "profile") == 0)
        continue;
      if (strcmp (e.key, "seccomp") == 0)
        {
          if (apply_seccomp (c, &e, err) < 0)
            return -1;
          continue;
        }
      if (strcmp (e.key, "domains") == 0)
        {
          if (apply_domains (c, &e, err) < 0)
            return -1;
          continue;
        }
      if (strcmp (e.key, "commands") == 0)
        {
          if (apply_commands (c, &e, err) < 0)
            return -1;
          continue;
        }
      /* Not a profile row: credential stores are hidden whatever the
       * profile, unless a config file says otherwise. */
      if (strcmp (e.key, "hide_credentials") == 0)
        {
          if (!ak_toml_as_bool (e.value, &b))
            return type_error (c, e.line, "[security]", e.key, "a boolean", e.value, err);
          /* Showing the credential stores is a widening like any other. */
          if (c->untrusted && !b && !c->spec->show_credentials)
            {
              refuse (c, e.line, "[security]", e.key, "false", "what the home share shows");
              continue;
            }
          c->spec->show_credentials = !b;
          continue;
        }
      k = ak_sec_key_from_name (e.key);
      if (k < 0)
        {
          warn_unknown (c, e.line, "key", e.key, "[security]", security_keys);
          continue;
        }
      if (!ak_toml_as_bool (e.value, &b))
        return type_error (c, e.line, "[security]", e.key, "a boolean", e.value, err);
      if (c->untrusted && sec_widens (c->spec, (ak_sec_key_t) k, b))
        {
          _cleanup_free_ char *why
              = ak_xasprintf ("profile %s", ak_profile_name (c->spec->sec.profile));
          refuse (c, e.line, "[security]", e.key, b ? "true" : "false", why);
          continue;
        }
      ak_spec_set_security (c->spec, (ak_sec_key_t) k, b, AK_SRC_CONFIG, (int) e.line);
    }
  return 0;
}

static int
apply_sandbox (const cfg_t *c, const ak_toml_value_t *t, ak_error_t **err)
{
  ak_toml_entry_t e;
  const char *s;

  warn_unknown_keys (c, t, "[sandbox]", sandbox_keys);
  if (ak_toml_table_find (t, "name", &e))
    {
      if (get_string (c, &e, "[sandbox]", &s, err) < 0)
        return -1;
      if (!ak_name_valid (s))
        return ak_error_set (err, 0,
                             "%s:%u: [sandbox] name: invalid name '%s' (1-63 of letters, digits, "
                             "'-' and '_')",
                             c->file, e.line, s);
      set_str (&c->spec->name, s);
    }
  if (ak_toml_table_find (t, "base_image", &e))
    {
      if (get_string (c, &e, "[sandbox]", &s, err) < 0)
        return -1;
      if (*s == '\0')
        return ak_error_set (err, 0, "%s:%u: [sandbox] base_image: empty", c->file, e.line);
      set_str (&c->spec->image, s);
    }
  if (ak_toml_table_find (t, "backend", &e))
    {
      if (get_string (c, &e, "[sandbox]", &s, err) < 0)
        return -1;
      if (strcmp (s, "container") != 0 && strcmp (s, "microvm") != 0)
        return ak_error_set (err, 0, "%s:%u: [sandbox] backend: '%s' (expected 'container' or 'microvm')",
                             c->file, e.line, s);
      set_str (&c->spec->backend, s);
    }
  return 0;
}

static int
apply_agent (const cfg_t *c, const ak_toml_value_t *t, ak_error_t **err)
{
  ak_toml_entry_t e;
  const char *s;

  warn_unknown_keys (c, t, "[agent]", agent_keys);
  /* Both widen the sandbox (the agent's config directories read-write,
   * its API keys passed): an untrusted file cannot ask for them. */
  if (ak_toml_table_find (t, "preferred", &e))
    {
      if (get_string (c, &e, "[agent]", &s, err) < 0)
        return -1;
      if (ak_agent_find (s) == NULL)
        return ak_error_set (err, 0, "%s:%u: [agent] preferred: unknown agent '%s' (expected %s)", c->file,
                             e.line, s, ak_agent_names ());
      if (c->untrusted)
        refuse (c, e.line, "[agent]", "preferred", s, "what the sandbox shows (the agent's files and keys)");
      else
        set_str (&c->spec->agent, ak_agent_find (s)->name);
    }
  if (ak_toml_table_find (t, "compatibility_mode", &e))
    {
      if (get_string (c, &e, "[agent]", &s, err) < 0)
        return -1;
      if (ak_agent_find (s) == NULL)
        return ak_error_set (err, 0,
                             "%s:%u: [agent] compatibility_mode: unknown mode '%s' (expected %s)",
                             c->file, e.line, s, ak_agent_names ());
      if (c->untrusted)
        refuse (c, e.line, "[agent]", "compatibility_mode", s,
                "what the sandbox shows (the agent's files and keys)");
      else
        set_str (&c->spec->compat_mode, ak_agent_find (s)->name);
    }
  return 0;
}

static int
apply_resources (const cfg_t *c, const ak_toml_value_t *t, ak_error_t **err)
{
  ak_spec_t *spec = c->spec;
  ak_toml_entry_t e;
  unsigned long long n;

  warn_unknown_keys (c, t, "[resources]", resources_keys);
  /* Same bounds as the CLI flags, so both layers accept the same values. */
  if (ak_toml_table_find (t, "memory_mb", &e))
    {
      if (get_uint (c, &e, "[resources]", INT64_C (1) << 30, &n, err) < 0)
        return -1;
      if (c->untrusted && limit_widens (spec->res.memory_mb, n))
        {
          _cleanup_free_ char *v = ak_xasprintf ("%llu", n);
          refuse (c, e.line, "[resources]", "memory_mb", v, "the memory limit");
        }
      else
        spec->res.memory_mb = n, spec->res_source[0] = AK_SRC_CONFIG;
    }
  if (ak_toml_table_find (t, "cpu", &e))
    {
      double v;
      int64_t i;
      if (ak_toml_as_int (e.value, &i))
        v = (double) i;
      else if (!ak_toml_as_float (e.value, &v))
        return type_error (c, e.line, "[resources]", "cpu", "a number", e.value, err);
      if (!(v > 0 && v <= 1024) || (unsigned) (v * 1000.0 + 0.5) == 0)
        return ak_error_set (err, 0,
                             "%s:%u: [resources] cpu: expected a number of CPUs above 0 (at most "
                             "1024), got %g",
                             c->file, e.line, v);
      if (c->untrusted && limit_widens (spec->res.cpu_millis, (unsigned) (v * 1000.0 + 0.5)))
        {
          _cleanup_free_ char *s = ak_xasprintf ("%g", v);
          refuse (c, e.line, "[resources]", "cpu", s, "the CPU limit");
        }
      else
        spec->res.cpu_millis = (unsigned) (v * 1000.0 + 0.5), spec->res_source[1] = AK_SRC_CONFIG;
    }
  if (ak_toml_table_find (t, "pids", &e))
    {
      if (get_uint (c, &e, "[resources]", INT64_C (1) << 22, &n, err) < 0)
        return -1;
      if (c->untrusted && limit_widens (spec->res.pids, n))
        {
          _cleanup_free_ char *v = ak_xasprintf ("%llu", n);
          refuse (c, e.line, "[resources]", "pids", v, "the process limit");
        }
      else
        spec->res.pids = (unsigned) n, spec->res_source[2] = AK_SRC_CONFIG;
    }
  if (ak_toml_table_find (t, "vcpus", &e))
    {
      if (get_uint (c, &e, "[resources]", 1024, &n, err) < 0)
        return -1;
      spec->res.vcpus = (unsigned) n, spec->res_source[3] = AK_SRC_CONFIG;
    }
  if (ak_toml_table_find (t, "log_mb", &e))
    {
      if (get_uint (c, &e, "[resources]", INT64_MAX, &n, err) < 0)
        return -1;
      if (n == 0 || n > AK_LOG_MB_MAX)
        return ak_error_set (err, 0, "%s:%u: [resources] log_mb: expected 1 to %d MiB, got %llu", c->file, e.line,
                             AK_LOG_MB_MAX, n);
      /* A bigger log is a wider limit: only a trusted file may ask for it. */
      if (c->untrusted && n > (spec->res.log_mb ? spec->res.log_mb : AK_LOG_MB_DEFAULT))
        {
          _cleanup_free_ char *v = ak_xasprintf ("%llu", n);
          refuse (c, e.line, "[resources]", "log_mb", v, "the log size limit");
        }
      else
        spec->res.log_mb = (unsigned) n, spec->res_source[4] = AK_SRC_CONFIG;
    }
  if (ak_toml_table_find (t, "disk_mb", &e))
    {
      if (get_uint (c, &e, "[resources]", AK_DISK_MB_MAX, &n, err) < 0)
        return -1;
      if (c->untrusted && limit_widens (spec->res.disk_mb, n))
        {
          _cleanup_free_ char *v = ak_xasprintf ("%llu", n);
          refuse (c, e.line, "[resources]", "disk_mb", v, "the disk limit");
        }
      else
        spec->res.disk_mb = (unsigned) n, spec->res_source[5] = AK_SRC_CONFIG;
    }
  return 0;
}

static bool
dest_valid (const char *d)
{
  if (d[0] != '/' || strcmp (d, "/") == 0)
    return false;
  for (const char *p = d; *p != '\0'; p++)
    if (p[0] == '/' && p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == '\0'))
      return false;
  return true;
}

/* A [[files]] source may only name a regular file under the config file's
 * directory: a config file from a cloned repository must not be able to copy
 * ~/.ssh/id_ed25519 into the sandbox, through "..", an absolute path or a
 * symlink.  realpath() resolves all three, then the prefix is checked. */
/* A [[files]] source: a regular file beneath the config file's directory,
 * reached through no symlink at all (a repository may hold a symlink to
 * ~/.ssh/id_ed25519), its identity recorded so that a start refuses it once
 * it has been swapped for something else. */
static int
resolve_source (const cfg_t *c, unsigned line, const char *src, char **out, ak_fs_id_t *pin,
                ak_error_t **err)
{
  _cleanup_free_ char *joined = NULL;
  _cleanup_close_ int dir = -1;
  _cleanup_close_ int fd = -1;
  const char *rel = src;
  size_t n = strlen (c->dir);
  struct stat st;

  if (*src == '\0')
    return ak_error_set (err, 0, "%s:%u: [[files]] source: empty", c->file, line);
  if (src[0] == '/' && strcmp (c->dir, "/") != 0)
    {
      if (strncmp (src, c->dir, n) != 0 || src[n] != '/')
        return ak_error_set (err, 0, "%s:%u: [[files]] source '%s': outside the config file's directory %s",
                             c->file, line, src, c->dir);
      rel = src + n;
    }
  dir = open (c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return ak_error_set (err, errno, "%s: directory %s", c->file, c->dir);
  fd = ak_fs_openat (dir, rel, O_PATH | O_NOFOLLOW, 0, AK_FS_BENEATH);
  if (fd >= 0 && fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s:%u: [[files]] source '%s'", c->file, line, src);
  if ((fd < 0 && errno == ELOOP) || (fd >= 0 && S_ISLNK (st.st_mode)))
    return ak_error_set (err, 0,
                         "%s:%u: [[files]] source '%s': is a symlink or goes through one, which "
                         "is not followed (it may lead outside the config file's directory): "
                         "name the file itself",
                         c->file, line, src);
  if (fd < 0 && errno == EXDEV)
    return ak_error_set (err, 0, "%s:%u: [[files]] source '%s': outside the config file's directory %s",
                         c->file, line, src, c->dir);
  if (fd < 0)
    return ak_error_set (err, errno, "%s:%u: [[files]] source '%s'", c->file, line, src);
  if (!S_ISREG (st.st_mode))
    return ak_error_set (err, 0, "%s:%u: [[files]] source '%s': not a regular file", c->file, line,
                         src);
  joined = ak_xasprintf ("%s/%s", c->dir, rel);
  *out = realpath (joined, NULL);
  if (*out == NULL)
    return ak_error_set (err, errno, "%s:%u: [[files]] source '%s'", c->file, line, src);
  *pin = (ak_fs_id_t){ .dev = st.st_dev, .ino = st.st_ino, .type = st.st_mode & S_IFMT };
  return 0;
}

static int
apply_files (const cfg_t *c, const ak_toml_value_t *root, ak_error_t **err)
{
  ak_spec_t *spec = c->spec;
  ak_toml_entry_t fe;
  size_t n;

  if (!ak_toml_table_find (root, "files", &fe))
    return 0;
  if (ak_toml_type (fe.value) != AK_TOML_ARRAY)
    return ak_error_set (err, 0, "%s:%u: files: expected an array of tables ([[files]]), got %s",
                         c->file, fe.line, ak_toml_type_name (ak_toml_type (fe.value)));
  n = ak_toml_array_len (fe.value);
  for (size_t i = 0; i < n; i++)
    {
      const ak_toml_value_t *t = ak_toml_array_get (fe.value, i);
      unsigned line = ak_toml_line (t);
      ak_toml_entry_t e;
      const char *src = NULL, *dest = NULL;
      char *real = NULL;
      ak_fs_id_t pin;

      if (ak_toml_type (t) != AK_TOML_TABLE)
        return ak_error_set (err, 0, "%s:%u: files: expected an array of tables, got %s element",
                             c->file, line, ak_toml_type_name (ak_toml_type (t)));
      warn_unknown_keys (c, t, "[[files]]", files_keys);
      if (!ak_toml_table_find (t, "source", &e))
        return ak_error_set (err, 0, "%s:%u: [[files]] source: missing", c->file, line);
      if (get_string (c, &e, "[[files]]", &src, err) < 0)
        return -1;
      if (!ak_toml_table_find (t, "dest", &e))
        return ak_error_set (err, 0, "%s:%u: [[files]] dest: missing", c->file, line);
      if (get_string (c, &e, "[[files]]", &dest, err) < 0)
        return -1;
      if (!dest_valid (dest))
        return ak_error_set (err, 0,
                             "%s:%u: [[files]] dest '%s': expected an absolute path inside the "
                             "sandbox, without '..'",
                             c->file, e.line, dest);
      if (resolve_source (c, line, src, &real, &pin, err) < 0)
        return -1;
      spec->files = ak_xrealloc (spec->files, (spec->n_files + 1) * sizeof (ak_inject_t));
      spec->files[spec->n_files++] = (ak_inject_t){
        .source = real, .dest = ak_xstrdup (dest), .line = (int) line, .pin = pin
      };
    }
  return 0;
}

/* [network]: ports = ["8080:80", "127.0.0.1:5353:53/udp"].  An untrusted
 * file cannot publish a port: that opens the sandbox to the host. */
static int
apply_network (const cfg_t *c, const ak_toml_value_t *t, ak_error_t **err)
{
  static const char *const known[] = { "ports", NULL };
  ak_toml_entry_t e;
  size_t n;

  warn_unknown_keys (c, t, "[network]", known);
  if (!ak_toml_table_find (t, "ports", &e))
    return 0;
  if (ak_toml_type (e.value) != AK_TOML_ARRAY)
    return ak_error_set (err, 0, "%s:%u: [network] ports: expected an array of strings, got %s", c->file,
                         e.line, ak_toml_type_name (ak_toml_type (e.value)));
  n = ak_toml_array_len (e.value);
  for (size_t i = 0; i < n; i++)
    {
      const ak_toml_value_t *v = ak_toml_array_get (e.value, i);
      unsigned line = ak_toml_line (v) ? ak_toml_line (v) : e.line;
      const char *s;
      size_t len;

      if (!ak_toml_as_string (v, &s, &len) || len != strlen (s))
        return ak_error_set (err, 0, "%s:%u: [network] ports: entry %zu: expected a string, got %s", c->file,
                             line, i + 1, ak_toml_type_name (ak_toml_type (v)));
      if (c->untrusted)
        {
          _cleanup_free_ char *q = ak_xasprintf ("[\"%s\"]", s);
          refuse (c, line, "[network]", "ports", q, "what the host exposes of the sandbox");
          continue;
        }
      if (ak_spec_add_port (c->spec, s, err) < 0)
        return ak_error_prefix (err, "%s:%u: [network] ports", c->file, line);
    }
  return 0;
}

static int
apply (const cfg_t *c, const ak_toml_value_t *root, bool profile_from_cli, ak_error_t **err)
{
  const ak_toml_value_t *t;
  ak_toml_entry_t e;
  size_t it = 0;

  while (ak_toml_table_next (root, &it, &e))
    if (!in_list (tables, e.key))
      warn_unknown (c, e.line, ak_toml_type (e.value) == AK_TOML_TABLE ? "table" : "key", e.key,
                    NULL, tables);

  /* Security first: a profile resets resource defaults, which explicit
   * [resources] keys must then override. */
  if (get_table (c, root, "security", &t, err) < 0)
    return -1;
  if (t != NULL && apply_security (c, t, profile_from_cli, err) < 0)
    return -1;
  if (get_table (c, root, "sandbox", &t, err) < 0)
    return -1;
  if (t != NULL && apply_sandbox (c, t, err) < 0)
    return -1;
  if (get_table (c, root, "agent", &t, err) < 0)
    return -1;
  if (t != NULL && apply_agent (c, t, err) < 0)
    return -1;
  if (get_table (c, root, "resources", &t, err) < 0)
    return -1;
  if (t != NULL && apply_resources (c, t, err) < 0)
    return -1;
  if (get_table (c, root, "network", &t, err) < 0)
    return -1;
  if (t != NULL && apply_network (c, t, err) < 0)
    return -1;
  if (get_table (c, root, "build", &t, err) < 0)
    return -1;
  if (t != NULL)
    ak_warn ("%s:%u: [build] is not yet supported; ignored", c->file, ak_toml_line (t));
  return apply_files (c, root, err);
}

static int
load (const char *path, const char *buf, size_t len, const ak_config_opts_t *o, ak_spec_t *spec,
      ak_error_t **err)
{
  _cleanup_free_ char *real = NULL;
  ak_toml_t *doc = NULL;
  cfg_t c = { .file = path, .spec = spec, .untrusted = o->untrusted, .refused = o->refused };
  char *slash;
  int rc;

  real = realpath (path, NULL);
  if (real == NULL)
    return ak_error_set (err, errno, "config file %s", path);
  slash = strrchr (real, '/');
  c.dir = slash == real ? ak_xstrdup ("/") : ak_xstrndup (real, (size_t) (slash - real));
  rc = buf != NULL ? ak_toml_parse (buf, len, path, &doc, err) : ak_toml_parse_file (path, &doc, err);
  if (rc < 0)
    {
      free (c.dir);
      return -1;
    }
  rc = apply (&c, ak_toml_root (doc), o->profile_from_cli, err);
  ak_toml_free (doc);
  free (c.dir);
  return rc;
}

int
ak_config_load_apply (const char *path, bool profile_from_cli, ak_spec_t *spec, ak_error_t **err)
{
  ak_config_opts_t o = { .profile_from_cli = profile_from_cli };
  return load (path, NULL, 0, &o, spec, err);
}

int
ak_config_apply_buf (const char *path, const char *buf, size_t len, const ak_config_opts_t *o,
                     ak_spec_t *spec, ak_error_t **err)
{
  return load (path, buf, len, o, spec, err);
}

/* ---- [daemon]: the warm pool ---- */

static const char *const daemon_keys[] = { "pool_size", "shapes", NULL };
static const char *const shape_keys[] = { "profile", "image", "backend", "network", NULL };

void
ak_daemon_conf_clear (ak_daemon_conf_t *d)
{
  for (size_t i = 0; i < d->n_shapes; i++)
    {
      free (d->shapes[i].profile);
      free (d->shapes[i].image);
      free (d->shapes[i].backend);
    }
  free (d->shapes);
  memset (d, 0, sizeof *d);
}

static int
shape_string (const cfg_t *c, const ak_toml_value_t *t, const char *key, char **out, ak_error_t **err)
{
  ak_toml_entry_t e;
  const char *v;
  size_t len;
  if (!ak_toml_table_find (t, key, &e))
    return 0;
  if (!ak_toml_as_string (e.value, &v, &len) || strlen (v) != len || len == 0)
    return ak_error_set (err, 0, "%s:%u: [daemon] shapes: %s: expected a non-empty string", c->file,
                         e.line, key);
  *out = ak_xstrdup (v);
  return 0;
}

int
ak_config_daemon (const char *path, ak_daemon_conf_t *d, ak_error_t **err)
{
  ak_toml_t *doc = NULL;
  cfg_t c = { .file = path };
  const ak_toml_value_t *t, *shapes;
  ak_toml_entry_t e;
  int rc = -1;

  memset (d, 0, sizeof *d);
  d->pool_size = AK_DAEMON_POOL_SIZE_DEFAULT;
  if (path == NULL)
    return 0;
  if (ak_toml_parse_file (path, &doc, err) < 0)
    return -1;
  if (get_table (&c, ak_toml_root (doc), "daemon", &t, err) < 0)
    goto out;
  rc = 0;
  if (t == NULL)
    goto out;
  rc = -1;
  warn_unknown_keys (&c, t, "daemon", daemon_keys);
  if (ak_toml_table_find (t, "pool_size", &e))
    {
      int64_t n;
      if (!ak_toml_as_int (e.value, &n) || n < 1 || n > AK_DAEMON_POOL_SIZE_MAX)
        {
          ak_error_set (err, 0, "%s:%u: [daemon] pool_size: expected an integer from 1 to %d", path,
                        e.line, AK_DAEMON_POOL_SIZE_MAX);
          goto out;
        }
      d->pool_size = (unsigned) n;
    }
  shapes = ak_toml_table_get (t, "shapes");
  if (shapes != NULL)
    {
      size_t n = ak_toml_array_len (shapes);
      if (ak_toml_type (shapes) != AK_TOML_ARRAY)
        {
          ak_error_set (err, 0, "%s:%u: [daemon] shapes: expected an array of tables", path,
                        ak_toml_line (shapes));
          goto out;
        }
      d->shapes = ak_xcalloc (n + 1, sizeof (ak_daemon_shape_t));
      for (size_t i = 0; i < n; i++)
        {
          const ak_toml_value_t *s = ak_toml_array_get (shapes, i);
          ak_daemon_shape_t *sh = &d->shapes[d->n_shapes++];
          ak_toml_entry_t ne;
          if (ak_toml_type (s) != AK_TOML_TABLE)
            {
              ak_error_set (err, 0, "%s:%u: [daemon] shapes: expected a table", path, ak_toml_line (s));
              goto out;
            }
          warn_unknown_keys (&c, s, "daemon.shapes", shape_keys);
          sh->network = -1;
          if (shape_string (&c, s, "profile", &sh->profile, err) < 0
              || shape_string (&c, s, "image", &sh->image, err) < 0
              || shape_string (&c, s, "backend", &sh->backend, err) < 0)
            goto out;
          if (ak_toml_table_find (s, "network", &ne))
            {
              bool b;
              if (!ak_toml_as_bool (ne.value, &b))
                {
                  ak_error_set (err, 0, "%s:%u: [daemon] shapes: network: expected true or false",
                                path, ne.line);
                  goto out;
                }
              sh->network = b;
            }
        }
    }
  rc = 0;
out:
  ak_toml_free (doc);
  if (rc < 0)
    ak_daemon_conf_clear (d);
  return rc;
}
