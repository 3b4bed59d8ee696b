/* Agent integration files on disk: `plugin install|remove|list`.
 *
 * A change is planned first for every file of every target (each file read
 * and merged, model/plugin.h), and only when all of them merged cleanly is
 * anything written: a malformed file anywhere means nothing is written
 * anywhere.  Each write is atomic (a temporary file in the same directory,
 * fsync, rename) with the file's own mode, and the previous contents are
 * kept beside it as FILE.bak.  A symlinked config file (dotfiles managers)
 * is written through: its target is replaced, the link is kept.
 */
#ifndef AK_SERVICE_PLUGIN_H
#define AK_SERVICE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "model/plugin.h"

typedef struct ak_plugin_change {
  const ak_plugin_t *plugin;
  const ak_plugin_file_t *file;
  char *path;   /* absolute path (the link's target for a symlink) */
  char *shown;  /* the path as the user knows it */
  bool global;  /* under home */
  ak_plugin_found_t found;
  char *before; /* current contents, NULL: no file */
  size_t before_len;
  char *after;  /* new contents; NULL: unchanged */
  bool unlink;  /* a file of ours to delete */
} ak_plugin_change_t;

typedef struct ak_plugin_plan {
  ak_plugin_change_t *changes;
  size_t n;
} ak_plugin_plan_t;

/* Adds target p's files to plan: under project_dir, or home when global
 * (a file with only one of the two places uses that one).  Reads and merges
 * each; fails without touching anything on a malformed or unreadable file. */
int ak_plugin_plan_add (ak_plugin_plan_t *plan, const ak_plugin_t *p, const char *project_dir,
                        const char *home, bool global, ak_plugin_op_t op, bool force, ak_error_t **err);
/* Writes every planned change; the first failure stops (files already
 * written stay written, each whole). */
int ak_plugin_plan_commit (const ak_plugin_plan_t *plan, ak_error_t **err);
void ak_plugin_plan_clear (ak_plugin_plan_t *plan);

#endif
