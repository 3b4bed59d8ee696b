/* Session recording in asciicast v2, the format of asciinema: a JSON header
 * line, then one JSON array per event, [time, code, data]:
 *
 *   {"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, ...}
 *   [0.248848, "o", "hello\r\n"]
 *   [1.001376, "i", "ls\r"]
 *   [2.5, "r", "100x30"]
 *
 * Event data must be valid UTF-8, while a terminal's byte stream is split
 * anywhere: an incomplete sequence at the end of one write is held back
 * and completed by the next (separately for output and input), and bytes
 * that are not UTF-8 at all are recorded as U+FFFD.  Each event is flushed
 * as it is written, so a recording cut short by a crash is still playable
 * up to its last event.
 *
 * A recording holds whatever crossed the terminal, secrets included: the
 * file is created 0600, inside a 0700 directory by default.
 *
 * An ak_cast_t is not thread-safe.
 */
#ifndef AK_ASCIICAST_H
#define AK_ASCIICAST_H

#include <stddef.h>

#include "common/error.h"

typedef struct ak_cast ak_cast_t;

/* Creates (or truncates) path, refusing a symlink, and writes the header.
 * title may be NULL (no "title" key); shell_env is the SHELL recorded in
 * "env" (NULL: "/bin/sh"); TERM comes from the environment, defaulting to
 * "xterm-256color".  Event times count from this call.  Returns NULL with
 * *err set on failure.  Free with ak_cast_close(). */
ak_cast_t *ak_cast_open (const char *path, unsigned cols, unsigned rows, const char *title,
                         const char *shell_env, ak_error_t **err);

/* Record bytes the terminal displayed ("o") or the user typed ("i").
 * Return 0, or -1 with errno set when the file cannot be written; after a
 * failure the recording is left as it is and later calls fail too. */
int ak_cast_output (ak_cast_t *c, const void *data, size_t len);
int ak_cast_input (ak_cast_t *c, const void *data, size_t len);

/* Record a terminal resize, as "COLSxROWS". */
int ak_cast_resize (ak_cast_t *c, unsigned cols, unsigned rows);

/* Writes out any held-back incomplete sequence (as U+FFFD), closes the
 * file and frees c.  NULL is a no-op. */
void ak_cast_close (ak_cast_t *c);

/* $HOME/.agentkernel/recordings/NAME-YYYYMMDD-HHMMSS.cast (local time),
 * creating the directories (0700) as needed.  Characters of the sandbox
 * name other than [A-Za-z0-9._-] become '_', so the name cannot leave the
 * directory; if a recording of that name exists already, "-1", "-2", ...
 * is added before ".cast".  Returns a heap string, or NULL with errno set. */
char *ak_cast_default_path (const char *sandbox_name);

#endif
