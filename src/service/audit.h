/* The audit log: one JSON object per line (JSONL), appended by every
 * agentkernel process that acts on a sandbox.
 *
 * Location: $AGENTKERNEL_AUDIT_LOG when set, else ~/.agentkernel/audit.jsonl
 * (directory 0700, file 0600).  AGENTKERNEL_AUDIT=0 turns logging off.
 *
 * Each line is
 *   {"timestamp": "2025-01-31T12:00:00.123Z", "pid": 123, "user": "alice",
 *    "event": "...", "sandbox": "name", ...fields}
 * written with O_APPEND in a single write(), so lines from concurrent
 * processes never interleave.  "sandbox" is absent when the event concerns
 * none.  The five fixed keys cannot be overridden by `fields`.
 *
 * Events and their fields:
 *   sandbox_created, sandbox_started, sandbox_stopped, sandbox_removed
 *   command_started    command (array of strings): written before the command
 *                      starts, so a command whose client is killed is still
 *                      on record
 *   command_executed   command (array of strings), exit_code
 *   file_written, file_read   path, bytes
 *   session_attached
 *   policy_violation   reason
 *   network_connect    name (when known), address, port, verdict ("allow" or
 *                      "deny"), rule (what decided), and for an allowed
 *                      connection once it ends bytes_out and bytes_in
 *   dns_query          name, verdict, rule
 */
#ifndef AK_AUDIT_H
#define AK_AUDIT_H

#include <jansson.h>
#include <sys/types.h>

#include "common/error.h"

#define AK_AUDIT_SANDBOX_CREATED "sandbox_created"
#define AK_AUDIT_SANDBOX_STARTED "sandbox_started"
#define AK_AUDIT_SANDBOX_STOPPED "sandbox_stopped"
#define AK_AUDIT_SANDBOX_REMOVED "sandbox_removed"
#define AK_AUDIT_COMMAND_STARTED "command_started"
#define AK_AUDIT_COMMAND_EXECUTED "command_executed"
#define AK_AUDIT_FILE_WRITTEN "file_written"
#define AK_AUDIT_FILE_READ "file_read"
#define AK_AUDIT_SESSION_ATTACHED "session_attached"
#define AK_AUDIT_POLICY_VIOLATION "policy_violation"
#define AK_AUDIT_NETWORK_CONNECT "network_connect"
#define AK_AUDIT_DNS_QUERY "dns_query"

/* Append one event.  `fields` (an object, or NULL) is stolen: its reference
 * is released whatever happens.  Returns 0, or -1 when the line could not be
 * written; logging never fails an operation, so callers may ignore it.
 * Returns 0 without writing when logging is disabled.  Thread safe as far
 * as the environment is not modified concurrently. */
int ak_audit (const char *event, const char *sandbox, json_t *fields);

/* ak_audit() of `event` with "command" set to argv, in front of `fields`
 * (stolen, may be NULL). */
int ak_audit_command (const char *event, const char *sandbox, char *const *argv, json_t *fields);

/* The log's path, or NULL when no home directory can be found.  The string
 * belongs to the calling thread and stays valid until its next call. */
const char *ak_audit_path (void);

/* For a process that writes records in another's place (a pool front,
 * service/pool.h): the user's name looked up now, before the records are
 * due, and the pid they name (0: this process's own). */
void ak_audit_warm (void);
void ak_audit_set_pid (pid_t pid);
/* From now on the log stays open between this process's records (a pool
 * front writes two, the second while its caller waits; a long-lived
 * process reopens it for each, so that a rotated log is followed). */
void ak_audit_hold (void);

/* Every well-formed entry of the log, oldest first, as a new JSON array
 * (*entries_array, caller releases); only those whose "sandbox" equals
 * `sandbox_filter` when it is not NULL.  Lines that are not JSON objects
 * (a torn last line, damage) are skipped.  A missing log is empty. */
int ak_audit_read (const char *sandbox_filter, json_t **entries_array, ak_error_t **err);

#endif
