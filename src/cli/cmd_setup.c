/* agentkernel setup [-y]: check the host, find the installed agents, and
 * offer each one its agentkernel integration (plugin install --global). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/agents.h"
#include "model/plugin.h"
#include "service/agent_host.h"

static void
usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel setup [-y]\n\n"
                "Check the host (as 'agentkernel doctor' does), list the AI coding agents\n"
                "installed here, and offer each one its agentkernel integration for the\n"
                "user ('agentkernel plugin install AGENT --global').  On a terminal it asks\n"
                "before each; without one it only prints what it would do.\n\n"
                "Options:\n"
                "  -y, --yes              install every detected agent's integration, no questions\n"
                "  -h, --help             show this help\n\n"
                "Exit status: 0, or 1 when the host lacks something sandboxes need\n"
                "(the integrations are still offered); 125 when a step failed.\n");
}

static bool
ask (const char *question)
{
  char line[64];
  printf ("%s [Y/n] ", question);
  fflush (stdout);
  if (fgets (line, sizeof line, stdin) == NULL)
    return false;
  return line[0] == '\n' || line[0] == 'y' || line[0] == 'Y';
}

int
cmd_setup (int argc, char **argv)
{
  bool yes = false, interactive, host_ok, failed = false;
  size_t found = 0;

  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        {
          usage (stdout);
          return 0;
        }
      if (!strcmp (argv[i], "-y") || !strcmp (argv[i], "--yes"))
        yes = true;
      else
        return ak_cli_usage_error ("setup", "unexpected argument '%s'", argv[i]);
    }
  interactive = !yes && isatty (STDIN_FILENO) && isatty (STDOUT_FILENO);

  printf ("== Host\n");
  host_ok = ak_cli_doctor (stdout, false);

  printf ("\n== Agents\n");
  for (size_t i = 0; i < ak_agents_n; i++)
    {
      ak_agent_status_t st;
      ak_agent_status (&ak_agents[i], AK_AGENT_VERSION_TIMEOUT_MS, &st);
      ak_cli_agent_row (stdout, &st);
      if (st.path != NULL)
        found++;
      ak_agent_status_clear (&st);
    }

  printf ("\n== Integrations\n");
  if (found == 0)
    printf ("No agent is installed here; install one (see above), then run 'agentkernel setup' again.\n");
  for (size_t i = 0; i < ak_agents_n; i++)
    {
      const ak_agent_t *a = &ak_agents[i];
      _cleanup_free_ char *path = ak_which (a->binary, NULL);
      _cleanup_free_ char *q = NULL;
      ak_error_t *err = NULL;
      bool doit;

      if (path == NULL)
        continue;
      q = ak_xasprintf ("Install the agentkernel integration for %s (agentkernel plugin install %s --global)?",
                        a->title, a->name);
      if (yes)
        doit = true;
      else if (interactive)
        doit = ask (q);
      else
        {
          printf ("%s: would run 'agentkernel plugin install %s --global' (no terminal: run "
                  "'agentkernel setup -y' to do it):\n",
                  a->title, a->name);
          if (ak_cli_plugin_apply (a->name, AK_PLUGIN_INSTALL, true, true, false, stdout, &err) < 0)
            {
              fprintf (stderr, "agentkernel: %s\n", err->msg);
              ak_error_free (err);
              failed = true;
            }
          continue;
        }
      if (!doit)
        {
          printf ("%s: skipped\n", a->title);
          continue;
        }
      if (ak_cli_plugin_apply (a->name, AK_PLUGIN_INSTALL, true, false, false, stdout, &err) < 0)
        {
          fprintf (stderr, "agentkernel: %s\n", err->msg);
          ak_error_free (err);
          failed = true;
        }
    }

  printf ("\n== Images\n"
          "No agent image is defined: agents run in the host image, with the programs\n"
          "installed on this host (agentkernel run --agent NAME). Nothing to pull.\n");
  if (failed)
    return AK_EXIT_FAILURE;
  return host_ok ? 0 : 1;
}
