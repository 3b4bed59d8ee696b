/* The asciicast v2 writer: what it writes is a recording asciinema can
 * play, every event string is valid UTF-8 however the bytes were split,
 * and the default path stays in its private directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "testutil.h"
#include "common/util.h"
#include "service/asciicast.h"

static char tmpdir[64];
static char *cast_path;

static int
setup (void **state)
{
  (void) state;
  strcpy (tmpdir, "/tmp/ak-cast-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    return -1;
  cast_path = ak_xasprintf ("%s/rec.cast", tmpdir);
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  ak_test_rmtree (tmpdir);
  free (cast_path);
  cast_path = NULL;
  return 0;
}

static ak_cast_t *
open_cast (const char *title)
{
  ak_error_t *err = NULL;
  ak_cast_t *c = ak_cast_open (cast_path, 80, 24, title, "/bin/bash", &err);
  if (c == NULL)
    fail_msg ("%s", err->msg);
  return c;
}

/* The recording's lines, each parsed strictly (jansson refuses strings
 * that are not valid UTF-8).  NULL-terminated; free with json_decref. */
static json_t **
load_lines (size_t *n_out)
{
  char *text = NULL;
  size_t len = 0, n = 0;
  ak_error_t *err = NULL;
  json_t **lines = ak_xcalloc (1, sizeof (json_t *));

  if (ak_read_file (cast_path, &text, &len, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_true (len > 0 && text[len - 1] == '\n');
  for (char *line = text, *nl; *line != '\0'; line = nl + 1)
    {
      json_error_t jerr;
      nl = strchr (line, '\n');
      assert_non_null (nl);
      *nl = '\0';
      json_t *v = json_loads (line, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
      if (v == NULL)
        fail_msg ("line %zu '%s': %s", n + 1, line, jerr.text);
      lines = ak_xrealloc (lines, (n + 2) * sizeof (json_t *));
      lines[n++] = v;
      lines[n] = NULL;
    }
  free (text);
  *n_out = n;
  return lines;
}

static void
free_lines (json_t **lines)
{
  for (json_t **l = lines; *l != NULL; l++)
    json_decref (*l);
  free (lines);
}

/* Checks that `ev` is [t, code, data] with data exactly `want` (want_len
 * bytes) and t >= *prev_t; returns t. */
static double
check_event (json_t *ev, const char *code, const char *want, size_t want_len, double prev_t)
{
  assert_true (json_is_array (ev));
  assert_int_equal (json_array_size (ev), 3);
  assert_true (json_is_real (json_array_get (ev, 0)));
  double t = json_real_value (json_array_get (ev, 0));
  assert_true (t >= prev_t);
  assert_string_equal (json_string_value (json_array_get (ev, 1)), code);
  json_t *data = json_array_get (ev, 2);
  assert_true (json_is_string (data));
  if (json_string_length (data) != want_len || memcmp (json_string_value (data), want, want_len) != 0)
    fail_msg ("event data '%s', expected '%.*s'", json_string_value (data), (int) want_len, want);
  return t;
}

static void
test_header (void **state)
{
  time_t before = time (NULL);
  size_t n;
  (void) state;

  setenv ("TERM", "xterm-test", 1);
  ak_cast_close (open_cast ("a \"quoted\"\ttitle \xe2\x82\xac \xff"));
  json_t **lines = load_lines (&n);
  assert_int_equal (n, 1);
  json_t *h = lines[0];
  assert_int_equal (json_integer_value (json_object_get (h, "version")), 2);
  assert_int_equal (json_integer_value (json_object_get (h, "width")), 80);
  assert_int_equal (json_integer_value (json_object_get (h, "height")), 24);
  json_int_t ts = json_integer_value (json_object_get (h, "timestamp"));
  assert_true (ts >= before && ts <= time (NULL));
  assert_string_equal (json_string_value (json_object_get (h, "title")),
                       "a \"quoted\"\ttitle \xe2\x82\xac \xef\xbf\xbd");
  json_t *env = json_object_get (h, "env");
  assert_string_equal (json_string_value (json_object_get (env, "SHELL")), "/bin/bash");
  assert_string_equal (json_string_value (json_object_get (env, "TERM")), "xterm-test");
  free_lines (lines);

  /* No title: no key.  No TERM: the usual default. */
  unsetenv ("TERM");
  ak_error_t *err = NULL;
  ak_cast_close (ak_cast_open (cast_path, 132, 43, NULL, NULL, &err));
  lines = load_lines (&n);
  assert_null (json_object_get (lines[0], "title"));
  assert_int_equal (json_integer_value (json_object_get (lines[0], "width")), 132);
  env = json_object_get (lines[0], "env");
  assert_string_equal (json_string_value (json_object_get (env, "SHELL")), "/bin/sh");
  assert_string_equal (json_string_value (json_object_get (env, "TERM")), "xterm-256color");
  free_lines (lines);
}

static void
test_file_mode_and_errors (void **state)
{
  ak_error_t *err = NULL;
  struct stat st;
  (void) state;

  ak_cast_close (open_cast (NULL));
  assert_int_equal (stat (cast_path, &st), 0);
  assert_int_equal (st.st_mode & 07777, 0600);

  char *bad = ak_xasprintf ("%s/no/such/dir.cast", tmpdir);
  assert_null (ak_cast_open (bad, 80, 24, NULL, NULL, &err));
  assert_int_equal (err->code, ENOENT);
  assert_non_null (strstr (err->msg, bad));
  ak_error_clear (&err);
  free (bad);

  /* A symlink planted at the path is not followed. */
  char *link = ak_xasprintf ("%s/link.cast", tmpdir);
  char *target = ak_xasprintf ("%s/target", tmpdir);
  assert_int_equal (symlink (target, link), 0);
  assert_null (ak_cast_open (link, 80, 24, NULL, NULL, &err));
  assert_int_equal (err->code, ELOOP);
  ak_error_clear (&err);
  assert_int_equal (access (target, F_OK), -1);
  free (link);
  free (target);
}

static void
test_events (void **state)
{
  regex_t re;
  char *text = NULL;
  size_t n, len;
  ak_error_t *err = NULL;
  (void) state;

  ak_cast_t *c = open_cast (NULL);
  assert_int_equal (ak_cast_output (c, "hello\r\n", 7), 0);
  usleep (20000);
  assert_int_equal (ak_cast_input (c, "ls\r", 3), 0);
  assert_int_equal (ak_cast_resize (c, 100, 30), 0);
  assert_int_equal (ak_cast_output (c, "\x1b[1m\"q\"\\\x00\x07\x7f", 11), 0);
  assert_int_equal (ak_cast_output (c, "", 0), 0);
  ak_cast_close (c);

  json_t **lines = load_lines (&n);
  assert_int_equal (n, 5);
  double t = check_event (lines[1], "o", "hello\r\n", 7, 0);
  double t2 = check_event (lines[2], "i", "ls\r", 3, t);
  assert_true (t2 - t >= 0.019);
  t = check_event (lines[3], "r", "100x30", 6, t2);
  check_event (lines[4], "o", "\x1b[1m\"q\"\\\x00\x07\x7f", 11, t);
  free_lines (lines);

  /* Times have six decimals, and nothing else is in an event line. */
  assert_int_equal (ak_read_file (cast_path, &text, &len, &err), 0);
  assert_int_equal (regcomp (&re, "^\\[[0-9]+\\.[0-9]{6}, \"[oir]\", \".*\"\\]$", REG_EXTENDED | REG_NEWLINE), 0);
  char *line = strchr (text, '\n') + 1;
  for (int i = 0; i < 4; i++)
    {
      char *nl = strchr (line, '\n');
      *nl = '\0';
      if (regexec (&re, line, 0, NULL, 0) != 0)
        fail_msg ("event line '%s'", line);
      line = nl + 1;
    }
  regfree (&re);
  free (text);
}

/* Multi-byte characters split across writes come out whole, in the event
 * of the write that completes them; input and output are carried apart. */
static void
test_utf8_carry (void **state)
{
  size_t n;
  (void) state;

  ak_cast_t *c = open_cast (NULL);
  assert_int_equal (ak_cast_output (c, "\xe2\x82", 2), 0);        /* nothing yet */
  assert_int_equal (ak_cast_input (c, "\xc3", 1), 0);             /* nothing yet */
  assert_int_equal (ak_cast_output (c, "\xac!", 2), 0);           /* "€!" */
  assert_int_equal (ak_cast_output (c, "a\xf0", 2), 0);           /* "a" */
  assert_int_equal (ak_cast_output (c, "\x9f", 1), 0);            /* nothing */
  assert_int_equal (ak_cast_output (c, "\x98", 1), 0);            /* nothing */
  assert_int_equal (ak_cast_output (c, "\x80z", 2), 0);           /* "😀z" */
  assert_int_equal (ak_cast_input (c, "\xa9", 1), 0);             /* "é" */
  ak_cast_close (c);

  json_t **lines = load_lines (&n);
  assert_int_equal (n, 5);
  double t = check_event (lines[1], "o", "\xe2\x82\xac!", 4, 0);
  t = check_event (lines[2], "o", "a", 1, t);
  t = check_event (lines[3], "o", "\xf0\x9f\x98\x80z", 5, t);
  check_event (lines[4], "i", "\xc3\xa9", 2, t);
  free_lines (lines);
}

static void
test_invalid_bytes (void **state)
{
  static const struct {
    const char *in;
    size_t len;
    const char *out;
  } cases[] = {
    { "\xff", 1, "\xef\xbf\xbd" },
    { "a\x80z", 3, "a\xef\xbf\xbdz" },
    { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },                   /* overlong '/' */
    { "\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },   /* overlong */
    { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },   /* surrogate */
    { "\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* > U+10FFFF */
    { "\xe2\x82" "A", 3, "\xef\xbf\xbd" "A" },                        /* truncated, then ASCII */
    { "\xf0\x9f\x98" "\xe2\x82\xac", 6, "\xef\xbf\xbd\xe2\x82\xac" }, /* truncated, then valid */
    { "\xf5\xf8\xfe", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
  };
  (void) state;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      size_t n;
      ak_cast_t *c = open_cast (NULL);
      assert_int_equal (ak_cast_output (c, cases[i].in, cases[i].len), 0);
      ak_cast_close (c);
      json_t **lines = load_lines (&n);
      assert_int_equal (n, 2);
      check_event (lines[1], "o", cases[i].out, strlen (cases[i].out), 0);
      free_lines (lines);
    }
}

/* A sequence still incomplete when the recording ends is not dropped. */
static void
test_incomplete_at_close (void **state)
{
  size_t n;
  (void) state;

  ak_cast_t *c = open_cast (NULL);
  assert_int_equal (ak_cast_output (c, "x\xe2\x82", 3), 0);
  assert_int_equal (ak_cast_input (c, "\xf0", 1), 0);
  ak_cast_close (c);
  json_t **lines = load_lines (&n);
  assert_int_equal (n, 4);
  double t = check_event (lines[1], "o", "x", 1, 0);
  t = check_event (lines[2], "o", "\xef\xbf\xbd", 3, t);
  check_event (lines[3], "i", "\xef\xbf\xbd", 3, t);
  free_lines (lines);
}

/* Random bytes in random pieces: every line parses strictly; and valid
 * UTF-8 in random pieces comes back byte for byte. */
static void
test_random_splits (void **state)
{
  static const char *const alphabet[] = { "a", "\n", "\x1b", "\"", "\\", "\xc3\xa9", "\xe2\x82\xac",
                                          "\xf0\x9f\x98\x80", "\x00", "\xed\x9f\xbf" };
  unsigned seed = 12345;
  (void) state;

  for (int round = 0; round < 50; round++)
    {
      uint8_t in[512];
      size_t len = 0, n;
      bool valid = round % 2 == 0;

      while (len < sizeof in - 4)
        {
          if (valid)
            {
              const char *a = alphabet[rand_r (&seed) % 10];
              size_t al = *a ? strlen (a) : 1;
              memcpy (in + len, a, al);
              len += al;
            }
          else
            in[len++] = (uint8_t) rand_r (&seed);
        }

      ak_cast_t *c = open_cast (NULL);
      for (size_t off = 0; off < len;)
        {
          size_t piece = 1 + (size_t) rand_r (&seed) % 7;
          if (piece > len - off)
            piece = len - off;
          assert_int_equal (ak_cast_output (c, in + off, piece), 0);
          off += piece;
        }
      ak_cast_close (c);

      json_t **lines = load_lines (&n);
      if (valid)
        {
          char *all = ak_xmalloc (len + 1);
          size_t got = 0;
          for (size_t i = 1; i < n; i++)
            {
              json_t *d = json_array_get (lines[i], 2);
              assert_true (got + json_string_length (d) <= len);
              memcpy (all + got, json_string_value (d), json_string_length (d));
              got += json_string_length (d);
            }
          assert_int_equal (got, len);
          assert_memory_equal (all, in, len);
          free (all);
        }
      free_lines (lines);
    }
}

static void
test_default_path (void **state)
{
  char *saved = getenv ("HOME") ? ak_xstrdup (getenv ("HOME")) : NULL;
  char *rec = ak_xasprintf ("%s/.agentkernel/recordings", tmpdir);
  struct stat st;
  regex_t re;
  (void) state;

  setenv ("HOME", tmpdir, 1);
  char *p = ak_cast_default_path ("my-box");
  assert_non_null (p);
  assert_int_equal (strncmp (p, rec, strlen (rec)), 0);
  assert_int_equal (regcomp (&re, "/my-box-[0-9]{8}-[0-9]{6}\\.cast$", REG_EXTENDED), 0);
  assert_int_equal (regexec (&re, p, 0, NULL, 0), 0);
  regfree (&re);
  assert_int_equal (stat (rec, &st), 0);
  assert_true (S_ISDIR (st.st_mode));
  assert_int_equal (st.st_mode & 07777, 0700);

  /* A second recording in the same second gets its own name. */
  ak_error_t *err = NULL;
  ak_cast_close (ak_cast_open (p, 80, 24, NULL, NULL, &err));
  char *p2 = ak_cast_default_path ("my-box");
  assert_non_null (p2);
  assert_string_not_equal (p, p2);
  assert_non_null (strstr (p2, ".cast"));

  /* A name cannot walk out of the directory. */
  char *p3 = ak_cast_default_path ("../../etc/x");
  assert_non_null (p3);
  assert_int_equal (strncmp (p3, rec, strlen (rec)), 0);
  assert_null (strchr (p3 + strlen (rec) + 1, '/'));
  assert_int_equal (p3[strlen (rec) + 1], '_');

  /* A file where the directory should be is an error, not a crash. */
  char *home2 = ak_xasprintf ("%s/home2", tmpdir);
  char *ak2 = ak_xasprintf ("%s/.agentkernel", home2);
  assert_int_equal (mkdir (home2, 0700), 0);
  assert_int_equal (ak_write_file (ak2, "", 0, 0600, &err), 0);
  setenv ("HOME", home2, 1);
  assert_null (ak_cast_default_path ("x"));
  assert_int_equal (errno, ENOTDIR);

  if (saved)
    setenv ("HOME", saved, 1);
  else
    unsetenv ("HOME");
  free (saved);
  free (rec);
  free (p);
  free (p2);
  free (p3);
  free (home2);
  free (ak2);
}

/* asciinema itself accepts the file and prints exactly the output.
 * `asciinema cat` insists on a terminal (/dev/tty): script(1) provides
 * one, while its standard output goes to a file, untouched by the tty. */
static void
test_asciinema_accepts (void **state)
{
  const char *out_text = "plain \xe2\x82\xac \x1b[31mred\x1b[0m\r\n\"quoted\" \\ \t end";
  (void) state;

  if (system ("command -v asciinema >/dev/null 2>&1") != 0)
    {
      print_message ("skipped: asciinema is not installed\n");
      skip ();
    }
  ak_cast_t *c = open_cast ("asciinema check");
  assert_int_equal (ak_cast_output (c, out_text, 10), 0);
  assert_int_equal (ak_cast_input (c, "typed\r", 6), 0);
  assert_int_equal (ak_cast_resize (c, 120, 40), 0);
  assert_int_equal (ak_cast_output (c, out_text + 10, strlen (out_text) - 10), 0);
  ak_cast_close (c);

  if (system ("command -v script >/dev/null 2>&1") != 0)
    {
      print_message ("skipped: script(1) is not installed\n");
      skip ();
    }
  char *cmd = ak_xasprintf ("script -qec \"asciinema cat '%s' >'%s/cat.out' 2>'%s/cat.err'\" /dev/null </dev/null",
                            cast_path, tmpdir, tmpdir);
  char *out_path = ak_xasprintf ("%s/cat.out", tmpdir);
  char *got = NULL;
  size_t len;
  ak_error_t *err = NULL;
  int rc = system (cmd);
  if (rc != 0)
    {
      char *e = ak_xasprintf ("%s/cat.err", tmpdir);
      char *msg = NULL;
      ak_read_file (e, &msg, &len, &err);
      fail_msg ("asciinema cat failed (%d): %s", rc, msg ? msg : "?");
    }
  assert_int_equal (ak_read_file (out_path, &got, &len, &err), 0);
  assert_int_equal (len, strlen (out_text));
  assert_memory_equal (got, out_text, len);
  free (got);
  free (cmd);
  free (out_path);
}

/* `test_asciicast --write-sample FILE`: writes a small recording through
 * the writer (characters split across writes, input and resize events) and
 * prints the output it holds, for the integration tests to play it back
 * with asciinema and agentkernel replay. */
static int
write_sample (const char *path)
{
  static const char *const pieces[] = { "sample \xe2", "\x82\xac \x1b[1mbold\x1b[0m", " \xf0\x9f",
                                        "\x98\x80\r\n", "\"q\" \\ tab\tend\r\n" };
  ak_error_t *err = NULL;
  ak_cast_t *c = ak_cast_open (path, 80, 24, "sample", "/bin/sh", &err);

  if (c == NULL)
    {
      fprintf (stderr, "%s\n", err->msg);
      return 1;
    }
  for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
    {
      if (ak_cast_output (c, pieces[i], strlen (pieces[i])) < 0 || ak_cast_input (c, "k", 1) < 0
          || (i == 2 && ak_cast_resize (c, 100, 30) < 0))
        {
          perror (path);
          return 1;
        }
      fputs (pieces[i], stdout);
      usleep (10000);
    }
  ak_cast_close (c);
  return fflush (stdout) == 0 ? 0 : 1;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && strcmp (argv[1], "--write-sample") == 0)
    return write_sample (argv[2]);

  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_header, setup, teardown),
    cmocka_unit_test_setup_teardown (test_file_mode_and_errors, setup, teardown),
    cmocka_unit_test_setup_teardown (test_events, setup, teardown),
    cmocka_unit_test_setup_teardown (test_utf8_carry, setup, teardown),
    cmocka_unit_test_setup_teardown (test_invalid_bytes, setup, teardown),
    cmocka_unit_test_setup_teardown (test_incomplete_at_close, setup, teardown),
    cmocka_unit_test_setup_teardown (test_random_splits, setup, teardown),
    cmocka_unit_test_setup_teardown (test_default_path, setup, teardown),
    cmocka_unit_test_setup_teardown (test_asciinema_accepts, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
