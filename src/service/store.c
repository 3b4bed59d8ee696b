/* Persistent sandbox records: one directory per sandbox, created whole by
 * rename, files replaced by fsync + rename, one flock per sandbox. */
#define _GNU_SOURCE
#include "service/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"
#include "model/labels.h"
#include "model/spec_json.h"

#define SPEC_FILE "spec.json"
#define STATE_FILE "state.json"
#define LOCK_FILE "lock"
/* Directories being built or torn down; never valid sandbox names. */
#define TMP_PREFIX ".tmp-"
#define RM_PREFIX ".rm-"
/* Records are small; a huge file is damage or an attack, not a record. */
#define MAX_RECORD_FILE (16u << 20)

static int
bad_name (const char *name, ak_error_t **err)
{
  return ak_error_set (err, EINVAL, "invalid sandbox name '%.64s' (1-63 of letters, digits, '-', '_')",
                       name ? name : "");
}

static int
no_such (const char *name, ak_error_t **err)
{
  return ak_error_coded (err, ENOENT, "no such sandbox '%s'", name);
}

static int
already_exists (const char *name, ak_error_t **err)
{
  return ak_error_coded (err, EEXIST, "sandbox '%s' already exists", name);
}

static int
busy (const char *name, ak_error_t **err)
{
  return ak_error_coded (err, EBUSY, "sandbox '%s' is busy (another agentkernel holds it)", name);
}

static int
random_bytes (unsigned char *buf, size_t len, ak_error_t **err)
{
  size_t got = 0;

  while (got < len)
    {
      ssize_t n = getrandom (buf + got, len - got, 0);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return ak_error_set (err, errno, "getrandom");
        }
      got += (size_t) n;
    }
  return 0;
}

/* 16 random hex digits for temporary names. */
static int
random_hex (char out[17], ak_error_t **err)
{
  unsigned char b[8];

  if (random_bytes (b, sizeof b, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof b; i++)
    snprintf (out + 2 * i, 3, "%02x", b[i]);
  return 0;
}

static int
uuid4 (char out[37], ak_error_t **err)
{
  unsigned char b[16];

  if (random_bytes (b, sizeof b, err) < 0)
    return -1;
  b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
            b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return 0;
}

static bool
uuid_valid (const char *s)
{
  if (s == NULL || strlen (s) != 36)
    return false;
  for (int i = 0; i < 36; i++)
    {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
        return false;
    }
  return true;
}

char *
ak_store_root (void)
{
  const char *s = getenv ("AGENTKERNEL_STATE_DIR");
  const char *home;
  struct passwd pw, *pwp = NULL;
  char buf[4096];

  if (s != NULL && *s != '\0')
    return ak_xstrdup (s);
  s = getenv ("XDG_DATA_HOME");
  /* The XDG spec says relative values are to be ignored. */
  if (s != NULL && s[0] == '/')
    return ak_xasprintf ("%s/agentkernel", s);
  home = getenv ("HOME");
  if (home == NULL || home[0] != '/')
    {
      if (getpwuid_r (getuid (), &pw, buf, sizeof buf, &pwp) != 0 || pwp == NULL)
        return NULL;
      home = pw.pw_dir;
    }
  return ak_xasprintf ("%s/.local/share/agentkernel", home);
}

static char *
sandboxes_dir (ak_error_t **err)
{
  _cleanup_free_ char *root = ak_store_root ();
  if (root == NULL)
    return ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME"), NULL;
  return ak_xasprintf ("%s/sandboxes", root);
}

char *
ak_store_dir (const char *name)
{
  _cleanup_free_ char *root = NULL;

  if (!ak_name_valid (name) || (root = ak_store_root ()) == NULL)
    return NULL;
  return ak_xasprintf ("%s/sandboxes/%s", root, name);
}

static int
mkdir_p (const char *path, ak_error_t **err)
{
  _cleanup_free_ char *p = ak_xstrdup (path);

  for (char *s = p + 1;; s++)
    if (*s == '/' || *s == '\0')
      {
        char c = *s;
        *s = '\0';
        if (mkdir (p, 0700) < 0 && errno != EEXIST)
          return ak_error_set (err, errno, "create %s", p);
        *s = c;
        if (c == '\0')
          break;
      }
  return 0;
}

char *
ak_config_dir (ak_error_t **err)
{
  const char *x = getenv ("XDG_CONFIG_HOME");
  const char *home = getenv ("HOME");
  if (x != NULL && x[0] == '/')
    return ak_xasprintf ("%s/agentkernel", x);
  if (home != NULL && home[0] == '/')
    return ak_xasprintf ("%s/.config/agentkernel", home);
  ak_error_set (err, 0, "cannot find the config directory: set HOME or XDG_CONFIG_HOME");
  return NULL;
}

static void
add_private (char ***v, size_t *n, const char *path)
{
  char *real = path != NULL ? realpath (path, NULL) : NULL;
  if (real == NULL)
    return;
  *v = ak_xrealloc (*v, (*n + 2) * sizeof (char *));
  (*v)[(*n)++] = real;
  (*v)[*n] = NULL;
}

char **
ak_store_private_paths (const char *audit_log)
{
  _cleanup_free_ char *root = ak_store_root ();
  _cleanup_free_ char *own = NULL;
  _cleanup_free_ char *config = NULL;
  const char *home = getenv ("HOME");
  char **v = NULL;
  size_t n = 0;

  /* Made now, so that what a later create writes there is hidden from a
   * sandbox already running. */
  if (root != NULL)
    {
      (void) mkdir_p (root, NULL);
      add_private (&v, &n, root);
    }
  if (home != NULL && home[0] == '/')
    {
      own = ak_xasprintf ("%s/.agentkernel", home);
      /* Where it cannot be made, agentkernel cannot write either. */
      (void) mkdir (own, 0700);
      add_private (&v, &n, own);
    }
  /* Trust records written from inside (a workspace that is $HOME) would
   * make the next run trust what the sandbox chose. */
  if ((config = ak_config_dir (NULL)) != NULL)
    {
      (void) mkdir_p (config, NULL);
      add_private (&v, &n, config);
    }
  if (audit_log != NULL)
    {
      int fd = open (audit_log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd >= 0)
        close (fd);
      add_private (&v, &n, audit_log);
    }
  return v;
}

char **
ak_store_shared_paths (void)
{
  _cleanup_free_ char *root = ak_store_root ();
  _cleanup_free_ char *vols = root ? ak_xasprintf ("%s/volumes", root) : NULL;
  _cleanup_free_ char *real = vols ? realpath (vols, NULL) : NULL;
  char **v = ak_xcalloc (2, sizeof (char *));
  if (real != NULL)
    v[0] = steal_pointer (&real);
  return v;
}

/* Open the directory holding every sandbox, creating it when `create`.
 * Without `create`, a missing directory returns -1 with *missing set and no
 * error: there are no sandboxes yet. */
static int
open_sandboxes (bool create, bool *missing, ak_error_t **err)
{
  _cleanup_free_ char *dir = sandboxes_dir (err);
  int fd;

  if (missing != NULL)
    *missing = false;
  if (dir == NULL)
    return -1;
  if (create && mkdir_p (dir, err) < 0)
    return -1;
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT && missing != NULL)
        {
          *missing = true;
          return -1;
        }
      return ak_error_set (err, errno, "open %s", dir);
    }
  return fd;
}

/* Replace dfd/file with data: a temporary file beside it, fsync, rename,
 * fsync of the directory.  Readers see the old or the new file, whole. */
static int
write_atomic (int dfd, const char *file, const char *data, size_t len, ak_error_t **err)
{
  char rnd[17];
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = -1;

  if (random_hex (rnd, err) < 0)
    return -1;
  tmp = ak_xasprintf (".%s.%s", file, rnd);
  fd = openat (dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return ak_error_set (err, errno, "create %s", tmp);
  if (ak_write_all (fd, data, len) < 0 || fsync (fd) < 0 || close (take_fd (&fd)) < 0)
    {
      ak_error_set (err, errno, "write %s", file);
      goto fail;
    }
  if (renameat (dfd, tmp, dfd, file) < 0)
    {
      ak_error_set (err, errno, "rename %s to %s", tmp, file);
      goto fail;
    }
  if (fsync (dfd) < 0)
    return ak_error_set (err, errno, "fsync after writing %s", file);
  return 0;
fail:
  unlinkat (dfd, tmp, 0);
  return -1;
}

static int
write_json_atomic (int dfd, const char *file, const json_t *j, ak_error_t **err)
{
  _cleanup_free_ char *text = json_dumps (j, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  _cleanup_free_ char *line = NULL;

  if (text == NULL)
    ak_oom ();
  line = ak_xasprintf ("%s\n", text);
  return write_atomic (dfd, file, line, strlen (line), err);
}

/* Read and parse dfd/file, a regular file of bounded size. */
static int
read_json_at (int dfd, const char *file, json_t **out, ak_error_t **err)
{
  _cleanup_close_ int fd = openat (dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  _cleanup_free_ char *buf = NULL;
  json_error_t jerr;
  struct stat st;
  ssize_t n;

  if (fd < 0)
    return ak_error_set (err, errno, "%s", file);
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s", file);
  if (!S_ISREG (st.st_mode))
    return ak_error_set (err, 0, "%s: not a regular file", file);
  if (st.st_size > MAX_RECORD_FILE)
    return ak_error_set (err, 0, "%s: too large (%lld bytes)", file, (long long) st.st_size);
  buf = ak_xmalloc ((size_t) st.st_size + 1);
  n = ak_read_all (fd, buf, (size_t) st.st_size);
  if (n < 0)
    return ak_error_set (err, errno, "read %s", file);
  *out = json_loadb (buf, (size_t) n, JSON_REJECT_DUPLICATES, &jerr);
  if (*out == NULL)
    return ak_error_set (err, 0, "%s: invalid JSON at line %d: %s", file, jerr.line, jerr.text);
  return 0;
}

static void
rfc3339_now (char out[32])
{
  struct timespec ts;
  struct tm tm;

  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
state_to_json (const ak_record_t *r)
{
  json_t *j = json_pack ("{s:s, s:s, s:s, s:i, s:I, s:s?}", "name", r->name, "uuid", r->uuid,
                         "created", r->created, "supervisor_pid", r->supervisor_pid,
                         "supervisor_starttime", (json_int_t) r->supervisor_starttime,
                         "status_hint", r->status_hint);
  if (j == NULL)
    ak_oom ();
  if (r->expires_at > 0)
    json_object_set_new (j, "expires_at", json_integer ((json_int_t) r->expires_at));
  if (r->labels != NULL && r->labels[0] != NULL)
    json_object_set_new (j, "labels", ak_labels_json (r->labels));
  if (r->description != NULL)
    json_object_set_new (j, "description", json_string (r->description));
  return j;
}

static int
state_from_json (const json_t *j, const char *name, ak_record_t *r, ak_error_t **err)
{
  const char *n = NULL, *uuid = NULL, *created = NULL;
  json_t *hint = NULL, *labels = NULL;
  const char *description = NULL;
  json_int_t pid = 0, start = 0, expires = 0;
  json_error_t jerr;

  if (json_unpack_ex ((json_t *) j, &jerr, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:I, s?o, s?I, s?o, s?s}", "name", &n,
                      "uuid", &uuid, "created", &created, "supervisor_pid", &pid,
                      "supervisor_starttime", &start, "status_hint", &hint, "expires_at", &expires, "labels",
                      &labels, "description", &description)
      < 0)
    return ak_error_set (err, 0, STATE_FILE ": %s", jerr.text);
  if (strcmp (n, name) != 0)
    return ak_error_set (err, 0, STATE_FILE ": names sandbox '%.64s'", n);
  if (!uuid_valid (uuid))
    return ak_error_set (err, 0, STATE_FILE ": invalid uuid");
  if (pid < 0 || pid > INT_MAX || start < 0)
    return ak_error_set (err, 0, STATE_FILE ": invalid supervisor");
  if (expires < 0)
    return ak_error_set (err, 0, STATE_FILE ": invalid expires_at");
  if (hint != NULL && !json_is_null (hint) && !json_is_string (hint))
    return ak_error_set (err, 0, STATE_FILE ": status_hint must be a string or null");
  if (labels != NULL && !json_is_object (labels))
    return ak_error_set (err, 0, STATE_FILE ": labels must be an object");
  if (description != NULL && ak_description_check (description, err) < 0)
    return ak_error_prefix (err, STATE_FILE);
  if (labels != NULL)
    {
      const char *key;
      json_t *v;
      json_object_foreach (labels, key, v)
        if (!json_is_string (v) || ak_labels_set (&r->labels, key, json_string_value (v), err) < 0)
          {
            ak_strv_free (r->labels);
            r->labels = NULL;
            if (err && *err == NULL)
              ak_error_set (err, 0, "label '%.64s' must be a string", key);
            return ak_error_prefix (err, STATE_FILE);
          }
    }
  r->description = description ? ak_xstrdup (description) : NULL;
  r->uuid = ak_xstrdup (uuid);
  r->created = ak_xstrdup (created);
  r->supervisor_pid = (int) pid;
  r->supervisor_starttime = (unsigned long long) start;
  r->status_hint = json_is_string (hint) ? ak_xstrdup (json_string_value (hint)) : NULL;
  r->expires_at = (long long) expires;
  return 0;
}

void
ak_record_clear (ak_record_t *r)
{
  free (r->name);
  free (r->uuid);
  ak_spec_clear (&r->spec);
  free (r->created);
  free (r->status_hint);
  free (r->load_error);
  ak_strv_free (r->labels);
  free (r->description);
  memset (r, 0, sizeof (*r));
}

/* ---- removing trees --------------------------------------------------- */

/* Delete parent/name and everything under it (common/fsutil: never
 * following a link, never crossing a mount, however deep the tree). */
static int
remove_tree (int parent, const char *name, ak_error_t **err)
{
  return ak_fs_remove_tree (parent, name, NULL, err);
}

/* ---- create / load / save / remove ------------------------------------ */

static int
build_record (int dfd, const ak_spec_t *spec, ak_record_t *r, ak_error_t **err)
{
  char uuid[37], created[32];
  _cleanup_close_ int lock = -1;
  json_t *sj;
  int rc;

  if (uuid4 (uuid, err) < 0)
    return -1;
  rfc3339_now (created);
  r->name = ak_xstrdup (spec->name);
  r->uuid = ak_xstrdup (uuid);
  r->created = ak_xstrdup (created);
  r->status_hint = ak_xstrdup ("created");
  for (char **kv = spec->labels; kv && *kv; kv++)
    if (ak_labels_set_kv (&r->labels, *kv, err) < 0)
      return -1;
  if (spec->description != NULL)
    {
      if (ak_description_check (spec->description, err) < 0)
        return -1;
      r->description = ak_xstrdup (spec->description);
    }

  sj = ak_spec_to_json (spec);
  rc = write_json_atomic (dfd, SPEC_FILE, sj, err);
  json_decref (sj);
  if (rc < 0)
    return -1;
  sj = state_to_json (r);
  rc = write_json_atomic (dfd, STATE_FILE, sj, err);
  json_decref (sj);
  if (rc < 0)
    return -1;
  lock = openat (dfd, LOCK_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0)
    return ak_error_set (err, errno, "create %s", LOCK_FILE);
  if (fsync (dfd) < 0)
    return ak_error_set (err, errno, "fsync");
  return 0;
}

int
ak_store_create (const ak_spec_t *spec, ak_record_t *out, ak_error_t **err)
{
  _cleanup_close_ int sfd = -1;
  _cleanup_close_ int tfd = -1;
  _cleanup_free_ char *tmp = NULL;
  ak_record_t r = { 0 };
  ak_error_t *json_err = NULL;
  char rnd[17];
  struct stat st;

  if (out != NULL)
    memset (out, 0, sizeof (*out));
  if (!ak_name_valid (spec->name))
    return bad_name (spec->name, err);
  sfd = open_sandboxes (true, NULL, err);
  if (sfd < 0)
    return -1;
  if (fstatat (sfd, spec->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return already_exists (spec->name, err);
  if (random_hex (rnd, err) < 0)
    return -1;

  /* Build the whole record under a name no sandbox can have, then rename it
   * into place: the sandbox appears complete or not at all, and the rename
   * decides between concurrent creators. */
  tmp = ak_xasprintf (TMP_PREFIX "%s-%s", spec->name, rnd);
  if (mkdirat (sfd, tmp, 0700) < 0)
    return ak_error_set (err, errno, "create sandbox '%s'", spec->name);
  tfd = openat (sfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    {
      ak_error_set (err, errno, "open %s", tmp);
      goto fail;
    }
  if (build_record (tfd, spec, &r, err) < 0)
    goto fail;
  if (renameat2 (sfd, tmp, sfd, spec->name, RENAME_NOREPLACE) < 0)
    {
      /* Without RENAME_NOREPLACE, plain rename still refuses to replace a
       * non-empty directory, and every record holds files. */
      if ((errno == EINVAL || errno == ENOSYS) && renameat (sfd, tmp, sfd, spec->name) == 0)
        goto renamed;
      if (errno == EEXIST || errno == ENOTEMPTY)
        already_exists (spec->name, err);
      else
        ak_error_set (err, errno, "create sandbox '%s'", spec->name);
      goto fail;
    }
renamed:
  if (fsync (sfd) < 0)
    {
      ak_error_set (err, errno, "create sandbox '%s': fsync", spec->name);
      ak_record_clear (&r);
      return -1;
    }
  if (out != NULL)
    {
      json_t *sj = ak_spec_to_json (spec);
      /* The stored form, read back: the caller holds what load would give. */
      if (ak_spec_from_json (sj, &r.spec, &json_err) < 0)
        {
          json_decref (sj);
          ak_record_clear (&r);
          ak_error_set (err, 0, "sandbox '%s': %s", spec->name, json_err->msg);
          ak_error_free (json_err);
          return -1;
        }
      json_decref (sj);
      *out = r;
    }
  else
    ak_record_clear (&r);
  return 0;

fail:
  ak_record_clear (&r);
  {
    ak_error_t *ignored = NULL;
    remove_tree (sfd, tmp, &ignored);
    ak_error_free (ignored);
  }
  return -1;
}

static int
open_sandbox (const char *name, ak_error_t **err)
{
  _cleanup_free_ char *dir = NULL;
  int fd;

  if (!ak_name_valid (name))
    return bad_name (name, err);
  dir = ak_store_dir (name);
  if (dir == NULL)
    return ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME");
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return no_such (name, err);
      return ak_error_set (err, errno, "sandbox '%s': open %s", name, dir);
    }
  return fd;
}

int
ak_store_load (const char *name, ak_record_t *out, ak_error_t **err)
{
  _cleanup_close_ int dfd = -1;
  json_t *j = NULL;
  ak_record_t r = { 0 };
  int rc;

  memset (out, 0, sizeof (*out));
  dfd = open_sandbox (name, err);
  if (dfd < 0)
    return -1;
  r.name = ak_xstrdup (name);
  rc = read_json_at (dfd, SPEC_FILE, &j, err);
  if (rc == 0 && ak_spec_from_json (j, &r.spec, err) < 0)
    rc = ak_error_prefix (err, SPEC_FILE);
  if (rc == 0 && (r.spec.name == NULL || strcmp (r.spec.name, name) != 0))
    rc = ak_error_set (err, 0, SPEC_FILE ": names sandbox '%.64s'", r.spec.name ? r.spec.name : "");
  json_decref (j);
  j = NULL;
  if (rc == 0)
    rc = read_json_at (dfd, STATE_FILE, &j, err);
  if (rc == 0)
    rc = state_from_json (j, name, &r, err);
  json_decref (j);
  if (rc < 0)
    {
      ak_record_clear (&r);
      return ak_error_prefix (err, "sandbox '%s'", name);
    }
  *out = r;
  return 0;
}

int
ak_store_save_state (const ak_record_t *r, ak_error_t **err)
{
  _cleanup_close_ int dfd = -1;
  json_t *j;
  int rc;

  dfd = open_sandbox (r->name, err);
  if (dfd < 0)
    return -1;
  if (!uuid_valid (r->uuid) || r->created == NULL || r->supervisor_pid < 0)
    return ak_error_set (err, EINVAL, "sandbox '%s': incomplete record", r->name);
  j = state_to_json (r);
  rc = write_json_atomic (dfd, STATE_FILE, j, err);
  json_decref (j);
  if (rc < 0)
    return ak_error_prefix (err, "sandbox '%s'", r->name);
  return 0;
}

/* Everything in a sandbox's directory but its record (spec, state, lock):
 * what can fail part way (a mount point left in a persistent root, a file
 * that cannot be removed) fails while the record is still whole, so a
 * removal that stops leaves a sandbox that is listed as it was and can be
 * removed again, never a broken record. */
static int
remove_contents (int sfd, const char *dir, ak_error_t **err)
{
  static const char *const record[] = { SPEC_FILE, STATE_FILE, LOCK_FILE };
  _cleanup_close_ int dfd = openat (sfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  _cleanup_strv_ char **names = NULL;
  struct dirent *e;
  DIR *d;

  if (dfd < 0 || (d = fdopendir (fcntl (dfd, F_DUPFD_CLOEXEC, 0))) == NULL)
    return ak_error_set (err, errno, "open the sandbox's directory");
  while ((errno = 0, e = readdir (d)) != NULL)
    {
      bool keep = strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0;
      for (size_t i = 0; i < sizeof record / sizeof record[0] && !keep; i++)
        keep = strcmp (e->d_name, record[i]) == 0;
      if (!keep)
        ak_strv_push (&names, e->d_name);
    }
  if (errno != 0)
    {
      int saved = errno;
      closedir (d);
      return ak_error_set (err, saved, "read the sandbox's directory");
    }
  closedir (d);
  for (char **n = names; n != NULL && *n != NULL; n++)
    if (ak_fs_remove_tree (dfd, *n, NULL, err) < 0)
      return -1;
  return 0;
}

int
ak_store_remove (const char *name, ak_error_t **err)
{
  _cleanup_close_ int sfd = -1;
  _cleanup_free_ char *grave = NULL;
  char rnd[17];
  struct stat st;
  bool missing;

  if (!ak_name_valid (name))
    return bad_name (name, err);
  sfd = open_sandboxes (false, &missing, err);
  if (sfd < 0)
    return missing ? no_such (name, err) : -1;
  if (fstatat (sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        return no_such (name, err);
      return ak_error_set (err, errno, "sandbox '%s'", name);
    }
  if (!S_ISDIR (st.st_mode))
    {
      /* Not something create makes; clean it without following it. */
      if (unlinkat (sfd, name, 0) < 0)
        return ak_error_set (err, errno, "remove sandbox '%s'", name);
      return 0;
    }
  if (random_hex (rnd, err) < 0)
    return -1;
  /* Take the name away first so the sandbox vanishes at once, then delete
   * the tree under its hidden name. */
  grave = ak_xasprintf (RM_PREFIX "%s-%s", name, rnd);
  if (renameat (sfd, name, sfd, grave) < 0)
    {
      if (errno == ENOENT)
        return no_such (name, err);
      return ak_error_set (err, errno, "remove sandbox '%s'", name);
    }
  if (remove_contents (sfd, grave, err) < 0 || remove_tree (sfd, grave, err) < 0)
    {
      /* Give the name back so the user can see what is left and retry:
       * the record itself is still whole (remove_contents). */
      renameat2 (sfd, grave, sfd, name, RENAME_NOREPLACE);
      return ak_error_prefix (err, "remove sandbox '%s'", name);
    }
  if (fsync (sfd) < 0)
    return ak_error_set (err, errno, "remove sandbox '%s': fsync", name);
  return 0;
}

/* ---- listing ---------------------------------------------------------- */

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

void
ak_store_list_free (ak_record_t *records, size_t n)
{
  for (size_t i = 0; i < n; i++)
    ak_record_clear (&records[i]);
  free (records);
}

int
ak_store_list (ak_record_t **out, size_t *n, ak_error_t **err)
{
  _cleanup_close_ int sfd = -1;
  _cleanup_strv_ char **names = NULL;
  ak_record_t *recs;
  size_t count = 0, nn;
  DIR *d;
  struct dirent *e;
  bool missing;

  *out = NULL;
  *n = 0;
  sfd = open_sandboxes (false, &missing, err);
  if (sfd < 0)
    return missing ? 0 : -1;
  d = fdopendir (fcntl (sfd, F_DUPFD_CLOEXEC, 0));
  if (d == NULL)
    return ak_error_set (err, errno, "read the state directory");
  while ((errno = 0, e = readdir (d)) != NULL)
    {
      struct stat st;
      /* Temporary and dot names fail ak_name_valid: half-built records and
       * trees being deleted are skipped here. */
      if (!ak_name_valid (e->d_name))
        continue;
      if (fstatat (sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        continue;
      ak_strv_push (&names, e->d_name);
    }
  if (errno != 0)
    {
      int saved = errno;
      closedir (d);
      return ak_error_set (err, saved, "read the state directory");
    }
  closedir (d);

  if (names == NULL)
    return 0;
  nn = ak_strv_len (names);
  qsort (names, nn, sizeof (char *), cmp_str);
  recs = ak_xcalloc (nn, sizeof (ak_record_t));
  for (size_t i = 0; i < nn; i++)
    {
      ak_error_t *lerr = NULL;
      struct stat st;

      if (ak_store_load (names[i], &recs[count], &lerr) == 0)
        {
          count++;
          continue;
        }
      /* Removed since readdir: not an error, just gone. */
      if (fstatat (sfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        {
          ak_error_free (lerr);
          continue;
        }
      recs[count].name = ak_xstrdup (names[i]);
      recs[count].load_error = ak_xstrdup (lerr->msg);
      ak_error_free (lerr);
      count++;
    }
  *out = recs;
  *n = count;
  return 0;
}

int
ak_store_find_uuid (const char *uuid, ak_record_t *out, ak_error_t **err)
{
  ak_record_t *recs;
  size_t n;

  memset (out, 0, sizeof (*out));
  if (!uuid_valid (uuid))
    return ak_error_set (err, EINVAL, "invalid sandbox uuid '%.64s'", uuid ? uuid : "");
  if (ak_store_list (&recs, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (recs[i].load_error == NULL && strcmp (recs[i].uuid, uuid) == 0)
      {
        *out = recs[i];
        memset (&recs[i], 0, sizeof (recs[i]));
        ak_store_list_free (recs, n);
        return 0;
      }
  ak_store_list_free (recs, n);
  return ak_error_coded (err, ENOENT, "no sandbox with uuid '%s'", uuid);
}

/* ---- locking ---------------------------------------------------------- */

static bool
same_file (int fd, const char *path)
{
  struct stat a, b;
  return fstat (fd, &a) == 0 && stat (path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int
ak_store_lock_timeout (const char *name, bool exclusive, unsigned timeout_ms, ak_error_t **err)
{
  unsigned long long deadline = ak_now_ns () + (unsigned long long) timeout_ms * 1000000ULL;
  _cleanup_free_ char *dir = NULL;
  _cleanup_free_ char *path = NULL;

  if (!ak_name_valid (name))
    return bad_name (name, err);
  dir = ak_store_dir (name);
  if (dir == NULL)
    return ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME");
  path = ak_xasprintf ("%s/" LOCK_FILE, dir);

  for (;;)
    {
      _cleanup_close_ int dfd = open_sandbox (name, err);
      _cleanup_close_ int fd = -1;
      unsigned long long delay_ns = 1000000; /* 1 ms, doubling to 64 ms */

      if (dfd < 0)
        return -1;
      fd = openat (dfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0)
        return ak_error_set (err, errno, "sandbox '%s': open %s", name, path);
      /* flock() has no timeout; polling with a growing sleep keeps the wait
       * bounded without signals (a library must not take SIGALRM). */
      while (flock (fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0)
        {
          unsigned long long now = ak_now_ns ();
          struct timespec ts;

          if (errno == EINTR)
            continue;
          if (errno != EWOULDBLOCK)
            return ak_error_set (err, errno, "sandbox '%s': lock", name);
          if (now >= deadline)
            return busy (name, err);
          if (delay_ns > deadline - now)
            delay_ns = deadline - now;
          ts = (struct timespec){ .tv_sec = (time_t) (delay_ns / 1000000000ULL),
                                  .tv_nsec = (long) (delay_ns % 1000000000ULL) };
          nanosleep (&ts, NULL);
          if (delay_ns < 64000000ULL)
            delay_ns *= 2;
        }
      /* The holder may have removed (and someone re-created) the sandbox
       * while we waited: a lock on an unlinked file protects nothing. */
      if (same_file (fd, path))
        return take_fd (&fd);
      if (ak_now_ns () >= deadline)
        return busy (name, err);
    }
}

int
ak_store_lock (const char *name, bool exclusive, ak_error_t **err)
{
  return ak_store_lock_timeout (name, exclusive, AK_STORE_LOCK_TIMEOUT_MS, err);
}

void
ak_store_unlock (int fd)
{
  if (fd >= 0)
    close (fd);
}

/* ---- supervisor liveness ---------------------------------------------- */

static int
proc_stat (pid_t pid, char *state, unsigned long long *start, ak_error_t **err)
{
  char path[64], buf[1024];
  _cleanup_close_ int fd = -1;
  ssize_t n;
  char *p, *save = NULL, *tok;

  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ak_error_set (err, errno, "%s", path);
  n = ak_read_all (fd, buf, sizeof buf - 1);
  if (n < 0)
    return ak_error_set (err, errno, "read %s", path);
  buf[n] = '\0';
  /* comm (field 2) may hold spaces and ')': fields restart after the last ')'. */
  p = strrchr (buf, ')');
  if (p == NULL)
    return ak_error_set (err, 0, "%s: unexpected format", path);
  p++;
  for (int field = 3; (tok = strtok_r (p, " ", &save)) != NULL; field++)
    {
      p = NULL;
      if (field == 3)
        *state = tok[0];
      else if (field == 22)
        {
          if (!ak_parse_u64 (tok, 0, ~0ULL, start))
            break;
          return 0;
        }
    }
  return ak_error_set (err, 0, "%s: unexpected format", path);
}

int
ak_store_proc_starttime (pid_t pid, unsigned long long *out, ak_error_t **err)
{
  char state;
  if (pid <= 0)
    return ak_error_set (err, EINVAL, "invalid pid %d", (int) pid);
  return proc_stat (pid, &state, out, err);
}

bool
ak_store_supervisor_alive (const ak_record_t *r)
{
  unsigned long long start = 0;
  char state = '?';

  if (r->supervisor_pid <= 0 || proc_stat (r->supervisor_pid, &state, &start, NULL) < 0)
    return false;
  /* A zombie is dead; only its parent has not noticed yet. */
  return start == r->supervisor_starttime && state != 'Z' && state != 'X';
}
