/* agentkernel start|stop|remove NAME: a persistent sandbox's life. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "service/sandbox.h"

/* Parses "CMD [--force] NAME..." and applies fn to every name. */
static int
each_name (const char *cmd, int argc, char **argv, bool allow_force,
           int (*fn) (const char *name, bool force, ak_error_t **err))
{
  bool force = false;
  int names = 0, rc = 0;

  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        {
          ak_cli_help_of (cmd, stdout);
          return 0;
        }
      if (allow_force && (!strcmp (argv[i], "--force") || !strcmp (argv[i], "-f")))
        force = true;
      else if (argv[i][0] == '-')
        return ak_cli_usage_error (cmd, "unknown option '%s'", argv[i]);
    }
  for (int i = 1; i < argc; i++)
    {
      ak_error_t *err = NULL;
      if (argv[i][0] == '-')
        continue;
      names++;
      if (!ak_name_valid (argv[i]))
        {
          ak_error_set (&err, 0, "invalid sandbox name '%s' (1-63 of letters, digits, '-', '_')", argv[i]);
          rc = ak_cli_fail (err);
          continue;
        }
      if (fn (argv[i], force, &err) < 0)
        rc = ak_cli_fail (err);
    }
  if (names == 0)
    return ak_cli_usage_error (cmd, "no sandbox name given");
  return rc;
}

static int
do_start (const char *name, bool force, ak_error_t **err)
{
  (void) force;
  return ak_sandbox_start (name, err);
}

static int
do_stop (const char *name, bool force, ak_error_t **err)
{
  (void) force;
  return ak_sandbox_stop (name, err);
}

int
cmd_start (int argc, char **argv)
{
  return each_name ("start", argc, argv, false, do_start);
}

int
cmd_stop (int argc, char **argv)
{
  return each_name ("stop", argc, argv, false, do_stop);
}

int
cmd_remove (int argc, char **argv)
{
  return each_name ("remove", argc, argv, true, ak_sandbox_remove);
}
