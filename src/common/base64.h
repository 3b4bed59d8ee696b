/* Standard base64 (RFC 4648 section 4), as the HTTP API carries binary
 * file contents.  The decoder is strict: padding required, no whitespace, no
 * other alphabet, no stray bits. */
#ifndef AK_BASE64_H
#define AK_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* NUL-terminated heap string. */
char *ak_base64_encode (const void *data, size_t len);

/* Decodes text[0..len) into a heap buffer (NUL-terminated for convenience,
 * *out_len excludes it).  Returns false on malformed input. */
bool ak_base64_decode (const char *text, size_t len, char **out, size_t *out_len);

#endif
