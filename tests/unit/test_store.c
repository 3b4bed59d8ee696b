/* Persistent sandbox records: lifecycle, races between processes, damage on
 * disk, hostile names and trees. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "service/store.h"

static char tmpdir[64];
static char root[128];

static int
setup (void **state)
{
  (void) state;
  strcpy (tmpdir, "/tmp/ak-store-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    return -1;
  snprintf (root, sizeof root, "%s/state", tmpdir);
  setenv ("AGENTKERNEL_STATE_DIR", root, 1);
  return 0;
}

static int
teardown (void **state)
{
  char *cmd = ak_xasprintf ("chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", tmpdir, tmpdir);
  (void) state;
  if (system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", tmpdir);
  free (cmd);
  unsetenv ("AGENTKERNEL_STATE_DIR");
  return 0;
}

static void
make_spec (ak_spec_t *spec, const char *name)
{
  ak_spec_init (spec);
  spec->name = ak_xstrdup (name);
  ak_strv_push (&spec->argv, "bash");
}

static void
create_ok (const char *name)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;

  make_spec (&spec, name);
  if (ak_store_create (&spec, NULL, &err) < 0)
    fail_msg ("create %s: %s", name, err->msg);
  ak_spec_clear (&spec);
}

static char *
sandbox_file (const char *name, const char *file)
{
  return ak_xasprintf ("%s/sandboxes/%s/%s", root, name, file);
}

static void
write_text (const char *path, const char *text)
{
  ak_error_t *err = NULL;
  if (ak_write_file (path, text, strlen (text), 0600, &err) < 0)
    fail_msg ("%s", err->msg);
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

static void
test_root (void **state)
{
  char *home = getenv ("HOME") ? ak_xstrdup (getenv ("HOME")) : NULL;
  char *r;

  (void) state;
  r = ak_store_root ();
  assert_string_equal (r, root);
  free (r);
  r = ak_store_dir ("abc");
  assert_non_null (r);
  assert_true (strcmp (r, root) > 0 && strstr (r, "/sandboxes/abc") != NULL);
  free (r);
  assert_null (ak_store_dir ("../abc"));

  unsetenv ("AGENTKERNEL_STATE_DIR");
  setenv ("XDG_DATA_HOME", "/x/data", 1);
  r = ak_store_root ();
  assert_string_equal (r, "/x/data/agentkernel");
  free (r);
  setenv ("XDG_DATA_HOME", "relative", 1);
  setenv ("HOME", "/home/someone", 1);
  r = ak_store_root ();
  assert_string_equal (r, "/home/someone/.local/share/agentkernel");
  free (r);
  unsetenv ("XDG_DATA_HOME");
  if (home != NULL)
    setenv ("HOME", home, 1);
  free (home);
  setenv ("AGENTKERNEL_STATE_DIR", root, 1);
}

static void
test_lifecycle (void **state)
{
  ak_spec_t spec;
  ak_record_t rec, back;
  ak_record_t *list;
  size_t n;
  ak_error_t *err = NULL;
  struct stat st;
  char *dir;

  (void) state;
  /* No state directory yet: an empty list, not an error. */
  assert_int_equal (ak_store_list (&list, &n, &err), 0);
  assert_int_equal (n, 0);
  ak_store_list_free (list, n);

  make_spec (&spec, "alpha");
  spec.res.memory_mb = 321;
  assert_int_equal (ak_store_create (&spec, &rec, &err), 0);
  assert_string_equal (rec.name, "alpha");
  assert_string_equal (rec.spec.name, "alpha");
  assert_int_equal (rec.spec.res.memory_mb, 321);
  assert_int_equal (strlen (rec.uuid), 36);
  assert_int_equal (rec.uuid[14], '4');
  assert_non_null (strchr ("89ab", rec.uuid[19]));
  assert_int_equal (strlen (rec.created), 20);
  assert_int_equal (rec.created[10], 'T');
  assert_int_equal (rec.created[19], 'Z');
  assert_string_equal (rec.status_hint, "created");
  assert_int_equal (rec.supervisor_pid, 0);

  dir = ak_store_dir ("alpha");
  assert_int_equal (stat (dir, &st), 0);
  assert_int_equal (st.st_mode & 0777, 0700);
  free (dir);
  create_ok ("beta");
  create_ok ("Aardvark");

  assert_int_equal (ak_store_load ("alpha", &back, &err), 0);
  assert_string_equal (back.uuid, rec.uuid);
  assert_string_equal (back.created, rec.created);
  assert_int_equal (back.spec.res.memory_mb, 321);
  assert_string_equal (back.spec.argv[0], "bash");
  ak_record_clear (&back);

  /* State changes persist; the spec does not move. */
  rec.supervisor_pid = 4242;
  rec.supervisor_starttime = 99;
  free (rec.status_hint);
  rec.status_hint = ak_xstrdup ("running");
  assert_int_equal (ak_store_save_state (&rec, &err), 0);
  assert_int_equal (ak_store_load ("alpha", &back, &err), 0);
  assert_int_equal (back.supervisor_pid, 4242);
  assert_int_equal (back.supervisor_starttime, 99);
  assert_string_equal (back.status_hint, "running");
  ak_record_clear (&back);

  assert_int_equal (ak_store_find_uuid (rec.uuid, &back, &err), 0);
  assert_string_equal (back.name, "alpha");
  ak_record_clear (&back);
  assert_int_equal (ak_store_find_uuid ("00000000-0000-4000-8000-000000000000", &back, &err), -1);
  assert_int_equal (err->code, ENOENT);
  ak_error_clear (&err);
  assert_int_equal (ak_store_find_uuid ("nope", &back, &err), -1);
  assert_int_equal (err->code, EINVAL);
  ak_error_clear (&err);

  assert_int_equal (ak_store_list (&list, &n, &err), 0);
  assert_int_equal (n, 3);
  assert_string_equal (list[0].name, "Aardvark");
  assert_string_equal (list[1].name, "alpha");
  assert_string_equal (list[2].name, "beta");
  assert_null (list[1].load_error);
  assert_string_equal (list[1].uuid, rec.uuid);
  ak_store_list_free (list, n);

  assert_int_equal (ak_store_remove ("alpha", &err), 0);
  assert_int_equal (ak_store_load ("alpha", &back, &err), -1);
  assert_int_equal (err->code, ENOENT);
  assert_string_equal (err->msg, "no such sandbox 'alpha'");
  ak_error_clear (&err);
  assert_int_equal (ak_store_remove ("alpha", &err), -1);
  assert_int_equal (err->code, ENOENT);
  ak_error_clear (&err);
  assert_int_equal (ak_store_save_state (&rec, &err), -1);
  assert_int_equal (err->code, ENOENT);
  ak_error_clear (&err);

  assert_int_equal (ak_store_list (&list, &n, &err), 0);
  assert_int_equal (n, 2);
  ak_store_list_free (list, n);

  /* The name is free again. */
  create_ok ("alpha");
  ak_record_clear (&rec);
  ak_spec_clear (&spec);
}

static void
test_duplicate (void **state)
{
  ak_spec_t spec;
  ak_record_t rec;
  ak_error_t *err = NULL;

  (void) state;
  create_ok ("dup");
  make_spec (&spec, "dup");
  assert_int_equal (ak_store_create (&spec, &rec, &err), -1);
  assert_int_equal (err->code, EEXIST);
  assert_string_equal (err->msg, "sandbox 'dup' already exists");
  assert_null (rec.name);
  ak_error_clear (&err);
  ak_spec_clear (&spec);
}

/* 8 processes create the same name at once: exactly one wins, the others
 * are told it exists, and no temporary directory is left behind. */
static void
test_concurrent_create (void **state)
{
  enum { N = 8 };
  int go[2], wins = 0, exists_n = 0;
  pid_t pids[N];
  ak_record_t *list;
  size_t n;
  ak_error_t *err = NULL;
  char *sb;

  (void) state;
  for (int round = 0; round < 5; round++)
    {
      char name[32];
      snprintf (name, sizeof name, "race%d", round);
      assert_int_equal (pipe (go), 0);
      for (int i = 0; i < N; i++)
        {
          pids[i] = fork ();
          assert_true (pids[i] >= 0);
          if (pids[i] == 0)
            {
              ak_spec_t spec;
              ak_error_t *cerr = NULL;
              char c;
              close (go[1]);
              /* Start together: everyone blocks until the pipe closes. */
              (void) !read (go[0], &c, 1);
              make_spec (&spec, name);
              if (ak_store_create (&spec, NULL, &cerr) == 0)
                _exit (0);
              _exit (cerr->code == EEXIST && strstr (cerr->msg, "already exists") ? 17 : 1);
            }
        }
      close (go[0]);
      close (go[1]);
      wins = exists_n = 0;
      for (int i = 0; i < N; i++)
        {
          int st;
          assert_int_equal (waitpid (pids[i], &st, 0), pids[i]);
          assert_true (WIFEXITED (st));
          if (WEXITSTATUS (st) == 0)
            wins++;
          else if (WEXITSTATUS (st) == 17)
            exists_n++;
        }
      assert_int_equal (wins, 1);
      assert_int_equal (exists_n, N - 1);
    }
  assert_int_equal (ak_store_list (&list, &n, &err), 0);
  assert_int_equal (n, 5);
  for (size_t i = 0; i < n; i++)
    assert_null (list[i].load_error);
  ak_store_list_free (list, n);

  sb = ak_xasprintf ("ls -a '%s/sandboxes' | grep -q '^\\.tmp-'", root);
  assert_int_not_equal (system (sb), 0);
  free (sb);
}

static void
expect_load_error (const char *name, const char *substr)
{
  ak_record_t rec;
  ak_error_t *err = NULL;

  assert_int_equal (ak_store_load (name, &rec, &err), -1);
  assert_non_null (err);
  if (strstr (err->msg, substr) == NULL)
    fail_msg ("expected '%s' in: %s", substr, err->msg);
  assert_null (rec.name);
  ak_error_free (err);
}

static void
test_corrupt (void **state)
{
  char *spec_path, *state_path;
  ak_record_t *list;
  size_t n;
  ak_error_t *err = NULL;
  char *text;

  (void) state;
  create_ok ("broken");
  create_ok ("fine");
  spec_path = sandbox_file ("broken", "spec.json");
  state_path = sandbox_file ("broken", "state.json");
  assert_int_equal (ak_read_file (spec_path, &text, NULL, &err), 0);

  /* Truncated half-way. */
  text[strlen (text) / 2] = '\0';
  write_text (spec_path, text);
  expect_load_error ("broken", "sandbox 'broken': spec.json: invalid JSON at line");
  write_text (spec_path, "");
  expect_load_error ("broken", "spec.json: invalid JSON");
  write_text (spec_path, "\x01\x02garbage\xff");
  expect_load_error ("broken", "spec.json: invalid JSON");
  write_text (spec_path, "[1, 2]");
  expect_load_error ("broken", "spec.json: invalid spec: expected an object");
  write_text (spec_path, "{\"name\": \"other\"}");
  expect_load_error ("broken", "spec.json: names sandbox 'other'");
  write_text (spec_path, "{\"name\": \"broken\", \"mounts\": [{\"source\": \"x\", \"dest\": \"/y\"}]}");
  expect_load_error ("broken", "mounts[0].source");
  unlink (spec_path);
  expect_load_error ("broken", "spec.json");
  assert_int_equal (mkdir (spec_path, 0700), 0);
  expect_load_error ("broken", "spec.json");
  rmdir (spec_path);
  write_text (spec_path, "{\"name\": \"broken\"}");
  write_text (state_path, "{\"name\": \"broken\"}");
  expect_load_error ("broken", "state.json");
  write_text (state_path, "{\"name\": \"broken\", \"uuid\": \"x\", \"created\": \"\", \"supervisor_pid\": 0,"
                          " \"supervisor_starttime\": 0}");
  expect_load_error ("broken", "state.json: invalid uuid");
  write_text (state_path, "{\"name\": \"broken\", \"uuid\": \"00000000-0000-4000-8000-000000000000\","
                          " \"created\": \"\", \"supervisor_pid\": -4, \"supervisor_starttime\": 0}");
  expect_load_error ("broken", "state.json: invalid supervisor");

  /* list reports the damaged record truthfully, remove cleans it. */
  assert_int_equal (ak_store_list (&list, &n, &err), 0);
  assert_int_equal (n, 2);
  assert_string_equal (list[0].name, "broken");
  assert_non_null (list[0].load_error);
  assert_non_null (strstr (list[0].load_error, "state.json"));
  assert_null (list[1].load_error);
  ak_store_list_free (list, n);
  assert_int_equal (ak_store_remove ("broken", &err), 0);
  assert_false (exists (spec_path));
  free (text);
  free (spec_path);
  free (state_path);
}

static void
test_invalid_names (void **state)
{
  static const char *const bad[] = { "", "../x", "a/b", ".", "..", ".tmp-x-1", "a b", "x\n",
                                     "0123456789012345678901234567890123456789012345678901234567890123",
                                     NULL };
  ak_error_t *err = NULL;
  ak_record_t rec;

  (void) state;
  for (int i = 0; bad[i] != NULL; i++)
    {
      ak_spec_t spec;
      make_spec (&spec, bad[i]);
      assert_int_equal (ak_store_create (&spec, NULL, &err), -1);
      assert_non_null (strstr (err->msg, "invalid sandbox name"));
      assert_int_equal (err->code, EINVAL);
      ak_error_clear (&err);
      assert_int_equal (ak_store_load (bad[i], &rec, &err), -1);
      ak_error_clear (&err);
      assert_int_equal (ak_store_remove (bad[i], &err), -1);
      ak_error_clear (&err);
      assert_int_equal (ak_store_lock (bad[i], true, &err), -1);
      ak_error_clear (&err);
      assert_null (ak_store_dir (bad[i]));
      ak_spec_clear (&spec);
    }
  /* An anonymous spec cannot be stored. */
  {
    ak_spec_t spec;
    ak_spec_init (&spec);
    assert_int_equal (ak_store_create (&spec, NULL, &err), -1);
    ak_error_clear (&err);
    ak_spec_clear (&spec);
  }
  assert_int_equal (ak_store_load (NULL, &rec, &err), -1);
  ak_error_clear (&err);
  /* Nothing was touched: the state directory was never even created. */
  assert_false (exists (root));
}

/* A child holds the lock; the parent is told the sandbox is busy, then gets
 * the lock once the child lets go. */
static void
test_lock_contention (void **state)
{
  int to_parent[2], to_child[2];
  ak_error_t *err = NULL;
  pid_t pid;
  char c;
  int fd, fd2, st;
  unsigned long long t0;

  (void) state;
  create_ok ("locked");
  assert_int_equal (pipe (to_parent), 0);
  assert_int_equal (pipe (to_child), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      ak_error_t *cerr = NULL;
      int lfd = ak_store_lock ("locked", true, &cerr);
      if (lfd < 0)
        _exit (1);
      (void) !write (to_parent[1], "L", 1);
      (void) !read (to_child[0], &c, 1);
      ak_store_unlock (lfd);
      _exit (0);
    }
  assert_int_equal (read (to_parent[0], &c, 1), 1);

  t0 = ak_now_ns ();
  assert_int_equal (ak_store_lock_timeout ("locked", true, 300, &err), -1);
  assert_true (ak_now_ns () - t0 >= 250000000ULL);
  assert_int_equal (err->code, EBUSY);
  assert_non_null (strstr (err->msg, "sandbox 'locked' is busy"));
  ak_error_clear (&err);
  assert_int_equal (ak_store_lock_timeout ("locked", false, 50, &err), -1);
  assert_int_equal (err->code, EBUSY);
  ak_error_clear (&err);

  /* Released while we wait: the waiter gets it well before its timeout. */
  assert_int_equal (write (to_child[1], "U", 1), 1);
  t0 = ak_now_ns ();
  fd = ak_store_lock_timeout ("locked", true, 5000, &err);
  assert_true (fd >= 0);
  assert_true (ak_now_ns () - t0 < 2000000000ULL);
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  ak_store_unlock (fd);

  /* Shared locks coexist; an exclusive one waits for them. */
  fd = ak_store_lock ("locked", false, &err);
  fd2 = ak_store_lock ("locked", false, &err);
  assert_true (fd >= 0 && fd2 >= 0);
  assert_int_equal (ak_store_lock_timeout ("locked", true, 20, &err), -1);
  ak_error_clear (&err);
  ak_store_unlock (fd);
  ak_store_unlock (fd2);

  assert_int_equal (ak_store_lock ("nosuch", true, &err), -1);
  assert_int_equal (err->code, ENOENT);
  ak_error_clear (&err);
  close (to_parent[0]);
  close (to_parent[1]);
  close (to_child[0]);
  close (to_child[1]);
}

/* A waiter whose sandbox is removed by the lock holder is told it is gone,
 * rather than holding a lock on a deleted file. */
static void
test_lock_removed_while_waiting (void **state)
{
  int ready[2];
  ak_error_t *err = NULL;
  pid_t pid;
  char c;
  int st;

  (void) state;
  create_ok ("doomed");
  assert_int_equal (pipe (ready), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      ak_error_t *cerr = NULL;
      int lfd = ak_store_lock ("doomed", true, &cerr);
      if (lfd < 0)
        _exit (1);
      (void) !write (ready[1], "L", 1);
      usleep (200000);
      if (ak_store_remove ("doomed", &cerr) < 0)
        _exit (2);
      ak_store_unlock (lfd);
      _exit (0);
    }
  assert_int_equal (read (ready[0], &c, 1), 1);
  assert_int_equal (ak_store_lock_timeout ("doomed", true, 5000, &err), -1);
  assert_int_equal (err->code, ENOENT);
  ak_error_clear (&err);
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  close (ready[0]);
  close (ready[1]);
}

/* Whatever else lives in the directory goes with it, but symbolic links are
 * removed, not followed. */
static void
test_remove_symlinks (void **state)
{
  char *outside = ak_xasprintf ("%s/outside", tmpdir);
  char *outside_file = ak_xasprintf ("%s/keep.txt", outside);
  char *p;
  ak_error_t *err = NULL;
  int sfd;

  (void) state;
  assert_int_equal (mkdir (outside, 0700), 0);
  write_text (outside_file, "precious");
  create_ok ("links");

  p = sandbox_file ("links", "to-outside");
  assert_int_equal (symlink (outside, p), 0);
  free (p);
  p = sandbox_file ("links", "to-file");
  assert_int_equal (symlink (outside_file, p), 0);
  free (p);
  p = sandbox_file ("links", "logs");
  assert_int_equal (mkdir (p, 0700), 0);
  free (p);
  p = sandbox_file ("links", "logs/out.log");
  write_text (p, "log");
  free (p);
  p = sandbox_file ("links", "logs/deeper");
  assert_int_equal (mkdir (p, 0500), 0);
  free (p);
  p = sandbox_file ("links", "logs/up");
  assert_int_equal (symlink ("../../../../outside", p), 0);
  free (p);
  p = sandbox_file ("links", "fifo");
  assert_int_equal (mkfifo (p, 0600), 0);
  free (p);
  /* A socket, as the agent leaves behind. */
  p = sandbox_file ("links", "agent.sock");
  sfd = socket (AF_UNIX, SOCK_STREAM, 0);
  {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    assert_true (strlen (p) < sizeof addr.sun_path);
    strcpy (addr.sun_path, p);
    assert_int_equal (bind (sfd, (const void *) &addr, sizeof addr), 0);
  }
  close (sfd);
  free (p);

  assert_int_equal (ak_store_remove ("links", &err), 0);
  p = ak_store_dir ("links");
  assert_false (exists (p));
  free (p);
  assert_true (exists (outside));
  assert_true (exists (outside_file));
  {
    char *text;
    assert_int_equal (ak_read_file (outside_file, &text, NULL, &err), 0);
    assert_string_equal (text, "precious");
    free (text);
  }

  /* A sandbox name that is itself a planted symlink is unlinked, its target
   * untouched. */
  p = ak_xasprintf ("%s/sandboxes/planted", root);
  assert_int_equal (symlink (outside, p), 0);
  assert_int_equal (ak_store_remove ("planted", &err), 0);
  assert_false (exists (p));
  assert_true (exists (outside_file));
  free (p);
  free (outside);
  free (outside_file);
}

/* A filesystem mounted inside a sandbox's directory (a bind mount left by a
 * crashed supervisor) is not emptied: removal stops, says why, and gives the
 * name back.  Needs a private mount namespace, so root. */
static void
test_remove_mount_point (void **state)
{
  pid_t pid;
  int st;

  (void) state;
  create_ok ("mounted");
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      ak_error_t *err = NULL;
      char *mnt = sandbox_file ("mounted", "mnt");
      char *inner = sandbox_file ("mounted", "mnt/keep");

      if (unshare (CLONE_NEWNS) < 0)
        _exit (77);
      if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || mkdir (mnt, 0700) < 0
          || mount ("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0)
        _exit (10);
      if (ak_write_file (inner, "x", 1, 0600, &err) < 0)
        _exit (11);
      if (ak_store_remove ("mounted", &err) == 0)
        _exit (12);
      if (err->code != EXDEV || strstr (err->msg, "mount point") == NULL)
        _exit (13);
      ak_error_clear (&err);
      if (!exists (inner))
        _exit (14);
      if (umount (mnt) < 0)
        _exit (15);
      if (ak_store_remove ("mounted", &err) < 0 || exists (mnt))
        _exit (16);
      _exit (0);
    }
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFEXITED (st));
  if (WEXITSTATUS (st) == 77)
    {
      print_message ("skipped: needs CAP_SYS_ADMIN for a private mount namespace (run as root)\n");
      skip ();
    }
  assert_int_equal (WEXITSTATUS (st), 0);
}

/* Half-built directories and stray entries are not records. */
static void
test_list_skips (void **state)
{
  ak_record_t *list;
  size_t n;
  ak_error_t *err = NULL;
  char *p;

  (void) state;
  create_ok ("real");
  p = ak_xasprintf ("%s/sandboxes/.tmp-ghost-0123", root);
  assert_int_equal (mkdir (p, 0700), 0);
  free (p);
  p = ak_xasprintf ("%s/sandboxes/.rm-old-0123", root);
  assert_int_equal (mkdir (p, 0700), 0);
  free (p);
  p = ak_xasprintf ("%s/sandboxes/stray-file", root);
  write_text (p, "x");
  free (p);
  p = ak_xasprintf ("%s/sandboxes/bad name", root);
  assert_int_equal (mkdir (p, 0700), 0);
  free (p);
  assert_int_equal (ak_store_list (&list, &n, &err), 0);
  assert_int_equal (n, 1);
  assert_string_equal (list[0].name, "real");
  ak_store_list_free (list, n);
}

static void
test_supervisor_alive (void **state)
{
  ak_record_t r = { 0 };
  ak_error_t *err = NULL;
  unsigned long long start;
  pid_t child;
  int st;

  (void) state;
  assert_false (ak_store_supervisor_alive (&r));
  assert_int_equal (ak_store_proc_starttime (getpid (), &start, &err), 0);
  assert_true (start > 0);
  r.supervisor_pid = getpid ();
  r.supervisor_starttime = start;
  assert_true (ak_store_supervisor_alive (&r));
  /* Same pid, other start time: a reused pid. */
  r.supervisor_starttime = start + 1;
  assert_false (ak_store_supervisor_alive (&r));

  child = fork ();
  assert_true (child >= 0);
  if (child == 0)
    _exit (0);
  /* Wait for it to become a zombie without reaping it. */
  {
    siginfo_t si;
    assert_int_equal (waitid (P_PID, (id_t) child, &si, WEXITED | WNOWAIT), 0);
  }
  r.supervisor_pid = child;
  r.supervisor_starttime = 0;
  if (ak_store_proc_starttime (child, &r.supervisor_starttime, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_false (ak_store_supervisor_alive (&r));
  assert_int_equal (waitpid (child, &st, 0), child);
  assert_false (ak_store_supervisor_alive (&r));
  assert_int_equal (ak_store_proc_starttime (child, &start, &err), -1);
  ak_error_clear (&err);
  assert_int_equal (ak_store_proc_starttime (0, &start, &err), -1);
  ak_error_clear (&err);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_root, setup, teardown),
    cmocka_unit_test_setup_teardown (test_lifecycle, setup, teardown),
    cmocka_unit_test_setup_teardown (test_duplicate, setup, teardown),
    cmocka_unit_test_setup_teardown (test_concurrent_create, setup, teardown),
    cmocka_unit_test_setup_teardown (test_corrupt, setup, teardown),
    cmocka_unit_test_setup_teardown (test_invalid_names, setup, teardown),
    cmocka_unit_test_setup_teardown (test_lock_contention, setup, teardown),
    cmocka_unit_test_setup_teardown (test_lock_removed_while_waiting, setup, teardown),
    cmocka_unit_test_setup_teardown (test_remove_symlinks, setup, teardown),
    cmocka_unit_test_setup_teardown (test_remove_mount_point, setup, teardown),
    cmocka_unit_test_setup_teardown (test_list_skips, setup, teardown),
    cmocka_unit_test_setup_teardown (test_supervisor_alive, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
