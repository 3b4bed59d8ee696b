/* A policy of allow and block entries, each with where it came from: the
 * host policy ([security.domains], netpolicy.h) and the command policy
 * ([security.commands], cmdpolicy.h) seen the same way by what reads them
 * (the config file, the spec's JSON) and what shows them (config show).
 * A view: it owns nothing, and reads and changes the policy it was made
 * from. */
#ifndef AK_RULELIST_H
#define AK_RULELIST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"
#include "model/cmdpolicy.h"
#include "model/netpolicy.h"

enum { AK_RULES_ALLOW = 0, AK_RULES_BLOCK = 1 };

typedef struct ak_rules {
  const char *section;   /* "security.domains" */
  const char *entry_key; /* an entry's key in JSON: "pattern", "entry" */
  const char *allow_flag; /* the flag that turns allowlist mode on: "--allow-host" */
  bool *allowlist_only;
  int *allowlist_source; /* ak_source_t */
  int *allowlist_line;
  /* Implementation: the policy, and where its entries are. */
  void *pol;
  void *const *items[2]; /* the arrays of allow and block entries */
  const size_t *n[2];
  size_t size, text_off, source_off, line_off;
  int (*add) (void *pol, int list, const char *text, int source, int line, ak_error_t **err);
  void (*clear) (void *pol);
} ak_rules_t;

/* Views of a policy (the const ones must not be changed through). */
ak_rules_t ak_rules_domains (ak_netpolicy_t *pol);
ak_rules_t ak_rules_commands (ak_cmdpolicy_t *pol);

size_t ak_rules_count (const ak_rules_t *r, int list);
/* Entry i of list: its text, where it came from (ak_source_t) and line. */
const char *ak_rules_entry (const ak_rules_t *r, int list, size_t i, int *source, int *line);
/* Checks text (as the policy's add does) and appends it to list. */
int ak_rules_add (const ak_rules_t *r, int list, const char *text, int source, int line, ak_error_t **err);
void ak_rules_clear (const ak_rules_t *r);
/* "allow" or "block". */
const char *ak_rules_list_name (int list);

/* The allowlist mode and both lists as JSON:
 *   {"allowlist_only": {"value", "source", "line"},
 *    "allow": [{ENTRY_KEY, "source", "line"}, ...], "block": [...]}
 * With every_line, each carries its "line" (the spec's JSON form, which
 * reads them back); without, only what came from a line of the config
 * file (config show --json). */
json_t *ak_rules_to_json (const ak_rules_t *r, bool every_line);

#endif
