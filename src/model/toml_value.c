/* The TOML value tree: construction for the parser, getters for everyone. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "model/toml_private.h"

/* Below this many keys a linear scan beats hashing. */
#define TOML_INDEX_MIN ((size_t) 8)

ak_toml_value_t *
toml_value_new (ak_toml_type_t type, toml_origin_t origin, unsigned line, unsigned column)
{
  ak_toml_value_t *v = ak_xcalloc (1, sizeof (*v));
  v->type = type;
  v->origin = origin;
  v->line = line;
  v->column = column;
  return v;
}

/* Recursion is bounded: the parser refuses trees deeper than
 * AK_TOML_MAX_DEPTH. */
void
toml_value_free (ak_toml_value_t *v)
{
  if (v == NULL)
    return;
  switch (v->type)
    {
    case AK_TOML_STRING:
      free (v->u.str.ptr);
      break;
    case AK_TOML_ARRAY:
      for (size_t i = 0; i < v->u.array.len; i++)
        toml_value_free (v->u.array.items[i]);
      free (v->u.array.items);
      break;
    case AK_TOML_TABLE:
      for (size_t i = 0; i < v->u.table.len; i++)
        {
          free (v->u.table.items[i].key);
          toml_value_free (v->u.table.items[i].value);
        }
      free (v->u.table.items);
      free (v->u.table.index);
      break;
    case AK_TOML_INTEGER:
    case AK_TOML_FLOAT:
    case AK_TOML_BOOL:
    case AK_TOML_DATETIME:
    case AK_TOML_DATETIME_LOCAL:
    case AK_TOML_DATE_LOCAL:
    case AK_TOML_TIME_LOCAL:
      break;
    }
  free (v);
}

/* FNV-1a: keys come from the input, but the index only has to stay roughly
 * balanced, and a collision flood degrades to the linear scan we would do
 * anyway. */
static size_t
key_hash (const char *key, size_t len)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++)
    {
      h ^= (unsigned char) key[i];
      h *= 0x100000001b3ULL;
    }
  return (size_t) (h ^ (h >> 29));
}

static void
index_add (toml_table_t *t, size_t item)
{
  size_t mask = t->index_cap - 1;
  size_t slot = key_hash (t->items[item].key, t->items[item].key_len) & mask;
  while (t->index[slot] != 0)
    slot = (slot + 1) & mask;
  t->index[slot] = (uint32_t) (item + 1);
}

static void
index_rebuild (toml_table_t *t, size_t cap)
{
  free (t->index);
  t->index_cap = cap;
  t->index = ak_xcalloc (cap, sizeof (*t->index));
  for (size_t i = 0; i < t->len; i++)
    index_add (t, i);
}

toml_item_t *
toml_table_lookup (const ak_toml_value_t *v, const char *key, size_t key_len)
{
  const toml_table_t *t = &v->u.table;

  if (t->index == NULL)
    {
      for (size_t i = 0; i < t->len; i++)
        if (t->items[i].key_len == key_len && memcmp (t->items[i].key, key, key_len) == 0)
          return &t->items[i];
      return NULL;
    }
  size_t mask = t->index_cap - 1;
  for (size_t slot = key_hash (key, key_len) & mask; t->index[slot] != 0;
       slot = (slot + 1) & mask)
    {
      toml_item_t *it = &t->items[t->index[slot] - 1];
      if (it->key_len == key_len && memcmp (it->key, key, key_len) == 0)
        return it;
    }
  return NULL;
}

void
toml_table_insert (ak_toml_value_t *v, const char *key, size_t key_len, ak_toml_value_t *value,
                   unsigned line, unsigned column)
{
  toml_table_t *t = &v->u.table;

  /* The index stores 32-bit positions; a table that large cannot come from
   * any input we would accept into memory, so treat it like OOM. */
  if (t->len >= UINT32_MAX - 1)
    ak_oom ();
  if (t->len == t->cap)
    {
      t->cap = t->cap ? t->cap * 2 : 4;
      t->items = ak_xrealloc (t->items, t->cap * sizeof (*t->items));
    }
  toml_item_t *it = &t->items[t->len++];
  it->key = ak_xmalloc (key_len + 1);
  memcpy (it->key, key, key_len);
  it->key[key_len] = '\0';
  it->key_len = key_len;
  it->value = value;
  it->line = line;
  it->column = column;

  if (t->len < TOML_INDEX_MIN)
    return;
  /* Keep the load factor at or below one half. */
  if (t->index == NULL || t->len * 2 > t->index_cap)
    index_rebuild (t, t->index_cap ? t->index_cap * 2 : TOML_INDEX_MIN * 4);
  else
    index_add (t, t->len - 1);
}

void
toml_array_push (ak_toml_value_t *v, ak_toml_value_t *value)
{
  toml_array_t *a = &v->u.array;
  if (a->len == a->cap)
    {
      a->cap = a->cap ? a->cap * 2 : 4;
      a->items = ak_xrealloc (a->items, a->cap * sizeof (*a->items));
    }
  a->items[a->len++] = value;
}

void
ak_toml_free (ak_toml_t *doc)
{
  if (doc == NULL)
    return;
  toml_value_free (doc->root);
  free (doc->filename);
  free (doc);
}

const ak_toml_value_t *
ak_toml_root (const ak_toml_t *doc)
{
  return doc ? doc->root : NULL;
}

const char *
ak_toml_filename (const ak_toml_t *doc)
{
  return doc && doc->filename ? doc->filename : "<input>";
}

ak_toml_type_t
ak_toml_type (const ak_toml_value_t *v)
{
  return v->type;
}

const char *
ak_toml_type_name (ak_toml_type_t type)
{
  switch (type)
    {
    case AK_TOML_STRING:
      return "string";
    case AK_TOML_INTEGER:
      return "integer";
    case AK_TOML_FLOAT:
      return "float";
    case AK_TOML_BOOL:
      return "boolean";
    case AK_TOML_DATETIME:
      return "datetime";
    case AK_TOML_DATETIME_LOCAL:
      return "local datetime";
    case AK_TOML_DATE_LOCAL:
      return "local date";
    case AK_TOML_TIME_LOCAL:
      return "local time";
    case AK_TOML_ARRAY:
      return "array";
    case AK_TOML_TABLE:
      return "table";
    }
  return "unknown";
}

unsigned
ak_toml_line (const ak_toml_value_t *v)
{
  return v ? v->line : 0;
}

unsigned
ak_toml_column (const ak_toml_value_t *v)
{
  return v ? v->column : 0;
}

size_t
ak_toml_table_len (const ak_toml_value_t *t)
{
  return t && t->type == AK_TOML_TABLE ? t->u.table.len : 0;
}

static void
fill_entry (const toml_item_t *it, ak_toml_entry_t *out)
{
  if (out == NULL)
    return;
  out->key = it->key;
  out->key_len = it->key_len;
  out->value = it->value;
  out->line = it->line;
  out->column = it->column;
}

const ak_toml_value_t *
ak_toml_table_getn (const ak_toml_value_t *t, const char *key, size_t key_len)
{
  if (t == NULL || t->type != AK_TOML_TABLE || key == NULL)
    return NULL;
  toml_item_t *it = toml_table_lookup (t, key, key_len);
  return it ? it->value : NULL;
}

const ak_toml_value_t *
ak_toml_table_get (const ak_toml_value_t *t, const char *key)
{
  return key ? ak_toml_table_getn (t, key, strlen (key)) : NULL;
}

bool
ak_toml_table_find (const ak_toml_value_t *t, const char *key, ak_toml_entry_t *out)
{
  if (t == NULL || t->type != AK_TOML_TABLE || key == NULL)
    return false;
  toml_item_t *it = toml_table_lookup (t, key, strlen (key));
  if (it == NULL)
    return false;
  fill_entry (it, out);
  return true;
}

bool
ak_toml_table_entry (const ak_toml_value_t *t, size_t i, ak_toml_entry_t *out)
{
  if (t == NULL || t->type != AK_TOML_TABLE || i >= t->u.table.len)
    return false;
  fill_entry (&t->u.table.items[i], out);
  return true;
}

bool
ak_toml_table_next (const ak_toml_value_t *t, size_t *iter, ak_toml_entry_t *out)
{
  if (!ak_toml_table_entry (t, *iter, out))
    return false;
  (*iter)++;
  return true;
}

size_t
ak_toml_array_len (const ak_toml_value_t *a)
{
  return a && a->type == AK_TOML_ARRAY ? a->u.array.len : 0;
}

const ak_toml_value_t *
ak_toml_array_get (const ak_toml_value_t *a, size_t i)
{
  if (a == NULL || a->type != AK_TOML_ARRAY || i >= a->u.array.len)
    return NULL;
  return a->u.array.items[i];
}

bool
ak_toml_as_bool (const ak_toml_value_t *v, bool *out)
{
  if (v == NULL || v->type != AK_TOML_BOOL)
    return false;
  if (out)
    *out = v->u.boolean;
  return true;
}

bool
ak_toml_as_int (const ak_toml_value_t *v, int64_t *out)
{
  if (v == NULL || v->type != AK_TOML_INTEGER)
    return false;
  if (out)
    *out = v->u.integer;
  return true;
}

bool
ak_toml_as_float (const ak_toml_value_t *v, double *out)
{
  if (v == NULL || v->type != AK_TOML_FLOAT)
    return false;
  if (out)
    *out = v->u.flt;
  return true;
}

bool
ak_toml_as_string (const ak_toml_value_t *v, const char **out, size_t *len)
{
  if (v == NULL || v->type != AK_TOML_STRING)
    return false;
  if (out)
    *out = v->u.str.ptr;
  if (len)
    *len = v->u.str.len;
  return true;
}

static bool
is_datetime_type (ak_toml_type_t type)
{
  return type == AK_TOML_DATETIME || type == AK_TOML_DATETIME_LOCAL
         || type == AK_TOML_DATE_LOCAL || type == AK_TOML_TIME_LOCAL;
}

bool
ak_toml_as_datetime (const ak_toml_value_t *v, ak_toml_datetime_t *out)
{
  if (v == NULL || !is_datetime_type (v->type))
    return false;
  if (out)
    *out = v->u.dt;
  return true;
}

int
ak_toml_datetime_format (const ak_toml_datetime_t *dt, ak_toml_type_t type, char *buf,
                         size_t size)
{
  char date[16] = "", time[32] = "", zone[8] = "";
  int n;

  if (!is_datetime_type (type) || buf == NULL)
    return -1;
  if (type != AK_TOML_TIME_LOCAL)
    snprintf (date, sizeof date, "%04d-%02d-%02d", dt->year % 10000, dt->month % 100,
              dt->day % 100);
  if (type != AK_TOML_DATE_LOCAL)
    {
      n = snprintf (time, sizeof time, "%s%02d:%02d:%02d", type == AK_TOML_TIME_LOCAL ? "" : "T",
                    dt->hour % 100, dt->minute % 100, dt->second % 100);
      int digits = dt->frac_digits < 0 ? 0 : dt->frac_digits > 9 ? 9 : dt->frac_digits;
      if (digits > 0)
        {
          int frac = dt->nanosecond % 1000000000;
          for (int i = digits; i < 9; i++)
            frac /= 10;
          snprintf (time + n, sizeof time - (size_t) n, ".%0*d", digits, frac < 0 ? -frac : frac);
        }
    }
  if (type == AK_TOML_DATETIME)
    {
      int off = dt->offset_minutes;
      if (off == 0)
        strcpy (zone, "Z");
      else
        {
          int a = off < 0 ? -off : off;
          snprintf (zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', (a / 60) % 100,
                    a % 60);
        }
    }
  n = snprintf (buf, size, "%s%s%s", date, time, zone);
  if (n < 0 || (size_t) n >= size)
    return -1;
  return n;
}
