/* TOML scalars: strings, integers, floats and date-times.
 *
 * Everything here checks the exact TOML 1.0.0 grammar rather than leaning on
 * strtol()/strtod() leniency (which would accept "0x", " 1", "1__0", ...):
 * values from a config file must mean one thing only. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/toml_private.h"

void
toml_buf_push (toml_buf_t *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      size_t cap = b->cap ? b->cap : 32;
      while (cap < b->len + n + 1)
        cap *= 2;
      b->ptr = ak_xrealloc (b->ptr, cap);
      b->cap = cap;
    }
  memcpy (b->ptr + b->len, s, n);
  b->len += n;
  b->ptr[b->len] = '\0';
}

void
toml_buf_free (toml_buf_t *b)
{
  free (b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

static void
buf_push_char (toml_buf_t *b, char c)
{
  toml_buf_push (b, &c, 1);
}

static void
buf_push_utf8 (toml_buf_t *b, uint32_t cp)
{
  char u[4];
  size_t n;

  if (cp < 0x80)
    {
      u[0] = (char) cp;
      n = 1;
    }
  else if (cp < 0x800)
    {
      u[0] = (char) (0xc0 | (cp >> 6));
      u[1] = (char) (0x80 | (cp & 0x3f));
      n = 2;
    }
  else if (cp < 0x10000)
    {
      u[0] = (char) (0xe0 | (cp >> 12));
      u[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
      u[2] = (char) (0x80 | (cp & 0x3f));
      n = 3;
    }
  else
    {
      u[0] = (char) (0xf0 | (cp >> 18));
      u[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
      u[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
      u[3] = (char) (0x80 | (cp & 0x3f));
      n = 4;
    }
  toml_buf_push (b, u, n);
}

static bool
is_digit (int c)
{
  return c >= '0' && c <= '9';
}

/* Control characters other than tab are not allowed raw in any string or
 * comment: they would make the file display differently from its meaning. */
static bool
is_plain_string_byte (int c)
{
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* \uXXXX or \UXXXXXXXX at p->pos (pointing at the 'u'/'U'). */
static int
parse_unicode_escape (toml_parser_t *p, toml_buf_t *out)
{
  size_t start = p->pos - 1;
  int ndigits = toml_peek (p, 0) == 'u' ? 4 : 8;
  uint32_t cp = 0;

  for (int i = 1; i <= ndigits; i++)
    {
      int h = ak_hex_value (toml_peek (p, (size_t) i));
      if (h < 0)
        return toml_fail_at (p, start, "\\%c escape needs %d hex digits", ndigits == 4 ? 'u' : 'U',
                             ndigits);
      cp = (cp << 4) | (uint32_t) h;
    }
  /* Only Unicode scalar values: a surrogate or an out-of-range code point
   * would make the decoded string invalid UTF-8. */
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return toml_fail_at (p, start, "escape \\%c%0*X is not a Unicode scalar value",
                         ndigits == 4 ? 'u' : 'U', ndigits, (unsigned) cp);
  buf_push_utf8 (out, cp);
  p->pos += (size_t) ndigits + 1;
  return 0;
}

/* An escape in a basic string, p->pos at the backslash. */
static int
parse_escape (toml_parser_t *p, bool multiline, toml_buf_t *out)
{
  int c = toml_peek (p, 1);
  char buf[32];

  if (multiline)
    {
      /* A backslash that ends a line (trailing spaces allowed) swallows all
       * whitespace and newlines up to the next visible character. */
      size_t i = 1;
      while (toml_peek (p, i) == ' ' || toml_peek (p, i) == '\t')
        i++;
      if (toml_peek (p, i) == '\n' || (toml_peek (p, i) == '\r' && toml_peek (p, i + 1) == '\n'))
        {
          p->pos += i;
          for (;;)
            {
              int d = toml_peek (p, 0);
              if (d == ' ' || d == '\t' || d == '\n')
                p->pos++;
              else if (d == '\r' && toml_peek (p, 1) == '\n')
                p->pos += 2;
              else
                return 0;
            }
        }
    }

  const char *rep = NULL;
  switch (c)
    {
    case 'b':
      rep = "\b";
      break;
    case 't':
      rep = "\t";
      break;
    case 'n':
      rep = "\n";
      break;
    case 'f':
      rep = "\f";
      break;
    case 'r':
      rep = "\r";
      break;
    case '"':
      rep = "\"";
      break;
    case '\\':
      rep = "\\";
      break;
    case 'u':
    case 'U':
      p->pos++;
      return parse_unicode_escape (p, out);
    default:
      if (c < 0)
        return toml_fail_at (p, p->pos, "unterminated string");
      return toml_fail_at (p, p->pos + 1, "invalid escape sequence: backslash followed by %s",
                           toml_describe (p, p->pos + 1, buf, sizeof buf));
    }
  buf_push_char (out, rep[0]);
  p->pos += 2;
  return 0;
}

int
toml_parse_string (toml_parser_t *p, bool allow_multiline, toml_buf_t *out)
{
  size_t start = p->pos;
  int q = toml_peek (p, 0);
  bool basic = q == '"';
  bool multiline = toml_peek (p, 1) == q && toml_peek (p, 2) == q;
  char buf[32];

  out->len = 0;
  toml_buf_push (out, "", 0);
  if (multiline)
    {
      if (!allow_multiline)
        return toml_fail_at (p, start, "a multi-line string cannot be a key");
      p->pos += 3;
      /* A newline right after the opening delimiter is not content. */
      if (toml_peek (p, 0) == '\n')
        p->pos++;
      else if (toml_peek (p, 0) == '\r' && toml_peek (p, 1) == '\n')
        p->pos += 2;
    }
  else
    p->pos++;

  for (;;)
    {
      int c = toml_peek (p, 0);

      if (c < 0)
        return toml_fail_at (p, start, "unterminated string");
      if (c == q)
        {
          if (!multiline)
            {
              p->pos++;
              return 0;
            }
          size_t n = 0;
          while (toml_peek (p, n) == q)
            n++;
          if (n < 3)
            {
              toml_buf_push (out, p->buf + p->pos, n);
              p->pos += n;
              continue;
            }
          /* Up to two quotes may sit right before the closing delimiter. */
          if (n > 5)
            return toml_fail_at (p, p->pos + 5, "too many quotes at the end of a multi-line string");
          toml_buf_push (out, p->buf + p->pos, n - 3);
          p->pos += n;
          return 0;
        }
      if (c == '\\' && basic)
        {
          if (parse_escape (p, multiline, out) < 0)
            return -1;
          continue;
        }
      if (c == '\n' || (c == '\r' && toml_peek (p, 1) == '\n'))
        {
          if (!multiline)
            return toml_fail_at (p, start, "unterminated string (newline before the closing quote)");
          /* Newlines inside strings are normalised to LF so a value does not
           * depend on how the file was saved. */
          buf_push_char (out, '\n');
          p->pos += c == '\n' ? 1 : 2;
          continue;
        }
      if (!is_plain_string_byte (c))
        return toml_fail_at (p, p->pos, "control character %s is not allowed in a string",
                             toml_describe (p, p->pos, buf, sizeof buf));
      size_t run = 1;
      for (;;)
        {
          int d = toml_peek (p, run);
          if (d < 0 || d == q || d == '\\' || d == '\n' || d == '\r' || !is_plain_string_byte (d))
            break;
          run++;
        }
      toml_buf_push (out, p->buf + p->pos, run);
      p->pos += run;
    }
}

/* ---- numbers ---- */

static bool
is_token_char (int c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
         || c == '+' || c == '-' || c == '.' || c == ':';
}

static int
digit_value (int c, int base)
{
  int d = ak_hex_value (c);
  return d >= 0 && d < base ? d : -1;
}

/* Digits of base in s[0..n) with single underscores only between digits.
 * Stores the value, saturated to UINT64_MAX, in *val when val is not NULL. */
static bool
check_digits (const char *s, size_t n, int base, uint64_t *val)
{
  uint64_t v = 0;
  bool overflow = false;

  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] == '_')
        {
          if (i == 0 || i + 1 == n || s[i - 1] == '_')
            return false;
          continue;
        }
      int d = digit_value ((unsigned char) s[i], base);
      if (d < 0)
        return false;
      if (v > (UINT64_MAX - (uint64_t) d) / (uint64_t) base)
        overflow = true;
      else
        v = v * (uint64_t) base + (uint64_t) d;
    }
  if (val)
    *val = overflow ? UINT64_MAX : v;
  return true;
}

/* Decimal integer part: "0" or a digit run without leading zeros. */
static bool
check_dec_int (const char *s, size_t n, uint64_t *val)
{
  if (n > 1 && s[0] == '0')
    return false;
  return check_digits (s, n, 10, val);
}

static int
parse_float (toml_parser_t *p, size_t start, const char *s, size_t n, ak_toml_value_t *v)
{
  _cleanup_free_ char *clean = ak_xmalloc (n + 1);
  size_t m = 0;
  char *end = NULL;

  for (size_t i = 0; i < n; i++)
    if (s[i] != '_')
      clean[m++] = s[i];
  clean[m] = '\0';

  if (p->c_locale == (locale_t) 0)
    {
      p->c_locale = newlocale (LC_NUMERIC_MASK, "C", (locale_t) 0);
      if (p->c_locale == (locale_t) 0)
        ak_oom ();
    }
  errno = 0;
  double d = strtod_l (clean, &end, p->c_locale);
  if (end != clean + m)
    return toml_fail_at (p, start, "invalid float");
  /* Rounding a huge literal to infinity would silently change its meaning;
   * underflow to zero or a subnormal is only a loss of precision. */
  if (errno == ERANGE && isinf (d))
    return toml_fail_at (p, start, "float out of range");
  v->type = AK_TOML_FLOAT;
  v->u.flt = d;
  return 0;
}

static int
parse_number (toml_parser_t *p, size_t start, const char *s, size_t n, ak_toml_value_t *v)
{
  size_t i = 0;
  bool neg = false, has_sign = false;
  uint64_t u = 0;

  if (n > 0 && (s[0] == '+' || s[0] == '-'))
    {
      neg = s[0] == '-';
      has_sign = true;
      i = 1;
    }
  if (n - i == 3 && (memcmp (s + i, "inf", 3) == 0 || memcmp (s + i, "nan", 3) == 0))
    {
      v->type = AK_TOML_FLOAT;
      if (s[i] == 'i')
        v->u.flt = neg ? -INFINITY : INFINITY;
      else
        v->u.flt = neg ? -NAN : NAN;
      return 0;
    }

  if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b'))
    {
      int base = s[i + 1] == 'x' ? 16 : s[i + 1] == 'o' ? 8 : 2;
      if (has_sign)
        return toml_fail_at (p, start, "a sign is not allowed on hexadecimal, octal or binary "
                                       "integers");
      if (!check_digits (s + i + 2, n - i - 2, base, &u))
        return toml_fail_at (p, start, "invalid %s integer",
                             base == 16 ? "hexadecimal" : base == 8 ? "octal" : "binary");
      if (u > (uint64_t) INT64_MAX)
        return toml_fail_at (p, start, "integer out of range (64-bit signed)");
      v->type = AK_TOML_INTEGER;
      v->u.integer = (int64_t) u;
      return 0;
    }

  /* Split into integer part, fraction and exponent, then check each. */
  size_t int_start = i;
  while (i < n && (is_digit ((unsigned char) s[i]) || s[i] == '_'))
    i++;
  size_t int_end = i;
  bool is_float = false;
  if (i < n && s[i] == '.')
    {
      size_t f = ++i;
      while (i < n && (is_digit ((unsigned char) s[i]) || s[i] == '_'))
        i++;
      if (!check_digits (s + f, i - f, 10, NULL))
        return toml_fail_at (p, start, "invalid float: the fraction needs digits");
      is_float = true;
    }
  if (i < n && (s[i] == 'e' || s[i] == 'E'))
    {
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
      size_t e = i;
      while (i < n && (is_digit ((unsigned char) s[i]) || s[i] == '_'))
        i++;
      if (!check_digits (s + e, i - e, 10, NULL))
        return toml_fail_at (p, start, "invalid float: the exponent needs digits");
      is_float = true;
    }
  if (i != n)
    return toml_fail_at (p, start, "invalid %s", is_float ? "float" : "number");
  if (int_end > int_start + 1 && s[int_start] == '0')
    return toml_fail_at (p, start, "leading zeros are not allowed");
  if (!check_dec_int (s + int_start, int_end - int_start, &u))
    return toml_fail_at (p, start, "invalid %s", is_float ? "float" : "integer");
  if (is_float)
    return parse_float (p, start, s, n, v);

  if (u > (uint64_t) INT64_MAX + (neg ? 1 : 0))
    return toml_fail_at (p, start, "integer out of range (64-bit signed)");
  v->type = AK_TOML_INTEGER;
  /* -(INT64_MIN) does not fit: negate in unsigned arithmetic. */
  v->u.integer = neg ? (int64_t) (0 - u) : (int64_t) u;
  return 0;
}

/* ---- date-times ---- */

bool
toml_is_leap_year (int year)
{
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int
toml_days_in_month (int year, int month)
{
  static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (month < 1 || month > 12)
    return 0;
  return month == 2 && toml_is_leap_year (year) ? 29 : days[month - 1];
}

/* Exactly n decimal digits at s. */
static bool
fixed_digits (const char *s, size_t avail, size_t n, int *out)
{
  int v = 0;
  if (avail < n)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      if (!is_digit ((unsigned char) s[i]))
        return false;
      v = v * 10 + (s[i] - '0');
    }
  *out = v;
  return true;
}

static bool
looks_like_date (const char *s, size_t n)
{
  return n >= 10 && is_digit ((unsigned char) s[0]) && is_digit ((unsigned char) s[1])
         && is_digit ((unsigned char) s[2]) && is_digit ((unsigned char) s[3]) && s[4] == '-';
}

static int
parse_date (toml_parser_t *p, size_t start, const char *s, size_t n, ak_toml_datetime_t *dt)
{
  if (!fixed_digits (s, n, 4, &dt->year) || s[4] != '-' || !fixed_digits (s + 5, n - 5, 2, &dt->month)
      || s[7] != '-' || !fixed_digits (s + 8, n - 8, 2, &dt->day))
    return toml_fail_at (p, start, "invalid date: expected YYYY-MM-DD");
  if (dt->month < 1 || dt->month > 12)
    return toml_fail_at (p, start, "invalid date: month %02d out of range", dt->month);
  if (dt->day < 1 || dt->day > toml_days_in_month (dt->year, dt->month))
    return toml_fail_at (p, start, "invalid date: day %02d out of range for %04d-%02d", dt->day,
                         dt->year, dt->month);
  return 0;
}

/* HH:MM:SS[.frac] from s; *used gets the length consumed. */
static int
parse_time (toml_parser_t *p, size_t start, const char *s, size_t n, size_t *used,
            ak_toml_datetime_t *dt)
{
  size_t i;

  if (n < 8 || !fixed_digits (s, n, 2, &dt->hour) || s[2] != ':'
      || !fixed_digits (s + 3, n - 3, 2, &dt->minute) || s[5] != ':'
      || !fixed_digits (s + 6, n - 6, 2, &dt->second))
    return toml_fail_at (p, start, "invalid time: expected HH:MM:SS");
  if (dt->hour > 23 || dt->minute > 59 || dt->second > 60)
    return toml_fail_at (p, start, "invalid time: %02d:%02d:%02d out of range", dt->hour,
                         dt->minute, dt->second);
  i = 8;
  if (i < n && s[i] == '.')
    {
      size_t f = ++i;
      while (i < n && is_digit ((unsigned char) s[i]))
        {
          if (i - f < 9)
            {
              dt->nanosecond = dt->nanosecond * 10 + (s[i] - '0');
              dt->frac_digits++;
            }
          i++;
        }
      if (i == f)
        return toml_fail_at (p, start, "invalid time: digits must follow the decimal point");
      for (int k = dt->frac_digits; k < 9; k++)
        dt->nanosecond *= 10;
    }
  *used = i;
  return 0;
}

static int
parse_datetime (toml_parser_t *p, size_t start, const char *s, size_t n, ak_toml_value_t *v)
{
  ak_toml_datetime_t *dt = &v->u.dt;
  size_t used = 0;

  memset (dt, 0, sizeof (*dt));
  if (looks_like_date (s, n))
    {
      if (parse_date (p, start, s, n, dt) < 0)
        return -1;
      if (n == 10)
        {
          v->type = AK_TOML_DATE_LOCAL;
          return 0;
        }
      if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return toml_fail_at (p, start, "invalid date-time: expected 'T' after the date");
      if (parse_time (p, start, s + 11, n - 11, &used, dt) < 0)
        return -1;
      s += 11 + used;
      n -= 11 + used;
      if (n == 0)
        {
          v->type = AK_TOML_DATETIME_LOCAL;
          return 0;
        }
      if (n == 1 && (s[0] == 'Z' || s[0] == 'z'))
        {
          v->type = AK_TOML_DATETIME;
          return 0;
        }
      int oh, om;
      if (n != 6 || (s[0] != '+' && s[0] != '-') || !fixed_digits (s + 1, 2, 2, &oh)
          || s[3] != ':' || !fixed_digits (s + 4, 2, 2, &om))
        return toml_fail_at (p, start, "invalid date-time: bad time zone offset (expected Z or "
                                       "+HH:MM)");
      if (oh > 23 || om > 59)
        return toml_fail_at (p, start, "invalid date-time: time zone offset out of range");
      dt->offset_minutes = (s[0] == '-' ? -1 : 1) * (oh * 60 + om);
      v->type = AK_TOML_DATETIME;
      return 0;
    }

  if (parse_time (p, start, s, n, &used, dt) < 0)
    return -1;
  if (used != n)
    return toml_fail_at (p, start, "invalid local time: unexpected text after the time");
  v->type = AK_TOML_TIME_LOCAL;
  return 0;
}

int
toml_parse_number_or_datetime (toml_parser_t *p, ak_toml_value_t *v)
{
  size_t start = p->pos, end = p->pos;
  const char *s = p->buf + start;

  while (end < p->len && is_token_char ((unsigned char) p->buf[end]))
    end++;
  /* A date and a time may be separated by a space, which otherwise ends a
   * value: join them when a time clearly follows. */
  if (end - start == 10 && looks_like_date (s, 10) && end + 3 < p->len && p->buf[end] == ' '
      && is_digit ((unsigned char) p->buf[end + 1]) && is_digit ((unsigned char) p->buf[end + 2])
      && p->buf[end + 3] == ':')
    {
      end++;
      while (end < p->len && is_token_char ((unsigned char) p->buf[end]))
        end++;
    }

  size_t n = end - start;
  int rc;
  if (looks_like_date (s, n) || (n >= 3 && is_digit ((unsigned char) s[0])
                                 && is_digit ((unsigned char) s[1]) && s[2] == ':'))
    rc = parse_datetime (p, start, s, n, v);
  else if (n == 0)
    rc = toml_fail_at (p, start, "expected a value");
  else
    rc = parse_number (p, start, s, n, v);
  if (rc < 0)
    return -1;
  p->pos = end;
  return 0;
}
