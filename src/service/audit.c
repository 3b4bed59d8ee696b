/* The audit log (JSONL).  Appends are one write() on an O_APPEND descriptor:
 * the kernel serialises those per file, so concurrent agentkernel processes
 * never interleave within a line, without any lock between them. */
#define _GNU_SOURCE
#include "service/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

static const char *const fixed_keys[] = { "timestamp", "pid", "user", "event", "sandbox", NULL };

static bool
audit_enabled (void)
{
  const char *v = getenv ("AGENTKERNEL_AUDIT");
  return v == NULL
         || (strcmp (v, "0") != 0 && strcmp (v, "false") != 0 && strcmp (v, "off") != 0
             && strcmp (v, "no") != 0);
}

const char *
ak_audit_path (void)
{
  static __thread char buf[PATH_MAX];
  const char *v = getenv ("AGENTKERNEL_AUDIT_LOG");
  const char *home;
  struct passwd pw, *pwp = NULL;
  char pwbuf[4096];
  int n;

  if (v != NULL && *v != '\0')
    n = snprintf (buf, sizeof buf, "%s", v);
  else
    {
      home = getenv ("HOME");
      if (home == NULL || home[0] != '/')
        {
          if (getpwuid_r (getuid (), &pw, pwbuf, sizeof pwbuf, &pwp) != 0 || pwp == NULL)
            return NULL;
          home = pw.pw_dir;
        }
      n = snprintf (buf, sizeof buf, "%s/.agentkernel/audit.jsonl", home);
    }
  return n > 0 && (size_t) n < sizeof buf ? buf : NULL;
}

/* The name of the real uid, looked up once per process and uid (a run
 * writes two records). */
static json_t *
login_name (void)
{
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static char name[256];
  static uid_t named = (uid_t) -1;
  uid_t uid = getuid ();
  json_t *s;

  pthread_mutex_lock (&lock);
  if (named != uid)
    {
      struct passwd pw, *pwp = NULL;
      char buf[4096];
      if (getpwuid_r (uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp != NULL && strlen (pw.pw_name) < sizeof name)
        snprintf (name, sizeof name, "%s", pw.pw_name);
      else
        snprintf (name, sizeof name, "%u", (unsigned) uid);
      named = uid;
    }
  s = json_string (name);
  pthread_mutex_unlock (&lock);
  if (s == NULL)
    ak_oom ();
  return s;
}

static pid_t record_pid;
static json_t *timestamp_now (void);
/* ak_audit_hold: the log's descriptor, kept (-1: not open yet). */
static struct {
  bool on;
  int fd;
} held = { .fd = -1 };

void
ak_audit_hold (void)
{
  held.on = true;
}

void
ak_audit_warm (void)
{
  json_decref (login_name ());
  /* The C library's time zone data, which strftime loads once. */
  json_decref (timestamp_now ());
}

void
ak_audit_set_pid (pid_t pid)
{
  record_pid = pid;
}

static json_t *
timestamp_now (void)
{
  struct timespec ts;
  struct tm tm;
  char date[32], full[48];

  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (full, sizeof full, "%s.%03ldZ", date, ts.tv_nsec / 1000000);
  return json_string (full);
}

static bool
is_fixed (const char *key)
{
  for (const char *const *k = fixed_keys; *k != NULL; k++)
    if (strcmp (*k, key) == 0)
      return true;
  return false;
}

/* mkdir -p of the log's directory, created private. */
static int
make_parent (const char *path)
{
  _cleanup_free_ char *dir = ak_xstrdup (path);
  char *slash = strrchr (dir, '/');

  if (slash == NULL || slash == dir)
    return 0;
  *slash = '\0';
  for (char *s = dir + 1;; s++)
    if (*s == '/' || *s == '\0')
      {
        char c = *s;
        *s = '\0';
        if (mkdir (dir, 0700) < 0 && errno != EEXIST)
          return -1;
        *s = c;
        if (c == '\0')
          break;
      }
  return 0;
}

static json_t *
build_entry (const char *event, const char *sandbox, json_t *fields)
{
  json_t *o = json_object ();
  const char *key;
  json_t *v;

  if (o == NULL)
    ak_oom ();
  json_object_set_new (o, "timestamp", timestamp_now ());
  json_object_set_new (o, "pid", json_integer (record_pid > 0 ? record_pid : getpid ()));
  json_object_set_new (o, "user", login_name ());
  json_object_set_new (o, "event", json_string (event != NULL ? event : "unknown"));
  if (sandbox != NULL)
    json_object_set_new (o, "sandbox", json_string (sandbox));
  if (json_is_object (fields))
    {
      /* The fixed keys say who did what, when: a caller's fields cannot
       * overwrite them. */
      json_object_foreach (fields, key, v)
        if (!is_fixed (key))
          json_object_set (o, key, v);
    }
  else if (fields != NULL)
    json_object_set (o, "data", fields);
  return o;
}

int
ak_audit (const char *event, const char *sandbox, json_t *fields)
{
  const char *path;
  json_t *entry;
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ char *line = NULL;
  _cleanup_close_ int fd = -1;
  size_t len;
  ssize_t n;

  if (!audit_enabled ())
    {
      json_decref (fields);
      return 0;
    }
  entry = build_entry (event, sandbox, fields);
  json_decref (fields);
  /* Compact output never holds a raw newline: one entry, one line. */
  text = json_dumps (entry, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (entry);
  path = ak_audit_path ();
  if (text == NULL || path == NULL)
    return -1;
  line = ak_xasprintf ("%s\n", text);
  len = strlen (line);

#define AUDIT_OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY)
  /* Its directory is made only when it is missing. */
  if (held.fd < 0)
    {
      fd = open (path, AUDIT_OPEN_FLAGS, 0600);
      if (fd < 0 && errno == ENOENT && make_parent (path) == 0)
        fd = open (path, AUDIT_OPEN_FLAGS, 0600);
      if (fd < 0)
        return -1;
      if (held.on)
        held.fd = take_fd (&fd);
    }
  /* One write() per line: retrying a partial write would let another
   * process's line in between, so a short write is reported, not resumed. */
  do
    n = write (held.fd >= 0 ? held.fd : fd, line, len);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t) len ? 0 : -1;
}

int
ak_audit_command (const char *event, const char *sandbox, char *const *argv, json_t *fields)
{
  json_t *o = json_object ();
  json_t *cmd = json_array ();

  if (o == NULL || cmd == NULL)
    ak_oom ();
  for (char *const *a = argv; a != NULL && *a != NULL; a++)
    json_array_append_new (cmd, json_string (*a));
  json_object_set_new (o, "command", cmd);
  if (fields != NULL)
    json_object_update_missing (o, fields);
  json_decref (fields);
  return ak_audit (event, sandbox, o);
}

static bool
matches (const json_t *entry, const char *filter)
{
  const json_t *s;

  if (filter == NULL)
    return true;
  s = json_object_get (entry, "sandbox");
  return json_is_string (s) && strcmp (json_string_value (s), filter) == 0;
}

int
ak_audit_read (const char *sandbox_filter, json_t **entries_array, ak_error_t **err)
{
  const char *path = ak_audit_path ();
  _cleanup_fclose_ FILE *f = NULL;
  _cleanup_free_ char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  json_t *out;
  int fd;

  *entries_array = NULL;
  if (path == NULL)
    return ak_error_set (err, 0, "cannot find the audit log: set HOME or AGENTKERNEL_AUDIT_LOG");
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 && errno != ENOENT)
    return ak_error_set (err, errno, "open %s", path);
  out = json_array ();
  if (out == NULL)
    ak_oom ();
  if (fd < 0)
    {
      *entries_array = out;
      return 0;
    }
  f = fdopen (fd, "r");
  if (f == NULL)
    {
      close (fd);
      json_decref (out);
      return ak_error_set (err, errno, "open %s", path);
    }
  while ((n = getline (&line, &cap, f)) >= 0)
    {
      json_t *e;
      if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
      e = json_loadb (line, (size_t) n, 0, NULL);
      if (json_is_object (e) && matches (e, sandbox_filter))
        json_array_append (out, e);
      json_decref (e);
    }
  if (ferror (f))
    {
      json_decref (out);
      return ak_error_set (err, EIO, "read %s", path);
    }
  *entries_array = out;
  return 0;
}
