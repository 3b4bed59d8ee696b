/* agentkernel cp SRC DST, with NAME:/path on exactly one side. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "service/sandbox.h"

/* "NAME:/path" -> name and path; NULL name when it is a host path.  A
 * host path containing ':' can be given as ./file:x. */
static int
split (const char *arg, char **name, const char **path, ak_error_t **err)
{
  const char *colon = strchr (arg, ':');
  *name = NULL;
  *path = arg;
  if (colon == NULL || arg[0] == '/' || arg[0] == '.')
    return 0;
  *name = ak_xstrndup (arg, (size_t) (colon - arg));
  *path = colon + 1;
  if (!ak_name_valid (*name))
    return ak_error_set (err, 0, "invalid sandbox name '%s' in '%s'", *name, arg);
  if ((*path)[0] != '/')
    return ak_error_set (err, 0, "path inside the sandbox must be absolute: '%s'", arg);
  return 0;
}

int
cmd_cp (int argc, char **argv)
{
  _cleanup_free_ char *sn = NULL;
  _cleanup_free_ char *dn = NULL;
  const char *sp, *dp;
  ak_error_t *err = NULL;
  int rc;

  if (argc > 1 && (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")))
    {
      ak_cli_help_of ("cp", stdout);
      return 0;
    }
  if (argc != 3)
    return ak_cli_usage_error ("cp", "expected SRC and DST");
  if (split (argv[1], &sn, &sp, &err) < 0 || split (argv[2], &dn, &dp, &err) < 0)
    return ak_cli_fail (err);
  if ((sn == NULL) == (dn == NULL))
    return ak_cli_usage_error ("cp", "exactly one of SRC and DST must be NAME:/path");
  rc = sn ? ak_sandbox_copy_out (sn, sp, dp, &err) : ak_sandbox_copy_in (dn, sp, dp, &err);
  return rc < 0 ? ak_cli_fail (err) : 0;
}
