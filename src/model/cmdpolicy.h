/* The command policy of a sandbox ([security.commands], --allow-cmd,
 * --block-cmd): which programs may be executed inside.
 *
 * An entry is a program name, matched as the basename of a program found on
 * the sandbox's PATH ("curl"), or, when it holds a slash, an absolute path
 * inside the sandbox ("/usr/bin/curl").  Block entries always win; allow
 * entries only matter in allowlist mode, where nothing else may run.
 *
 * The model holds the rules only; what identifies a program at exec time
 * (the file, not its name) is the container backend's (execpolicy.c, see
 * docs/security.md).
 *
 * Ownership: a policy owns its entries; ak_cmdpolicy_clear() frees them.
 */
#ifndef AK_MODEL_CMDPOLICY_H
#define AK_MODEL_CMDPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"

/* Longest entry accepted (a path inside the sandbox). */
#define AK_CMD_MAX 1024

typedef struct ak_cmdrule {
  char *text;  /* a name (no slash) or a clean absolute path */
  int source;  /* ak_source_t of spec.h */
  int line;    /* config line when it came from a config file */
} ak_cmdrule_t;

typedef struct ak_cmdpolicy {
  ak_cmdrule_t *allow;
  size_t n_allow;
  ak_cmdrule_t *block;
  size_t n_block;
  bool allowlist_only;
  int allowlist_source; /* ak_source_t; AK_SRC_DEFAULT when never set */
  int allowlist_line;
} ak_cmdpolicy_t;

typedef enum ak_cmdlist { AK_CMD_ALLOW = 0, AK_CMD_BLOCK = 1 } ak_cmdlist_t;

/* Checks one entry: a name (no slash, not "." or "..", no control
 * character) or an absolute path without "." or ".." components and no
 * doubled or trailing slash.  The error says what is wrong with it. */
int ak_cmd_entry_check (const char *text, ak_error_t **err);

void ak_cmdpolicy_clear (ak_cmdpolicy_t *pol);
/* Deep copy of src into dst (dst uninitialised). */
void ak_cmdpolicy_copy (ak_cmdpolicy_t *dst, const ak_cmdpolicy_t *src);
/* Checks `text` and appends it to the list (a duplicate is kept once).
 * The error names only the entry; callers add file and line. */
int ak_cmdpolicy_add (ak_cmdpolicy_t *pol, ak_cmdlist_t list, const char *text, int source,
                      int line, ak_error_t **err);
/* Whether the policy restricts anything (a block rule or allowlist mode). */
bool ak_cmdpolicy_active (const ak_cmdpolicy_t *pol);
/* Whether the policy says anything at all (a rule or allowlist mode). */
bool ak_cmdpolicy_has_rules (const ak_cmdpolicy_t *pol);
/* The rule of `list` that names a program at `path` (absolute, inside the
 * sandbox): an entry equal to the path, or a name equal to its basename.
 * NULL when none does. */
const ak_cmdrule_t *ak_cmdpolicy_match (const ak_cmdpolicy_t *pol, ak_cmdlist_t list,
                                        const char *path);

/* The API's and MCP's form, {allow?: [..], block?: [..], allowlist_only?}
 * (at most AK_CMD_MAX_ENTRIES entries a list), into *out (zeroed first;
 * entries of source `source`).  allowlist_only defaults to true when allow
 * names anything, as the first --allow-cmd does.  The error names the
 * field ("commands.allow[2]: ..."). */
#define AK_CMD_MAX_ENTRIES 256
int ak_cmdpolicy_from_json (const json_t *o, int source, ak_cmdpolicy_t *out, ak_error_t **err);
/* Adds src's entries to dst, and its allowlist mode when on (a request
 * can tighten what the server resolved, never loosen it). */
int ak_cmdpolicy_merge (ak_cmdpolicy_t *dst, const ak_cmdpolicy_t *src, ak_error_t **err);

#endif
