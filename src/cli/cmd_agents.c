/* agentkernel agents [--json]: the supported agents, whether each is
 * installed (and its version), whether its credentials are set, and how to
 * install it. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/agents.h"
#include "model/seccomp_profile.h"
#include "service/agent_host.h"

static void
usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel agents [--json]\n\n"
                "List the AI coding agents agentkernel supports: installed or not (and\n"
                "the version the program reports; it is given %d s to answer), whether\n"
                "one of its API key variables is set, and how to install it.\n\n"
                "Options:\n"
                "      --json             machine-readable output\n"
                "  -h, --help             show this help\n",
                AK_AGENT_VERSION_TIMEOUT_MS / 1000);
}

static char *
joined (const char *const *v, const char *sep)
{
  char *s = ak_xstrdup ("");
  for (size_t i = 0; v && v[i]; i++)
    {
      char *n = ak_xasprintf ("%s%s%s", s, i ? sep : "", v[i]);
      free (s);
      s = n;
    }
  return s;
}

json_t *
ak_cli_agent_json (const ak_agent_status_t *st)
{
  const ak_agent_t *a = st->agent;
  json_t *o = json_object (), *keys = json_array (), *set = json_array (), *paths = json_array (),
         *domains = json_array ();

  for (const char *const *k = a->key_vars; *k; k++)
    json_array_append_new (keys, json_string (*k));
  for (char **k = st->keys_set; k && *k; k++)
    json_array_append_new (set, json_string (*k));
  for (const ak_agent_path_t *p = a->paths; p->path; p++)
    json_array_append_new (paths, json_pack ("{s:s, s:s, s:b}", "path", p->path, "type",
                                             p->is_file ? "file" : "directory", "writable",
                                             p->writable));
  for (const char *const *d = a->domains; *d; d++)
    json_array_append_new (domains, json_string (*d));
  json_object_set_new (o, "name", json_string (a->name));
  json_object_set_new (o, "title", json_string (a->title));
  json_object_set_new (o, "binary", json_string (a->binary));
  json_object_set_new (o, "installed", json_boolean (st->path != NULL));
  json_object_set_new (o, "path", st->path ? json_string (st->path) : json_null ());
  json_object_set_new (o, "version", st->version ? json_string (st->version) : json_null ());
  if (st->version_error)
    json_object_set_new (o, "version_error", json_string (st->version_error));
  json_object_set_new (o, "api_key_set", json_boolean (st->keys_set != NULL));
  json_object_set_new (o, "api_key_vars", keys);
  json_object_set_new (o, "api_key_vars_set", set);
  json_object_set_new (o, "config_paths", paths);
  json_object_set_new (o, "domains", domains);
  json_object_set_new (o, "npm_package", a->npm_package ? json_string (a->npm_package) : json_null ());
  json_object_set_new (o, "install_hint", json_string (a->install_hint));
  json_object_set_new (o, "seccomp_profile", json_string (ak_seccomp_name (a->seccomp)));
  return o;
}

void
ak_cli_agent_row (FILE *out, const ak_agent_status_t *st)
{
  const ak_agent_t *a = st->agent;
  _cleanup_free_ char *installed = NULL;
  _cleanup_free_ char *key = NULL;

  if (st->path == NULL)
    installed = ak_xstrdup ("no");
  else if (st->version != NULL)
    installed = ak_xasprintf ("yes, %s", st->version);
  else
    installed = ak_xasprintf ("yes (version unknown: %s)", st->version_error ? st->version_error : "?");
  if (st->keys_set != NULL)
    {
      _cleanup_free_ char *s = joined ((const char *const *) st->keys_set, ", ");
      key = ak_xasprintf ("set (%s)", s);
    }
  else
    {
      _cleanup_free_ char *s = joined (a->key_vars, ", ");
      key = ak_xasprintf ("missing (%s)", s);
    }
  fprintf (out, "%-9s %-12s %s\n", a->name, a->title, installed);
  if (st->path != NULL)
    fprintf (out, "%-22s program: %s\n", "", st->path);
  fprintf (out, "%-22s API key: %s\n", "", key);
  if (st->path == NULL)
    fprintf (out, "%-22s install: %s\n", "", a->install_hint);
}

int
cmd_agents (int argc, char **argv)
{
  bool json = false;
  ak_agent_status_t *st;

  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        {
          usage (stdout);
          return 0;
        }
      if (!strcmp (argv[i], "--json"))
        json = true;
      else
        return ak_cli_usage_error ("agents", "unexpected argument '%s'", argv[i]);
    }
  st = ak_xcalloc (ak_agents_n, sizeof *st);
  for (size_t i = 0; i < ak_agents_n; i++)
    ak_agent_status (&ak_agents[i], AK_AGENT_VERSION_TIMEOUT_MS, &st[i]);
  if (json)
    {
      json_t *arr = json_array ();
      for (size_t i = 0; i < ak_agents_n; i++)
        json_array_append_new (arr, ak_cli_agent_json (&st[i]));
      json_dumpf (arr, stdout, JSON_INDENT (2));
      fputc ('\n', stdout);
      json_decref (arr);
    }
  else
    {
      printf ("%-9s %-12s %s\n", "AGENT", "NAME", "INSTALLED");
      for (size_t i = 0; i < ak_agents_n; i++)
        ak_cli_agent_row (stdout, &st[i]);
    }
  for (size_t i = 0; i < ak_agents_n; i++)
    ak_agent_status_clear (&st[i]);
  free (st);
  return 0;
}
