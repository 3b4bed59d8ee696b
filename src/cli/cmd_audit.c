/* agentkernel audit list [--sandbox NAME] [--json] | audit path */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/audit.h"
#include "model/spec.h"

int
cmd_audit (int argc, char **argv)
{
  const char *sandbox = NULL;
  bool json = false, denied = false;
  json_t *entries = NULL, *e;
  ak_error_t *err = NULL;
  size_t i;

  if (argc < 2 || !strcmp (argv[1], "--help") || !strcmp (argv[1], "-h"))
    {
      printf ("Usage: agentkernel audit list [--sandbox NAME] [--denied] [--json]\n"
              "  --denied  only what was refused (network connections and lookups,\n"
              "            policy violations)\n"
              "       agentkernel audit path\n");
      return argc < 2 ? AK_EXIT_FAILURE : 0;
    }
  if (!strcmp (argv[1], "path"))
    {
      printf ("%s\n", ak_audit_path ());
      return 0;
    }
  if (strcmp (argv[1], "list") != 0)
    return ak_cli_usage_error ("audit", "unknown subcommand '%s'", argv[1]);
  for (int k = 2; k < argc; k++)
    {
      if (!strcmp (argv[k], "--sandbox") && k + 1 < argc)
        sandbox = argv[++k];
      else if (!strcmp (argv[k], "--json"))
        json = true;
      else if (!strcmp (argv[k], "--denied"))
        denied = true;
      else
        return ak_cli_usage_error ("audit", "unexpected argument '%s'", argv[k]);
    }
  if (sandbox != NULL && !ak_name_valid (sandbox))
    {
      ak_error_set (&err, 0, "invalid sandbox name '%s'", sandbox);
      return ak_cli_fail (err);
    }
  if (ak_audit_read (sandbox, &entries, &err) < 0)
    return ak_cli_fail (err);
  json_array_foreach (entries, i, e)
    {
      const char *verdict = json_string_value (json_object_get (e, "verdict"));
      const char *event = json_string_value (json_object_get (e, "event"));
      if (denied && !(verdict != NULL && strcmp (verdict, "deny") == 0)
          && !(event != NULL && strcmp (event, "policy_violation") == 0))
        continue;
      if (json)
        {
          char *s = json_dumps (e, JSON_COMPACT);
          printf ("%s\n", s);
          free (s);
        }
      else
        {
          json_t *cmd = json_object_get (e, "command");
          char *detail = cmd ? json_dumps (cmd, JSON_COMPACT) : NULL;
          printf ("%s  %-18s %-20s %s", json_string_value (json_object_get (e, "timestamp")),
                  json_string_value (json_object_get (e, "event")),
                  json_string_value (json_object_get (e, "sandbox")) ?: "-", detail ? detail : "");
          if (json_object_get (e, "exit_code"))
            printf (" -> %lld", (long long) json_integer_value (json_object_get (e, "exit_code")));
          if (json_object_get (e, "path"))
            printf ("%s", json_string_value (json_object_get (e, "path")));
          if (event != NULL && strcmp (event, "policy_violation") == 0
              && json_object_get (e, "program") != NULL)
            {
              /* The command policy: the program refused, and why. */
              const char *entry = json_string_value (json_object_get (e, "entry"));
              printf ("%s deny (%s%s%s)", json_string_value (json_object_get (e, "program")),
                      json_string_value (json_object_get (e, "rule")) ?: "", entry ? " " : "",
                      entry ? entry : "");
            }
          if (verdict != NULL)
            {
              const char *name = json_string_value (json_object_get (e, "name"));
              const char *addr = json_string_value (json_object_get (e, "address"));
              json_t *port = json_object_get (e, "port");
              printf ("%s%s%s%s", name ? name : "", name && addr ? " " : "", addr ? addr : "",
                      port ? "" : "");
              if (port)
                printf (":%lld", (long long) json_integer_value (port));
              printf (" %s (%s)", verdict, json_string_value (json_object_get (e, "rule")) ?: "");
            }
          printf ("\n");
          free (detail);
        }
    }
  json_decref (entries);
  return 0;
}
