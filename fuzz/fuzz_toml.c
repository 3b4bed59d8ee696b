/* libFuzzer target for the TOML parser: parse arbitrary bytes, walk every
 * value through the public getters, free.  Beyond the sanitizers, it checks
 * invariants a caller relies on: every key found by iteration is found again
 * by lookup (the table index agrees with document order), positions are
 * set, and date/times print. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/toml.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
walk (const ak_toml_value_t *v, unsigned depth)
{
  char buf[64];
  ak_toml_datetime_t dt;
  const char *s;
  size_t len;

  check (depth <= AK_TOML_MAX_DEPTH + 1, "depth bound");
  check (ak_toml_line (v) >= 1 && ak_toml_column (v) >= 1, "value position");
  check (ak_toml_type_name (ak_toml_type (v)) != NULL, "type name");
  switch (ak_toml_type (v))
    {
    case AK_TOML_TABLE:
      {
        ak_toml_entry_t e;
        size_t it = 0, n = 0;
        while (ak_toml_table_next (v, &it, &e))
          {
            check (e.line >= 1 && e.column >= 1, "key position");
            check (e.key[e.key_len] == '\0', "key termination");
            check (ak_toml_table_getn (v, e.key, e.key_len) == e.value, "lookup by key");
            walk (e.value, depth + 1);
            n++;
          }
        check (n == ak_toml_table_len (v), "table length");
        break;
      }
    case AK_TOML_ARRAY:
      for (size_t i = 0; i < ak_toml_array_len (v); i++)
        walk (ak_toml_array_get (v, i), depth + 1);
      check (ak_toml_array_get (v, ak_toml_array_len (v)) == NULL, "array bound");
      break;
    case AK_TOML_STRING:
      check (ak_toml_as_string (v, &s, &len) && s[len] == '\0', "string");
      break;
    case AK_TOML_DATETIME:
    case AK_TOML_DATETIME_LOCAL:
    case AK_TOML_DATE_LOCAL:
    case AK_TOML_TIME_LOCAL:
      check (ak_toml_as_datetime (v, &dt), "datetime getter");
      check (ak_toml_datetime_format (&dt, ak_toml_type (v), buf, sizeof buf) > 0,
             "datetime format");
      break;
    case AK_TOML_INTEGER:
      check (ak_toml_as_int (v, NULL), "integer getter");
      break;
    case AK_TOML_FLOAT:
      check (ak_toml_as_float (v, NULL), "float getter");
      break;
    case AK_TOML_BOOL:
      check (ak_toml_as_bool (v, NULL), "bool getter");
      break;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;

  if (ak_toml_parse ((const char *) data, size, "fuzz.toml", &doc, &err) < 0)
    {
      check (err != NULL && strncmp (err->msg, "fuzz.toml:", 10) == 0, "error message");
      ak_error_free (err);
      return 0;
    }
  check (err == NULL, "no error on success");
  walk (ak_toml_root (doc), 0);
  ak_toml_free (doc);
  return 0;
}
