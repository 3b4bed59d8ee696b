/* The OCI distribution API client: one repository on one registry.
 *
 * Scheme: HTTPS, verified against the system CAs plus the registry's own
 * CA from certs.d/HOST[:PORT]/ca.crt (agentkernel's config directory, then
 * /etc/docker/certs.d).  Plain HTTP only for a loopback registry or one the
 * caller lists as insecure, and only after HTTPS failed at the TLS
 * handshake.  Authentication: anonymous, then whatever the registry's
 * WWW-Authenticate challenge asks for (a Bearer token from its token
 * server, or Basic), with credentials from auth.h.  Redirects are followed
 * (blob storage); credentials are never sent to another host.  Transient
 * failures (5xx, 429, resets) are retried with backoff.
 *
 * Nothing a registry sends is trusted: manifests are bounded in size and
 * their digest computed here; blobs are hashed while they stream and
 * refused (and their bytes discarded by the caller) on a size or digest
 * mismatch.
 */
#ifndef AK_IMAGES_REGISTRY_H
#define AK_IMAGES_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/digest.h"
#include "common/error.h"
#include "images/ref.h"

#define AK_MANIFEST_MAX (4u << 20)

typedef struct ak_registry ak_registry_t;

/* Bytes of one blob received so far, of total (0 when unknown). */
typedef void (*ak_progress_fn) (const char *digest, uint64_t done, uint64_t total, void *data);

typedef struct ak_registry_opts {
  char *const *insecure; /* registries (host[:port]) allowed plain HTTP; NULL-terminated, may be NULL */
  ak_progress_fn progress;
  void *progress_data;
} ak_registry_opts_t;

/* Loads libcurl, finds the scheme and checks the registry answers. */
ak_registry_t *ak_registry_open (const ak_imgref_t *ref, const ak_registry_opts_t *opts, ak_error_t **err);
void ak_registry_close (ak_registry_t *r);

/* The manifest or index for reference (a tag or a digest): heap *body
 * (NUL-terminated, *len bytes), heap *media_type (the Content-Type, may be
 * NULL), and its computed digest.  When reference is a digest, a body that
 * does not match it is refused.  Unknown tag: ENOENT. */
int ak_registry_manifest (ak_registry_t *r, const char *reference, char **body, size_t *len, char **media_type,
                          char digest[AK_DIGEST_STR_LEN + 1], ak_error_t **err);

/* Streams the blob into fd (from its current offset), verifying size (when
 * size >= 0) and digest.  On failure fd holds partial bytes: the caller
 * discards them. */
int ak_registry_blob (ak_registry_t *r, const char *digest, int64_t size, int fd, ak_error_t **err);

/* Checks credentials against the registry (for `image login`): 0 when the
 * registry accepts them. */
int ak_registry_check_login (const char *registry, const char *user, const char *password,
                             const ak_registry_opts_t *opts, ak_error_t **err);

#endif
