/* Images without a registry: manifests and indexes (strict parsing,
 * platform selection) and the verified store (digests checked on the way
 * in and out, refs, garbage collection). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/digest.h"
#include "common/util.h"
#include "images/auth.h"
#include "images/manifest.h"
#include "images/store.h"
#include "testutil.h"

#define H1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static int
parse (const char *text, ak_manifest_t *m, const char *want_err)
{
  ak_error_t *err = NULL;
  int rc = ak_manifest_parse (text, strlen (text), m, &err);
  if (want_err != NULL)
    {
      if (rc == 0)
        fail_msg ("accepted: %s", text);
      if (strstr (err->msg, want_err) == NULL)
        fail_msg ("\"%s\" lacks \"%s\"", err->msg, want_err);
      ak_error_free (err);
    }
  else if (rc < 0)
    fail_msg ("%s: %s", text, err->msg);
  return rc;
}

static void
test_manifests (void **state)
{
  ak_manifest_t m;

  parse ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
         "\"config\":{\"digest\":\"" H1 "\",\"size\":3},"
         "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" H2 "\",\"size\":9},"
         "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" H3 "\",\"size\":0}]}",
         &m, NULL);
  assert_false (m.is_index);
  assert_string_equal (m.config.digest, H1);
  assert_int_equal (m.n_items, 2);
  assert_int_equal (m.items[0].compression, AK_COMP_GZIP);
  assert_int_equal (m.items[1].compression, AK_COMP_ZSTD);
  ak_manifest_clear (&m);
  parse ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
         "\"config\":{\"digest\":\"" H1 "\",\"size\":3},"
         "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" H2
         "\",\"size\":9}]}",
         &m, NULL);
  ak_manifest_clear (&m);

  parse ("{\"schemaVersion\":1}", &m, "schema 1");
  parse ("[]", &m, "not a JSON object");
  parse ("{\"schemaVersion\":2,\"mediaType\":\"text/html\"}", &m, "unsupported media type");
  parse ("{\"schemaVersion\":2,\"config\":{\"digest\":\"" H1 "\",\"size\":3},\"layers\":[]}", &m, "1 to 256");
  parse ("{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:../../etc\",\"size\":3},"
         "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" H2 "\",\"size\":1}]}",
         &m, "the config has no sha256 digest");
  parse ("{\"schemaVersion\":2,\"config\":{\"digest\":\"" H1 "\",\"size\":-1},"
         "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" H2 "\",\"size\":1}]}",
         &m, "size in range");
  parse ("{\"schemaVersion\":2,\"config\":{\"digest\":\"" H1 "\",\"size\":1},"
         "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+bzip2\",\"digest\":\"" H2 "\",\"size\":1}]}",
         &m, "layer 1 has the unsupported media type");
  parse ("{\"schemaVersion\":2,\"schemaVersion\":2}", &m, "duplicate");
}

static void
test_index (void **state)
{
  ak_manifest_t m;
  ak_error_t *err = NULL;
  const ak_descriptor_t *d;
  char *os, *arch, *variant;

  parse ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
         "{\"digest\":\"" H1 "\",\"size\":1,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
         "{\"digest\":\"" H2 "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
         "{\"digest\":\"" H3 "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"},"
         "\"annotations\":{}}]}",
         &m, NULL);
  assert_true (m.is_index);
  assert_true (m.items[0].attestation);
  d = ak_index_select (&m, "linux", "amd64", NULL, &err);
  assert_non_null (d);
  assert_string_equal (d->digest, H3);
  d = ak_index_select (&m, "linux", "arm64", NULL, &err);
  assert_string_equal (d->digest, H2);
  d = ak_index_select (&m, "linux", "arm64", "v8", &err);
  assert_string_equal (d->digest, H2);
  d = ak_index_select (&m, "linux", "arm64", "v7", &err);
  assert_null (d);
  assert_string_equal (err->msg, "no image for the platform linux/arm64/v7 (the image has: linux/arm64/v8, linux/amd64)");
  ak_error_clear (&err);
  d = ak_index_select (&m, "unknown", "unknown", NULL, &err);
  assert_null (d);
  ak_error_clear (&err);
  ak_manifest_clear (&m);

  assert_int_equal (ak_platform_parse ("linux/arm/v7", &os, &arch, &variant, &err), 0);
  assert_string_equal (os, "linux");
  assert_string_equal (arch, "arm");
  assert_string_equal (variant, "v7");
  free (os), free (arch), free (variant);
  assert_int_equal (ak_platform_parse ("linux", &os, &arch, &variant, &err), -1);
  ak_error_clear (&err);
  assert_int_equal (ak_platform_parse ("linux/AMD64", &os, &arch, &variant, &err), -1);
  ak_error_clear (&err);
  assert_int_equal (ak_platform_parse ("linux/../x", &os, &arch, &variant, &err), -1);
  ak_error_clear (&err);
}

static void
test_store (void **state)
{
  char dir[] = "/tmp/ak-imgstore-XXXXXX";
  char d1[AK_DIGEST_STR_LEN + 1], d2[AK_DIGEST_STR_LEN + 1], *path, *data;
  char *keep[2] = { NULL, NULL };
  ak_error_t *err = NULL;
  ak_istore_t s;
  uint64_t freed;
  json_t *refs;
  size_t len;

  assert_non_null (mkdtemp (dir));
  assert_int_equal (ak_istore_open (dir, true, &s, &err), 0);
  ak_sha256_digest ("one", 3, d1);
  ak_sha256_digest ("two!", 4, d2);
  /* Content that does not hash to the digest never enters. */
  assert_int_equal (ak_istore_put_blob (&s, d1, "two!", 4, &err), -1);
  assert_non_null (strstr (err->msg, "does not match its digest"));
  ak_error_clear (&err);
  assert_false (ak_istore_has_blob (&s, d1));
  assert_int_equal (ak_istore_put_blob (&s, d1, "one", 3, &err), 0);
  assert_int_equal (ak_istore_put_blob (&s, d2, "two!", 4, &err), 0);
  assert_int_equal (ak_istore_read_blob (&s, d1, 100, &data, &len, &err), 0);
  assert_int_equal (len, 3);
  free (data);
  /* A blob changed on disk is caught when read back. */
  path = ak_xasprintf ("%s/images/blobs/sha256/%s", dir, d2 + 7);
  assert_int_equal (ak_write_file (path, "evil", 4, 0644, &err), 0);
  assert_int_equal (ak_istore_read_blob (&s, d2, 100, &data, &len, &err), -1);
  assert_non_null (strstr (err->msg, "corrupt"));
  ak_error_clear (&err);
  assert_int_equal (ak_istore_read_blob (&s, d1, 2, &data, &len, &err), -1);
  ak_error_clear (&err);

  assert_int_equal (ak_istore_refs_set (&s, "r1", json_pack ("{ss}", "manifest", d1), &err), 0);
  assert_int_equal (ak_istore_refs_load (&s, &refs, &err), 0);
  assert_string_equal (json_string_value (json_object_get (json_object_get (refs, "r1"), "manifest")), d1);
  json_decref (refs);
  assert_int_equal (ak_istore_refs_set (&s, "r2", NULL, &err), -1);
  ak_error_clear (&err);
  assert_int_equal (ak_istore_refs_set (&s, "r1", NULL, &err), 0);

  keep[0] = d1;
  assert_int_equal (ak_istore_gc (&s, keep, &freed, &err), 0);
  assert_int_equal (freed, 4);
  assert_true (ak_istore_has_blob (&s, d1));
  assert_false (ak_istore_has_blob (&s, d2));
  free (path);
  ak_istore_close (&s);
  ak_test_rmtree (dir);
}

static void
test_auth (void **state)
{
  char dir[] = "/tmp/ak-imgauth-XXXXXX";
  char *file, *user, *pass;
  ak_error_t *err = NULL;

  assert_non_null (mkdtemp (dir));
  setenv ("XDG_CONFIG_HOME", dir, 1);
  setenv ("HOME", dir, 1);
  unsetenv ("XDG_RUNTIME_DIR");
  unsetenv ("DOCKER_CONFIG");
  file = ak_xasprintf ("%s/other.json", dir);
  /* base64 of a:b and of c:d */
  {
    const char *text = "{\"auths\": {\"localhost:50001\": {\"auth\": \"YTpi\"},"
                       "\"https://index.docker.io/v1/\": {\"auth\": \"YzpkOmU=\"},"
                       "\"bad.io\": {\"auth\": \"!!\"}}}";
    assert_int_equal (ak_write_file (file, text, strlen (text), 0600, &err), 0);
  }
  setenv ("REGISTRY_AUTH_FILE", file, 1);
  /* A host:port is not a prefix of a longer one. */
  assert_int_equal (ak_auth_lookup ("localhost:5000", &user, &pass, &err), 0);
  assert_int_equal (ak_auth_lookup ("localhost:50001", &user, &pass, &err), 1);
  assert_string_equal (user, "a");
  assert_string_equal (pass, "b");
  free (user), free (pass);
  /* Docker Hub's historical key; a password may hold ':'. */
  assert_int_equal (ak_auth_lookup ("docker.io", &user, &pass, &err), 1);
  assert_string_equal (user, "c");
  assert_string_equal (pass, "d:e");
  free (user), free (pass);
  assert_int_equal (ak_auth_lookup ("bad.io", &user, &pass, &err), -1);
  assert_non_null (strstr (err->msg, "not base64 of user:password"));
  ak_error_clear (&err);
  /* agentkernel's own file comes first, is 0600, and logout removes. */
  assert_int_equal (ak_auth_store ("localhost:50001", "own", "pw", &err), 0);
  assert_int_equal (ak_auth_lookup ("localhost:50001", &user, &pass, &err), 1);
  assert_string_equal (user, "own");
  free (user), free (pass);
  {
    struct stat st;
    char *own = ak_xasprintf ("%s/agentkernel/auth.json", dir);
    assert_int_equal (stat (own, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    free (own);
  }
  assert_int_equal (ak_auth_store ("localhost:50001", NULL, NULL, &err), 0);
  assert_int_equal (ak_auth_store ("localhost:50001", NULL, NULL, &err), -1);
  ak_error_clear (&err);
  unsetenv ("REGISTRY_AUTH_FILE");
  free (file);
  ak_test_rmtree (dir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_manifests),
    cmocka_unit_test (test_index),
    cmocka_unit_test (test_store),
    cmocka_unit_test (test_auth),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
