/* agentkernel config show: the settings a sandbox would get, and where each
 * one came from (profile, config file line, CLI flag). */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/rulelist.h"
#include "model/seccomp_profile.h"

static const char *const res_names[AK_RES_N] = { "memory_mb", "cpu", "pids", "vcpus", "log_mb", "disk_mb" };

static void
config_usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel config show [OPTIONS] [--json]\n"
                "       agentkernel config trust [FILE]\n"
                "       agentkernel config untrust [FILE]\n\n"
                "show: print the settings a sandbox started with OPTIONS would get, resolved\n"
                "from the profile, the config file and the flags, with where each came from.\n\n"
                "A ./agentkernel.toml found in the current directory may only tighten the\n"
                "profile in force; settings that would widen it are ignored with a warning.\n"
                "trust: allow FILE (default ./agentkernel.toml) to widen, as long as its\n"
                "content stays the same (its SHA-256 is recorded; any change untrusts it).\n"
                "untrust: remove that record.  --config FILE always trusts FILE.\n\n"
                "Options:\n");
  ak_cli_print_opts (out, ak_cli_sandbox_opts);
  fprintf (out, "      --json             print JSON instead of TOML\n"
                "  -h, --help             show this help\n");
}

/* "# profile moderate", "# config line 4", "# cli flag". */
static char *
describe (const ak_spec_t *spec, ak_source_t src, int line)
{
  switch (src)
    {
    case AK_SRC_DEFAULT:
    case AK_SRC_PROFILE:
      return ak_xasprintf ("profile %s", ak_profile_name (spec->sec.profile));
    case AK_SRC_CONFIG:
      return line > 0 ? ak_xasprintf ("config line %d", line) : ak_xstrdup ("config");
    case AK_SRC_CLI:
      return ak_xstrdup ("cli flag");
    }
  return ak_xstrdup ("?");
}

/* Resource defaults come with the profile even though they are never set
 * explicitly: report them as the profile's. */
static ak_source_t
res_source (const ak_spec_t *spec, int i)
{
  ak_source_t s = spec->res_source[i];
  if (s == AK_SRC_DEFAULT && i < 3)
    return spec->sec.profile_source == AK_SRC_DEFAULT ? AK_SRC_DEFAULT : AK_SRC_PROFILE;
  return s;
}

static unsigned long long
res_value (const ak_spec_t *spec, int i)
{
  switch (i)
    {
    case 0:
      return spec->res.memory_mb;
    case 1:
      return spec->res.cpu_millis;
    case 2:
      return spec->res.pids;
    case 3:
      return spec->res.vcpus;
    case 4:
      return spec->res.log_mb ? spec->res.log_mb : AK_LOG_MB_DEFAULT;
    default:
      return spec->res.disk_mb;
    }
}

static void
toml_string (FILE *out, const char *s)
{
  fputc ('"', out);
  for (const unsigned char *p = (const unsigned char *) s; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        fprintf (out, "\\%c", *p);
      else if (*p < 0x20 || *p == 0x7f)
        fprintf (out, "\\u%04x", *p);
      else
        fputc (*p, out);
    }
  fputc ('"', out);
}

static void
toml_key_string (FILE *out, const char *key, const char *value)
{
  fprintf (out, "%s = ", key);
  toml_string (out, value);
  fputc ('\n', out);
}

/* seccomp = "ai-agent", or the custom file, with what lies under it. */
static void
print_seccomp (const ak_spec_t *spec, FILE *out)
{
  const ak_seccomp_sel_t *sc = &spec->sec.seccomp;
  _cleanup_free_ char *d = describe (spec, sc->source, sc->line);

  if (sc->kind != AK_SECCOMP_CUSTOM)
    {
      fprintf (out, "seccomp = \"%s\"  # %s\n", ak_seccomp_name (ak_seccomp_builtin (spec)),
               sc->kind == AK_SECCOMP_DEFAULT ? "the profile's filter" : d);
      return;
    }
  fprintf (out, "seccomp = ");
  toml_string (out, sc->file);
  if (sc->unsafe)
    fprintf (out, "  # %s; UNSAFE: alone, without the floor (--allow-unsafe-seccomp)\n", d);
  else
    fprintf (out, "  # %s; on top of the %s filter\n", d,
             sc->under == AK_SECCOMP_PERMISSIVE ? "floor (permissive)" : ak_seccomp_name (sc->under));
}

/* A policy's allowlist mode and lists, each entry with where it came
 * from. */
static void
print_rules (const ak_spec_t *spec, const ak_rules_t *r, FILE *out)
{
  if (*r->allowlist_source == AK_SRC_DEFAULT)
    fprintf (out, "allowlist_only = %s  # default\n", *r->allowlist_only ? "true" : "false");
  else
    {
      _cleanup_free_ char *d = describe (spec, (ak_source_t) *r->allowlist_source, *r->allowlist_line);
      fprintf (out, "allowlist_only = %s  # %s%s%s%s\n", *r->allowlist_only ? "true" : "false", d,
               *r->allowlist_source == AK_SRC_CLI ? " (" : "",
               *r->allowlist_source == AK_SRC_CLI ? r->allow_flag : "",
               *r->allowlist_source == AK_SRC_CLI ? ")" : "");
    }
  for (int list = AK_RULES_ALLOW; list <= AK_RULES_BLOCK; list++)
    {
      size_t n = ak_rules_count (r, list);
      fprintf (out, "%s = [%s", ak_rules_list_name (list), n == 0 ? "]\n" : "\n");
      for (size_t i = 0; i < n; i++)
        {
          int source, line;
          const char *text = ak_rules_entry (r, list, i, &source, &line);
          _cleanup_free_ char *d = describe (spec, (ak_source_t) source, line);
          fprintf (out, "  ");
          toml_string (out, text);
          fprintf (out, ",  # %s\n", d);
        }
      if (n > 0)
        fprintf (out, "]\n");
    }
}

/* The network policy in force, each entry with where it came from. */
static void
print_domains (const ak_spec_t *spec, FILE *out)
{
  const ak_netpolicy_t *pol = &spec->sec.domains;
  ak_rules_t r = ak_rules_domains ((ak_netpolicy_t *) pol);

  fprintf (out, "\n[security.domains]\n");
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    fprintf (out, "# no network: nothing is reached, whatever the rules say\n");
  else if (!ak_netpolicy_has_rules (pol))
    fprintf (out, "# no rules: any address but the host's own, loopback and link-local\n");
  print_rules (spec, &r, out);
}

/* The command policy in force, each entry with where it came from. */
static void
print_commands (const ak_spec_t *spec, FILE *out)
{
  const ak_cmdpolicy_t *pol = &spec->sec.commands;
  ak_rules_t r = ak_rules_commands ((ak_cmdpolicy_t *) pol);

  fprintf (out, "\n[security.commands]\n");
  if (!ak_cmdpolicy_active (pol))
    fprintf (out, "# no rules: any program may be executed\n");
  else if (pol->allowlist_only)
    fprintf (out, "# only the allowed programs (and what they need) may be executed\n");
  print_rules (spec, &r, out);
}

/* The published ports. */
static void
print_ports (const ak_spec_t *spec, FILE *out)
{
  fprintf (out, "\n[network]\nports = [");
  for (char **p = spec->ports; p && *p; p++)
    {
      toml_string (out, *p);
      fprintf (out, "%s", p[1] != NULL ? ", " : "");
    }
  fprintf (out, "]\n");
}

static void
print_toml (const ak_spec_t *spec, const ak_cli_sandbox_t *f, FILE *out)
{
  if (f->config_used != NULL)
    {
      fprintf (out, "# config file %s: %s\n", f->config_used,
               f->config_trusted ? "trusted (may widen the profile)"
                                 : "not trusted (may only tighten the profile)");
      for (char **r = f->config_refused; r && *r; r++)
        fprintf (out, "# refused (would widen): line %s\n", *r);
      fputc ('\n', out);
    }
  const char *psrc = spec->sec.profile_source == AK_SRC_CLI ? "cli flag"
                                                              : ak_source_name (spec->sec.profile_source);

  fprintf (out, "[sandbox]\n");
  if (spec->name != NULL)
    toml_key_string (out, "name", spec->name);
  toml_key_string (out, "base_image", spec->image);
  /* Not config keys (flags only): shown as comments, so that the output
   * stays a config file. */
  fprintf (out, "# hostname: %s\n# workdir: %s\n", spec->hostname ? spec->hostname : "agentkernel",
           ak_spec_default_workdir (spec, spec->as_root));
  if (spec->env != NULL && spec->env[0] != NULL)
    {
      fprintf (out, "# environment set (names only; values not shown):");
      for (char **e = spec->env; *e; e++)
        fprintf (out, " %.*s", (int) strcspn (*e, "="), *e);
      fputc ('\n', out);
    }
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      fprintf (out, "# volume: %s -> %s%s\n", spec->mounts[i].source, spec->mounts[i].dest,
               spec->mounts[i].read_only ? " (read-only)" : "");
    }
  if (spec->agent != NULL || spec->compat_mode != NULL)
    {
      fprintf (out, "\n[agent]\n");
      if (spec->agent != NULL)
        toml_key_string (out, "preferred", spec->agent);
      if (spec->compat_mode != NULL)
        toml_key_string (out, "compatibility_mode", spec->compat_mode);
    }
  fprintf (out, "\n[security]\nprofile = \"%s\"  # %s\n", ak_profile_name (spec->sec.profile), psrc);
  for (int k = 0; k < AK_SEC_N; k++)
    {
      _cleanup_free_ char *d = describe (spec, spec->sec.s[k].source, spec->sec.s[k].line);
      fprintf (out, "%s = %s  # %s\n", ak_sec_key_names[k], spec->sec.s[k].value ? "true" : "false",
               d);
    }
  print_seccomp (spec, out);
  print_domains (spec, out);
  print_commands (spec, out);
  print_ports (spec, out);
  fprintf (out, "\n[resources]\n");
  for (int i = 0; i < AK_RES_N; i++)
    {
      ak_source_t s = res_source (spec, i);
      _cleanup_free_ char *d = s == AK_SRC_DEFAULT && i >= 3 ? ak_xstrdup ("default")
                                                              : describe (spec, s, 0);
      if (i == 1)
        fprintf (out, "cpu = %.3g  # %s%s\n", spec->res.cpu_millis / 1000.0, d,
                 spec->res.cpu_millis == 0 ? " (0: no limit)" : "");
      else
        fprintf (out, "%s = %llu  # %s%s\n", res_names[i], res_value (spec, i), d,
                 i == 4 ? " (each detached log, plus one rotated file)"
                        : res_value (spec, i) == 0 ? " (0: no limit)" : "");
    }
  for (size_t i = 0; i < spec->n_files; i++)
    {
      fprintf (out, "\n[[files]]  # config line %d\n", spec->files[i].line);
      toml_key_string (out, "source", spec->files[i].source);
      toml_key_string (out, "dest", spec->files[i].dest);
    }
}

static json_t *
json_setting (json_t *value, ak_source_t src, int line)
{
  json_t *o = json_pack ("{s:o, s:s}", "value", value, "source", ak_source_name (src));
  if (o == NULL)
    ak_oom ();
  if (src == AK_SRC_CONFIG && line > 0)
    json_object_set_new (o, "line", json_integer (line));
  return o;
}

static int
print_json (const ak_spec_t *spec, const ak_cli_sandbox_t *f, FILE *out)
{
  json_t *root = json_object ();
  json_t *sec = json_object ();
  json_t *res = json_object ();
  json_t *files = json_array ();
  json_t *sandbox = json_object ();
  int rc;

  if (root == NULL || sec == NULL || res == NULL || files == NULL || sandbox == NULL)
    ak_oom ();
  json_object_set_new (sandbox, "name", spec->name ? json_string (spec->name) : json_null ());
  json_object_set_new (sandbox, "base_image", json_string (spec->image));
  json_object_set_new (sandbox, "hostname", json_string (spec->hostname ? spec->hostname : "agentkernel"));
  json_object_set_new (sandbox, "workdir", json_string (ak_spec_default_workdir (spec, spec->as_root)));
  {
    json_t *names = json_array (), *vols = json_array ();
    for (char **e = spec->env; e && *e; e++)
      json_array_append_new (names, json_stringn (*e, strcspn (*e, "=")));
    for (size_t i = 0; i < spec->n_mounts; i++)
      json_array_append_new (vols, json_pack ("{s:s, s:s, s:b}", "source", spec->mounts[i].source, "dest",
                                              spec->mounts[i].dest, "read_only", spec->mounts[i].read_only));
    json_object_set_new (sandbox, "env_names", names);
    json_object_set_new (sandbox, "volumes", vols);
  }
  json_object_set_new (root, "sandbox", sandbox);
  if (spec->agent != NULL || spec->compat_mode != NULL)
    json_object_set_new (root, "agent",
                         json_pack ("{s:s?, s:s?}", "preferred", spec->agent, "compatibility_mode",
                                    spec->compat_mode));
  json_object_set_new (root, "profile",
                       json_setting (json_string (ak_profile_name (spec->sec.profile)),
                                     spec->sec.profile_source, 0));
  for (int k = 0; k < AK_SEC_N; k++)
    json_object_set_new (sec, ak_sec_key_names[k],
                         json_setting (json_boolean (spec->sec.s[k].value), spec->sec.s[k].source,
                                       spec->sec.s[k].line));
  {
    const ak_seccomp_sel_t *sc = &spec->sec.seccomp;
    json_t *o = json_setting (json_string (sc->kind == AK_SECCOMP_CUSTOM
                                               ? sc->file
                                               : ak_seccomp_name (ak_seccomp_builtin (spec))),
                              sc->kind == AK_SECCOMP_DEFAULT ? spec->sec.profile_source : sc->source,
                              sc->line);
    json_object_set_new (o, "builtin", json_string (ak_seccomp_name (ak_seccomp_builtin (spec))));
    json_object_set_new (o, "custom", json_boolean (sc->kind == AK_SECCOMP_CUSTOM));
    json_object_set_new (o, "unsafe", json_boolean (sc->kind == AK_SECCOMP_CUSTOM && sc->unsafe));
    json_object_set_new (sec, "seccomp", o);
  }
  {
    ak_rules_t domains = ak_rules_domains ((ak_netpolicy_t *) &spec->sec.domains);
    ak_rules_t commands = ak_rules_commands ((ak_cmdpolicy_t *) &spec->sec.commands);
    json_object_set_new (sec, "domains", ak_rules_to_json (&domains, false));
    json_object_set_new (sec, "commands", ak_rules_to_json (&commands, false));
  }
  json_object_set_new (root, "security", sec);
  for (int i = 0; i < AK_RES_N; i++)
    {
      json_t *v = i == 1 ? json_real (spec->res.cpu_millis / 1000.0)
                         : json_integer ((json_int_t) res_value (spec, i));
      json_object_set_new (res, res_names[i], json_setting (v, res_source (spec, i), 0));
    }
  json_object_set_new (root, "resources", res);
  for (size_t i = 0; i < spec->n_files; i++)
    json_array_append_new (files, json_pack ("{s:s, s:s, s:i}", "source", spec->files[i].source,
                                             "dest", spec->files[i].dest, "line",
                                             spec->files[i].line));
  json_object_set_new (root, "files", files);
  if (f->config_used != NULL)
    {
      json_t *refused = json_array ();
      if (refused == NULL)
        ak_oom ();
      for (char **r = f->config_refused; r && *r; r++)
        json_array_append_new (refused, json_string (*r));
      json_object_set_new (root, "config",
                           json_pack ("{s:s, s:b, s:o}", "file", f->config_used, "trusted",
                                      f->config_trusted, "refused", refused));
    }
  rc = json_dumpf (root, out, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  fputc ('\n', out);
  json_decref (root);
  return rc;
}

/* config trust [FILE] / config untrust [FILE]. */
static int
config_trust (int argc, char **argv, bool trust)
{
  const char *file = argc > 1 ? argv[1] : "agentkernel.toml";
  _cleanup_free_ char *buf = NULL;
  _cleanup_free_ char *real = NULL;
  ak_error_t *err = NULL;
  size_t len = 0;
  bool was = false;
  char hex[65];

  if (argc > 2)
    return ak_cli_usage_error ("config", "%s takes at most one FILE", argv[0]);
  if (argc > 1 && argv[1][0] == '-')
    return ak_cli_usage_error ("config", "unknown option '%s'", argv[1]);
  if (trust)
    {
      if (ak_trust_read (file, &buf, &len, &real, &err) < 0)
        return ak_cli_fail (err);
      ak_sha256_hex (buf, len, hex);
      if (ak_trust_update (real, hex, &was, &err) < 0)
        return ak_cli_fail (err);
      printf ("trusted %s (sha256 %s); any change to it untrusts it\n", real, hex);
      return 0;
    }
  /* A removed file can still be untrusted by the path it had. */
  real = realpath (file, NULL);
  if (real == NULL)
    {
      _cleanup_free_ char *cwd = getcwd (NULL, 0);
      real = file[0] == '/' || cwd == NULL ? ak_xstrdup (file) : ak_xasprintf ("%s/%s", cwd, file);
    }
  if (ak_trust_update (real, NULL, &was, &err) < 0)
    return ak_cli_fail (err);
  printf ("%s %s\n", was ? "untrusted" : "was not trusted:", real);
  return 0;
}

int
cmd_config (int argc, char **argv)
{
  ak_cli_sandbox_t flags = { 0 };
  ak_spec_t spec;
  ak_error_t *err = NULL;
  bool json = false;
  int rc;

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      config_usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? AK_EXIT_FAILURE : 0;
    }
  if (strcmp (argv[1], "trust") == 0 || strcmp (argv[1], "untrust") == 0)
    return config_trust (argc - 1, argv + 1, strcmp (argv[1], "trust") == 0);
  if (strcmp (argv[1], "show") != 0)
    return ak_cli_usage_error ("config", "unknown subcommand '%s'", argv[1]);
  for (int i = 2; i < argc; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--json") == 0)
        {
          json = true;
          continue;
        }
      if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        {
          config_usage (stdout);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      rc = ak_cli_sandbox_flag (&flags, argc, argv, &i, &err);
      if (rc < 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_fail (err);
        }
      if (rc == 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_usage_error ("config", "unknown option '%s'", a);
        }
    }

  ak_spec_init (&spec);
  flags.show_only = true; /* showing changes nothing: no volume is created */
  rc = ak_cli_sandbox_resolve (&flags, &spec, &err);
  if (rc < 0)
    {
      ak_cli_sandbox_free (&flags);
      ak_spec_clear (&spec);
      return ak_cli_fail (err);
    }
  if (json)
    rc = print_json (&spec, &flags, stdout);
  else
    print_toml (&spec, &flags, stdout);
  ak_cli_sandbox_free (&flags);
  ak_spec_clear (&spec);
  return rc < 0 ? AK_EXIT_FAILURE : 0;
}
