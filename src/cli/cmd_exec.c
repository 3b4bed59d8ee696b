/* agentkernel exec NAME [-e KEY=VALUE]... [--workdir DIR] [--root] [--] CMD...
 * and agentkernel attach NAME [-e KEY=VALUE] [--record]: a command, or an
 * interactive shell on a real PTY, in a running sandbox. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "service/asciicast.h"
#include "service/audit.h"
#include "service/detached.h"
#include "service/sandbox.h"

typedef struct exec_opts {
  const char *name;
  char **env;
  const char *workdir;
  const char *record_path; /* --record=PATH, --record PATH.cast */
  bool root, record, detach, help;
  int first_arg;
} exec_opts_t;

static int
parse (const char *cmd, int argc, char **argv, bool want_command, exec_opts_t *o, ak_error_t **err)
{
  int i;
  memset (o, 0, sizeof (*o));
  for (i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (!strcmp (a, "--"))
        {
          i++;
          break;
        }
      if (!strcmp (a, "--help") || !strcmp (a, "-h"))
        {
          o->help = true;
          return 0;
        }
      if ((!strcmp (a, "-e") || !strcmp (a, "--env")) && i + 1 < argc)
        {
          const char *kv = argv[++i];
          const char *eq = strchr (kv, '=');
          if (eq == kv || kv[0] == '\0')
            return ak_error_set (err, 0, "invalid environment variable '%s' (expected KEY=VALUE)", kv);
          if (eq == NULL)
            {
              /* -e KEY passes the caller's value. */
              const char *v = getenv (kv);
              if (v != NULL)
                {
                  _cleanup_free_ char *s = ak_xasprintf ("%s=%s", kv, v);
                  ak_strv_push (&o->env, s);
                }
            }
          else
            ak_strv_push (&o->env, kv);
        }
      else if ((!strcmp (a, "-w") || !strcmp (a, "--workdir")) && i + 1 < argc && want_command)
        o->workdir = argv[++i];
      else if ((!strcmp (a, "--root") || !strcmp (a, "--sudo")) && want_command)
        o->root = true;
      else if ((!strcmp (a, "-d") || !strcmp (a, "--detach")) && want_command)
        o->detach = true;
      else if (!strcmp (a, "--record") && !want_command)
        {
          size_t n;
          o->record = true;
          /* An optional value: taken when it names a .cast file. */
          if (i + 1 < argc && (n = strlen (argv[i + 1])) > 5 && !strcmp (argv[i + 1] + n - 5, ".cast"))
            o->record_path = argv[++i];
        }
      else if (!strncmp (a, "--record=", 9) && !want_command)
        {
          o->record = true;
          o->record_path = a + 9;
          if (o->record_path[0] == '\0')
            return ak_error_set (err, 0, "%s: --record= needs a path", cmd);
        }
      else if (a[0] == '-')
        return ak_error_set (err, 0, "%s: unknown option '%s'", cmd, a);
      else if (o->name == NULL)
        o->name = a;
      else if (!want_command)
        return ak_error_set (err, 0, "%s: unexpected argument '%s' (attach takes no command: use exec)", cmd, a);
      else
        break;
    }
  if (o->name == NULL)
    return ak_error_set (err, 0, "%s: no sandbox name given", cmd);
  if (!ak_name_valid (o->name))
    return ak_error_set (err, 0, "invalid sandbox name '%s' (1-63 of letters, digits, '-', '_')", o->name);
  if (o->workdir != NULL && o->workdir[0] != '/')
    return ak_error_set (err, 0, "invalid workdir '%s': must be an absolute path", o->workdir);
  if (want_command && i >= argc)
    return ak_error_set (err, 0, "%s: no command given", cmd);
  o->first_arg = i;
  return 0;
}

/* Signals go to the command while it runs; SIGWINCH resizes its terminal. */
static int
signal_fd (sigset_t *old)
{
  sigset_t m;
  sigemptyset (&m);
  sigaddset (&m, SIGINT);
  sigaddset (&m, SIGTERM);
  sigaddset (&m, SIGHUP);
  sigaddset (&m, SIGQUIT);
  sigaddset (&m, SIGWINCH);
  sigprocmask (SIG_BLOCK, &m, old);
  return signalfd (-1, &m, SFD_CLOEXEC);
}

int
cmd_exec (int argc, char **argv)
{
  exec_opts_t o;
  ak_error_t *err = NULL;
  ak_exec_req_t req = { 0 };
  int code = 0, rc;
  sigset_t old;

  if (argc > 1 && (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")))
    {
      ak_cli_help_of ("exec", stdout);
      return 0;
    }
  if (parse ("exec", argc, argv, true, &o, &err) < 0)
    {
      ak_strv_free (o.env);
      return ak_cli_fail (err);
    }
  if (o.help)
    {
      ak_strv_free (o.env);
      return ak_cli_help_of ("exec", stdout), 0;
    }
  req.argv = argv + o.first_arg;
  req.env = o.env;
  req.workdir = o.workdir;
  req.root = o.root;
  if (o.detach)
    {
      char *id = NULL;
      req.sigfd = -1;
      rc = ak_detached_start (o.name, &req, &id, &err);
      ak_strv_free (o.env);
      if (rc < 0)
        return ak_cli_fail (err);
      printf ("%s\n", id);
      free (id);
      return 0;
    }
  req.sigfd = signal_fd (&old);
  rc = ak_sandbox_exec (o.name, &req, NULL, &code, &err);
  close (req.sigfd);
  sigprocmask (SIG_SETMASK, &old, NULL);
  ak_strv_free (o.env);
  return rc < 0 ? ak_cli_fail (err) : code;
}

static void
record_output (const void *data, size_t len, void *arg)
{
  ak_cast_output (arg, data, len);
}

int
cmd_attach (int argc, char **argv)
{
  exec_opts_t o;
  ak_error_t *err = NULL;
  ak_exec_req_t req = { 0 };
  struct termios saved, raw;
  struct winsize ws = { .ws_row = 24, .ws_col = 80 };
  bool tty = isatty (STDIN_FILENO);
  char *sh[] = { (char *) "/bin/bash", (char *) "-l", NULL };
  ak_cast_t *cast = NULL;
  _cleanup_free_ char *cast_path = NULL;
  int code = 0, rc;
  sigset_t old;

  if (argc > 1 && (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")))
    {
      ak_cli_help_of ("attach", stdout);
      return 0;
    }
  if (parse ("attach", argc, argv, false, &o, &err) < 0)
    {
      ak_strv_free (o.env);
      return ak_cli_fail (err);
    }
  if (o.help)
    {
      ak_strv_free (o.env);
      return ak_cli_help_of ("attach", stdout), 0;
    }
  if (tty && (ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0))
    ws = (struct winsize){ .ws_row = 24, .ws_col = 80 };
  /* The client's terminal type, unless -e set one. */
  if (tty && getenv ("TERM") != NULL && getenv ("TERM")[0] != '\0')
    {
      bool given = false;
      for (char **e = o.env; e && *e; e++)
        given |= !strncmp (*e, "TERM=", 5);
      if (!given)
        {
          _cleanup_free_ char *t = ak_xasprintf ("TERM=%s", getenv ("TERM"));
          ak_strv_push (&o.env, t);
        }
    }
  if (o.record)
    {
      cast_path = o.record_path ? ak_xstrdup (o.record_path) : ak_cast_default_path (o.name);
      cast = cast_path ? ak_cast_open (cast_path, ws.ws_col, ws.ws_row, o.name, "/bin/bash", &err) : NULL;
      if (cast == NULL)
        {
          ak_strv_free (o.env);
          return err ? ak_cli_fail (err) : AK_EXIT_FAILURE;
        }
      req.on_output = record_output;
      req.on_output_arg = cast;
    }
  req.argv = sh;
  req.env = o.env;
  /* A terminal session when stdin is a terminal; otherwise the shell reads
   * stdin as a script and ends at its end (a session on a pseudo-terminal
   * would never see that end). */
  req.tty = tty;
  req.rows = ws.ws_row;
  req.cols = ws.ws_col;
  req.sigfd = signal_fd (&old);
  if (tty)
    {
      /* Raw: every key, Ctrl-C included, goes to the sandbox's terminal. */
      tcgetattr (STDIN_FILENO, &saved);
      raw = saved;
      cfmakeraw (&raw);
      tcsetattr (STDIN_FILENO, TCSANOW, &raw);
    }
  ak_audit ("session_attached", o.name, json_pack ("{s:b}", "record", o.record));
  rc = ak_sandbox_exec (o.name, &req, NULL, &code, &err);
  if (tty)
    tcsetattr (STDIN_FILENO, TCSANOW, &saved);
  close (req.sigfd);
  sigprocmask (SIG_SETMASK, &old, NULL);
  if (cast != NULL)
    {
      ak_cast_close (cast);
      fprintf (stderr, "agentkernel: session recorded in %s\n", cast_path);
    }
  ak_strv_free (o.env);
  return rc < 0 ? ak_cli_fail (err) : code;
}
