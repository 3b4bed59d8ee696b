/* Agent integration files ("plugins"): what `agentkernel plugin install`
 * writes for each agent, and the pure merges that put it into a file the
 * user already has without losing anything of theirs.
 *
 * Each merge takes a file's current bytes (NULL: no file) and returns its
 * new bytes, or NULL when nothing changes; it never touches the disk
 * (service/plugin.c reads, backs up and writes).  A file that does not
 * parse is an error naming it: it is never rewritten.  Merging is
 * idempotent: installing twice changes nothing the second time.  An entry
 * under our key that is not ours (the user's own "agentkernel" server) is
 * reported as different and left alone unless `force`.
 */
#ifndef AK_PLUGIN_H
#define AK_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* Files larger than this are refused unread. */
#define AK_PLUGIN_FILE_MAX (4 * 1024 * 1024)

typedef enum ak_plugin_kind {
  AK_PLUGIN_JSON, /* an entry at a key path in a JSON object */
  AK_PLUGIN_TOML, /* a [table] in a TOML file */
  AK_PLUGIN_FILE, /* a whole file of ours */
} ak_plugin_kind_t;

/* One file of an integration.  Paths are relative: project_path to the
 * project directory, global_path to the user's home; either may be NULL
 * when the agent has no such place (then the other one is used). */
typedef struct ak_plugin_file {
  ak_plugin_kind_t kind;
  const char *project_path;
  const char *global_path;
  const char *const *keys; /* JSON, TOML: the key path of our entry */
  const char *content;     /* JSON: our entry as JSON text; FILE: the text */
} ak_plugin_file_t;

typedef struct ak_plugin {
  const char *target; /* an agent's name, or "mcp" */
  const char *title;
  const ak_plugin_file_t *files; /* kind-terminated by project_path == global_path == NULL */
} ak_plugin_t;

extern const ak_plugin_t ak_plugins[];
extern const size_t ak_plugins_n;
const ak_plugin_t *ak_plugin_find (const char *target);

typedef enum ak_plugin_op {
  AK_PLUGIN_INSTALL,
  AK_PLUGIN_REMOVE,
} ak_plugin_op_t;

/* What the file held before the merge. */
typedef enum ak_plugin_found {
  AK_PLUGIN_ABSENT,    /* no entry of ours (or no file) */
  AK_PLUGIN_SAME,      /* our entry, as we would write it */
  AK_PLUGIN_DIFFERENT, /* an entry under our key, not as we would write it */
} ak_plugin_found_t;

/* The merge for file f of any kind.  old/len: the current bytes (old NULL:
 * no file).  *out: the new bytes (NUL-terminated, malloc'd), or NULL when
 * the file stays as it is: installing over SAME, removing ABSENT, or a
 * DIFFERENT entry without force; "" when the file is to be removed (a file
 * of ours, or a JSON file left empty by a remove).  name is used in
 * messages only. */
int ak_plugin_merge (const ak_plugin_file_t *f, const char *name, const char *old, size_t len,
                     ak_plugin_op_t op, bool force, char **out, ak_plugin_found_t *found,
                     ak_error_t **err);

/* The JSON and TOML merges behind ak_plugin_merge, for any entry. */
int ak_plugin_json_merge (const char *name, const char *old, size_t len, const char *const *keys,
                          const char *entry_json, ak_plugin_op_t op, bool force, char **out,
                          ak_plugin_found_t *found, ak_error_t **err);
/* keys: the table path (e.g. mcp_servers, agentkernel); entry: the TOML
 * text of its key/value lines ("command = ...\nargs = [...]\n"). */
int ak_plugin_toml_merge (const char *name, const char *old, size_t len, const char *const *keys,
                          const char *entry_toml, ak_plugin_op_t op, bool force, char **out,
                          ak_plugin_found_t *found, ak_error_t **err);

/* A unified-style diff of before and after (either may be NULL: no file),
 * with three lines of context, headed by name.  Malloc'd. */
char *ak_plugin_diff (const char *name, const char *before, const char *after);

#endif
