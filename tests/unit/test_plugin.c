/* The integration-file merges: nothing of the user's lost, idempotent,
 * someone else's entry left alone, malformed files refused. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "model/plugin.h"

static const char *const mcp_keys[] = { "mcpServers", "agentkernel", NULL };
static const char *const codex_keys[] = { "mcp_servers", "agentkernel", NULL };
#define OURS "{\"command\": \"agentkernel\", \"args\": [\"mcp-server\"]}"
#define OURS_TOML "command = \"agentkernel\"\nargs = [\"mcp-server\"]\n"

static char *
jmerge (const char *old, ak_plugin_op_t op, bool force, ak_plugin_found_t *found, int *rc)
{
  char *out = NULL;
  ak_error_t *err = NULL;
  *rc = ak_plugin_json_merge ("f.json", old, old ? strlen (old) : 0, mcp_keys, OURS, op, force, &out, found,
                              &err);
  if (err)
    {
      fprintf (stderr, "(expected?) %s\n", err->msg);
      ak_error_free (err);
    }
  return out;
}

static char *
tmerge (const char *old, ak_plugin_op_t op, bool force, ak_plugin_found_t *found, int *rc)
{
  char *out = NULL;
  ak_error_t *err = NULL;
  *rc = ak_plugin_toml_merge ("config.toml", old, old ? strlen (old) : 0, codex_keys, OURS_TOML, op, force,
                              &out, found, &err);
  if (err)
    {
      fprintf (stderr, "(expected?) %s\n", err->msg);
      ak_error_free (err);
    }
  return out;
}

static void
test_json_new_file (void **state)
{
  ak_plugin_found_t f;
  int rc;
  char *out = jmerge (NULL, AK_PLUGIN_INSTALL, false, &f, &rc);
  (void) state;
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_ABSENT);
  assert_non_null (strstr (out, "\"mcpServers\""));
  assert_non_null (strstr (out, "\"mcp-server\""));
  /* Removed again, the file holds nothing: it is to be removed. */
  {
    char *gone = jmerge (out, AK_PLUGIN_REMOVE, false, &f, &rc);
    assert_int_equal (f, AK_PLUGIN_SAME);
    assert_string_equal (gone, "");
    free (gone);
  }
  free (out);
}

static void
test_json_merge_keeps_everything (void **state)
{
  const char *old = "{\"theme\": \"dark\", \"ratio\": 0.1, \"big\": 12345678901234,\n"
                    " \"mcpServers\": {\"other\": {\"command\": \"x\", \"env\": {\"A\": \"\\u00e9\"}}},\n"
                    " \"list\": [1, 2.5, null, true]}";
  ak_plugin_found_t f;
  int rc;
  char *out = jmerge (old, AK_PLUGIN_INSTALL, false, &f, &rc), *again, *removed;
  (void) state;
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_ABSENT);
  assert_non_null (strstr (out, "\"theme\": \"dark\""));
  assert_non_null (strstr (out, "\"ratio\": 0.1,"));
  assert_non_null (strstr (out, "12345678901234"));
  assert_non_null (strstr (out, "\"other\""));
  assert_non_null (strstr (out, "\"A\": \"\xc3\xa9\""));
  assert_non_null (strstr (out, "2.5"));
  assert_true (strstr (out, "\"other\"") < strstr (out, "\"agentkernel\"")); /* order kept */
  /* Idempotent. */
  again = jmerge (out, AK_PLUGIN_INSTALL, false, &f, &rc);
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_SAME);
  assert_null (again);
  /* Remove takes out ours only. */
  removed = jmerge (out, AK_PLUGIN_REMOVE, false, &f, &rc);
  assert_int_equal (f, AK_PLUGIN_SAME);
  assert_non_null (removed);
  assert_null (strstr (removed, "agentkernel"));
  assert_non_null (strstr (removed, "\"other\""));
  assert_non_null (strstr (removed, "\"theme\""));
  free (removed);
  removed = jmerge ("{\"a\": 1}", AK_PLUGIN_REMOVE, false, &f, &rc);
  assert_int_equal (f, AK_PLUGIN_ABSENT);
  assert_null (removed);
  free (out);
}

static void
test_json_different_left_alone (void **state)
{
  const char *old = "{\"mcpServers\": {\"agentkernel\": {\"command\": \"/opt/my/agentkernel\"}}}";
  const char *completed = "{\"mcpServers\": {\"agentkernel\": {\"type\": \"stdio\", \"command\": \"agentkernel\","
                          " \"args\": [\"mcp-server\"], \"env\": {}}}}";
  ak_plugin_found_t f;
  int rc;
  char *out = jmerge (old, AK_PLUGIN_INSTALL, false, &f, &rc);
  (void) state;
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_DIFFERENT);
  assert_null (out);
  assert_null (jmerge (old, AK_PLUGIN_REMOVE, false, &f, &rc));
  out = jmerge (old, AK_PLUGIN_INSTALL, true, &f, &rc);
  assert_non_null (out);
  assert_null (strstr (out, "/opt/my"));
  free (out);
  /* An entry the agent completed with its own defaults is still ours. */
  assert_null (jmerge (completed, AK_PLUGIN_INSTALL, false, &f, &rc));
  assert_int_equal (f, AK_PLUGIN_SAME);
}

static void
test_json_malformed (void **state)
{
  const char *bad[] = { "{\"a\": 1,}", "// comment\n{}", "[1, 2]", "{\"a\": 1, \"a\": 2}",
                        "{\"mcpServers\": []}", "{\"mcpServers\": \"x\"}" };
  (void) state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      ak_plugin_found_t f;
      int rc;
      char *out = jmerge (bad[i], AK_PLUGIN_INSTALL, true, &f, &rc);
      assert_int_equal (rc, -1);
      assert_null (out);
    }
}

static const char codex_cfg[] = "# my codex settings\n"
                                "model = \"o3\" # the best\n"
                                "approval_policy = \"on-request\"\n"
                                "\n"
                                "[mcp_servers.docs]\n"
                                "command = \"docs-mcp\"\n"
                                "args = ['--port', \"3\"]\n"
                                "\n"
                                "# profiles below\n"
                                "[profiles.fast]\n"
                                "model = \"o4-mini\"\n"
                                "when = 1979-05-27T07:32:00Z\n";

static void
test_toml_append_and_remove (void **state)
{
  ak_plugin_found_t f;
  int rc;
  char *out = tmerge (codex_cfg, AK_PLUGIN_INSTALL, false, &f, &rc), *again, *removed;
  (void) state;
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_ABSENT);
  /* The user's text is kept byte for byte, ours appended. */
  assert_memory_equal (out, codex_cfg, strlen (codex_cfg));
  assert_string_equal (out + strlen (codex_cfg),
                       "\n[mcp_servers.agentkernel]\ncommand = \"agentkernel\"\nargs = [\"mcp-server\"]\n");
  again = tmerge (out, AK_PLUGIN_INSTALL, false, &f, &rc);
  assert_int_equal (f, AK_PLUGIN_SAME);
  assert_null (again);
  removed = tmerge (out, AK_PLUGIN_REMOVE, false, &f, &rc);
  assert_int_equal (rc, 0);
  assert_non_null (removed);
  assert_string_equal (removed, codex_cfg);
  free (removed);
  free (out);
  /* No file yet. */
  out = tmerge (NULL, AK_PLUGIN_INSTALL, false, &f, &rc);
  assert_string_equal (out, "[mcp_servers.agentkernel]\ncommand = \"agentkernel\"\nargs = [\"mcp-server\"]\n");
  free (out);
}

static void
test_toml_replace_in_the_middle (void **state)
{
  const char *old = "model = \"o3\"\n"
                    "[mcp_servers.agentkernel]\n"
                    "command = \"/old/agentkernel\" # mine\n"
                    "args = [\"mcp\"]\n"
                    "[mcp_servers.agentkernel.env]\n"
                    "X = \"1\"\n"
                    "\n"
                    "# the docs server\n"
                    "[mcp_servers.docs]\n"
                    "command = \"docs\"\n";
  ak_plugin_found_t f;
  int rc;
  char *out = tmerge (old, AK_PLUGIN_INSTALL, false, &f, &rc);
  (void) state;
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_DIFFERENT);
  assert_null (out);
  out = tmerge (old, AK_PLUGIN_INSTALL, true, &f, &rc);
  assert_int_equal (rc, 0);
  assert_string_equal (out, "model = \"o3\"\n"
                            "[mcp_servers.agentkernel]\n"
                            "command = \"agentkernel\"\n"
                            "args = [\"mcp-server\"]\n"
                            "\n"
                            "# the docs server\n"
                            "[mcp_servers.docs]\n"
                            "command = \"docs\"\n");
  free (out);
  out = tmerge (old, AK_PLUGIN_REMOVE, true, &f, &rc);
  assert_string_equal (out, "model = \"o3\"\n"
                            "\n"
                            "# the docs server\n"
                            "[mcp_servers.docs]\n"
                            "command = \"docs\"\n");
  free (out);
}

static void
test_toml_refusals (void **state)
{
  const char *bad[] = {
    "model = \n",                                  /* does not parse */
    "mcp_servers = 3\n",                           /* not a table */
    "mcp_servers = { docs = { command = \"d\" } }\n", /* inline: appending would not parse */
  };
  const char *inline_ours = "[mcp_servers]\nagentkernel = { command = \"x\" }\n";
  ak_plugin_found_t f;
  int rc;
  (void) state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      char *out = tmerge (bad[i], AK_PLUGIN_INSTALL, false, &f, &rc);
      assert_int_equal (rc, -1);
      assert_null (out);
    }
  /* Someone else's entry, written inline: left alone, and not rewritten
   * even with force. */
  assert_null (tmerge (inline_ours, AK_PLUGIN_INSTALL, false, &f, &rc));
  assert_int_equal (rc, 0);
  assert_int_equal (f, AK_PLUGIN_DIFFERENT);
  assert_null (tmerge (inline_ours, AK_PLUGIN_INSTALL, true, &f, &rc));
  assert_int_equal (rc, -1);
}

static void
test_diff (void **state)
{
  char *d = ak_plugin_diff ("f", "a\nb\nc\n", "a\nb\nX\nc\n");
  (void) state;
  assert_string_equal (d, "--- f\n+++ f\n@@ -1,3 +1,4 @@\n a\n b\n+X\n c\n");
  free (d);
  d = ak_plugin_diff ("f", NULL, "new\n");
  assert_string_equal (d, "--- (new) f\n+++ f\n@@ -0,0 +1,1 @@\n+new\n");
  free (d);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_json_new_file),         cmocka_unit_test (test_json_merge_keeps_everything),
    cmocka_unit_test (test_json_different_left_alone), cmocka_unit_test (test_json_malformed),
    cmocka_unit_test (test_toml_append_and_remove), cmocka_unit_test (test_toml_replace_in_the_middle),
    cmocka_unit_test (test_toml_refusals),          cmocka_unit_test (test_diff),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
