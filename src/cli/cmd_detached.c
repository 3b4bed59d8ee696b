/* agentkernel detached NAME [list | status ID | logs ID [--stderr] | kill ID] */
#define _GNU_SOURCE
#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "service/detached.h"

int
cmd_detached (int argc, char **argv)
{
  const char *name = argc > 1 ? argv[1] : NULL, *op = argc > 2 ? argv[2] : "list";
  const char *id = argc > 3 ? argv[3] : NULL;
  ak_error_t *err = NULL;
  json_t *j = NULL;

  if (name == NULL || !strcmp (name, "--help") || !strcmp (name, "-h"))
    {
      printf ("Usage: agentkernel detached NAME [list | status ID | logs ID [--stderr] | kill ID]\n");
      return name == NULL ? AK_EXIT_FAILURE : 0;
    }
  if (!ak_name_valid (name))
    {
      ak_error_set (&err, 0, "invalid sandbox name '%s'", name);
      return ak_cli_fail (err);
    }
  if (!strcmp (op, "list") && argc <= 3)
    j = ak_detached_list (name, &err);
  else if (!strcmp (op, "status") && argc == 4)
    j = ak_detached_status (name, id, &err);
  else if (!strcmp (op, "kill") && argc == 4)
    return ak_detached_kill (name, id, &err) < 0 ? ak_cli_fail (err) : 0;
  else if (!strcmp (op, "logs") && (argc == 4 || (argc == 5 && !strcmp (argv[4], "--stderr"))))
    {
      int fds[2];
      char buf[65536];
      /* Copied through, never held whole. */
      if (ak_detached_log_fds (name, id, argc == 5 ? "stderr" : "stdout", fds, &err) < 0)
        return ak_cli_fail (err);
      for (int k = 0; k < 2; k++)
        {
          ssize_t n;
          while (fds[k] >= 0 && ((n = read (fds[k], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)))
            if (n > 0 && ak_write_all (STDOUT_FILENO, buf, (size_t) n) < 0)
              break;
          if (fds[k] >= 0)
            close (fds[k]);
        }
      return 0;
    }
  else
    return ak_cli_usage_error ("detached", "expected list, status ID, logs ID [--stderr] or kill ID");
  if (j == NULL)
    return ak_cli_fail (err);
  {
    char *s = json_dumps (j, JSON_INDENT (2));
    printf ("%s\n", s);
    free (s);
  }
  json_decref (j);
  return 0;
}
