/* The AI coding agents agentkernel knows: one table of data.
 *
 * Everything agent-specific lives in this table: the program and how to ask
 * its version, the environment variables that hold its credentials, the
 * directories where it keeps its configuration (and which of them it must
 * write), the domains it talks to, how to install it, and the seccomp
 * profile its compatibility mode selects.  `agents`, `plugin`, `setup` and
 * `run --agent` all read it; adding an agent is adding one row.
 *
 * Pure data: nothing here touches the host.  Strings are static.
 */
#ifndef AK_AGENTS_H
#define AK_AGENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "model/spec.h"

/* A configuration file or directory, relative to the user's home. */
typedef struct ak_agent_path {
  const char *path;
  bool is_file;  /* a file (e.g. ~/.claude.json), else a directory */
  bool writable; /* the agent writes there (sessions, tokens, history) */
} ak_agent_path_t;

typedef struct ak_agent {
  const char *name;         /* the compatibility mode and CLI name: "claude" */
  const char *title;        /* "Claude Code" */
  const char *binary;       /* the program on PATH */
  const char *version_flag; /* "--version" */
  /* Variables holding credentials, in the order the agent prefers them;
   * any one set is enough.  NULL-terminated. */
  const char *const *key_vars;
  /* Other variables the agent reads (endpoints, models, providers), passed
   * when set.  NULL-terminated. */
  const char *const *extra_vars;
  const ak_agent_path_t *paths; /* NULL path terminates */
  const char *const *domains;   /* NULL-terminated */
  const char *npm_package;      /* NULL when not on npm */
  const char *install_hint;     /* one command line */
  ak_seccomp_kind_t seccomp;    /* what its compatibility mode selects */
} ak_agent_t;

/* The table, in display order; ak_agents_n rows. */
extern const ak_agent_t ak_agents[];
extern const size_t ak_agents_n;

/* The agent named `name` (its mode name or its binary), or NULL. */
const ak_agent_t *ak_agent_find (const char *name);
/* Same, failing with a message listing the known names. */
const ak_agent_t *ak_agent_lookup (const char *name, ak_error_t **err);
/* "claude, codex, gemini or opencode", for messages; static storage. */
const char *ak_agent_names (void);

/* Where the agent's home-relative paths appear inside: the sandbox user's
 * home. */
#define AK_AGENT_HOME_INSIDE "/home/user"

/* Decides whether the host path of one of the agent's config paths is to be
 * shown (it exists, or was created); the front end owns the host. */
typedef bool (*ak_agent_path_fn) (const char *host_path, const ak_agent_path_t *p, void *data);

/* The compatibility mode of agent a, on top of the spec's profile:
 *  - its credential and extra variables pass by name, when the caller has
 *    them set (never a value from anywhere else);
 *  - each config path under home that `usable` accepts is shown at the same
 *    place under /home/user, read-write only where the agent writes;
 *  - the project is shown at /workspace (mount_cwd);
 *  - its seccomp profile, unless one was chosen explicitly.
 * The network the agent needs is checked by ak_agent_check (after every
 * layer, since --no-network comes last). */
int ak_agent_apply (ak_spec_t *spec, const ak_agent_t *a, const char *home, ak_agent_path_fn usable,
                    void *data, ak_source_t src, ak_error_t **err);
/* Refuses a spec in agent a's mode that has no network: the agent cannot
 * reach its API, and starting it to fail later helps nobody. */
int ak_agent_check (const ak_spec_t *spec, const ak_agent_t *a, ak_error_t **err);

#endif
