/* Unit tests of the TOML API: lookups, positions, errors, getters,
 * ownership.  Conformance to the TOML grammar itself is covered by the
 * toml-test suite (tests/toml/run-toml-test.sh). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "model/toml.h"

static ak_toml_t *
parse_ok (const char *text)
{
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;
  int rc = ak_toml_parse (text, strlen (text), "test.toml", &doc, &err);
  if (rc != 0)
    fail_msg ("unexpected parse error: %s", err->msg);
  assert_non_null (doc);
  return doc;
}

/* Parses text, expects failure, returns the message (caller frees). */
static char *
parse_err (const char *text, const char *filename)
{
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;
  int rc = ak_toml_parse (text, strlen (text), filename, &doc, &err);
  assert_int_equal (rc, -1);
  assert_null (doc);
  assert_non_null (err);
  char *msg = ak_xstrdup (err->msg);
  ak_error_free (err);
  return msg;
}

static char *
repeat (const char *prefix, const char *unit, size_t n, const char *suffix)
{
  size_t lp = strlen (prefix), lu = strlen (unit), ls = strlen (suffix);
  char *s = ak_xmalloc (lp + lu * n + ls + 1);
  memcpy (s, prefix, lp);
  for (size_t i = 0; i < n; i++)
    memcpy (s + lp + i * lu, unit, lu);
  memcpy (s + lp + lu * n, suffix, ls + 1);
  return s;
}

static void
assert_error (const char *text, const char *expected)
{
  char *msg = parse_err (text, "f.toml");
  if (strcmp (msg, expected) != 0)
    fail_msg ("expected error \"%s\", got \"%s\"", expected, msg);
  free (msg);
}

static void
test_lookup_and_getters (void **state)
{
  ak_toml_t *doc = parse_ok ("name = \"box\"\n"
                             "cpus = 4\n"
                             "ratio = 0.5\n"
                             "net = true\n"
                             "when = 1979-05-27T07:32:00.25-07:30\n"
                             "[limits]\n"
                             "memory = 0x10\n");
  const ak_toml_value_t *root = ak_toml_root (doc);
  const char *s = NULL;
  size_t len = 0;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  ak_toml_datetime_t dt;

  assert_int_equal (ak_toml_type (root), AK_TOML_TABLE);
  assert_int_equal (ak_toml_table_len (root), 6);
  assert_true (ak_toml_as_string (ak_toml_table_get (root, "name"), &s, &len));
  assert_string_equal (s, "box");
  assert_int_equal (len, 3);
  assert_true (ak_toml_as_int (ak_toml_table_get (root, "cpus"), &i));
  assert_int_equal (i, 4);
  assert_true (ak_toml_as_float (ak_toml_table_get (root, "ratio"), &d));
  assert_true (d == 0.5);
  assert_true (ak_toml_as_bool (ak_toml_table_get (root, "net"), &b));
  assert_true (b);
  assert_true (ak_toml_as_datetime (ak_toml_table_get (root, "when"), &dt));
  assert_int_equal (ak_toml_type (ak_toml_table_get (root, "when")), AK_TOML_DATETIME);
  assert_int_equal (dt.year, 1979);
  assert_int_equal (dt.month, 5);
  assert_int_equal (dt.day, 27);
  assert_int_equal (dt.hour, 7);
  assert_int_equal (dt.minute, 32);
  assert_int_equal (dt.second, 0);
  assert_int_equal (dt.nanosecond, 250000000);
  assert_int_equal (dt.offset_minutes, -(7 * 60 + 30));

  const ak_toml_value_t *limits = ak_toml_table_get (root, "limits");
  assert_int_equal (ak_toml_type (limits), AK_TOML_TABLE);
  assert_true (ak_toml_as_int (ak_toml_table_get (limits, "memory"), &i));
  assert_int_equal (i, 16);

  assert_null (ak_toml_table_get (root, "missing"));
  assert_null (ak_toml_table_get (root, NULL));
  /* Lookups on a non-table are misses, not crashes. */
  assert_null (ak_toml_table_get (ak_toml_table_get (root, "cpus"), "x"));
  assert_int_equal (ak_toml_table_len (ak_toml_table_get (root, "cpus")), 0);
  ak_toml_free (doc);
}

static void
test_getters_are_strict (void **state)
{
  ak_toml_t *doc = parse_ok ("i = 1\nf = 1.0\ns = \"1\"\n");
  const ak_toml_value_t *root = ak_toml_root (doc);
  int64_t i = 42;
  double d = 42;
  bool b = true;
  const char *s = "untouched";

  /* Wrong type: false, and the output is left alone. */
  assert_false (ak_toml_as_float (ak_toml_table_get (root, "i"), &d));
  assert_true (d == 42);
  assert_false (ak_toml_as_int (ak_toml_table_get (root, "f"), &i));
  assert_int_equal (i, 42);
  assert_false (ak_toml_as_bool (ak_toml_table_get (root, "s"), &b));
  assert_true (b);
  assert_false (ak_toml_as_string (ak_toml_table_get (root, "i"), &s, NULL));
  assert_string_equal (s, "untouched");
  assert_false (ak_toml_as_datetime (ak_toml_table_get (root, "s"), NULL));
  assert_false (ak_toml_as_int (NULL, &i));
  /* NULL out pointers only test the type. */
  assert_true (ak_toml_as_int (ak_toml_table_get (root, "i"), NULL));
  ak_toml_free (doc);
}

static void
test_type_names (void **state)
{
  assert_string_equal (ak_toml_type_name (AK_TOML_STRING), "string");
  assert_string_equal (ak_toml_type_name (AK_TOML_INTEGER), "integer");
  assert_string_equal (ak_toml_type_name (AK_TOML_FLOAT), "float");
  assert_string_equal (ak_toml_type_name (AK_TOML_BOOL), "boolean");
  assert_string_equal (ak_toml_type_name (AK_TOML_DATETIME), "datetime");
  assert_string_equal (ak_toml_type_name (AK_TOML_DATETIME_LOCAL), "local datetime");
  assert_string_equal (ak_toml_type_name (AK_TOML_DATE_LOCAL), "local date");
  assert_string_equal (ak_toml_type_name (AK_TOML_TIME_LOCAL), "local time");
  assert_string_equal (ak_toml_type_name (AK_TOML_ARRAY), "array");
  assert_string_equal (ak_toml_type_name (AK_TOML_TABLE), "table");
}

static void
test_iteration_order_and_key_lines (void **state)
{
  ak_toml_t *doc = parse_ok ("# comment\n"
                             "zeta = 1\n"
                             "alpha = 2\n"
                             "\n"
                             "  mid.x = 3\n"
                             "[sec]\n"
                             "  k = 'v'\n");
  const ak_toml_value_t *root = ak_toml_root (doc);
  static const char *const keys[] = { "zeta", "alpha", "mid", "sec" };
  static const unsigned lines[] = { 2, 3, 5, 6 };
  static const unsigned columns[] = { 1, 1, 3, 2 };
  ak_toml_entry_t e;
  size_t it = 0, n = 0;

  while (ak_toml_table_next (root, &it, &e))
    {
      assert_true (n < 4);
      assert_string_equal (e.key, keys[n]);
      assert_int_equal (e.key_len, strlen (keys[n]));
      assert_int_equal (e.line, lines[n]);
      assert_int_equal (e.column, columns[n]);
      n++;
    }
  assert_int_equal (n, 4);
  assert_false (ak_toml_table_entry (root, 4, &e));

  assert_true (ak_toml_table_find (ak_toml_table_get (root, "sec"), "k", &e));
  assert_int_equal (e.line, 7);
  assert_int_equal (e.column, 3);
  assert_int_equal (ak_toml_line (e.value), 7);
  assert_int_equal (ak_toml_column (e.value), 7);
  assert_false (ak_toml_table_find (root, "nope", &e));
  ak_toml_free (doc);
}

static void
test_value_positions (void **state)
{
  ak_toml_t *doc = parse_ok ("a = [1,\n"
                             "     {x = \"é\", y = 2}]\n"
                             "[t.u]\n"
                             "[[arr]]\n"
                             "[[arr]]\n"
                             "k = 1\n"
                             "[t]\n");
  const ak_toml_value_t *root = ak_toml_root (doc);
  const ak_toml_value_t *a = ak_toml_table_get (root, "a");
  ak_toml_entry_t e;

  assert_int_equal (ak_toml_line (root), 1);
  assert_int_equal (ak_toml_line (a), 1);
  assert_int_equal (ak_toml_column (a), 5);
  assert_int_equal (ak_toml_array_len (a), 2);
  const ak_toml_value_t *inl = ak_toml_array_get (a, 1);
  assert_int_equal (ak_toml_line (inl), 2);
  assert_int_equal (ak_toml_column (inl), 6);
  /* Columns count characters: "é" is one column but two bytes. */
  assert_true (ak_toml_table_find (inl, "y", &e));
  assert_int_equal (e.line, 2);
  assert_int_equal (e.column, 16);
  assert_null (ak_toml_array_get (a, 2));

  /* t is implied on line 3, then defined by its own header on line 7. */
  const ak_toml_value_t *t = ak_toml_table_get (root, "t");
  assert_int_equal (ak_toml_line (t), 7);
  assert_int_equal (ak_toml_line (ak_toml_table_get (t, "u")), 3);

  const ak_toml_value_t *arr = ak_toml_table_get (root, "arr");
  assert_int_equal (ak_toml_type (arr), AK_TOML_ARRAY);
  assert_int_equal (ak_toml_array_len (arr), 2);
  assert_int_equal (ak_toml_line (ak_toml_array_get (arr, 0)), 4);
  assert_int_equal (ak_toml_line (ak_toml_array_get (arr, 1)), 5);
  assert_true (ak_toml_table_find (ak_toml_array_get (arr, 1), "k", &e));
  assert_int_equal (e.line, 6);
  ak_toml_free (doc);
}

static void
test_error_positions (void **state)
{
  assert_error ("a = 1\nb = \n", "f.toml:2:5: expected a value, found end of line");
  assert_error ("a = 1\n  b = 1 2\n", "f.toml:2:9: expected end of line after a value, found '2'");
  assert_error ("s = \"é\\q\"", "f.toml:1:8: invalid escape sequence: backslash followed by 'q'");
  assert_error ("a = 1\na = 2\n", "f.toml:2:1: duplicate key 'a' (first defined at line 1)");
  assert_error ("[a]\nx = 1\n[a]\n",
                "f.toml:3:2: cannot define table [a]: 'a' is already a table defined by a header "
                "(line 1)");
  assert_error ("a = {b = 1}\n[a.c]\n",
                "f.toml:2:2: cannot define table [a.c]: 'a' is already an inline table (line 1)");
  assert_error ("a = 1\nb.c = \"x\nd = 2\n",
                "f.toml:2:7: unterminated string (newline before the closing quote)");
  assert_error ("x = 9223372036854775808\n", "f.toml:1:5: integer out of range (64-bit signed)");
  assert_error ("d = 2023-02-29\n", "f.toml:1:5: invalid date: day 29 out of range for 2023-02");
  assert_error ("ok = 1\n\x01", "f.toml:2:1: expected a key or a table header, found U+0001");
  assert_error ("bad = \"\xff\"", "f.toml:1:8: invalid UTF-8 (byte 0xff)");
  assert_error ("t = {a = 1,}\n", "f.toml:1:12: trailing comma in an inline table");

  char *msg = parse_err ("= 1", NULL);
  assert_string_equal (msg, "<input>:1:1: expected a key or a table header, found '='");
  free (msg);

  /* Key names in messages are cut short; the position locates the rest. */
  char *key = repeat ("", "\xc3\xa9", 300, "");
  char *text = ak_xasprintf ("\"%s\" = 1\n\"%s\" = 2\n", key, key);
  msg = parse_err (text, NULL);
  assert_true (strlen (msg) < 300);
  assert_non_null (strstr (msg, "...' (first defined at line 1)"));
  static const char head[] = "<input>:2:1: duplicate key '\"\xc3\xa9";
  assert_memory_equal (msg, head, sizeof head - 1);
  free (msg);
  free (text);
  free (key);
}

static void
test_table_definition_rules (void **state)
{
  int64_t i;

  /* A table only implied by a header is not defined yet: dotted keys may
   * define it, after which a header for it is a second definition. */
  ak_toml_t *doc = parse_ok ("[a.b.c]\n[a]\nb.d = 1\n");
  const ak_toml_value_t *b = ak_toml_table_get (ak_toml_table_get (ak_toml_root (doc), "a"), "b");
  assert_true (ak_toml_as_int (ak_toml_table_get (b, "d"), &i));
  assert_int_equal (i, 1);
  ak_toml_free (doc);
  assert_error ("[a.b.c]\n[a]\nb.d = 1\n[a.b]\n",
                "f.toml:4:4: cannot define table [a.b]: 'a.b' is already a table defined by dotted "
                "keys (line 1)");
  /* A table defined by a header is closed to dotted keys from elsewhere. */
  assert_error ("[a.b.c]\n[a]\nb.c.t = 1\n",
                "f.toml:3:3: cannot set key 'b.c.t': 'b.c' is already a table defined by a header "
                "(line 1)");
  /* Sub-tables of dotted-key tables may have headers of their own. */
  doc = parse_ok ("[fruit]\napple.color = 'red'\n[fruit.apple.texture]\nsmooth = true\n");
  ak_toml_free (doc);
  assert_error ("[fruit]\napple.color = 'red'\n[fruit.apple]\n",
                "f.toml:3:8: cannot define table [fruit.apple]: 'fruit.apple' is already a table "
                "defined by dotted keys (line 2)");
  /* Arrays of tables: headers continue the last element; static arrays and
   * inline tables are closed. */
  doc = parse_ok ("[[p]]\n[[p]]\n[p.q]\nx = 1\n");
  const ak_toml_value_t *p = ak_toml_table_get (ak_toml_root (doc), "p");
  assert_int_equal (ak_toml_array_len (p), 2);
  assert_non_null (ak_toml_table_get (ak_toml_array_get (p, 1), "q"));
  assert_null (ak_toml_table_get (ak_toml_array_get (p, 0), "q"));
  ak_toml_free (doc);
  assert_error ("p = []\n[[p]]\n",
                "f.toml:2:3: cannot define table [[p]]: 'p' is already an array (line 1)");
  assert_error ("p = {}\np.x = 1\n",
                "f.toml:2:1: cannot set key 'p.x': 'p' is already an inline table (line 1)");
}

static void
test_integers_and_floats (void **state)
{
  ak_toml_t *doc = parse_ok ("max = 9_223_372_036_854_775_807\n"
                             "min = -9223372036854775808\n"
                             "hex = 0x7FFF_FFFF_FFFF_FFFF\n"
                             "oct = 0o755\n"
                             "bin = 0b1010\n"
                             "pinf = +inf\n"
                             "nnan = -nan\n"
                             "exp = 6.626e-34\n"
                             "tiny = 1e-400\n");
  const ak_toml_value_t *r = ak_toml_root (doc);
  int64_t i;
  double d;

  assert_true (ak_toml_as_int (ak_toml_table_get (r, "max"), &i));
  assert_true (i == INT64_MAX);
  assert_true (ak_toml_as_int (ak_toml_table_get (r, "min"), &i));
  assert_true (i == INT64_MIN);
  assert_true (ak_toml_as_int (ak_toml_table_get (r, "hex"), &i));
  assert_true (i == INT64_MAX);
  assert_true (ak_toml_as_int (ak_toml_table_get (r, "oct"), &i));
  assert_int_equal (i, 0755);
  assert_true (ak_toml_as_int (ak_toml_table_get (r, "bin"), &i));
  assert_int_equal (i, 10);
  assert_true (ak_toml_as_float (ak_toml_table_get (r, "pinf"), &d));
  assert_true (d > 0 && d * 0.5 == d);
  assert_true (ak_toml_as_float (ak_toml_table_get (r, "nnan"), &d));
  assert_true (d != d);
  assert_true (ak_toml_as_float (ak_toml_table_get (r, "exp"), &d));
  assert_true (d == 6.626e-34);
  assert_true (ak_toml_as_float (ak_toml_table_get (r, "tiny"), &d));
  assert_true (d == 0);
  ak_toml_free (doc);

  assert_error ("x = -9223372036854775809", "f.toml:1:5: integer out of range (64-bit signed)");
  assert_error ("x = 0x8000000000000000", "f.toml:1:5: integer out of range (64-bit signed)");
  assert_error ("x = 1e400", "f.toml:1:5: float out of range");
  assert_error ("x = 1__0", "f.toml:1:5: invalid integer");
  assert_error ("x = 012", "f.toml:1:5: leading zeros are not allowed");
  assert_error ("x = +0x1",
                "f.toml:1:5: a sign is not allowed on hexadecimal, octal or binary integers");
}

static void
test_strings (void **state)
{
  ak_toml_t *doc = parse_ok ("nul = \"a\\u0000b\"\n"
                             "ml = \"\"\"\r\nline1\r\nline2 \\\r\n   joined\"\"\"\n"
                             "lit = 'C:\\path'\n"
                             "\"k\\u0000ey\" = 1\n"
                             "astral = \"\\U0001F600\"\n");
  const ak_toml_value_t *r = ak_toml_root (doc);
  const char *s;
  size_t len;

  assert_true (ak_toml_as_string (ak_toml_table_get (r, "nul"), &s, &len));
  assert_int_equal (len, 3);
  assert_memory_equal (s, "a\0b", 4);
  /* CRLF inside multi-line strings is normalised to LF. */
  assert_true (ak_toml_as_string (ak_toml_table_get (r, "ml"), &s, NULL));
  assert_string_equal (s, "line1\nline2 joined");
  assert_true (ak_toml_as_string (ak_toml_table_get (r, "lit"), &s, NULL));
  assert_string_equal (s, "C:\\path");
  assert_true (ak_toml_as_string (ak_toml_table_get (r, "astral"), &s, NULL));
  assert_string_equal (s, "\xf0\x9f\x98\x80");
  /* Keys with NUL bytes are reachable by length only. */
  assert_null (ak_toml_table_get (r, "k"));
  assert_non_null (ak_toml_table_getn (r, "k\0ey", 4));
  ak_toml_free (doc);

  assert_error ("s = \"\\uD800\"", "f.toml:1:6: escape \\uD800 is not a Unicode scalar value");
  assert_error ("s = \"\\U00110000\"",
                "f.toml:1:6: escape \\U00110000 is not a Unicode scalar value");
  assert_error ("s = \"tab\tok bell\a\"",
                "f.toml:1:17: control character U+0007 is not allowed in a string");
}

static void
test_datetime_kinds_and_format (void **state)
{
  ak_toml_t *doc = parse_ok ("odt = 2024-02-29 23:59:60.123456789123+05:45\n"
                             "ldt = 2000-01-01T00:00:00\n"
                             "ld = 1999-12-31\n"
                             "lt = 07:08:09.5\n"
                             "z = 1970-01-01t00:00:00z\n");
  const ak_toml_value_t *r = ak_toml_root (doc);
  static const struct
  {
    const char *key;
    ak_toml_type_t type;
    const char *text;
  } cases[] = {
    { "odt", AK_TOML_DATETIME, "2024-02-29T23:59:60.123456789+05:45" },
    { "ldt", AK_TOML_DATETIME_LOCAL, "2000-01-01T00:00:00" },
    { "ld", AK_TOML_DATE_LOCAL, "1999-12-31" },
    { "lt", AK_TOML_TIME_LOCAL, "07:08:09.5" },
    { "z", AK_TOML_DATETIME, "1970-01-01T00:00:00Z" },
  };
  char buf[64];
  ak_toml_datetime_t dt;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      const ak_toml_value_t *v = ak_toml_table_get (r, cases[i].key);
      assert_int_equal (ak_toml_type (v), cases[i].type);
      assert_true (ak_toml_as_datetime (v, &dt));
      assert_int_equal (ak_toml_datetime_format (&dt, cases[i].type, buf, sizeof buf),
                        strlen (cases[i].text));
      assert_string_equal (buf, cases[i].text);
    }
  assert_true (ak_toml_as_datetime (ak_toml_table_get (r, "odt"), &dt));
  assert_int_equal (dt.nanosecond, 123456789);
  assert_int_equal (dt.frac_digits, 9);
  assert_int_equal (ak_toml_datetime_format (&dt, AK_TOML_DATETIME, buf, 10), -1);
  assert_int_equal (ak_toml_datetime_format (&dt, AK_TOML_STRING, buf, sizeof buf), -1);
  ak_toml_free (doc);

  assert_error ("d = 1900-02-29", "f.toml:1:5: invalid date: day 29 out of range for 1900-02");
  assert_error ("d = 07:08", "f.toml:1:5: invalid time: expected HH:MM:SS");
  assert_error ("d = 2000-01-01T00:00:00+24:00",
                "f.toml:1:5: invalid date-time: time zone offset out of range");
}

static void
test_nesting_limit (void **state)
{
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;

  /* AK_TOML_MAX_DEPTH levels are fine ... */
  char *open = repeat ("a = ", "[", AK_TOML_MAX_DEPTH, "");
  char *ok = repeat (open, "]", AK_TOML_MAX_DEPTH, "\n");
  assert_int_equal (ak_toml_parse (ok, strlen (ok), NULL, &doc, &err), 0);
  ak_toml_free (doc);
  doc = NULL;
  free (open);
  free (ok);

  /* ... one more is an error, and a million is the same error, not a stack
   * overflow. */
  char *deep = repeat ("a = ", "[", 1000000, "");
  assert_int_equal (ak_toml_parse (deep, strlen (deep), NULL, &doc, &err), -1);
  assert_non_null (strstr (err->msg, "nested deeper than"));
  ak_error_clear (&err);
  free (deep);

  char *inl = repeat ("a = ", "{b=", 1000, "");
  assert_int_equal (ak_toml_parse (inl, strlen (inl), NULL, &doc, &err), -1);
  assert_non_null (strstr (err->msg, "nested deeper than"));
  ak_error_clear (&err);
  free (inl);

  char *dotted = repeat ("x", ".x", 1000, " = 1\n");
  assert_int_equal (ak_toml_parse (dotted, strlen (dotted), NULL, &doc, &err), -1);
  assert_non_null (strstr (err->msg, "nested deeper than"));
  ak_error_clear (&err);
  free (dotted);

  char *header = repeat ("[x", ".x", 1000, "]\n");
  assert_int_equal (ak_toml_parse (header, strlen (header), NULL, &doc, &err), -1);
  assert_non_null (strstr (err->msg, "nested deeper than"));
  ak_error_clear (&err);
  free (header);
}

static void
test_many_keys (void **state)
{
  size_t n = 5000;
  char *text = ak_xmalloc (n * 32);
  size_t len = 0;
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;
  char key[32];
  int64_t v;

  for (size_t i = 0; i < n; i++)
    len += (size_t) sprintf (text + len, "k%zu = %zu\n", i, i);
  assert_int_equal (ak_toml_parse (text, len, NULL, &doc, &err), 0);
  const ak_toml_value_t *r = ak_toml_root (doc);
  assert_int_equal (ak_toml_table_len (r), n);
  for (size_t i = 0; i < n; i += 7)
    {
      snprintf (key, sizeof key, "k%zu", i);
      assert_true (ak_toml_as_int (ak_toml_table_get (r, key), &v));
      assert_int_equal (v, (int64_t) i);
    }
  assert_null (ak_toml_table_get (r, "k5000"));
  ak_toml_free (doc);

  /* The same key again in a big table is still a duplicate. */
  len += (size_t) sprintf (text + len, "k1234 = 0\n");
  assert_int_equal (ak_toml_parse (text, len, NULL, &doc, &err), -1);
  assert_non_null (strstr (err->msg, "duplicate key 'k1234'"));
  ak_error_clear (&err);
  free (text);
}

static void
test_parse_file_and_ownership (void **state)
{
  char path[] = "/tmp/ak-test-toml-XXXXXX";
  int fd = mkstemp (path);
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;
  const char *s = NULL;
  static const char text[] = "\xef\xbb\xbfname = \"from file\"\nbad =";

  assert_true (fd >= 0);
  assert_int_equal (ak_write_all (fd, text, sizeof text - 1), 0);
  close (fd);

  /* The document owns its filename: the error names the path. */
  assert_int_equal (ak_toml_parse_file (path, &doc, &err), -1);
  char *want = ak_xasprintf ("%s:2:6: expected a value, found end of input", path);
  assert_string_equal (err->msg, want);
  free (want);
  ak_error_clear (&err);

  fd = open (path, O_WRONLY | O_TRUNC);
  assert_true (fd >= 0);
  assert_int_equal (ak_write_all (fd, text, sizeof text - 7), 0);
  close (fd);
  assert_int_equal (ak_toml_parse_file (path, &doc, &err), 0);
  unlink (path);
  assert_string_equal (ak_toml_filename (doc), path);
  assert_true (ak_toml_as_string (ak_toml_table_get (ak_toml_root (doc), "name"), &s, NULL));
  assert_string_equal (s, "from file");
  ak_toml_free (doc);
  ak_toml_free (NULL);

  assert_int_equal (ak_toml_parse_file ("/nonexistent/x.toml", &doc, &err), -1);
  assert_non_null (strstr (err->msg, "/nonexistent/x.toml"));
  ak_error_clear (&err);

  /* The parser copies nothing it keeps from the caller's buffer. */
  char *buf = ak_xstrdup ("k = \"value\"\n");
  assert_int_equal (ak_toml_parse (buf, strlen (buf), NULL, &doc, &err), 0);
  memset (buf, 'x', strlen (buf));
  free (buf);
  assert_true (ak_toml_as_string (ak_toml_table_get (ak_toml_root (doc), "k"), &s, NULL));
  assert_string_equal (s, "value");
  assert_string_equal (ak_toml_filename (doc), "<input>");
  ak_toml_free (doc);
}

static void
test_empty_and_unterminated_input (void **state)
{
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;

  assert_int_equal (ak_toml_parse (NULL, 0, NULL, &doc, &err), 0);
  assert_int_equal (ak_toml_table_len (ak_toml_root (doc)), 0);
  ak_toml_free (doc);

  /* len is authoritative: bytes past it are never read. */
  assert_int_equal (ak_toml_parse ("a = 1junk", 5, NULL, &doc, &err), 0);
  assert_non_null (ak_toml_table_get (ak_toml_root (doc), "a"));
  ak_toml_free (doc);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_lookup_and_getters),
    cmocka_unit_test (test_getters_are_strict),
    cmocka_unit_test (test_type_names),
    cmocka_unit_test (test_iteration_order_and_key_lines),
    cmocka_unit_test (test_value_positions),
    cmocka_unit_test (test_error_positions),
    cmocka_unit_test (test_table_definition_rules),
    cmocka_unit_test (test_integers_and_floats),
    cmocka_unit_test (test_strings),
    cmocka_unit_test (test_datetime_kinds_and_format),
    cmocka_unit_test (test_nesting_limit),
    cmocka_unit_test (test_many_keys),
    cmocka_unit_test (test_parse_file_and_ownership),
    cmocka_unit_test (test_empty_and_unterminated_input),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
