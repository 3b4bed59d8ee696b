/* Command policy entries (see cmdpolicy.h). */
#define _GNU_SOURCE
#include "model/cmdpolicy.h"

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
