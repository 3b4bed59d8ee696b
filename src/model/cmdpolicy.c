/* Command policy entries (see cmdpolicy.h). */
#define _GNU_SOURCE
#include "model/cmdpolicy.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int
ak_cmd_entry_check (const char *text, ak_error_t **err)
{
  size_t n = strlen (text);

  if (n == 0)
    return ak_error_set (err, 0, "empty command entry");
  if (n > AK_CMD_MAX)
    return ak_error_set (err, 0, "command entry longer than %d bytes", AK_CMD_MAX);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
      return ak_error_set (err, 0, "command entry '%s': control character", text);
  if (strchr (text, '/') == NULL)
    {
      if (strcmp (text, ".") == 0 || strcmp (text, "..") == 0)
        return ak_error_set (err, 0, "command entry '%s': not a program name", text);
      return 0;
    }
  if (text[0] != '/')
    return ak_error_set (err, 0,
                         "command entry '%s': a path must be absolute (inside the sandbox); a "
                         "program name has no slash",
                         text);
  if (n == 1 || text[n - 1] == '/')
    return ak_error_set (err, 0, "command entry '%s': a path must name a file", text);
  for (const char *c = text + 1; *c;)
    {
      const char *e = strchrnul (c, '/');
      size_t l = (size_t) (e - c);
      if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
        return ak_error_set (err, 0, "command entry '%s': '.', '..' or '//' in the path", text);
      c = *e ? e + 1 : e;
    }
  return 0;
}

static void
rules_clear (ak_cmdrule_t *r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (r[i].text);
  free (r);
}

void
ak_cmdpolicy_clear (ak_cmdpolicy_t *pol)
{
  rules_clear (pol->allow, pol->n_allow);
  rules_clear (pol->block, pol->n_block);
  memset (pol, 0, sizeof (*pol));
}

static ak_cmdrule_t *
rules_copy (const ak_cmdrule_t *src, size_t n)
{
  ak_cmdrule_t *d;
  if (n == 0)
    return NULL;
  d = ak_xcalloc (n, sizeof (ak_cmdrule_t));
  for (size_t i = 0; i < n; i++)
    {
      d[i] = src[i];
      d[i].text = ak_xstrdup (src[i].text);
    }
  return d;
}

void
ak_cmdpolicy_copy (ak_cmdpolicy_t *dst, const ak_cmdpolicy_t *src)
{
  *dst = *src;
  dst->allow = rules_copy (src->allow, src->n_allow);
  dst->block = rules_copy (src->block, src->n_block);
}

int
ak_cmdpolicy_add (ak_cmdpolicy_t *pol, ak_cmdlist_t list, const char *text, int source, int line,
                  ak_error_t **err)
{
  ak_cmdrule_t **arr = list == AK_CMD_ALLOW ? &pol->allow : &pol->block;
  size_t *n = list == AK_CMD_ALLOW ? &pol->n_allow : &pol->n_block;

  if (ak_cmd_entry_check (text, err) < 0)
    return -1;
  for (size_t i = 0; i < *n; i++)
    if (strcmp ((*arr)[i].text, text) == 0)
      return 0;
  *arr = ak_xrealloc (*arr, (*n + 1) * sizeof (ak_cmdrule_t));
  (*arr)[*n] = (ak_cmdrule_t) { .text = ak_xstrdup (text), .source = source, .line = line };
  (*n)++;
  return 0;
}

bool
ak_cmdpolicy_active (const ak_cmdpolicy_t *pol)
{
  return pol->allowlist_only || pol->n_block > 0;
}

bool
ak_cmdpolicy_has_rules (const ak_cmdpolicy_t *pol)
{
  return pol->allowlist_only || pol->n_allow > 0 || pol->n_block > 0;
}

const ak_cmdrule_t *
ak_cmdpolicy_match (const ak_cmdpolicy_t *pol, ak_cmdlist_t list, const char *path)
{
  const ak_cmdrule_t *r = list == AK_CMD_ALLOW ? pol->allow : pol->block;
  size_t n = list == AK_CMD_ALLOW ? pol->n_allow : pol->n_block;
  const char *base = strrchr (path, '/');

  base = base ? base + 1 : path;
  for (size_t i = 0; i < n; i++)
    if (strcmp (r[i].text, strchr (r[i].text, '/') ? path : base) == 0)
      return &r[i];
  return NULL;
}

static int
list_from_json (const json_t *o, const char *key, ak_cmdlist_t list, int source, ak_cmdpolicy_t *out,
                ak_error_t **err)
{
  const json_t *a = json_object_get (o, key);
  size_t i;
  json_t *v;

  if (a == NULL)
    return 0;
  if (!json_is_array (a) || json_array_size (a) > AK_CMD_MAX_ENTRIES)
    return ak_error_set (err, 0, "commands.%s: expected an array of at most %d program names or paths",
                         key, AK_CMD_MAX_ENTRIES);
  json_array_foreach (a, i, v)
    {
      const char *s = json_string_value (v);
      if (s == NULL || strlen (s) != json_string_length (v))
        return ak_error_set (err, 0, "commands.%s[%zu]: expected a string without NUL bytes", key, i);
      if (ak_cmdpolicy_add (out, list, s, source, 0, err) < 0)
        return ak_error_prefix (err, "commands.%s[%zu]", key, i);
    }
  return 0;
}

int
ak_cmdpolicy_from_json (const json_t *o, int source, ak_cmdpolicy_t *out, ak_error_t **err)
{
  const json_t *m;
  const char *key;
  json_t *v;

  memset (out, 0, sizeof *out);
  if (!json_is_object (o))
    return ak_error_set (err, 0, "commands: expected an object {allow?, block?, allowlist_only?}");
  json_object_foreach ((json_t *) o, key, v)
    if (strcmp (key, "allow") != 0 && strcmp (key, "block") != 0 && strcmp (key, "allowlist_only") != 0)
      return ak_error_set (err, 0, "commands: unknown field '%.64s' (allow, block, allowlist_only)", key);
  if (list_from_json (o, "allow", AK_CMD_ALLOW, source, out, err) < 0
      || list_from_json (o, "block", AK_CMD_BLOCK, source, out, err) < 0)
    {
      ak_cmdpolicy_clear (out);
      return -1;
    }
  m = json_object_get (o, "allowlist_only");
  if (m != NULL && !json_is_boolean (m))
    {
      ak_cmdpolicy_clear (out);
      return ak_error_set (err, 0, "commands.allowlist_only: expected a boolean");
    }
  out->allowlist_only = m != NULL ? json_is_true (m) : out->n_allow > 0;
  if (out->allowlist_only)
    out->allowlist_source = source;
  return 0;
}

int
ak_cmdpolicy_merge (ak_cmdpolicy_t *dst, const ak_cmdpolicy_t *src, ak_error_t **err)
{
  for (size_t i = 0; i < src->n_allow; i++)
    if (ak_cmdpolicy_add (dst, AK_CMD_ALLOW, src->allow[i].text, src->allow[i].source, src->allow[i].line, err) < 0)
      return -1;
  for (size_t i = 0; i < src->n_block; i++)
    if (ak_cmdpolicy_add (dst, AK_CMD_BLOCK, src->block[i].text, src->block[i].source, src->block[i].line, err) < 0)
      return -1;
  if (src->allowlist_only)
    {
      dst->allowlist_only = true;
      dst->allowlist_source = src->allowlist_source;
      dst->allowlist_line = src->allowlist_line;
    }
  return 0;
}
