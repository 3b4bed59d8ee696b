/* The HTTP API's endpoints for what is inside a running sandbox: its
 * files, its audit entries and its detached commands. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "service/audit.h"
#include "service/detached.h"
#include "server/common.h"
#include "server/http_internal.h"
#include "server/request.h"

typedef enum MHD_Result result_t;

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
      json_t *out = json_object ();
      for (int k = 0; k < 2; k++)
        {
          const char *stream = k == 0 ? "stdout" : "stderr";
          _cleanup_free_ char *data = NULL;
          size_t len = 0;
          if (which != NULL && strcmp (which, stream) != 0)
            continue;
          if (ak_detached_logs (name, id, which ? which : stream, &data, &len, &err) < 0)
            {
              json_decref (out);
              return ak_http_fail_err (r, err);
            }
          json_object_set_new (out, stream, ak_json_text (data, len));
        }
      if (json_object_size (out) == 0)
        {
          json_decref (out);
          return ak_http_fail (r, MHD_HTTP_BAD_REQUEST, "stream must be stdout or stderr");
        }
      return ak_http_ok (r, MHD_HTTP_OK, out);
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
