/* The audit log: line format, concurrent writers, switching it off,
 * reading it back. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "testutil.h"
#include "common/util.h"
#include "service/audit.h"

static char tmpdir[64];
static char logpath[128];

static int
setup (void **state)
{
  (void) state;
  strcpy (tmpdir, "/tmp/ak-audit-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    return -1;
  /* A directory that does not exist yet: the log creates it. */
  snprintf (logpath, sizeof logpath, "%s/logs/audit.jsonl", tmpdir);
  setenv ("AGENTKERNEL_AUDIT_LOG", logpath, 1);
  unsetenv ("AGENTKERNEL_AUDIT");
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  ak_test_rmtree (tmpdir);
  unsetenv ("AGENTKERNEL_AUDIT_LOG");
  unsetenv ("AGENTKERNEL_AUDIT");
  return 0;
}

static char *
read_log (void)
{
  char *text = NULL;
  ak_error_t *err = NULL;
  if (ak_read_file (logpath, &text, NULL, &err) < 0)
    fail_msg ("%s", err->msg);
  return text;
}

static void
test_path (void **state)
{
  char *home = ak_xstrdup (getenv ("HOME") ? getenv ("HOME") : "/");

  (void) state;
  assert_string_equal (ak_audit_path (), logpath);
  unsetenv ("AGENTKERNEL_AUDIT_LOG");
  setenv ("HOME", "/home/someone", 1);
  assert_string_equal (ak_audit_path (), "/home/someone/.agentkernel/audit.jsonl");
  setenv ("HOME", home, 1);
  setenv ("AGENTKERNEL_AUDIT_LOG", logpath, 1);
  free (home);
}

static void
test_line_format (void **state)
{
  char *text, *nl;
  json_t *e, *cmd;
  json_error_t jerr;
  struct stat st;
  struct passwd *pw = getpwuid (getuid ());
  char dir[160];
  const char *ts;

  (void) state;
  assert_int_equal (ak_audit (AK_AUDIT_COMMAND_EXECUTED, "box",
                              json_pack ("{s:[s,s,s], s:i, s:s, s:s}", "command", "sh", "-c",
                                         "echo a\nb", "exit_code", 3, "user", "forged",
                                         "event", "forged")),
                    0);
  assert_int_equal (ak_audit (AK_AUDIT_SANDBOX_STOPPED, NULL, NULL), 0);

  assert_int_equal (stat (logpath, &st), 0);
  assert_int_equal (st.st_mode & 0777, 0600);
  snprintf (dir, sizeof dir, "%s/logs", tmpdir);
  assert_int_equal (stat (dir, &st), 0);
  assert_int_equal (st.st_mode & 0777, 0700);

  text = read_log ();
  nl = strchr (text, '\n');
  assert_non_null (nl);
  *nl = '\0';
  e = json_loads (text, 0, &jerr);
  assert_non_null (e);
  ts = json_string_value (json_object_get (e, "timestamp"));
  assert_non_null (ts);
  /* 2025-01-31T12:00:00.123Z */
  assert_int_equal (strlen (ts), 24);
  assert_int_equal (ts[10], 'T');
  assert_int_equal (ts[19], '.');
  assert_int_equal (ts[23], 'Z');
  assert_int_equal (json_integer_value (json_object_get (e, "pid")), getpid ());
  assert_string_equal (json_string_value (json_object_get (e, "user")), pw->pw_name);
  assert_string_equal (json_string_value (json_object_get (e, "event")), "command_executed");
  assert_string_equal (json_string_value (json_object_get (e, "sandbox")), "box");
  cmd = json_object_get (e, "command");
  assert_int_equal (json_array_size (cmd), 3);
  assert_string_equal (json_string_value (json_array_get (cmd, 2)), "echo a\nb");
  assert_int_equal (json_integer_value (json_object_get (e, "exit_code")), 3);
  json_decref (e);

  e = json_loads (nl + 1, 0, &jerr);
  assert_non_null (e);
  assert_string_equal (json_string_value (json_object_get (e, "event")), "sandbox_stopped");
  assert_null (json_object_get (e, "sandbox"));
  json_decref (e);
  free (text);
}

/* 8 processes x 200 lines at once: every line is whole, valid JSON. */
static void
test_concurrency (void **state)
{
  enum { PROCS = 8, LINES = 200 };
  int go[2], counts[PROCS] = { 0 };
  pid_t pids[PROCS];
  char *text, *save = NULL;
  size_t lines = 0;
  /* Long enough that a torn write would be visible. */
  char pad[2048];

  (void) state;
  memset (pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  assert_int_equal (pipe (go), 0);
  for (int i = 0; i < PROCS; i++)
    {
      pids[i] = fork ();
      assert_true (pids[i] >= 0);
      if (pids[i] == 0)
        {
          char c;
          close (go[1]);
          (void) !read (go[0], &c, 1);
          for (int l = 0; l < LINES; l++)
            if (ak_audit (AK_AUDIT_FILE_WRITTEN, "conc",
                          json_pack ("{s:i, s:i, s:s}", "proc", i, "seq", l, "pad", pad))
                < 0)
              _exit (1);
          _exit (0);
        }
    }
  close (go[0]);
  close (go[1]);
  for (int i = 0; i < PROCS; i++)
    {
      int st;
      assert_int_equal (waitpid (pids[i], &st, 0), pids[i]);
      assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
    }

  text = read_log ();
  for (char *l = strtok_r (text, "\n", &save); l != NULL; l = strtok_r (NULL, "\n", &save))
    {
      json_error_t jerr;
      json_t *e = json_loads (l, 0, &jerr);
      int p, s;
      if (e == NULL)
        fail_msg ("line %zu is not JSON: %s", lines + 1, jerr.text);
      p = (int) json_integer_value (json_object_get (e, "proc"));
      s = (int) json_integer_value (json_object_get (e, "seq"));
      assert_true (p >= 0 && p < PROCS);
      /* Each writer's lines appear in its order. */
      assert_int_equal (s, counts[p]);
      counts[p]++;
      assert_string_equal (json_string_value (json_object_get (e, "pad")), pad);
      json_decref (e);
      lines++;
    }
  assert_int_equal (lines, PROCS * LINES);
  free (text);
}

static void
test_disabled (void **state)
{
  struct stat st;
  json_t *fields = json_pack ("{s:s}", "reason", "x");

  (void) state;
  setenv ("AGENTKERNEL_AUDIT", "0", 1);
  /* The reference is released even when nothing is written (ASan checks). */
  assert_int_equal (ak_audit (AK_AUDIT_POLICY_VIOLATION, "box", fields), 0);
  assert_int_equal (stat (logpath, &st), -1);
  assert_int_equal (errno, ENOENT);
  setenv ("AGENTKERNEL_AUDIT", "1", 1);
  assert_int_equal (ak_audit (AK_AUDIT_POLICY_VIOLATION, "box", NULL), 0);
  assert_int_equal (stat (logpath, &st), 0);
}

/* Failing to log returns -1 and does not disturb the caller. */
static void
test_unwritable (void **state)
{
  char path[160];

  (void) state;
  snprintf (path, sizeof path, "%s/file", tmpdir);
  assert_int_equal (ak_write_file (path, "", 0, 0600, &(ak_error_t *){ NULL }), 0);
  snprintf (path, sizeof path, "%s/file/audit.jsonl", tmpdir);
  setenv ("AGENTKERNEL_AUDIT_LOG", path, 1);
  assert_int_equal (ak_audit (AK_AUDIT_SANDBOX_CREATED, "x", json_object ()), -1);
  setenv ("AGENTKERNEL_AUDIT_LOG", logpath, 1);
}

static void
test_read_filter_and_malformed (void **state)
{
  json_t *all, *some;
  ak_error_t *err = NULL;
  FILE *f;

  (void) state;
  /* No log yet: nothing, not an error. */
  assert_int_equal (ak_audit_read (NULL, &all, &err), 0);
  assert_int_equal (json_array_size (all), 0);
  json_decref (all);

  assert_int_equal (ak_audit (AK_AUDIT_SANDBOX_CREATED, "a", NULL), 0);
  assert_int_equal (ak_audit (AK_AUDIT_SANDBOX_CREATED, "b", NULL), 0);
  f = fopen (logpath, "a");
  assert_non_null (f);
  fputs ("not json\n\n[1,2]\n\"str\"\n{\"event\": \"x\", \"sandbox\": \"a\"\n", f);
  fclose (f);
  assert_int_equal (ak_audit (AK_AUDIT_FILE_READ, "a", json_pack ("{s:s, s:i}", "path", "/x", "bytes", 5)),
                    0);
  /* A torn last line without its newline. */
  f = fopen (logpath, "a");
  fputs ("{\"event\": \"sandbox_removed\", \"sand", f);
  fclose (f);

  assert_int_equal (ak_audit_read (NULL, &all, &err), 0);
  assert_int_equal (json_array_size (all), 3);
  assert_int_equal (ak_audit_read ("a", &some, &err), 0);
  assert_int_equal (json_array_size (some), 2);
  assert_string_equal (json_string_value (json_object_get (json_array_get (some, 1), "event")),
                       "file_read");
  assert_int_equal (json_integer_value (json_object_get (json_array_get (some, 1), "bytes")), 5);
  json_decref (some);
  assert_int_equal (ak_audit_read ("zzz", &some, &err), 0);
  assert_int_equal (json_array_size (some), 0);
  json_decref (some);
  json_decref (all);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_path, setup, teardown),
    cmocka_unit_test_setup_teardown (test_line_format, setup, teardown),
    cmocka_unit_test_setup_teardown (test_concurrency, setup, teardown),
    cmocka_unit_test_setup_teardown (test_disabled, setup, teardown),
    cmocka_unit_test_setup_teardown (test_unwritable, setup, teardown),
    cmocka_unit_test_setup_teardown (test_read_filter_and_malformed, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
