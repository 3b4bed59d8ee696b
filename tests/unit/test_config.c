/* The config layer: DESIGN.md's precedence and every error it reports. */
#define _GNU_SOURCE
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

#include "testutil.h"
#include "backend/backend.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/config.h"
#include "model/seccomp_profile.h"

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
  strcpy (tmpdir, "/tmp/ak-config-XXXXXX");
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

static char *
write_tmp (const char *name, const char *text)
{
  char *path = ak_xasprintf ("%s/%s", tmpdir, name);
  ak_error_t *err = NULL;
  assert_int_equal (ak_write_file (path, text, strlen (text), 0644, &err), 0);
  return path;
}

/* Loads text as agentkernel.toml into a fresh spec (optionally after a CLI
 * profile); returns the loader's result. */
static int
load (const char *text, int cli_profile, ak_spec_t *spec, ak_error_t **err)
{
  char *path = write_tmp ("agentkernel.toml", text);
  int rc;
  ak_spec_init (spec);
  if (cli_profile >= 0)
    ak_spec_set_profile (spec, (ak_profile_t) cli_profile, AK_SRC_CLI);
  rc = ak_config_load_apply (path, cli_profile >= 0, spec, err);
  free (path);
  return rc;
}

static void
expect_error (const char *text, const char *line_tag, const char *key)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  assert_int_equal (load (text, -1, &spec, &err), -1);
  assert_non_null (err);
  assert_non_null (strstr (err->msg, "agentkernel.toml"));
  assert_non_null (strstr (err->msg, line_tag));
  if (key != NULL && strstr (err->msg, key) == NULL)
    fail_msg ("'%s' not in: %s", key, err->msg);
  ak_error_free (err);
  ak_spec_clear (&spec);
}

static void
test_profile_default (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (load ("[sandbox]\nname = \"a\"\n", -1, &spec, &err), 0);
  assert_int_equal (spec.sec.profile, AK_PROFILE_MODERATE);
  assert_int_equal (spec.sec.profile_source, AK_SRC_DEFAULT);
  assert_string_equal (spec.name, "a");
  ak_spec_clear (&spec);
}

static void
test_profile_from_config (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (load ("[security]\nprofile = \"restrictive\"\n", -1, &spec, &err), 0);
  assert_int_equal (spec.sec.profile, AK_PROFILE_RESTRICTIVE);
  assert_int_equal (spec.sec.profile_source, AK_SRC_CONFIG);
  assert_false (ak_spec_sec (&spec, AK_SEC_NETWORK));
  assert_true (ak_spec_sec (&spec, AK_SEC_READ_ONLY));
  assert_int_equal (spec.res.memory_mb, 256);
  ak_spec_clear (&spec);
}

static void
test_profile_cli_wins (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (load ("[security]\nprofile = \"restrictive\"\n", AK_PROFILE_PERMISSIVE, &spec, &err), 0);
  assert_int_equal (spec.sec.profile, AK_PROFILE_PERMISSIVE);
  assert_int_equal (spec.sec.profile_source, AK_SRC_CLI);
  assert_true (ak_spec_sec (&spec, AK_SEC_MOUNT_CWD));
  ak_spec_clear (&spec);
}

static void
test_key_over_profile (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  /* The key is written before the profile: the profile still comes first. */
  assert_int_equal (load ("[security]\nmount_cwd = true\nprofile = \"restrictive\"\n", -1, &spec, &err), 0);
  assert_true (ak_spec_sec (&spec, AK_SEC_MOUNT_CWD));
  assert_int_equal (spec.sec.s[AK_SEC_MOUNT_CWD].source, AK_SRC_CONFIG);
  assert_int_equal (spec.sec.s[AK_SEC_MOUNT_CWD].line, 2);
  assert_int_equal (spec.sec.s[AK_SEC_NETWORK].source, AK_SRC_PROFILE);
  ak_spec_clear (&spec);

  /* And over a CLI profile too. */
  assert_int_equal (load ("[security]\nnetwork = false\n", AK_PROFILE_PERMISSIVE, &spec, &err), 0);
  assert_false (ak_spec_sec (&spec, AK_SEC_NETWORK));
  assert_int_equal (spec.sec.s[AK_SEC_NETWORK].source, AK_SRC_CONFIG);
  assert_true (ak_spec_sec (&spec, AK_SEC_PASS_ENV));
  ak_spec_clear (&spec);
}

static void
test_untouched (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (load ("[security]\npass_env = true\n", AK_PROFILE_RESTRICTIVE, &spec, &err), 0);
  for (int k = 0; k < AK_SEC_N; k++)
    if (k != AK_SEC_PASS_ENV)
      assert_int_equal (spec.sec.s[k].source, AK_SRC_PROFILE);
  assert_true (ak_spec_sec (&spec, AK_SEC_READ_ONLY));
  assert_false (ak_spec_sec (&spec, AK_SEC_NETWORK));
  assert_int_equal (spec.res.pids, 256);
  assert_null (spec.name);
  assert_string_equal (spec.image, "host");
  assert_int_equal (spec.n_files, 0);
  ak_spec_clear (&spec);
}

static void
test_full_schema (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  char *f;
  (void) state;
  f = write_tmp ("hello.txt", "hello\n");
  free (f);
  assert_int_equal (load ("[sandbox]\nname = \"my-box_1\"\nbase_image = \"alpine\"\n"
                          "[agent]\npreferred = \"claude\"\ncompatibility_mode = \"codex\"\n"
                          "[resources]\nvcpus = 2\nmemory_mb = 1024\npids = 99\ncpu = 0.5\n"
                          "[network]\nports = [\"8080:80\", \"[::1]:53:53/udp\"]\n"
                          "[[files]]\nsource = \"hello.txt\"\ndest = \"/etc/hello\"\n",
                          -1, &spec, &err),
                    0);
  assert_string_equal (spec.name, "my-box_1");
  assert_string_equal (spec.image, "alpine");
  assert_string_equal (spec.agent, "claude");
  assert_string_equal (spec.compat_mode, "codex");
  assert_int_equal (spec.res.vcpus, 2);
  assert_int_equal (spec.res.memory_mb, 1024);
  assert_int_equal (spec.res.pids, 99);
  assert_int_equal (spec.res.cpu_millis, 500);
  for (int i = 0; i < 4; i++)
    assert_int_equal (spec.res_source[i], AK_SRC_CONFIG);
  assert_int_equal (spec.n_files, 1);
  assert_string_equal (spec.files[0].dest, "/etc/hello");
  assert_int_equal (spec.files[0].line, 14);
  assert_non_null (spec.ports);
  assert_string_equal (spec.ports[0], "127.0.0.1:8080:80/tcp");
  assert_string_equal (spec.ports[1], "[::1]:53:53/udp");
  assert_null (spec.ports[2]);
  assert_non_null (strstr (spec.files[0].source, "/hello.txt"));
  assert_int_equal (spec.files[0].source[0], '/');
  assert_null (warnings);
  ak_spec_clear (&spec);
}

static void
test_unknown_key_warns (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (load ("[security]\nnetwrok = false\n[extra]\nx = 1\n[build]\n[network]\nport = [\"1:1\"]\n", -1, &spec,
                          &err),
                    0);
  assert_null (err);
  assert_non_null (warnings);
  assert_non_null (strstr (warnings, "agentkernel.toml:2: unknown key 'netwrok' in [security] (did you mean 'network'?)"));
  assert_non_null (strstr (warnings, ":3: unknown table 'extra'"));
  assert_non_null (strstr (warnings, "[build] is not yet supported; ignored"));
  assert_non_null (strstr (warnings, ":7: unknown key 'port' in [network] (did you mean 'ports'?)"));
  assert_null (spec.ports);
  assert_true (ak_spec_sec (&spec, AK_SEC_NETWORK));
  ak_spec_clear (&spec);
}

static void
test_errors (void **state)
{
  char *f, *link;
  (void) state;
  expect_error ("\n[security]\nnetwork = \"no\"\n", ":3:", "[security] network: expected a boolean, got string");
  expect_error ("[security]\nprofile = \"paranoid\"\n", ":2:", "unknown profile 'paranoid'");
  expect_error ("[security]\nprofile = 1\n", ":2:", "profile");
  expect_error ("[sandbox]\nname = \"bad name!\"\n", ":2:", "[sandbox] name");
  expect_error ("[sandbox]\nname = \"\"\n", ":2:", "[sandbox] name");
  expect_error ("[agent]\ncompatibility_mode = \"vim\"\n", ":2:", "compatibility_mode");
  expect_error ("[network]\nports = [\"80\"]\n", ":2:", "[network] ports: publish '80'");
  expect_error ("[network]\nports = \"8080:80\"\n", ":2:", "[network] ports: expected an array");
  expect_error ("[network]\nports = [\"8080:80\", \"8080:81\"]\n", ":2:", "published twice");
  expect_error ("[resources]\nmemory_mb = -1\n", ":2:", "memory_mb");
  expect_error ("[resources]\ncpu = 0.0\n", ":2:", "cpu");
  expect_error ("[resources]\npids = \"many\"\n", ":2:", "pids: expected an integer");
  expect_error ("[security]\nnetwork = \n", ":2:", NULL); /* syntax: FILE:LINE:COL */

  f = write_tmp ("in.txt", "x");
  free (f);
  expect_error ("[[files]]\nsource = \"in.txt\"\ndest = \"etc/x\"\n", ":3:", "dest");
  expect_error ("[[files]]\nsource = \"in.txt\"\ndest = \"/etc/../x\"\n", ":3:", "dest");
  expect_error ("[[files]]\nsource = \"missing.txt\"\ndest = \"/x\"\n", ":1:", "source 'missing.txt'");
  expect_error ("[[files]]\nsource = \"../../etc/passwd\"\ndest = \"/x\"\n", ":1:", "outside");
  expect_error ("[[files]]\nsource = \"/etc/passwd\"\ndest = \"/x\"\n", ":1:", "outside");
  link = ak_xasprintf ("%s/link", tmpdir);
  assert_int_equal (symlink ("/etc/passwd", link), 0);
  free (link);
  expect_error ("[[files]]\nsource = \"link\"\ndest = \"/x\"\n", ":1:", "outside");
  link = ak_xasprintf ("%s/sub", tmpdir);
  assert_int_equal (mkdir (link, 0755), 0);
  free (link);
  expect_error ("[[files]]\nsource = \"sub\"\ndest = \"/x\"\n", ":1:", "not a regular file");
  expect_error ("[[files]]\ndest = \"/x\"\n", ":1:", "source");
}

static void
test_syntax_error_position (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (load ("[security]\nnetwork = tru\n", -1, &spec, &err), -1);
  assert_non_null (strstr (err->msg, "agentkernel.toml:2:"));
  ak_error_free (err);
  ak_spec_clear (&spec);
}

static void
test_edit_distance (void **state)
{
  (void) state;
  assert_int_equal (ak_edit_distance ("network", "network"), 0);
  assert_int_equal (ak_edit_distance ("netwrok", "network"), 2);
  assert_int_equal (ak_edit_distance ("", "abc"), 3);
  assert_int_equal (ak_edit_distance ("kitten", "sitting"), 3);
}

/* An untrusted file (a found ./agentkernel.toml) over a profile: every
 * widening is dropped, named in a warning and in the refused list; every
 * tightening applies. */
static void
untrusted (const char *text, int cli_profile, ak_spec_t *spec, char ***refused)
{
  const char *path = "agentkernel.toml";
  ak_config_opts_t o = { .profile_from_cli = cli_profile >= 0, .untrusted = true, .refused = refused };
  ak_error_t *err = NULL;
  _cleanup_free_ char *full = write_tmp (path, text);

  ak_spec_init (spec);
  if (cli_profile >= 0)
    ak_spec_set_profile (spec, (ak_profile_t) cli_profile, AK_SRC_CLI);
  assert_int_equal (ak_config_apply_buf (full, text, strlen (text), &o, spec, &err), 0);
}

static void
test_untrusted_only_tightens (void **state)
{
  ak_spec_t spec;
  _cleanup_strv_ char **refused = NULL;
  (void) state;

  untrusted ("[security]\nprofile = \"permissive\"\nmount_home = true\nnetwork = true\n"
             "read_only = false\npass_env = true\nmount_cwd = true\n"
             "[resources]\nmemory_mb = 0\npids = 100000\ncpu = 2\n",
             AK_PROFILE_RESTRICTIVE, &spec, &refused);
  assert_int_equal (spec.sec.profile, AK_PROFILE_RESTRICTIVE);
  for (int k = 0; k < AK_SEC_N; k++)
    assert_int_equal (ak_spec_sec (&spec, (ak_sec_key_t) k), k == AK_SEC_READ_ONLY);
  assert_int_equal (spec.res.memory_mb, 256);
  assert_int_equal (spec.res.pids, 256);
  assert_int_equal (spec.res.cpu_millis, 500);
  assert_int_equal (ak_strv_len (refused), 8);
  assert_string_equal (refused[0], "3: [security] mount_home = true");
  assert_non_null (strstr (warnings, "agentkernel.toml:3: [security] mount_home = true ignored"));
  assert_non_null (strstr (warnings, "config trust"));
  ak_spec_clear (&spec);

  /* Without --profile, the file cannot go below the default moderate. */
  untrusted ("[security]\nprofile = \"permissive\"\n", -1, &spec, NULL);
  assert_int_equal (spec.sec.profile, AK_PROFILE_MODERATE);
  assert_false (ak_spec_sec (&spec, AK_SEC_MOUNT_HOME));
  ak_spec_clear (&spec);

  /* Nor publish a port. */
  untrusted ("[network]\nports = [\"0.0.0.0:8080:80\"]\n", -1, &spec, NULL);
  assert_null (spec.ports);
  assert_non_null (strstr (warnings, "agentkernel.toml:2: [network] ports = [\"0.0.0.0:8080:80\"] ignored"));
  ak_spec_clear (&spec);

  /* Tightening applies: a stricter profile, keys, lower limits. */
  untrusted ("[security]\nprofile = \"restrictive\"\n[resources]\npids = 10\n", -1, &spec, NULL);
  assert_int_equal (spec.sec.profile, AK_PROFILE_RESTRICTIVE);
  assert_int_equal (spec.res.pids, 10);
  ak_spec_clear (&spec);
  untrusted ("[security]\nnetwork = false\nread_only = true\n", AK_PROFILE_PERMISSIVE, &spec, NULL);
  assert_false (ak_spec_sec (&spec, AK_SEC_NETWORK));
  assert_true (ak_spec_sec (&spec, AK_SEC_READ_ONLY));
  assert_true (ak_spec_sec (&spec, AK_SEC_MOUNT_HOME));
  ak_spec_clear (&spec);
}

/* [resources] log_mb and disk_mb: values, their range, and what an
 * untrusted file may change (only tighten). */
static void
test_log_and_disk (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  _cleanup_strv_ char **refused = NULL;
  (void) state;

  assert_int_equal (load ("[resources]\nlog_mb = 4\ndisk_mb = 100\n", -1, &spec, &err), 0);
  assert_int_equal (spec.res.log_mb, 4);
  assert_int_equal (spec.res.disk_mb, 100);
  assert_int_equal (spec.res_source[4], AK_SRC_CONFIG);
  assert_int_equal (spec.res_source[5], AK_SRC_CONFIG);
  ak_spec_clear (&spec);
  /* Unset: the default cap (0 in the spec), no disk limit. */
  assert_int_equal (load ("[resources]\npids = 5\n", -1, &spec, &err), 0);
  assert_int_equal (spec.res.log_mb, 0);
  assert_int_equal (spec.res.disk_mb, 0);
  assert_int_equal (spec.res_source[4], AK_SRC_DEFAULT);
  ak_spec_clear (&spec);
  assert_int_equal (load ("[resources]\nlog_mb = 65536\ndisk_mb = 0\n", -1, &spec, &err), 0);
  assert_int_equal (spec.res.log_mb, AK_LOG_MB_MAX);
  ak_spec_clear (&spec);

  expect_error ("[resources]\nlog_mb = 0\n", ":2:", "log_mb: expected 1 to 65536 MiB, got 0");
  expect_error ("\n[resources]\nlog_mb = 65537\n", ":3:", "log_mb: expected 1 to 65536 MiB, got 65537");
  expect_error ("[resources]\nlog_mb = -1\n", ":2:", "log_mb");
  expect_error ("[resources]\nlog_mb = \"16M\"\n", ":2:", "log_mb: expected an integer");
  expect_error ("[resources]\nlog_mb = 1.5\n", ":2:", "log_mb: expected an integer");
  expect_error ("[resources]\ndisk_mb = -1\n", ":2:", "disk_mb");
  expect_error ("[resources]\ndisk_mb = 16777217\n", ":2:", "disk_mb: 16777217 is out of range");
  expect_error ("[resources]\ndisk_mb = true\n", ":2:", "disk_mb: expected an integer");

  /* Untrusted: a smaller log and a disk limit where there was none apply;
   * a bigger log is refused and named. */
  untrusted ("[resources]\nlog_mb = 4\ndisk_mb = 50\n", -1, &spec, &refused);
  assert_int_equal (spec.res.log_mb, 4);
  assert_int_equal (spec.res.disk_mb, 50);
  assert_int_equal (ak_strv_len (refused), 0);
  ak_spec_clear (&spec);
  untrusted ("[resources]\nlog_mb = 64\n", -1, &spec, &refused);
  assert_int_equal (spec.res.log_mb, 0);
  assert_int_equal (ak_strv_len (refused), 1);
  assert_string_equal (refused[0], "2: [resources] log_mb = 64");
  assert_non_null (strstr (warnings, "agentkernel.toml:2: [resources] log_mb = 64 ignored"));
  ak_spec_clear (&spec);
  ak_strv_free (refused);
  refused = NULL;

  /* Over a disk limit already in force: only a smaller one applies. */
  for (int k = 0; k < 3; k++)
    {
      static const char *const text[] = { "[resources]\ndisk_mb = 100\n", "[resources]\ndisk_mb = 0\n",
                                          "[resources]\ndisk_mb = 20\n" };
      ak_config_opts_t o = { .untrusted = true, .refused = &refused };
      _cleanup_free_ char *full = write_tmp ("agentkernel.toml", text[k]);
      ak_spec_init (&spec);
      spec.res.disk_mb = 50;
      spec.res_source[5] = AK_SRC_CLI;
      assert_int_equal (ak_config_apply_buf (full, text[k], strlen (text[k]), &o, &spec, &err), 0);
      assert_int_equal (spec.res.disk_mb, k == 2 ? 20 : 50);
      assert_int_equal (ak_strv_len (refused), k == 2 ? 0 : 1);
      ak_spec_clear (&spec);
      ak_strv_free (refused);
      refused = NULL;
    }
}

static const char deny_mkdir[]
    = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\", "
      "\"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}]}";

/* [security] seccomp: names, files, and what each error says. */
static void
test_seccomp_key (void **state)
{
  ak_spec_t spec;
  ak_error_t *err = NULL;
  _cleanup_free_ char *prof = write_tmp ("deny.json", deny_mkdir);
  (void) state;

  assert_int_equal (load ("[security]\nseccomp = \"ai-agent\"\n", -1, &spec, &err), 0);
  assert_int_equal (spec.sec.seccomp.kind, AK_SECCOMP_AI_AGENT);
  assert_int_equal (spec.sec.seccomp.source, AK_SRC_CONFIG);
  assert_int_equal (spec.sec.seccomp.line, 2);
  ak_spec_clear (&spec);
  /* "default" follows the profile */
  assert_int_equal (load ("[security]\nprofile = \"restrictive\"\nseccomp = \"default\"\n", -1,
                          &spec, &err),
                    0);
  assert_int_equal (ak_seccomp_builtin (&spec), AK_SECCOMP_RESTRICTIVE);
  ak_spec_clear (&spec);
  /* a file relative to the config file's directory, on top of the floor */
  assert_int_equal (load ("[security]\nseccomp = \"deny.json\"\n", -1, &spec, &err), 0);
  assert_int_equal (spec.sec.seccomp.kind, AK_SECCOMP_CUSTOM);
  assert_int_equal (spec.sec.seccomp.under, AK_SECCOMP_PERMISSIVE);
  assert_string_equal (spec.sec.seccomp.text, deny_mkdir);
  assert_non_null (strstr (spec.sec.seccomp.file, "/deny.json"));
  ak_spec_clear (&spec);

  expect_error ("[security]\nseccomp = \"strict\"\n", ":2:", "unknown seccomp profile 'strict'");
  expect_error ("\n[security]\nseccomp = 3\n", ":3:", "expected a string");
  expect_error ("[security]\nseccomp = \"missing.json\"\n", ":2:", "missing.json");
  free (write_tmp ("bad.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [}"));
  expect_error ("[security]\nseccomp = \"bad.json\"\n", ":2:", "bad.json:2:");
  free (write_tmp ("bad2.json", "{\"defaultAction\": \"SCMP_ACT_ALLOWED\"}"));
  expect_error ("[security]\nseccomp = \"./bad2.json\"\n", ":2:", "unknown action 'SCMP_ACT_ALLOWED'");
}

/* An untrusted file may only tighten the filter: a stricter built-in, or
 * a profile of its own stacked on the filter in force. */
static void
test_seccomp_untrusted (void **state)
{
  ak_spec_t spec;
  _cleanup_strv_ char **refused = NULL;
  _cleanup_free_ char *prof = write_tmp ("deny.json", deny_mkdir);
  _cleanup_free_ char *link = ak_xasprintf ("%s/link.json", tmpdir);
  const char *path = "agentkernel.toml";
  ak_config_opts_t o = { .untrusted = true };
  ak_error_t *err = NULL;
  _cleanup_free_ char *full = NULL;
  const char *text;
  (void) state;

  untrusted ("[security]\nseccomp = \"permissive\"\n", -1, &spec, &refused);
  assert_int_equal (ak_seccomp_builtin (&spec), AK_SECCOMP_MODERATE);
  assert_int_equal (ak_strv_len (refused), 1);
  assert_non_null (strstr (warnings, "seccomp = \"permissive\" ignored"));
  ak_spec_clear (&spec);
  untrusted ("[security]\nseccomp = \"moderate\"\n", AK_PROFILE_RESTRICTIVE, &spec, NULL);
  assert_int_equal (ak_seccomp_builtin (&spec), AK_SECCOMP_RESTRICTIVE);
  ak_spec_clear (&spec);
  untrusted ("[security]\nseccomp = \"ai-agent\"\n", -1, &spec, NULL);
  assert_int_equal (ak_seccomp_builtin (&spec), AK_SECCOMP_AI_AGENT);
  ak_spec_clear (&spec);
  /* a custom profile goes on top of what is in force, never instead */
  untrusted ("[security]\nseccomp = \"deny.json\"\n", -1, &spec, NULL);
  assert_int_equal (spec.sec.seccomp.kind, AK_SECCOMP_CUSTOM);
  assert_int_equal (spec.sec.seccomp.under, AK_SECCOMP_MODERATE);
  ak_spec_clear (&spec);
  untrusted ("[security]\nprofile = \"restrictive\"\nseccomp = \"deny.json\"\n", -1, &spec, NULL);
  assert_int_equal (spec.sec.seccomp.under, AK_SECCOMP_RESTRICTIVE);
  ak_spec_clear (&spec);

  /* no way out of the config file's directory, no symlink */
  assert_int_equal (symlink (prof, link), 0);
  text = "[security]\nseccomp = \"link.json\"\n";
  full = write_tmp (path, text);
  ak_spec_init (&spec);
  assert_int_equal (ak_config_apply_buf (full, text, strlen (text), &o, &spec, &err), -1);
  assert_non_null (strstr (err->msg, "agentkernel.toml:2: [security] seccomp"));
  assert_non_null (strstr (err->msg, "symlink"));
  ak_error_free (err);
  err = NULL;
  ak_spec_clear (&spec);
  text = "[security]\nseccomp = \"/etc/passwd.json\"\n";
  ak_spec_init (&spec);
  assert_int_equal (ak_config_apply_buf (full, text, strlen (text), &o, &spec, &err), -1);
  assert_non_null (strstr (err->msg, "outside the config file's directory"));
  ak_error_free (err);
  err = NULL;
  ak_spec_clear (&spec);
  text = "[security]\nseccomp = \"../deny.json\"\n";
  ak_spec_init (&spec);
  assert_int_equal (ak_config_apply_buf (full, text, strlen (text), &o, &spec, &err), -1);
  assert_non_null (strstr (err->msg, "outside the config file's directory"));
  ak_error_free (err);
  ak_spec_clear (&spec);
}


/* [daemon]: pool size and shapes; bad values are errors naming the line;
 * the table is known to the sandbox loader (no "unknown table" warning). */
static void
test_daemon_table (void **state)
{
  ak_daemon_conf_t d;
  ak_error_t *err = NULL;
  ak_spec_t spec;
  char *path = write_tmp ("d.toml", "[daemon]\npool_size = 3\nshapes = [{ profile = \"restrictive\" },\n"
                                    "  { profile = \"moderate\", image = \"host\", network = false }]\n");
  (void) state;

  assert_int_equal (ak_config_daemon (path, &d, &err), 0);
  assert_int_equal (d.pool_size, 3);
  assert_int_equal (d.n_shapes, 2);
  assert_string_equal (d.shapes[0].profile, "restrictive");
  assert_int_equal (d.shapes[0].network, -1);
  assert_null (d.shapes[0].image);
  assert_string_equal (d.shapes[1].image, "host");
  assert_int_equal (d.shapes[1].network, 0);
  ak_daemon_conf_clear (&d);
  free (path);

  assert_int_equal (ak_config_daemon (NULL, &d, &err), 0);
  assert_int_equal (d.pool_size, AK_DAEMON_POOL_SIZE_DEFAULT);
  assert_int_equal (d.n_shapes, 0);

  path = write_tmp ("d.toml", "[daemon]\npool_size = 0\n");
  assert_int_equal (ak_config_daemon (path, &d, &err), -1);
  assert_non_null (strstr (err->msg, "d.toml:2: [daemon] pool_size"));
  ak_error_free (err), err = NULL;
  free (path);
  path = write_tmp ("d.toml", "[daemon]\nshapes = [{ profile = 3 }]\n");
  assert_int_equal (ak_config_daemon (path, &d, &err), -1);
  assert_non_null (strstr (err->msg, "profile"));
  ak_error_free (err), err = NULL;
  free (path);

  assert_int_equal (load ("[daemon]\npool_size = 1\n", -1, &spec, &err), 0);
  assert_null (warnings);
  ak_spec_clear (&spec);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_profile_default, setup, teardown),
    cmocka_unit_test_setup_teardown (test_profile_from_config, setup, teardown),
    cmocka_unit_test_setup_teardown (test_profile_cli_wins, setup, teardown),
    cmocka_unit_test_setup_teardown (test_key_over_profile, setup, teardown),
    cmocka_unit_test_setup_teardown (test_untouched, setup, teardown),
    cmocka_unit_test_setup_teardown (test_full_schema, setup, teardown),
    cmocka_unit_test_setup_teardown (test_unknown_key_warns, setup, teardown),
    cmocka_unit_test_setup_teardown (test_errors, setup, teardown),
    cmocka_unit_test_setup_teardown (test_syntax_error_position, setup, teardown),
    cmocka_unit_test (test_edit_distance),
    cmocka_unit_test_setup_teardown (test_untrusted_only_tightens, setup, teardown),
    cmocka_unit_test_setup_teardown (test_log_and_disk, setup, teardown),
    cmocka_unit_test_setup_teardown (test_seccomp_key, setup, teardown),
    cmocka_unit_test_setup_teardown (test_seccomp_untrusted, setup, teardown),
    cmocka_unit_test_setup_teardown (test_daemon_table, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
