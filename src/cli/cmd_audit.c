/* agentkernel audit [--sandbox NAME] [-n N] [--json] [--denied] [--path];
 * 'audit list ...' and 'audit path' are the same. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "service/audit.h"
#include "model/spec.h"

static bool
shown (json_t *e, bool denied)
{
  const char *verdict = json_string_value (json_object_get (e, "verdict"));
  const char *event = json_string_value (json_object_get (e, "event"));
  return !denied || (verdict != NULL && strcmp (verdict, "deny") == 0)
         || (event != NULL && strcmp (event, "policy_violation") == 0);
}

static void
print_entry (json_t *e, bool json)
{
  const char *verdict = json_string_value (json_object_get (e, "verdict"));
  if (json)
    {
      char *s = json_dumps (e, JSON_COMPACT);
      printf ("%s\n", s);
      free (s);
      return;
    }
  json_t *cmd = json_object_get (e, "command");
  char *detail = cmd ? json_dumps (cmd, JSON_COMPACT) : NULL;
  printf ("%s  %-18s %-20s %s", json_string_value (json_object_get (e, "timestamp")),
          json_string_value (json_object_get (e, "event")),
          json_string_value (json_object_get (e, "sandbox")) ?: "-", detail ? detail : "");
  if (json_object_get (e, "exit_code"))
    printf (" -> %lld", (long long) json_integer_value (json_object_get (e, "exit_code")));
  if (json_object_get (e, "path"))
    printf ("%s", json_string_value (json_object_get (e, "path")));
  if (json_object_get (e, "program") != NULL
      && strcmp (json_string_value (json_object_get (e, "event")) ?: "", "policy_violation") == 0)
    {
      /* The command policy: the program refused, and why. */
      const char *entry = json_string_value (json_object_get (e, "entry"));
      printf ("%s deny (%s%s%s)", json_string_value (json_object_get (e, "program")) ?: "",
              json_string_value (json_object_get (e, "rule")) ?: "", entry ? " " : "", entry ? entry : "");
    }
  if (verdict != NULL)
    {
      const char *name = json_string_value (json_object_get (e, "name"));
      const char *addr = json_string_value (json_object_get (e, "address"));
      json_t *port = json_object_get (e, "port");
      printf ("%s%s%s", name ? name : "", name && addr ? " " : "", addr ? addr : "");
      if (port)
        printf (":%lld", (long long) json_integer_value (port));
      printf (" %s (%s)", verdict, json_string_value (json_object_get (e, "rule")) ?: "");
    }
  printf ("\n");
  free (detail);
}

int
cmd_audit (int argc, char **argv)
{
  const char *sandbox = NULL;
  bool json = false, denied = false;
  unsigned long long last = 0;
  json_t *entries = NULL, *e;
  ak_error_t *err = NULL;
  size_t i, n, start = 0, k = 1;

  if (argc > 1 && !strcmp (argv[1], "list"))
    k = 2;
  else if (argc > 1 && !strcmp (argv[1], "path"))
    {
      if (argc > 2)
        return ak_cli_usage_error ("audit", "unexpected argument '%s'", argv[2]);
      printf ("%s\n", ak_audit_path ());
      return 0;
    }
  for (; k < (size_t) argc; k++)
    {
      const char *a = argv[k];
      if (!strcmp (a, "--help") || !strcmp (a, "-h"))
        {
          ak_cli_help_of ("audit", stdout);
          return 0;
        }
      if ((!strcmp (a, "--sandbox") || !strcmp (a, "-s")) && k + 1 < (size_t) argc)
        sandbox = argv[++k];
      else if (!strncmp (a, "--sandbox=", 10))
        sandbox = a + 10;
      else if ((!strcmp (a, "-n") || !strcmp (a, "--lines")) && k + 1 < (size_t) argc)
        {
          if (!ak_parse_u64 (argv[++k], 1, 1000000000ULL, &last))
            return ak_cli_usage_error ("audit", "invalid -n '%s' (expected a number of entries)", argv[k]);
        }
      else if (!strcmp (a, "--json"))
        json = true;
      else if (!strcmp (a, "--denied"))
        denied = true;
      else if (!strcmp (a, "--path"))
        {
          printf ("%s\n", ak_audit_path ());
          return 0;
        }
      else
        return ak_cli_usage_error ("audit", "unexpected argument '%s'", a);
    }
  if (sandbox != NULL && !ak_name_valid (sandbox))
    {
      ak_error_set (&err, 0, "invalid sandbox name '%s'", sandbox);
      return ak_cli_fail (err);
    }
  if (ak_audit_read (sandbox, &entries, &err) < 0)
    return ak_cli_fail (err);
  /* -n N: the last N of the entries shown. */
  n = 0;
  json_array_foreach (entries, i, e)
    n += shown (e, denied);
  if (last > 0 && n > last)
    start = n - (size_t) last;
  n = 0;
  json_array_foreach (entries, i, e)
    if (shown (e, denied) && n++ >= start)
      print_entry (e, json);
  json_decref (entries);
  return 0;
}
