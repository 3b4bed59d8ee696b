/* Resource limits through cgroups, v2 or v1, whichever hierarchy holds each
 * controller (hybrid hosts have some in each).
 *
 * A sandbox gets its own group, nested under agentkernel's own so that any
 * limit already placed on agentkernel still applies.  Groups are named
 * agentkernel-<supervisor pid>-<n>; groups whose supervisor is gone (killed
 * with -9) are removed by the next run.  When no writable hierarchy holds a
 * controller (an unprivileged user without delegation), the limits are not
 * enforced and the user is told which, and how to fix it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/util.h"

#define CG_ROOT "/sys/fs/cgroup"

enum { CTL_MEMORY, CTL_PIDS, CTL_CPU, CTL_N };
static const char *const ctl_names[CTL_N] = { "memory", "pids", "cpu" };

/* agentkernel's own path in the hierarchy holding `ctl` (v1), or in the
 * unified hierarchy when ctl is NULL. */
static char *
own_path (const char *ctl)
{
  _cleanup_free_ char *data = NULL;
  char *save = NULL;

  if (ak_read_file ("/proc/self/cgroup", &data, NULL, NULL) < 0)
    return NULL;
  for (char *line = strtok_r (data, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *ctls = strchr (line, ':');
      char *path = ctls ? strchr (ctls + 1, ':') : NULL;
      if (path == NULL)
        continue;
      *path++ = '\0';
      ctls++;
      if (ctl == NULL)
        {
          if (*ctls == '\0')
            return ak_xstrdup (path);
          continue;
        }
      for (char *s2 = NULL, *c = strtok_r (ctls, ",", &s2); c; c = strtok_r (NULL, ",", &s2))
        if (strcmp (c, ctl) == 0)
          return ak_xstrdup (path);
    }
  return NULL;
}

static char *
v2_mount (void)
{
  if (access (CG_ROOT "/cgroup.controllers", F_OK) == 0)
    return ak_xstrdup (CG_ROOT);
  if (access (CG_ROOT "/unified/cgroup.controllers", F_OK) == 0)
    return ak_xstrdup (CG_ROOT "/unified");
  return NULL;
}

static bool
v2_has (const char *mnt, const char *ctl)
{
  _cleanup_free_ char *path = ak_xasprintf ("%s/cgroup.controllers", mnt);
  _cleanup_free_ char *data = NULL;
  size_t n = strlen (ctl);
  if (ak_read_file (path, &data, NULL, NULL) < 0)
    return false;
  for (char *p = data; (p = strstr (p, ctl)) != NULL; p += n)
    if ((p == data || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
      return true;
  return false;
}

/* Remove groups left by supervisors that no longer exist. */
static void
sweep_stale (const char *parent)
{
  DIR *d = opendir (parent);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      int pid;
      if (sscanf (e->d_name, "agentkernel-%d-", &pid) == 1 && kill (pid, 0) < 0 && errno == ESRCH)
        {
          _cleanup_free_ char *p = ak_xasprintf ("%s/%s", parent, e->d_name);
          (void) rmdir (p);
        }
    }
  closedir (d);
}

static char *
make_group (const char *parent, ak_error_t **err)
{
  static unsigned counter;
  char *dir;

  sweep_stale (parent);
  dir = ak_xasprintf ("%s/agentkernel-%d-%u", parent, (int) getpid (), counter++);
  if (mkdir (dir, 0755) < 0)
    {
      ak_error_set (err, errno, "create cgroup %s", dir);
      free (dir);
      return NULL;
    }
  return dir;
}

static int
set (const char *dir, const char *file, const char *value, ak_error_t **err)
{
  _cleanup_free_ char *path = ak_xasprintf ("%s/%s", dir, file);
  return ak_write_string (path, value, err);
}

static int
apply_limit (const char *dir, int ctl, bool v2, const ak_resources_t *res, ak_error_t **err)
{
  char buf[64];
  switch (ctl)
    {
    case CTL_MEMORY:
      snprintf (buf, sizeof buf, "%llu", res->memory_mb * 1024ULL * 1024ULL);
      if (v2)
        {
          if (set (dir, "memory.max", buf, err) < 0)
            return -1;
          /* No swap: the limit is what the sandbox gets. */
          (void) set (dir, "memory.swap.max", "0", NULL);
          return 0;
        }
      if (set (dir, "memory.limit_in_bytes", buf, err) < 0)
        return -1;
      (void) set (dir, "memory.memsw.limit_in_bytes", buf, NULL);
      return 0;
    case CTL_PIDS:
      snprintf (buf, sizeof buf, "%u", res->pids);
      return set (dir, "pids.max", buf, err);
    case CTL_CPU:
      if (v2)
        {
          snprintf (buf, sizeof buf, "%u 100000", res->cpu_millis * 100);
          return set (dir, "cpu.max", buf, err);
        }
      if (set (dir, "cpu.cfs_period_us", "100000", err) < 0)
        return -1;
      snprintf (buf, sizeof buf, "%u", res->cpu_millis * 100);
      return set (dir, "cpu.cfs_quota_us", buf, err);
    }
  return 0;
}

/* Find or create the v2 group for this sandbox, with controllers enabled. */
static char *
v2_group (const char *mnt, const bool want[CTL_N], ak_error_t **err)
{
  _cleanup_free_ char *own = own_path (NULL);
  _cleanup_free_ char *parent = NULL;
  char ctrl[64] = "";

  for (int c = 0; c < CTL_N; c++)
    if (want[c])
      {
        strcat (ctrl, "+");
        strcat (ctrl, ctl_names[c]);
        strcat (ctrl, " ");
      }
  /* Nest under our own group when it can delegate; otherwise (it holds
   * processes, the no-internal-process rule) under a top-level group. */
  parent = ak_xasprintf ("%s%s", mnt, own && strcmp (own, "/") != 0 ? own : "");
  if (own == NULL || strcmp (own, "/") == 0 || set (parent, "cgroup.subtree_control", ctrl, NULL) < 0)
    {
      free (parent);
      parent = ak_xasprintf ("%s/agentkernel", mnt);
      if (mkdir (parent, 0755) < 0 && errno != EEXIST)
        return ak_error_set (err, errno, "create cgroup %s", parent), NULL;
      if (set (mnt, "cgroup.subtree_control", ctrl, err) < 0
          || set (parent, "cgroup.subtree_control", ctrl, err) < 0)
        return NULL;
    }
  return make_group (parent, err);
}

int
ak_cgroup_create (const ak_spec_t *spec, ak_cgroup_t *cg, ak_error_t **err)
{
  bool want[CTL_N] = { spec->res.memory_mb > 0, spec->res.pids > 0, spec->res.cpu_millis > 0 };
  bool v2ctl[CTL_N] = { false };
  bool any_v2 = false;
  _cleanup_free_ char *v2 = v2_mount ();
  char missing[128] = "";
  ak_error_t *why = NULL;

  memset (cg, 0, sizeof (*cg));
  if (ak_test_disabled ("cgroup"))
    {
      for (int c = 0; c < CTL_N; c++)
        if (want[c])
          strcat (missing, missing[0] ? ", " : ""), strcat (missing, ctl_names[c]);
      if (missing[0])
        ak_warn ("resource limits NOT enforced (%s): cgroups disabled by AK_TEST_DISABLE", missing);
      return 0;
    }
  for (int c = 0; c < CTL_N; c++)
    if (want[c] && v2 != NULL && v2_has (v2, ctl_names[c]))
      v2ctl[c] = any_v2 = true;

  if (any_v2)
    {
      char *dir = v2_group (v2, v2ctl, &why);
      for (int c = 0; c < CTL_N; c++)
        if (v2ctl[c] && (dir == NULL || apply_limit (dir, c, true, &spec->res, &why) < 0))
          strcat (missing, missing[0] ? ", " : ""), strcat (missing, ctl_names[c]);
      if (dir != NULL)
        cg->paths[cg->n++] = dir;
    }
  for (int c = 0; c < CTL_N; c++)
    {
      _cleanup_free_ char *own = NULL;
      _cleanup_free_ char *parent = NULL;
      char *dir;
      if (!want[c] || v2ctl[c])
        continue;
      own = own_path (ctl_names[c]);
      parent = own ? ak_xasprintf (CG_ROOT "/%s%s", ctl_names[c], strcmp (own, "/") ? own : "") : NULL;
      dir = parent ? make_group (parent, &why) : NULL;
      if (dir == NULL || apply_limit (dir, c, false, &spec->res, &why) < 0)
        {
          if (dir != NULL)
            (void) rmdir (dir);
          free (dir);
          strcat (missing, missing[0] ? ", " : "");
          strcat (missing, ctl_names[c]);
          continue;
        }
      cg->paths[cg->n++] = dir;
    }
  if (missing[0])
    ak_warn ("resource limits NOT enforced for: %s (%s). Run agentkernel as root, or give this user "
             "a delegated cgroup v2 subtree (systemd-run --user --scope -p Delegate=yes agentkernel "
             "...)",
             missing, why ? why->msg : "controller not available");
  ak_error_free (why);
  (void) err;
  return 0;
}

int
ak_cgroup_attach (const ak_cgroup_t *cg, pid_t pid, ak_error_t **err)
{
  char buf[32];
  snprintf (buf, sizeof buf, "%d", (int) pid);
  for (size_t i = 0; i < cg->n; i++)
    if (set (cg->paths[i], "cgroup.procs", buf, err) < 0)
      return ak_error_prefix (err, "join cgroup");
  return 0;
}

void
ak_cgroup_destroy (ak_cgroup_t *cg)
{
  for (size_t i = 0; i < cg->n; i++)
    {
      /* The last tasks may still be exiting; v1 refuses rmdir until then. */
      for (int tries = 0; tries < 100; tries++)
        {
          if (rmdir (cg->paths[i]) == 0 || errno != EBUSY)
            break;
          nanosleep (&(struct timespec){ .tv_nsec = 2000000 }, NULL);
        }
      free (cg->paths[i]);
    }
  cg->n = 0;
}

static void
probe_warn (const char *msg, void *data)
{
  char **out = data;
  free (*out);
  *out = ak_xstrdup (msg);
}

bool
ak_cgroup_probe (char **detail)
{
  ak_spec_t spec;
  ak_cgroup_t cg;
  char *warned = NULL;
  _cleanup_free_ char *v2 = v2_mount ();
  bool ok;

  /* The very path a sandbox takes, its warning captured. */
  ak_spec_init (&spec);
  spec.res.memory_mb = 64;
  spec.res.pids = 64;
  spec.res.cpu_millis = 500;
  ak_set_warn_handler (probe_warn, &warned);
  ak_cgroup_create (&spec, &cg, NULL);
  ak_set_warn_handler (NULL, NULL);
  ak_cgroup_destroy (&cg);
  ak_spec_clear (&spec);
  ok = warned == NULL;
  if (ok)
    *detail = ak_xasprintf ("cgroup %s: memory, pids and cpu limits enforced", v2 ? "v2" : "v1");
  else
    *detail = ak_xasprintf ("cgroup %s: %s", v2 ? "v2" : "v1", warned);
  free (warned);
  return ok;
}
