/* agentkernel run: one command in a new sandbox, removed afterwards. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/image.h"
#include "service/pool.h"
#include "service/sandbox.h"
#include "cli/cli.h"
#include "model/spec_json.h"
#include "common/fsutil.h"
#include "common/cleanup.h"
#include "common/util.h"

typedef struct run_opts {
  bool keep, branch;
  long long ttl;
} run_opts_t;

/* run --keep / --branch: the command in a persistent sandbox, left running.
 * With --branch an existing sandbox of that name is reused (started when
 * stopped), its own settings unchanged. */
static int
run_kept (ak_spec_t *spec, const run_opts_t *o, ak_error_t **err)
{
  ak_record_t rec = { 0 };
  ak_exec_req_t req = { .sigfd = -1 };
  char **argv = spec->argv;
  int code = 0;
  bool exists = false;

  if (spec->name == NULL)
    {
      unsigned r;
      if (getentropy (&r, sizeof r) < 0)
        r = (unsigned) getpid ();
      spec->name = ak_xasprintf ("run-%08x", r);
    }
  if (o->branch && ak_store_load (spec->name, &rec, NULL) == 0)
    {
      /* Reused only as what was asked for now: the same project (a name
       * derived from a repository's files can collide) and the same
       * settings, never a sandbox with other isolation. */
      _cleanup_free_ char *want = ak_spec_pool_key (spec);
      _cleanup_free_ char *have = ak_spec_pool_key (&rec.spec);
      bool same_dir = rec.spec.cwd != NULL && spec->cwd != NULL && strcmp (rec.spec.cwd, spec->cwd) == 0;
      if (!same_dir || want == NULL || have == NULL || strcmp (want, have) != 0)
        {
          ak_error_set (err, 0,
                        "sandbox %s exists %s; run it with the options it was created with, or "
                        "'agentkernel remove --force %s' first",
                        spec->name, same_dir ? "with other settings" : "for another directory", spec->name);
          ak_record_clear (&rec);
          return -1;
        }
      exists = true;
      fprintf (stderr, "agentkernel: reusing sandbox %s (with the settings it was created with)\n", spec->name);
      if (!ak_sandbox_running (&rec) && ak_sandbox_start (spec->name, err) < 0)
        {
          ak_record_clear (&rec);
          return -1;
        }
      ak_record_clear (&rec);
    }
  if (!exists)
    {
      spec->argv = NULL;
      if (ak_sandbox_create (spec, &rec, err) < 0)
        {
          spec->argv = argv;
          ak_record_clear (&rec);
          return -1;
        }
      ak_record_clear (&rec);
      spec->argv = argv;
      if ((o->ttl > 0 && ak_cli_set_ttl (spec->name, o->ttl, err) < 0) || ak_sandbox_start (spec->name, err) < 0)
        return -1;
    }
  if (argv == NULL || argv[0] == NULL)
    {
      fprintf (stderr, "agentkernel: sandbox %s running (agentkernel exec %s -- ...)\n", spec->name, spec->name);
      return 0;
    }
  req.argv = argv;
  if (ak_sandbox_exec (spec->name, &req, NULL, &code, err) < 0)
    return -1;
  fprintf (stderr, "agentkernel: kept sandbox %s (agentkernel exec %s -- ...; agentkernel remove --force %s)\n",
           spec->name, spec->name, spec->name);
  return code;
}

/* A file named on the command line: a plain name (or ./name) of a regular
 * file in the current directory, not a symlink, shown read-only at the
 * same name in the working directory inside when the profile does not show
 * the current directory (README: `run --profile restrictive python3
 * untrusted_script.py`). */
static int
show_named_files (ak_spec_t *spec, ak_error_t **err)
{
  const char *wd;
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD) || spec->argv == NULL || spec->cwd == NULL)
    return 0;
  wd = ak_spec_default_workdir (spec, spec->as_root);
  for (char **a = spec->argv; *a; a++)
    {
      const char *name = strncmp (*a, "./", 2) == 0 ? *a + 2 : *a;
      struct stat st;
      _cleanup_free_ char *host = NULL;
      _cleanup_free_ char *vol = NULL;
      bool seen = false;
      if (name[0] == '\0' || name[0] == '-' || strchr (name, '/') || strchr (name, ':') || !strcmp (name, ".")
          || !strcmp (name, ".."))
        continue;
      host = ak_xasprintf ("%s/%s", spec->cwd, name);
      if (lstat (host, &st) < 0 || !S_ISREG (st.st_mode))
        continue;
      vol = ak_xasprintf ("%s:%s%s%s:ro", host, wd, strcmp (wd, "/") ? "/" : "", name);
      for (size_t i = 0; i < spec->n_mounts; i++)
        if (!strcmp (spec->mounts[i].source, host))
          seen = true;
      if (!seen)
        {
          /* Pinned now, and only if what the path resolves to is still the
           * regular file looked at (a name swapped for a link in between
           * would show the link's target). */
          ak_mount_t *m;
          int fd;
          if (ak_spec_add_mount (spec, vol, err) < 0)
            return -1;
          m = &spec->mounts[spec->n_mounts - 1];
          fd = ak_fs_pin (m->source, &m->pin, &m->source, err);
          if (fd < 0)
            return -1;
          close (fd);
          if (m->pin.type != S_IFREG || m->pin.dev != (unsigned long long) st.st_dev
              || m->pin.ino != (unsigned long long) st.st_ino)
            return ak_error_set (err, 0, "%s changed while it was being shown to the sandbox", host);
        }
    }
  return 0;
}

int
cmd_run (int argc, char **argv)
{
  ak_cli_sandbox_t flags = { 0 };
  ak_spec_t spec;
  ak_error_t *err = NULL;
  int i, status = 0, rc;
  run_opts_t o = { 0 };
  const char *ttl = NULL;
  static ak_cli_progress_t prog;

  for (i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--") == 0)
        {
          i++;
          break;
        }
      if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        {
          ak_cli_help_of ("run", stdout);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      if (strcmp (a, "--version") == 0)
        {
          printf ("agentkernel %s\n", AK_VERSION);
          ak_cli_sandbox_free (&flags);
          return 0;
        }
      if (a[0] != '-' || a[1] == '\0')
        break;
      if (strcmp (a, "--keep") == 0 || strcmp (a, "-k") == 0)
        {
          o.keep = true;
          continue;
        }
      if (strcmp (a, "--fast") == 0 || strcmp (a, "-F") == 0)
        continue; /* accepted: every start here is the fast one */
      if (strcmp (a, "--branch") == 0)
        {
          o.branch = true;
          continue;
        }
      if (strcmp (a, "--ttl") == 0 || strncmp (a, "--ttl=", 6) == 0)
        {
          if (a[5] == '=')
            ttl = a + 6;
          else if (i + 1 < argc)
            ttl = argv[++i];
          else
            {
              ak_cli_sandbox_free (&flags);
              return ak_cli_usage_error ("run", "option --ttl needs a value");
            }
          continue;
        }
      rc = ak_cli_sandbox_flag (&flags, argc, argv, &i, &err);
      if (rc < 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_fail (err);
        }
      if (rc == 0)
        {
          ak_cli_sandbox_free (&flags);
          return ak_cli_usage_error ("run", "unknown option '%s'", a);
        }
    }
  /* A pool front takes plain runs only (service/pool.h). */
  if ((o.keep || o.branch) && ak_pool_front_active ())
    {
      ak_cli_sandbox_free (&flags);
      return 0;
    }
  if (flags.name != NULL && !o.keep && !o.branch)
    {
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("run", "--name names a kept sandbox: add --keep (a plain run is removed)");
    }
  if (flags.name != NULL && o.branch)
    {
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("run", "--branch names the sandbox itself: drop --name");
    }
  if (ttl != NULL && !o.keep && !o.branch)
    {
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("run", "--ttl applies to a kept sandbox: add --keep");
    }
  if (ttl != NULL && ak_cli_parse_duration (ttl, &o.ttl, &err) < 0)
    {
      ak_cli_sandbox_free (&flags);
      ak_error_prefix (&err, "--ttl");
      return ak_cli_fail (err);
    }
  ak_spec_init (&spec);
  spec.argv = ak_strv_dup (argv + i);
  prog.tty = isatty (2) == 1;
  ak_sandbox_set_pull_progress (ak_cli_pull_progress, &prog);
  if (o.branch)
    {
      char *n = ak_cli_branch_name (&err);
      if (n == NULL)
        goto fail;
      free (spec.name);
      spec.name = n;
    }
  /* No command: --agent's program, the config's preferred agent, or an
   * image's default command (the host has none). */
  if (ak_cli_sandbox_resolve (&flags, &spec, &err) < 0)
    goto fail;
  if ((spec.argv == NULL || spec.argv[0] == NULL) && !ak_spec_wants_image (&spec)
      && strcmp (spec.image, "auto") != 0 && !o.branch)
    {
      ak_spec_clear (&spec);
      ak_cli_sandbox_free (&flags);
      return ak_cli_usage_error ("run", "no command given");
    }
  if (show_named_files (&spec, &err) < 0)
    goto fail;
  if (o.keep || o.branch)
    {
      status = run_kept (&spec, &o, &err);
      if (status < 0)
        goto fail;
      goto done;
    }
  if (ak_sandbox_run (&spec, NULL, "cli", &status, &err) < 0)
    goto fail;
done:
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return status;

fail:
  ak_spec_clear (&spec);
  ak_cli_sandbox_free (&flags);
  return ak_cli_fail (err);
}
