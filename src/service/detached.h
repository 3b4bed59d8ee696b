/* Detached commands: started in a running sandbox, left running, looked
 * at later (for the HTTP API's /exec/detach endpoints and `exec --detach`).
 *
 * Each lives in the sandbox's state directory under detached/<id>/: its
 * request, stdout and stderr as they are produced, and its exit status once
 * it ends.  A small host process holds the exec's connection to the agent;
 * killing it (kill) ends the command, as any exec client's end does.
 */
#ifndef AK_DETACHED_H
#define AK_DETACHED_H

#include <jansson.h>

#include "service/sandbox.h"

/* Starts req detached; *id (heap) names it. */
int ak_detached_start (const char *name, const ak_exec_req_t *req, char **id, ak_error_t **err);
/* {"id", "command", "status": "running"|"exited", "exit_code"?, "started"} */
json_t *ak_detached_status (const char *name, const char *id, ak_error_t **err);
/* An array of the above. */
json_t *ak_detached_list (const char *name, ak_error_t **err);
/* The output so far of stream "stdout" or "stderr" as two descriptors to
 * read in turn: the rotated older part and the current one (each -1 when
 * absent).  Each is at most [resources] log_mb. */
int ak_detached_log_fds (const char *name, const char *id, const char *stream, int fds[2], ak_error_t **err);
int ak_detached_kill (const char *name, const char *id, ak_error_t **err);

#endif
