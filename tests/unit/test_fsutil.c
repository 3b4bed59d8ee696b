/* Path safety: a root full of hostile symlinks, and host sources swapped
 * after they were pinned.  Each case checks that nothing outside the root
 * (the "host" directory next to it) is read, written or chmod'ed. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "common/util.h"
#include "testutil.h"

static char tmpdir[64];
static char *root_path, *host_path;
static int rootfd = -1;

static char *
at (const char *base, const char *rel)
{
  return ak_xasprintf ("%s/%s", base, rel);
}

static void
mk (const char *base, const char *rel, mode_t mode)
{
  char *p = at (base, rel);
  assert_int_equal (mkdir (p, mode), 0);
  assert_int_equal (chmod (p, mode), 0);
  free (p);
}

static void
put (const char *base, const char *rel, const char *data)
{
  char *p = at (base, rel);
  FILE *f = fopen (p, "w");
  assert_non_null (f);
  fputs (data, f);
  fclose (f);
  free (p);
}

static void
ln (const char *target, const char *base, const char *rel)
{
  char *p = at (base, rel);
  assert_int_equal (symlink (target, p), 0);
  free (p);
}

static char *
slurp (const char *base, const char *rel)
{
  char *p = at (base, rel), *data = NULL;
  ak_error_t *err = NULL;
  if (ak_read_file (p, &data, NULL, &err) < 0)
    ak_error_free (err);
  free (p);
  return data;
}

static mode_t
mode_of (const char *base, const char *rel)
{
  char *p = at (base, rel);
  struct stat st;
  assert_int_equal (lstat (p, &st), 0);
  free (p);
  return st.st_mode;
}

static int
setup (void **state)
{
  (void) state;
  strcpy (tmpdir, "/tmp/ak-fsutil-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    return -1;
  root_path = at (tmpdir, "root");
  host_path = at (tmpdir, "host");
  if (mkdir (root_path, 0755) < 0 || mkdir (host_path, 0755) < 0)
    return -1;
  rootfd = open (root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return rootfd < 0 ? -1 : 0;
}

static int
teardown (void **state)
{
  (void) state;
  close (rootfd);
  ak_test_rmtree (tmpdir);
  free (root_path);
  free (host_path);
  return 0;
}

/* Symlinks resolve inside the root: an absolute target names the root's
 * own file, ".." stops at the root. */
static void
test_in_root (void **state)
{
  int fd;
  char buf[16] = "";
  (void) state;
  mk (root_path, "etc", 0755);
  put (root_path, "etc/marker", "inside");
  put (host_path, "marker", "host");
  ln (host_path, root_path, "abs");
  ln ("/etc", root_path, "esc");
  ln ("../../../../etc", root_path, "up");

  fd = ak_fs_openat (rootfd, "/esc/marker", O_RDONLY, 0, AK_FS_IN_ROOT);
  assert_true (fd >= 0);
  assert_int_equal (read (fd, buf, sizeof buf - 1), 6);
  assert_string_equal (buf, "inside");
  close (fd);
  fd = ak_fs_openat (rootfd, "up/marker", O_RDONLY, 0, AK_FS_IN_ROOT);
  assert_true (fd >= 0);
  close (fd);
  /* The host directory named by an absolute link is not reached. */
  assert_int_equal (ak_fs_openat (rootfd, "abs/marker", O_RDONLY, 0, AK_FS_IN_ROOT), -1);
  assert_int_equal (errno, ENOENT);
  assert_int_equal (ak_fs_openat (rootfd, "esc/marker", O_RDONLY, 0, AK_FS_NO_SYMLINKS), -1);
  assert_int_equal (errno, ELOOP);
  assert_int_equal (ak_fs_openat (rootfd, "../host/marker", O_RDONLY, 0, AK_FS_BENEATH), -1);
  assert_int_equal (errno, EXDEV);
}

/* The fallback for kernels without openat2: never through a symlink,
 * never "..". */
static void
test_walk (void **state)
{
  int fd;
  struct stat st;
  (void) state;
  mk (root_path, "d", 0755);
  put (root_path, "d/f", "x");
  ln (host_path, root_path, "l");
  ln ("f", root_path, "d/lf");

  fd = ak_fs_walk (rootfd, "/d//./f", O_RDONLY, 0);
  assert_true (fd >= 0);
  close (fd);
  assert_int_equal (ak_fs_walk (rootfd, "l/marker", O_RDONLY, 0), -1);
  assert_int_equal (errno, ELOOP);
  assert_int_equal (ak_fs_walk (rootfd, "d/lf", O_RDONLY, 0), -1);
  assert_int_equal (errno, ELOOP);
  assert_int_equal (ak_fs_walk (rootfd, "l", O_PATH | O_DIRECTORY, 0), -1);
  assert_int_equal (errno, ELOOP);
  assert_int_equal (ak_fs_walk (rootfd, "d/../../host", O_PATH, 0), -1);
  assert_int_equal (errno, EXDEV);
  /* A final O_PATH|O_NOFOLLOW names the link itself, as openat2 does. */
  fd = ak_fs_walk (rootfd, "d/lf", O_PATH | O_NOFOLLOW, 0);
  assert_true (fd >= 0);
  assert_int_equal (fstat (fd, &st), 0);
  assert_true (S_ISLNK (st.st_mode));
  close (fd);
}

/* What the agent's strict file protocol relies on. */
static void
test_open_parent (void **state)
{
  const char *base;
  int fd;
  (void) state;
  ln (host_path, root_path, "l");

  assert_int_equal (ak_fs_open_parent (rootfd, "/l/x", false, &base), -1);
  assert_int_equal (errno, ELOOP);
  assert_int_equal (ak_fs_open_parent (rootfd, "/a/", false, &base), -1);
  assert_int_equal (errno, EISDIR);
  assert_int_equal (ak_fs_open_parent (rootfd, "/a/..", false, &base), -1);
  assert_int_equal (errno, EINVAL);
  assert_int_equal (ak_fs_open_parent (rootfd, "/a/b/c", false, &base), -1);
  assert_int_equal (errno, ENOENT);
  fd = ak_fs_open_parent (rootfd, "/a/b/c", true, &base);
  assert_true (fd >= 0);
  assert_string_equal (base, "c");
  close (fd);
  assert_true (S_ISDIR (mode_of (root_path, "a/b")));
}

/* A directory set-up writes into, replaced by a symlink to the host or a
 * file: made a real directory again; the host keeps its mode. */
static void
test_ensure_dir (void **state)
{
  int fd;
  (void) state;
  mk (root_path, "var", 0755);
  ln (host_path, root_path, "var/tmp");
  put (root_path, "etc", "not a directory");

  fd = ak_fs_ensure_dir (rootfd, "/var/tmp", 0755, NULL);
  assert_true (fd >= 0);
  assert_int_equal (fchmod (fd, 01777), 0);
  close (fd);
  assert_int_equal (mode_of (host_path, ".") & 07777, 0755);
  assert_true (S_ISDIR (mode_of (root_path, "var/tmp")));
  assert_int_equal (mode_of (root_path, "var/tmp") & 07777, 01777);
  fd = ak_fs_ensure_dir (rootfd, "etc", 0755, NULL);
  assert_true (fd >= 0);
  close (fd);
  assert_true (S_ISDIR (mode_of (root_path, "etc")));
  /* An existing directory is kept, content and all. */
  put (root_path, "etc/keep", "k");
  fd = ak_fs_ensure_dir (rootfd, "etc", 0700, NULL);
  assert_true (fd >= 0);
  close (fd);
  free (slurp (root_path, "etc/keep"));
  assert_int_equal (mode_of (root_path, "etc") & 0777, 0755);
}

/* Writes never go through a planted symlink or hard link. */
static void
test_write_file (void **state)
{
  char *p, *q, *data;
  ak_error_t *err = NULL;
  (void) state;
  put (host_path, "passwd", "host-passwd");
  mk (root_path, "etc", 0755);
  ln ("/proc/self/root/etc/passwd", root_path, "etc/magic");
  p = at (host_path, "passwd");
  ln (p, root_path, "etc/passwd");
  q = at (root_path, "etc/hosts");
  assert_int_equal (link (p, q), 0);
  free (p);
  free (q);
  ln (host_path, root_path, "etc/sub");

  assert_int_equal (ak_fs_write_file (rootfd, "/etc/passwd", "user", 4, 0644, NULL), 0);
  assert_int_equal (ak_fs_write_file (rootfd, "/etc/hosts", "hosts", 5, 0600, NULL), 0);
  assert_int_equal (ak_fs_write_file (rootfd, "/etc/magic", "m", 1, 0644, NULL), 0);
  data = slurp (host_path, "passwd");
  assert_string_equal (data, "host-passwd");
  free (data);
  data = slurp (root_path, "etc/passwd");
  assert_string_equal (data, "user");
  free (data);
  assert_true (S_ISREG (mode_of (root_path, "etc/passwd")));
  assert_int_equal (mode_of (root_path, "etc/hosts") & 0777, 0600);
  /* A parent that is a link to a host path resolves in the root, where
   * it leads nowhere: refused, and the host directory stays empty. */
  assert_int_equal (ak_fs_write_file (rootfd, "/etc/sub/x", "x", 1, 0644, &err), -1);
  assert_non_null (err);
  assert_non_null (strstr (err->msg, "symlink"));
  ak_error_free (err);
  data = slurp (host_path, "x");
  assert_null (data);
  /* A directory in the way is an error, not removed. */
  mk (root_path, "etc/dir", 0755);
  err = NULL;
  assert_int_equal (ak_fs_write_file (rootfd, "/etc/dir", "x", 1, 0644, &err), -1);
  ak_error_free (err);
}

static void
test_symlink_touch_mkdir (void **state)
{
  int fd;
  char buf[64];
  ssize_t n;
  (void) state;
  mk (root_path, "dev", 0755);
  put (root_path, "dev/fd", "planted");
  mk (root_path, "bin", 0755);
  ln (host_path, root_path, "dev/null");

  assert_int_equal (ak_fs_symlink (rootfd, "dev/fd", "/proc/self/fd", NULL), 0);
  n = readlinkat (rootfd, "dev/fd", buf, sizeof buf - 1);
  assert_int_equal (n, 13);
  /* A real directory where a link would go is left alone. */
  assert_int_equal (ak_fs_symlink (rootfd, "bin", "usr/bin", NULL), 0);
  assert_true (S_ISDIR (mode_of (root_path, "bin")));
  fd = ak_fs_touch (rootfd, "dev/null", NULL);
  assert_true (fd >= 0);
  close (fd);
  assert_true (S_ISREG (mode_of (root_path, "dev/null")));
  assert_true (S_ISDIR (mode_of (host_path, ".")));
  fd = ak_fs_mkdir_p (rootfd, "/a/b/c", 0755, NULL);
  assert_true (fd >= 0);
  close (fd);
  assert_true (S_ISDIR (mode_of (root_path, "a/b/c")));
}

/* A pinned source swapped for a symlink, or for another directory, is
 * refused; unchanged, it opens. */
static void
test_pin (void **state)
{
  ak_fs_id_t id;
  char *canon = NULL, *src = at (host_path, "src"), *old = at (host_path, "src.old");
  char *viapath = at (tmpdir, "via");
  ak_error_t *err = NULL;
  int fd;
  (void) state;
  mk (host_path, "src", 0755);
  assert_int_equal (symlink (host_path, viapath), 0);

  /* Pinned through a symlinked path: the canonical path is recorded. */
  free (viapath);
  viapath = at (tmpdir, "via/src");
  fd = ak_fs_pin (viapath, &id, &canon, NULL);
  assert_true (fd >= 0);
  close (fd);
  assert_string_equal (canon, src);
  assert_int_equal (id.type, S_IFDIR);
  fd = ak_fs_open_pinned (canon, &id, O_PATH, "volume", NULL);
  assert_true (fd >= 0);
  close (fd);
  /* The path through a symlink is refused even though it names the
   * same directory. */
  assert_int_equal (ak_fs_open_pinned (viapath, &id, O_PATH, "volume", &err), -1);
  assert_non_null (strstr (err->msg, "symlink"));
  ak_error_free (err);
  err = NULL;

  assert_int_equal (rename (src, old), 0);
  assert_int_equal (symlink ("/", src), 0);
  assert_int_equal (ak_fs_open_pinned (canon, &id, O_PATH, "volume", &err), -1);
  assert_non_null (strstr (err->msg, "volume"));
  assert_non_null (strstr (err->msg, "replaced"));
  ak_error_free (err);
  err = NULL;
  assert_int_equal (unlink (src), 0);
  mk (host_path, "src", 0755);
  assert_int_equal (ak_fs_open_pinned (canon, &id, O_PATH, "volume", &err), -1);
  assert_non_null (strstr (err->msg, "replaced"));
  ak_error_free (err);
  err = NULL;
  id.type = 0;
  assert_int_equal (ak_fs_open_pinned (canon, &id, O_PATH, "volume", &err), -1);
  assert_non_null (strstr (err->msg, "not recorded"));
  ak_error_free (err);
  free (canon);
  free (src);
  free (old);
  free (viapath);
}

/* Removing a tree: deeper than the descriptor limit, links not followed,
 * closed directories opened up, bytes counted. */
static void
test_remove_tree (void **state)
{
  ak_error_t *err = NULL;
  uint64_t freed = 0;
  int d, fd;
  struct rlimit rl, low = { 64, 64 };
  (void) state;

  mk (root_path, "t", 0755);
  put (root_path, "t/a", "12345");
  mk (root_path, "t/closed", 0000);
  ln (host_path, root_path, "t/link-to-host");
  put (host_path, "keep", "host file");
  /* 1,500 levels, with the descriptor limit at 64. */
  d = open (root_path, O_RDONLY | O_DIRECTORY);
  assert_true (d >= 0);
  assert_int_equal (mkdirat (d, "t/deep", 0755), 0);
  fd = openat (d, "t/deep", O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 1500; i++)
    {
      int next;
      assert_int_equal (mkdirat (fd, "d", 0755), 0);
      next = openat (fd, "d", O_RDONLY | O_DIRECTORY);
      assert_true (next >= 0);
      close (fd);
      fd = next;
    }
  assert_int_equal (symlinkat (host_path, fd, "bottom-link"), 0);
  close (fd);
  getrlimit (RLIMIT_NOFILE, &rl);
  assert_int_equal (setrlimit (RLIMIT_NOFILE, &low), 0);
  if (ak_fs_remove_tree (d, "t", &freed, &err) < 0)
    fail_msg ("%s", err->msg);
  setrlimit (RLIMIT_NOFILE, &rl);
  assert_int_equal (faccessat (d, "t", F_OK, AT_SYMLINK_NOFOLLOW), -1);
  assert_true (freed >= 5);
  /* The links' targets are untouched. */
  {
    char *k = at (host_path, "keep");
    assert_int_equal (access (k, F_OK), 0);
    free (k);
  }
  /* A file, and a name that is not there. */
  put (root_path, "f", "x");
  assert_int_equal (ak_fs_remove_tree (d, "f", NULL, &err), 0);
  assert_int_equal (ak_fs_remove_tree (d, "nothing", NULL, &err), 0);
  close (d);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_in_root, setup, teardown),
    cmocka_unit_test_setup_teardown (test_walk, setup, teardown),
    cmocka_unit_test_setup_teardown (test_open_parent, setup, teardown),
    cmocka_unit_test_setup_teardown (test_ensure_dir, setup, teardown),
    cmocka_unit_test_setup_teardown (test_write_file, setup, teardown),
    cmocka_unit_test_setup_teardown (test_symlink_touch_mkdir, setup, teardown),
    cmocka_unit_test_setup_teardown (test_pin, setup, teardown),
    cmocka_unit_test_setup_teardown (test_remove_tree, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
