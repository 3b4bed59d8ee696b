/* The Docker seccomp profile parser: Docker's own default profile, and
 * every kind of malformed file, each one clear error naming the file and
 * the place. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/seccomp_profile.h"

static char *
read_data (const char *name, size_t *len)
{
  _cleanup_free_ char *path = ak_xasprintf ("tests/data/seccomp/%s", name);
  ak_error_t *err = NULL;
  char *text = NULL;
  if (ak_read_file (path, &text, len, &err) < 0)
    fail_msg ("%s (run from the top of the tree)", err->msg);
  return text;
}

static const ak_scmp_rule_t *
find_rule (const ak_scmp_profile_t *p, const char *name, size_t skip)
{
  for (size_t i = 0; i < p->n_rules; i++)
    for (size_t k = 0; p->rules[i].names[k] != NULL; k++)
      if (strcmp (p->rules[i].names[k], name) == 0 && skip-- == 0)
        return &p->rules[i];
  return NULL;
}

static void
test_docker_default (void **state)
{
  size_t len;
  _cleanup_free_ char *text = read_data ("docker-default.json", &len);
  ak_scmp_profile_t *p = NULL;
  ak_error_t *err = NULL;
  const ak_scmp_rule_t *r;
  (void) state;

  if (ak_scmp_profile_parse ("docker-default.json", text, len, &p, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_int_equal (p->default_action, SCMP_ACT_ERRNO (1));
  assert_true (p->n_rules > 30);
#ifdef __x86_64__
  /* the archMap entry of the native architecture, and only that one */
  assert_int_equal (p->n_arches, 3);
  assert_int_equal (p->arches[0], SCMP_ARCH_X86);
  assert_int_equal (p->arches[1], SCMP_ARCH_X32);
  assert_int_equal (p->arches[2], SCMP_ARCH_X86_64);
#endif
  r = find_rule (p, "clone", 1); /* the first is the CAP_SYS_ADMIN one */
  assert_non_null (r);
  assert_int_equal (r->n_args, 1);
  assert_int_equal (r->args[0].op, AK_SCMP_MASKED_EQ);
  assert_int_equal (r->args[0].value, 2114060288);
  assert_string_equal (r->excludes.caps[0], "CAP_SYS_ADMIN");
  assert_string_equal (r->excludes.arches[1], "s390x");
  r = find_rule (p, "clone3", 1);
  assert_non_null (r);
  assert_int_equal (r->action, SCMP_ACT_ERRNO (ENOSYS));
  r = find_rule (p, "ptrace", 0);
  assert_int_equal (r->includes.min_kernel[0], 4);
  assert_int_equal (r->includes.min_kernel[1], 8);
  r = find_rule (p, "personality", 4);
  assert_int_equal (r->args[0].value, 4294967295u);
  assert_int_equal (r->args[0].op, AK_SCMP_EQ);
  ak_scmp_profile_free (p);
}

/* Each malformed profile: one error, naming the file and what is wrong. */
static void
test_malformed (void **state)
{
  static const struct {
    const char *json, *want;
  } cases[] = {
    { "", "bad.json:1:0: invalid JSON" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [,]}", "bad.json:2:" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"defaultAction\": \"SCMP_ACT_ERRNO\"}",
      "duplicate object key" },
    { "[]", "bad.json: the profile: expected an object, got an array" },
    { "{}", "bad.json: defaultAction: missing" },
    { "{\"defaultAction\": 1}", "defaultAction: expected a string, got an integer" },
    { "{\"defaultAction\": \"SCMP_ACT_ALOW\"}", "unknown action 'SCMP_ACT_ALOW'" },
    { "{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "SCMP_ACT_NOTIFY is not supported" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 4096}",
      "defaultErrnoRet: out of range (0 to 4095)" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"defaultErrnoRet\": 1}",
      "defaultErrnoRet: only SCMP_ACT_ERRNO takes an errno" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"x86_64\"]}",
      "architectures[0]: unknown architecture 'x86_64'" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": \"SCMP_ARCH_X86_64\"}",
      "architectures: expected an array of strings, got a string" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"archMap\": [{\"subArchitectures\": []}]}",
      "archMap[0].architecture: missing" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/x.sock\"}",
      "listenerPath: not supported" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_NEW\"]}",
      "flags[0]: unknown filter flag" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": {}}",
      "syscalls: expected an array, got an object" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [3]}",
      "syscalls[0]: expected an object, got an integer" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": \"SCMP_ACT_ERRNO\"}]}",
      "syscalls[0]: no system call named" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [], \"action\": "
      "\"SCMP_ACT_ERRNO\"}]}",
      "syscalls[0]: no system call named" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\", 7], "
      "\"action\": \"SCMP_ACT_ERRNO\"}]}",
      "syscalls[0].names[1]: expected a string, got an integer" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"]}]}",
      "syscalls[0].action: missing" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_TRACE\"}]}",
      "syscalls[0].action: SCMP_ACT_TRACE is not supported" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"errnoRet\": \"EPERM\"}]}",
      "syscalls[0].errnoRet: expected an integer, got a string" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"errnoRet\": -1}]}",
      "syscalls[0].errnoRet: out of range" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 6, \"value\": 0, \"op\": \"SCMP_CMP_EQ\"}]}]}",
      "syscalls[0].args[0].index: out of range (0 to 5)" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 0, \"op\": \"SCMP_CMP_XOR\"}]}]}",
      "syscalls[0].args[0].op: unknown operator 'SCMP_CMP_XOR'" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": -5, \"op\": \"SCMP_CMP_EQ\"}]}]}",
      "syscalls[0].args[0].value: out of range" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1.5, \"op\": \"SCMP_CMP_EQ\"}]}]}",
      "syscalls[0].args[0].value: expected an integer, got a number" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1}]}]}",
      "syscalls[0].args[0].op: missing" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"args\": [{},{},{},{},{},{},{}]}]}",
      "syscalls[0].args: more than 6" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"includes\": []}]}",
      "syscalls[0].includes: expected an object, got an array" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"excludes\": {\"minKernel\": \"four\"}}]}",
      "syscalls[0].excludes.minKernel: expected a kernel version" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ERRNO\", \"includes\": {\"caps\": \"CAP_SYS_ADMIN\"}}]}",
      "syscalls[0].includes.caps: expected an array of strings" },
    { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"re\\u0000ad\"], "
      "\"action\": \"SCMP_ACT_ERRNO\"}]}",
      "bad.json:1:" },
  };
  (void) state;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      ak_scmp_profile_t *p = NULL;
      ak_error_t *err = NULL;
      if (ak_scmp_profile_parse ("bad.json", cases[i].json, strlen (cases[i].json), &p, &err) == 0)
        fail_msg ("case %zu accepted: %s", i, cases[i].json);
      assert_null (p);
      assert_non_null (err);
      assert_non_null (strstr (err->msg, "bad.json"));
      if (strstr (err->msg, cases[i].want) == NULL)
        fail_msg ("case %zu: '%s' not in: %s", i, cases[i].want, err->msg);
      ak_error_free (err);
    }
}

/* What Docker accepts and skips is accepted: unknown names (resolved
 * later), architectures this libseccomp does not know, null lists,
 * comments, unknown keys. */
static void
test_lenient_where_docker_is (void **state)
{
  static const char ok[]
      = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"comment\": \"x\", \"listenerPath\": \"\","
        " \"architectures\": [\"SCMP_ARCH_FUTURE64\"], \"archMap\": null,"
        " \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"], \"syscalls\": ["
        " {\"names\": [\"no_such_call\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": null,"
        "  \"includes\": {\"caps\": null, \"minKernel\": \"5.10.1\"}, \"excludes\": null, \"x\": 1},"
        " {\"name\": \"read\", \"action\": \"SCMP_ACT_KILL\"}]}";
  ak_scmp_profile_t *p = NULL;
  ak_error_t *err = NULL;
  (void) state;

  if (ak_scmp_profile_parse ("ok.json", ok, strlen (ok), &p, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_int_equal (p->default_action, SCMP_ACT_ERRNO (EPERM));
  assert_int_equal (p->n_arches, 0);
  assert_int_equal (p->n_rules, 2);
  assert_int_equal (p->rules[0].includes.min_kernel[0], 5);
  assert_int_equal (p->rules[0].includes.min_kernel[1], 10);
  assert_string_equal (p->rules[1].names[0], "read");
  assert_int_equal (p->rules[1].action, SCMP_ACT_KILL);
  ak_scmp_profile_free (p);
}

static void
test_size_cap (void **state)
{
  size_t n = AK_SECCOMP_PROFILE_MAX + 1;
  _cleanup_free_ char *big = ak_xmalloc (n + 1);
  ak_scmp_profile_t *p = NULL;
  ak_error_t *err = NULL;
  (void) state;

  memset (big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';
  assert_int_equal (ak_scmp_profile_parse ("big.json", big, n, &p, &err), -1);
  assert_non_null (strstr (err->msg, "big.json: larger than"));
  ak_error_free (err);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_docker_default),
    cmocka_unit_test (test_malformed),
    cmocka_unit_test (test_lenient_where_docker_is),
    cmocka_unit_test (test_size_cap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
