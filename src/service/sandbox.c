/* Persistent sandbox lifecycle: create, start, stop, remove. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"
#include "model/spec_json.h"
#include "service/audit.h"
#include "service/image.h"
#include "service/pool.h"
#include "service/sandbox.h"

bool
ak_sandbox_running (const ak_record_t *r)
{
  return r->supervisor_pid > 0 && ak_store_supervisor_alive (r);
}

const char *
ak_sandbox_status (const ak_record_t *r)
{
  return ak_sandbox_running (r) ? "running" : "stopped";
}

/* What no sandbox may see of agentkernel's own files, wherever a share puts
 * them (see ak_spec_t.private_paths). */
static char **
private_paths (void)
{
  return ak_store_private_paths (getenv ("AGENTKERNEL_AUDIT_LOG") != NULL ? ak_audit_path () : NULL);
}

/* The egress policy's decisions, in the audit log. */
static void
net_audit (const char *event, const char *sandbox, json_t *fields)
{
  (void) ak_audit (event, sandbox, fields);
}

/* A front's run (service/pool.h): its command_started record is written
 * once the warm sandbox has the command. */
static struct {
  void (*on_started) (void);
  const ak_spec_t *spec;
  const char *via;
} front;

void
ak_pool_front_begin (void (*on_started) (void))
{
  front.on_started = on_started;
  front.via = "cli";
}

bool
ak_pool_front_active (void)
{
  return front.via != NULL;
}

static void
front_started (void)
{
  ak_audit_command (AK_AUDIT_COMMAND_STARTED, front.spec->name, front.spec->argv,
                    json_pack ("{s:s, s:s}", "profile", ak_profile_name (front.spec->sec.profile), "via",
                               front.via));
  if (front.on_started != NULL)
    front.on_started ();
}

int
ak_sandbox_run (const ak_spec_t *spec, const ak_stdio_t *stdio, const char *via, int *status,
                ak_error_t **err)
{
  const ak_backend_t *b = ak_backend_lookup (spec->backend, err);
  ak_spec_t s, img;
  _cleanup_free_ char *home = NULL;
  _cleanup_close_ int hold = -1;
  bool own = false;
  int rc;

  if (b == NULL)
    return -1;
  /* A front leaves images (a pull, a lock) to a cold start. */
  if (ak_pool_front_active () && spec->image != NULL
      && (ak_spec_wants_image (spec) || strcmp (spec->image, "auto") == 0))
    return 1;
  /* An image: resolved (pulled when absent) into a copy of the caller's
   * spec, its layers held in use until the run ends. */
  if (spec->image != NULL && (ak_spec_wants_image (spec) || strcmp (spec->image, "auto") == 0))
    {
      json_t *j = ak_spec_to_json (spec);
      rc = ak_spec_from_json (j, &img, err);
      json_decref (j);
      if (rc < 0)
        return -1;
      own = true;
      if (ak_sandbox_image_prepare (&img, err) < 0 || ak_sandbox_image_dirs (&img, &hold, err) < 0)
        {
          ak_spec_clear (&img);
          return -1;
        }
      spec = &img;
    }
  /* On record before the sandbox exists: a run (or the server running it)
   * killed with SIGKILL never gets to write command_executed. */
  if (!ak_pool_front_active ())
    ak_audit_command (AK_AUDIT_COMMAND_STARTED, spec->name, spec->argv,
                      json_pack ("{s:s, s:s}", "profile", ak_profile_name (spec->sec.profile), "via", via));
  /* The caller's spec, with what it must hide and its home canonical (as a
   * created sandbox's is), so that shares and hidden paths compare.  A
   * warm sandbox was built with its own (the daemon's); a claim needs them
   * only to check the workspace it brings, so a claim without one does
   * without (they cost a directory walk and a dozen system calls). */
  s = *spec;
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    s.private_paths = private_paths ();
  ak_backend_audit_hook = net_audit;
  if (s.home != NULL && (home = realpath (s.home, NULL)) != NULL)
    s.home = home;
  /* A warm sandbox of exactly this spec when a pool daemon has one, else
   * a cold start. */
  if (ak_pool_front_active ())
    {
      front.spec = spec;
      front.via = via;
      ak_backend_claim_started_hook = front_started;
    }
  rc = ak_pool_try_run (b, &s, stdio, status, err);
  if (rc == 0 && !ak_pool_front_active ())
    {
      if (s.private_paths == NULL)
        s.private_paths = private_paths ();
      s.shared_paths = ak_store_shared_paths ();
      rc = b->run (&s, stdio, status, err);
    }
  else if (rc > 0)
    rc = 0;
  else if (rc == 0)
    rc = 1; /* a front's run not taken: nothing happened */
  ak_backend_claim_started_hook = NULL;
  ak_strv_free (s.private_paths);
  s.private_paths = NULL;
  ak_strv_free (s.shared_paths);
  s.shared_paths = NULL;
  if (rc == 1)
    return 1;
  if (rc < 0)
    ak_audit_command (AK_AUDIT_COMMAND_EXECUTED, spec->name, spec->argv,
                      json_pack ("{s:n, s:s, s:s}", "exit_code", "error", (*err)->msg, "via", via));
  else
    ak_audit_command (AK_AUDIT_COMMAND_EXECUTED, spec->name, spec->argv,
                      json_pack ("{s:i, s:s}", "exit_code", *status, "via", via));
  if (own)
    ak_spec_clear (&img);
  return rc;
}

int
ak_sandbox_doctor (const char *backend, ak_host_check_fn report, void *data, ak_error_t **err)
{
  const ak_backend_t *b = ak_backend_lookup (backend, err);
  if (b == NULL)
    return -1;
  if (b->doctor != NULL)
    b->doctor (report, data);
  return 0;
}

int
ak_sandbox_check_backend (const ak_spec_t *spec, ak_error_t **err)
{
  return ak_backend_lookup (spec->backend, err) != NULL ? 0 : -1;
}

static _Atomic (ak_sandbox_observer_fn) observer;

void
ak_sandbox_set_observer (ak_sandbox_observer_fn fn)
{
  observer = fn;
}

void
ak_sandbox_notify (const char *event, const char *name)
{
  ak_sandbox_observer_fn fn = observer;
  if (fn != NULL)
    fn (event, name);
}

int
ak_sandbox_create (ak_spec_t *spec, ak_record_t *out, ak_error_t **err)
{
  const ak_backend_t *b = ak_backend_lookup (spec->backend, err);
  if (b == NULL)
    return -1;
  if (spec->name == NULL || !ak_name_valid (spec->name))
    return ak_error_set (err, 0, "invalid sandbox name '%s' (1-63 of letters, digits, '-', '_')",
                         spec->name ? spec->name : "");
  /* The image resolved now (pulled when absent) is the one every start
   * runs; what each host source is now is what every start must find. */
  if (ak_sandbox_image_prepare (spec, err) < 0 || ak_sandbox_image_dirs (spec, NULL, err) < 0)
    return -1;
  /* What the host cannot give this sandbox is said now, not at start. */
  if (b->check != NULL && b->check (spec, err) < 0)
    return -1;
  if (ak_spec_pin_sources (spec, err) < 0 || ak_store_create (spec, out, err) < 0)
    return -1;
  ak_audit ("sandbox_created", spec->name,
            json_pack ("{s:s, s:s, s:s}", "profile", ak_profile_name (spec->sec.profile), "backend",
                       spec->backend, "image", spec->image));
  ak_sandbox_notify ("created", spec->name);
  return 0;
}

/* Holds the sandbox's lock for the rest of the caller's scope. */
#define LOCKED(name, err)                                                                   \
  _cleanup_close_ int lock_ = ak_store_lock (name, true, err);                              \
  if (lock_ < 0)                                                                            \
    return -1

int
ak_sandbox_start (const char *name, ak_error_t **err)
{
  ak_record_t r = { 0 };
  const ak_backend_t *b;
  _cleanup_free_ char *dir = NULL;
  pid_t pid;
  int ret = -1;
  LOCKED (name, err);

  if (ak_store_load (name, &r, err) < 0)
    return -1;
  if (ak_sandbox_running (&r))
    {
      ak_error_coded (err, EALREADY, "sandbox '%s' is already running", name);
      goto out;
    }
  b = ak_backend_lookup (r.spec.backend, err);
  if (b == NULL)
    goto out;
  if (b->start == NULL)
    {
      ak_error_set (err, 0, "backend '%s' cannot run persistent sandboxes", b->name);
      goto out;
    }
  dir = ak_store_dir (name);
  r.spec.private_paths = private_paths ();
  r.spec.shared_paths = ak_store_shared_paths ();
  ak_backend_audit_hook = net_audit;
  if (ak_sandbox_image_dirs (&r.spec, NULL, err) < 0 || b->start (&r.spec, dir, &pid, err) < 0)
    {
      ak_error_prefix (err, "start %s", name);
      goto out;
    }
  r.supervisor_pid = (int) pid;
  if (ak_store_proc_starttime (pid, &r.supervisor_starttime, err) < 0)
    goto out;
  free (r.status_hint);
  r.status_hint = ak_xstrdup ("running");
  if (ak_store_save_state (&r, err) < 0)
    goto out;
  ak_audit ("sandbox_started", name, json_pack ("{s:i}", "supervisor_pid", (int) pid));
  ak_sandbox_notify ("started", name);
  ret = 0;
out:
  ak_record_clear (&r);
  return ret;
}

/* Ends a running sandbox through its backend and records it stopped. */
static int
stop_locked (ak_record_t *r, ak_error_t **err)
{
  const ak_backend_t *b;
  _cleanup_free_ char *dir = NULL;

  if (!ak_sandbox_running (r))
    return 0;
  b = ak_backend_lookup (r->spec.backend, err);
  if (b == NULL)
    return -1;
  dir = ak_store_dir (r->name);
  if (b->stop (dir, (pid_t) r->supervisor_pid, err) < 0)
    return -1;
  r->supervisor_pid = 0;
  r->supervisor_starttime = 0;
  free (r->status_hint);
  r->status_hint = ak_xstrdup ("stopped");
  if (ak_store_save_state (r, err) < 0)
    return -1;
  ak_audit ("sandbox_stopped", r->name, NULL);
  ak_sandbox_notify ("stopped", r->name);
  return 0;
}

int
ak_sandbox_stop (const char *name, ak_error_t **err)
{
  ak_record_t r = { 0 };
  int ret;
  LOCKED (name, err);

  if (ak_store_load (name, &r, err) < 0)
    return -1;
  ret = stop_locked (&r, err);
  ak_record_clear (&r);
  return ret;
}

/* Removes the sandbox; with due > 0, only when it expires at or before due
 * (else returns 1 and changes nothing). */
static int
remove_if (const char *name, bool force, long long due, ak_error_t **err)
{
  ak_record_t r = { 0 };
  ak_error_t *load_err = NULL;
  int ret = -1;
  LOCKED (name, err);

  /* A record that cannot be read (half written, corrupt, a file of it
   * missing) is still removed: the lock above was taken in its directory,
   * so the sandbox exists. */
  if (ak_store_load (name, &r, &load_err) < 0)
    {
      if (due > 0)
        {
          *err = load_err;
          return -1;
        }
      ak_error_free (load_err);
    }
  else if (due > 0 && (r.expires_at <= 0 || r.expires_at > due))
    {
      ret = 1; /* extended meanwhile */
      goto out;
    }
  else if (ak_sandbox_running (&r))
    {
      if (!force)
        {
          ak_error_coded (err, EBUSY, "sandbox '%s' is running: stop it first, or remove --force", name);
          goto out;
        }
      if (stop_locked (&r, err) < 0)
        goto out;
    }
  if (ak_store_remove (name, err) < 0)
    goto out;
  ak_audit (due > 0 ? "sandbox_expired" : "sandbox_removed", name, NULL);
  ak_sandbox_notify (due > 0 ? "expired" : "removed", name);
  ret = 0;
out:
  ak_record_clear (&r);
  return ret;
}

int
ak_sandbox_remove (const char *name, bool force, ak_error_t **err)
{
  return remove_if (name, force, 0, err);
}

int
ak_sandbox_extend (const char *name, long long seconds, long long *expires_at, ak_error_t **err)
{
  ak_record_t r = { 0 };
  long long now = (long long) time (NULL), base;
  int ret = -1;
  LOCKED (name, err);

  if (seconds <= 0 || seconds > 366LL * 24 * 3600)
    return ak_error_coded (err, EINVAL, "extension must be between 1 second and 366 days");
  if (ak_store_load (name, &r, err) < 0)
    return -1;
  base = r.expires_at > now ? r.expires_at : now;
  r.expires_at = base + seconds;
  if (ak_store_save_state (&r, err) < 0)
    goto out;
  *expires_at = r.expires_at;
  ak_audit ("sandbox_extended", name, json_pack ("{s:I, s:I}", "by_seconds", (json_int_t) seconds,
                                                 "expires_at", (json_int_t) r.expires_at));
  ret = 0;
out:
  ak_record_clear (&r);
  return ret;
}

int
ak_sandbox_update_meta (const char *name, bool replace, char *const *set, char *const *unset,
                        const char *description, ak_record_t *out, ak_error_t **err)
{
  ak_record_t r = { 0 };
  int ret = -1;
  LOCKED (name, err);

  if (description != NULL && description[0] != '\0' && ak_description_check (description, err) < 0)
    return -1;
  if (ak_store_load (name, &r, err) < 0)
    return -1;
  if (replace)
    {
      ak_strv_free (r.labels);
      r.labels = NULL;
    }
  for (char *const *k = unset; k && *k; k++)
    ak_labels_unset (r.labels, *k);
  for (char *const *kv = set; kv && *kv; kv++)
    if (ak_labels_set_kv (&r.labels, *kv, err) < 0)
      goto out;
  if (description != NULL)
    {
      free (r.description);
      r.description = description[0] ? ak_xstrdup (description) : NULL;
    }
  if (ak_store_save_state (&r, err) < 0)
    goto out;
  ak_audit ("sandbox_updated", name, NULL);
  if (out != NULL)
    {
      *out = r;
      memset (&r, 0, sizeof r);
    }
  ret = 0;
out:
  ak_record_clear (&r);
  return ret;
}

char *
ak_sandbox_address (const ak_record_t *r)
{
  const ak_backend_t *b;
  _cleanup_free_ char *dir = NULL;
  char *ip = NULL;
  ak_error_t *e = NULL;

  if (!ak_sandbox_running (r) || (b = ak_backend_lookup (r->spec.backend, NULL)) == NULL || b->address == NULL)
    return NULL;
  dir = ak_store_dir (r->name);
  if (b->address (dir, (pid_t) r->supervisor_pid, &ip, &e) < 0)
    ak_error_free (e);
  return ip;
}

int
ak_sandbox_remove_expired (long long now)
{
  ak_record_t *recs = NULL;
  size_t n = 0;
  int removed = 0;

  if (ak_store_list (&recs, &n, NULL) < 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      ak_error_t *e = NULL;
      int rc;
      if (recs[i].load_error != NULL || recs[i].expires_at <= 0 || recs[i].expires_at > now)
        continue;
      rc = remove_if (recs[i].name, true, now, &e);
      if (rc < 0)
        {
          if (e->code != ENOENT)
            ak_warn ("expired sandbox '%s' could not be removed: %s", recs[i].name, e->msg);
          ak_error_free (e);
          continue;
        }
      if (rc == 0)
        removed++;
    }
  ak_store_list_free (recs, n);
  return removed;
}
