/* agentkernel serve: runs the server program installed next to this one,
 * named after it with "-serve" in place of "-core" (agentkernel-serve; see
 * tools/agentkernel-serve.c for why it is a program of its own). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"

int
cmd_serve (int argc, char **argv)
{
  char self[PATH_MAX];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  _cleanup_free_ char *server = NULL;

  /* --pool: the warm pool's daemon, started unless one runs (it outlives
   * the server; `agentkernel daemon stop` ends it). */
  for (int i = 1, j = 1; i <= argc; i++)
    if (i == argc || strcmp (argv[i], "--pool") != 0)
      argv[j++] = argv[i];
    else
      {
        int rc = ak_cli_daemon_ensure ();
        if (rc != 0)
          return rc;
      }
  if (n < 0)
    {
      fprintf (stderr, "agentkernel: serve: cannot find this program: %s\n", strerror (errno));
      return AK_EXIT_FAILURE;
    }
  self[n] = '\0';
  if (n > 5 && strcmp (self + n - 5, "-core") == 0)
    self[n - 5] = '\0';
  server = ak_xasprintf ("%s-serve", self);
  argv[0] = server;
  execv (server, argv);
  fprintf (stderr, "agentkernel: serve: cannot run %s: %s (it is built and installed with agentkernel)\n", server,
           strerror (errno));
  return AK_EXIT_FAILURE;
}
