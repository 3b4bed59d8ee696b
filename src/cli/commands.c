/* The commands and their options: one table that `--help`, `help CMD`,
 * `completions` and the man page (`help --man`) are all printed from. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Shared by every command that makes a sandbox (run, create, config show). */
const ak_cli_opt_t ak_cli_sandbox_opts[] = {
  { "--profile", "-p", "NAME", "permissive, moderate (default) or restrictive\n(create: --profile only, -p publishes a port)" },
  { "--config", "-c", "FILE",
    "read settings from FILE, which may widen the profile\n(default: ./agentkernel.toml, which may only tighten\n"
    "it unless 'agentkernel config trust' recorded it)" },
  { "--no-network", NULL, NULL, "no network but loopback, whatever the profile says" },
  { "--seccomp", NULL, "NAME|FILE",
    "seccomp filter: default (the profile's), permissive,\nmoderate, ai-agent, restrictive, or a Docker seccomp\n"
    "JSON profile, installed on top of the always-refused\nfloor (mount, unshare, bpf, keyctl, ...)" },
  { "--allow-unsafe-seccomp", NULL, NULL, "let the custom profile run without that floor" },
  { "--allow-host", NULL, "PATTERN",
    "reach only what such patterns name (repeatable):\nexample.com, *.example.com, 10.0.0.0/8, with an\n"
    "optional :PORT or :PORT-PORT" },
  { "--block-host", NULL, "PATTERN", "never reach what PATTERN names (repeatable; wins\nover --allow-host)" },
  { "--publish", "-P", "[ADDR:]HOSTPORT:PORT[/udp]",
    "forward HOSTPORT on the host (127.0.0.1 unless ADDR)\nto PORT in the sandbox (repeatable; create: -p too)" },
  { "--allow-cmd", NULL, "NAME",
    "only programs so named (basename on PATH, or an\nabsolute path) may be executed (repeatable)" },
  { "--block-cmd", NULL, "NAME", "never execute the program NAME (repeatable; wins\nover --allow-cmd); see docs/security.md" },
  { "--env", "-e", "KEY=VALUE", "set a variable inside (repeatable); -e KEY passes\nthe caller's value of KEY" },
  { "--workdir", "-w", "DIR", "working directory inside the sandbox" },
  { "--volume", "-v", "SRC:DEST[:ro]",
    "show a host file or directory (SRC a path) or a named\nvolume (SRC a slug: 'agentkernel volume') at DEST" },
  { "--memory", "-m", "MB", "memory limit in MiB (0: none)" },
  { "--cpus", NULL, "N", "CPU limit, e.g. 0.5 (0: none)" },
  { "--pids", NULL, "N", "process limit (0: none)" },
  { "--disk", NULL, "MB", "size of the writable layer, and of /tmp (0: none)" },
  { "--image", "-i", "REF",
    "run an OCI image (pulled when absent): REF, 'host'\n(the default: the host's own userland) or 'auto'\n"
    "(chosen from the project's files, then the command)" },
  { "--rootfs", NULL, "DIR", "use DIR as the root filesystem instead of the host's" },
  { "--root", NULL, NULL, "run as uid 0 inside (still without host privileges)" },
  { "--hostname", NULL, "NAME", "hostname inside (default: agentkernel)" },
  { "--agent", NULL, "NAME",
    "run an AI coding agent (claude, codex, gemini, opencode)\nin its compatibility mode: its config directories\n"
    "and API key variables, the project at /workspace;\nthe command defaults to the agent (ARGS after --\n"
    "are its arguments); see docs/agents.md" },
  { "--backend", "-B", "NAME", "container (default) or microvm (its own kernel,\nQEMU; see docs/microvm.md)" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t help_opt[] = { { "--help", "-h", NULL, "show this help" }, { NULL, NULL, NULL, NULL } };

static const ak_cli_opt_t run_opts[] = {
  { "--keep", "-k", NULL, "keep the sandbox as a persistent one (named by\n--name or --branch, else run-<random>), running" },
  { "--name", NULL, "NAME", "the kept sandbox's name (needs --keep)" },
  { "--ttl", NULL, "DURATION", "with --keep: remove the sandbox after DURATION\n(30s, 10m, 1h, 2d); see 'sandbox gc'" },
  { "--branch", NULL, NULL,
    "with or without --keep: run in the persistent sandbox\nnamed after the git project and branch of the\n"
    "current directory (<project>-<branch>, sanitised),\ncreated and started when missing, kept" },
  { "--fast", "-F", NULL, "accepted for compatibility; sandboxes here always\nstart the fast way (no effect)" },
  { "--version", NULL, NULL, "show the version" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t create_opts[] = {
  { "--name", NULL, "NAME", "the sandbox's name (instead of NAME)" },
  { "--dir", NULL, "PATH", "directory shown at /workspace (default: the current\none); implies mounting it whatever the profile" },
  { "--ttl", NULL, "DURATION", "remove the sandbox after DURATION (30s, 10m, 1h, 2d);\nsee 'sandbox gc' and 'sandbox extend-ttl'" },
  { "--label", NULL, "KEY=VALUE", "a label (repeatable; 'list --json' and the API show them)" },
  { "--description", NULL, "TEXT", "a description of the sandbox" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t remove_opts[] = {
  { "--force", "-f", NULL, "stop a running sandbox first" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t json_opts[] = {
  { "--json", NULL, NULL, "machine-readable output" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t exec_opts[] = {
  { "--env", "-e", "KEY=VALUE", "set a variable (repeatable); -e KEY passes the\ncaller's value" },
  { "--workdir", "-w", "DIR", "working directory inside" },
  { "--root", NULL, NULL, "run as uid 0 inside (HOME=/root)" },
  { "--sudo", NULL, NULL, "the same as --root" },
  { "--detach", "-d", NULL, "leave the command running; prints its id\n(see 'agentkernel detached')" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t attach_opts[] = {
  { "--env", "-e", "KEY=VALUE", "set a variable (repeatable); -e KEY passes the\ncaller's value" },
  { "--record", NULL, "[PATH]",
    "record the session as an asciicast v2 file: PATH\n(given as --record=PATH or --record PATH.cast), else\n"
    "~/.agentkernel/recordings/NAME-<time>.cast" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t extend_opts[] = {
  { "--by", NULL, "DURATION", "how much longer (default 1h): 30s, 10m, 1h, 2d" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t clean_opts[] = {
  { "--yes", "-y", NULL, "do it without asking (needed when stdin is not a\nterminal)" },
  { "--force", "-f", NULL, "the same as --yes" },
  { "--dry-run", "-n", NULL, "only list what would be removed" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t export_opts[] = {
  { "--output", "-o", "FILE", "write the tar to FILE (default: standard output,\nwhich must not be a terminal)" },
  { "--path", NULL, "DIR", "what to export (default: the working directory)" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t audit_opts[] = {
  { "--sandbox", "-s", "NAME", "only this sandbox's entries" },
  { "--lines", "-n", "N", "only the last N entries" },
  { "--json", NULL, NULL, "one JSON object per line" },
  { "--denied", NULL, NULL, "only what was refused (network connections and\nlookups, policy violations)" },
  { "--path", NULL, NULL, "print the audit log's path and exit" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t volume_opts[] = {
  { "--json", NULL, NULL, "machine-readable output (list, info)" },
  { NULL, NULL, NULL, NULL },
};

static const ak_cli_opt_t help_cmd_opts[] = {
  { "--man", NULL, NULL, "print the man page (roff) instead" },
  { "--options", NULL, NULL, "list every command's options, one 'COMMAND OPTION'\nper line (for scripts)" },
  { NULL, NULL, NULL, NULL },
};

const ak_cli_cmd_t ak_cli_commands[] = {
  { "run", NULL, "[OPTIONS] [--] COMMAND [ARGS...]", "Run a command in a new sandbox and remove it afterwards",
    "Run COMMAND in a new sandbox governed by a security profile; the sandbox\nis removed when the command ends "
    "(unless --keep or --branch).\nWhen the profile does not show the current directory, a file of it\n"
    "named as an argument (NAME or ./NAME, a regular file) is shown read-only\nat the same name in the working "
    "directory inside.",
    cmd_run, run_opts, AK_CMD_SANDBOX_OPTS },
  { "create", NULL, "NAME [OPTIONS]", "Record a persistent sandbox",
    "Record a persistent sandbox; 'agentkernel start NAME' starts it.", cmd_create, create_opts,
    AK_CMD_SANDBOX_OPTS | AK_CMD_GROUP },
  { "start", NULL, "NAME...", "Start a persistent sandbox", NULL, cmd_start, NULL, AK_CMD_GROUP },
  { "stop", NULL, "NAME...", "Stop a running sandbox (its files are kept)", NULL, cmd_stop, NULL, AK_CMD_GROUP },
  { "remove", "rm", "[--force] NAME...", "Remove a sandbox and everything in it", NULL, cmd_remove, remove_opts,
    AK_CMD_GROUP },
  { "list", "ls", "[--json]", "List persistent sandboxes", NULL, cmd_list, json_opts, AK_CMD_GROUP },
  { "info", NULL, "NAME [--json]", "Show a sandbox: status, profile, image, limits, expiry",
    NULL, cmd_info, json_opts, AK_CMD_GROUP },
  { "exec", NULL, "NAME [OPTIONS] [--] COMMAND [ARGS...]", "Run a command in a running sandbox", NULL, cmd_exec,
    exec_opts, AK_CMD_GROUP },
  { "attach", NULL, "NAME [OPTIONS]", "Open an interactive shell in a running sandbox",
    "Open a login shell in a running sandbox, on a terminal when standard\ninput is one (TERM is passed); "
    "otherwise the shell reads standard\ninput and ends at its end.",
    cmd_attach, attach_opts, AK_CMD_GROUP },
  { "cp", NULL, "SRC DST", "Copy files between the host and a sandbox",
    "Copy a file or directory; NAME:/path names a path inside the sandbox\nNAME, on exactly one side.", cmd_cp,
    NULL, AK_CMD_GROUP },
  { "extend-ttl", NULL, "NAME [--by DURATION]", "Push a sandbox's expiry back (default by 1h)",
    "Set the sandbox's expiry to DURATION after the later of now and its\ncurrent expiry.", cmd_extend_ttl,
    extend_opts, AK_CMD_GROUP },
  { "gc", NULL, "", "Remove expired sandboxes (no server needed)",
    "Remove (stopping first) every sandbox whose --ttl has run out.", cmd_gc, NULL, AK_CMD_GROUP },
  { "clean", NULL, "[--yes] [--dry-run]", "Remove every stopped sandbox",
    "Remove every sandbox that is not running, and its files; asks first\nunless --yes.", cmd_clean, clean_opts,
    AK_CMD_GROUP },
  { "export", NULL, "NAME [-o FILE] [--path DIR]", "Write a sandbox's working directory as a tar",
    "Write a tar of the sandbox's working directory (/workspace when the\nprofile mounts the project, else "
    "the home directory inside, or --workdir).\nThe sandbox must be running.",
    cmd_export, export_opts, AK_CMD_GROUP },
  { "sandbox", "sb", "VERB [ARGS...]", "The sandbox verbs as one group",
    "agentkernel sandbox VERB ... is agentkernel VERB ...; the verbs:\ncreate start stop remove list info exec "
    "attach cp extend-ttl gc clean export",
    cmd_sandbox, NULL, 0 },
  { "volume", NULL, "create|list|info|delete [SLUG] [--json]", "Manage named volumes",
    "Named volumes are directories under the state directory that\n--volume SLUG:/path[:ro] shows inside; a slug is "
    "1-63 of lower-case\nletters, digits, '-' and '_', starting with a letter or digit.\n"
    "delete refuses a volume that a recorded sandbox uses.",
    cmd_volume, volume_opts, 0 },
  { "detached", NULL, "list|status|logs|kill ...", "Look at commands started with exec --detach", NULL,
    cmd_detached, NULL, AK_CMD_OWN_HELP },
  { "audit", NULL, "[--sandbox NAME] [-n N] [--json] [--denied] [--path]", "Show the audit log",
    "Show the audit log ('audit list' is the same; 'audit path' is --path).", cmd_audit, audit_opts, 0 },
  { "config", NULL, "show|trust|untrust ...", "Show the resolved settings and where each came from", NULL,
    cmd_config, NULL, AK_CMD_OWN_HELP },
  { "replay", NULL, "FILE", "Play back a recorded session", NULL, cmd_replay, NULL, AK_CMD_OWN_HELP },
  { "serve", NULL, "[OPTIONS]", "Serve the HTTP API (default http://127.0.0.1:18888)", NULL, cmd_serve, NULL,
    AK_CMD_OWN_HELP },
  { "daemon", NULL, "start|stop|status ...", "Keep a warm pool of idle sandboxes (start, stop, status)", NULL,
    cmd_daemon, NULL, AK_CMD_OWN_HELP },
  { "image", NULL, "pull|list|inspect|remove ...", "Pull, list, inspect and remove OCI images", NULL, cmd_image,
    NULL, AK_CMD_OWN_HELP },
  { "mcp-server", NULL, "", "Serve sandbox tools over the Model Context Protocol (stdio)", NULL, cmd_mcp, NULL,
    AK_CMD_OWN_HELP },
  { "agents", NULL, "[--json]", "List supported AI coding agents: installed, version, API key", NULL, cmd_agents,
    NULL, AK_CMD_OWN_HELP },
  { "plugin", NULL, "install|list|remove ...", "Install, list or remove an agent's agentkernel integration", NULL,
    cmd_plugin, NULL, AK_CMD_OWN_HELP },
  { "doctor", NULL, "[--json]", "Check this host for what sandboxes need, with fixes", NULL, cmd_doctor, NULL,
    AK_CMD_OWN_HELP },
  { "setup", NULL, "[OPTIONS]", "Check the host, find agents, install their integrations", NULL, cmd_setup, NULL,
    AK_CMD_OWN_HELP },
  { "completions", NULL, "bash|zsh|fish", "Print a shell completion script",
    "Print the completion script of a shell, e.g.\n  agentkernel completions bash > "
    "/etc/bash_completion.d/agentkernel\n  agentkernel completions zsh > ~/.zfunc/_agentkernel\n"
    "  agentkernel completions fish > ~/.config/fish/completions/agentkernel.fish",
    cmd_completions, NULL, 0 },
  { "help", NULL, "[COMMAND] [--man]", "Show the help of agentkernel or of a command", NULL, cmd_help,
    help_cmd_opts, 0 },
  { NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

const ak_cli_cmd_t *
ak_cli_cmd_find (const char *name)
{
  if (!strcmp (name, "ps"))
    name = "list";
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    if (!strcmp (c->name, name) || (c->alias && !strcmp (c->alias, name)))
      return c;
  return NULL;
}

/* "-p, --profile NAME" */
static int
opt_label (char *buf, size_t len, const ak_cli_opt_t *o)
{
  return snprintf (buf, len, "%s%s%s%s%s", o->shrt ? o->shrt : "", o->shrt ? ", " : "    ", o->lng,
                   o->arg ? (o->arg[0] == '[' ? "" : " ") : "", o->arg ? o->arg : "");
}

void
ak_cli_print_opts (FILE *out, const ak_cli_opt_t *opts)
{
  for (const ak_cli_opt_t *o = opts; o && o->lng; o++)
    {
      char label[64];
      const char *h = o->help, *nl;
      int n = opt_label (label, sizeof label, o);
      fprintf (out, "  %s", label);
      if (n > 20)
        fprintf (out, "\n%25s", "");
      else
        fprintf (out, "%*s", 23 - n, "");
      for (; (nl = strchr (h, '\n')) != NULL; h = nl + 1)
        fprintf (out, "%.*s\n%25s", (int) (nl - h), h, "");
      fprintf (out, "%s\n", h);
    }
}

void
ak_cli_help (FILE *out, const ak_cli_cmd_t *c)
{
  fprintf (out, "Usage: agentkernel %s%s%s\n", c->name, c->args[0] ? " " : "", c->args);
  if (c->flags & AK_CMD_GROUP)
    fprintf (out, "       agentkernel sandbox %s ... (also: sb %s)\n", c->name, c->name);
  if (c->alias)
    fprintf (out, "Alias: agentkernel %s%s\n", c->alias, !strcmp (c->name, "list") ? ", agentkernel ps" : "");
  fprintf (out, "\n%s.\n", c->summary);
  if (c->desc)
    fprintf (out, "\n%s\n", c->desc);
  fprintf (out, "\nOptions:\n");
  if (c->flags & AK_CMD_SANDBOX_OPTS)
    ak_cli_print_opts (out, ak_cli_sandbox_opts);
  ak_cli_print_opts (out, c->opts);
  ak_cli_print_opts (out, help_opt);
  if (c->fn == cmd_run)
    fprintf (out, "\nExit status: COMMAND's own; 128+N if it was killed by signal N;\n"
                  "125 if agentkernel itself failed.\n");
}

int
ak_cli_help_of (const char *name, FILE *out)
{
  const ak_cli_cmd_t *c = ak_cli_cmd_find (name);
  if (c == NULL)
    return -1;
  ak_cli_help (out, c);
  return 0;
}

void
ak_cli_usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel [--help] [--version] COMMAND [ARGS...]\n\n"
                "Run AI coding agents' commands in isolated sandboxes.\n\nCommands:\n");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    fprintf (out, "  %-11s %s%s%s%s%s\n", c->name, c->summary, c->alias ? " (alias: " : "",
             c->alias ? c->alias : "", c->fn == cmd_list ? ", ps" : "", c->alias ? ")" : "");
  fprintf (out, "\nThe sandbox verbs are also 'agentkernel sandbox VERB' (or 'sb VERB').\n"
                "Run 'agentkernel help COMMAND' or 'agentkernel COMMAND --help' for a command's options.\n"
                "Exit status: the command's own; 128+N if it was killed by signal N;\n"
                "125 if agentkernel itself failed.\n");
}

/* Every option of c, shared ones first, --help last. */
static void
each_opt (const ak_cli_cmd_t *c, void (*fn) (const ak_cli_opt_t *o, const ak_cli_cmd_t *c, FILE *out),
          FILE *out)
{
  const ak_cli_opt_t *lists[3] = { (c->flags & AK_CMD_SANDBOX_OPTS) ? ak_cli_sandbox_opts : NULL, c->opts,
                                   help_opt };
  for (int i = 0; i < 3; i++)
    for (const ak_cli_opt_t *o = lists[i]; o && o->lng; o++)
      fn (o, c, out);
}

static void
words_opt (const ak_cli_opt_t *o, const ak_cli_cmd_t *c, FILE *out)
{
  (void) c;
  fprintf (out, " %s%s%s", o->lng, o->shrt ? " " : "", o->shrt ? o->shrt : "");
}

static void
fish_quoted (FILE *out, const char *s, const char *end)
{
  fputc ('\'', out);
  for (const char *p = s; *p && (end == NULL || p < end); p++)
    {
      if (*p == '\'' || *p == '\\')
        fputc ('\\', out);
      fputc (*p, out);
    }
  fputc ('\'', out);
}

static void
fish_opt (const ak_cli_opt_t *o, const ak_cli_cmd_t *c, FILE *out)
{
  const char *h = o->help, *nl = strchr (h, '\n');
  fprintf (out, "complete -c agentkernel -n '__ak_cmd %s' -l %s", c->name, o->lng + 2);
  if (o->shrt)
    fprintf (out, " -s %s", o->shrt + 1);
  if (o->arg && o->arg[0] != '[')
    fprintf (out, " -r");
  fprintf (out, " -d ");
  fish_quoted (out, h, nl);
  fputc ('\n', out);
}

static void
man_escape (FILE *out, const char *s)
{
  for (; *s; s++)
    {
      if (*s == '-')
        fputs ("\\-", out);
      else if (*s == '\\')
        fputs ("\\e", out);
      else if (*s == '\n')
        fputc (' ', out);
      else if (*s == '.' && (s[-1] == '\n'))
        fputs ("\\&.", out);
      else
        fputc (*s, out);
    }
}

static void
man_opt (const ak_cli_opt_t *o, const ak_cli_cmd_t *c, FILE *out)
{
  (void) c;
  fprintf (out, ".TP\n.B ");
  if (o->shrt)
    {
      man_escape (out, o->shrt);
      fputs (", ", out);
    }
  man_escape (out, o->lng);
  if (o->arg)
    {
      fputs (o->arg[0] == '[' ? "\\fI" : " \\fI", out);
      man_escape (out, o->arg);
      fputs ("\\fR", out);
    }
  fputc ('\n', out);
  man_escape (out, o->help);
  fputc ('\n', out);
}

static const char *const env_vars[][2] = {
  { "AGENTKERNEL_STATE_DIR", "where sandboxes, volumes and the image store live (default $XDG_DATA_HOME/agentkernel, "
                             "else ~/.local/share/agentkernel)" },
  { "AGENTKERNEL_AUDIT", "0 turns the audit log off" },
  { "AGENTKERNEL_AUDIT_LOG", "the audit log's path (default ~/.agentkernel/audit.jsonl)" },
  { "AGENTKERNEL_API_KEY", "the key 'serve' requires of clients" },
  { "AGENTKERNEL_IMAGE_MAX_LAYER_BYTES", "largest image layer accepted" },
  { "AGENTKERNEL_REGISTRY_MIRRORS", "registry mirrors, see docs/images.md" },
  { "AGENTKERNEL_INSECURE_REGISTRIES", "registries reached over plain HTTP, see docs/images.md" },
  { "REGISTRY_AUTH_FILE, DOCKER_CONFIG", "where registry credentials are read from" },
  { "XDG_DATA_HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR, HOME", "where state, configuration and sockets go" },
  { "TERM", "passed to attach's terminal and recorded in sessions" },
  { "PATH", "where agents' programs are found (--agent, agents)" },
  { "AK_NET_HELPER", "policy, slirp4netns or pasta: the network helper to use (default: the egress policy's own, "
                     "else the first helper found)" },
  { "AK_DEBUG_NET", "set: the egress policy helper's own messages stay on stderr (debugging)" },
};

static void
print_man (FILE *out)
{
  fprintf (out, ".TH AGENTKERNEL 1 \"\" \"agentkernel %s\" \"User Commands\"\n"
                ".SH NAME\nagentkernel \\- run AI coding agents' commands in isolated sandboxes\n"
                ".SH SYNOPSIS\n.B agentkernel\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR...]\n"
                ".br\n.B agentkernel sandbox\n\\fIVERB\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR...]\n"
                ".SH DESCRIPTION\nagentkernel runs commands in sandboxes built from Linux namespaces, seccomp,\n"
                "Landlock and cgroups, governed by a security profile (permissive, moderate,\n"
                "restrictive). The sandbox verbs are also reached as \\fBagentkernel sandbox\\fR\n"
                "\\fIVERB\\fR, or \\fBsb\\fR \\fIVERB\\fR.\n.SH COMMANDS\n",
           AK_VERSION);
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    {
      fprintf (out, ".SS \"agentkernel %s", c->name);
      if (c->args[0])
        {
          fputc (' ', out);
          man_escape (out, c->args);
        }
      fprintf (out, "\"\n");
      man_escape (out, c->summary);
      fprintf (out, ".\n");
      if (c->alias)
        fprintf (out, "Alias: \\fB%s\\fR.\n", c->alias);
      if (c->desc)
        {
          fprintf (out, ".PP\n");
          man_escape (out, c->desc);
          fputc ('\n', out);
        }
      if (c->flags & AK_CMD_OWN_HELP)
        fprintf (out, "See \\fBagentkernel %s \\-\\-help\\fR.\n", c->name);
      else
        each_opt (c, man_opt, out);
    }
  fprintf (out, ".SH ENVIRONMENT\n");
  for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
    {
      fprintf (out, ".TP\n.B %s\n", env_vars[i][0]);
      man_escape (out, env_vars[i][1]);
      fputc ('\n', out);
    }
  fprintf (out, ".SH EXIT STATUS\nThe command's own; 128+N if it was killed by signal N; 125 if agentkernel\n"
                "itself failed (a bad argument, a sandbox that could not be built).\n"
                ".SH SEE ALSO\nREADME.md, docs/security.md, docs/compat.md\n");
}

static void
list_opt (const ak_cli_opt_t *o, const ak_cli_cmd_t *c, FILE *out)
{
  fprintf (out, "%s %s\n", c->name, o->lng);
  if (o->shrt)
    fprintf (out, "%s %s\n", c->name, o->shrt);
}

int
cmd_help (int argc, char **argv)
{
  bool man = false, options = false;
  const char *name = NULL;
  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--man"))
        man = true;
      else if (!strcmp (argv[i], "--options"))
        options = true;
      else if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        name = "help";
      else if (argv[i][0] == '-' || name != NULL)
        return ak_cli_usage_error ("help", "unexpected argument '%s'", argv[i]);
      else
        name = argv[i];
    }
  if (man)
    {
      print_man (stdout);
      return 0;
    }
  if (options)
    {
      for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
        if (!(c->flags & AK_CMD_OWN_HELP))
          each_opt (c, list_opt, stdout);
      return 0;
    }
  if (name == NULL)
    {
      ak_cli_usage (stdout);
      return 0;
    }
  {
    const ak_cli_cmd_t *c = ak_cli_cmd_find (name);
    if (c == NULL)
      return ak_cli_usage_error ("help", "unknown command '%s'", name);
    if (c->flags & AK_CMD_OWN_HELP)
      {
        char *args[] = { (char *) c->name, (char *) "--help", NULL };
        return c->fn (2, args);
      }
    ak_cli_help (stdout, c);
  }
  return 0;
}

static void
bash_script (FILE *out)
{
  fprintf (out, "# bash completion for agentkernel (agentkernel completions bash)\n"
                "_agentkernel() {\n"
                "  local cur=${COMP_WORDS[COMP_CWORD]} i=1 cmd words\n"
                "  cmd=${COMP_WORDS[1]}\n"
                "  if [ \"$cmd\" = sandbox ] || [ \"$cmd\" = sb ]; then i=2; cmd=${COMP_WORDS[2]}; fi\n"
                "  if [ \"$COMP_CWORD\" -le \"$i\" ]; then\n"
                "    if [ \"$i\" = 2 ]; then words='");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    if (c->flags & AK_CMD_GROUP)
      fprintf (out, "%s ", c->name);
  fprintf (out, "'; else words='");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    fprintf (out, "%s %s%s", c->name, c->alias ? c->alias : "", c->fn == cmd_list ? " ps " : "");
  fprintf (out, "'; fi\n"
                "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); return\n  fi\n"
                "  case $cmd in\n");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    {
      fprintf (out, "    %s%s%s%s) words='", c->name, c->alias ? "|" : "", c->alias ? c->alias : "",
               c->fn == cmd_list ? "|ps" : "");
      each_opt (c, words_opt, out);
      fprintf (out, "' ;;\n");
    }
  fprintf (out, "    *) words='' ;;\n  esac\n"
                "  case $cur in\n    -*) COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")) ;;\n"
                "    *) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n  esac\n}\n"
                "complete -F _agentkernel agentkernel\n");
}

static void
zsh_script (FILE *out)
{
  fprintf (out, "#compdef agentkernel\n# zsh completion for agentkernel (agentkernel completions zsh)\n"
                "_agentkernel() {\n  local cmd=${words[2]} i=2\n"
                "  if [[ $cmd == sandbox || $cmd == sb ]]; then i=3; cmd=${words[3]}; fi\n"
                "  if (( CURRENT <= i )); then\n    local -a cmds\n"
                "    if (( i == 3 )); then cmds=(");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    if (c->flags & AK_CMD_GROUP)
      fprintf (out, "%s ", c->name);
  fprintf (out, "); else cmds=(");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    fprintf (out, "%s %s%s", c->name, c->alias ? c->alias : "", c->fn == cmd_list ? " ps " : "");
  fprintf (out, "); fi\n    compadd -a cmds; return\n  fi\n  local -a opts\n  case $cmd in\n");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    {
      fprintf (out, "    %s%s%s%s) opts=(", c->name, c->alias ? "|" : "", c->alias ? c->alias : "",
               c->fn == cmd_list ? "|ps" : "");
      each_opt (c, words_opt, out);
      fprintf (out, ") ;;\n");
    }
  fprintf (out, "  esac\n  if [[ $PREFIX == -* ]]; then compadd -a opts; else _files; fi\n}\n"
                "compdef _agentkernel agentkernel\n");
}

static void
fish_script (FILE *out)
{
  fprintf (out, "# fish completion for agentkernel (agentkernel completions fish)\n"
                "function __ak_cmd\n"
                "  set -l t (commandline -opc)\n"
                "  set -e t[1]\n"
                "  if test (count $t) -ge 1; and contains -- $t[1] sandbox sb\n    set -e t[1]\n  end\n"
                "  test (count $t) -ge 1; or return 1\n"
                "  for n in $argv\n    test \"$t[1]\" = \"$n\"; and return 0\n  end\n  return 1\nend\n"
                "complete -c agentkernel -f\n");
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    {
      fprintf (out, "complete -c agentkernel -n '__fish_use_subcommand' -a %s -d ", c->name);
      fish_quoted (out, c->summary, NULL);
      fputc ('\n', out);
      if (c->alias)
        {
          fprintf (out, "complete -c agentkernel -n '__fish_use_subcommand' -a %s -d ", c->alias);
          fish_quoted (out, c->summary, NULL);
          fputc ('\n', out);
        }
      if (c->flags & AK_CMD_GROUP)
        {
          fprintf (out, "complete -c agentkernel -n '__fish_seen_subcommand_from sandbox sb' -a %s -d ", c->name);
          fish_quoted (out, c->summary, NULL);
          fputc ('\n', out);
        }
    }
  for (const ak_cli_cmd_t *c = ak_cli_commands; c->name; c++)
    each_opt (c, fish_opt, out);
}

int
cmd_completions (int argc, char **argv)
{
  if (argc == 2 && (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")))
    return ak_cli_help_of ("completions", stdout), 0;
  if (argc != 2)
    return ak_cli_usage_error ("completions", "expected one shell: bash, zsh or fish");
  if (!strcmp (argv[1], "bash"))
    bash_script (stdout);
  else if (!strcmp (argv[1], "zsh"))
    zsh_script (stdout);
  else if (!strcmp (argv[1], "fish"))
    fish_script (stdout);
  else
    return ak_cli_usage_error ("completions", "unknown shell '%s' (expected bash, zsh or fish)", argv[1]);
  return 0;
}
