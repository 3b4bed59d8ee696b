/* What comes out of a sandbox (cp out): hostile tar streams, built by hand,
 * never write outside the destination, never go through a symlink, and
 * leave no symlink that leaves the copied tree. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "proto/proto.h"
#include "proto/tarstream.h"
#include "testutil.h"

typedef struct entry {
  const char *name;
  char type; /* '0' file, '5' directory, '2' symlink */
  const char *data_or_target;
} entry_t;

/* One ustar header (and data blocks for a file) appended to buf. */
static size_t
put_entry (char *buf, const entry_t *e)
{
  char *h = buf;
  size_t size = e->type == '0' ? strlen (e->data_or_target) : 0;
  unsigned sum = 0;

  memset (h, 0, 512);
  snprintf (h, 100, "%s", e->name);
  snprintf (h + 100, 8, "%07o", e->type == '5' ? 0755 : 0644);
  snprintf (h + 108, 8, "%07o", 0);
  snprintf (h + 116, 8, "%07o", 0);
  snprintf (h + 124, 12, "%011o", (unsigned) size & 07777777u);
  snprintf (h + 136, 12, "%011o", 1700000000);
  memset (h + 148, ' ', 8);
  h[156] = e->type;
  if (e->type == '2')
    snprintf (h + 157, 100, "%s", e->data_or_target);
  memcpy (h + 257, "ustar", 6);
  memcpy (h + 263, "00", 2);
  for (int i = 0; i < 512; i++)
    sum += (unsigned char) h[i];
  snprintf (h + 148, 8, "%06o", sum);
  h[155] = ' ';
  if (size == 0)
    return 512;
  memset (h + 512, 0, 512);
  memcpy (h + 512, e->data_or_target, size);
  return 1024;
}

/* Receives the archive of `entries` into dest as cp out does; returns
 * ak_tar_receive's result. */
static int
receive (const entry_t *entries, size_t n, const char *dest)
{
  int sv[2];
  char *buf = calloc (n + 2, 1024);
  size_t len = 0;
  ak_proto_reader_t *rd;
  ak_error_t *err = NULL;
  long long bytes = 0;
  int rc;

  assert_non_null (buf);
  for (size_t i = 0; i < n; i++)
    len += put_entry (buf + len, &entries[i]);
  len += 1024; /* end of archive: two zero blocks */
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal (ak_proto_write (sv[1], AK_F_FILE_DATA, 0, buf, len, NULL), 0);
  assert_int_equal (ak_proto_write (sv[1], AK_F_FILE_DATA, 0, NULL, 0, NULL), 0);
  close (sv[1]);
  rd = ak_proto_reader_new (sv[0]);
  rc = ak_tar_receive (rd, dest, true, &bytes, &err);
  if (rc < 0)
    fprintf (stderr, "  (refused: %s)\n", err ? err->msg : "?");
  ak_error_free (err);
  ak_proto_reader_free (rd);
  close (sv[0]);
  free (buf);
  return rc;
}

static char *
scratch (const char *sub)
{
  char tmpl[] = "/tmp/ak-tar-XXXXXX";
  char *d = mkdtemp (tmpl);
  char *p;
  assert_non_null (d);
  p = ak_xasprintf ("%s/%s", d, sub);
  assert_int_equal (mkdir (p, 0755), 0);
  return p;
}

static bool
is_link (const char *dir, const char *name)
{
  char *p = ak_xasprintf ("%s/%s", dir, name);
  struct stat st;
  bool r = lstat (p, &st) == 0 && S_ISLNK (st.st_mode);
  free (p);
  return r;
}

static bool
exists (const char *dir, const char *name)
{
  char *p = ak_xasprintf ("%s/%s", dir, name);
  struct stat st;
  bool r = lstat (p, &st) == 0;
  free (p);
  return r;
}

/* "d -> victim" then "d/passwd": the link is not made (absolute), and the
 * file lands in a real directory d, never in victim. */
static void
test_file_beneath_own_symlink (void **state)
{
  char *dest = scratch ("dest"), *victim = ak_xasprintf ("%s/../victim", dest);
  entry_t es[] = { { "t", '5', NULL }, { "t/d", '2', victim }, { "t/d/passwd", '0', "root::0:0\n" } };
  (void) state;
  assert_int_equal (mkdir (victim, 0755), 0);
  assert_int_equal (receive (es, 3, dest), 0);
  assert_false (exists (victim, "passwd"));
  assert_false (is_link (dest, "t/d"));
  assert_true (exists (dest, "t/d/passwd"));
  ak_test_rmtree (victim);
  free (victim);
  *strrchr (dest, '/') = '\0';
  ak_test_rmtree (dest);
  free (dest);
}

/* An in-tree link is kept, but an entry beneath it is refused rather than
 * written through it. */
static void
test_through_kept_symlink_refused (void **state)
{
  char *dest = scratch ("dest");
  entry_t es[] = { { "t", '5', NULL },
                   { "t/sub", '5', NULL },
                   { "t/l", '2', "sub" },
                   { "t/l/x", '0', "through\n" } };
  (void) state;
  assert_int_equal (receive (es, 4, dest), -1);
  assert_true (is_link (dest, "t/l"));
  assert_false (exists (dest, "t/sub/x"));
  *strrchr (dest, '/') = '\0';
  ak_test_rmtree (dest);
  free (dest);
}

/* Names outside the destination end the copy; nothing is written there. */
static void
test_names_outside_refused (void **state)
{
  char *dest = scratch ("dest");
  char *parent = ak_xstrdup (dest);
  entry_t dots[] = { { "t", '5', NULL }, { "t/../../evil", '0', "x\n" } };
  entry_t abs[] = { { "/tmp/ak-tar-abs-evil", '0', "x\n" } };
  (void) state;
  *strrchr (parent, '/') = '\0';
  assert_int_equal (receive (dots, 2, dest), -1);
  assert_false (exists (parent, "evil"));
  assert_int_equal (receive (abs, 1, dest), -1);
  assert_false (exists ("/tmp", "ak-tar-abs-evil"));
  ak_test_rmtree (parent);
  free (parent);
  free (dest);
}

/* Which links are made: only those that resolve inside the copied tree. */
static void
test_link_targets (void **state)
{
  char *dest = scratch ("dest");
  entry_t es[] = {
    { "t", '5', NULL },          { "t/a", '5', NULL },           { "t/a/b", '5', NULL },
    { "t/up", '2', ".." },       { "t/abs", '2', "/etc/passwd" }, { "t/a/esc", '2', "../../x" },
    { "t/a/dip", '2', "b/../../.." }, { "t/a/b/in", '2', "../../f" }, { "t/a/in", '2', "b" },
    { "t/a/dot", '2', "./b/./in" },  { "t/f", '0', "f\n" },
  };
  (void) state;
  assert_int_equal (receive (es, sizeof es / sizeof es[0], dest), 0);
  assert_false (exists (dest, "t/up"));
  assert_false (exists (dest, "t/abs"));
  assert_false (exists (dest, "t/a/esc"));
  assert_false (exists (dest, "t/a/dip"));
  assert_true (is_link (dest, "t/a/b/in"));
  assert_true (is_link (dest, "t/a/in"));
  assert_true (is_link (dest, "t/a/dot"));
  *strrchr (dest, '/') = '\0';
  ak_test_rmtree (dest);
  free (dest);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_file_beneath_own_symlink),
    cmocka_unit_test (test_through_kept_symlink_refused),
    cmocka_unit_test (test_names_outside_refused),
    cmocka_unit_test (test_link_targets),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
