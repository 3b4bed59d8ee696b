/* The rule lists' JSON form (ak_rules_to_json): the spec's, with every
 * "line", and config show's, with only the lines of the config file. */
#define _GNU_SOURCE
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "model/cmdpolicy.h"
#include "model/netpolicy.h"
#include "model/rulelist.h"
#include "model/spec.h"

/* got equals the JSON text want (objects compared whatever their order). */
static void
assert_json (json_t *got, const char *want)
{
  json_error_t e;
  json_t *w = json_loads (want, 0, &e);
  char *text = json_dumps (got, JSON_COMPACT | JSON_SORT_KEYS);

  assert_non_null (w);
  assert_non_null (got);
  if (!json_equal (got, w))
    fail_msg ("got %s\nwant %s", text, want);
  free (text);
  json_decref (w);
  json_decref (got);
}

static void
test_domains (void **state)
{
  ak_netpolicy_t pol = { 0 };
  ak_error_t *err = NULL;
  ak_rules_t r = ak_rules_domains (&pol);

  (void) state;
  pol.allowlist_only = true;
  pol.allowlist_source = AK_SRC_CONFIG;
  pol.allowlist_line = 2;
  assert_int_equal (ak_netpolicy_add (&pol, AK_NET_ALLOW, "example.com", AK_SRC_CONFIG, 3, &err), 0);
  assert_int_equal (ak_netpolicy_add (&pol, AK_NET_ALLOW, "10.0.0.0/8", AK_SRC_CLI, 0, &err), 0);
  assert_int_equal (ak_netpolicy_add (&pol, AK_NET_BLOCK, "evil.test", AK_SRC_CONFIG, 0, &err), 0);

  /* The spec's form: every entry with its line, 0 included. */
  assert_json (ak_rules_to_json (&r, true),
               "{\"allowlist_only\": {\"value\": true, \"source\": \"config\", \"line\": 2},"
               " \"allow\": [{\"pattern\": \"example.com\", \"source\": \"config\", \"line\": 3},"
               "             {\"pattern\": \"10.0.0.0/8\", \"source\": \"cli\", \"line\": 0}],"
               " \"block\": [{\"pattern\": \"evil.test\", \"source\": \"config\", \"line\": 0}]}");
  /* config show's: a line only where a line of the config file said it. */
  assert_json (ak_rules_to_json (&r, false),
               "{\"allowlist_only\": {\"value\": true, \"source\": \"config\", \"line\": 2},"
               " \"allow\": [{\"pattern\": \"example.com\", \"source\": \"config\", \"line\": 3},"
               "             {\"pattern\": \"10.0.0.0/8\", \"source\": \"cli\"}],"
               " \"block\": [{\"pattern\": \"evil.test\", \"source\": \"config\"}]}");
  ak_netpolicy_clear (&pol);
}

static void
test_commands (void **state)
{
  ak_cmdpolicy_t pol = { 0 };
  ak_error_t *err = NULL;
  ak_rules_t r = ak_rules_commands (&pol);

  (void) state;
  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_BLOCK, "/usr/bin/curl", AK_SRC_CONFIG, 7, &err), 0);
  assert_int_equal (ak_cmdpolicy_add (&pol, AK_CMD_BLOCK, "wget", AK_SRC_CLI, 0, &err), 0);

  assert_json (ak_rules_to_json (&r, true),
               "{\"allowlist_only\": {\"value\": false, \"source\": \"default\", \"line\": 0},"
               " \"allow\": [],"
               " \"block\": [{\"entry\": \"/usr/bin/curl\", \"source\": \"config\", \"line\": 7},"
               "             {\"entry\": \"wget\", \"source\": \"cli\", \"line\": 0}]}");
  assert_json (ak_rules_to_json (&r, false),
               "{\"allowlist_only\": {\"value\": false, \"source\": \"default\"},"
               " \"allow\": [],"
               " \"block\": [{\"entry\": \"/usr/bin/curl\", \"source\": \"config\", \"line\": 7},"
               "             {\"entry\": \"wget\", \"source\": \"cli\"}]}");
  ak_cmdpolicy_clear (&pol);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_domains),
    cmocka_unit_test (test_commands),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
