/* The HTTP API's request checks and the encodings its bodies use. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64.h"
#include "server/common.h"
#include "server/request.h"

static json_t *
body (const char *text)
{
  ak_error_t *err = NULL;
  json_t *j = ak_api_parse_body (text, strlen (text), &err);
  assert_null (err);
  return j;
}

/* The message a body gets from `parse`, which must refuse it. */
static void
refused (int (*parse) (const json_t *, ak_api_cmd_t *, ak_error_t **), const char *text, const char *needle)
{
  json_t *j = body (text);
  ak_api_cmd_t c;
  ak_error_t *err = NULL;
  assert_int_equal (parse (j, &c, &err), -1);
  assert_non_null (err);
  assert_int_equal (err->code, EINVAL);
  if (strstr (err->msg, needle) == NULL)
    fail_msg ("'%s': message '%s' lacks '%s'", text, err->msg, needle);
  ak_error_free (err);
  ak_api_cmd_clear (&c);
  json_decref (j);
}

static void
test_body (void **state)
{
  ak_error_t *err = NULL;
  json_t *j;
  (void) state;
  j = ak_api_parse_body ("", 0, &err);
  assert_true (json_is_object (j) && json_object_size (j) == 0);
  json_decref (j);
  assert_null (ak_api_parse_body ("[1]", 3, &err));
  assert_string_equal (err->msg, "the JSON body must be an object");
  ak_error_clear (&err);
  assert_null (ak_api_parse_body ("{\"a\":1,\"a\":2}", 13, &err));
  assert_non_null (strstr (err->msg, "duplicate"));
  ak_error_clear (&err);
  /* A NUL inside a string would cut a C string short: refused. */
  assert_null (ak_api_parse_body ("{\"a\": \"x\\u0000y\"}", 16, &err));
  ak_error_clear (&err);
  assert_null (ak_api_parse_body ("{", 1, &err));
  assert_non_null (strstr (err->msg, "malformed JSON"));
  ak_error_free (err);
}

static void
test_run (void **state)
{
  json_t *j = body ("{\"command\": [\"echo\", \"hi\"], \"profile\": \"restrictive\", \"fast\": true, \"image\": null}");
  ak_api_cmd_t c;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (ak_api_parse_run (j, &c, &err), 0);
  assert_string_equal (c.argv[0], "echo");
  assert_string_equal (c.argv[1], "hi");
  assert_null (c.argv[2]);
  assert_string_equal (c.profile, "restrictive");
  assert_null (c.image);
  ak_api_cmd_clear (&c);
  json_decref (j);

  refused (ak_api_parse_run, "{}", "'command' must be a non-empty array");
  refused (ak_api_parse_run, "{\"command\": \"ls\"}", "'command' must be a non-empty array");
  refused (ak_api_parse_run, "{\"command\": [\"\"]}", "must not be empty");
  refused (ak_api_parse_run, "{\"command\": [\"ls\"], \"profile\": \"paranoid\"}", "'profile' must be");
  refused (ak_api_parse_run, "{\"command\": [\"ls\"], \"image\": \"\"}", "'image' must be an image reference");
  refused (ak_api_parse_run, "{\"command\": [\"ls\"], \"image\": \"a b\"}", "'image' must be an image reference");
  refused (ak_api_parse_run, "{\"command\": [\"ls\"], \"image\": 7}", "image");
  refused (ak_api_parse_run, "{\"command\": [\"ls\"], \"profle\": \"moderate\"}", "unknown field 'profle'");
  refused (ak_api_parse_run, "{\"command\": [\"ls\"], \"fast\": 1}", "'fast' must be true or false");
}

static void
test_exec (void **state)
{
  json_t *j = body ("{\"command\": [\"id\"], \"env\": [\"A=1\", \"B=x=y\"], \"workdir\": \"/tmp\", \"sudo\": true}");
  ak_api_cmd_t c;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (ak_api_parse_exec (j, &c, &err), 0);
  assert_string_equal (c.env[0], "A=1");
  assert_string_equal (c.env[1], "B=x=y");
  assert_null (c.env[2]);
  assert_string_equal (c.workdir, "/tmp");
  assert_true (c.sudo);
  ak_api_cmd_clear (&c);
  json_decref (j);
  j = body ("{\"command\": [\"id\"], \"env\": {\"K\": \"v\"}}");
  assert_int_equal (ak_api_parse_exec (j, &c, &err), 0);
  assert_string_equal (c.env[0], "K=v");
  ak_api_cmd_clear (&c);
  json_decref (j);

  refused (ak_api_parse_exec, "{\"command\": [\"id\"], \"env\": [\"NOVALUE\"]}", "KEY=VALUE");
  refused (ak_api_parse_exec, "{\"command\": [\"id\"], \"env\": [\"=x\"]}", "KEY=VALUE");
  refused (ak_api_parse_exec, "{\"command\": [\"id\"], \"env\": {\"A=B\": \"x\"}}", "without '='");
  refused (ak_api_parse_exec, "{\"command\": [\"id\"], \"workdir\": \"tmp\"}", "absolute");
  refused (ak_api_parse_exec, "{\"command\": [\"id\"], \"sudo\": \"yes\"}", "'sudo' must be true or false");
  refused (ak_api_parse_exec, "{\"command\": [\"id\"], \"profile\": \"moderate\"}", "unknown field 'profile'");
}

static void
test_create (void **state)
{
  json_t *j = body ("{\"name\": \"box-1\", \"memory_mb\": 256, \"vcpus\": 2, \"disk_mb\": 64, \"volumes\": [], "
                    "\"secrets\": null}");
  ak_api_create_t c;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (ak_api_parse_create (j, &c, &err), 0);
  assert_string_equal (c.name, "box-1");
  assert_int_equal (c.memory_mb, 256);
  assert_int_equal (c.vcpus, 2);
  assert_int_equal (c.disk_mb, 64);
  ak_api_create_clear (&c);
  json_decref (j);
  const char *bad[][2] = {
    { "{}", "'name' is required" },
    { "{\"name\": \"a/b\"}", "invalid sandbox name" },
    { "{\"name\": \"ok\", \"memory_mb\": -5}", "'memory_mb' must be an integer" },
    { "{\"name\": \"ok\", \"vcpus\": 1.5}", "'vcpus' must be an integer" },
    { "{\"name\": \"ok\", \"disk_mb\": -1}", "'disk_mb' must be an integer from 0 to 16777216" },
    { "{\"name\": \"ok\", \"disk_mb\": 16777217}", "'disk_mb' must be an integer from 0 to 16777216" },
    { "{\"name\": \"ok\", \"disk_mb\": \"20\"}", "'disk_mb' must be an integer" },
    { "{\"name\": \"ok\", \"source_url\": \"https://x\"}", "not supported" },
    { "{\"name\": \"ok\", \"volumes\": [\"v:/data\"]}", "not supported" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      j = body (bad[i][0]);
      assert_int_equal (ak_api_parse_create (j, &c, &err), -1);
      if (strstr (err->msg, bad[i][1]) == NULL)
        fail_msg ("%s: '%s'", bad[i][0], err->msg);
      ak_error_clear (&err);
      ak_api_create_clear (&c);
      json_decref (j);
    }
}

static void
test_file_path (void **state)
{
  /* URL paths resolve against "/", relative paths of a body against the
   * working directory. */
  const char *good[][3] = {
    { "tmp/a.txt", "/", "/tmp/a.txt" }, { "/tmp/a.txt", "/w", "/tmp/a.txt" }, { "//tmp//a", "/", "/tmp/a" },
    { "a", "/w", "/w/a" }, { "x/.hidden", "/w", "/w/x/.hidden" }, { "a..b", "/w", "/w/a..b" },
  };
  const char *bad[] = { "", "..", "tmp/../etc", "tmp/./x", "/.", "/", "tmp/%00x", "a/..", "../x" };
  ak_error_t *err = NULL;
  char *p = NULL;
  (void) state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      assert_int_equal (ak_api_file_path (good[i][0], good[i][1], &p, &err), 0);
      assert_string_equal (p, good[i][2]);
      free (p);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      if (ak_api_file_path (bad[i], "/w", &p, &err) == 0)
        fail_msg ("'%s' accepted as '%s'", bad[i], p);
      assert_int_equal (err->code, EINVAL);
      ak_error_clear (&err);
    }
}

static void
test_files_and_write (void **state)
{
  json_t *j = body ("{\"files\": {\"rel.txt\": \"1\", \"/abs\": \"2\"}}");
  ak_api_file_t *files = NULL, f;
  size_t n = 0;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (ak_api_parse_files (j, "/home/user", &files, &n, &err), 0);
  assert_int_equal (n, 2);
  assert_string_equal (files[0].path, "/home/user/rel.txt");
  assert_string_equal (files[1].path, "/abs");
  assert_memory_equal (files[1].data, "2", 1);
  ak_api_files_free (files, n);
  json_decref (j);

  j = body ("{\"content\": \"AP8=\", \"encoding\": \"base64\"}");
  assert_int_equal (ak_api_parse_file_write (j, "tmp/bin", &f, &err), 0);
  assert_int_equal (f.len, 2);
  assert_memory_equal (f.data, "\x00\xff", 2);
  assert_string_equal (f.path, "/tmp/bin");
  free (f.path);
  free (f.data);
  json_decref (j);

  j = body ("{\"content\": \"AP8\", \"encoding\": \"base64\"}");
  assert_int_equal (ak_api_parse_file_write (j, "tmp/bin", &f, &err), -1);
  assert_non_null (strstr (err->msg, "not valid base64"));
  ak_error_clear (&err);
  json_decref (j);
}

static void
test_duration (void **state)
{
  const struct { const char *s; long long v; } good[] = {
    { "45s", 45 }, { "30m", 1800 }, { "1h", 3600 }, { "1h30m", 5400 }, { "2d", 172800 }, { "90", 90 }, { "366d", 366 * 86400LL },
  };
  const char *bad[] = { "", "0", "0s", "m", "1x", "-5m", "1h30", "367d", "99999999999s", "1 h", "1.5h" };
  ak_error_t *err = NULL;
  long long v;
  (void) state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      assert_int_equal (ak_api_parse_duration (good[i].s, &v, &err), 0);
      assert_int_equal (v, good[i].v);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      if (ak_api_parse_duration (bad[i], &v, &err) == 0)
        fail_msg ("'%s' accepted as %lld", bad[i], v);
      ak_error_clear (&err);
    }
}

static void
test_base64 (void **state)
{
  /* RFC 4648, section 10. */
  const char *vec[][2] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                           { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } };
  const char *bad[] = { "Zg=", "Zg", "Z===", "Zh==", "Zm9=v", "Zm9v\n", "Zm 9", "=Zm9", "Zm8==", "****" };
  char *out;
  size_t len;
  (void) state;
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
    {
      char *enc = ak_base64_encode (vec[i][0], strlen (vec[i][0]));
      assert_string_equal (enc, vec[i][1]);
      free (enc);
      assert_true (ak_base64_decode (vec[i][1], strlen (vec[i][1]), &out, &len));
      assert_int_equal (len, strlen (vec[i][0]));
      assert_memory_equal (out, vec[i][0], len);
      free (out);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (ak_base64_decode (bad[i], strlen (bad[i]), &out, &len))
      fail_msg ("'%s' decoded", bad[i]);
}

static void
test_utf8 (void **state)
{
  size_t n;
  char *c;
  (void) state;
  assert_int_equal (ak_utf8_whole ("ab\xc3", 3), 2);
  assert_int_equal (ak_utf8_whole ("ab\xc3\xa9", 4), 4);
  assert_int_equal (ak_utf8_whole ("\xe2\x82", 2), 0);
  assert_int_equal (ak_utf8_whole ("\xf0\x9f\x98", 3), 0);
  assert_int_equal (ak_utf8_whole ("a\xff", 2), 2); /* invalid, not cut: cleaned later */
  assert_true (ak_utf8_valid ("h\xc3\xa9", 3));
  assert_false (ak_utf8_valid ("a\0b", 3));
  assert_false (ak_utf8_valid ("\xed\xa0\x80", 3)); /* a surrogate */
  assert_false (ak_utf8_valid ("\xc0\xaf", 2));     /* overlong */
  c = ak_utf8_clean ("a\xffz\xc3", 4, &n);
  assert_string_equal (c, "a\xef\xbf\xbdz\xef\xbf\xbd");
  free (c);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_body),      cmocka_unit_test (test_run),      cmocka_unit_test (test_exec),
    cmocka_unit_test (test_create),    cmocka_unit_test (test_file_path), cmocka_unit_test (test_files_and_write),
    cmocka_unit_test (test_duration),  cmocka_unit_test (test_base64),   cmocka_unit_test (test_utf8),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
