/* The HTTP API's endpoints for what is inside a running sandbox: its
 * files, its audit entries and its detached commands. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "service/audit.h"
#include "service/detached.h"
#include "server/common.h"
#include "server/http_internal.h"
#include "server/request.h"

typedef enum MHD_Result result_t;

/* ---- a detached command's logs, streamed ----------------------------------
 *
 * {"success": true, "data": {"stdout": "...", "stderr": "..."}} written as
 * the files are read, a chunk at a time: the server never holds a log
 * whole, however big (each is at most twice [resources] log_mb on disk).
 * Bytes that are not UTF-8 become U+FFFD, as everywhere in the API. */

typedef struct logs_out {
  int fds[2][2];     /* per stream: rotated part, current part (-1: none) */
  const char *names[2];
  int n_streams, stream, phase; /* phase: 0 key, 1 rotated part, 2 current part, 3 end */
  bool opened, closed;
  char carry[4];     /* the start of a UTF-8 sequence cut by a read */
  size_t n_carry;
  char *buf;
  size_t len, off;
} logs_out_t;

static void
logs_add (logs_out_t *l, const char *text, size_t n)
{
  l->buf = ak_xrealloc (l->buf, l->len + n + 1);
  memcpy (l->buf + l->len, text, n);
  l->len += n;
}

/* Appends data as the inside of a JSON string (no quotes). */
static void
logs_add_text (logs_out_t *l, const char *data, size_t n)
{
  json_t *j;
  char *enc;
  size_t k;
  if (n == 0)
    return;
  j = ak_json_text (data, n);
  enc = json_dumps (j, JSON_ENCODE_ANY);
  json_decref (j);
  if (enc == NULL)
    ak_oom ();
  k = strlen (enc);
  logs_add (l, enc + 1, k - 2);
  free (enc);
}

/* Fills l->buf with the next piece of the document; false at its end. */
static bool
logs_next (logs_out_t *l)
{
  char chunk[65536 + 4];

  l->len = l->off = 0;
  if (l->closed)
    return false;
  if (!l->opened)
    {
      logs_add (l, "{\"success\":true,\"data\":{", 24);
      l->opened = true;
    }
  while (l->len == 0)
    {
      if (l->stream == l->n_streams)
        {
          logs_add (l, "}}", 2);
          l->closed = true;
          break;
        }
      if (l->phase == 0)
        {
          /* The stream's key. */
          _cleanup_free_ char *key
              = ak_xasprintf ("%s\"%s\":\"", l->stream > 0 ? "," : "", l->names[l->stream]);
          logs_add (l, key, strlen (key));
          l->phase = 1;
        }
      else if (l->phase <= 2)
        {
          /* The rotated part, then the current one. */
          int *fd = &l->fds[l->stream][l->phase - 1];
          ssize_t n;
          if (*fd < 0)
            {
              l->phase++;
              continue;
            }
          memcpy (chunk, l->carry, l->n_carry);
          n = read (*fd, chunk + l->n_carry, sizeof chunk - 4 - l->n_carry);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              close (*fd);
              *fd = -1;
              l->phase++;
              continue;
            }
          {
            size_t have = l->n_carry + (size_t) n, whole = ak_utf8_whole (chunk, have);
            if (have - whole >= sizeof l->carry)
              whole = have;
            logs_add_text (l, chunk, whole);
            l->n_carry = have - whole;
            memmove (l->carry, chunk + whole, l->n_carry);
          }
        }
      else
        {
          /* What is left of a cut sequence, then the closing quote. */
          logs_add_text (l, l->carry, l->n_carry);
          l->n_carry = 0;
          logs_add (l, "\"", 1);
          l->stream++;
          l->phase = 0;
        }
    }
  return true;
}

static ssize_t
logs_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
  logs_out_t *l = cls;
  size_t n;
  (void) pos;
  while (l->off == l->len)
    if (!logs_next (l))
      return MHD_CONTENT_READER_END_OF_STREAM;
  n = l->len - l->off < max ? l->len - l->off : max;
  memcpy (buf, l->buf + l->off, n);
  l->off += n;
  return (ssize_t) n;
}

static void
logs_free (void *cls)
{
  logs_out_t *l = cls;
  for (int k = 0; k < 2; k++)
    for (int p = 0; p < 2; p++)
      if (l->fds[k][p] >= 0)
        close (l->fds[k][p]);
  free (l->buf);
  free (l);
}

static result_t
logs_response (ak_http_req_t *r, const char *name, const char *id, const char *which)
{
  logs_out_t *l;
  ak_error_t *err = NULL;
  struct MHD_Response *resp;
  result_t ret;

  if (which != NULL && strcmp (which, "stdout") != 0 && strcmp (which, "stderr") != 0)
    return ak_http_fail (r, MHD_HTTP_BAD_REQUEST, "stream must be stdout or stderr");
  l = ak_xcalloc (1, sizeof *l);
  for (int k = 0; k < 2; k++)
    l->fds[k][0] = l->fds[k][1] = -1;
  for (int k = 0; k < 2; k++)
    {
      const char *stream = k == 0 ? "stdout" : "stderr";
      if (which != NULL && strcmp (which, stream) != 0)
        continue;
      l->names[l->n_streams] = stream;
      if (ak_detached_log_fds (name, id, stream, l->fds[l->n_streams], &err) < 0)
        {
          logs_free (l);
          return ak_http_fail_err (r, err);
        }
      l->n_streams++;
    }
  resp = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 65536, logs_reader, l, logs_free);
  if (resp == NULL)
    {
      logs_free (l);
      return MHD_NO;
    }
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  ret = MHD_queue_response (r->conn, MHD_HTTP_OK, resp);
  MHD_destroy_response (resp);
  return ret;
}

/* The largest file read back. */
#define FILE_CAP (16u * 1024 * 1024)

void
ak_api_exec_req (const ak_api_cmd_t *cmd, ak_exec_req_t *req)
{
  *req = (ak_exec_req_t){ .argv = cmd->argv, .env = cmd->env, .workdir = cmd->workdir, .root = cmd->sudo,
                          .sigfd = -1 };
}

result_t
ak_api_logs (ak_http_req_t *r, const char *name)
{
  ak_record_t rec = { 0 };
  ak_error_t *err = NULL;
  json_t *entries;

  if (ak_store_load (name, &rec, &err) < 0)
    return ak_http_fail_err (r, err);
  ak_record_clear (&rec);
  if (ak_audit_read (name, &entries, &err) < 0)
    return ak_http_fail_err (r, err);
  return ak_http_ok (r, MHD_HTTP_OK, entries);
}

/* ---- files ------------------------------------------------------------ */

/* The file path of /sandboxes/{name}/files/{path...}: everything after
 * "/files/" in the decoded URL, so encoded slashes stay inside it. */
static const char *
url_file_path (ak_http_req_t *r)
{
  const char *p = strstr (r->url, "/files/");
  return p ? p + strlen ("/files/") : "";
}

result_t
ak_api_file (ak_http_req_t *r, const char *name, json_t *body)
{
  ak_error_t *err = NULL;
  _cleanup_free_ char *inside = NULL;
  result_t ret;

  if (ak_http_is (r, "PUT"))
    {
      ak_api_file_t f;
      if (ak_api_parse_file_write (body, url_file_path (r), &f, &err) < 0
          || ak_sandbox_write_file (name, f.path, f.data, f.len, &err) < 0)
        {
          free (f.path);
          free (f.data);
          return ak_http_fail_err (r, err);
        }
      ret = ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:s, s:I}", "path", f.path, "size", (json_int_t) f.len));
      free (f.path);
      free (f.data);
      return ret;
    }
  if (json_object_size (body) > 0)
    return ak_http_fail (r, MHD_HTTP_BAD_REQUEST, "%s of a file takes no body", r->method);
  if (ak_api_file_path (url_file_path (r), "/", &inside, &err) < 0)
    return ak_http_fail_err (r, err);
  if (ak_http_is (r, "DELETE"))
    {
      if (ak_sandbox_remove_file (name, inside, &err) < 0)
        return ak_http_fail_err (r, err);
      return ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:s, s:b}", "path", inside, "removed", 1));
    }
  {
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    json_t *j;
    if (ak_sandbox_read_file (name, inside, FILE_CAP, &data, &len, &err) < 0)
      return ak_http_fail_err (r, err);
    if (ak_utf8_valid (data, len))
      j = json_pack ("{s:s, s:s%, s:s, s:I}", "path", inside, "content", data, len, "encoding", "utf8", "size",
                     (json_int_t) len);
    else
      {
        _cleanup_free_ char *b64 = ak_base64_encode (data, len);
        j = json_pack ("{s:s, s:s, s:s, s:I}", "path", inside, "content", b64, "encoding", "base64", "size",
                       (json_int_t) len);
      }
    return ak_http_ok (r, MHD_HTTP_OK, j);
  }
}

result_t
ak_api_files (ak_http_req_t *r, const char *name, json_t *body)
{
  ak_record_t rec = { 0 };
  ak_error_t *err = NULL;
  ak_api_file_t *files = NULL;
  size_t n = 0, written = 0;
  _cleanup_free_ char *base = NULL;

  if (ak_store_load (name, &rec, &err) < 0)
    return ak_http_fail_err (r, err);
  base = ak_xstrdup (ak_spec_default_workdir (&rec.spec, false));
  ak_record_clear (&rec);
  /* Every path is checked before the first file is written. */
  if (ak_api_parse_files (body, base, &files, &n, &err) < 0)
    {
      ak_api_files_free (files, n);
      return ak_http_fail_err (r, err);
    }
  for (; written < n; written++)
    if (ak_sandbox_write_file (name, files[written].path, files[written].data, files[written].len, &err) < 0)
      {
        ak_error_prefix (&err, "%s (%zu of %zu files written before it)", files[written].path, written, n);
        break;
      }
  ak_api_files_free (files, n);
  if (err != NULL)
    return ak_http_fail_err (r, err);
  return ak_http_ok (r, MHD_HTTP_OK, json_pack ("{s:I}", "written", (json_int_t) written));
}

/* ---- detached commands ------------------------------------------------ */

/* The library's record in the published clients' shape. */
static json_t *
detached_json (const char *name, json_t *s)
{
  json_t *code = json_object_get (s, "exit_code");
  bool running = strcmp (json_string_value (json_object_get (s, "status")) ?: "", "running") == 0;
  json_t *j = json_pack ("{s:O, s:s, s:O, s:O, s:s, s:O, s:O}", "id", json_object_get (s, "id"), "sandbox", name,
                         "command", json_object_get (s, "command"), "pid",
                         json_object_get (s, "pid") ?: json_null (), "status",
                         running ? "running" : json_integer_value (code) == 0 ? "completed" : "failed", "exit_code",
                         code ?: json_null (), "started_at", json_object_get (s, "started") ?: json_null ());
  json_decref (s);
  return j;
}

result_t
ak_api_detached (ak_http_req_t *r, const char *name, json_t *body)
{
  ak_error_t *err = NULL;
  const char *id = r->nseg >= 5 ? r->seg[4] : NULL;
  json_t *s;

  if (r->nseg == 4 && ak_http_is (r, "POST")) /* .../exec/detach */
    {
      ak_api_cmd_t cmd;
      ak_exec_req_t req;
      _cleanup_free_ char *new_id = NULL;
      int rc = ak_api_parse_exec (body, &cmd, &err);
      if (rc == 0)
        {
          ak_api_exec_req (&cmd, &req);
          rc = ak_detached_start (name, &req, &new_id, &err);
        }
      ak_api_cmd_clear (&cmd);
      if (rc < 0 || (s = ak_detached_status (name, new_id, &err)) == NULL)
        return ak_http_fail_err (r, err);
      return ak_http_ok (r, MHD_HTTP_CREATED, detached_json (name, s));
    }
  if (r->nseg == 4 && ak_http_is (r, "GET")) /* .../exec/detached */
    {
      json_t *list = ak_detached_list (name, &err), *out, *e;
      size_t i;
      if (list == NULL)
        return ak_http_fail_err (r, err);
      out = json_array ();
      json_array_foreach (list, i, e)
        json_array_append_new (out, detached_json (name, json_incref (e)));
      json_decref (list);
      return ak_http_ok (r, MHD_HTTP_OK, out);
    }
  if (r->nseg == 6 && ak_http_is (r, "GET")) /* .../exec/detached/{id}/logs */
    {
      const char *which = MHD_lookup_connection_value (r->conn, MHD_GET_ARGUMENT_KIND, "stream");
      return logs_response (r, name, id, which);
    }
  if (r->nseg == 5 && ak_http_is (r, "DELETE") && ak_detached_kill (name, id, &err) < 0)
    return ak_http_fail_err (r, err);
  if (r->nseg == 5 && (ak_http_is (r, "GET") || ak_http_is (r, "DELETE")))
    {
      if ((s = ak_detached_status (name, id, &err)) == NULL)
        return ak_http_fail_err (r, err);
      return ak_http_ok (r, MHD_HTTP_OK, detached_json (name, s));
    }
  return ak_http_fail (r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s %s", r->method, r->url);
}
