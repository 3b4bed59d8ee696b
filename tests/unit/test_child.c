/* Workers and their reports: what a worker keeps, how it dies with its
 * parent, and how its error reaches the parent. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/child.h"
#include "common/util.h"

/* Descriptors open in this process, as a bit mask of 0..63. */
static unsigned long long
open_fds (void)
{
  unsigned long long mask = 0;
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *e;
  while (d != NULL && (e = readdir (d)) != NULL)
    {
      int fd = atoi (e->d_name);
      if (e->d_name[0] != '.' && fd != dirfd (d) && fd < 64)
        mask |= 1ULL << fd;
    }
  if (d != NULL)
    closedir (d);
  return mask;
}

static void
test_keeps_only_what_it_is_given (void **state)
{
  int rep[2], stray[2];
  (void) state;
  assert_int_equal (pipe2 (rep, O_CLOEXEC), 0);
  assert_int_equal (pipe (stray), 0); /* inheritable: a careless fork keeps it */
  int keep[1] = { rep[1] };
  ak_worker_t w = { .keep = keep, .n_keep = 1 };
  ak_error_t *err = NULL;
  pid_t pid = ak_worker_spawn (&w, &err);
  assert_true (pid >= 0);
  if (pid == 0)
    {
      /* 0, 1, 2 and the report channel at 3: nothing else. */
      ak_report_ok (keep[0], (int) open_fds ());
      _exit (0);
    }
  close (rep[1]);
  int value = 0;
  assert_int_equal (ak_report_read (rep[0], "worker", &value, &err), 0);
  assert_int_equal ((unsigned long long) value, 0xfULL);
  close (rep[0]);
  close (stray[0]);
  close (stray[1]);
  waitpid (pid, NULL, 0);
}

static void
test_error_reaches_the_parent (void **state)
{
  int rep[2];
  (void) state;
  assert_int_equal (pipe2 (rep, O_CLOEXEC), 0);
  int keep[1] = { rep[1] };
  ak_worker_t w = { .keep = keep, .n_keep = 1, .null_stdio = true };
  ak_error_t *err = NULL;
  pid_t pid = ak_worker_spawn (&w, &err);
  assert_true (pid >= 0);
  if (pid == 0)
    {
      ak_error_t *e = NULL;
      ak_error_set (&e, EACCES, "open the volume");
      ak_report_fail (keep[0], e);
    }
  close (rep[1]);
  int st;
  assert_int_equal (ak_report_read (rep[0], "worker", NULL, &err), -1);
  assert_non_null (err);
  assert_int_equal (err->code, EACCES);
  assert_string_equal (err->msg, "open the volume: Permission denied");
  ak_error_free (err);
  waitpid (pid, &st, 0);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 125);
  close (rep[0]);
}

static void
test_silent_exit_is_an_error (void **state)
{
  int rep[2];
  (void) state;
  assert_int_equal (pipe2 (rep, O_CLOEXEC), 0);
  int keep[1] = { rep[1] };
  ak_worker_t w = { .keep = keep, .n_keep = 1 };
  ak_error_t *err = NULL;
  pid_t pid = ak_worker_spawn (&w, &err);
  if (pid == 0)
    _exit (1);
  close (rep[1]);
  assert_int_equal (ak_report_read (rep[0], "the helper", NULL, &err), -1);
  assert_string_equal (err->msg, "the helper exited before reporting");
  ak_error_free (err);
  close (rep[0]);
  waitpid (pid, NULL, 0);
}

/* The worker of a parent that dies gets the death signal, also when the
 * parent was already gone before it armed it. */
static void
test_dies_with_its_parent (void **state)
{
  int rep[2], up[2];
  (void) state;
  assert_int_equal (pipe2 (rep, O_CLOEXEC), 0);
  assert_int_equal (pipe2 (up, O_CLOEXEC), 0);
  pid_t mid = fork ();
  assert_true (mid >= 0);
  if (mid == 0)
    {
      int keep[2] = { rep[1], up[1] };
      ak_worker_t w = { .keep = keep, .n_keep = 2, .death_signal = SIGKILL };
      pid_t pid = ak_worker_spawn (&w, NULL);
      if (pid == 0)
        {
          ak_report_ok (keep[0], (int) getpid ());
          ak_report_ok (keep[1], 0);
          pause ();
          _exit (0);
        }
      close (up[1]);
      /* The parent leaves once the worker is up. */
      _exit (ak_report_read (up[0], "worker", NULL, NULL) < 0);
    }
  close (up[0]);
  close (up[1]);
  close (rep[1]);
  int worker = 0;
  assert_int_equal (ak_report_read (rep[0], "worker", &worker, NULL), 0);
  waitpid (mid, NULL, 0);
  /* Gone within a few seconds: kill(pid, 0) fails once it is reaped. */
  int alive = 1;
  for (int i = 0; i < 200 && alive; i++)
    {
      usleep (20000);
      char path[64];
      snprintf (path, sizeof path, "/proc/%d/stat", worker);
      FILE *f = fopen (path, "r");
      alive = 0;
      if (f != NULL)
        {
          char buf[512] = "";
          alive = fgets (buf, sizeof buf, f) != NULL && strstr (buf, ") Z ") == NULL;
          fclose (f);
        }
    }
  assert_false (alive);
  close (rep[0]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_keeps_only_what_it_is_given),
    cmocka_unit_test (test_error_reaches_the_parent),
    cmocka_unit_test (test_silent_exit_is_an_error),
    cmocka_unit_test (test_dies_with_its_parent),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
