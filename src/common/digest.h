/* SHA-256 digests, as OCI names content ("sha256:<64 lowercase hex>").
 *
 * A thin wrapper over nettle's sha256 (linked statically, so a command
 * that never hashes pays nothing at start-up).  Streaming: feed any number
 * of chunks, then compare or format.  Not thread safe per context; separate
 * contexts are independent.
 */
#ifndef AK_DIGEST_H
#define AK_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AK_SHA256_HEX_LEN 64
#define AK_DIGEST_STR_LEN (7 + AK_SHA256_HEX_LEN) /* "sha256:" + hex */

typedef struct ak_sha256 {
  uint64_t state[16]; /* large enough for nettle's struct sha256_ctx; checked at build */
  uint8_t buf[64];
  uint64_t count;
  unsigned index;
} ak_sha256_t;

void ak_sha256_init (ak_sha256_t *ctx);
void ak_sha256_update (ak_sha256_t *ctx, const void *data, size_t len);
/* Writes "sha256:<hex>" and a NUL into out (AK_DIGEST_STR_LEN + 1 bytes);
 * the context is reset and may be reused. */
void ak_sha256_final (ak_sha256_t *ctx, char out[AK_DIGEST_STR_LEN + 1]);

/* One-shot digest of a buffer. */
void ak_sha256_digest (const void *data, size_t len, char out[AK_DIGEST_STR_LEN + 1]);

/* Digest of a file's content read from fd's current offset to its end. */
int ak_sha256_fd (int fd, char out[AK_DIGEST_STR_LEN + 1], ak_error_t **err);

#endif
