/* toml-test decoder: reads TOML on stdin and writes the tagged JSON encoding
 * of the toml-test suite on stdout (exit 0), or an error on stderr (exit 1).
 *
 * Tables become objects, arrays become arrays, and every scalar becomes
 * {"type": T, "value": "text"}.  Floats are printed with 17 significant
 * digits so they read back as the same double. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/toml.h"

static json_t *to_json (const ak_toml_value_t *v);

static json_t *
tagged (const char *type, const char *text)
{
  return json_pack ("{s:s, s:s}", "type", type, "value", text);
}

static json_t *
scalar_json (const ak_toml_value_t *v)
{
  char text[64];
  const char *s;
  size_t len;
  int64_t i;
  double d;
  bool b;
  ak_toml_datetime_t dt;

  switch (ak_toml_type (v))
    {
    case AK_TOML_STRING:
      ak_toml_as_string (v, &s, &len);
      return json_pack ("{s:s, s:s%}", "type", "string", "value", s, len);
    case AK_TOML_INTEGER:
      ak_toml_as_int (v, &i);
      snprintf (text, sizeof text, "%" PRId64, i);
      return tagged ("integer", text);
    case AK_TOML_FLOAT:
      ak_toml_as_float (v, &d);
      if (isnan (d))
        snprintf (text, sizeof text, "nan");
      else if (isinf (d))
        snprintf (text, sizeof text, "%sinf", d < 0 ? "-" : "");
      else
        snprintf (text, sizeof text, "%.17g", d);
      return tagged ("float", text);
    case AK_TOML_BOOL:
      ak_toml_as_bool (v, &b);
      return tagged ("bool", b ? "true" : "false");
    case AK_TOML_DATETIME:
    case AK_TOML_DATETIME_LOCAL:
    case AK_TOML_DATE_LOCAL:
    case AK_TOML_TIME_LOCAL:
      ak_toml_as_datetime (v, &dt);
      if (ak_toml_datetime_format (&dt, ak_toml_type (v), text, sizeof text) < 0)
        return NULL;
      return tagged (ak_toml_type (v) == AK_TOML_DATETIME         ? "datetime"
                     : ak_toml_type (v) == AK_TOML_DATETIME_LOCAL ? "datetime-local"
                     : ak_toml_type (v) == AK_TOML_DATE_LOCAL     ? "date-local"
                                                                  : "time-local",
                     text);
    case AK_TOML_ARRAY:
    case AK_TOML_TABLE:
      break;
    }
  return NULL;
}

/* Recursion depth is bounded by AK_TOML_MAX_DEPTH. */
static json_t *
to_json (const ak_toml_value_t *v)
{
  json_t *j;

  switch (ak_toml_type (v))
    {
    case AK_TOML_TABLE:
      {
        ak_toml_entry_t e;
        size_t it = 0;
        j = json_object ();
        while (ak_toml_table_next (v, &it, &e))
          if (json_object_setn_new (j, e.key, e.key_len, to_json (e.value)) < 0)
            ak_oom ();
        return j;
      }
    case AK_TOML_ARRAY:
      j = json_array ();
      for (size_t i = 0; i < ak_toml_array_len (v); i++)
        if (json_array_append_new (j, to_json (ak_toml_array_get (v, i))) < 0)
          ak_oom ();
      return j;
    default:
      j = scalar_json (v);
      if (j == NULL)
        ak_oom ();
      return j;
    }
}

int
main (int argc, char **argv)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0, cap = 0;
  ak_toml_t *doc = NULL;
  ak_error_t *err = NULL;

  (void) argc;
  (void) argv;
  for (;;)
    {
      if (cap - len < 65536)
        {
          cap = cap ? cap * 2 : 65536;
          buf = ak_xrealloc (buf, cap);
        }
      ssize_t n = ak_read_all (STDIN_FILENO, buf + len, cap - len);
      if (n < 0)
        {
          perror ("toml-test-decoder: read");
          return 1;
        }
      len += (size_t) n;
      if (n == 0 || len < cap)
        break;
    }

  if (ak_toml_parse (buf, len, "<stdin>", &doc, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      ak_error_free (err);
      return 1;
    }
  json_t *j = to_json (ak_toml_root (doc));
  ak_toml_free (doc);
  if (json_dumpf (j, stdout, JSON_INDENT (2) | JSON_SORT_KEYS) < 0 || fputc ('\n', stdout) == EOF
      || fflush (stdout) != 0)
    {
      json_decref (j);
      perror ("toml-test-decoder: write");
      return 1;
    }
  json_decref (j);
  return 0;
}
