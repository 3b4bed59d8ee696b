/* What the two front ends (HTTP API and MCP) share: turning untrusted
 * command output into JSON text, and the spec a request's sandbox gets. */
#ifndef AK_SERVER_COMMON_H
#define AK_SERVER_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"
#include "model/spec.h"
#include "service/store.h"

/* Copies buf as valid UTF-8, each invalid sequence replaced by U+FFFD.
 * NUL-terminated; *out_len excludes the NUL. */
char *ak_utf8_clean (const char *buf, size_t len, size_t *out_len);

/* How many bytes of buf form whole UTF-8 sequences: an incomplete sequence
 * at the end (at most 3 bytes) is left for the next chunk of a stream. */
size_t ak_utf8_whole (const char *buf, size_t len);

/* True when buf is valid UTF-8 without NUL bytes. */
bool ak_utf8_valid (const char *buf, size_t len);

/* A JSON string of buf, cleaned as ak_utf8_clean does. */
json_t *ak_json_text (const char *buf, size_t len);

/* The spec `run`/`create` would build with only --profile given (profile
 * may be NULL: moderate, or the cap below when that is stricter): that profile's settings, the server's working
 * directory and home, its environment as the profile lets through. */
int ak_server_spec (const char *profile, ak_spec_t *spec, ak_error_t **err);
/* Adds allow (which turns allowlist mode on) and block host patterns to
 * spec, as explicit settings of this request; NULL lists add nothing. */
int ak_server_hosts (ak_spec_t *spec, char *const *allow, char *const *block, ak_error_t **err);

/* The loosest profile a client (API) or a model (MCP) may ask for, and the
 * flag that raises it, for the refusal: ak_server_spec() fails with EACCES
 * (403, a tool error) naming both for anything looser.  A server started by
 * a user runs with all of that user's rights, so the default is moderate:
 * never the user's home, environment or working directory unless the user
 * who started the server said so. */
void ak_server_set_max_profile (ak_profile_t max, const char *flag);

/* A sandbox as both front ends show it: name, uuid, status, backend,
 * image, profile, created_at, limits, expires_at, labels, description. */
json_t *ak_server_sandbox_json (const ak_record_t *rec);
/* Unix time as RFC 3339 UTC. */
json_t *ak_server_rfc3339 (long long t);

#endif
