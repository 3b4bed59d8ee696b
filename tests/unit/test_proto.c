/* The host <-> agent framing: what goes in comes out, over every kind of fd
 * and however the bytes are split, and every malformed stream is an error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "proto/proto.h"

static int sv[2] = { -1, -1 };

static int
setup (void **state)
{
  (void) state;
  return socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

static int
teardown (void **state)
{
  (void) state;
  for (int i = 0; i < 2; i++)
    if (sv[i] >= 0)
      close (sv[i]);
  sv[0] = sv[1] = -1;
  return 0;
}

static void
set_nonblock (int fd)
{
  int fl = fcntl (fd, F_GETFL);
  assert_true (fl >= 0);
  assert_int_equal (fcntl (fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void
write_raw (int fd, const void *p, size_t n)
{
  assert_int_equal (ak_write_all (fd, p, n), 0);
}

/* Reads one frame and expects it to be an error whose message contains
 * `what`. */
static void
expect_read_error (ak_proto_reader_t *r, const char *what)
{
  ak_frame_t f;
  ak_error_t *err = NULL;
  assert_int_equal (ak_proto_read (r, &f, &err), -1);
  assert_non_null (err);
  if (strstr (err->msg, what) == NULL)
    fail_msg ("error '%s' does not mention '%s'", err->msg, what);
  ak_error_free (err);
}

static void
test_type_names (void **state)
{
  (void) state;
  assert_string_equal (ak_proto_type_name (AK_F_HELLO), "HELLO");
  assert_string_equal (ak_proto_type_name (AK_F_FILE_WRITE), "FILE_WRITE");
  assert_string_equal (ak_proto_type_name (AK_F_LIST), "LIST");
  assert_string_equal (ak_proto_type_name (AK_F_FILE_REMOVE), "FILE_REMOVE");
  assert_null (ak_proto_type_name (0));
  assert_null (ak_proto_type_name (17));
  assert_null (ak_proto_type_name (255));
}

static void
test_header_layout (void **state)
{
  uint8_t hdr[AK_PROTO_HEADER_SIZE];
  const uint8_t want[] = { 0x00, 0x01, 0x02, 0x03, AK_F_STDOUT, 0xaa, 0xbb, 0xcc, 0xdd };
  (void) state;
  ak_proto_encode_header (hdr, AK_F_STDOUT, 0xaabbccddu, 0x00010203u);
  assert_memory_equal (hdr, want, sizeof want);
}

/* Every type, raw and JSON, over a socket; then the same over a pipe, which
 * is not a socket and takes the writev() path. */
static void
roundtrip_all (int wfd, int rfd)
{
  ak_proto_reader_t *r = ak_proto_reader_new (rfd);
  ak_error_t *err = NULL;
  ak_frame_t f;

  for (uint8_t t = AK_F_HELLO; t <= AK_F_LIST; t++)
    {
      char payload[64];
      int n = snprintf (payload, sizeof payload, "payload of %s", ak_proto_type_name (t));
      uint32_t chan = (uint32_t) t * 0x01010101u;

      assert_int_equal (ak_proto_write (wfd, t, chan, payload, (size_t) n, &err), 0);
      assert_int_equal (ak_proto_read (r, &f, &err), 1);
      assert_null (err);
      assert_int_equal (f.type, t);
      assert_int_equal (f.channel, chan);
      assert_int_equal (f.len, (size_t) n);
      assert_memory_equal (f.payload, payload, (size_t) n);

      json_t *obj = json_pack ("{s:i, s:s, s:[i,i]}", "type", t, "name", ak_proto_type_name (t),
                               "list", 1, 2);
      json_t *back = NULL;
      assert_int_equal (ak_proto_write_json (wfd, t, 7, obj, &err), 0);
      assert_int_equal (ak_proto_read (r, &f, &err), 1);
      assert_int_equal (f.type, t);
      assert_int_equal (f.channel, 7);
      assert_int_equal (ak_proto_parse_json (&f, &back, &err), 0);
      assert_true (json_equal (obj, back));
      json_decref (back);
      json_decref (obj);
    }
  ak_proto_reader_free (r);
}

static void
test_roundtrip_socket (void **state)
{
  (void) state;
  roundtrip_all (sv[0], sv[1]);
}

static void
test_roundtrip_pipe (void **state)
{
  int p[2];
  (void) state;
  assert_int_equal (pipe2 (p, O_CLOEXEC), 0);
  roundtrip_all (p[1], p[0]);
  close (p[0]);
  close (p[1]);
}

static void
test_zero_length (void **state)
{
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_error_t *err = NULL;
  ak_frame_t f;
  (void) state;

  assert_int_equal (ak_proto_write (sv[0], AK_F_STDIN, 3, NULL, 0, &err), 0);
  assert_int_equal (ak_proto_write (sv[0], AK_F_FILE_DATA, 4, "", 0, &err), 0);
  assert_int_equal (ak_proto_write (sv[0], AK_F_STDOUT, 5, "x", 1, &err), 0);
  assert_int_equal (ak_proto_read (r, &f, &err), 1);
  assert_int_equal (f.type, AK_F_STDIN);
  assert_int_equal (f.channel, 3);
  assert_int_equal (f.len, 0);
  assert_int_equal (ak_proto_read (r, &f, &err), 1);
  assert_int_equal (f.type, AK_F_FILE_DATA);
  assert_int_equal (f.len, 0);
  assert_int_equal (ak_proto_read (r, &f, &err), 1);
  assert_int_equal (f.type, AK_F_STDOUT);
  assert_int_equal (f.len, 1);
  assert_int_equal (f.payload[0], 'x');

  /* An empty payload is not a JSON object. */
  f.type = AK_F_EXEC;
  f.len = 0;
  json_t *j = NULL;
  assert_int_equal (ak_proto_parse_json (&f, &j, &err), -1);
  assert_non_null (strstr (err->msg, "empty EXEC frame"));
  ak_error_clear (&err);
  ak_proto_reader_free (r);
}

/* The bytes of three frames, as they appear on the wire. */
static uint8_t *
three_frames (size_t *len)
{
  int p[2];
  uint8_t *buf = ak_xmalloc (4096);
  ak_error_t *err = NULL;
  ssize_t n;

  assert_int_equal (pipe2 (p, O_CLOEXEC), 0);
  assert_int_equal (ak_proto_write (p[1], AK_F_HELLO, 0, "{\"version\":1}", 13, &err), 0);
  assert_int_equal (ak_proto_write (p[1], AK_F_STDIN, 9, NULL, 0, &err), 0);
  assert_int_equal (ak_proto_write (p[1], AK_F_STDOUT, 0x12345678u, "hello, world", 12, &err), 0);
  close (p[1]);
  n = ak_read_all (p[0], buf, 4096);
  close (p[0]);
  assert_int_equal (n, 9 + 13 + 9 + 0 + 9 + 12);
  *len = (size_t) n;
  return buf;
}

static void
check_three (void *r, int (*next) (void *, ak_frame_t *))
{
  ak_frame_t f;
  assert_int_equal (next (r, &f), 1);
  assert_int_equal (f.type, AK_F_HELLO);
  assert_int_equal (f.len, 13);
  assert_memory_equal (f.payload, "{\"version\":1}", 13);
  assert_int_equal (next (r, &f), 1);
  assert_int_equal (f.type, AK_F_STDIN);
  assert_int_equal (f.channel, 9);
  assert_int_equal (f.len, 0);
  assert_int_equal (next (r, &f), 1);
  assert_int_equal (f.type, AK_F_STDOUT);
  assert_int_equal (f.channel, 0x12345678u);
  assert_memory_equal (f.payload, "hello, world", 12);
}

static int
read_blocking (void *r, ak_frame_t *f)
{
  ak_error_t *err = NULL;
  int ret = ak_proto_read (r, f, &err);
  if (err != NULL)
    fail_msg ("%s", err->msg);
  return ret;
}

/* A writer that dribbles the stream out one byte at a time, so that the
 * blocking reader sees every possible split of header and payload. */
static void
test_split_blocking (void **state)
{
  size_t len;
  uint8_t *wire = three_frames (&len);
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_frame_t f;
  pid_t pid;
  int status;
  (void) state;

  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      for (size_t i = 0; i < len; i++)
        {
          if (write (sv[0], wire + i, 1) != 1)
            _exit (1);
          usleep (200);
        }
      _exit (0);
    }
  close (sv[0]);
  sv[0] = -1;
  check_three (r, read_blocking);
  assert_int_equal (read_blocking (r, &f), 0);
  assert_int_equal (read_blocking (r, &f), 0);
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  ak_proto_reader_free (r);
  free (wire);
}

/* Non-blocking: every byte but the last of a frame gives AGAIN, the last
 * one the frame. */
static void
test_split_nonblocking (void **state)
{
  size_t len;
  uint8_t *wire = three_frames (&len);
  size_t ends[] = { 9 + 13, 9 + 13 + 9, len };
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_error_t *err = NULL;
  ak_frame_t f;
  size_t e = 0;
  (void) state;

  set_nonblock (sv[1]);
  assert_int_equal (ak_proto_read (r, &f, &err), AK_PROTO_AGAIN);
  for (size_t i = 0; i < len; i++)
    {
      write_raw (sv[0], wire + i, 1);
      int ret = ak_proto_read (r, &f, &err);
      assert_null (err);
      if (i + 1 == ends[e])
        {
          assert_int_equal (ret, 1);
          assert_int_equal (f.len + AK_PROTO_HEADER_SIZE, ends[e] - (e ? ends[e - 1] : 0));
          e++;
          assert_int_equal (ak_proto_read (r, &f, &err), AK_PROTO_AGAIN);
        }
      else
        assert_int_equal (ret, AK_PROTO_AGAIN);
    }
  assert_int_equal (e, 3);
  close (sv[0]);
  sv[0] = -1;
  assert_int_equal (ak_proto_read (r, &f, &err), 0);
  ak_proto_reader_free (r);
  free (wire);
}

/* Several frames arriving in one read are all handed out, in order. */
static void
test_many_in_one_read (void **state)
{
  size_t len;
  uint8_t *wire = three_frames (&len);
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_frame_t f;
  (void) state;

  write_raw (sv[0], wire, len);
  write_raw (sv[0], wire, len);
  close (sv[0]);
  sv[0] = -1;
  check_three (r, read_blocking);
  check_three (r, read_blocking);
  assert_int_equal (read_blocking (r, &f), 0);
  ak_proto_reader_free (r);
  free (wire);
}

struct cursor {
  const uint8_t *p;
  size_t left;
};

/* Walks a buffer with the pure decoder. */
static int
decode_next (void *ctx, ak_frame_t *f)
{
  struct cursor *c = ctx;
  size_t used = 0;
  ak_error_t *err = NULL;
  int ret = ak_proto_decode (c->p, c->left, f, &used, &err);
  assert_null (err);
  c->p += used;
  c->left -= used;
  return ret;
}

static void
test_decode (void **state)
{
  size_t len, used = 99;
  uint8_t *wire = three_frames (&len);
  struct cursor cur = { wire, len };
  ak_error_t *err = NULL;
  ak_frame_t f;
  (void) state;

  /* Every strict prefix of the first frame is "need more". */
  for (size_t i = 0; i < 9 + 13; i++)
    {
      assert_int_equal (ak_proto_decode (wire, i, &f, &used, &err), 0);
      assert_int_equal (used, 0);
    }
  assert_int_equal (ak_proto_decode (wire, len, &f, &used, &err), 1);
  assert_int_equal (used, 9 + 13);
  assert_ptr_equal (f.payload, wire + 9);

  check_three (&cur, decode_next);
  assert_int_equal (cur.left, 0);
  free (wire);
}

static void
test_oversize (void **state)
{
  uint8_t hdr[AK_PROTO_HEADER_SIZE];
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_error_t *err = NULL;
  ak_frame_t f;
  size_t used;
  (void) state;

  /* Refused from the header alone, before any payload arrives. */
  ak_proto_encode_header (hdr, AK_F_STDOUT, 1, AK_PROTO_MAX_PAYLOAD + 1);
  assert_int_equal (ak_proto_decode (hdr, sizeof hdr, &f, &used, &err), -1);
  assert_non_null (strstr (err->msg, "exceeds"));
  ak_error_clear (&err);
  ak_proto_encode_header (hdr, AK_F_STDOUT, 1, 0xffffffffu);
  assert_int_equal (ak_proto_decode (hdr, sizeof hdr, &f, &used, &err), -1);
  ak_error_clear (&err);
  ak_proto_encode_header (hdr, AK_F_STDOUT, 1, AK_PROTO_MAX_PAYLOAD);
  assert_int_equal (ak_proto_decode (hdr, sizeof hdr, &f, &used, &err), 0);

  ak_proto_encode_header (hdr, AK_F_FILE_DATA, 1, AK_PROTO_MAX_PAYLOAD + 1);
  write_raw (sv[0], hdr, sizeof hdr);
  expect_read_error (r, "exceeds");
  /* The stream cannot be resynchronised: the reader stays failed. */
  expect_read_error (r, "earlier error");

  /* Nor can an oversize frame be written. */
  void *big = ak_xcalloc (1, AK_PROTO_MAX_PAYLOAD + 1);
  assert_int_equal (ak_proto_write (sv[0], AK_F_STDOUT, 0, big, AK_PROTO_MAX_PAYLOAD + 1, &err), -1);
  assert_int_equal (err->code, EMSGSIZE);
  ak_error_clear (&err);
  free (big);
  ak_proto_reader_free (r);
}

static void
test_unknown_type (void **state)
{
  const uint8_t bad[] = { 0, 17, 200, 255 };
  ak_error_t *err = NULL;
  (void) state;

  for (size_t i = 0; i < sizeof bad; i++)
    {
      uint8_t hdr[AK_PROTO_HEADER_SIZE];
      ak_frame_t f;
      size_t used;
      int p[2];

      ak_proto_encode_header (hdr, bad[i], 0, 0);
      assert_int_equal (ak_proto_decode (hdr, sizeof hdr, &f, &used, &err), -1);
      assert_non_null (strstr (err->msg, "unknown frame type"));
      ak_error_clear (&err);

      assert_int_equal (pipe2 (p, O_CLOEXEC), 0);
      ak_proto_reader_t *r = ak_proto_reader_new (p[0]);
      write_raw (p[1], hdr, sizeof hdr);
      expect_read_error (r, "unknown frame type");
      ak_proto_reader_free (r);

      assert_int_equal (ak_proto_write (p[1], bad[i], 0, "x", 1, &err), -1);
      ak_error_clear (&err);
      close (p[0]);
      close (p[1]);
    }
}

static void
test_eof_mid_header (void **state)
{
  uint8_t hdr[AK_PROTO_HEADER_SIZE];
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  (void) state;

  ak_proto_encode_header (hdr, AK_F_STDOUT, 1, 4);
  write_raw (sv[0], hdr, 5);
  assert_int_equal (shutdown (sv[0], SHUT_WR), 0);
  expect_read_error (r, "closed inside a frame (5 of 9 bytes)");
  ak_proto_reader_free (r);
}

static void
test_eof_mid_payload (void **state)
{
  uint8_t hdr[AK_PROTO_HEADER_SIZE];
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_error_t *err = NULL;
  ak_frame_t f;
  (void) state;

  /* A complete frame first, then a truncated one. */
  assert_int_equal (ak_proto_write (sv[0], AK_F_OK, 2, "{}", 2, &err), 0);
  ak_proto_encode_header (hdr, AK_F_STDOUT, 1, 10);
  write_raw (sv[0], hdr, sizeof hdr);
  write_raw (sv[0], "abc", 3);
  assert_int_equal (shutdown (sv[0], SHUT_WR), 0);
  assert_int_equal (ak_proto_read (r, &f, &err), 1);
  assert_int_equal (f.type, AK_F_OK);
  expect_read_error (r, "closed inside a frame (12 of 19 bytes)");
  ak_proto_reader_free (r);
}

static void
test_clean_eof (void **state)
{
  ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
  ak_error_t *err = NULL;
  ak_frame_t f;
  (void) state;

  close (sv[0]);
  sv[0] = -1;
  assert_int_equal (ak_proto_read (r, &f, &err), 0);
  assert_int_equal (ak_proto_read (r, &f, &err), 0);
  assert_null (err);
  ak_proto_reader_free (r);
}

static void
test_read_error (void **state)
{
  ak_proto_reader_t *r = ak_proto_reader_new (-1);
  (void) state;
  expect_read_error (r, "Bad file descriptor");
  ak_proto_reader_free (r);
}

/* A maximum-size frame each way, with the writer on a non-blocking fd so
 * it has to wait for the reader (the socket buffer is smaller than 1 MiB). */
static void
test_max_payload (void **state)
{
  uint8_t *big = ak_xmalloc (AK_PROTO_MAX_PAYLOAD);
  ak_error_t *err = NULL;
  int status;
  pid_t pid;
  (void) state;

  for (size_t i = 0; i < AK_PROTO_MAX_PAYLOAD; i++)
    big[i] = (uint8_t) (i * 7 + (i >> 12));

  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      ak_proto_reader_t *r = ak_proto_reader_new (sv[1]);
      ak_error_t *cerr = NULL;
      ak_frame_t f;
      close (sv[0]);
      for (int k = 0; k < 2; k++)
        if (ak_proto_read (r, &f, &cerr) != 1 || f.type != AK_F_FILE_DATA
            || f.len != AK_PROTO_MAX_PAYLOAD || memcmp (f.payload, big, f.len) != 0)
          _exit (1);
      if (ak_proto_read (r, &f, &cerr) != 1 || f.type != AK_F_FILE_DATA || f.len != 0)
        _exit (2);
      if (ak_proto_read (r, &f, &cerr) != 0)
        _exit (3);
      _exit (0);
    }
  close (sv[1]);
  sv[1] = -1;
  assert_int_equal (ak_proto_write (sv[0], AK_F_FILE_DATA, 1, big, AK_PROTO_MAX_PAYLOAD, &err), 0);
  set_nonblock (sv[0]);
  assert_int_equal (ak_proto_write (sv[0], AK_F_FILE_DATA, 1, big, AK_PROTO_MAX_PAYLOAD, &err), 0);
  assert_int_equal (ak_proto_write (sv[0], AK_F_FILE_DATA, 1, NULL, 0, &err), 0);
  assert_null (err);
  close (sv[0]);
  sv[0] = -1;
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
  free (big);
}

/* A peer that went away is an error to report, not a SIGPIPE. */
static void
test_write_to_closed_peer (void **state)
{
  ak_error_t *err = NULL;
  (void) state;

  close (sv[1]);
  sv[1] = -1;
  assert_int_equal (ak_proto_write (sv[0], AK_F_STDOUT, 1, "x", 1, &err), -1);
  assert_int_equal (err->code, EPIPE);
  ak_error_free (err);
}

static void
test_parse_json_errors (void **state)
{
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
    { "[1,2]", "expected a JSON object" },
    { "\"s\"", "EXEC frame" },
    { "{\"a\":", "invalid JSON" },
    { "{\"a\":1}garbage", "invalid JSON" },
    { "{\"a\":1,\"a\":2}", "invalid JSON" },
    { "{\"path\":\"a\\u0000b\"}", "invalid JSON" },
    { "{\"a\":\"\xff\"}", "invalid JSON" },
  };
  (void) state;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      ak_frame_t f = { .type = AK_F_EXEC, .payload = (const uint8_t *) cases[i].text,
                       .len = strlen (cases[i].text) };
      ak_error_t *err = NULL;
      json_t *j = NULL;
      assert_int_equal (ak_proto_parse_json (&f, &j, &err), -1);
      assert_null (j);
      if (strstr (err->msg, cases[i].msg) == NULL || strstr (err->msg, "EXEC") == NULL)
        fail_msg ("%s: '%s'", cases[i].text, err->msg);
      ak_error_free (err);
    }

  /* Only objects are written, too. */
  json_t *arr = json_array ();
  ak_error_t *err = NULL;
  assert_int_equal (ak_proto_write_json (sv[0], AK_F_OK, 0, arr, &err), -1);
  ak_error_free (err);
  json_decref (arr);
}

int
main (void)
{
  /* A test that got SIGPIPE would die instead of failing: make sure the
   * default disposition is in force, so test_write_to_closed_peer means
   * something. */
  signal (SIGPIPE, SIG_DFL);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_type_names),
    cmocka_unit_test (test_header_layout),
    cmocka_unit_test_setup_teardown (test_roundtrip_socket, setup, teardown),
    cmocka_unit_test (test_roundtrip_pipe),
    cmocka_unit_test_setup_teardown (test_zero_length, setup, teardown),
    cmocka_unit_test_setup_teardown (test_split_blocking, setup, teardown),
    cmocka_unit_test_setup_teardown (test_split_nonblocking, setup, teardown),
    cmocka_unit_test_setup_teardown (test_many_in_one_read, setup, teardown),
    cmocka_unit_test (test_decode),
    cmocka_unit_test_setup_teardown (test_oversize, setup, teardown),
    cmocka_unit_test (test_unknown_type),
    cmocka_unit_test_setup_teardown (test_eof_mid_header, setup, teardown),
    cmocka_unit_test_setup_teardown (test_eof_mid_payload, setup, teardown),
    cmocka_unit_test_setup_teardown (test_clean_eof, setup, teardown),
    cmocka_unit_test (test_read_error),
    cmocka_unit_test_setup_teardown (test_max_payload, setup, teardown),
    cmocka_unit_test_setup_teardown (test_write_to_closed_peer, setup, teardown),
    cmocka_unit_test_setup_teardown (test_parse_json_errors, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
