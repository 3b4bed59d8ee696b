#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "service/detached.h"
#include "service/store.h"

static bool
id_valid (const char *id)
{
  size_t n = id ? strlen (id) : 0;
  if (n != 16)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return false;
  return true;
}

static char *
cmd_dir (const char *name, const char *id, ak_error_t **err)
{
  _cleanup_free_ char *dir = ak_store_dir (name);
  struct stat st;
  char *p;
  if (dir == NULL)
    return ak_error_coded (err, EINVAL, "invalid sandbox name '%s'", name ? name : ""), NULL;
  if (stat (dir, &st) < 0)
    return ak_error_coded (err, ENOENT, "no such sandbox '%s'", name), NULL;
  if (id == NULL)
    return ak_xasprintf ("%s/detached", dir);
  if (!id_valid (id))
    return ak_error_coded (err, EINVAL, "invalid command id '%s'", id), NULL;
  p = ak_xasprintf ("%s/detached/%s", dir, id);
  if (stat (p, &st) < 0)
    {
      free (p);
      return ak_error_coded (err, ENOENT, "no such detached command '%s' in '%s'", id, name), NULL;
    }
  return p;
}

/* ---- the log writer ---------------------------------------------------- */

typedef struct log_file {
  int in;         /* read end of the command's stream, -1 once it ended */
  int out;        /* the log file */
  char *path;     /* dir/stdout */
  uint64_t size;  /* bytes in the current file */
} log_file_t;

/* Renames the full log to NAME.1 (replacing an older one) and starts an
 * empty one: a stream never takes more than twice the cap on disk. */
static void
log_rotate (log_file_t *l)
{
  _cleanup_free_ char *old = ak_xasprintf ("%s.1", l->path);
  close (l->out);
  rename (l->path, old);
  l->out = open (l->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  l->size = 0;
}

static void
log_write (log_file_t *l, const char *buf, size_t n, uint64_t cap)
{
  while (n > 0 && l->out >= 0)
    {
      size_t room = l->size < cap ? (size_t) (cap - l->size) : 0, k;
      if (room == 0)
        {
          log_rotate (l);
          continue;
        }
      k = n < room ? n : room;
      if (ak_write_all (l->out, buf, k) < 0)
        return; /* out of disk: the rest is dropped, the command goes on */
      l->size += k;
      buf += k;
      n -= k;
    }
}

/* Copies the command's stdout and stderr into dir/stdout and dir/stderr,
 * each capped at cap bytes and rotated once. */
static void
log_pump (int out_r, int err_r, const char *dir, uint64_t cap)
{
  log_file_t logs[2] = {
    { out_r, -1, ak_xasprintf ("%s/stdout", dir), 0 },
    { err_r, -1, ak_xasprintf ("%s/stderr", dir), 0 },
  };
  char buf[65536];

  for (int k = 0; k < 2; k++)
    logs[k].out = open (logs[k].path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  while (logs[0].in >= 0 || logs[1].in >= 0)
    {
      struct pollfd p[2] = { { .fd = logs[0].in, .events = POLLIN }, { .fd = logs[1].in, .events = POLLIN } };
      if (poll (p, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      for (int k = 0; k < 2; k++)
        {
          ssize_t n;
          if (logs[k].in < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          n = read (logs[k].in, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              close (logs[k].in);
              logs[k].in = -1;
              continue;
            }
          log_write (&logs[k], buf, (size_t) n, cap);
        }
    }
  for (int k = 0; k < 2; k++)
    {
      if (logs[k].out >= 0)
        close (logs[k].out);
      free (logs[k].path);
    }
}

/* The cap of each detached log of sandbox name, in bytes. */
static uint64_t
log_cap (const char *name)
{
  ak_record_t r = { 0 };
  ak_error_t *err = NULL;
  unsigned mb = AK_LOG_MB_DEFAULT;
  if (ak_store_load (name, &r, &err) == 0)
    {
      if (r.spec.res.log_mb > 0)
        mb = r.spec.res.log_mb;
      ak_record_clear (&r);
    }
  ak_error_free (err);
  return (uint64_t) mb << 20;
}

int
ak_detached_start (const char *name, const ak_exec_req_t *req, char **id, ak_error_t **err)
{
  _cleanup_free_ char *base = NULL;
  _cleanup_free_ char *dir = NULL;
  unsigned char rnd[8];
  char hex[17];
  json_t *meta, *argv;
  int sync[2];
  pid_t pid;
  char ok;

  /* Fail now, not in the background, when the sandbox is not running. */
  {
    int probe = ak_sandbox_connect (name, err);
    if (probe < 0)
      return -1;
    close (probe);
  }
  if (getentropy (rnd, sizeof rnd) < 0)
    return ak_error_set (err, errno, "getentropy");
  for (int i = 0; i < 8; i++)
    snprintf (hex + 2 * i, 3, "%02x", rnd[i]);
  base = cmd_dir (name, NULL, err);
  if (base == NULL)
    return -1;
  dir = ak_xasprintf ("%s/%s", base, hex);
  if ((mkdir (base, 0700) < 0 && errno != EEXIST) || mkdir (dir, 0700) < 0)
    return ak_error_set (err, errno, "mkdir %s", dir);
  argv = json_array ();
  for (char *const *a = req->argv; a && *a; a++)
    json_array_append_new (argv, json_string (*a));
  {
    char ts[32];
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    meta = json_pack ("{s:s, s:o, s:s}", "id", hex, "command", argv, "started", ts);
  }
  {
    /* The command line may hold a secret: the caller's alone (0600). */
    _cleanup_free_ char *mp = ak_xasprintf ("%s/meta.json", dir);
    _cleanup_free_ char *text = json_dumps (meta, JSON_COMPACT);
    json_decref (meta);
    if (text == NULL || ak_write_file (mp, text, strlen (text), 0600, err) < 0)
      return text == NULL ? ak_error_set (err, ENOMEM, "write %s", mp) : -1;
  }
  if (pipe2 (sync, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  pid = fork ();
  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid == 0)
    {
      /* Detach twice so nobody has to reap the holder. */
      pid_t h;
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      /* Nothing of the caller's: not its terminal, not its pipes (a shell's
       * $(...) would wait for them), not its locks. */
      if (null >= 0)
        dup2 (null, 0), dup2 (null, 1), dup2 (null, 2);
      sync[1] = fcntl (sync[1], F_DUPFD_CLOEXEC, 100);
      if (sync[1] < 0 || dup3 (sync[1], 3, O_CLOEXEC) < 0)
        _exit (1);
      sync[1] = 3;
      close_range (4, ~0U, 0);
      setsid ();
      h = fork ();
      if (h != 0)
        _exit (h < 0);
      {
        _cleanup_free_ char *o = ak_xasprintf ("%s/stdout", dir);
        _cleanup_free_ char *e = ak_xasprintf ("%s/stderr", dir);
        _cleanup_free_ char *x = ak_xasprintf ("%s/exit", dir);
        _cleanup_free_ char *pf = ak_xasprintf ("%s/pid", dir);
        int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
        uint64_t cap = log_cap (name);
        pid_t logger;
        ak_stdio_t io;
        ak_exec_req_t r = *req;
        ak_error_t *er = NULL;
        char buf[32];
        int code = -1;
        /* The command writes into pipes; a writer process keeps each log
         * within its cap ([resources] log_mb), rotating once, so a command
         * that floods its output never fills the host's disk. */
        if (pipe2 (po, O_CLOEXEC) < 0 || pipe2 (pe, O_CLOEXEC) < 0 || (logger = fork ()) < 0)
          _exit (1);
        if (logger == 0)
          {
            close (po[1]);
            close (pe[1]);
            close (sync[1]);
            log_pump (po[0], pe[0], dir, cap);
            _exit (0);
          }
        close (po[0]);
        close (pe[0]);
        (void) o;
        (void) e;
        io = (ak_stdio_t){ open ("/dev/null", O_RDONLY | O_CLOEXEC), po[1], pe[1] };
        r.sigfd = -1;
        r.tty = false;
        snprintf (buf, sizeof buf, "%d\n", (int) getpid ());
        ak_write_file (pf, buf, strlen (buf), 0600, NULL);
        (void) !write (sync[1], "k", 1);
        close (sync[1]);
        if (ak_sandbox_exec (name, &r, &io, &code, &er) < 0)
          {
            dprintf (io.err, "agentkernel: %s\n", er->msg);
            code = 125;
          }
        /* The logs are complete before the exit status says it ended. */
        close (io.out);
        close (io.err);
        while (waitpid (logger, NULL, 0) < 0 && errno == EINTR)
          ;
        snprintf (buf, sizeof buf, "%d\n", code);
        ak_write_file (x, buf, strlen (buf), 0600, NULL);
        _exit (0);
      }
    }
  close (sync[1]);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (read (sync[0], &ok, 1) != 1)
    {
      close (sync[0]);
      return ak_error_set (err, 0, "detached command did not start");
    }
  close (sync[0]);
  *id = ak_xstrdup (hex);
  return 0;
}

json_t *
ak_detached_status (const char *name, const char *id, ak_error_t **err)
{
  _cleanup_free_ char *dir = cmd_dir (name, id, err);
  _cleanup_free_ char *mp = NULL;
  _cleanup_free_ char *xp = NULL;
  _cleanup_free_ char *x = NULL;
  json_t *meta;

  if (dir == NULL)
    return NULL;
  mp = ak_xasprintf ("%s/meta.json", dir);
  meta = json_load_file (mp, 0, NULL);
  if (!json_is_object (meta))
    {
      json_decref (meta);
      return ak_error_set (err, 0, "detached command '%s': unreadable record", id), NULL;
    }
  {
    _cleanup_free_ char *pp = ak_xasprintf ("%s/pid", dir);
    _cleanup_free_ char *pid = NULL;
    if (ak_read_file (pp, &pid, NULL, NULL) == 0 && atoi (pid) > 0)
      json_object_set_new (meta, "pid", json_integer (atoi (pid)));
  }
  xp = ak_xasprintf ("%s/exit", dir);
  if (ak_read_file (xp, &x, NULL, NULL) == 0)
    {
      json_object_set_new (meta, "status", json_string ("exited"));
      json_object_set_new (meta, "exit_code", json_integer (atoi (x)));
    }
  else
    json_object_set_new (meta, "status", json_string ("running"));
  return meta;
}

json_t *
ak_detached_list (const char *name, ak_error_t **err)
{
  _cleanup_free_ char *base = cmd_dir (name, NULL, err);
  json_t *a;
  DIR *d;
  struct dirent *e;
  if (base == NULL)
    return NULL;
  a = json_array ();
  d = opendir (base);
  while (d && (e = readdir (d)))
    {
      json_t *s;
      if (!id_valid (e->d_name))
        continue;
      s = ak_detached_status (name, e->d_name, NULL);
      if (s)
        json_array_append_new (a, s);
    }
  if (d)
    closedir (d);
  return a;
}

int
ak_detached_log_fds (const char *name, const char *id, const char *stream, int fds[2], ak_error_t **err)
{
  _cleanup_free_ char *dir = NULL;
  _cleanup_free_ char *p = NULL;
  _cleanup_free_ char *p1 = NULL;

  fds[0] = fds[1] = -1;
  if (stream == NULL || (strcmp (stream, "stdout") != 0 && strcmp (stream, "stderr") != 0))
    return ak_error_coded (err, EINVAL, "stream must be stdout or stderr");
  dir = cmd_dir (name, id, err);
  if (dir == NULL)
    return -1;
  p = ak_xasprintf ("%s/%s", dir, stream);
  p1 = ak_xasprintf ("%s/%s.1", dir, stream);
  /* The rotated part first: it is the older output.  Either may be absent.
   * The writer may rotate between the two opens (the current file becomes
   * NAME.1 and a new one starts): then the pair would skip a whole file,
   * so it is taken again until NAME.1 is still the file opened first. */
  for (int tries = 0;; tries++)
    {
      struct stat a, b;
      int e = 0;
      fds[0] = open (p1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fds[0] < 0 && errno != ENOENT)
        e = errno;
      fds[1] = open (p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fds[1] < 0 && errno != ENOENT && e == 0)
        e = errno;
      if (e == 0)
        {
          bool moved = stat (p1, &b) == 0 && (fds[0] < 0 || fstat (fds[0], &a) < 0 || a.st_ino != b.st_ino
                                              || a.st_dev != b.st_dev);
          if (!moved || tries >= 8)
            return 0;
        }
      if (fds[0] >= 0)
        close (fds[0]);
      if (fds[1] >= 0)
        close (fds[1]);
      fds[0] = fds[1] = -1;
      if (e != 0)
        return ak_error_set (err, e, "%s of detached command '%s'", stream, id);
    }
}

int
ak_detached_kill (const char *name, const char *id, ak_error_t **err)
{
  _cleanup_free_ char *dir = cmd_dir (name, id, err);
  _cleanup_free_ char *pf = NULL;
  _cleanup_free_ char *pid = NULL;
  _cleanup_free_ char *xp = NULL;
  if (dir == NULL)
    return -1;
  xp = ak_xasprintf ("%s/exit", dir);
  if (access (xp, F_OK) == 0)
    return 0; /* already ended */
  pf = ak_xasprintf ("%s/pid", dir);
  if (ak_read_file (pf, &pid, NULL, err) < 0)
    return -1;
  /* The holder's end closes the connection: the agent kills the command. */
  if (kill (atoi (pid), SIGKILL) < 0 && errno != ESRCH)
    return ak_error_set (err, errno, "kill detached command '%s'", id);
  ak_write_file (xp, "137\n", 4, 0600, NULL);
  return 0;
}
