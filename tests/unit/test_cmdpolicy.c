/* The command policy: entry rules, matching by name and path,
 * [security.commands] in a config file (trusted and not), and the stored
 * spec's form. */
#define _GNU_SOURCE
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/cmdpolicy.h"
#include "model/config.h"
#include "model/spec.h"
#include "model/spec_json.h"

static char tmpdir[64];
static char *warnings;

static void
capture_warn (const char *msg, void *data)
{
  char *joined = ak_xasprintf ("%s%s\n", warnings ? warnings : "", msg);
  (void) data;
  free (warnings);
  warnings = joined;
}

static int
setup (void **state)
{
  (void) state;
  strcpy (tmpdir, "/tmp/ak-cmdpol-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    return -1;
  ak_set_warn_handler (capture_warn, NULL);
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  ak_test_rmtree (tmpdir);
  free (warnings);
  warnings = NULL;
  ak_set_warn_handler (NULL, NULL);
  return 0;
}

static void
entry_ok (const char *s)
{
  ak_error_t *err = NULL;
  if (ak_cmd_entry_check (s, &err) < 0)
    fail_msg ("'%s' refused: %s", s, err->msg);
}

static void
entry_bad (const char *s, const char *why)
{
  ak_error_t *err = NULL;
  assert_int_equal (ak_cmd_entry_check (s, &err), -1);
  if (strstr (err->msg, why) == NULL)
    fail_msg ("'%s' not in: %s", why, err->msg);
  ak_error_free (err);
}

static void
test_entries (void **state)
{
  char long_name[AK_CMD_MAX + 2];
  (void) state;

  entry_ok ("curl");
  entry_ok ("python3.11");
  entry_ok ("git-remote-https");
  entry_ok ("/usr/bin/curl");
  entry_ok ("/opt/tools/x.sh");
  entry_bad ("", "empty");
  entry_bad (".", "not a program name");
  entry_bad ("..", "not a program name");
  entry_bad ("bin/curl", "must be absolute");
  entry_bad ("./curl", "must be absolute");
  entry_bad ("/", "must name a file");
  entry_bad ("/usr/bin/", "must name a file");
  entry_bad ("/usr/../bin/curl", "'..'");
  entry_bad ("/usr/./bin/curl", "'.'");
  entry_bad ("/usr//bin/curl", "'//'");
  entry_bad ("cu\nrl", "control character");
  entry_bad ("cu\x7frl", "control character");
  memset (long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = 0;
  entry_bad (long_name, "longer than");
}

static void
test_match (void **state)
{
  ak_cmdpolicy_t pol = { 0 };
  ak_error_t *err = NULL;
  (void) state;

  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_BLOCK, "curl", 1, 0, &err), 0);
  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_BLOCK, "/opt/x/wget", 1, 0, &err), 0);
  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_BLOCK, "curl", 1, 0, &err), 0);
  assert_int_equal (pol.n_block, 2); /* a duplicate is kept once */
  assert_true (ak_cmdpolicy_active (&pol));
  /* A name is a basename, wherever the file is. */
  assert_non_null (ak_cmdpolicy_match (&pol, AK_CMD_BLOCK, "/usr/bin/curl"));
  assert_non_null (ak_cmdpolicy_match (&pol, AK_CMD_BLOCK, "/tmp/curl"));
  assert_null (ak_cmdpolicy_match (&pol, AK_CMD_BLOCK, "/usr/bin/curl-config"));
  assert_null (ak_cmdpolicy_match (&pol, AK_CMD_BLOCK, "/usr/bin/xcurl"));
  /* A path is that path only. */
  assert_non_null (ak_cmdpolicy_match (&pol, AK_CMD_BLOCK, "/opt/x/wget"));
  assert_null (ak_cmdpolicy_match (&pol, AK_CMD_BLOCK, "/usr/bin/wget"));
  assert_null (ak_cmdpolicy_match (&pol, AK_CMD_ALLOW, "/usr/bin/curl"));
  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_ALLOW, "a/b", 1, 0, &err), -1);
  ak_error_free (err);
  ak_cmdpolicy_clear (&pol);
  /* Allow entries alone restrict nothing until allowlist mode. */
  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_ALLOW, "git", 1, 0, &err), 0);
  assert_false (ak_cmdpolicy_active (&pol));
  assert_true (ak_cmdpolicy_has_rules (&pol));
  pol.allowlist_only = true;
  assert_true (ak_cmdpolicy_active (&pol));
  ak_cmdpolicy_clear (&pol);
}

static int
load (const char *text, bool untrusted, ak_spec_t *spec, ak_error_t **err)
{
  _cleanup_free_ char *path = ak_xasprintf ("%s/agentkernel.toml", tmpdir);
  ak_config_opts_t o = { .untrusted = untrusted };
  assert_int_equal (ak_write_file (path, text, strlen (text), 0644, err), 0);
  return ak_config_apply_buf (path, text, strlen (text), &o, spec, err);
}

static void
test_config (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;

  ak_spec_init (&spec);
  assert_int_equal (load ("[security.commands]\n"
                          "allow = [\"python3\", \"pip\", \"git\",\n"
                          "  \"node\", \"npm\"]\n"
                          "block = [\"curl\", \"wget\", \"nc\"]\n"
                          "allowlist_only = true\n",
                          false, &spec, &err),
                    0);
  assert_int_equal (spec.sec.commands.n_allow, 5);
  assert_int_equal (spec.sec.commands.n_block, 3);
  assert_true (spec.sec.commands.allowlist_only);
  assert_int_equal (spec.sec.commands.allowlist_line, 5);
  assert_int_equal (spec.sec.commands.allowlist_source, AK_SRC_CONFIG);
  assert_int_equal (spec.sec.commands.allow[0].line, 2);
  assert_int_equal (spec.sec.commands.allow[4].line, 3);
  assert_string_equal (spec.sec.commands.block[2].text, "nc");
  ak_spec_clear (&spec);

  /* An allow list means allowlist mode unless the file says otherwise. */
  ak_spec_init (&spec);
  assert_int_equal (load ("[security.commands]\nallow = [\"git\"]\n", false, &spec, &err), 0);
  assert_true (spec.sec.commands.allowlist_only);
  ak_spec_clear (&spec);
  ak_spec_init (&spec);
  assert_int_equal (load ("[security.commands]\nallow = [\"git\"]\nallowlist_only = false\n", false,
                          &spec, &err),
                    0);
  assert_false (spec.sec.commands.allowlist_only);
  ak_spec_clear (&spec);
}

static void
expect_config_error (const char *text, const char *want)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  ak_spec_init (&spec);
  assert_int_equal (load (text, false, &spec, &err), -1);
  if (strstr (err->msg, want) == NULL)
    fail_msg ("'%s' not in: %s", want, err->msg);
  assert_non_null (strstr (err->msg, "agentkernel.toml:"));
  ak_error_free (err);
  ak_spec_clear (&spec);
}

static void
test_config_errors (void **state)
{
  (void) state;
  expect_config_error ("[security.commands]\nblock = [\n  \"curl\",\n  \"bin/wget\",\n]\n",
                       "agentkernel.toml:4: [security.commands] block: entry 2: command entry "
                       "'bin/wget': a path must be absolute");
  expect_config_error ("[security.commands]\nallow = [\"/usr/../bin/sh\"]\n",
                       ":2: [security.commands] allow: entry 1: command entry '/usr/../bin/sh'");
  expect_config_error ("[security.commands]\nallow = \"git\"\n",
                       ":2: [security.commands] allow: expected an array of strings");
  expect_config_error ("[security.commands]\nblock = [1]\n",
                       ":2: [security.commands] block: entry 1: expected a string");
  expect_config_error ("[security.commands]\nblock = [\"\"]\n", ":2: [security.commands] block: entry 1: empty");
  expect_config_error ("[security.commands]\nallowlist_only = \"yes\"\n",
                       ":2: [security.commands] allowlist_only: expected a boolean");
  expect_config_error ("[security]\ncommands = [\"curl\"]\n", ":2: [security] commands: expected a table");
}

static void
test_config_untrusted (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;

  /* From no policy, an untrusted file may block and may restrict to an
   * allow list: both only tighten. */
  ak_spec_init (&spec);
  assert_int_equal (load ("[security.commands]\nallow = [\"git\"]\nblock = [\"curl\"]\n", true, &spec, &err),
                    0);
  assert_int_equal (spec.sec.commands.n_allow, 1);
  assert_int_equal (spec.sec.commands.n_block, 1);
  assert_true (spec.sec.commands.allowlist_only);
  ak_spec_clear (&spec);

  /* Once an allow list is in force (a trusted file, the global config), it
   * can neither add to it nor turn it off; its blocks still count. */
  ak_spec_init (&spec);
  assert_int_equal (ak_cmdpolicy_add (&spec.sec.commands, AK_CMD_ALLOW, "git", AK_SRC_CONFIG, 1, &err), 0);
  spec.sec.commands.allowlist_only = true;
  assert_int_equal (load ("[security.commands]\nallow = [\"sh\"]\nblock = [\"ssh\"]\n"
                          "allowlist_only = false\n",
                          true, &spec, &err),
                    0);
  assert_int_equal (spec.sec.commands.n_allow, 1);
  assert_string_equal (spec.sec.commands.allow[0].text, "git");
  assert_int_equal (spec.sec.commands.n_block, 1);
  assert_true (spec.sec.commands.allowlist_only);
  assert_non_null (strstr (warnings, "allow = [\"sh\"] ignored"));
  assert_non_null (strstr (warnings, "allowlist_only = false ignored"));
  ak_spec_clear (&spec);

  /* A trusted file may do both. */
  ak_spec_init (&spec);
  assert_int_equal (ak_cmdpolicy_add (&spec.sec.commands, AK_CMD_ALLOW, "git", AK_SRC_CONFIG, 1, &err), 0);
  spec.sec.commands.allowlist_only = true;
  assert_int_equal (load ("[security.commands]\nallowlist_only = false\n", false, &spec, &err), 0);
  assert_false (spec.sec.commands.allowlist_only);
  ak_spec_clear (&spec);
}

static void
test_json_round_trip (void **state)
{
  ak_spec_t a, b;
  ak_error_t *err = NULL;
  json_t *j;
  (void) state;

  ak_spec_init (&a);
  assert_int_equal (ak_cmdpolicy_add (&a.sec.commands, AK_CMD_ALLOW, "python3", AK_SRC_CLI, 0, &err), 0);
  assert_int_equal (ak_cmdpolicy_add (&a.sec.commands, AK_CMD_BLOCK, "/usr/bin/curl", AK_SRC_CONFIG, 7, &err), 0);
  a.sec.commands.allowlist_only = true;
  a.sec.commands.allowlist_source = AK_SRC_CLI;
  j = ak_spec_to_json (&a);
  if (ak_spec_from_json (j, &b, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_true (b.sec.commands.allowlist_only);
  assert_int_equal (b.sec.commands.allowlist_source, AK_SRC_CLI);
  assert_int_equal (b.sec.commands.n_allow, 1);
  assert_string_equal (b.sec.commands.allow[0].text, "python3");
  assert_string_equal (b.sec.commands.block[0].text, "/usr/bin/curl");
  assert_int_equal (b.sec.commands.block[0].line, 7);
  assert_int_equal (b.sec.commands.block[0].source, AK_SRC_CONFIG);
  ak_spec_clear (&b);

  /* A stored entry is held to the rules again. */
  json_object_set_new (json_object_get (json_object_get (j, "security"), "commands"), "block",
                       json_pack ("[{s:s}]", "entry", "../curl"));
  assert_int_equal (ak_spec_from_json (j, &b, &err), -1);
  assert_non_null (strstr (err->msg, "security.commands.block[0]"));
  ak_error_free (err);
  ak_spec_clear (&b);
  json_decref (j);
  ak_spec_clear (&a);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_entries),
    cmocka_unit_test (test_match),
    cmocka_unit_test_setup_teardown (test_config, setup, teardown),
    cmocka_unit_test_setup_teardown (test_config_errors, setup, teardown),
    cmocka_unit_test_setup_teardown (test_config_untrusted, setup, teardown),
    cmocka_unit_test (test_json_round_trip),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
