/* agentkernel plugin install|remove|list: the files that make an agent use
 * agentkernel (its MCP server registration, and for Claude Code a skill and
 * a /sandbox command). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/plugin.h"
#include "service/plugin.h"

static void
usage (FILE *out)
{
  fprintf (out,
           "Usage: agentkernel plugin install AGENT|mcp|all [--global] [--dry-run] [--force]\n"
           "       agentkernel plugin remove AGENT|mcp|all [--global] [--dry-run] [--force]\n"
           "       agentkernel plugin list\n\n"
           "Write (or remove) the files that make an agent run its commands through\n"
           "agentkernel: its MCP server registration in the agent's own config file,\n"
           "merged into what is there (nothing of yours is lost; the previous file is\n"
           "kept as FILE.bak), and for Claude Code a skill and a /sandbox command.\n\n"
           "  claude    .mcp.json, .claude/skills/agentkernel/SKILL.md, .claude/commands/sandbox.md\n"
           "            (--global: ~/.claude.json and ~/.claude/...)\n"
           "  codex     ~/.codex/config.toml [mcp_servers.agentkernel] (always user-wide)\n"
           "  gemini    .gemini/settings.json (--global: ~/.gemini/settings.json)\n"
           "  opencode  opencode.json (--global: ~/.config/opencode/opencode.json)\n"
           "  mcp       .mcp.json, for any MCP client that reads it\n"
           "  all       the four agents\n\n"
           "Options:\n"
           "      --global           the user's files under ~ instead of the project's\n"
           "                         (the current directory)\n"
           "      --dry-run          show the changes as a diff; write nothing\n"
           "      --force            replace (or remove) an agentkernel entry that is not\n"
           "                         the one agentkernel writes\n"
           "  -h, --help             show this help\n\n"
           "Exit status: 0 when done (also when there was nothing to do); 125 on a\n"
           "bad argument or a file that cannot be merged (malformed: nothing is written).\n");
}

static const char *
state_text (const ak_plugin_change_t *c, ak_plugin_op_t op, bool dry)
{
  bool change = c->after != NULL || c->unlink;
  if (op == AK_PLUGIN_INSTALL)
    {
      if (c->found == AK_PLUGIN_SAME)
        return "already installed";
      if (c->found == AK_PLUGIN_DIFFERENT && !change)
        return "left alone: it holds an agentkernel entry that is not ours (--force replaces it)";
      if (c->found == AK_PLUGIN_DIFFERENT)
        return dry ? "would replace the existing entry" : "replaced the existing entry";
      return dry ? "would install" : "installed";
    }
  if (c->found == AK_PLUGIN_ABSENT)
    return "not installed";
  if (c->found == AK_PLUGIN_DIFFERENT && !change)
    return "left alone: its agentkernel entry is not ours (--force removes it)";
  return dry ? "would remove" : "removed";
}

/* The targets a name stands for. */
static int
targets_of (const char *name, const ak_plugin_t **out, size_t *n)
{
  *n = 0;
  if (strcmp (name, "all") == 0)
    {
      for (size_t i = 0; i < ak_plugins_n; i++)
        if (strcmp (ak_plugins[i].target, "mcp") != 0)
          out[(*n)++] = &ak_plugins[i];
      return 0;
    }
  out[0] = ak_plugin_find (name);
  if (out[0] == NULL)
    return -1;
  *n = 1;
  return 0;
}

int
ak_cli_plugin_apply (const char *target, int op, bool global, bool dry, bool force, FILE *out,
                     ak_error_t **err)
{
  const ak_plugin_t *t[16];
  size_t nt;
  ak_plugin_plan_t plan = { 0 };
  _cleanup_free_ char *cwd = getcwd (NULL, 0);
  const char *home = getenv ("HOME");
  int rc = -1;

  if (targets_of (target, t, &nt) < 0)
    return ak_error_set (err, 0, "unknown plugin '%s' (expected claude, codex, gemini, opencode, mcp or all)",
                         target);
  for (size_t i = 0; i < nt; i++)
    if (ak_plugin_plan_add (&plan, t[i], cwd, home, global, op, force, err) < 0)
      goto out;
  for (size_t i = 0; i < plan.n; i++)
    {
      const ak_plugin_change_t *c = &plan.changes[i];
      fprintf (out, "%s: %s: %s\n", c->plugin->target, c->shown, state_text (c, op, dry));
      if (dry && (c->after != NULL || c->unlink))
        {
          _cleanup_free_ char *d = ak_plugin_diff (c->shown, c->before, c->after);
          fputs (d, out);
        }
    }
  if (dry)
    fprintf (out, "(dry run: nothing was written)\n");
  else if (ak_plugin_plan_commit (&plan, err) < 0)
    goto out;
  rc = 0;
out:
  ak_plugin_plan_clear (&plan);
  return rc;
}

static int
plugin_list (void)
{
  _cleanup_free_ char *cwd = getcwd (NULL, 0);
  const char *home = getenv ("HOME");
  ak_error_t *err = NULL;

  for (size_t i = 0; i < ak_plugins_n; i++)
    for (int scope = 0; scope < 2; scope++)
      {
        ak_plugin_plan_t plan = { 0 };
        size_t have = 0, other = 0;
        if (ak_plugin_plan_add (&plan, &ak_plugins[i], cwd, home, scope == 1, AK_PLUGIN_INSTALL, false, &err)
            < 0)
          {
            /* Unreadable or malformed, or no such scope (mcp has no user-wide file). */
            if (!strstr (err->msg, "no user-wide file"))
              printf ("%-9s %-8s %s\n", ak_plugins[i].target, scope ? "global" : "project", err->msg);
            ak_error_clear (&err);
            ak_plugin_plan_clear (&plan);
            continue;
          }
        /* A target whose only file is user-wide (codex) is listed once. */
        if (scope == 0 && plan.n > 0 && plan.changes[0].global)
          {
            ak_plugin_plan_clear (&plan);
            continue;
          }
        for (size_t k = 0; k < plan.n; k++)
          {
            have += plan.changes[k].found == AK_PLUGIN_SAME;
            other += plan.changes[k].found == AK_PLUGIN_DIFFERENT;
          }
        printf ("%-9s %-8s %s", ak_plugins[i].target, scope ? "global" : "project",
                have == plan.n ? "installed" : have > 0 ? "partly installed" : other > 0 ? "other entry" : "not installed");
        for (size_t k = 0; k < plan.n; k++)
          printf ("%s%s%s", k ? ", " : ": ", plan.changes[k].shown,
                  plan.changes[k].found == AK_PLUGIN_SAME        ? ""
                  : plan.changes[k].found == AK_PLUGIN_DIFFERENT ? " (not ours)"
                                                                 : " (missing)");
        printf ("\n");
        ak_plugin_plan_clear (&plan);
      }
  return 0;
}

int
cmd_plugin (int argc, char **argv)
{
  const char *verb = NULL, *target = NULL;
  bool global = false, dry = false, force = false;
  ak_error_t *err = NULL;
  ak_plugin_op_t op;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (!strcmp (a, "--help") || !strcmp (a, "-h"))
        {
          usage (stdout);
          return 0;
        }
      if (!strcmp (a, "--global") || !strcmp (a, "-g"))
        global = true;
      else if (!strcmp (a, "--dry-run") || !strcmp (a, "-n"))
        dry = true;
      else if (!strcmp (a, "--force") || !strcmp (a, "-f"))
        force = true;
      else if (a[0] == '-')
        return ak_cli_usage_error ("plugin", "unknown option '%s'", a);
      else if (verb == NULL)
        verb = a;
      else if (target == NULL)
        target = a;
      else
        return ak_cli_usage_error ("plugin", "unexpected argument '%s'", a);
    }
  if (verb == NULL)
    return ak_cli_usage_error ("plugin", "expected install, remove or list");
  if (!strcmp (verb, "list") || !strcmp (verb, "ls"))
    {
      if (target != NULL)
        return ak_cli_usage_error ("plugin", "unexpected argument '%s'", target);
      return plugin_list ();
    }
  if (!strcmp (verb, "install") || !strcmp (verb, "add"))
    op = AK_PLUGIN_INSTALL;
  else if (!strcmp (verb, "remove") || !strcmp (verb, "uninstall") || !strcmp (verb, "rm"))
    op = AK_PLUGIN_REMOVE;
  else
    return ak_cli_usage_error ("plugin", "unknown subcommand '%s' (expected install, remove or list)", verb);
  if (target == NULL)
    return ak_cli_usage_error ("plugin", "%s: name an agent (claude, codex, gemini, opencode), mcp or all", verb);
  if (ak_cli_plugin_apply (target, op, global, dry, force, stdout, &err) < 0)
    return ak_cli_fail (err);
  return 0;
}
