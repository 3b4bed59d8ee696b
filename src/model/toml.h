/* TOML 1.0.0 parser.
 *
 * Parses a whole document into a read-only tree.  Every value and every table
 * entry remembers the line and column where it was written, so callers (the
 * config layer) can report "file:line: key ..." for unknown keys and type
 * mismatches without keeping the source around.
 *
 * Ownership: ak_toml_parse() hands the caller a document that owns every
 * value, key and string reachable from it.  Pointers obtained from the getters
 * (values, keys, strings) stay valid until ak_toml_free() and must not be
 * freed or modified by the caller.
 *
 * Thread safety: parsing keeps no global state, so independent documents may
 * be parsed concurrently.  A finished document is never modified by the
 * getters, so any number of threads may read the same document at once; only
 * ak_toml_free() needs exclusive access.
 *
 * Input is untrusted: the parser validates UTF-8, rejects control characters,
 * detects integer overflow, and bounds nesting (AK_TOML_MAX_DEPTH) so that
 * inputs such as "a=[[[[[[..." fail with an error instead of exhausting the
 * stack.  Errors read "FILE:LINE:COL: message" (columns count code points,
 * both start at 1).
 */
#ifndef AK_TOML_H
#define AK_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Deepest nesting of tables and arrays accepted, counted from the root
 * table (depth 0).  Deep enough for any configuration, shallow enough that
 * the recursive parser and tree walkers cannot overflow the stack. */
#define AK_TOML_MAX_DEPTH 128

typedef struct ak_toml ak_toml_t;
typedef struct ak_toml_value ak_toml_value_t;

typedef enum ak_toml_type
{
  AK_TOML_STRING,
  AK_TOML_INTEGER,
  AK_TOML_FLOAT,
  AK_TOML_BOOL,
  AK_TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00-07:00 */
  AK_TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
  AK_TOML_DATE_LOCAL,     /* 1979-05-27 */
  AK_TOML_TIME_LOCAL,     /* 07:32:00 */
  AK_TOML_ARRAY,
  AK_TOML_TABLE,
} ak_toml_type_t;

/* Fields of the four date/time kinds; those a kind does not have are 0.
 * Fractional seconds beyond nanoseconds are truncated; frac_digits keeps how
 * many digits were written (at most 9) so the value can be printed back with
 * the same precision. */
typedef struct ak_toml_datetime
{
  int year, month, day;
  int hour, minute, second;
  int nanosecond;
  int frac_digits;
  int offset_minutes; /* AK_TOML_DATETIME only: local time minus UTC */
} ak_toml_datetime_t;

/* One table entry, as returned by iteration and ak_toml_table_entry().  key
 * is NUL-terminated but may also contain NUL bytes (from "\u0000"), hence
 * key_len.  line/column locate the key; the value carries its own. */
typedef struct ak_toml_entry
{
  const char *key;
  size_t key_len;
  const ak_toml_value_t *value;
  unsigned line, column;
} ak_toml_entry_t;

/* Parse len bytes of buf (need not be NUL-terminated; the parser keeps no
 * pointer into it).  filename is used in messages only and may be NULL
 * ("<input>").  Returns 0 and sets *out, which the caller frees with
 * ak_toml_free(); or -1 with *err set and *out untouched.  Integers must fit
 * in 64 bits and floats must not overflow to infinity; newlines inside
 * multi-line strings are returned as LF whatever the file used. */
int ak_toml_parse (const char *buf, size_t len, const char *filename, ak_toml_t **out,
                   ak_error_t **err);
/* Read and parse a file; errors name the path. */
int ak_toml_parse_file (const char *path, ak_toml_t **out, ak_error_t **err);
/* Frees the document and everything in it.  NULL is accepted. */
void ak_toml_free (ak_toml_t *doc);

/* The root table, never NULL for a parsed document. */
const ak_toml_value_t *ak_toml_root (const ak_toml_t *doc);
/* The filename given at parse time, or "<input>". */
const char *ak_toml_filename (const ak_toml_t *doc);

/* v must not be NULL; the position, table, array and typed getters below
 * accept a NULL value and report a miss, so lookups can be chained. */
ak_toml_type_t ak_toml_type (const ak_toml_value_t *v);
/* "string", "integer", "float", "boolean", "datetime", "local datetime",
 * "local date", "local time", "array", "table": for error messages. */
const char *ak_toml_type_name (ak_toml_type_t type);
/* Where the value starts: the first character of a scalar, array or inline
 * table; the header of a [table] or [[array]] element; for a table created
 * by a dotted key or implied by a header, the key part that first named it.
 * The root table is at 1:1. */
unsigned ak_toml_line (const ak_toml_value_t *v);
unsigned ak_toml_column (const ak_toml_value_t *v);

/* Tables.  All of these return 0/NULL/false when t is not a table. */
size_t ak_toml_table_len (const ak_toml_value_t *t);
/* Look a key up; NULL when absent. */
const ak_toml_value_t *ak_toml_table_get (const ak_toml_value_t *t, const char *key);
const ak_toml_value_t *ak_toml_table_getn (const ak_toml_value_t *t, const char *key,
                                           size_t key_len);
/* Like ak_toml_table_get(), also giving the key's position; false when
 * absent. */
bool ak_toml_table_find (const ak_toml_value_t *t, const char *key, ak_toml_entry_t *out);
/* Entry i (0 <= i < ak_toml_table_len) in document order. */
bool ak_toml_table_entry (const ak_toml_value_t *t, size_t i, ak_toml_entry_t *out);
/* Iterate in document order:
 *   size_t it = 0; ak_toml_entry_t e;
 *   while (ak_toml_table_next (t, &it, &e)) ...
 */
bool ak_toml_table_next (const ak_toml_value_t *t, size_t *iter, ak_toml_entry_t *out);

/* Arrays.  Return 0/NULL when a is not an array or i is out of range. */
size_t ak_toml_array_len (const ak_toml_value_t *a);
const ak_toml_value_t *ak_toml_array_get (const ak_toml_value_t *a, size_t i);

/* Typed getters: when v has the given type, store its value in *out (which
 * may be NULL to only test the type) and return true; otherwise leave *out
 * alone and return false.  No conversions: an integer is not a float. */
bool ak_toml_as_bool (const ak_toml_value_t *v, bool *out);
bool ak_toml_as_int (const ak_toml_value_t *v, int64_t *out);
bool ak_toml_as_float (const ak_toml_value_t *v, double *out);
/* The string is NUL-terminated; *len (if len is not NULL) gives its length,
 * which differs from strlen() only when the value contains "\u0000". */
bool ak_toml_as_string (const ak_toml_value_t *v, const char **out, size_t *len);
/* Any of the four date/time kinds; check ak_toml_type() for which. */
bool ak_toml_as_datetime (const ak_toml_value_t *v, ak_toml_datetime_t *out);

/* RFC 3339 text of a date/time value of the given kind ("1979-05-27T07:32:00Z",
 * "07:32:00.5", ...), NUL-terminated in buf.  Returns the length, or -1 when
 * type is not a date/time kind or buf is too small (40 bytes always suffice). */
int ak_toml_datetime_format (const ak_toml_datetime_t *dt, ak_toml_type_t type, char *buf,
                             size_t size);

#endif
