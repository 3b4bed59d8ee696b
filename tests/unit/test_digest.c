/* SHA-256 digests: the published test vectors, streaming in odd chunks
 * equals one shot, and a file's digest. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/digest.h"

static void
test_vectors (void **state)
{
  char out[AK_DIGEST_STR_LEN + 1];

  ak_sha256_digest ("", 0, out);
  assert_string_equal (out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ak_sha256_digest ("abc", 3, out);
  assert_string_equal (out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ak_sha256_digest ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
  assert_string_equal (out, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void
test_streaming (void **state)
{
  char one[AK_DIGEST_STR_LEN + 1], many[AK_DIGEST_STR_LEN + 1];
  unsigned char data[100000];
  ak_sha256_t ctx;
  size_t off = 0, step = 1;

  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char) (i * 7 + 3);
  ak_sha256_digest (data, sizeof data, one);
  ak_sha256_init (&ctx);
  while (off < sizeof data)
    {
      size_t n = step < sizeof data - off ? step : sizeof data - off;
      ak_sha256_update (&ctx, data + off, n);
      off += n;
      step = step * 3 + 1;
    }
  ak_sha256_final (&ctx, many);
  assert_string_equal (one, many);
}

static void
test_fd (void **state)
{
  char path[] = "/tmp/ak-digest-XXXXXX";
  char out[AK_DIGEST_STR_LEN + 1];
  ak_error_t *err = NULL;
  int fd = mkstemp (path);

  assert_true (fd >= 0);
  unlink (path);
  assert_int_equal (write (fd, "abc", 3), 3);
  assert_int_equal (lseek (fd, 0, SEEK_SET), 0);
  assert_int_equal (ak_sha256_fd (fd, out, &err), 0);
  assert_string_equal (out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  close (fd);
  assert_int_equal (ak_sha256_fd (fd, out, &err), -1);
  assert_non_null (err);
  ak_error_free (err);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_vectors),
    cmocka_unit_test (test_streaming),
    cmocka_unit_test (test_fd),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
