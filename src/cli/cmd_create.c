/* agentkernel create NAME [OPTIONS]: record a persistent sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "service/image.h"
#include "service/sandbox.h"

static void
usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel create NAME [OPTIONS]\n\n"
                "Record a persistent sandbox; 'agentkernel start NAME' starts it.\n\nOptions:\n%s"
                "      --dir PATH         directory shown at /workspace (default: the current one)\n"
                "      --image IMAGE      root filesystem image (default: host)\n"
                "      --backend NAME     container (default)\n",
                ak_cli_sandbox_help);
}

int
cmd_create (int argc, char **argv)
{
  static ak_cli_progress_t prog;
  ak_cli_sandbox_t flags = { .create = true };
  ak_error_t *err = NULL;
  ak_spec_t spec;
  ak_record_t rec = { 0 };
  const char *name = NULL, *dir = NULL, *image = NULL, *backend = NULL;
  int rc = AK_EXIT_FAILURE;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      int r;
      if (!strcmp (a, "--help") || !strcmp (a, "-h"))
        {
          usage (stdout);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      if ((!strcmp (a, "--dir") || !strcmp (a, "--image") || !strcmp (a, "--backend")) && i + 1 < argc)
        {
          const char **slot = a[2] == 'd' ? &dir : a[2] == 'i' ? &image : &backend;
          *slot = argv[++i];
          continue;
        }
      if (a[0] != '-' && name == NULL)
        {
          name = a;
          continue;
        }
      r = ak_cli_sandbox_flag (&flags, argc, argv, &i, &err);
      if (r < 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_fail (err);
        }
      if (r == 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_usage_error ("create", "unexpected argument '%s'", a);
        }
    }
  if (name == NULL)
    {
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("create", "no sandbox name given");
    }
  ak_spec_init (&spec);
  prog.tty = isatty (2) == 1;
  ak_sandbox_set_pull_progress (ak_cli_pull_progress, &prog);
  if (ak_cli_sandbox_resolve (&flags, &spec, &err) < 0)
    goto out;
  free (spec.name);
  spec.name = ak_xstrdup (name);
  if (dir != NULL)
    {
      char *real = realpath (dir, NULL);
      if (real == NULL)
        {
          ak_error_set (&err, errno, "--dir %s", dir);
          goto out;
        }
      free (spec.cwd);
      spec.cwd = real;
    }
  if (image != NULL)
    {
      free (spec.image);
      spec.image = ak_xstrdup (image);
    }
  if (backend != NULL)
    {
      free (spec.backend);
      spec.backend = ak_xstrdup (backend);
    }
  if (ak_spec_validate (&spec, &err) < 0 || ak_sandbox_create (&spec, &rec, &err) < 0)
    goto out;
  printf ("%s\n", rec.name);
  rc = 0;
out:
  ak_record_clear (&rec);
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return err ? ak_cli_fail (err) : rc;
}
