/* agentkernel mcp-server: the MCP server on stdin/stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "server/common.h"
#include "server/job.h"
#include "server/mcp.h"

static void
mcp_usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel mcp-server [--max-profile NAME]\n\n"
                "Serve the Model Context Protocol on stdin/stdout (newline-delimited\n"
                "JSON-RPC 2.0), with tools to run commands in sandboxes and to manage\n"
                "persistent ones.  Logs and warnings go to stderr.\n\n"
                "Options:\n"
                "      --max-profile NAME the loosest profile the model may ask for:\n"
                "                         permissive, moderate (default) or restrictive\n"
                "  -h, --help             show this help\n"
                "      --version          show the version\n");
}

int
cmd_mcp (int argc, char **argv)
{
  _cleanup_close_ int in = -1, out = -1, null_fd = -1;
  ak_error_t *err = NULL;

  ak_server_set_max_profile (AK_PROFILE_MODERATE, "agentkernel mcp-server --max-profile");

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          mcp_usage (stdout);
          return 0;
        }
      if (strcmp (argv[i], "--version") == 0)
        {
          printf ("agentkernel %s\n", AK_VERSION);
          return 0;
        }
      if (strncmp (argv[i], "--max-profile", 13) == 0 && (argv[i][13] == '=' || argv[i][13] == '\0'))
        {
          const char *v = argv[i][13] == '=' ? argv[i] + 14 : i + 1 < argc ? argv[++i] : NULL;
          ak_profile_t p;
          if (v == NULL)
            return ak_cli_usage_error ("mcp-server", "option --max-profile needs a value");
          if (ak_profile_from_name (v, &p, &err) < 0)
            return ak_cli_fail (err);
          ak_server_set_max_profile (p, "agentkernel mcp-server --max-profile");
          continue;
        }
      return ak_cli_usage_error ("mcp-server", "unexpected argument '%s'", argv[i]);
    }

  /* The protocol gets private copies of stdin and stdout; fds 0 and 1 then
   * point at /dev/null and stderr, so nothing else in the process, nor any
   * child that inherits them, can read requests or corrupt the stream. */
  in = fcntl (0, F_DUPFD_CLOEXEC, 3);
  out = fcntl (1, F_DUPFD_CLOEXEC, 3);
  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0 || out < 0 || null_fd < 0 || dup2 (null_fd, 0) < 0 || dup2 (2, 1) < 0)
    {
      fprintf (stderr, "agentkernel: mcp-server: cannot set up stdio: %s\n", strerror (errno));
      return AK_EXIT_FAILURE;
    }
  if (ak_job_init (&err) < 0)
    return ak_cli_fail (err);
  return ak_mcp_serve (in, out) < 0 ? AK_EXIT_FAILURE : 0;
}
