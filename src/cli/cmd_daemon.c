/* agentkernel daemon start|stop|status: the warm pool (service/pool.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/child.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/config.h"
#include "service/pool.h"
#include "service/store.h"

static void
daemon_usage (FILE *out)
{
  fprintf (out,
           "Usage: agentkernel daemon start [--config FILE] [--foreground]\n"
           "       agentkernel daemon stop\n"
           "       agentkernel daemon status [--json]\n\n"
           "Keep sandboxes started and idle so that `run` and the API's /run start in\n"
           "about a millisecond. Each idle sandbox has exactly the isolation of a fresh\n"
           "one of its shape and serves one command; a run whose spec matches no idle\n"
           "sandbox, or that runs while no daemon does, starts cold as usual.\n\n"
           "Shapes and size come from [daemon] in the config file (--config, else\n"
           "./agentkernel.toml):\n"
           "  [daemon]\n"
           "  pool_size = 2\n"
           "  shapes = [{ profile = \"moderate\", image = \"host\" }]\n"
           "Without shapes, the sandbox a plain `run` gets here is pooled.\n\n"
           "Options:\n"
           "      --config FILE   read the shapes (and their settings) from FILE\n"
           "      --foreground    stay in the foreground (logs on stderr)\n"
           "      --json          status as JSON\n"
           "  -h, --help          show this help\n");
}

/* The shapes' specs, resolved as `run --profile P --image I` would be in
 * this directory with this config file. */
static int
build_conf (const char *config, ak_pool_conf_t *conf, ak_error_t **err)
{
  ak_daemon_conf_t d;
  const char *file = config != NULL ? config : access ("agentkernel.toml", F_OK) == 0 ? "agentkernel.toml" : NULL;
  size_t n;

  if (ak_config_daemon (file, &d, err) < 0)
    return -1;
  n = d.n_shapes > 0 ? d.n_shapes : 1;
  conf->size = d.pool_size;
  conf->shapes = ak_xcalloc (n, sizeof (ak_spec_t));
  for (size_t i = 0; i < n; i++)
    {
      const ak_daemon_shape_t *sh = d.n_shapes > 0 ? &d.shapes[i] : NULL;
      ak_cli_sandbox_t flags = { .config = config };
      ak_spec_t *spec = &conf->shapes[conf->n_shapes++];
      int rc;
      ak_spec_init (spec);
      if (sh != NULL)
        {
          flags.profile = sh->profile;
          flags.image = sh->image;
          flags.no_network = sh->network == 0;
        }
      rc = ak_cli_sandbox_resolve (&flags, spec, err);
      ak_cli_sandbox_free (&flags);
      if (rc < 0)
        {
          ak_daemon_conf_clear (&d);
          return ak_error_prefix (err, "[daemon] shape %zu", i + 1);
        }
      if (sh != NULL && sh->network == 1)
        ak_spec_set_security (spec, AK_SEC_NETWORK, true, AK_SRC_CONFIG, 0);
      if (sh != NULL && sh->backend != NULL)
        {
          free (spec->backend);
          spec->backend = ak_xstrdup (sh->backend);
        }
    }
  ak_daemon_conf_clear (&d);
  return 0;
}

static void
conf_clear (ak_pool_conf_t *conf)
{
  for (size_t i = 0; i < conf->n_shapes; i++)
    ak_spec_clear (&conf->shapes[i]);
  free (conf->shapes);
}

static int
daemon_start (const char *config, bool foreground)
{
  ak_pool_conf_t conf = { 0 };
  ak_error_t *err = NULL;
  json_t *st = NULL;
  int rc, value = 0;

  if (ak_pool_status (&st, &err) < 0)
    return ak_cli_fail (err);
  if (st != NULL)
    {
      fprintf (stderr, "agentkernel: a pool daemon already runs (pid %lld)\n",
               (long long) json_integer_value (json_object_get (st, "pid")));
      json_decref (st);
      return 125;
    }
  if (build_conf (config, &conf, &err) < 0)
    {
      conf_clear (&conf);
      return ak_cli_fail (err);
    }
  if (foreground)
    {
      rc = ak_pool_daemon (&conf, -1, &err);
      conf_clear (&conf);
      return rc < 0 ? ak_cli_fail (err) : 0;
    }
  {
    _cleanup_free_ char *root = ak_store_root ();
    _cleanup_free_ char *log = root ? ak_xasprintf ("%s/pool/daemon.log", root) : NULL;
    _cleanup_free_ char *dir = root ? ak_xasprintf ("%s/pool", root) : NULL;
    int p[2], logfd;
    int keep[2];
    ak_worker_t w = { .keep = keep, .n_keep = 2, .detach = true, .null_stdio = true };
    pid_t pid;

    if (root == NULL)
      {
        conf_clear (&conf);
        ak_error_set (&err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME");
        return ak_cli_fail (err);
      }
    (void) mkdir (root, 0700);
    (void) mkdir (dir, 0700);
    logfd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (logfd < 0 || pipe2 (p, O_CLOEXEC) < 0)
      {
        conf_clear (&conf);
        ak_error_set (&err, errno, "%s", log);
        return ak_cli_fail (err);
      }
    keep[0] = p[1], keep[1] = logfd;
    pid = ak_worker_spawn (&w, &err);
    if (pid < 0)
      {
        conf_clear (&conf);
        return ak_cli_fail (err);
      }
    if (pid == 0)
      {
        /* The worker: report on 3, log on 4. */
        dup2 (4, 2);
        close (4);
        if (ak_pool_daemon (&conf, 3, &err) < 0)
          ak_report_fail (3, err);
        _exit (0);
      }
    close (p[1]);
    close (logfd);
    rc = ak_report_read (p[0], "pool daemon", &value, &err);
    close (p[0]);
    conf_clear (&conf);
    if (rc < 0)
      return ak_cli_fail (err);
    printf ("pool daemon started (pid %d, log %s)\n", value, log);
  }
  return 0;
}

static int
daemon_status (bool as_json)
{
  ak_error_t *err = NULL;
  json_t *st = NULL, *shapes, *s;
  size_t i;

  if (ak_pool_status (&st, &err) < 0)
    return ak_cli_fail (err);
  if (st == NULL)
    {
      if (as_json)
        printf ("{\"running\":false}\n");
      else
        printf ("pool daemon: not running (runs start cold)\n");
      return 3;
    }
  if (as_json)
    {
      json_object_set_new (st, "running", json_true ());
      json_dumpf (st, stdout, JSON_INDENT (2));
      printf ("\n");
      json_decref (st);
      return 0;
    }
  printf ("pool daemon: running (pid %lld), %lld idle per shape\n",
          (long long) json_integer_value (json_object_get (st, "pid")),
          (long long) json_integer_value (json_object_get (st, "pool_size")));
  printf ("hits: %lld  misses: %lld (no matching shape: %lld)\n",
          (long long) json_integer_value (json_object_get (st, "hits")),
          (long long) json_integer_value (json_object_get (st, "misses")),
          (long long) json_integer_value (json_object_get (st, "unmatched")));
  printf ("fronts: %lld idle, %lld runs taken\n",
          (long long) json_integer_value (json_object_get (st, "fronts_idle")),
          (long long) json_integer_value (json_object_get (st, "fronts_served")));
  printf ("%-10s %-12s %-24s %-8s %5s %9s %6s %7s\n", "BACKEND", "PROFILE", "IMAGE", "NETWORK", "IDLE",
          "STARTING", "HITS", "MISSES");
  shapes = json_object_get (st, "shapes");
  json_array_foreach (shapes, i, s)
    {
      const char *e = json_string_value (json_object_get (s, "last_error"));
      printf ("%-10s %-12s %-24s %-8s %5lld %9lld %6lld %7lld\n",
              json_string_value (json_object_get (s, "backend")),
              json_string_value (json_object_get (s, "profile")),
              json_string_value (json_object_get (s, "image")),
              json_is_true (json_object_get (s, "network")) ? "on" : "off",
              (long long) json_integer_value (json_object_get (s, "idle")),
              (long long) json_integer_value (json_object_get (s, "starting")),
              (long long) json_integer_value (json_object_get (s, "hits")),
              (long long) json_integer_value (json_object_get (s, "misses")));
      if (e != NULL)
        printf ("  last error: %s\n", e);
    }
  json_decref (st);
  return 0;
}

int
ak_cli_daemon_ensure (void)
{
  ak_error_t *err = NULL;
  json_t *st = NULL;
  if (ak_pool_status (&st, &err) < 0)
    return ak_cli_fail (err);
  if (st != NULL)
    {
      json_decref (st);
      return 0;
    }
  return daemon_start (NULL, false);
}

int
cmd_daemon (int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL, *config = NULL;
  bool foreground = false, as_json = false;
  ak_error_t *err = NULL;

  if (sub == NULL)
    return ak_cli_usage_error ("daemon", "missing subcommand (start, stop or status)");
  if (strcmp (sub, "--help") == 0 || strcmp (sub, "-h") == 0)
    {
      daemon_usage (stdout);
      return 0;
    }
  for (int i = 2; i < argc; i++)
    {
      if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          daemon_usage (stdout);
          return 0;
        }
      if (strcmp (sub, "start") == 0 && strcmp (argv[i], "--config") == 0 && i + 1 < argc)
        config = argv[++i];
      else if (strcmp (sub, "start") == 0 && strcmp (argv[i], "--foreground") == 0)
        foreground = true;
      else if (strcmp (sub, "status") == 0 && strcmp (argv[i], "--json") == 0)
        as_json = true;
      else
        return ak_cli_usage_error ("daemon", "unknown option '%s'", argv[i]);
    }
  if (strcmp (sub, "start") == 0)
    return daemon_start (config, foreground);
  if (strcmp (sub, "status") == 0)
    return daemon_status (as_json);
  if (strcmp (sub, "stop") == 0)
    {
      int rc = ak_pool_stop (&err);
      if (rc < 0)
        return ak_cli_fail (err);
      printf (rc == 1 ? "pool daemon: not running\n" : "pool daemon stopped\n");
      return 0;
    }
  return ak_cli_usage_error ("daemon", "unknown subcommand '%s' (start, stop or status)", sub);
}
