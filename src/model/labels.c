/* Labels and descriptions: see labels.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"

static bool
key_char (char c, bool first)
{
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return !first && (c == '.' || c == '_' || c == '-' || c == '/');
}

bool
ak_label_key_valid (const char *key)
{
  size_t n = key ? strlen (key) : 0;
  if (n == 0 || n > AK_LABEL_KEY_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!key_char (key[i], i == 0))
      return false;
  return true;
}

/* UTF-8 (no overlongs, surrogates or code points past U+10FFFF) without
 * control characters; newline and tab only when allowed. */
static bool
text_valid (const char *s, bool lines)
{
  const unsigned char *p = (const unsigned char *) s;
  while (*p)
    {
      unsigned c = *p, need, cp;
      if (c < 0x80)
        {
          if ((c < 0x20 && !(lines && (c == '\n' || c == '\t'))) || c == 0x7f)
            return false;
          p++;
          continue;
        }
      if (c >= 0xc2 && c <= 0xdf)
        need = 1, cp = c & 0x1f;
      else if (c >= 0xe0 && c <= 0xef)
        need = 2, cp = c & 0x0f;
      else if (c >= 0xf0 && c <= 0xf4)
        need = 3, cp = c & 0x07;
      else
        return false;
      for (unsigned i = 1; i <= need; i++)
        {
          if ((p[i] & 0xc0) != 0x80)
            return false;
          cp = cp << 6 | (p[i] & 0x3f);
        }
      if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
          || (cp >= 0x80 && cp < 0xa0))
        return false;
      p += need + 1;
    }
  return true;
}

int
ak_label_check (const char *key, const char *value, ak_error_t **err)
{
  if (!ak_label_key_valid (key))
    return ak_error_coded (err, EINVAL,
                           "invalid label key '%.64s' (1-%d of letters, digits, '.', '_', '-', '/', starting with a "
                           "letter or digit)",
                           key ? key : "", AK_LABEL_KEY_MAX);
  if (value == NULL || strlen (value) > AK_LABEL_VALUE_MAX || !text_valid (value, false))
    return ak_error_coded (err, EINVAL, "invalid value of label '%s' (at most %d bytes of text, no control characters)",
                           key, AK_LABEL_VALUE_MAX);
  return 0;
}

int
ak_description_check (const char *text, ak_error_t **err)
{
  if (text == NULL || strlen (text) > AK_DESCRIPTION_MAX || !text_valid (text, true))
    return ak_error_coded (err, EINVAL,
                           "invalid description (at most %d bytes of text, no control characters but newline and tab)",
                           AK_DESCRIPTION_MAX);
  return 0;
}

static char **
find (char **labels, const char *key)
{
  size_t k = strlen (key);
  for (char **l = labels; l && *l; l++)
    if (strncmp (*l, key, k) == 0 && (*l)[k] == '=')
      return l;
  return NULL;
}

static int
cmp_labels (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
ak_labels_set (char ***labels, const char *key, const char *value, ak_error_t **err)
{
  char **at;
  if (ak_label_check (key, value, err) < 0)
    return -1;
  at = find (*labels, key);
  if (at != NULL)
    {
      free (*at);
      *at = ak_xasprintf ("%s=%s", key, value);
      return 0;
    }
  if (ak_strv_len (*labels) >= AK_LABELS_MAX)
    return ak_error_coded (err, EINVAL, "too many labels (at most %d)", AK_LABELS_MAX);
  {
    _cleanup_free_ char *kv = ak_xasprintf ("%s=%s", key, value);
    ak_strv_push (labels, kv);
  }
  /* Keys never hold '=', so sorting the pairs sorts the keys. */
  qsort (*labels, ak_strv_len (*labels), sizeof (char *), cmp_labels);
  return 0;
}

int
ak_labels_set_kv (char ***labels, const char *kv, ak_error_t **err)
{
  const char *eq = strchr (kv, '=');
  _cleanup_free_ char *key = NULL;
  if (eq == NULL)
    return ak_error_coded (err, EINVAL, "label '%.64s' must be KEY=VALUE", kv);
  key = ak_xstrndup (kv, (size_t) (eq - kv));
  return ak_labels_set (labels, key, eq + 1, err);
}

void
ak_labels_unset (char **labels, const char *key)
{
  char **at = find (labels, key);
  if (at == NULL)
    return;
  free (*at);
  for (; *at; at++)
    at[0] = at[1];
}

const char *
ak_labels_get (char *const *labels, const char *key)
{
  char **at = find ((char **) labels, key);
  return at ? *at + strlen (key) + 1 : NULL;
}

int
ak_label_filter_check (const char *filter, ak_error_t **err)
{
  const char *colon = strchr (filter, ':');
  _cleanup_free_ char *key = ak_xstrndup (filter, colon ? (size_t) (colon - filter) : strlen (filter));
  if (ak_label_check (key, colon ? colon + 1 : "", err) < 0)
    return ak_error_prefix (err, "label filter '%.64s' (KEY:VALUE or KEY)", filter);
  return 0;
}

bool
ak_labels_match (char *const *labels, const char *filter)
{
  const char *colon = strchr (filter, ':');
  _cleanup_free_ char *key = ak_xstrndup (filter, colon ? (size_t) (colon - filter) : strlen (filter));
  const char *v = ak_labels_get (labels, key);
  if (v == NULL)
    return false;
  return colon == NULL || strcmp (v, colon + 1) == 0;
}

json_t *
ak_labels_json (char *const *labels)
{
  json_t *j = json_object ();
  if (j == NULL)
    ak_oom ();
  for (char *const *kv = labels; kv && *kv; kv++)
    {
      const char *eq = strchr (*kv, '=');
      _cleanup_free_ char *key = ak_xstrndup (*kv, (size_t) (eq - *kv));
      json_object_set_new (j, key, json_string (eq + 1));
    }
  return j;
}
