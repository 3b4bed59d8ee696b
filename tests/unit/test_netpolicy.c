/* The network policy: pattern grammar, verdicts, [security.domains] in a
 * config file, the stored spec's form, and the no-network check. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/config.h"
#include "model/netpolicy.h"
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
  strcpy (tmpdir, "/tmp/ak-netpol-XXXXXX");
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
parse_ok (const char *text, ak_netpat_kind_t kind, unsigned lo, unsigned hi)
{
  ak_netpat_t p;
  ak_error_t *err = NULL;
  if (ak_netpat_parse (text, &p, &err) < 0)
    fail_msg ("'%s' refused: %s", text, err->msg);
  assert_int_equal (p.kind, kind);
  assert_int_equal (p.port_lo, lo);
  assert_int_equal (p.port_hi, hi);
  ak_netpat_clear (&p);
}

static void
parse_bad (const char *text, const char *why)
{
  ak_netpat_t p;
  ak_error_t *err = NULL;
  if (ak_netpat_parse (text, &p, &err) == 0)
    fail_msg ("'%s' accepted", text);
  if (strstr (err->msg, why) == NULL)
    fail_msg ("'%s': '%s' not in: %s", text, why, err->msg);
  ak_error_free (err);
}

static void
test_grammar (void **state)
{
  (void) state;
  parse_ok ("example.com", AK_NETPAT_NAME, 0, 65535);
  parse_ok ("EXAMPLE.com.", AK_NETPAT_NAME, 0, 65535);
  parse_ok ("*.github.com", AK_NETPAT_WILDCARD, 0, 65535);
  parse_ok ("git.corp.example:22", AK_NETPAT_NAME, 22, 22);
  parse_ok ("*.example.com:8000-8100", AK_NETPAT_WILDCARD, 8000, 8100);
  parse_ok ("localhost", AK_NETPAT_NAME, 0, 65535);
  parse_ok ("192.0.2.7", AK_NETPAT_ADDR, 0, 65535);
  parse_ok ("10.20.0.0/16", AK_NETPAT_ADDR, 0, 65535);
  parse_ok ("10.20.0.0/16:443", AK_NETPAT_ADDR, 443, 443);
  parse_ok ("2001:db8::1", AK_NETPAT_ADDR, 0, 65535);
  parse_ok ("2001:db8::/32", AK_NETPAT_ADDR, 0, 65535);
  parse_ok ("[2001:db8::1]:443", AK_NETPAT_ADDR, 443, 443);
  parse_ok ("[2001:db8::/32]:1-1024", AK_NETPAT_ADDR, 1, 1024);
  parse_ok ("  padded.example  ", AK_NETPAT_NAME, 0, 65535);

  parse_bad ("", "empty");
  parse_bad ("   ", "empty");
  parse_bad ("*", "wildcard");
  parse_bad ("foo.*.com", "wildcard");
  parse_bad ("**.example.com", "wildcard");
  parse_bad ("bad..name", "not a host name");
  parse_bad ("-bad.example", "not a host name");
  parse_bad ("bad-.example", "not a host name");
  parse_bad ("sp ace.example", "not a host name");
  parse_bad ("1.2.3", "not a host name");
  parse_bad ("300.1.1.1", "not a host name");
  parse_bad ("example.com:", "bad port");
  parse_bad ("example.com:0", "bad port");
  parse_bad ("example.com:65536", "bad port");
  parse_bad ("example.com:90-80", "bad port");
  parse_bad ("example.com:http", "bad port");
  parse_bad ("10.0.0.0/33", "prefix");
  parse_bad ("10.0.0.0/", "prefix");
  parse_bad ("10.0.0.0/-1", "prefix");
  parse_bad ("2001:db8::/129", "prefix");
  parse_bad ("2001:zz8::1", "not a valid IPv4 or IPv6");
  parse_bad ("[2001:db8::1", "IPv6");
  parse_bad ("[example.com]:80", "IPv6");
  parse_bad ("[2001:db8::1]443", "IPv6");
}

static void
test_cidr_masked (void **state)
{
  ak_netpat_t p;
  ak_error_t *err = NULL;
  uint8_t want[4] = { 10, 20, 0, 0 };
  (void) state;
  assert_int_equal (ak_netpat_parse ("10.20.30.40/16", &p, &err), 0);
  assert_memory_equal (p.addr, want, 4);
  assert_int_equal (p.prefix, 16);
  ak_netpat_clear (&p);
}

static ak_netpolicy_t
policy (const char *const *allow, const char *const *block, bool allowlist)
{
  ak_netpolicy_t pol = { 0 };
  ak_error_t *err = NULL;
  for (size_t i = 0; allow && allow[i]; i++)
    assert_int_equal (ak_netpolicy_add (&pol, AK_NET_ALLOW, allow[i], AK_SRC_CLI, 0, &err), 0);
  for (size_t i = 0; block && block[i]; i++)
    assert_int_equal (ak_netpolicy_add (&pol, AK_NET_BLOCK, block[i], AK_SRC_CLI, 0, &err), 0);
  pol.allowlist_only = allowlist;
  return pol;
}

static bool
name_ok (const ak_netpolicy_t *pol, const char *name, unsigned port)
{
  return ak_netpolicy_check_name (pol, name, port).allow;
}

static bool
addr_ok (const ak_netpolicy_t *pol, const char *addr, unsigned port)
{
  uint8_t a[16];
  int family = strchr (addr, ':') ? AF_INET6 : AF_INET;
  assert_int_equal (inet_pton (family, addr, a), 1);
  return ak_netpolicy_check_addr (pol, family, a, port).allow;
}

static void
test_names (void **state)
{
  static const char *const allow[] = { "api.anthropic.com", "*.github.com", "pypi.org",
                                       "git.corp.example:22", "*.evil.example", NULL };
  static const char *const block[] = { "*.evil.example", "bad.github.com", NULL };
  ak_netpolicy_t pol = policy (allow, block, true);
  ak_netverdict_t v;
  (void) state;

  assert_true (name_ok (&pol, "api.anthropic.com", 443));
  assert_true (name_ok (&pol, "API.Anthropic.COM.", 443));
  assert_false (name_ok (&pol, "anthropic.com", 443));
  assert_false (name_ok (&pol, "xapi.anthropic.com", 443));
  /* A wildcard matches names under it, at any depth, never the apex. */
  assert_true (name_ok (&pol, "raw.github.com", 443));
  assert_true (name_ok (&pol, "a.b.github.com", 443));
  assert_false (name_ok (&pol, "github.com", 443));
  assert_false (name_ok (&pol, "evilgithub.com", 443));
  assert_false (name_ok (&pol, "github.com.evil.test", 443));
  /* Ports. */
  assert_true (name_ok (&pol, "git.corp.example", 22));
  assert_false (name_ok (&pol, "git.corp.example", 443));
  assert_true (name_ok (&pol, "git.corp.example", 0));
  /* Block wins over allow, whatever the order. */
  assert_false (name_ok (&pol, "x.evil.example", 443));
  assert_false (name_ok (&pol, "bad.github.com", 443));
  v = ak_netpolicy_check_name (&pol, "bad.github.com", 443);
  assert_non_null (v.rule);
  assert_string_equal (v.rule->text, "bad.github.com");
  /* A name never matches an address rule, nor the reverse. */
  assert_false (name_ok (&pol, "10.0.0.1", 443));
  v = ak_netpolicy_check_name (&pol, "nowhere.example", 443);
  assert_false (v.allow);
  assert_null (v.rule);
  ak_netpolicy_clear (&pol);
}

static void
test_open_mode (void **state)
{
  static const char *const block[] = { "*.evil.example", "203.0.113.0/24", "tracker.example:80", NULL };
  ak_netpolicy_t pol = policy (NULL, block, false);
  (void) state;
  assert_true (name_ok (&pol, "anything.example", 443));
  assert_true (name_ok (&pol, "evil.example", 443));
  assert_false (name_ok (&pol, "a.evil.example", 443));
  assert_false (name_ok (&pol, "a.evil.example", 0));
  assert_true (addr_ok (&pol, "198.51.100.1", 443));
  assert_false (addr_ok (&pol, "203.0.113.9", 443));
  /* A block rule on one port blocks the connection there, not the lookup. */
  assert_false (name_ok (&pol, "tracker.example", 80));
  assert_true (name_ok (&pol, "tracker.example", 443));
  assert_true (name_ok (&pol, "tracker.example", 0));
  ak_netpolicy_clear (&pol);
}

static void
test_addresses (void **state)
{
  static const char *const allow[] = { "10.20.0.0/16", "192.0.2.7:443", "2001:db8::/32", NULL };
  static const char *const block[] = { "10.20.99.0/24", NULL };
  ak_netpolicy_t pol = policy (allow, block, true);
  (void) state;
  assert_true (addr_ok (&pol, "10.20.1.1", 80));
  assert_false (addr_ok (&pol, "10.21.1.1", 80));
  assert_false (addr_ok (&pol, "10.20.99.5", 80));
  assert_true (addr_ok (&pol, "192.0.2.7", 443));
  assert_false (addr_ok (&pol, "192.0.2.7", 80));
  assert_false (addr_ok (&pol, "192.0.2.8", 443));
  assert_true (addr_ok (&pol, "2001:db8:1::5", 22));
  assert_false (addr_ok (&pol, "2001:db9::5", 22));
  /* An IPv4-mapped address is the IPv4 address. */
  assert_true (addr_ok (&pol, "::ffff:10.20.3.4", 80));
  assert_false (addr_ok (&pol, "::ffff:10.20.99.4", 80));
  ak_netpolicy_clear (&pol);
}

static char *
write_tmp (const char *name, const char *text)
{
  char *path = ak_xasprintf ("%s/%s", tmpdir, name);
  ak_error_t *err = NULL;
  assert_int_equal (ak_write_file (path, text, strlen (text), 0644, &err), 0);
  return path;
}

static int
load (const char *text, bool untrusted, ak_spec_t *spec, ak_error_t **err)
{
  _cleanup_free_ char *path = write_tmp ("agentkernel.toml", text);
  ak_config_opts_t o = { .untrusted = untrusted };
  return ak_config_apply_buf (path, text, strlen (text), &o, spec, err);
}

static void
test_config (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;

  ak_spec_init (&spec);
  assert_int_equal (load ("[security.domains]\n"
                          "allow = [\"api.anthropic.com\", \"*.github.com\",\n"
                          "  \"10.20.0.0/16\", \"git.corp.example:22\"]\n"
                          "block = [\"*.evil.example\"]\n",
                          false, &spec, &err),
                    0);
  assert_int_equal (spec.sec.domains.n_allow, 4);
  assert_int_equal (spec.sec.domains.n_block, 1);
  /* An allow list turns allowlist mode on unless the file says otherwise. */
  assert_true (spec.sec.domains.allowlist_only);
  assert_int_equal (spec.sec.domains.allow[0].source, AK_SRC_CONFIG);
  assert_int_equal (spec.sec.domains.allow[0].line, 2);
  assert_int_equal (spec.sec.domains.allow[2].line, 3);
  assert_int_equal (spec.sec.domains.block[0].line, 4);
  ak_spec_clear (&spec);

  ak_spec_init (&spec);
  assert_int_equal (load ("[security.domains]\nallow = [\"a.example\"]\nallowlist_only = false\n",
                          false, &spec, &err),
                    0);
  assert_false (spec.sec.domains.allowlist_only);
  assert_int_equal (spec.sec.domains.allowlist_line, 3);
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
  expect_config_error ("[security.domains]\nallow = [\n  \"ok.example\",\n  \"bad..name\",\n]\n",
                       "agentkernel.toml:4: [security.domains] allow: entry 2: 'bad..name'");
  expect_config_error ("[security.domains]\nblock = [\"x.example:99999\"]\n",
                       ":2: [security.domains] block: entry 1: 'x.example:99999': bad port");
  expect_config_error ("[security.domains]\nallow = \"a.example\"\n",
                       ":2: [security.domains] allow: expected an array of strings");
  expect_config_error ("[security.domains]\nallow = [1]\n",
                       ":2: [security.domains] allow: entry 1: expected a string");
  expect_config_error ("[security.domains]\nallowlist_only = \"yes\"\n",
                       ":2: [security.domains] allowlist_only: expected a boolean");
  expect_config_error ("[security]\ndomains = 3\n", ":2: [security] domains: expected a table");
}

static void
test_config_untrusted (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;

  /* From the open network, an untrusted file may restrict to names, but not
   * open addresses. */
  ak_spec_init (&spec);
  assert_int_equal (load ("[security.domains]\nallow = [\"a.example\", \"169.254.0.0/16\"]\n"
                          "block = [\"b.example\"]\n",
                          true, &spec, &err),
                    0);
  assert_int_equal (spec.sec.domains.n_allow, 1);
  assert_string_equal (spec.sec.domains.allow[0].text, "a.example");
  assert_int_equal (spec.sec.domains.n_block, 1);
  assert_true (spec.sec.domains.allowlist_only);
  assert_non_null (strstr (warnings, "169.254.0.0/16"));
  ak_spec_clear (&spec);

  /* Once an allow list is in force, it cannot add to it nor turn it off. */
  ak_spec_init (&spec);
  assert_int_equal (ak_netpolicy_add (&spec.sec.domains, AK_NET_ALLOW, "a.example", AK_SRC_CLI, 0, &err), 0);
  spec.sec.domains.allowlist_only = true;
  assert_int_equal (load ("[security.domains]\nallow = [\"more.example\"]\nallowlist_only = false\n",
                          true, &spec, &err),
                    0);
  assert_int_equal (spec.sec.domains.n_allow, 1);
  assert_true (spec.sec.domains.allowlist_only);
  assert_non_null (strstr (warnings, "more.example"));
  assert_non_null (strstr (warnings, "allowlist_only = false ignored"));
  ak_spec_clear (&spec);
}

static void
test_json_round_trip (void **state)
{
  static const char *const allow[] = { "*.github.com", "[2001:db8::1]:443", NULL };
  static const char *const block[] = { "bad.github.com:1-1024", NULL };
  ak_spec_t a, b;
  ak_error_t *err = NULL;
  json_t *j;
  (void) state;

  ak_spec_init (&a);
  a.sec.domains = policy (allow, block, true);
  a.sec.domains.allowlist_source = AK_SRC_CLI;
  a.sec.domains.block[0].source = AK_SRC_CONFIG;
  a.sec.domains.block[0].line = 7;
  j = ak_spec_to_json (&a);
  if (ak_spec_from_json (j, &b, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_true (b.sec.domains.allowlist_only);
  assert_int_equal (b.sec.domains.allowlist_source, AK_SRC_CLI);
  assert_int_equal (b.sec.domains.n_allow, 2);
  assert_string_equal (b.sec.domains.allow[1].text, "[2001:db8::1]:443");
  assert_int_equal (b.sec.domains.allow[1].port_lo, 443);
  assert_int_equal (b.sec.domains.block[0].line, 7);
  assert_int_equal (b.sec.domains.block[0].source, AK_SRC_CONFIG);
  assert_int_equal (b.sec.domains.block[0].port_hi, 1024);
  ak_spec_clear (&b);

  /* A stored pattern is held to the grammar again. */
  json_object_set_new (json_object_get (json_object_get (j, "security"), "domains"), "block",
                       json_pack ("[{s:s}]", "pattern", "bad..name"));
  assert_int_equal (ak_spec_from_json (j, &b, &err), -1);
  assert_non_null (strstr (err->msg, "security.domains.block[0]"));
  ak_error_free (err);
  ak_spec_clear (&b);
  json_decref (j);
  ak_spec_clear (&a);
}

static void
test_no_network (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;

  ak_spec_init (&spec);
  assert_int_equal (ak_netpolicy_add (&spec.sec.domains, AK_NET_ALLOW, "a.example", AK_SRC_CLI, 0, &err), 0);
  assert_int_equal (ak_spec_validate (&spec, &err), 0);
  ak_spec_set_security (&spec, AK_SEC_NETWORK, false, AK_SRC_CLI, 0);
  assert_int_equal (ak_spec_validate (&spec, &err), -1);
  assert_non_null (strstr (err->msg, "no network"));
  ak_error_free (err);
  err = NULL;
  /* Rules from a config file are moot without network, not an error. */
  spec.sec.domains.allow[0].source = AK_SRC_CONFIG;
  assert_int_equal (ak_spec_validate (&spec, &err), 0);
  ak_spec_clear (&spec);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_grammar),
    cmocka_unit_test (test_cidr_masked),
    cmocka_unit_test (test_names),
    cmocka_unit_test (test_open_mode),
    cmocka_unit_test (test_addresses),
    cmocka_unit_test_setup_teardown (test_config, setup, teardown),
    cmocka_unit_test_setup_teardown (test_config_errors, setup, teardown),
    cmocka_unit_test_setup_teardown (test_config_untrusted, setup, teardown),
    cmocka_unit_test (test_json_round_trip),
    cmocka_unit_test (test_no_network),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
