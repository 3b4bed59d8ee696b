/* Named volumes (service/volume.c) and the environment a command gets
 * inside (ak_spec_build_env_in). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "model/spec.h"
#include "service/store.h"
#include "service/volume.h"

static char tmpdir[64];

static int
setup (void **state)
{
  (void) state;
  strcpy (tmpdir, "/tmp/ak-volume-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    return -1;
  setenv ("AGENTKERNEL_STATE_DIR", tmpdir, 1);
  setenv ("AGENTKERNEL_AUDIT", "0", 1);
  return 0;
}

static int
teardown (void **state)
{
  char cmd[128];
  (void) state;
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system (cmd) == 0 ? 0 : -1;
}

static void
test_slugs (void **state)
{
  (void) state;
  assert_true (ak_volume_slug_valid ("cache"));
  assert_true (ak_volume_slug_valid ("a"));
  assert_true (ak_volume_slug_valid ("0-x_y"));
  assert_false (ak_volume_slug_valid (""));
  assert_false (ak_volume_slug_valid (NULL));
  assert_false (ak_volume_slug_valid ("-x"));
  assert_false (ak_volume_slug_valid ("_x"));
  assert_false (ak_volume_slug_valid ("Cache"));
  assert_false (ak_volume_slug_valid ("a/b"));
  assert_false (ak_volume_slug_valid (".."));
  assert_false (ak_volume_slug_valid ("a.b"));
  assert_true (ak_volume_slug_valid ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));   /* 63 */
  assert_false (ak_volume_slug_valid ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
}

static void
test_lifecycle (void **state)
{
  ak_error_t *err = NULL;
  char *path = NULL, **list = NULL, **users = NULL;
  char want[256];
  unsigned long long bytes, files;
  int fd;
  (void) state;

  assert_int_equal (ak_volume_path ("v1", &path, &err), -1);
  assert_int_equal (err->code, ENOENT);
  ak_error_clear (&err);
  assert_int_equal (ak_volume_create ("v1", false, &path, &err), 0);
  snprintf (want, sizeof want, "%s/volumes/v1", tmpdir);
  assert_string_equal (path, want);
  free (path);
  assert_int_equal (ak_volume_create ("v1", false, NULL, &err), -1);
  assert_int_equal (err->code, EEXIST);
  ak_error_clear (&err);
  assert_int_equal (ak_volume_create ("v1", true, NULL, &err), 0);
  assert_int_equal (ak_volume_create ("Bad", true, NULL, &err), -1);
  assert_int_equal (err->code, EINVAL);
  ak_error_clear (&err);
  assert_int_equal (ak_volume_create ("v0", false, NULL, &err), 0);
  assert_int_equal (ak_volume_list (&list, &err), 0);
  assert_int_equal (ak_strv_len (list), 2);
  assert_string_equal (list[0], "v0");
  assert_string_equal (list[1], "v1");
  ak_strv_free (list);

  /* A file and a symlink out of the volume: counted, never followed. */
  snprintf (want, sizeof want, "%s/volumes/v1/f", tmpdir);
  fd = open (want, O_WRONLY | O_CREAT, 0644);
  assert_true (fd >= 0);
  assert_int_equal (write (fd, "hello", 5), 5);
  close (fd);
  snprintf (want, sizeof want, "%s/volumes/v1/out", tmpdir);
  assert_int_equal (symlink ("/", want), 0);
  assert_int_equal (ak_volume_usage ("v1", &bytes, &files, &err), 0);
  assert_int_equal (files, 2);

  assert_int_equal (ak_volume_users ("v1", &users, &err), 0);
  assert_null (users[0]);
  ak_strv_free (users);

  /* Used by a recorded sandbox: delete refused, nothing removed. */
  {
    ak_spec_t spec;
    char vol[256];
    ak_spec_init (&spec);
    spec.name = ak_xstrdup ("sb1");
    snprintf (vol, sizeof vol, "%s/volumes/v1:/data", tmpdir);
    assert_int_equal (ak_spec_add_mount (&spec, vol, &err), 0);
    assert_int_equal (ak_store_create (&spec, NULL, &err), 0);
    ak_spec_clear (&spec);
  }
  assert_int_equal (ak_volume_users ("v1", &users, &err), 0);
  assert_string_equal (users[0], "sb1");
  ak_strv_free (users);
  assert_int_equal (ak_volume_delete ("v1", &err), -1);
  assert_int_equal (err->code, EBUSY);
  assert_non_null (strstr (err->msg, "sb1"));
  ak_error_clear (&err);
  assert_int_equal (ak_volume_path ("v1", &path, &err), 0);
  free (path);
  assert_int_equal (ak_store_remove ("sb1", &err), 0);
  assert_int_equal (ak_volume_delete ("v1", &err), 0);
  assert_int_equal (ak_volume_path ("v1", &path, &err), -1);
  ak_error_clear (&err);
  assert_int_equal (access ("/", F_OK), 0); /* the symlink's target is untouched */
  assert_int_equal (ak_volume_delete ("v0", &err), 0);
}

static void
test_shared_paths (void **state)
{
  char **v;
  char want[256];
  (void) state;
  v = ak_store_shared_paths ();
  assert_null (v[0]); /* no volumes yet: nothing shared */
  ak_strv_free (v);
  assert_int_equal (ak_volume_create ("v", false, NULL, NULL), 0);
  v = ak_store_shared_paths ();
  snprintf (want, sizeof want, "%s/volumes", tmpdir);
  assert_string_equal (v[0], want);
  assert_null (v[1]);
  ak_strv_free (v);
}

static bool
only_usr_bin (const char *dir)
{
  return strcmp (dir, "/usr/bin") == 0 || strcmp (dir, "/bin") == 0;
}

static const char *
get (char **env, const char *key)
{
  size_t n = strlen (key);
  for (char **e = env; e && *e; e++)
    if (strncmp (*e, key, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

static void
test_env_inside (void **state)
{
  ak_spec_t spec;
  char **env;
  char *host[] = { (char *) "PATH=/home/me/bin:/usr/bin:relative:/bin:/opt/x", (char *) "HOME=/home/me",
                   (char *) "USER=me", (char *) "TERM=xterm", NULL };
  (void) state;

  ak_spec_init (&spec);
  ak_spec_set_security (&spec, AK_SEC_PASS_ENV, true, AK_SRC_CLI, 0);
  ak_spec_capture_host_env (&spec, host);
  env = ak_spec_build_env_in (&spec, false, only_usr_bin);
  assert_string_equal (get (env, "HOME"), "/home/user");
  assert_string_equal (get (env, "PATH"), "/usr/bin:/bin");
  assert_string_equal (get (env, "USER"), "me");
  assert_string_equal (get (env, "TERM"), "xterm");
  ak_strv_free (env);
  env = ak_spec_build_env_in (&spec, true, only_usr_bin);
  assert_string_equal (get (env, "HOME"), "/root");
  assert_string_equal (get (env, "USER"), "root");
  ak_strv_free (env);
  /* No check: every absolute directory is kept, a relative one never. */
  env = ak_spec_build_env_in (&spec, false, NULL);
  assert_string_equal (get (env, "PATH"), "/home/me/bin:/usr/bin:/bin:/opt/x");
  ak_strv_free (env);
  ak_spec_clear (&spec);

  ak_spec_init (&spec);
  env = ak_spec_build_env_in (&spec, true, only_usr_bin);
  assert_string_equal (get (env, "HOME"), "/root");
  assert_string_equal (get (env, "PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  ak_strv_free (env);
  ak_spec_clear (&spec);
}

static bool
none (const char *dir)
{
  (void) dir;
  return false;
}

static void
test_env_no_path_left (void **state)
{
  ak_spec_t spec;
  char **env;
  char *host[] = { (char *) "PATH=/home/me/bin", NULL };
  (void) state;
  ak_spec_init (&spec);
  ak_spec_set_security (&spec, AK_SEC_PASS_ENV, true, AK_SRC_CLI, 0);
  ak_spec_capture_host_env (&spec, host);
  env = ak_spec_build_env_in (&spec, false, none);
  assert_string_equal (get (env, "PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  ak_strv_free (env);
  ak_spec_clear (&spec);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_slugs),
    cmocka_unit_test_setup_teardown (test_lifecycle, setup, teardown),
    cmocka_unit_test_setup_teardown (test_shared_paths, setup, teardown),
    cmocka_unit_test (test_env_inside),
    cmocka_unit_test (test_env_no_path_left),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
