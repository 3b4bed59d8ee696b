#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"

static const struct {
  const char *name;
  int (*fn) (int argc, char **argv);
  const char *summary;
} commands[] = {
  { "run", cmd_run, "Run a command in a new sandbox and remove it afterwards" },
  { "create", cmd_create, "Record a persistent sandbox" },
  { "start", cmd_start, "Start a persistent sandbox" },
  { "exec", cmd_exec, "Run a command in a running sandbox" },
  { "detached", cmd_detached, "Look at commands started with exec --detach" },
  { "attach", cmd_attach, "Open an interactive shell in a running sandbox" },
  { "cp", cmd_cp, "Copy files between the host and a sandbox" },
  { "stop", cmd_stop, "Stop a running sandbox (its files are kept)" },
  { "remove", cmd_remove, "Remove a sandbox and everything in it" },
  { "list", cmd_list, "List persistent sandboxes" },
  { "audit", cmd_audit, "Show the audit log" },
  { "config", cmd_config, "Show the resolved settings and where each came from" },
  { "replay", cmd_replay, "Play back a recorded session" },
  { "serve", cmd_serve, "Serve the HTTP API (default http://127.0.0.1:18888)" },
  { "daemon", cmd_daemon, "Keep a warm pool of idle sandboxes (start, stop, status)" },
  { "image", cmd_image, "Pull, list, inspect and remove OCI images" },
  { "mcp-server", cmd_mcp, "Serve sandbox tools over the Model Context Protocol (stdio)" },
  { "agents", cmd_agents, "List supported AI coding agents: installed, version, API key" },
  { "plugin", cmd_plugin, "Install, list or remove an agent's agentkernel integration" },
  { "doctor", cmd_doctor, "Check this host for what sandboxes need, with fixes" },
  { "setup", cmd_setup, "Check the host, find agents, install their integrations" },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel [--help] [--version] COMMAND [ARGS...]\n\n"
                "Run AI coding agents' commands in isolated sandboxes.\n\nCommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun 'agentkernel COMMAND --help' for a command's options.\n"
                "Exit status: the command's own; 128+N if it was killed by signal N;\n"
                "125 if agentkernel itself failed.\n");
}

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
  if (argc < 2)
    {
      usage (stderr);
      return AK_EXIT_FAILURE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  if (strcmp (argv[1], "--version") == 0 || strcmp (argv[1], "version") == 0)
    {
      printf ("agentkernel %s\n", AK_VERSION);
      return 0;
    }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].fn (argc - 1, argv + 1);
  /* Docker's short names. */
  if (strcmp (argv[1], "rm") == 0)
    return cmd_remove (argc - 1, argv + 1);
  if (strcmp (argv[1], "ls") == 0 || strcmp (argv[1], "ps") == 0)
    return cmd_list (argc - 1, argv + 1);
  if (argv[1][0] == '-')
    return ak_cli_usage_error (NULL, "unknown option '%s'", argv[1]);
  return ak_cli_usage_error (NULL, "unknown command '%s'", argv[1]);
}
