/* agentkernel run: one command in a new sandbox, removed afterwards. */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "service/image.h"
#include "service/sandbox.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"

static void
run_usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel run [OPTIONS] [--] COMMAND [ARGS...]\n"
                "       agentkernel run --agent NAME [OPTIONS] [-- ARGS...]\n\n"
                "Run COMMAND in a new sandbox governed by a security profile; the sandbox\n"
                "is removed when the command ends.\n\nOptions:\n%s"
                "      --keep             keep the sandbox as a persistent one (named by\n"
                "                         --name, else run-<random>), running\n"
                "  -h, --help             show this help\n"
                "      --version          show the version\n\n"
                "Exit status: COMMAND's own; 128+N if it was killed by signal N;\n"
                "125 if agentkernel itself failed.\n",
                ak_cli_sandbox_help);
}

/* run --keep: the same command in a new persistent sandbox, left running. */
static int
run_kept (ak_spec_t *spec, ak_error_t **err)
{
  ak_record_t rec = { 0 };
  ak_exec_req_t req = { .sigfd = -1 };
  char **argv = spec->argv;
  int code = 0;

  if (spec->name == NULL)
    {
      unsigned r;
      if (getentropy (&r, sizeof r) < 0)
        r = (unsigned) getpid ();
      spec->name = ak_xasprintf ("run-%08x", r);
    }
  spec->argv = NULL;
  if (ak_sandbox_create (spec, &rec, err) < 0 || ak_sandbox_start (spec->name, err) < 0)
    {
      spec->argv = argv;
      ak_record_clear (&rec);
      return -1;
    }
  ak_record_clear (&rec);
  spec->argv = argv;
  req.argv = argv;
  if (ak_sandbox_exec (spec->name, &req, NULL, &code, err) < 0)
    return -1;
  fprintf (stderr, "agentkernel: kept sandbox %s (agentkernel exec %s -- ...; agentkernel remove --force %s)\n",
           spec->name, spec->name, spec->name);
  return code;
}

int
cmd_run (int argc, char **argv)
{
  ak_cli_sandbox_t flags = { 0 };
  ak_spec_t spec;
  ak_error_t *err = NULL;
  int i, status = 0, rc;
  bool keep = false;
  static ak_cli_progress_t prog;

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
      if (strcmp (a, "--keep") == 0)
        {
          keep = true;
          continue;
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
          return ak_cli_usage_error ("run", "unknown option '%s'", a);
        }
    }
  ak_spec_init (&spec);
  spec.argv = ak_strv_dup (argv + i);
  prog.tty = isatty (2) == 1;
  ak_sandbox_set_pull_progress (ak_cli_pull_progress, &prog);
  /* No command: --agent's program, the config's preferred agent, or an
   * image's default command (the host has none). */
  if (ak_cli_sandbox_resolve (&flags, &spec, &err) < 0)
    goto fail;
  if ((spec.argv == NULL || spec.argv[0] == NULL) && !ak_spec_wants_image (&spec)
      && strcmp (spec.image, "auto") != 0)
    {
      ak_spec_clear (&spec);
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("run", "no command given");
    }
  if (keep)
    {
      status = run_kept (&spec, &err);
      if (status < 0)
        goto fail;
      goto done;
    }
  if (ak_sandbox_run (&spec, NULL, "cli", &status, &err) < 0)
    goto fail;
done:
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return status;

fail:
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return ak_cli_fail (err);
}
