/* TOML 1.0.0 documents: expressions, keys, tables, arrays, inline tables, and
 * the rules about which tables may be defined or extended where.
 *
 * The parser is a plain recursive-descent reader over a byte buffer.  The
 * whole input is checked to be UTF-8 up front, so everything later can treat
 * bytes >= 0x80 as parts of valid characters, which TOML only allows inside
 * strings and comments.  Recursion happens only for nested arrays and inline
 * tables, and is cut off at AK_TOML_MAX_DEPTH. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/toml_private.h"

/* ---- positions and errors ---- */

void
toml_locate (toml_parser_t *p, size_t pos, unsigned *line, unsigned *column)
{
  if (pos > p->len)
    pos = p->len;
  if (pos < p->loc_pos)
    {
      p->loc_pos = 0;
      p->loc_line = 1;
      p->loc_column = 1;
    }
  for (size_t i = p->loc_pos; i < pos; i++)
    {
      unsigned char c = (unsigned char) p->buf[i];
      if (c == '\n')
        {
          p->loc_line++;
          p->loc_column = 1;
        }
      else if ((c & 0xc0) != 0x80) /* count code points, not bytes */
        p->loc_column++;
    }
  p->loc_pos = pos;
  *line = p->loc_line;
  *column = p->loc_column;
}

int
toml_fail_at (toml_parser_t *p, size_t pos, const char *fmt, ...)
{
  _cleanup_free_ char *msg = NULL;
  unsigned line, column;
  va_list ap;

  toml_locate (p, pos, &line, &column);
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  return ak_error_set (p->err, 0, "%s:%u:%u: %s", p->filename, line, column, msg);
}

const char *
toml_describe (toml_parser_t *p, size_t pos, char *buf, size_t size)
{
  const unsigned char *s = (const unsigned char *) p->buf + pos;
  size_t avail = pos < p->len ? p->len - pos : 0;
  uint32_t cp;

  if (avail == 0)
    return "end of input";
  if (s[0] == '\n' || (s[0] == '\r' && avail > 1 && s[1] == '\n'))
    return "end of line";
  if (s[0] == ' ')
    return "space";
  if (s[0] == '\t')
    return "tab";
  if (s[0] > 0x20 && s[0] < 0x7f)
    {
      snprintf (buf, size, "'%c'", s[0]);
      return buf;
    }
  /* The input is valid UTF-8 by now, so the sequence is complete. */
  cp = s[0];
  if (s[0] >= 0xf0 && avail >= 4)
    cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
  else if (s[0] >= 0xe0 && avail >= 3)
    cp = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
  else if (s[0] >= 0xc0 && avail >= 2)
    cp = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
  snprintf (buf, size, "U+%04X", (unsigned) cp);
  return buf;
}

/* Returns the offset of the first byte that is not part of a well-formed
 * UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF
 * are ill-formed), or len when all is well. */
static size_t
utf8_check (const unsigned char *s, size_t len)
{
  size_t i = 0;
  while (i < len)
    {
      unsigned char c = s[i];
      size_t n;
      unsigned char lo = 0x80, hi = 0xbf;

      if (c < 0x80)
        {
          i++;
          continue;
        }
      if (c >= 0xc2 && c <= 0xdf)
        n = 1;
      else if (c >= 0xe0 && c <= 0xef)
        {
          n = 2;
          if (c == 0xe0)
            lo = 0xa0;
          else if (c == 0xed)
            hi = 0x9f;
        }
      else if (c >= 0xf0 && c <= 0xf4)
        {
          n = 3;
          if (c == 0xf0)
            lo = 0x90;
          else if (c == 0xf4)
            hi = 0x8f;
        }
      else
        return i;
      if (len - i <= n)
        return i;
      if (s[i + 1] < lo || s[i + 1] > hi)
        return i;
      for (size_t k = 2; k <= n; k++)
        if ((s[i + k] & 0xc0) != 0x80)
          return i;
      i += n + 1;
    }
  return len;
}

/* ---- whitespace, comments, newlines ---- */

static void
skip_ws (toml_parser_t *p)
{
  while (toml_peek (p, 0) == ' ' || toml_peek (p, 0) == '\t')
    p->pos++;
}

static bool
skip_newline (toml_parser_t *p)
{
  if (toml_peek (p, 0) == '\n')
    {
      p->pos++;
      return true;
    }
  if (toml_peek (p, 0) == '\r' && toml_peek (p, 1) == '\n')
    {
      p->pos += 2;
      return true;
    }
  return false;
}

/* A comment runs to the end of the line and may hold anything but control
 * characters (tab excepted). */
static int
skip_comment (toml_parser_t *p)
{
  char buf[32];

  if (toml_peek (p, 0) != '#')
    return 0;
  p->pos++;
  for (;;)
    {
      int c = toml_peek (p, 0);
      if (c < 0 || c == '\n' || (c == '\r' && toml_peek (p, 1) == '\n'))
        return 0;
      if (c != '\t' && (c < 0x20 || c == 0x7f))
        return toml_fail_at (p, p->pos, "control character %s is not allowed in a comment",
                             toml_describe (p, p->pos, buf, sizeof buf));
      p->pos++;
    }
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static int
skip_blank (toml_parser_t *p)
{
  for (;;)
    {
      skip_ws (p);
      if (skip_comment (p) < 0)
        return -1;
      if (!skip_newline (p))
        return 0;
    }
}

/* After an expression: optional whitespace and comment, then a newline or
 * the end of the input. */
static int
end_of_line (toml_parser_t *p, const char *after)
{
  char buf[32];

  skip_ws (p);
  if (skip_comment (p) < 0)
    return -1;
  if (toml_peek (p, 0) < 0 || skip_newline (p))
    return 0;
  return toml_fail_at (p, p->pos, "expected end of line after %s, found %s", after,
                       toml_describe (p, p->pos, buf, sizeof buf));
}

/* ---- keys ---- */

typedef struct toml_keyseg
{
  char *s;
  size_t len;
  size_t pos;
  unsigned line, column;
} toml_keyseg_t;

typedef struct toml_key
{
  toml_keyseg_t *seg;
  size_t n, cap;
} toml_key_t;

static void
key_clear (toml_key_t *k)
{
  for (size_t i = 0; i < k->n; i++)
    free (k->seg[i].s);
  free (k->seg);
  k->seg = NULL;
  k->n = k->cap = 0;
}

static bool
is_bare_key_char (int c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
         || c == '-';
}

/* Longest key name quoted in an error message; the position says the rest. */
#define TOML_KEY_NAME_MAX 200

/* Human-readable dotted name of the first n segments, for messages.  Quoted
 * when needed; bytes that would garble a terminal become '?'. */
static char *
key_name (const toml_key_t *k, size_t n)
{
  toml_buf_t b = { 0 };

  toml_buf_push (&b, "", 0);
  for (size_t i = 0; i < n; i++)
    {
      const toml_keyseg_t *s = &k->seg[i];
      bool bare = s->len > 0;
      for (size_t j = 0; j < s->len; j++)
        bare = bare && is_bare_key_char ((unsigned char) s->s[j]);
      if (i > 0)
        toml_buf_push (&b, ".", 1);
      if (!bare)
        toml_buf_push (&b, "\"", 1);
      for (size_t j = 0; j < s->len; j++)
        {
          unsigned char c = (unsigned char) s->s[j];
          char safe = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char) c;
          toml_buf_push (&b, &safe, 1);
        }
      if (!bare)
        toml_buf_push (&b, "\"", 1);
      if (b.len > TOML_KEY_NAME_MAX)
        {
          /* Cut on a character boundary so the message stays UTF-8. */
          b.len = TOML_KEY_NAME_MAX;
          while (b.len > 0 && ((unsigned char) b.ptr[b.len] & 0xc0) == 0x80)
            b.len--;
          b.ptr[b.len] = '\0';
          toml_buf_push (&b, "...", 3);
          break;
        }
    }
  return b.ptr;
}

/* key = simple-key *( ws "." ws simple-key ); leaves p->pos after the last
 * segment and any whitespace that follows it. */
static int
parse_key (toml_parser_t *p, toml_key_t *key)
{
  char buf[32];

  for (;;)
    {
      toml_keyseg_t seg = { .pos = p->pos };
      toml_buf_t b = { 0 };
      int c = toml_peek (p, 0);

      toml_locate (p, p->pos, &seg.line, &seg.column);
      if (c == '"' || c == '\'')
        {
          if (toml_parse_string (p, false, &b) < 0)
            {
              toml_buf_free (&b);
              return -1;
            }
        }
      else
        {
          size_t n = 0;
          while (is_bare_key_char (toml_peek (p, n)))
            n++;
          if (n == 0)
            return toml_fail_at (p, p->pos, "expected a key, found %s",
                                 toml_describe (p, p->pos, buf, sizeof buf));
          toml_buf_push (&b, p->buf + p->pos, n);
          p->pos += n;
        }
      /* Every part but the last is a table level, so a longer key would
       * fail the depth check anyway: stop before buffering all of it. */
      if (key->n > AK_TOML_MAX_DEPTH)
        {
          toml_buf_free (&b);
          return toml_fail_at (p, seg.pos, "tables and arrays nested deeper than %d levels",
                               AK_TOML_MAX_DEPTH);
        }
      if (key->n == key->cap)
        {
          key->cap = key->cap ? key->cap * 2 : 4;
          key->seg = ak_xrealloc (key->seg, key->cap * sizeof (*key->seg));
        }
      seg.s = b.ptr;
      seg.len = b.len;
      key->seg[key->n++] = seg;

      skip_ws (p);
      if (toml_peek (p, 0) != '.')
        return 0;
      p->pos++;
      skip_ws (p);
    }
}

static toml_item_t *
lookup_seg (ak_toml_value_t *t, const toml_keyseg_t *seg)
{
  return toml_table_lookup (t, seg->s, seg->len);
}

static ak_toml_value_t *
add_table (ak_toml_value_t *parent, const toml_keyseg_t *seg, toml_origin_t origin,
           unsigned line, unsigned column)
{
  ak_toml_value_t *t = toml_value_new (AK_TOML_TABLE, origin, line, column);
  toml_table_insert (parent, seg->s, seg->len, t, seg->line, seg->column);
  return t;
}

/* "an integer", "a table defined by a header", ...: what a key already
 * holds, for redefinition errors. */
static const char *
describe_existing (const ak_toml_value_t *v)
{
  switch (v->origin)
    {
    case TOML_IMPLICIT:
      return "a table implied by a header";
    case TOML_HEADER:
      return "a table defined by a header";
    case TOML_DOTTED:
      return "a table defined by dotted keys";
    case TOML_INLINE:
      return "an inline table";
    case TOML_ARRAY_TABLES:
      return "an array of tables";
    case TOML_VALUE:
      break;
    }
  switch (v->type)
    {
    case AK_TOML_STRING:
      return "a string";
    case AK_TOML_INTEGER:
      return "an integer";
    case AK_TOML_FLOAT:
      return "a float";
    case AK_TOML_BOOL:
      return "a boolean";
    case AK_TOML_DATETIME:
      return "a datetime";
    case AK_TOML_DATETIME_LOCAL:
      return "a local datetime";
    case AK_TOML_DATE_LOCAL:
      return "a local date";
    case AK_TOML_TIME_LOCAL:
      return "a local time";
    case AK_TOML_ARRAY:
      return "an array";
    case AK_TOML_TABLE:
      break;
    }
  return "a table";
}

/* "cannot define table [a.b.c]: 'a.b' is already an integer (line 3)" */
static int
fail_defined (toml_parser_t *p, const toml_key_t *key, size_t upto, const toml_item_t *prev,
              const char *what, const char *open, const char *close)
{
  _cleanup_free_ char *full = key_name (key, key->n);
  _cleanup_free_ char *part = key_name (key, upto);
  return toml_fail_at (p, key->seg[upto - 1].pos, "%s %s%s%s: '%s' is already %s (line %u)", what,
                       open, full, close, part, describe_existing (prev->value), prev->line);
}

/* ---- values ---- */

static ak_toml_value_t *parse_value (toml_parser_t *p, unsigned depth);

static void
value_freep (ak_toml_value_t **v)
{
  toml_value_free (*v);
}
#define _cleanup_value_ _cleanup_ (value_freep)

static int
check_depth (toml_parser_t *p, size_t pos, unsigned depth)
{
  if (depth > AK_TOML_MAX_DEPTH)
    return toml_fail_at (p, pos, "tables and arrays nested deeper than %d levels",
                         AK_TOML_MAX_DEPTH);
  return 0;
}

/* key = value into table t (at the given depth).  Dotted keys create tables
 * on the way and may pass through tables that dotted keys created, but not
 * extend a table defined by a [header] or an inline table (both are closed
 * once written).  A table only implied by a header, [a] of [a.b], is not
 * defined yet, so dotted keys may define it; after that a [header] for it
 * would be a second definition. */
static int
parse_keyval (toml_parser_t *p, ak_toml_value_t *t, unsigned depth)
{
  __attribute__ ((cleanup (key_clear))) toml_key_t key = { 0 };
  char buf[32];

  if (parse_key (p, &key) < 0)
    return -1;
  if (toml_peek (p, 0) != '=')
    return toml_fail_at (p, p->pos, "expected '=' after a key, found %s",
                         toml_describe (p, p->pos, buf, sizeof buf));
  p->pos++;
  skip_ws (p);

  for (size_t i = 0; i + 1 < key.n; i++)
    {
      toml_keyseg_t *seg = &key.seg[i];
      toml_item_t *it = lookup_seg (t, seg);
      if (check_depth (p, seg->pos, ++depth) < 0)
        return -1;
      if (it == NULL)
        t = add_table (t, seg, TOML_DOTTED, seg->line, seg->column);
      else if (it->value->type == AK_TOML_TABLE
               && (it->value->origin == TOML_DOTTED || it->value->origin == TOML_IMPLICIT))
        {
          t = it->value;
          t->origin = TOML_DOTTED;
        }
      else
        return fail_defined (p, &key, i + 1, it, "cannot set key", "'", "'");
    }

  toml_keyseg_t *last = &key.seg[key.n - 1];
  toml_item_t *prev = lookup_seg (t, last);
  if (prev != NULL)
    {
      _cleanup_free_ char *name = key_name (&key, key.n);
      return toml_fail_at (p, last->pos, "duplicate key '%s' (first defined at line %u)", name,
                           prev->line);
    }
  ak_toml_value_t *v = parse_value (p, depth + 1);
  if (v == NULL)
    return -1;
  toml_table_insert (t, last->s, last->len, v, last->line, last->column);
  return 0;
}

static ak_toml_value_t *
parse_array (toml_parser_t *p, unsigned depth, unsigned line, unsigned column)
{
  _cleanup_value_ ak_toml_value_t *a = toml_value_new (AK_TOML_ARRAY, TOML_VALUE, line, column);
  char buf[32];

  p->pos++;
  for (;;)
    {
      if (skip_blank (p) < 0)
        return NULL;
      if (toml_peek (p, 0) == ']')
        break;
      ak_toml_value_t *v = parse_value (p, depth + 1);
      if (v == NULL)
        return NULL;
      toml_array_push (a, v);
      if (skip_blank (p) < 0)
        return NULL;
      if (toml_peek (p, 0) == ',')
        {
          p->pos++;
          continue;
        }
      if (toml_peek (p, 0) == ']')
        break;
      toml_fail_at (p, p->pos, "expected ',' or ']' in an array, found %s",
                    toml_describe (p, p->pos, buf, sizeof buf));
      return NULL;
    }
  p->pos++;
  return steal_pointer (&a);
}

/* { key = value, ... } on one line, no trailing comma (TOML 1.0). */
static ak_toml_value_t *
parse_inline_table (toml_parser_t *p, unsigned depth, unsigned line, unsigned column)
{
  _cleanup_value_ ak_toml_value_t *t = toml_value_new (AK_TOML_TABLE, TOML_INLINE, line, column);
  char buf[32];

  p->pos++;
  skip_ws (p);
  if (toml_peek (p, 0) == '}')
    {
      p->pos++;
      return steal_pointer (&t);
    }
  for (;;)
    {
      if (parse_keyval (p, t, depth) < 0)
        return NULL;
      skip_ws (p);
      if (toml_peek (p, 0) == '}')
        break;
      if (toml_peek (p, 0) != ',')
        {
          toml_fail_at (p, p->pos, "expected ',' or '}' in an inline table, found %s%s",
                        toml_describe (p, p->pos, buf, sizeof buf),
                        toml_peek (p, 0) == '\n' || toml_peek (p, 0) == '\r'
                            ? " (inline tables must be on one line)"
                            : "");
          return NULL;
        }
      p->pos++;
      skip_ws (p);
      if (toml_peek (p, 0) == '}')
        {
          toml_fail_at (p, p->pos, "trailing comma in an inline table");
          return NULL;
        }
    }
  p->pos++;
  return steal_pointer (&t);
}

static bool
match_word (toml_parser_t *p, const char *word)
{
  size_t n = strlen (word);
  return p->len - p->pos >= n && memcmp (p->buf + p->pos, word, n) == 0;
}

/* A value whose tables and arrays would sit at the given depth. */
static ak_toml_value_t *
parse_value (toml_parser_t *p, unsigned depth)
{
  _cleanup_value_ ak_toml_value_t *v = NULL;
  unsigned line, column;
  char buf[32];
  int c = toml_peek (p, 0);

  toml_locate (p, p->pos, &line, &column);
  switch (c)
    {
    case '"':
    case '\'':
      {
        toml_buf_t b = { 0 };
        if (toml_parse_string (p, true, &b) < 0)
          {
            toml_buf_free (&b);
            return NULL;
          }
        v = toml_value_new (AK_TOML_STRING, TOML_VALUE, line, column);
        v->u.str.ptr = b.ptr;
        v->u.str.len = b.len;
        break;
      }
    case '[':
    case '{':
      if (check_depth (p, p->pos, depth) < 0)
        return NULL;
      return c == '[' ? parse_array (p, depth, line, column)
                      : parse_inline_table (p, depth, line, column);
    case 't':
    case 'f':
      if (!match_word (p, c == 't' ? "true" : "false"))
        goto bad;
      v = toml_value_new (AK_TOML_BOOL, TOML_VALUE, line, column);
      v->u.boolean = c == 't';
      p->pos += c == 't' ? 4 : 5;
      break;
    default:
      if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n'))
        goto bad;
      v = toml_value_new (AK_TOML_INTEGER, TOML_VALUE, line, column);
      if (toml_parse_number_or_datetime (p, v) < 0)
        return NULL;
      break;
    }
  return steal_pointer (&v);

bad:
  toml_fail_at (p, p->pos, "expected a value, found %s",
                toml_describe (p, p->pos, buf, sizeof buf));
  return NULL;
}

/* ---- table headers ---- */

/* [a.b.c] or [[a.b.c]]: walk from the root, creating implied tables and
 * stepping into the last element of arrays of tables, then define the last
 * key.  Sets *cur and *depth to the table that following key/values fill. */
static int
parse_header (toml_parser_t *p, ak_toml_value_t *root, ak_toml_value_t **cur, unsigned *depth)
{
  __attribute__ ((cleanup (key_clear))) toml_key_t key = { 0 };
  size_t start = p->pos;
  bool aot = toml_peek (p, 1) == '[';
  unsigned line, column, d = 0;
  ak_toml_value_t *t = root;
  char buf[32];

  toml_locate (p, start, &line, &column);
  p->pos += aot ? 2 : 1;
  skip_ws (p);
  if (parse_key (p, &key) < 0)
    return -1;
  if (toml_peek (p, 0) != ']' || (aot && toml_peek (p, 1) != ']'))
    return toml_fail_at (p, p->pos, "expected '%s' to close the table header, found %s",
                         aot ? "]]" : "]", toml_describe (p, p->pos, buf, sizeof buf));
  p->pos += aot ? 2 : 1;

  for (size_t i = 0; i + 1 < key.n; i++)
    {
      toml_keyseg_t *seg = &key.seg[i];
      toml_item_t *it = lookup_seg (t, seg);
      if (it == NULL)
        t = add_table (t, seg, TOML_IMPLICIT, seg->line, seg->column);
      else if (it->value->type == AK_TOML_ARRAY && it->value->origin == TOML_ARRAY_TABLES)
        {
          toml_array_t *a = &it->value->u.array;
          t = a->items[a->len - 1];
          d++;
        }
      else if (it->value->type == AK_TOML_TABLE && it->value->origin != TOML_INLINE)
        t = it->value;
      else
        return fail_defined (p, &key, i + 1, it, "cannot define table", aot ? "[[" : "[",
                             aot ? "]]" : "]");
      if (check_depth (p, seg->pos, ++d) < 0)
        return -1;
    }

  toml_keyseg_t *last = &key.seg[key.n - 1];
  toml_item_t *it = lookup_seg (t, last);
  if (check_depth (p, last->pos, d + (aot ? 2 : 1)) < 0)
    return -1;
  if (aot)
    {
      ak_toml_value_t *a;
      if (it == NULL)
        {
          a = toml_value_new (AK_TOML_ARRAY, TOML_ARRAY_TABLES, line, column);
          toml_table_insert (t, last->s, last->len, a, last->line, last->column);
        }
      else if (it->value->type == AK_TOML_ARRAY && it->value->origin == TOML_ARRAY_TABLES)
        a = it->value;
      else
        return fail_defined (p, &key, key.n, it, "cannot define table", "[[", "]]");
      *cur = toml_value_new (AK_TOML_TABLE, TOML_HEADER, line, column);
      toml_array_push (a, *cur);
      *depth = d + 2;
      return 0;
    }

  if (it == NULL)
    *cur = add_table (t, last, TOML_HEADER, line, column);
  else if (it->value->type == AK_TOML_TABLE && it->value->origin == TOML_IMPLICIT)
    {
      /* An implied table may be defined once, later; from now on it is
       * known by its header. */
      *cur = it->value;
      (*cur)->origin = TOML_HEADER;
      (*cur)->line = line;
      (*cur)->column = column;
      it->line = last->line;
      it->column = last->column;
    }
  else
    return fail_defined (p, &key, key.n, it, "cannot define table", "[", "]");
  *depth = d + 1;
  return 0;
}

/* ---- documents ---- */

static int
parse_document (toml_parser_t *p, ak_toml_value_t *root)
{
  ak_toml_value_t *cur = root;
  unsigned depth = 0;
  char buf[32];

  for (;;)
    {
      skip_ws (p);
      int c = toml_peek (p, 0);
      if (c < 0)
        return 0;
      if (c == '[')
        {
          if (parse_header (p, root, &cur, &depth) < 0)
            return -1;
          if (end_of_line (p, "a table header") < 0)
            return -1;
        }
      else if (c == '#' || c == '\n' || c == '\r')
        {
          if (end_of_line (p, "a comment") < 0)
            return -1;
        }
      else if (is_bare_key_char (c) || c == '"' || c == '\'')
        {
          if (parse_keyval (p, cur, depth) < 0)
            return -1;
          if (end_of_line (p, "a value") < 0)
            return -1;
        }
      else
        return toml_fail_at (p, p->pos, "expected a key or a table header, found %s",
                             toml_describe (p, p->pos, buf, sizeof buf));
    }
}

int
ak_toml_parse (const char *buf, size_t len, const char *filename, ak_toml_t **out,
               ak_error_t **err)
{
  toml_parser_t p = {
    .buf = buf,
    .len = len,
    .filename = filename ? filename : "<input>",
    .err = err,
    .loc_line = 1,
    .loc_column = 1,
  };
  size_t bad;
  int rc;

  if (buf == NULL && len > 0)
    return ak_error_set (err, 0, "%s: no input", p.filename);
  bad = utf8_check ((const unsigned char *) buf, len);
  if (bad < len)
    {
      /* Point at the broken byte; columns count only what came before. */
      toml_fail_at (&p, bad, "invalid UTF-8 (byte 0x%02x)", (unsigned char) buf[bad]);
      return -1;
    }
  /* A byte order mark is tolerated at the very start only. */
  if (len >= 3 && memcmp (buf, "\xef\xbb\xbf", 3) == 0)
    p.pos = p.loc_pos = 3;

  ak_toml_value_t *root = toml_value_new (AK_TOML_TABLE, TOML_HEADER, 1, 1);
  rc = parse_document (&p, root);
  if (p.c_locale != (locale_t) 0)
    freelocale (p.c_locale);
  if (rc < 0)
    {
      toml_value_free (root);
      return -1;
    }
  ak_toml_t *doc = ak_xcalloc (1, sizeof (*doc));
  doc->root = root;
  doc->filename = filename ? ak_xstrdup (filename) : NULL;
  *out = doc;
  return 0;
}

int
ak_toml_parse_file (const char *path, ak_toml_t **out, ak_error_t **err)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;

  if (ak_read_file (path, &buf, &len, err) < 0)
    return -1;
  return ak_toml_parse (buf, len, path, out, err);
}
