/* The spec's JSON form: exact round trips and strict, crash-free rejection
 * of hostile input. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "model/seccomp_profile.h"
#include "model/spec_json.h"

/* A spec with every field set to something other than its default. */
static void
full_spec (ak_spec_t *spec)
{
  ak_error_t *err = NULL;

  ak_spec_init (spec);
  spec->name = ak_xstrdup ("box-1");
  free (spec->image);
  spec->image = ak_xstrdup ("python:3.12-alpine");
  spec->rootfs = ak_xstrdup ("/srv/root");
  ak_spec_set_profile (spec, AK_PROFILE_RESTRICTIVE, AK_SRC_CONFIG);
  ak_spec_set_security (spec, AK_SEC_NETWORK, true, AK_SRC_CLI, 0);
  ak_spec_set_security (spec, AK_SEC_MOUNT_CWD, true, AK_SRC_CONFIG, 12);
  spec->res.memory_mb = 2048;
  spec->res.cpu_millis = 1500;
  spec->res.pids = 77;
  spec->res.vcpus = 3;
  spec->res.log_mb = 4;
  spec->res.disk_mb = 300;
  spec->res_source[0] = AK_SRC_CLI;
  spec->res_source[4] = AK_SRC_CONFIG;
  spec->res_source[5] = AK_SRC_CLI;
  spec->res_source[1] = AK_SRC_CONFIG;
  spec->res_source[3] = AK_SRC_PROFILE;
  spec->cwd = ak_xstrdup ("/home/u/project");
  spec->home = ak_xstrdup ("/home/u");
  assert_int_equal (ak_spec_add_env (spec, "A=1", &err), 0);
  assert_int_equal (ak_spec_add_env (spec, "B=x=y", &err), 0);
  ak_strv_push (&spec->host_env, "PATH=/usr/bin");
  spec->mounts = ak_xcalloc (2, sizeof (ak_mount_t));
  spec->mounts[0] = (ak_mount_t){ ak_xstrdup ("/data"), ak_xstrdup ("/mnt/data"), true,
                                  { 2049, 131, S_IFDIR } };
  spec->mounts[1] = (ak_mount_t){ ak_xstrdup ("/tmp"), ak_xstrdup ("/scratch"), false, { 0, 0, 0 } };
  spec->n_mounts = 2;
  spec->files = ak_xcalloc (1, sizeof (ak_inject_t));
  spec->files[0] = (ak_inject_t){ ak_xstrdup ("/etc/hosts"), ak_xstrdup ("/etc/hosts2"), 9,
                                   { 66, 0xfffffffffffffff0ull, S_IFREG } };
  spec->cwd_pin = (ak_fs_id_t){ 1, 2, S_IFDIR };
  spec->n_files = 1;
  spec->workdir = ak_xstrdup ("/workspace/sub");
  ak_strv_push (&spec->argv, "sh");
  ak_strv_push (&spec->argv, "-c");
  ak_strv_push (&spec->argv, "echo \"hi\"\n");
  spec->as_root = true;
  spec->hostname = ak_xstrdup ("host-a");
  spec->agent = ak_xstrdup ("claude");
  spec->compat_mode = ak_xstrdup ("native");
}

static void
assert_round_trip (const ak_spec_t *spec)
{
  json_t *a = ak_spec_to_json (spec);
  char *text = json_dumps (a, JSON_COMPACT);
  json_t *parsed = json_loads (text, 0, NULL);
  ak_spec_t back;
  ak_error_t *err = NULL;
  json_t *b;

  assert_non_null (parsed);
  if (ak_spec_from_json (parsed, &back, &err) < 0)
    fail_msg ("round trip: %s", err->msg);
  b = ak_spec_to_json (&back);
  if (!json_equal (a, b))
    {
      char *bt = json_dumps (b, JSON_COMPACT);
      fail_msg ("round trip differs:\n%s\n%s", text, bt);
    }
  json_decref (a);
  json_decref (b);
  json_decref (parsed);
  free (text);
  ak_spec_clear (&back);
}

static void
test_round_trip_full (void **state)
{
  ak_spec_t spec, back;
  ak_error_t *err = NULL;
  json_t *j;

  (void) state;
  full_spec (&spec);
  assert_round_trip (&spec);

  /* Spot-check the fields themselves, not only the JSON. */
  j = ak_spec_to_json (&spec);
  assert_int_equal (ak_spec_from_json (j, &back, &err), 0);
  assert_string_equal (back.name, "box-1");
  assert_string_equal (back.rootfs, "/srv/root");
  assert_int_equal (back.sec.profile, AK_PROFILE_RESTRICTIVE);
  assert_int_equal (back.sec.profile_source, AK_SRC_CONFIG);
  assert_true (back.sec.s[AK_SEC_NETWORK].value);
  assert_int_equal (back.sec.s[AK_SEC_NETWORK].source, AK_SRC_CLI);
  assert_int_equal (back.sec.s[AK_SEC_MOUNT_CWD].line, 12);
  assert_true (back.sec.s[AK_SEC_READ_ONLY].value);
  assert_int_equal (back.res.memory_mb, 2048);
  assert_int_equal (back.res.cpu_millis, 1500);
  assert_int_equal (back.res.vcpus, 3);
  assert_int_equal (back.res.log_mb, 4);
  assert_int_equal (back.res.disk_mb, 300);
  assert_int_equal (back.res_source[4], AK_SRC_CONFIG);
  assert_int_equal (back.res_source[5], AK_SRC_CLI);
  assert_int_equal (back.res_source[0], AK_SRC_CLI);
  assert_int_equal (back.res_source[3], AK_SRC_PROFILE);
  assert_int_equal (ak_strv_len (back.env), 2);
  assert_string_equal (back.env[1], "B=x=y");
  assert_string_equal (back.host_env[0], "PATH=/usr/bin");
  assert_int_equal (back.n_mounts, 2);
  assert_true (back.mounts[0].read_only);
  assert_string_equal (back.mounts[1].dest, "/scratch");
  assert_int_equal (back.n_files, 1);
  assert_int_equal (back.files[0].line, 9);
  /* Recorded source identities survive, full 64-bit inodes included;
   * an unrecorded one stays unrecorded. */
  assert_int_equal (back.mounts[0].pin.dev, 2049);
  assert_int_equal (back.mounts[0].pin.ino, 131);
  assert_int_equal (back.mounts[0].pin.type, S_IFDIR);
  assert_int_equal (back.mounts[1].pin.type, 0);
  assert_true (back.files[0].pin.ino == 0xfffffffffffffff0ull);
  assert_int_equal (back.files[0].pin.type, S_IFREG);
  assert_int_equal (back.cwd_pin.ino, 2);
  assert_int_equal (back.home_pin.type, 0);
  assert_string_equal (back.argv[2], "echo \"hi\"\n");
  assert_true (back.as_root);
  assert_string_equal (back.hostname, "host-a");
  assert_string_equal (back.agent, "claude");
  assert_string_equal (back.compat_mode, "native");
  json_decref (j);
  ak_spec_clear (&back);
  ak_spec_clear (&spec);
}

static void
test_round_trip_default (void **state)
{
  ak_spec_t spec;

  (void) state;
  ak_spec_init (&spec);
  assert_round_trip (&spec);
  /* argv: an empty command is not the same as no command. */
  spec.argv = ak_xcalloc (1, sizeof (char *));
  assert_round_trip (&spec);
  ak_spec_clear (&spec);
}

/* Absent keys take ak_spec_init()'s values; settings not given follow the
 * named profile's row. */
static void
test_defaults (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  json_t *j = json_loads ("{\"name\": \"n\", \"security\": {\"profile\": {\"value\": \"restrictive\","
                          " \"source\": \"cli\"}}}",
                          0, NULL);

  (void) state;
  assert_int_equal (ak_spec_from_json (j, &spec, &err), 0);
  assert_string_equal (spec.backend, "container");
  assert_string_equal (spec.image, "host");
  assert_null (spec.argv);
  assert_non_null (spec.env);
  assert_int_equal (spec.sec.profile, AK_PROFILE_RESTRICTIVE);
  assert_false (spec.sec.s[AK_SEC_NETWORK].value);
  assert_true (spec.sec.s[AK_SEC_READ_ONLY].value);
  assert_int_equal (spec.sec.s[AK_SEC_READ_ONLY].source, AK_SRC_PROFILE);
  assert_int_equal (spec.res.memory_mb, 256);
  ak_spec_clear (&spec);
  json_decref (j);
}

static const struct
{
  const char *json;
  const char *expect; /* substring of the message */
} bad_inputs[] = {
  { "[]", "expected an object, got an array" },
  { "42", "expected an object" },
  { "{\"nope\": 1}", "unknown field 'nope'" },
  { "{\"version\": 2}", "version 2 is not supported" },
  { "{\"version\": \"1\"}", "version: expected an integer" },
  { "{\"name\": \"../etc\"}", "name: expected a name" },
  { "{\"name\": \"\"}", "name: expected a name" },
  { "{\"name\": \"a\\u0000b\"}", "name: string contains a NUL byte" },
  { "{\"name\": 5}", "name: expected a string or null, got an integer" },
  { "{\"backend\": null}", "backend: expected a string, got null" },
  { "{\"backend\": \"Con tainer\"}", "backend: expected an identifier" },
  { "{\"image\": \"\"}", "image: expected a non-empty string" },
  { "{\"image\": \"a\\nb\"}", "got 'a?b'" },
  { "{\"rootfs\": \"relative\"}", "rootfs: expected an absolute path" },
  { "{\"cwd\": \"\"}", "cwd: expected an absolute path" },
  { "{\"home\": true}", "home: expected a string or null, got a boolean" },
  { "{\"security\": []}", "security: expected an object" },
  { "{\"security\": {\"profile\": {\"value\": \"lax\"}}}", "unknown profile 'lax'" },
  { "{\"security\": {\"profile\": {\"value\": 1}}}", "security.profile.value: expected a string" },
  { "{\"security\": {\"profile\": {\"source\": \"toml\"}}}", "unknown source 'toml'" },
  { "{\"security\": {\"network\": {\"value\": 1}}}", "security.network.value: expected a boolean" },
  { "{\"security\": {\"network\": {\"line\": -1}}}", "security.network.line: -1 is out of range" },
  { "{\"security\": {\"network\": {\"line\": 1.5}}}", "expected an integer, got a number" },
  { "{\"security\": {\"netw\": {}}}", "security: unknown field 'netw'" },
  { "{\"security\": {\"read_only\": {\"value\": true, \"x\": 1}}}", "security.read_only: unknown field 'x'" },
  { "{\"resources\": {\"pids\": {\"value\": 4294967296}}}", "resources.pids.value: 4294967296 is out of range" },
  { "{\"resources\": {\"memory_mb\": {\"value\": -5}}}", "resources.memory_mb.value: -5 is out of range" },
  { "{\"resources\": {\"cpu\": {}}}", "unknown field 'cpu'" },
  { "{\"resources\": {\"log_mb\": {\"value\": 65537}}}", "resources.log_mb above 65536" },
  { "{\"resources\": {\"disk_mb\": {\"value\": 16777217}}}", "resources.disk_mb above 16777216" },
  { "{\"resources\": {\"disk_mb\": {\"value\": -1}}}", "resources.disk_mb.value: -1 is out of range" },
  { "{\"env\": \"A=1\"}", "env: expected an array of strings" },
  { "{\"env\": [\"A\"]}", "env[0]: expected KEY=VALUE" },
  { "{\"env\": [\"=1\"]}", "env[0]: expected KEY=VALUE" },
  { "{\"host_env\": [\"A=1\", 3]}", "host_env[1]: expected a string" },
  { "{\"mounts\": {}}", "mounts: expected an array" },
  { "{\"mounts\": [1]}", "mounts[0]: expected an object" },
  { "{\"mounts\": [{\"source\": \"/a\"}]}", "mounts[0]: source and dest are required" },
  { "{\"mounts\": [{\"source\": \"a\", \"dest\": \"/b\"}]}", "mounts[0].source: expected an absolute path" },
  { "{\"mounts\": [{\"source\": \"/a\", \"dest\": \"/b/../../etc\"}]}", "mounts[0].dest: expected an absolute path" },
  { "{\"mounts\": [{\"source\": \"/a\", \"dest\": \"//\"}]}", "other than '/'" },
  { "{\"mounts\": [{\"source\": \"/a\", \"dest\": \"/b\", \"read_only\": \"yes\"}]}", "mounts[0].read_only: expected a boolean" },
  { "{\"files\": [{\"source\": \"/a\", \"dest\": \"..\"}]}", "files[0].dest" },
  { "{\"files\": [{\"source\": \"/a\", \"dest\": \"/b\", \"line\": 2147483648}]}", "files[0].line" },
  { "{\"workdir\": \"/a/..\"}", "workdir: expected an absolute path without '..'" },
  { "{\"argv\": [\"a\", null]}", "argv[1]: expected a string, got null" },
  { "{\"argv\": \"ls\"}", "argv: expected an array of strings or null" },
  { "{\"as_root\": 0}", "as_root: expected a boolean" },
  { "{\"hostname\": \"-x\"}", "hostname: expected a hostname" },
  { "{\"hostname\": \"a.b\"}", "hostname: expected a hostname" },
  { "{\"agent\": \"\"}", "agent: expected a non-empty string" },
  { "{\"cwd_pin\": 3}", "cwd_pin: expected an object" },
  { "{\"cwd_pin\": {\"dev\": 1, \"ino\": 2, \"type\": \"door\"}}", "cwd_pin: unknown type" },
  { "{\"cwd_pin\": {\"dev\": 1, \"type\": \"file\"}}", "cwd_pin: expected dev and ino" },
  { "{\"mounts\": [{\"source\": \"/a\", \"dest\": \"/b\", \"pin\": {\"dev\": 1, \"ino\": 2, \"type\": \"file\", \"x\": 1}}]}",
    "unknown field" },
  { "{\"compat_mode\": []}", "compat_mode: expected a string or null" },
};

static void
test_rejects (void **state)
{
  (void) state;
  for (size_t i = 0; i < sizeof (bad_inputs) / sizeof (bad_inputs[0]); i++)
    {
      json_error_t jerr;
      json_t *j = json_loads (bad_inputs[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
      ak_error_t *err = NULL;
      ak_spec_t spec;

      if (j == NULL)
        fail_msg ("test input %zu does not parse: %s", i, jerr.text);
      if (ak_spec_from_json (j, &spec, &err) == 0)
        fail_msg ("accepted: %s", bad_inputs[i].json);
      assert_non_null (err);
      if (strstr (err->msg, bad_inputs[i].expect) == NULL
          || strncmp (err->msg, "invalid spec", 12) != 0)
        fail_msg ("for %s\n  expected: %s\n  got: %s", bad_inputs[i].json, bad_inputs[i].expect,
                  err->msg);
      /* On failure the spec holds the defaults and can be cleared. */
      assert_string_equal (spec.backend, "container");
      assert_null (spec.name);
      assert_int_equal (spec.n_mounts, 0);
      ak_spec_clear (&spec);
      ak_error_free (err);
      json_decref (j);
    }
}

static void
test_null_input (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;

  (void) state;
  assert_int_equal (ak_spec_from_json (NULL, &spec, &err), -1);
  assert_non_null (err);
  ak_error_free (err);
  ak_spec_clear (&spec);
}

/* A long hostile value is echoed shortened. */
static void
test_long_value_quoted (void **state)
{
  char big[1000];
  ak_spec_t spec;
  ak_error_t *err = NULL;
  json_t *j;

  (void) state;
  memset (big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  j = json_pack ("{s:s}", "rootfs", big);
  assert_int_equal (ak_spec_from_json (j, &spec, &err), -1);
  assert_true (strlen (err->msg) < 200);
  assert_non_null (strstr (err->msg, "...'"));
  ak_error_free (err);
  ak_spec_clear (&spec);
  json_decref (j);
}

/* A custom seccomp profile is stored with its text, and read back only if
 * that text still parses. */
static void
test_seccomp_custom (void **state)
{
  static const char prof[] = "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}";
  ak_spec_t spec, again;
  ak_error_t *err = NULL;
  json_t *j, *sc;
  (void) state;

  ak_spec_init (&spec);
  assert_int_equal (ak_spec_set_seccomp_custom (&spec, "/p.json", prof, strlen (prof),
                                                AK_SECCOMP_MODERATE, AK_SRC_CONFIG, 4, &err),
                    0);
  spec.sec.seccomp.unsafe = true;
  j = ak_spec_to_json (&spec);
  assert_int_equal (ak_spec_from_json (j, &again, &err), 0);
  assert_int_equal (again.sec.seccomp.kind, AK_SECCOMP_CUSTOM);
  assert_int_equal (again.sec.seccomp.under, AK_SECCOMP_MODERATE);
  assert_int_equal (again.sec.seccomp.line, 4);
  assert_true (again.sec.seccomp.unsafe);
  assert_string_equal (again.sec.seccomp.text, prof);
  assert_string_equal (again.sec.seccomp.file, "/p.json");
  ak_spec_clear (&again);
  /* a stored text edited into something the parser refuses */
  sc = json_object_get (json_object_get (j, "security"), "seccomp");
  json_object_set_new (sc, "text", json_string ("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}"));
  assert_int_equal (ak_spec_from_json (j, &again, &err), -1);
  assert_non_null (strstr (err->msg, "invalid spec: security.seccomp"));
  ak_error_free (err);
  err = NULL;
  ak_spec_clear (&again);
  /* a built-in carries no file */
  json_object_set_new (sc, "value", json_string ("ai-agent"));
  assert_int_equal (ak_spec_from_json (j, &again, &err), -1);
  ak_error_free (err);
  err = NULL;
  ak_spec_clear (&again);
  json_object_del (sc, "text");
  json_object_del (sc, "file");
  json_object_del (sc, "under");
  json_object_del (sc, "unsafe");
  assert_int_equal (ak_spec_from_json (j, &again, &err), 0);
  assert_int_equal (again.sec.seccomp.kind, AK_SECCOMP_AI_AGENT);
  ak_spec_clear (&again);
  json_decref (j);
  ak_spec_clear (&spec);
}

/* The warm pool's key: what a claim applies never changes it; anything that
 * changes isolation does; where a value came from does not. */
static void
test_pool_key (void **state)
{
  ak_spec_t a, b;
  char *ka, *kb;
  (void) state;

  ak_spec_init (&a);
  ak_spec_init (&b);
  b.argv = ak_xcalloc (3, sizeof (char *));
  b.argv[0] = ak_xstrdup ("make");
  b.argv[1] = ak_xstrdup ("test");
  b.workdir = ak_xstrdup ("/tmp");
  b.cwd = ak_xstrdup ("/somewhere");
  assert_int_equal (ak_spec_add_env (&b, "FOO=bar", NULL), 0);
  /* The same value from a flag instead of the profile. */
  ak_spec_set_security (&b, AK_SEC_NETWORK, ak_spec_sec (&a, AK_SEC_NETWORK), AK_SRC_CLI, 0);
  ka = ak_spec_pool_key (&a);
  kb = ak_spec_pool_key (&b);
  assert_string_equal (ka, kb);
  free (kb);

  ak_spec_set_security (&b, AK_SEC_NETWORK, !ak_spec_sec (&a, AK_SEC_NETWORK), AK_SRC_CLI, 0);
  kb = ak_spec_pool_key (&b);
  assert_string_not_equal (ka, kb);
  free (kb);
  ak_spec_set_security (&b, AK_SEC_NETWORK, ak_spec_sec (&a, AK_SEC_NETWORK), AK_SRC_CLI, 0);

  b.res.memory_mb = a.res.memory_mb + 1;
  kb = ak_spec_pool_key (&b);
  assert_string_not_equal (ka, kb);
  free (kb);
  b.res.memory_mb = a.res.memory_mb;

  ak_spec_set_profile (&b, AK_PROFILE_RESTRICTIVE, AK_SRC_CLI);
  kb = ak_spec_pool_key (&b);
  assert_string_not_equal (ka, kb);
  free (kb);
  ak_spec_set_profile (&b, a.sec.profile, AK_SRC_CLI);

  b.as_root = true;
  kb = ak_spec_pool_key (&b);
  assert_string_not_equal (ka, kb);
  free (kb);
  b.as_root = false;

  b.sec.seccomp.kind = AK_SECCOMP_RESTRICTIVE;
  kb = ak_spec_pool_key (&b);
  assert_string_not_equal (ka, kb);
  free (kb);
  b.sec.seccomp.kind = a.sec.seccomp.kind;

  kb = ak_spec_pool_key (&b);
  assert_string_equal (ka, kb);
  free (kb);
  free (ka);
  ak_spec_clear (&a);
  ak_spec_clear (&b);
}


int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_round_trip_full),
    cmocka_unit_test (test_round_trip_default),
    cmocka_unit_test (test_defaults),
    cmocka_unit_test (test_rejects),
    cmocka_unit_test (test_null_input),
    cmocka_unit_test (test_long_value_quoted),
    cmocka_unit_test (test_seccomp_custom),
    cmocka_unit_test (test_pool_key),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
