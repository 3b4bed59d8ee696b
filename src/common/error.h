/* One error convention for the whole library.
 *
 * A function that can fail takes `ak_error_t **err` as its last parameter and
 * returns a negative value (normally -1) on failure, after filling *err with a
 * heap-allocated error.  Callers either handle the error and free it with
 * ak_error_free(), or add context with ak_error_prefix() and pass it up.
 * Only front ends (CLI, HTTP, MCP) turn an error into a message and an exit
 * status.  *err must be NULL on entry; it is left untouched on success.
 */
#ifndef AK_ERROR_H
#define AK_ERROR_H

#include <stdarg.h>

typedef struct ak_error {
  int code;  /* errno value, or 0 when the failure is not a system error */
  char *msg; /* full human-readable message, never NULL */
} ak_error_t;

/* Set *err to a new error and return -1.  When code is non-zero,
 * ": strerror(code)" is appended to the message. */
int ak_error_set (ak_error_t **err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
int ak_error_setv (ak_error_t **err, int code, const char *fmt, va_list ap);

/* Like ak_error_set, but the code only classifies the failure (ENOENT: no
 * such thing, EEXIST, ...) for front ends that map it to a status; nothing
 * is appended to the message. */
int ak_error_coded (ak_error_t **err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Prepend "context: " to an existing error and return -1. */
int ak_error_prefix (ak_error_t **err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

void ak_error_free (ak_error_t *err);
/* Frees *err and sets it to NULL. */
void ak_error_clear (ak_error_t **err);

/* Warnings the library wants the user to see (a degraded feature): not an
 * error, so they travel through a sink the front end owns.  The default
 * sink prints "agentkernel: warning: ..." on stderr; front ends that own
 * stderr (MCP) or collect warnings for a reply (HTTP) install their own.
 * The handler is process-wide; set it before starting threads. */
typedef void (*ak_warn_fn) (const char *msg, void *data);
void ak_set_warn_handler (ak_warn_fn fn, void *data);
void ak_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
