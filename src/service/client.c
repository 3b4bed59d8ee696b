/* The host side of the agent protocol: exec, attach and cp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "service/audit.h"
#include "service/sandbox.h"
#include "proto/proto.h"
#include "proto/tarstream.h"

int
ak_sandbox_connect (const char *name, ak_error_t **err)
{
  ak_record_t r = { 0 };
  const ak_backend_t *b;
  _cleanup_free_ char *dir = NULL;
  int fd;

  if (ak_store_load (name, &r, err) < 0)
    return -1;
  if (!ak_sandbox_running (&r))
    {
      ak_record_clear (&r);
      return ak_error_coded (err, ENOTCONN, "sandbox '%s' is not running (start it with: agentkernel start %s)",
                           name, name);
    }
  b = ak_backend_lookup (r.spec.backend, err);
  ak_record_clear (&r);
  if (b == NULL)
    return -1;
  dir = ak_store_dir (name);
  fd = b->connect (dir, err);
  if (fd < 0)
    return ak_error_prefix (err, "sandbox '%s'", name);
  return fd;
}

static json_t *
strv_json (char *const *v)
{
  json_t *a = json_array ();
  for (; v && *v; v++)
    json_array_append_new (a, json_string (*v));
  return a;
}

/* An ERROR frame from the agent becomes our error. */
static int
frame_error (const ak_frame_t *f, ak_error_t **err)
{
  json_t *j = NULL;
  const char *m;
  if (ak_proto_parse_json (f, &j, NULL) < 0)
    return ak_error_set (err, EPROTO, "agent error");
  m = json_string_value (json_object_get (j, "message"));
  ak_error_coded (err, (int) json_integer_value (json_object_get (j, "code")), "%s", m ? m : "agent error");
  json_decref (j);
  return -1;
}

static int
relay_signal (int conn, int sigfd, const ak_exec_req_t *req, ak_error_t **err)
{
  struct signalfd_siginfo si;
  json_t *j;
  int rc;
  if (read (sigfd, &si, sizeof si) != sizeof si)
    return 0;
  if (si.ssi_signo == SIGWINCH)
    {
      struct winsize ws;
      if (!req->tty || ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
        return 0;
      j = json_pack ("{s:i, s:i}", "rows", ws.ws_row, "cols", ws.ws_col);
      rc = ak_proto_write_json (conn, AK_F_RESIZE, 0, j, err);
    }
  else
    {
      j = json_pack ("{s:i}", "signal", (int) si.ssi_signo);
      rc = ak_proto_write_json (conn, AK_F_SIGNAL, 0, j, err);
    }
  json_decref (j);
  return rc < 0 ? -1 : (int) si.ssi_signo;
}

int
ak_sandbox_exec (const char *name, const ak_exec_req_t *req, const ak_stdio_t *io, int *exit_code,
                 ak_error_t **err)
{
  _cleanup_close_ int conn = -1;
  ak_proto_reader_t *rd = NULL;
  ak_stdio_t std = io ? *io : (ak_stdio_t){ 0, 1, 2 };
  bool in_open = true, done = false, cancelled = false;
  unsigned long long cancel_deadline = 0, term_deadline = 0;
  json_t *j;
  int ret = -1;
  char buf[65536];

  conn = ak_sandbox_connect (name, err);
  if (conn < 0)
    return -1;
  j = json_pack ("{s:o, s:o, s:b, s:b, s:i, s:i}", "argv", strv_json (req->argv), "env",
                 strv_json (req->env), "root", req->root, "tty", req->tty, "rows", req->rows, "cols",
                 req->cols);
  if (req->workdir)
    json_object_set_new (j, "workdir", json_string (req->workdir));
  /* On record before the command can run: a client killed while it runs
   * never gets to write command_executed. */
  ak_audit_command (AK_AUDIT_COMMAND_STARTED, name, req->argv, json_pack ("{s:b}", "tty", req->tty));
  if (ak_proto_write_json (conn, AK_F_EXEC, 1, j, err) < 0)
    {
      json_decref (j);
      return -1;
    }
  json_decref (j);
  rd = ak_proto_reader_new (conn);
  while (!done)
    {
      struct pollfd p[4] = {
        { .fd = conn, .events = POLLIN },
        { .fd = in_open ? std.in : -1, .events = POLLIN },
        { .fd = req->sigfd, .events = POLLIN },
        { .fd = req->cancel_fd > 0 && !cancelled ? req->cancel_fd : -1, .events = POLLIN },
      };
      /* Frames already read into the reader's buffer come first. */
      bool buffered = ak_proto_reader_has_frame (rd);
      int timeout = buffered ? 0 : -1, r;
      if ((cancelled || term_deadline) && !buffered)
        {
          unsigned long long now = ak_now_ns (), until = cancelled ? cancel_deadline : term_deadline;
          timeout = now >= until ? 0 : (int) ((until - now) / 1000000) + 1;
        }
      r = poll (p, 4, timeout);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          ak_error_set (err, errno, "poll");
          goto out;
        }
      if (r == 0 && !cancelled && term_deadline && !buffered && ak_now_ns () >= term_deadline)
        {
          /* Asked to end 5 s ago and still running: killed, as a cancel. */
          p[3].revents = POLLIN;
          term_deadline = 0;
        }
      else if (r == 0 && cancelled && !buffered)
        {
          /* Killed, yet its output is still held open (by a process that
           * left its group): stop waiting, drop the connection. */
          ak_error_set (err, 0, "the command did not end within 5 s of being killed");
          goto out;
        }
      if (buffered)
        p[0].revents |= POLLIN;
      if (p[2].revents & POLLIN)
        {
          int sig = relay_signal (conn, req->sigfd, req, err);
          if (sig < 0)
            goto out;
          /* A request to end (TERM, INT, HUP, QUIT) is passed on; a
           * command that ignores it is killed 5 s later. */
          if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) && term_deadline == 0
              && !cancelled)
            term_deadline = ak_now_ns () + 5000000000ULL;
        }
      if (p[3].revents & (POLLIN | POLLHUP | POLLERR))
        {
          /* The agent kills the command and still reports its EXIT. */
          json_t *k = json_pack ("{s:i}", "signal", SIGKILL);
          int rc = ak_proto_write_json (conn, AK_F_SIGNAL, 0, k, err);
          json_decref (k);
          if (rc < 0)
            goto out;
          cancelled = true;
          cancel_deadline = ak_now_ns () + 5000000000ULL;
        }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        {
          ssize_t n = read (std.in, buf, sizeof buf);
          if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
          ak_error_t *werr = NULL;
          if (n <= 0)
            {
              in_open = false;
              /* A terminal session keeps going; a command gets EOF. */
              if (!req->tty)
                ak_proto_write (conn, AK_F_STDIN, 1, NULL, 0, &werr);
            }
          else
            ak_proto_write (conn, AK_F_STDIN, 1, buf, (size_t) n, &werr);
          if (werr != NULL)
            {
              /* The agent may have finished (and closed its end) before it
               * needed our input: its EXIT frame is still to be read. */
              if (werr->code != EPIPE && werr->code != ECONNRESET)
                {
                  *err = werr;
                  goto out;
                }
              ak_error_free (werr);
              in_open = false;
            }
        }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          ak_frame_t f;
          int rc = ak_proto_read (rd, &f, err);
          if (rc <= 0)
            {
              if (rc == 0)
                ak_error_set (err, 0, "the agent of '%s' closed the connection", name);
              goto out;
            }
          switch (f.type)
            {
            case AK_F_STDOUT:
            case AK_F_STDERR:
              if (req->on_output)
                req->on_output (f.payload, f.len, req->on_output_arg);
              if (ak_write_all (f.type == AK_F_STDOUT ? std.out : std.err, f.payload, f.len) < 0
                  && errno != EPIPE)
                {
                  ak_error_set (err, errno, "write output");
                  goto out;
                }
              break;
            case AK_F_EXIT:
              if (ak_proto_parse_json (&f, &j, err) < 0)
                goto out;
              *exit_code = (int) json_integer_value (json_object_get (j, "exit_code"));
              json_decref (j);
              done = true;
              break;
            case AK_F_ERROR:
              frame_error (&f, err);
              goto out;
            default:
              ak_error_set (err, EPROTO, "unexpected %s frame from the agent", ak_proto_type_name (f.type));
              goto out;
            }
        }
    }
  ret = 0;
  ak_audit ("command_executed", name,
            json_pack ("{s:o, s:i, s:b}", "command", strv_json (req->argv), "exit_code", *exit_code,
                       "tty", req->tty));
out:
  ak_proto_reader_free (rd);
  return ret;
}

/* Reads the agent's final reply: OK, or ERROR. */
static int
final_reply (ak_proto_reader_t *rd, long long *size, ak_error_t **err)
{
  ak_frame_t f;
  json_t *j = NULL;
  int rc = ak_proto_read (rd, &f, err);
  if (rc != 1)
    return rc == 0 ? ak_error_set (err, 0, "the agent closed the connection") : -1;
  if (f.type == AK_F_ERROR)
    return frame_error (&f, err);
  if (f.type != AK_F_OK || ak_proto_parse_json (&f, &j, err) < 0)
    return ak_error_set (err, EPROTO, "unexpected reply from the agent");
  if (size)
    *size = (long long) json_integer_value (json_object_get (j, "size"));
  json_decref (j);
  return 0;
}

/* Connects and asks for a transfer (FILE_READ/FILE_WRITE/FILE_REMOVE) of
 * `inside`; strict: see ak_sandbox_read_file. */
static int
open_transfer (const char *name, uint8_t type, const char *inside, bool strict, ak_error_t **err)
{
  _cleanup_close_ int conn = -1;
  json_t *j;
  int ret;

  if (inside[0] != '/')
    return ak_error_coded (err, EINVAL, "path inside the sandbox must be absolute: %s", inside);
  conn = ak_sandbox_connect (name, err);
  if (conn < 0)
    return -1;
  j = json_pack ("{s:s, s:b}", "path", inside, "strict", strict);
  ret = ak_proto_write_json (conn, type, 1, j, err);
  json_decref (j);
  return ret < 0 ? -1 : take_fd (&conn);
}

int
ak_sandbox_copy_in (const char *name, const char *host_path, const char *inside, ak_error_t **err)
{
  _cleanup_close_ int conn = -1;
  ak_proto_reader_t *rd;
  long long size = 0;
  int ret;

  if (access (host_path, R_OK) < 0)
    return ak_error_set (err, errno, "%s", host_path);
  conn = open_transfer (name, AK_F_FILE_WRITE, inside, false, err);
  if (conn < 0)
    return -1;
  rd = ak_proto_reader_new (conn);
  ret = ak_tar_send (conn, host_path, err);
  if (ret == 0)
    ret = final_reply (rd, &size, err);
  else
    {
      /* The stream stopped short (a source that could not be read, or the
       * agent refusing): the agent is told there is no more to come, so it
       * answers instead of waiting for the rest.  It may have said why it
       * stopped reading. */
      ak_error_t *why = NULL;
      shutdown (conn, SHUT_WR);
      if (final_reply (rd, NULL, &why) < 0 && why != NULL && (*err == NULL || (*err)->code == EPIPE))
        {
          ak_error_clear (err);
          *err = why;
        }
      else
        ak_error_free (why);
    }
  ak_proto_reader_free (rd);
  if (ret == 0)
    ak_audit ("file_written", name, json_pack ("{s:s, s:s, s:I}", "path", inside, "source", host_path,
                                               "bytes", (json_int_t) size));
  return ret;
}

int
ak_sandbox_copy_out (const char *name, const char *inside, const char *host_path, ak_error_t **err)
{
  _cleanup_close_ int conn = open_transfer (name, AK_F_FILE_READ, inside, false, err);
  ak_proto_reader_t *rd;
  long long bytes = 0;
  int ret;

  if (conn < 0)
    return -1;
  rd = ak_proto_reader_new (conn);
  ret = ak_tar_receive (rd, host_path, true, &bytes, err);
  if (ret == 0)
    ret = final_reply (rd, NULL, err);
  ak_proto_reader_free (rd);
  if (ret == 0)
    ak_audit ("file_read", name, json_pack ("{s:s, s:s, s:I}", "path", inside, "destination", host_path,
                                            "bytes", (json_int_t) bytes));
  return ret;
}

int
ak_sandbox_export (const char *name, const char *inside, int out_fd, long long *bytes, ak_error_t **err)
{
  _cleanup_close_ int conn = open_transfer (name, AK_F_FILE_READ, inside, false, err);
  ak_proto_reader_t *rd;
  long long n = 0;
  int ret = -1;

  if (conn < 0)
    return -1;
  rd = ak_proto_reader_new (conn);
  for (;;)
    {
      ak_frame_t f;
      int rc = ak_proto_read (rd, &f, err);
      if (rc == AK_PROTO_AGAIN)
        continue;
      if (rc != 1)
        {
          if (rc == 0)
            ak_error_set (err, 0, "the agent of '%s' closed the connection", name);
          goto out;
        }
      if (f.type == AK_F_ERROR)
        {
          frame_error (&f, err);
          goto out;
        }
      if (f.type != AK_F_FILE_DATA)
        {
          ak_error_set (err, EPROTO, "unexpected %s frame from the agent", ak_proto_type_name (f.type));
          goto out;
        }
      if (f.len == 0)
        break;
      if (ak_write_all (out_fd, f.payload, f.len) < 0)
        {
          ak_error_set (err, errno, "write");
          goto out;
        }
      n += (long long) f.len;
    }
  ret = final_reply (rd, NULL, err);
  if (ret == 0)
    {
      *bytes = n;
      ak_audit ("sandbox_exported", name, json_pack ("{s:s, s:I}", "path", inside, "bytes", (json_int_t) n));
    }
out:
  ak_proto_reader_free (rd);
  return ret;
}

int
ak_sandbox_read_file (const char *name, const char *inside, size_t max, char **data, size_t *len,
                      ak_error_t **err)
{
  _cleanup_close_ int conn = open_transfer (name, AK_F_FILE_READ, inside, true, err);
  ak_proto_reader_t *rd;
  int ret;

  if (conn < 0)
    return -1;
  rd = ak_proto_reader_new (conn);
  ret = ak_tar_receive_mem (rd, max, data, len, err);
  if (ret == 0 && (ret = final_reply (rd, NULL, err)) < 0)
    free (*data);
  ak_proto_reader_free (rd);
  if (ret == 0)
    ak_audit ("file_read", name, json_pack ("{s:s, s:I}", "path", inside, "bytes", (json_int_t) *len));
  return ret;
}

int
ak_sandbox_write_file (const char *name, const char *inside, const void *data, size_t len, ak_error_t **err)
{
  _cleanup_close_ int conn = open_transfer (name, AK_F_FILE_WRITE, inside, true, err);
  ak_proto_reader_t *rd;
  int ret;

  if (conn < 0)
    return -1;
  rd = ak_proto_reader_new (conn);
  ret = ak_tar_send_mem (conn, "file", data, len, err);
  /* The agent's reply says why, when it refused the path before reading. */
  {
    ak_error_t *why = NULL;
    if (final_reply (rd, NULL, &why) < 0)
      {
        ak_error_clear (err);
        *err = why;
        ret = -1;
      }
  }
  ak_proto_reader_free (rd);
  if (ret == 0)
    ak_audit ("file_written", name, json_pack ("{s:s, s:I}", "path", inside, "bytes", (json_int_t) len));
  return ret;
}

int
ak_sandbox_remove_file (const char *name, const char *inside, ak_error_t **err)
{
  _cleanup_close_ int conn = open_transfer (name, AK_F_FILE_REMOVE, inside, true, err);
  ak_proto_reader_t *rd;
  int ret;

  if (conn < 0)
    return -1;
  rd = ak_proto_reader_new (conn);
  ret = final_reply (rd, NULL, err);
  ak_proto_reader_free (rd);
  if (ret == 0)
    ak_audit ("file_removed", name, json_pack ("{s:s}", "path", inside));
  return ret;
}
