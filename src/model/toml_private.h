/* Internals shared by the TOML parser files (toml.c: document structure and
 * table rules; toml_scalar.c: strings, numbers, date-times; toml_value.c:
 * the tree and its getters).  Not part of the public API. */
#ifndef AK_TOML_PRIVATE_H
#define AK_TOML_PRIVATE_H

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/toml.h"

/* How a table or array came to exist.  The redefinition rules of TOML depend
 * on it, not on the value's type alone. */
typedef enum toml_origin
{
  TOML_VALUE = 0,    /* scalar, static array "a = [..]", or the root */
  TOML_IMPLICIT,     /* table named only as a parent in a header: [a] of [a.b] */
  TOML_HEADER,       /* table defined by its own [header] or [[header]] */
  TOML_DOTTED,       /* table created by a dotted key: a of a.b = 1 */
  TOML_INLINE,       /* inline table { ... }: sealed once written */
  TOML_ARRAY_TABLES, /* array made by [[header]] */
} toml_origin_t;

typedef struct toml_item
{
  char *key; /* NUL-terminated copy; may contain NUL bytes */
  size_t key_len;
  ak_toml_value_t *value;
  unsigned line, column;
} toml_item_t;

typedef struct toml_table
{
  toml_item_t *items;
  size_t len, cap;
  /* Open-addressing index of items (slot holds index + 1, 0 is empty), built
   * once a table grows past a handful of keys so that hostile inputs with
   * many keys stay linear. */
  uint32_t *index;
  size_t index_cap;
} toml_table_t;

typedef struct toml_array
{
  ak_toml_value_t **items;
  size_t len, cap;
} toml_array_t;

struct ak_toml_value
{
  ak_toml_type_t type;
  toml_origin_t origin;
  unsigned line, column;
  union
  {
    struct
    {
      char *ptr; /* NUL-terminated */
      size_t len;
    } str;
    int64_t integer;
    double flt;
    bool boolean;
    ak_toml_datetime_t dt;
    toml_array_t array;
    toml_table_t table;
  } u;
};

struct ak_toml
{
  ak_toml_value_t *root;
  char *filename;
};

typedef struct toml_parser
{
  const char *buf;
  size_t len;
  size_t pos;
  const char *filename;
  ak_error_t **err;
  /* Line/column of loc_pos: positions are looked up mostly in increasing
   * order, so counting on from the last one keeps lookups linear overall. */
  size_t loc_pos;
  unsigned loc_line, loc_column;
  /* "C" locale for strtod_l(), created on first use: floats must not depend
   * on the embedding program's LC_NUMERIC. */
  locale_t c_locale;
} toml_parser_t;

/* A growable byte buffer for decoded strings and keys. */
typedef struct toml_buf
{
  char *ptr;
  size_t len, cap;
} toml_buf_t;

/* Errors (toml.c). */
void toml_locate (toml_parser_t *p, size_t pos, unsigned *line, unsigned *column);
int toml_fail_at (toml_parser_t *p, size_t pos, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Describe the character at pos for an error message: "'x'", "end of line". */
const char *toml_describe (toml_parser_t *p, size_t pos, char *buf, size_t size);

/* Character access: -1 past the end, so callers never read beyond len. */
static inline int
toml_peek (const toml_parser_t *p, size_t off)
{
  if (p->pos + off >= p->len)
    return -1;
  return (unsigned char) p->buf[p->pos + off];
}

/* Scalars (toml_scalar.c).  Each starts at p->pos and leaves p->pos just
 * after what it consumed. */
/* A basic or literal string, single- or multi-line.  Keys pass
 * allow_multiline = false. */
int toml_parse_string (toml_parser_t *p, bool allow_multiline, toml_buf_t *out);
/* Integer, float (incl. inf/nan) or one of the date/time kinds into v. */
int toml_parse_number_or_datetime (toml_parser_t *p, ak_toml_value_t *v);
bool toml_is_leap_year (int year);
int toml_days_in_month (int year, int month);

void toml_buf_push (toml_buf_t *b, const char *s, size_t n);
void toml_buf_free (toml_buf_t *b);

/* Tree (toml_value.c). */
ak_toml_value_t *toml_value_new (ak_toml_type_t type, toml_origin_t origin, unsigned line,
                                 unsigned column);
void toml_value_free (ak_toml_value_t *v);
toml_item_t *toml_table_lookup (const ak_toml_value_t *t, const char *key, size_t key_len);
/* Adds key (copied) -> value; the key must be absent.  Takes value. */
void toml_table_insert (ak_toml_value_t *t, const char *key, size_t key_len,
                        ak_toml_value_t *value, unsigned line, unsigned column);
/* Takes value. */
void toml_array_push (ak_toml_value_t *a, ak_toml_value_t *value);

#endif
