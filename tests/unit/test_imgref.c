/* Image references: Docker's grammar and normalisation, and strict refusal
 * of everything else. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "images/ref.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
expect_ref (const char *text, const char *registry, const char *repository, const char *tag, const char *digest,
            const char *canonical)
{
  ak_imgref_t ref;
  ak_error_t *err = NULL;
  char *s;

  if (ak_imgref_parse (text, &ref, &err) < 0)
    fail_msg ("%s: %s", text, err->msg);
  assert_string_equal (ref.registry, registry);
  assert_string_equal (ref.repository, repository);
  if (tag == NULL)
    assert_null (ref.tag);
  else
    assert_string_equal (ref.tag, tag);
  if (digest == NULL)
    assert_null (ref.digest);
  else
    assert_string_equal (ref.digest, digest);
  s = ak_imgref_format (&ref);
  assert_string_equal (s, canonical);
  free (s);
  ak_imgref_clear (&ref);
}

static void
test_docker_hub_defaults (void **state)
{
  expect_ref ("alpine", "docker.io", "library/alpine", "latest", NULL, "docker.io/library/alpine:latest");
  expect_ref ("alpine:3.20", "docker.io", "library/alpine", "3.20", NULL, "docker.io/library/alpine:3.20");
  expect_ref ("python:3.12-alpine", "docker.io", "library/python", "3.12-alpine", NULL,
              "docker.io/library/python:3.12-alpine");
  expect_ref ("user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest");
  expect_ref ("docker.io/alpine", "docker.io", "library/alpine", "latest", NULL, "docker.io/library/alpine:latest");
  expect_ref ("index.docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", NULL,
              "docker.io/library/alpine:edge");
  expect_ref ("docker.io/library/alpine", "docker.io", "library/alpine", "latest", NULL,
              "docker.io/library/alpine:latest");
}

static void
test_registries (void **state)
{
  expect_ref ("localhost:5000/x", "localhost:5000", "x", "latest", NULL, "localhost:5000/x:latest");
  expect_ref ("localhost/x:1", "localhost", "x", "1", NULL, "localhost/x:1");
  expect_ref ("127.0.0.1:5000/a/b/c:v1.0", "127.0.0.1:5000", "a/b/c", "v1.0", NULL, "127.0.0.1:5000/a/b/c:v1.0");
  expect_ref ("ghcr.io/owner/img", "ghcr.io", "owner/img", "latest", NULL, "ghcr.io/owner/img:latest");
  expect_ref ("quay.io/x-y/z__w", "quay.io", "x-y/z__w", "latest", NULL, "quay.io/x-y/z__w:latest");
  expect_ref ("[::1]:5000/x", "[::1]:5000", "x", "latest", NULL, "[::1]:5000/x:latest");
  expect_ref ("my-host:443/x", "my-host:443", "x", "latest", NULL, "my-host:443/x:latest");
  /* An upper-case first part can only be a host (Docker's rule). */
  expect_ref ("Registry/x", "Registry", "x", "latest", NULL, "Registry/x:latest");
  /* A first part without . or : and not localhost is a Docker Hub user. */
  expect_ref ("myhost/x", "docker.io", "myhost/x", "latest", NULL, "docker.io/myhost/x:latest");
  /* Without a slash, "host:port" is a name and a tag. */
  expect_ref ("localhost:5000", "docker.io", "library/localhost", "5000", NULL, "docker.io/library/localhost:5000");
}

static void
test_digests (void **state)
{
  expect_ref ("alpine@sha256:" HEX64, "docker.io", "library/alpine", NULL, "sha256:" HEX64,
              "docker.io/library/alpine@sha256:" HEX64);
  expect_ref ("localhost:5000/x:1@sha256:" HEX64, "localhost:5000", "x", "1", "sha256:" HEX64,
              "localhost:5000/x:1@sha256:" HEX64);
  assert_true (ak_digest_valid ("sha256:" HEX64));
  assert_false (ak_digest_valid ("sha256:" HEX64 "0"));
  assert_false (ak_digest_valid ("sha512:" HEX64));
  assert_false (ak_digest_valid ("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
  assert_false (ak_digest_valid (NULL));
}

static void
expect_invalid (const char *text, const char *why)
{
  ak_imgref_t ref;
  ak_error_t *err = NULL;

  if (ak_imgref_parse (text, &ref, &err) == 0)
    fail_msg ("accepted \"%s\" as %s/%s", text, ref.registry, ref.repository);
  assert_non_null (err);
  if (strstr (err->msg, why) == NULL)
    fail_msg ("\"%s\": message \"%s\" lacks \"%s\"", text, err->msg, why);
  assert_null (ref.registry);
  assert_null (ref.repository);
  ak_error_free (err);
}

static void
test_invalid (void **state)
{
  char long_name[300], long_tag[200];

  expect_invalid ("", "empty");
  expect_invalid ("Alpine", "lowercase");
  expect_invalid ("docker.io/Library/alpine", "lowercase");
  expect_invalid ("alpine:", "tag");
  expect_invalid ("alpine:-x", "tag");
  expect_invalid ("alpine:.x", "tag");
  expect_invalid ("alpine:a/b", "registry");
  expect_invalid ("alpine@sha256:abc", "digest");
  expect_invalid ("alpine@md5:" HEX64, "digest");
  expect_invalid ("alpine@", "digest");
  expect_invalid (HEX64, "image ID");
  expect_invalid ("/alpine", "repository");
  expect_invalid ("alpine/", "repository");
  expect_invalid ("a//b", "repository");
  expect_invalid ("-a", "repository");
  expect_invalid ("a-", "repository");
  expect_invalid ("a..b", "repository");
  expect_invalid ("a___b", "repository");
  expect_invalid ("a b", "space");
  expect_invalid ("a\nb", "control");
  expect_invalid ("caf\xc3\xa9", "non-ASCII");
  expect_invalid (":5000/x", "registry");
  expect_invalid ("host:/x", "registry");
  expect_invalid ("host:0/x", "registry");
  expect_invalid ("host:65536/x", "registry");
  expect_invalid ("host:+5/x", "registry");
  expect_invalid ("-host.io/x", "registry");
  expect_invalid ("host..io/x", "registry");
  expect_invalid ("host_a.io/x", "registry");
  expect_invalid ("[::1/x", "registry");
  expect_invalid ("[]:5/x", "registry");
  expect_invalid ("[::1]x/x", "registry");
  expect_invalid ("localhost:5000/", "repository");
  expect_invalid ("localhost:5000/../x", "repository");
  memset (long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  expect_invalid (long_name, "255");
  /* 250 bytes fit as typed but not once docker.io/library/ is added. */
  long_name[250] = '\0';
  expect_invalid (long_name, "255");
  memset (long_tag, 'a', sizeof long_tag - 1);
  long_tag[0] = 'x';
  long_tag[1] = ':';
  long_tag[sizeof long_tag - 1] = '\0';
  expect_invalid (long_tag, "tag");
}

static void
test_helpers (void **state)
{
  ak_imgref_t ref;
  ak_error_t *err = NULL;
  char *s;

  assert_int_equal (ak_imgref_parse ("alpine", &ref, &err), 0);
  assert_string_equal (ak_imgref_api_host (&ref), "registry-1.docker.io");
  s = ak_imgref_name (&ref);
  assert_string_equal (s, "docker.io/library/alpine");
  free (s);
  ak_imgref_clear (&ref);
  assert_int_equal (ak_imgref_parse ("localhost:5000/x", &ref, &err), 0);
  assert_string_equal (ak_imgref_api_host (&ref), "localhost:5000");
  ak_imgref_clear (&ref);

  assert_true (ak_imgref_is_loopback ("localhost"));
  assert_true (ak_imgref_is_loopback ("localhost:5000"));
  assert_true (ak_imgref_is_loopback ("127.0.0.1:5000"));
  assert_true (ak_imgref_is_loopback ("127.1.2.3"));
  assert_true (ak_imgref_is_loopback ("[::1]:5000"));
  assert_false (ak_imgref_is_loopback ("[::1]x"));
  assert_false (ak_imgref_is_loopback ("localhost.evil.com:5000"));
  assert_false (ak_imgref_is_loopback ("128.0.0.1"));
  assert_false (ak_imgref_is_loopback ("docker.io"));
  assert_false (ak_imgref_is_loopback ("127.0.0.1.nip.io"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_docker_hub_defaults),
    cmocka_unit_test (test_registries),
    cmocka_unit_test (test_digests),
    cmocka_unit_test (test_invalid),
    cmocka_unit_test (test_helpers),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
