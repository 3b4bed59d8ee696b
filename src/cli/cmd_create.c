/* agentkernel create NAME [OPTIONS]: record a persistent sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"
#include "service/image.h"
#include "service/sandbox.h"

int
cmd_create (int argc, char **argv)
{
  static ak_cli_progress_t prog;
  ak_cli_sandbox_t flags = { 0 };
  ak_error_t *err = NULL;
  ak_spec_t spec;
  ak_record_t rec = { 0 };
  const char *name = NULL, *dir = NULL, *ttl = NULL, *description = NULL;
  char **labels = NULL;
  long long ttl_s = 0;
  int rc = AK_EXIT_FAILURE;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      int r;
      if (!strcmp (a, "--help") || !strcmp (a, "-h"))
        {
          ak_cli_help_of ("create", stdout);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      if ((!strcmp (a, "--dir") || !strcmp (a, "--ttl")) && i + 1 < argc)
        {
          *(a[2] == 'd' ? &dir : &ttl) = argv[++i];
          continue;
        }
      if (!strncmp (a, "--dir=", 6) || !strncmp (a, "--ttl=", 6))
        {
          *(a[2] == 'd' ? &dir : &ttl) = a + 6;
          continue;
        }
      if (!strcmp (a, "--label") || !strcmp (a, "--description"))
        {
          if (i + 1 >= argc)
            {
              ak_cli_sandbox_free (&flags);
              ak_strv_free (labels);
              return ak_cli_usage_error ("create", "%s needs a value", a);
            }
          if (a[2] == 'd')
            description = argv[++i];
          else if (ak_labels_set_kv (&labels, argv[++i], &err) < 0)
            {
              ak_cli_sandbox_free (&flags);
              ak_strv_free (labels);
              rc = ak_cli_usage_error ("create", "--label: %s", err->msg);
              ak_error_free (err);
              return rc;
            }
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
          ak_strv_free (labels);
          return ak_cli_fail (err);
        }
      if (r == 0)
        {
          ak_cli_sandbox_free (&flags);
          ak_strv_free (labels);
          if (!strcmp (a, "--dir") || !strcmp (a, "--ttl"))
            return ak_cli_usage_error ("create", "option %s needs a value", a);
          return ak_cli_usage_error ("create", "unexpected argument '%s'", a);
        }
    }
  if (name == NULL)
    name = flags.name;
  else if (flags.name != NULL && strcmp (flags.name, name) != 0)
    {
      ak_cli_sandbox_free (&flags);
      ak_strv_free (labels);
      return ak_cli_usage_error ("create", "two names given ('%s' and --name %s)", name, flags.name);
    }
  if (name == NULL)
    {
      ak_cli_sandbox_free (&flags);
      ak_strv_free (labels);
      return ak_cli_usage_error ("create", "no sandbox name given");
    }
  if (description != NULL && ak_description_check (description, &err) < 0)
    {
      ak_cli_sandbox_free (&flags);
      ak_strv_free (labels);
      rc = ak_cli_usage_error ("create", "--description: %s", err->msg);
      ak_error_free (err);
      return rc;
    }
  if (ttl != NULL && ak_cli_parse_duration (ttl, &ttl_s, &err) < 0)
    {
      ak_cli_sandbox_free (&flags);
      ak_strv_free (labels);
      ak_error_prefix (&err, "--ttl");
      return ak_cli_fail (err);
    }
  ak_spec_init (&spec);
  prog.tty = isatty (2) == 1;
  ak_sandbox_set_pull_progress (ak_cli_pull_progress, &prog);
  if (dir != NULL)
    {
      /* --dir is the directory the sandbox works in: shown at /workspace
       * whatever the profile (an explicit choice, as -v is). */
      char *real = realpath (dir, NULL);
      if (real == NULL)
        {
          ak_error_set (&err, errno, "--dir %s", dir);
          goto out;
        }
      spec.cwd = real;
    }
  if (ak_cli_sandbox_resolve (&flags, &spec, &err) < 0)
    goto out;
  if (dir != NULL)
    ak_spec_set_security (&spec, AK_SEC_MOUNT_CWD, true, AK_SRC_CLI, 0);
  free (spec.name);
  spec.name = ak_xstrdup (name);
  spec.labels = steal_pointer (&labels);
  spec.description = description ? ak_xstrdup (description) : NULL;
  if (ak_spec_validate (&spec, &err) < 0 || ak_sandbox_create (&spec, &rec, &err) < 0)
    goto out;
  if (ttl_s > 0 && ak_cli_set_ttl (name, ttl_s, &err) < 0)
    {
      ak_error_t *e2 = NULL;
      ak_sandbox_remove (name, true, &e2);
      ak_error_free (e2);
      goto out;
    }
  printf ("%s\n", rec.name);
  rc = 0;
out:
  ak_record_clear (&rec);
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return err ? ak_cli_fail (err) : rc;
}
