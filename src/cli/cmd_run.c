/* agentkernel run: one command in a new sandbox, removed afterwards. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"

static void
run_usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel run [OPTIONS] [--] COMMAND [ARGS...]\n\n"
                "Run COMMAND in a new sandbox governed by a security profile; the sandbox\n"
                "is removed when the command ends.\n\nOptions:\n%s"
                "  -h, --help             show this help\n"
                "      --version          show the version\n\n"
                "Exit status: COMMAND's own; 128+N if it was killed by signal N;\n"
                "125 if agentkernel itself failed.\n",
                ak_cli_sandbox_help);
}

int
cmd_run (int argc, char **argv)
{
  ak_cli_sandbox_t flags = { 0 };
  ak_spec_t spec;
  ak_error_t *err = NULL;
  const ak_backend_t *backend;
  int i, status = 0, rc;

  for (i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--") == 0)
        {
          i++;
          break;
        }
      if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        {
          run_usage (stdout);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      if (strcmp (a, "--version") == 0)
        {
          printf ("agentkernel %s\n", AK_VERSION);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      if (a[0] != '-' || a[1] == '\0')
        break;
      rc = ak_cli_sandbox_flag (&flags, argc, argv, &i, &err);
      if (rc < 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_fail (err);
        }
      if (rc == 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_usage_error ("run", "unknown option '%s'", a);
        }
    }
  if (i >= argc)
    {
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("run", "no command given");
    }

  ak_spec_init (&spec);
  spec.argv = ak_strv_dup (argv + i);
  if (ak_cli_sandbox_resolve (&flags, &spec, &err) < 0)
    goto fail;
  backend = ak_backend_lookup (spec.backend, &err);
  if (backend == NULL || backend->run (&spec, NULL, &status, &err) < 0)
    goto fail;
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return status;

fail:
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return ak_cli_fail (err);
}
