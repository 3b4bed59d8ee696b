/* Records of persistent sandboxes.
 *
 * Layout: <root>/sandboxes/<name>/ holds
 *   spec.json   the spec as `create` resolved it (core/spec_json.h)
 *   state.json  { name, uuid, created, supervisor_pid, supervisor_starttime,
 *                 status_hint, expires_at? }
 *   lock        the file ak_store_lock() flocks
 * and whatever other modules put there (sockets, logs), found through
 * ak_store_dir().  The root is $AGENTKERNEL_STATE_DIR when set, else
 * $XDG_DATA_HOME/agentkernel, else $HOME/.local/share/agentkernel.
 *
 * Crash safety: a sandbox directory appears whole or not at all (it is built
 * under a temporary name and renamed into place), and every file is replaced
 * by rename after fsync, so a crash leaves either the old or the new
 * contents.  Names are checked with ak_name_valid() before any path is
 * built; an invalid name is an error and touches nothing.
 *
 * Concurrency: creation decides between racing creators by itself (exactly
 * one wins).  Everything else that reads-modifies-writes a record (start,
 * stop, remove) should hold ak_store_lock() on it; the functions here do not
 * take the lock themselves, so a caller holding it cannot deadlock.
 *
 * Nothing here is thread safe beyond what the filesystem gives: do not share
 * an ak_record_t between threads.
 */
#ifndef AK_STORE_H
#define AK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "model/spec.h"

typedef struct ak_record {
  char *name;
  char *uuid;    /* RFC 4122 version 4, lower-case */
  ak_spec_t spec;
  char *created; /* RFC 3339 UTC, e.g. 2025-01-31T12:00:00Z */
  /* The process that runs the sandbox; 0 when none was started.  The start
   * time (field 22 of /proc/PID/stat) tells a live supervisor from an
   * unrelated process that reused its pid. */
  int supervisor_pid;
  unsigned long long supervisor_starttime;
  char *status_hint; /* last status written ("created", "running", ...) */
  long long expires_at; /* Unix time after which the API server removes it; 0: never */
  char **labels;        /* "KEY=VALUE", sorted (model/labels.h), or NULL */
  char *description;    /* or NULL */
  /* Set only by ak_store_list() when the record exists but cannot be read
   * (then only `name` is meaningful): list reports it, remove cleans it. */
  char *load_error;
} ak_record_t;

/* Free everything a record owns and zero it.  Safe on a zeroed record. */
void ak_record_clear (ak_record_t *r);

/* The store's root directory (heap string, caller frees); NULL when neither
 * a state directory nor a home directory can be found. */
char *ak_store_root (void);

/* agentkernel's config directory: $XDG_CONFIG_HOME/agentkernel, else
 * ~/.config/agentkernel (heap string); NULL with *err when neither is set.
 * It holds what decides trust (trusted config records, registry
 * credentials), so no sandbox ever sees it. */
char *ak_config_dir (ak_error_t **err);

/* <root>/sandboxes/<name> (heap string, caller frees), or NULL when `name`
 * is invalid or there is no root.  The directory may not exist. */
char *ak_store_dir (const char *name);
/* Where this agentkernel keeps what no sandbox may see: the state root
 * (created 0700 when missing), the directory of the default audit log and
 * recordings (~/.agentkernel, likewise), the config directory (likewise),
 * and an audit log named by
 * AGENTKERNEL_AUDIT_LOG.  Canonical paths, NULL-terminated; a path that
 * cannot be resolved is left out (nothing is there to show). */
char **ak_store_private_paths (const char *audit_log);
/* The directory of named volumes (<root>/volumes, canonical), whose
 * subdirectories a share may name although the root is private; a
 * NULL-terminated list (empty when it does not exist yet). */
char **ak_store_shared_paths (void);

/* Record a new sandbox for spec->name (which must be set and valid), with a
 * fresh UUID, status "created" and no supervisor.  When two callers create
 * the same name concurrently, exactly one succeeds; the other gets
 * "sandbox 'x' already exists" with code EEXIST.  `out` (may be NULL)
 * receives the record; the caller clears it. */
int ak_store_create (const ak_spec_t *spec, ak_record_t *out, ak_error_t **err);

/* Read a record.  A missing sandbox is "no such sandbox 'x'" (ENOENT); an
 * unreadable or corrupt one is an error naming the file.  On failure `out`
 * is zeroed. */
int ak_store_load (const char *name, ak_record_t *out, ak_error_t **err);

/* Replace state.json with r's uuid, created, supervisor and status fields.
 * The sandbox must exist (ENOENT otherwise); the spec is not rewritten. */
int ak_store_save_state (const ak_record_t *r, ak_error_t **err);

/* Remove the sandbox's whole directory tree, whatever it holds.  The name
 * disappears atomically first; the tree is then deleted without following
 * symbolic links or crossing into other filesystems. */
int ak_store_remove (const char *name, ak_error_t **err);

/* All records, sorted by name, as a heap array the caller releases with
 * ak_store_list_free().  Half-created or half-removed directories are not
 * listed; a record that cannot be read is listed with load_error set. */
int ak_store_list (ak_record_t **out, size_t *n, ak_error_t **err);
void ak_store_list_free (ak_record_t *records, size_t n);

/* Load the record whose uuid is `uuid` (ENOENT when none). */
int ak_store_find_uuid (const char *uuid, ak_record_t *out, ak_error_t **err);

/* Lock a sandbox: returns a descriptor holding flock() on its lock file,
 * shared or exclusive.  Waits up to AK_STORE_LOCK_TIMEOUT_MS, then fails with
 * "sandbox 'x' is busy" (EBUSY).  If the sandbox is removed while waiting,
 * fails with ENOENT.  Release with ak_store_unlock() (or close()).  Locks are
 * per open file: a second ak_store_lock() in the same process conflicts with
 * the first like any other caller's. */
#define AK_STORE_LOCK_TIMEOUT_MS 10000
int ak_store_lock (const char *name, bool exclusive, ak_error_t **err);
int ak_store_lock_timeout (const char *name, bool exclusive, unsigned timeout_ms, ak_error_t **err);
void ak_store_unlock (int fd);

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot), to be
 * recorded with a supervisor's pid. */
int ak_store_proc_starttime (pid_t pid, unsigned long long *out, ak_error_t **err);

/* Whether r's supervisor is running: the pid exists, is not a zombie, and
 * started when recorded. */
bool ak_store_supervisor_alive (const ak_record_t *r);

#endif
