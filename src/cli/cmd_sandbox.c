/* agentkernel sandbox VERB (sb VERB), and the verbs only the group had:
 * info, extend-ttl, gc, clean, export. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"
#include "service/sandbox.h"

int
cmd_sandbox (int argc, char **argv)
{
  const ak_cli_cmd_t *c;
  if (argc < 2 || !strcmp (argv[1], "--help") || !strcmp (argv[1], "-h"))
    {
      ak_cli_help_of ("sandbox", argc < 2 ? stderr : stdout);
      return argc < 2 ? AK_EXIT_FAILURE : 0;
    }
  c = ak_cli_cmd_find (argv[1]);
  if (c == NULL || !(c->flags & AK_CMD_GROUP))
    return ak_cli_usage_error ("sandbox", "unknown verb '%s'", argv[1]);
  return c->fn (argc - 1, argv + 1);
}

static bool
wants_help (int argc, char **argv, const char *cmd)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
      {
        ak_cli_help_of (cmd, stdout);
        return true;
      }
  return false;
}

static int
bad_name (const char *name)
{
  ak_error_t *err = NULL;
  ak_error_set (&err, 0, "invalid sandbox name '%s' (1-63 of letters, digits, '-', '_')", name);
  return ak_cli_fail (err);
}

static void
rfc3339 (long long t, char out[32])
{
  time_t tt = (time_t) t;
  struct tm tm;
  gmtime_r (&tt, &tm);
  strftime (out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
cmd_info (int argc, char **argv)
{
  const char *name = NULL;
  bool json = false;
  ak_record_t r = { 0 };
  ak_error_t *err = NULL;
  char exp[32] = "never";
  const ak_spec_t *s;
  char *ip = NULL;

  if (wants_help (argc, argv, "info"))
    return 0;
  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--json"))
        json = true;
      else if (argv[i][0] == '-' || name != NULL)
        return ak_cli_usage_error ("info", "unexpected argument '%s'", argv[i]);
      else
        name = argv[i];
    }
  if (name == NULL)
    return ak_cli_usage_error ("info", "no sandbox name given");
  if (!ak_name_valid (name))
    return bad_name (name);
  if (ak_store_load (name, &r, &err) < 0)
    return ak_cli_fail (err);
  s = &r.spec;
  ip = ak_sandbox_address (&r);
  if (r.expires_at > 0)
    rfc3339 (r.expires_at, exp);
  if (json)
    {
      json_t *o = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:{s:I, s:f, s:i, s:i}, s:s, s:b}",
                             "name", r.name, "uuid", r.uuid, "status", ak_sandbox_status (&r), "profile",
                             ak_profile_name (s->sec.profile), "image", s->image, "backend", s->backend,
                             "created", r.created, "expires_at", r.expires_at > 0 ? json_string (exp) : json_null (),
                             "limits", "memory_mb", (json_int_t) s->res.memory_mb, "cpus", s->res.cpu_millis / 1000.0,
                             "pids", (int) s->res.pids, "disk_mb", (int) s->res.disk_mb, "workdir",
                             ak_spec_default_workdir (s, false), "network", ak_spec_sec (s, AK_SEC_NETWORK));
      json_t *m = json_array ();
      for (size_t i = 0; i < s->n_mounts; i++)
        json_array_append_new (m, json_pack ("{s:s, s:s, s:b}", "source", s->mounts[i].source, "dest",
                                             s->mounts[i].dest, "read_only", s->mounts[i].read_only));
      json_object_set_new (o, "volumes", m);
      json_object_set_new (o, "labels", ak_labels_json (r.labels));
      if (r.description != NULL)
        json_object_set_new (o, "description", json_string (r.description));
      if (ip != NULL)
        json_object_set_new (o, "ip", json_string (ip));
      json_dumpf (o, stdout, JSON_INDENT (2));
      putchar ('\n');
      json_decref (o);
    }
  else
    {
      printf ("Name:     %s\nUUID:     %s\nStatus:   %s\nProfile:  %s\nImage:    %s\nBackend:  %s\n"
              "Network:  %s\nWorkdir:  %s\nCreated:  %s\nExpires:  %s\n",
              r.name, r.uuid, ak_sandbox_status (&r), ak_profile_name (s->sec.profile), s->image, s->backend,
              ak_spec_sec (s, AK_SEC_NETWORK) ? "yes" : "none (loopback only)", ak_spec_default_workdir (s, false),
              r.created, exp);
      printf ("Limits:   memory ");
      s->res.memory_mb ? printf ("%llu MiB", s->res.memory_mb) : printf ("none");
      printf (", cpus ");
      s->res.cpu_millis ? printf ("%.3g", s->res.cpu_millis / 1000.0) : printf ("none");
      printf (", pids ");
      s->res.pids ? printf ("%u", s->res.pids) : printf ("none");
      printf (", disk ");
      s->res.disk_mb ? printf ("%u MiB\n", s->res.disk_mb) : printf ("none\n");
      for (size_t i = 0; i < s->n_mounts; i++)
        printf ("Volume:   %s -> %s%s\n", s->mounts[i].source, s->mounts[i].dest, s->mounts[i].read_only ? " (ro)" : "");
      if (ip != NULL)
        printf ("IP:       %s\n", ip);
      for (char **l = r.labels; l != NULL && *l != NULL; l++)
        printf ("Label:    %s\n", *l);
      if (r.description != NULL)
        printf ("About:    %s\n", r.description);
    }
  free (ip);
  ak_record_clear (&r);
  return 0;
}

int
cmd_extend_ttl (int argc, char **argv)
{
  const char *name = NULL, *by = "1h";
  long long secs, until;
  ak_error_t *err = NULL;
  char when[32];

  if (wants_help (argc, argv, "extend-ttl"))
    return 0;
  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--by") && i + 1 < argc)
        by = argv[++i];
      else if (!strncmp (argv[i], "--by=", 5))
        by = argv[i] + 5;
      else if (argv[i][0] == '-' || name != NULL)
        return ak_cli_usage_error ("extend-ttl", "unexpected argument '%s'", argv[i]);
      else
        name = argv[i];
    }
  if (name == NULL)
    return ak_cli_usage_error ("extend-ttl", "no sandbox name given");
  if (!ak_name_valid (name))
    return bad_name (name);
  if (ak_cli_parse_duration (by, &secs, &err) < 0)
    {
      ak_error_prefix (&err, "--by");
      return ak_cli_fail (err);
    }
  if (ak_sandbox_extend (name, secs, &until, &err) < 0)
    return ak_cli_fail (err);
  rfc3339 (until, when);
  printf ("%s expires at %s\n", name, when);
  return 0;
}

int
cmd_gc (int argc, char **argv)
{
  int n;
  if (wants_help (argc, argv, "gc"))
    return 0;
  if (argc > 1)
    return ak_cli_usage_error ("gc", "unexpected argument '%s'", argv[1]);
  n = ak_sandbox_remove_expired ((long long) time (NULL));
  printf ("removed %d expired sandbox%s\n", n, n == 1 ? "" : "es");
  return 0;
}

int
cmd_clean (int argc, char **argv)
{
  bool yes = false, dry = false;
  ak_record_t *recs = NULL;
  size_t n = 0, n_stopped = 0;
  ak_error_t *err = NULL;
  int rc = 0;

  if (wants_help (argc, argv, "clean"))
    return 0;
  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--yes") || !strcmp (argv[i], "-y") || !strcmp (argv[i], "--force")
          || !strcmp (argv[i], "-f"))
        yes = true;
      else if (!strcmp (argv[i], "--dry-run") || !strcmp (argv[i], "-n"))
        dry = true;
      else
        return ak_cli_usage_error ("clean", "unexpected argument '%s'", argv[i]);
    }
  if (ak_store_list (&recs, &n, &err) < 0)
    return ak_cli_fail (err);
  for (size_t i = 0; i < n; i++)
    if (recs[i].load_error != NULL || !ak_sandbox_running (&recs[i]))
      {
        printf ("%s%s\n", dry || !yes ? "" : "removing ", recs[i].name);
        n_stopped++;
      }
  if (n_stopped == 0 || dry)
    goto out;
  if (!yes)
    {
      char line[16] = "";
      if (!isatty (STDIN_FILENO))
        {
          ak_error_set (&err, 0, "clean: %zu stopped sandbox%s would be removed; confirm with --yes", n_stopped,
                        n_stopped == 1 ? "" : "es");
          rc = ak_cli_fail (err);
          goto out;
        }
      fprintf (stderr, "Remove these %zu stopped sandbox%s and their files? [y/N] ", n_stopped, n_stopped == 1 ? "" : "es");
      if (fgets (line, sizeof line, stdin) == NULL || (line[0] != 'y' && line[0] != 'Y'))
        {
          fprintf (stderr, "agentkernel: nothing removed\n");
          rc = 1;
          goto out;
        }
    }
  for (size_t i = 0; i < n; i++)
    {
      if (recs[i].load_error == NULL && ak_sandbox_running (&recs[i]))
        continue;
      /* Never force: one started meanwhile is left alone. */
      if (ak_sandbox_remove (recs[i].name, false, &err) < 0)
        {
          rc = ak_cli_fail (err);
          err = NULL;
        }
    }
out:
  ak_store_list_free (recs, n);
  return rc;
}

int
cmd_export (int argc, char **argv)
{
  const char *name = NULL, *output = NULL, *path = NULL;
  ak_record_t r = { 0 };
  ak_error_t *err = NULL;
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = -1;
  long long bytes = 0;
  int rc;

  if (wants_help (argc, argv, "export"))
    return 0;
  for (int i = 1; i < argc; i++)
    {
      if ((!strcmp (argv[i], "-o") || !strcmp (argv[i], "--output")) && i + 1 < argc)
        output = argv[++i];
      else if (!strncmp (argv[i], "--output=", 9))
        output = argv[i] + 9;
      else if (!strcmp (argv[i], "--path") && i + 1 < argc)
        path = argv[++i];
      else if (argv[i][0] == '-' || name != NULL)
        return ak_cli_usage_error ("export", "unexpected argument '%s'", argv[i]);
      else
        name = argv[i];
    }
  if (name == NULL)
    return ak_cli_usage_error ("export", "no sandbox name given");
  if (!ak_name_valid (name))
    return bad_name (name);
  if (path != NULL && path[0] != '/')
    return ak_cli_usage_error ("export", "--path must be absolute");
  if (output == NULL && isatty (STDOUT_FILENO))
    return ak_cli_usage_error ("export", "standard output is a terminal: give -o FILE, or redirect it");
  if (ak_store_load (name, &r, &err) < 0)
    return ak_cli_fail (err);
  if (path == NULL)
    path = ak_spec_default_workdir (&r.spec, false);
  if (output != NULL)
    {
      /* Written beside the target and renamed: a failed export leaves no
       * half archive under the name asked for. */
      tmp = ak_xasprintf ("%s.partial-%d", output, (int) getpid ());
      fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0)
        {
          ak_error_set (&err, errno, "%s", output);
          ak_record_clear (&r);
          return ak_cli_fail (err);
        }
    }
  rc = ak_sandbox_export (name, path, output ? fd : STDOUT_FILENO, &bytes, &err);
  if (rc == 0 && output != NULL && (fsync (fd) < 0 || rename (tmp, output) < 0))
    rc = ak_error_set (&err, errno, "%s", output);
  if (rc < 0 && tmp != NULL)
    unlink (tmp);
  ak_record_clear (&r);
  if (rc < 0)
    return ak_cli_fail (err);
  if (output != NULL)
    fprintf (stderr, "agentkernel: %s:%s exported to %s (%lld bytes)\n", name, path, output, bytes);
  return 0;
}
