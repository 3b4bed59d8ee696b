/* Labels and descriptions (model/labels.h), the API's forms of them
 * (server/request.h), and their place in a sandbox's stored state. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "model/labels.h"
#include "server/request.h"
#include "service/store.h"

static void
test_keys_and_values (void **state)
{
  (void) state;
  assert_true (ak_label_key_valid ("team"));
  assert_true (ak_label_key_valid ("app.kubernetes.io/name"));
  assert_true (ak_label_key_valid ("a-b_c9"));
  assert_false (ak_label_key_valid (""));
  assert_false (ak_label_key_valid ("-x"));
  assert_false (ak_label_key_valid ("a b"));
  assert_false (ak_label_key_valid ("a=b"));
  assert_false (ak_label_key_valid ("a:b"));
  {
    char k[65];
    memset (k, 'k', 64);
    k[64] = '\0';
    assert_false (ak_label_key_valid (k));
    k[63] = '\0';
    assert_true (ak_label_key_valid (k));
  }
  assert_int_equal (ak_label_check ("k", "", NULL), 0);
  assert_int_equal (ak_label_check ("k", "héllo: a=b", NULL), 0);
  assert_int_equal (ak_label_check ("k", "a\nb", NULL), -1);
  assert_int_equal (ak_label_check ("k", "\xc2\x85", NULL), -1);  /* C1 control */
  assert_int_equal (ak_label_check ("k", "\xc0\xaf", NULL), -1);  /* overlong */
  assert_int_equal (ak_label_check ("k", "\xed\xa0\x80", NULL), -1); /* surrogate */
  assert_int_equal (ak_description_check ("two\nlines\tand a tab", NULL), 0);
  assert_int_equal (ak_description_check ("bell\a", NULL), -1);
}

static void
test_set_unset_match (void **state)
{
  char **l = NULL;
  ak_error_t *err = NULL;
  (void) state;
  assert_int_equal (ak_labels_set_kv (&l, "team=ml", &err), 0);
  assert_int_equal (ak_labels_set_kv (&l, "env=a=b", &err), 0);
  assert_int_equal (ak_labels_set_kv (&l, "team=core", &err), 0);
  assert_int_equal (ak_strv_len (l), 2);
  assert_string_equal (l[0], "env=a=b"); /* sorted by key */
  assert_string_equal (ak_labels_get (l, "team"), "core");
  assert_true (ak_labels_match (l, "team:core"));
  assert_true (ak_labels_match (l, "env"));
  assert_true (ak_labels_match (l, "env:a=b"));
  assert_false (ak_labels_match (l, "team:ml"));
  assert_false (ak_labels_match (l, "te"));
  assert_int_equal (ak_labels_set_kv (&l, "novalue", &err), -1);
  assert_int_equal (err->code, EINVAL);
  ak_error_free (err);
  err = NULL;
  ak_labels_unset (l, "env");
  ak_labels_unset (l, "absent");
  assert_int_equal (ak_strv_len (l), 1);
  for (int i = 0; i < AK_LABELS_MAX - 1; i++)
    {
      char kv[32];
      snprintf (kv, sizeof kv, "k%d=v", i);
      assert_int_equal (ak_labels_set_kv (&l, kv, NULL), 0);
    }
  assert_int_equal (ak_labels_set_kv (&l, "one-too-many=v", &err), -1);
  assert_non_null (strstr (err->msg, "too many"));
  ak_error_free (err);
  assert_int_equal (ak_labels_set_kv (&l, "team=still-replaceable", NULL), 0);
  ak_strv_free (l);
  assert_int_equal (ak_label_filter_check ("team:ml", NULL), 0);
  assert_int_equal (ak_label_filter_check ("team", NULL), 0);
  assert_int_equal (ak_label_filter_check (":ml", NULL), -1);
  assert_int_equal (ak_label_filter_check ("", NULL), -1);
}

static json_t *
body (const char *text)
{
  json_t *j = ak_api_parse_body (text, strlen (text), NULL);
  assert_non_null (j);
  return j;
}

static void
test_api_forms (void **state)
{
  ak_api_create_t c;
  ak_api_patch_t p;
  ak_error_t *err = NULL;
  json_t *j;
  (void) state;

  j = body ("{\"name\": \"x\", \"labels\": {\"b\": \"2\", \"a\": \"1\"}, \"description\": \"d\"}");
  assert_int_equal (ak_api_parse_create (j, &c, &err), 0);
  assert_int_equal (ak_strv_len (c.labels), 2);
  assert_string_equal (c.description, "d");
  ak_api_create_clear (&c);
  json_decref (j);
  for (const char *const *t = (const char *const[]){ "{\"name\": \"x\", \"labels\": {\"a b\": \"1\"}}",
                                                     "{\"name\": \"x\", \"labels\": {\"a\": null}}",
                                                     "{\"name\": \"x\", \"labels\": \"a=1\"}",
                                                     "{\"name\": \"x\", \"description\": \"a\\u0007\"}", NULL };
       *t; t++)
    {
      j = body (*t);
      err = NULL;
      assert_int_equal (ak_api_parse_create (j, &c, &err), -1);
      assert_int_equal (err->code, EINVAL);
      ak_error_free (err);
      ak_api_create_clear (&c);
      json_decref (j);
    }
  err = NULL;
  j = body ("{\"labels\": {\"a\": null, \"b\": \"x\"}, \"description\": null}");
  assert_int_equal (ak_api_parse_patch (j, &p, &err), 0);
  assert_string_equal (p.set[0], "b=x");
  assert_string_equal (p.unset[0], "a");
  assert_string_equal (p.description, "");
  ak_api_patch_clear (&p);
  json_decref (j);
  j = body ("{}");
  assert_int_equal (ak_api_parse_patch (j, &p, &err), -1);
  assert_int_equal (err->code, EINVAL);
  ak_error_free (err);
  ak_api_patch_clear (&p);
  json_decref (j);
}

static void
test_stored (void **state)
{
  char tmpl[] = "/tmp/ak-labels-XXXXXX";
  ak_spec_t spec;
  ak_record_t r = { 0 };
  ak_error_t *err = NULL;
  (void) state;

  assert_non_null (mkdtemp (tmpl));
  setenv ("AGENTKERNEL_STATE_DIR", tmpl, 1);
  ak_spec_init (&spec);
  spec.name = ak_xstrdup ("lab");
  ak_labels_set_kv (&spec.labels, "team=ml", NULL);
  spec.description = ak_xstrdup ("desc");
  assert_int_equal (ak_store_create (&spec, NULL, &err), 0);
  assert_int_equal (ak_store_load ("lab", &r, &err), 0);
  assert_string_equal (ak_labels_get (r.labels, "team"), "ml");
  assert_string_equal (r.description, "desc");
  /* A later save keeps them (and what it changed). */
  ak_labels_set_kv (&r.labels, "env=dev", NULL);
  assert_int_equal (ak_store_save_state (&r, &err), 0);
  ak_record_clear (&r);
  assert_int_equal (ak_store_load ("lab", &r, &err), 0);
  assert_int_equal (ak_strv_len (r.labels), 2);
  ak_record_clear (&r);
  assert_int_equal (ak_store_remove ("lab", &err), 0);
  ak_spec_clear (&spec);
  {
    char cmd[64];
    snprintf (cmd, sizeof cmd, "rm -rf %s", tmpl);
    assert_int_equal (system (cmd), 0);
  }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_keys_and_values),
    cmocka_unit_test (test_set_unset_match),
    cmocka_unit_test (test_api_forms),
    cmocka_unit_test (test_stored),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
