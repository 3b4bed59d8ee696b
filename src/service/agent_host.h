/* The agents installed on this host (model/agents.h has what each one is):
 * where its program is, which version it says it is, and which of its
 * credential variables the caller has set.
 *
 * Asking a program its version runs it: it runs as the caller, outside any
 * sandbox, as the caller would by typing `claude --version`; it gets no
 * input, its output is capped, and it is killed (its whole process group)
 * when it has not finished within the timeout, so a program that hangs
 * cannot hang agentkernel.
 */
#ifndef AK_AGENT_HOST_H
#define AK_AGENT_HOST_H

#include <stdbool.h>

#include "common/error.h"
#include "model/agents.h"

/* How long `BIN --version` may take. */
#define AK_AGENT_VERSION_TIMEOUT_MS 5000

typedef struct ak_agent_status {
  const ak_agent_t *agent;
  char *path;          /* absolute path of the program found on PATH, or NULL */
  char *version;       /* first line of its version output, or NULL */
  char *version_error; /* why there is no version ("timed out after 5 s"), or NULL */
  char **keys_set;     /* credential variables set in the caller's environment */
} ak_agent_status_t;

/* The first executable regular file named `name` in the directories of
 * path_env (PATH; NULL: the caller's); a malloc'd absolute path or NULL. */
char *ak_which (const char *name, const char *path_env);

/* Fills *st for agent a; timeout_ms bounds the version run (0: do not run
 * it).  Never fails: what could not be learnt is left NULL or explained in
 * version_error. */
void ak_agent_status (const ak_agent_t *a, unsigned timeout_ms, ak_agent_status_t *st);
void ak_agent_status_clear (ak_agent_status_t *st);

/* Runs argv (argv[0] an absolute path) with no input, collects at most
 * max bytes of its stdout and stderr; kills its process group after
 * timeout_ms.  Returns 0 with *out (NUL-terminated) and *status (exit
 * status, 128+N for signal N); -1 with *err on a failure to start or a
 * timeout. */
int ak_run_captured (char *const *argv, unsigned timeout_ms, size_t max, char **out, int *status,
                     ak_error_t **err);

#endif
