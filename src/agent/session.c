/* One agent connection: EXEC (pipes or PTY) or a file transfer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pty.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent/session.h"
#include "common/child.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"
#include "proto/proto.h"
#include "proto/tarstream.h"

extern char **environ;

/* An ERROR frame; code (an errno value, or 0) tells the host what kind of
 * failure it was. */
static int __attribute__ ((format (printf, 3, 4)))
send_error_code (int conn, int code, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  json_t *j;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  j = json_pack ("{s:s, s:i}", "message", msg, "code", code);
  ak_proto_write_json (conn, AK_F_ERROR, 0, j, NULL);
  json_decref (j);
  return 1;
}

#define send_error(conn, ...) send_error_code (conn, 0, __VA_ARGS__)

/* Take the ids a request asks for: the sandbox user, or uid 0 when the
 * sandbox maps it (held in the saved set, no capability involved). */
static int
become (const ak_agent_conf_t *conf, bool root)
{
  uid_t u = root ? 0 : conf->user_uid;
  gid_t g = root ? 0 : conf->user_gid;
  if (root && !conf->can_root)
    {
      errno = EPERM;
      return -1;
    }
  if (setresgid (g, g, g) < 0 || setresuid (u, u, u) < 0)
    return -1;
  return 0;
}

typedef struct exec_req {
  char **argv;
  char **env;
  const char *workdir;
  bool root, tty;
  bool end_with_command; /* a run's command: its end is the end (see pump) */
  unsigned short rows, cols;
} exec_req_t;

static int
parse_exec (json_t *j, const ak_agent_conf_t *conf, exec_req_t *r, char *why, size_t whylen)
{
  json_t *argv = json_object_get (j, "argv"), *env = json_object_get (j, "env");
  json_t *wd = json_object_get (j, "workdir");
  size_t i;
  json_t *v;

  memset (r, 0, sizeof (*r));
  if (!json_is_array (argv) || json_array_size (argv) == 0 || json_array_size (argv) > 4096)
    return snprintf (why, whylen, "exec: argv must be a non-empty array"), -1;
  r->argv = ak_xcalloc (json_array_size (argv) + 1, sizeof (char *));
  json_array_foreach (argv, i, v)
    {
      if (!json_is_string (v))
        return snprintf (why, whylen, "exec: argv[%zu] is not a string", i), -1;
      r->argv[i] = ak_xstrdup (json_string_value (v));
    }
  r->root = json_is_true (json_object_get (j, "root"));
  r->env = ak_spec_build_env_in (conf->spec, r->root || conf->spec->as_root, ak_dir_exists);
  if (env != NULL && !json_is_array (env))
    return snprintf (why, whylen, "exec: env must be an array of KEY=VALUE"), -1;
  json_array_foreach (env, i, v)
    {
      const char *kv = json_string_value (v);
      size_t k;
      bool replaced = false;
      if (kv == NULL || strchr (kv, '=') == NULL || kv[0] == '=')
        return snprintf (why, whylen, "exec: env[%zu] is not KEY=VALUE", i), -1;
      k = (size_t) (strchr (kv, '=') - kv);
      for (char **e = r->env; *e; e++)
        if (strncmp (*e, kv, k + 1) == 0)
          {
            free (*e);
            *e = ak_xstrdup (kv);
            replaced = true;
            break;
          }
      if (!replaced)
        ak_strv_push (&r->env, kv);
    }
  if (wd != NULL && (!json_is_string (wd) || json_string_value (wd)[0] != '/'))
    return snprintf (why, whylen, "exec: workdir must be an absolute path"), -1;
  r->workdir = wd ? json_string_value (wd) : NULL;
  r->tty = json_is_true (json_object_get (j, "tty"));
  r->end_with_command = json_is_true (json_object_get (j, "end_with_command"));
  r->rows = (unsigned short) json_integer_value (json_object_get (j, "rows"));
  r->cols = (unsigned short) json_integer_value (json_object_get (j, "cols"));
  return 0;
}

/* In the command's process: ids, directory, then exec.  Reports failure
 * through the status pipe. */
static _Noreturn void
exec_child (const ak_agent_conf_t *conf, const exec_req_t *r, int status_w)
{
  const char *wd = r->workdir ? r->workdir : ak_spec_default_workdir (conf->spec, r->root);
  int e;
  /* Whatever the agent ignores (and whatever was ignored where the sandbox
   * was started, maybe long ago) is not the command's business. */
  ak_signals_default ();
  if (become (conf, r->root) < 0)
    {
      e = errno;
      dprintf (status_w, "%d:cannot run as %s: %s", EPERM,
               r->root ? "root (this sandbox maps no uid 0)" : "the sandbox user", strerror (e));
      _exit (125);
    }
  if (chdir (wd) < 0)
    {
      dprintf (status_w, "%d:working directory %s: %s", EINVAL, wd, strerror (errno));
      _exit (125);
    }
  /* Nothing of the agent's (its sockets, the connection) and nothing but the
   * three standard streams reaches the command; the status pipe stays open
   * until exec succeeds. */
  if (close_range (3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    {
      dprintf (status_w, "%d:close descriptors: %s", errno, strerror (errno));
      _exit (125);
    }
  environ = r->env;
  execvp (r->argv[0], r->argv);
  e = errno;
  dprintf (STDERR_FILENO, "agentkernel: %s: %s\n", r->argv[0], e == ENOENT ? "command not found" : strerror (e));
  _exit (e == ENOENT ? 127 : 126);
}

static int
write_exit (int conn, int status)
{
  json_t *j;
  int code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  j = json_pack ("{s:i}", "exit_code", code);
  if (WIFSIGNALED (status))
    json_object_set_new (j, "signal", json_integer (WTERMSIG (status)));
  ak_proto_write_json (conn, AK_F_EXIT, 0, j, NULL);
  json_decref (j);
  return 0;
}

/* Pumps bytes between the connection and the command until it ends: until
 * its output is closed too, or, with end_with_command (a run: a sandbox
 * that ends with its command, as a container's does), once what it wrote
 * before its end is sent; then what it left running in its process group
 * goes, and nothing holding its output holds the end. */
static int
pump (int conn, ak_proto_reader_t *rd, pid_t pid, int in_w, int out_r, int err_r, bool tty, bool end_with_command)
{
  char buf[65536];
  int status = 0;
  /* The reader may already hold frames that came with the request. */
  bool exited = false, conn_open = true, try_conn = true, drain = false;
  _cleanup_free_ char *pending = NULL;
  size_t pending_len = 0;

  fcntl (conn, F_SETFL, fcntl (conn, F_GETFL) | O_NONBLOCK);
  if (in_w >= 0)
    fcntl (in_w, F_SETFL, fcntl (in_w, F_GETFL) | O_NONBLOCK);
  while (out_r >= 0 || err_r >= 0 || !exited)
    {
      struct pollfd p[4];
      int n = 0, i_conn = -1, i_out = -1, i_err = -1, i_in = -1;
      /* While the command's input is backed up no more frames are read
       * (that is the backpressure), but a client that goes away is still
       * seen (POLLHUP), whatever the command does with its streams. */
      if (conn_open)
        p[i_conn = n++] = (struct pollfd){ .fd = conn, .events = pending_len == 0 ? POLLIN : 0 };
      if (out_r >= 0)
        p[i_out = n++] = (struct pollfd){ .fd = out_r, .events = POLLIN };
      if (err_r >= 0)
        p[i_err = n++] = (struct pollfd){ .fd = err_r, .events = POLLIN };
      if (pending_len > 0 && in_w >= 0)
        p[i_in = n++] = (struct pollfd){ .fd = in_w, .events = POLLOUT };
      /* With its output closed the command may still run: the connection
       * is still watched (a client that goes away ends it), and its end
       * polled for. */
      if (poll (p, (nfds_t) n, 200) < 0 && errno != EINTR)
        break;
      if (!exited && ak_wait_child (pid, &status, WNOHANG) == pid)
        {
          exited = true;
          /* What it wrote is in its pipes already: taken without waiting. */
          drain = end_with_command;
          for (int k = 0; drain && k < 2; k++)
            {
              int fd = k == 0 ? out_r : err_r;
              if (fd >= 0)
                fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
            }
        }
      if (i_in >= 0 && (p[i_in].revents & (POLLOUT | POLLERR | POLLHUP)))
        {
          ssize_t w = write (in_w, pending, pending_len);
          if (w > 0)
            {
              memmove (pending, pending + w, pending_len - (size_t) w);
              pending_len -= (size_t) w;
              /* The reader may hold more frames already. */
              try_conn = pending_len == 0;
            }
          else if (w < 0 && errno != EAGAIN && errno != EINTR)
            pending_len = 0, ak_closep (&in_w);
        }
      if (i_conn >= 0 && pending_len > 0 && (p[i_conn].revents & (POLLHUP | POLLERR)))
        {
          /* Client gone: the command goes with it. */
          conn_open = false;
          kill (-pid, SIGKILL);
          kill (pid, SIGKILL);
          pending_len = 0;
          ak_closep (&in_w);
        }
      else if (i_conn >= 0 && pending_len == 0
               && (try_conn || (p[i_conn].revents & (POLLIN | POLLHUP | POLLERR))))
        {
          try_conn = false;
          for (;;)
            {
              ak_frame_t f;
              int rc = ak_proto_read (rd, &f, NULL);
              if (rc == AK_PROTO_AGAIN)
                break;
              if (rc <= 0)
                {
                  /* Client gone: the command goes with it. */
                  conn_open = false;
                  kill (-pid, SIGKILL);
                  kill (pid, SIGKILL);
                  ak_closep (&in_w);
                  break;
                }
              if (f.type == AK_F_STDIN)
                {
                  if (f.len == 0 && !tty)
                    ak_closep (&in_w);
                  else if (in_w >= 0)
                    {
                      pending = ak_xrealloc (pending, pending_len + f.len);
                      memcpy (pending + pending_len, f.payload, f.len);
                      pending_len += f.len;
                      break; /* drain before reading more */
                    }
                }
              else if (f.type == AK_F_RESIZE && tty)
                {
                  json_t *j = NULL;
                  if (ak_proto_parse_json (&f, &j, NULL) == 0)
                    {
                      struct winsize ws = { .ws_row = (unsigned short) json_integer_value (json_object_get (j, "rows")),
                                            .ws_col = (unsigned short) json_integer_value (json_object_get (j, "cols")) };
                      ioctl (out_r, TIOCSWINSZ, &ws);
                      json_decref (j);
                    }
                }
              else if (f.type == AK_F_SIGNAL)
                {
                  json_t *j = NULL;
                  if (ak_proto_parse_json (&f, &j, NULL) == 0)
                    {
                      int sig = (int) json_integer_value (json_object_get (j, "signal"));
                      if (sig > 0 && sig < 65)
                        {
                          /* To the foreground of a terminal, else the
                           * command's process group; with "process", to
                           * the command's process alone (what a
                           * container's init relays). */
                          pid_t fg = tty && out_r >= 0 ? tcgetpgrp (out_r) : -1;
                          if (json_is_true (json_object_get (j, "process")))
                            {
                              if (!exited)
                                kill (pid, sig);
                            }
                          else
                            kill (fg > 0 ? -fg : -pid, sig);
                        }
                      json_decref (j);
                    }
                }
            }
        }
      for (int k = 0; k < 2; k++)
        {
          int idx = k == 0 ? i_out : i_err;
          int *fd = k == 0 ? &out_r : &err_r;
          ssize_t r;
          /* Draining: a bounded number of reads (a writer left running
           * cannot keep it going). */
          int reads = drain ? 16 : 1;
          if (*fd < 0 || (!drain && (idx < 0 || !(p[idx].revents & (POLLIN | POLLHUP | POLLERR)))))
            continue;
          do
            {
              r = read (*fd, buf, sizeof buf);
              if (r > 0 && conn_open)
                {
                  /* Blocking on a slow client is the backpressure. */
                  fcntl (conn, F_SETFL, fcntl (conn, F_GETFL) & ~O_NONBLOCK);
                  if (ak_proto_write (conn, k == 0 ? AK_F_STDOUT : AK_F_STDERR, 0, buf, (size_t) r, NULL) < 0)
                    conn_open = false;
                  fcntl (conn, F_SETFL, fcntl (conn, F_GETFL) | O_NONBLOCK);
                }
            }
          while (r > 0 && --reads > 0);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            ak_closep (fd); /* a PTY master reports EIO once the slave side is gone */
          if (drain)
            ak_closep (fd);
        }
      if (drain)
        kill (-pid, SIGKILL); /* what it left in its group */
    }
  ak_closep (&in_w);
  if (conn_open)
    {
      fcntl (conn, F_SETFL, fcntl (conn, F_GETFL) & ~O_NONBLOCK);
      write_exit (conn, status);
    }
  return 0;
}

static int
serve_exec (int conn, ak_proto_reader_t *rd, json_t *j, const ak_agent_conf_t *conf)
{
  exec_req_t r;
  char why[256];
  int st[2], in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
  int master = -1, ret;
  pid_t pid;
  char msg[512];
  ssize_t n;

  if (parse_exec (j, conf, &r, why, sizeof why) < 0)
    {
      ak_strv_free (r.argv);
      ak_strv_free (r.env);
      return send_error (conn, "%s", why);
    }
  if (pipe2 (st, O_CLOEXEC) < 0)
    return send_error (conn, "pipe: %s", strerror (errno));
  if (r.tty)
    {
      struct winsize ws = { .ws_row = r.rows ? r.rows : 24, .ws_col = r.cols ? r.cols : 80 };
      pid = forkpty (&master, NULL, NULL, &ws);
    }
  else
    {
      if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (err, O_CLOEXEC) < 0)
        return send_error (conn, "pipe: %s", strerror (errno));
      pid = fork ();
      if (pid == 0)
        {
          setsid ();
          dup2 (in[0], 0);
          dup2 (out[1], 1);
          dup2 (err[1], 2);
        }
    }
  if (pid < 0)
    return send_error (conn, "fork: %s", strerror (errno));
  if (pid == 0)
    {
      close (st[0]);
      exec_child (conf, &r, st[1]);
    }
  close (st[1]);
  /* Setup errors arrive on the status pipe as "CODE:message"; exec closes
   * it empty. */
  n = read (st[0], msg, sizeof msg - 1);
  close (st[0]);
  if (n > 0)
    {
      char *text;
      int code;
      msg[n] = '\0';
      code = (int) strtol (msg, &text, 10);
      text = *text == ':' ? text + 1 : msg;
      ak_wait_child (pid, NULL, 0);
      send_error_code (conn, code, "%s", text);
      ret = 1;
    }
  else if (r.tty)
    ret = pump (conn, rd, pid, dup (master), master, -1, true, r.end_with_command);
  else
    {
      close (in[0]);
      close (out[1]);
      close (err[1]);
      ret = pump (conn, rd, pid, in[1], out[0], err[0], false, r.end_with_command);
    }
  ak_strv_free (r.argv);
  ak_strv_free (r.env);
  return ret;
}

static const char *
strict_why (int e)
{
  switch (e)
    {
    case ELOOP:
      return "the path goes through a symlink";
    case EISDIR:
      return "is a directory";
    case ENOTDIR:
      return "a component of the path is not a directory";
    case EINVAL:
      return "is not a regular file";
    default:
      return strerror (e);
    }
}

/* FILE_READ / FILE_WRITE / FILE_REMOVE.  With "strict" (the API's files),
 * the path names exactly one regular file reached without any symlink;
 * without it, `cp` semantics (into a directory, symlinks followed). */
static int
serve_file (int conn, ak_proto_reader_t *rd, uint8_t type, json_t *j, const ak_agent_conf_t *conf)
{
  const char *path = json_string_value (json_object_get (j, "path"));
  bool root = json_is_true (json_object_get (j, "root"));
  bool strict = json_is_true (json_object_get (j, "strict")) || type == AK_F_FILE_REMOVE;
  _cleanup_close_ int dirfd = -1;
  ak_error_t *err = NULL;
  long long bytes = 0;
  json_t *ok;
  int rc;

  if (path == NULL || path[0] != '/')
    return send_error_code (conn, EINVAL, "file: path must be absolute");
  if (become (conf, root) < 0)
    return send_error (conn, "file: cannot take the sandbox user's ids: %s", strerror (errno));
  /* Paths resolve in the sandbox's own root, as its user. */
  if (strict)
    {
      struct stat st;
      const char *base;
      _cleanup_close_ int top = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      dirfd = top < 0 ? -1 : ak_fs_open_parent (top, path, type == AK_F_FILE_WRITE, &base);
      if (dirfd < 0 || fchdir (dirfd) < 0)
        return send_error_code (conn, errno, "%s: %s", path, strict_why (errno));
      if (fstatat (dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno != ENOENT || type != AK_F_FILE_WRITE)
            return send_error_code (conn, errno, "%s: %s", path, strict_why (errno));
        }
      else if (S_ISLNK (st.st_mode) && type != AK_F_FILE_REMOVE)
        return send_error_code (conn, ELOOP, "%s: is a symlink", path);
      else if (S_ISDIR (st.st_mode) && type != AK_F_FILE_REMOVE)
        return send_error_code (conn, EISDIR, "%s: is a directory", path);
      else if (!S_ISREG (st.st_mode) && type == AK_F_FILE_READ)
        return send_error_code (conn, EINVAL, "%s: is not a regular file", path);
      if (type == AK_F_FILE_REMOVE)
        {
          if (unlinkat (dirfd, base, S_ISDIR (st.st_mode) ? AT_REMOVEDIR : 0) < 0)
            return send_error_code (conn, errno, "%s: %s", path, strerror (errno));
          path = NULL;
        }
      else
        path = base;
    }
  rc = 0;
  if (type == AK_F_FILE_READ)
    rc = ak_tar_send (conn, path, &err);
  else if (type == AK_F_FILE_WRITE)
    rc = ak_tar_receive (rd, path, false, &bytes, &err);
  if (rc < 0)
    {
      send_error (conn, "%s", err->msg);
      ak_error_free (err);
      return 1;
    }
  ok = json_pack ("{s:I}", "size", (json_int_t) bytes);
  ak_proto_write_json (conn, AK_F_OK, 0, ok, NULL);
  json_decref (ok);
  return 0;
}

int
ak_session_serve (int conn, const ak_agent_conf_t *conf)
{
  ak_proto_reader_t *rd = ak_proto_reader_new (conn);
  ak_frame_t f;
  json_t *j = NULL;
  ak_error_t *err = NULL;
  int ret = 1;

  signal (SIGPIPE, SIG_IGN);
  if (ak_proto_read (rd, &f, &err) != 1 || ak_proto_parse_json (&f, &j, &err) < 0)
    {
      send_error (conn, "bad request: %s", err ? err->msg : "connection closed");
      goto out;
    }
  switch (f.type)
    {
    case AK_F_EXEC:
      ret = serve_exec (conn, rd, j, conf);
      break;
    case AK_F_FILE_READ:
    case AK_F_FILE_WRITE:
    case AK_F_FILE_REMOVE:
      ret = serve_file (conn, rd, f.type, j, conf);
      break;
    case AK_F_HELLO:
      {
        json_t *ok = json_pack ("{s:i}", "version", AK_PROTO_VERSION);
        ak_proto_write_json (conn, AK_F_OK, 0, ok, NULL);
        json_decref (ok);
        ret = 0;
      }
      break;
    default:
      send_error (conn, "unexpected request type %d", f.type);
    }
out:
  json_decref (j);
  ak_error_free (err);
  ak_proto_reader_free (rd);
  close (conn);
  return ret;
}
