/* SHA-256 over nettle (see digest.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "digest.h"

/* The public context is opaque storage for nettle's, so that callers need
 * no nettle header. */
_Static_assert (sizeof (ak_sha256_t) >= sizeof (struct sha256_ctx), "ak_sha256_t too small for nettle's context");
_Static_assert (_Alignof (ak_sha256_t) >= _Alignof (struct sha256_ctx), "ak_sha256_t alignment");

void
ak_sha256_init (ak_sha256_t *ctx)
{
  sha256_init ((struct sha256_ctx *) (void *) ctx);
}

void
ak_sha256_update (ak_sha256_t *ctx, const void *data, size_t len)
{
  sha256_update ((struct sha256_ctx *) (void *) ctx, len, data);
}

void
ak_sha256_final (ak_sha256_t *ctx, char out[AK_DIGEST_STR_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  uint8_t raw[SHA256_DIGEST_SIZE];

  sha256_digest ((struct sha256_ctx *) (void *) ctx, sizeof raw, raw);
  memcpy (out, "sha256:", 7);
  for (size_t i = 0; i < sizeof raw; i++)
    {
      out[7 + 2 * i] = hex[raw[i] >> 4];
      out[7 + 2 * i + 1] = hex[raw[i] & 15];
    }
  out[AK_DIGEST_STR_LEN] = '\0';
}

void
ak_sha256_digest (const void *data, size_t len, char out[AK_DIGEST_STR_LEN + 1])
{
  ak_sha256_t ctx;

  ak_sha256_init (&ctx);
  ak_sha256_update (&ctx, data, len);
  ak_sha256_final (&ctx, out);
}

int
ak_sha256_fd (int fd, char out[AK_DIGEST_STR_LEN + 1], ak_error_t **err)
{
  ak_sha256_t ctx;
  char buf[65536];
  ssize_t n;

  ak_sha256_init (&ctx);
  for (;;)
    {
      n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ak_error_set (err, errno, "reading to compute a digest");
      if (n == 0)
        break;
      ak_sha256_update (&ctx, buf, (size_t) n);
    }
  ak_sha256_final (&ctx, out);
  return 0;
}
