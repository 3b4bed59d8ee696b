/* The agents installed on this host (see agent_host.h). */
#define _GNU_SOURCE
#include "service/agent_host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

char *
ak_which (const char *name, const char *path_env)
{
  _cleanup_free_ char *copy = NULL;
  char *save = NULL;

  if (name == NULL || *name == '\0' || strchr (name, '/') != NULL)
    return NULL;
  if (path_env == NULL)
    path_env = getenv ("PATH");
  if (path_env == NULL)
    return NULL;
  copy = ak_xstrdup (path_env);
  for (char *dir = strtok_r (copy, ":", &save); dir; dir = strtok_r (NULL, ":", &save))
    {
      _cleanup_free_ char *p = NULL;
      struct stat st;
      if (dir[0] != '/')
        continue; /* a relative PATH entry means the current directory: never */
      p = ak_xasprintf ("%s/%s", dir, name);
      if (stat (p, &st) == 0 && S_ISREG (st.st_mode) && access (p, X_OK) == 0)
        return steal_pointer (&p);
    }
  return NULL;
}

static int
exit_status_of (int ws)
{
  if (WIFEXITED (ws))
    return WEXITSTATUS (ws);
  if (WIFSIGNALED (ws))
    return 128 + WTERMSIG (ws);
  return 125;
}

int
ak_run_captured (char *const *argv, unsigned timeout_ms, size_t max, char **out, int *status,
                 ak_error_t **err)
{
  int p[2];
  pid_t pid;
  _cleanup_free_ char *buf = ak_xmalloc (max + 1);
  size_t len = 0;
  bool eof = false, exited = false;
  int ws = 0;
  unsigned long long deadline = ak_now_ns () + (unsigned long long) timeout_ms * 1000000ULL;

  if (pipe2 (p, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  pid = fork ();
  if (pid < 0)
    {
      close (p[0]);
      close (p[1]);
      return ak_error_set (err, errno, "fork");
    }
  if (pid == 0)
    {
      /* Its own process group, so that a timeout kills whatever it
       * started too. */
      int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      setpgid (0, 0);
      ak_signals_default ();
      if (devnull < 0 || dup2 (devnull, 0) < 0 || dup2 (p[1], 1) < 0 || dup2 (p[1], 2) < 0)
        _exit (127);
      execv (argv[0], argv);
      _exit (127);
    }
  setpgid (pid, pid); /* both sides: whichever runs first */
  close (p[1]);
  while (!(eof && exited))
    {
      unsigned long long now = ak_now_ns ();
      struct pollfd pfd = { .fd = p[0], .events = POLLIN };
      int wait_ms;
      if (now >= deadline)
        {
          kill (-pid, SIGKILL);
          kill (pid, SIGKILL);
          if (!exited)
            while (waitpid (pid, &ws, 0) < 0 && errno == EINTR)
              ;
          close (p[0]);
          return ak_error_set (err, 0, "timed out after %u s", (timeout_ms + 999) / 1000);
        }
      wait_ms = (int) ((deadline - now) / 1000000ULL);
      if (eof || wait_ms > 50)
        wait_ms = eof ? 20 : 50;
      if (!eof)
        {
          int r = poll (&pfd, 1, wait_ms);
          if (r > 0)
            {
              char tmp[4096];
              ssize_t n = read (p[0], tmp, sizeof tmp);
              if (n > 0)
                {
                  size_t take = (size_t) n < max - len ? (size_t) n : max - len;
                  memcpy (buf + len, tmp, take);
                  len += take;
                }
              else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                eof = true;
            }
        }
      else
        poll (NULL, 0, wait_ms);
      if (!exited)
        {
          pid_t w = waitpid (pid, &ws, WNOHANG);
          if (w == pid)
            exited = true;
        }
    }
  close (p[0]);
  /* Whatever it left behind in its group goes with it. */
  kill (-pid, SIGKILL);
  buf[len] = '\0';
  *out = steal_pointer (&buf);
  *status = exit_status_of (ws);
  return 0;
}

/* The first non-empty line, trimmed. */
static char *
first_line (const char *s)
{
  while (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
    s++;
  size_t n = strcspn (s, "\r\n");
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  if (n > 200)
    n = 200;
  /* Printable ASCII only: it goes to a terminal. */
  char *r = ak_xstrndup (s, n);
  for (char *c = r; *c; c++)
    if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
      *c = '?';
  return r;
}

void
ak_agent_status (const ak_agent_t *a, unsigned timeout_ms, ak_agent_status_t *st)
{
  memset (st, 0, sizeof *st);
  st->agent = a;
  for (const char *const *k = a->key_vars; *k; k++)
    {
      const char *v = getenv (*k);
      if (v != NULL && *v != '\0')
        ak_strv_push (&st->keys_set, *k);
    }
  st->path = ak_which (a->binary, NULL);
  if (st->path == NULL || timeout_ms == 0)
    return;

  char *argv[] = { st->path, (char *) a->version_flag, NULL };
  _cleanup_free_ char *out = NULL;
  ak_error_t *err = NULL;
  int status = 0;
  if (ak_run_captured (argv, timeout_ms, 4096, &out, &status, &err) < 0)
    {
      st->version_error = ak_xstrdup (err->msg);
      ak_error_free (err);
      return;
    }
  if (status != 0)
    {
      st->version_error = ak_xasprintf ("'%s %s' exited with status %d", a->binary, a->version_flag, status);
      return;
    }
  st->version = first_line (out);
  if (st->version[0] == '\0')
    {
      free (st->version);
      st->version = NULL;
      st->version_error = ak_xasprintf ("'%s %s' printed nothing", a->binary, a->version_flag);
    }
}

void
ak_agent_status_clear (ak_agent_status_t *st)
{
  free (st->path);
  free (st->version);
  free (st->version_error);
  ak_strv_free (st->keys_set);
  memset (st, 0, sizeof *st);
}
