#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/job.h"
#include "service/pool.h"

int
ak_cli_fail (ak_error_t *err)
{
  fprintf (stderr, "agentkernel: %s\n", err ? err->msg : "failed");
  ak_error_free (err);
  return AK_EXIT_FAILURE;
}

int
ak_cli_usage_error (const char *cmd, const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "agentkernel: %s%s", cmd ? cmd : "", cmd ? ": " : "");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, " (see 'agentkernel %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
  return AK_EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
  /* The launcher's cold start after a front asked the pool already
   * (service/pool.h); not passed on to anything this program starts. */
  if (getenv (AK_POOL_ASKED_ENV) != NULL)
    {
      unsetenv (AK_POOL_ASKED_ENV);
      ak_pool_skip ();
    }
  if (argc < 2)
    {
      ak_cli_usage (stderr);
      return AK_EXIT_FAILURE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      ak_cli_usage (stdout);
      return 0;
    }
  /* The MCP server's sandbox workers (not a command: never listed). */
  if (argc == 2 && strcmp (argv[1], AK_JOB_WORKER_COMMAND) == 0)
    return ak_job_worker_main ();
  /* The pool daemon's fronts (service/pool.h), likewise. */
  if (argc == 2 && strcmp (argv[1], AK_POOL_FRONT_COMMAND) == 0)
    return ak_cli_front_main ();
  if (strcmp (argv[1], "--version") == 0 || strcmp (argv[1], "version") == 0)
    {
      printf ("agentkernel %s\n", AK_VERSION);
      return 0;
    }
  {
    const ak_cli_cmd_t *c = ak_cli_cmd_find (argv[1]);
    if (c != NULL)
      return c->fn (argc - 1, argv + 1);
  }
  if (argv[1][0] == '-')
    return ak_cli_usage_error (NULL, "unknown option '%s'", argv[1]);
  return ak_cli_usage_error (NULL, "unknown command '%s'", argv[1]);
}
