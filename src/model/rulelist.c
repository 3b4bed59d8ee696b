/* Policies of allow and block entries, one view (rulelist.h). */
#include "model/rulelist.h"

#include <stddef.h>

#include "common/util.h"
#include "model/spec.h"

static int
net_add (void *pol, int list, const char *text, int source, int line, ak_error_t **err)
{
  return ak_netpolicy_add (pol, list == AK_RULES_ALLOW ? AK_NET_ALLOW : AK_NET_BLOCK, text, source, line, err);
}

static void
net_clear (void *pol)
{
  ak_netpolicy_clear (pol);
}

static int
cmd_add (void *pol, int list, const char *text, int source, int line, ak_error_t **err)
{
  return ak_cmdpolicy_add (pol, list == AK_RULES_ALLOW ? AK_CMD_ALLOW : AK_CMD_BLOCK, text, source, line, err);
}

static void
cmd_clear (void *pol)
{
  ak_cmdpolicy_clear (pol);
}

ak_rules_t
ak_rules_domains (ak_netpolicy_t *pol)
{
  return (ak_rules_t){
    .section = "security.domains", .entry_key = "pattern", .allow_flag = "--allow-host",
    .allowlist_only = &pol->allowlist_only, .allowlist_source = &pol->allowlist_source,
    .allowlist_line = &pol->allowlist_line, .pol = pol,
    .items = { (void *const *) &pol->allow, (void *const *) &pol->block }, .n = { &pol->n_allow, &pol->n_block },
    .size = sizeof (ak_netpat_t), .text_off = offsetof (ak_netpat_t, text),
    .source_off = offsetof (ak_netpat_t, source), .line_off = offsetof (ak_netpat_t, line),
    .add = net_add, .clear = net_clear,
  };
}

ak_rules_t
ak_rules_commands (ak_cmdpolicy_t *pol)
{
  return (ak_rules_t){
    .section = "security.commands", .entry_key = "entry", .allow_flag = "--allow-cmd",
    .allowlist_only = &pol->allowlist_only, .allowlist_source = &pol->allowlist_source,
    .allowlist_line = &pol->allowlist_line, .pol = pol,
    .items = { (void *const *) &pol->allow, (void *const *) &pol->block }, .n = { &pol->n_allow, &pol->n_block },
    .size = sizeof (ak_cmdrule_t), .text_off = offsetof (ak_cmdrule_t, text),
    .source_off = offsetof (ak_cmdrule_t, source), .line_off = offsetof (ak_cmdrule_t, line),
    .add = cmd_add, .clear = cmd_clear,
  };
}

size_t
ak_rules_count (const ak_rules_t *r, int list)
{
  return *r->n[list];
}

const char *
ak_rules_entry (const ak_rules_t *r, int list, size_t i, int *source, int *line)
{
  const char *e = (const char *) *r->items[list] + i * r->size;
  if (source != NULL)
    *source = *(const int *) (const void *) (e + r->source_off);
  if (line != NULL)
    *line = *(const int *) (const void *) (e + r->line_off);
  return *(char *const *) (const void *) (e + r->text_off);
}

int
ak_rules_add (const ak_rules_t *r, int list, const char *text, int source, int line, ak_error_t **err)
{
  return r->add (r->pol, list, text, source, line, err);
}

void
ak_rules_clear (const ak_rules_t *r)
{
  r->clear (r->pol);
}

const char *
ak_rules_list_name (int list)
{
  return list == AK_RULES_ALLOW ? "allow" : "block";
}

/* o (a setting or an entry, with its "source"), given its "line" as
 * every_line says. */
static json_t *
sourced (json_t *o, int source, int line, bool every_line)
{
  if (o == NULL)
    ak_oom ();
  if (every_line || (source == AK_SRC_CONFIG && line > 0))
    json_object_set_new (o, "line", json_integer (line));
  return o;
}

json_t *
ak_rules_to_json (const ak_rules_t *r, bool every_line)
{
  json_t *mode = sourced (json_pack ("{s:b, s:s}", "value", *r->allowlist_only, "source",
                                     ak_source_name ((ak_source_t) *r->allowlist_source)),
                          *r->allowlist_source, *r->allowlist_line, every_line);
  json_t *o = json_pack ("{s:o}", "allowlist_only", mode);

  if (o == NULL)
    ak_oom ();
  for (int list = AK_RULES_ALLOW; list <= AK_RULES_BLOCK; list++)
    {
      json_t *a = json_array ();
      if (a == NULL)
        ak_oom ();
      for (size_t i = 0; i < ak_rules_count (r, list); i++)
        {
          int source, line;
          const char *text = ak_rules_entry (r, list, i, &source, &line);
          json_array_append_new (a, sourced (json_pack ("{s:s, s:s}", r->entry_key, text, "source",
                                                        ak_source_name ((ak_source_t) source)),
                                             source, line, every_line));
        }
      json_object_set_new (o, ak_rules_list_name (list), a);
    }
  return o;
}
