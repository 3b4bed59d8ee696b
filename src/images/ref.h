/* Image references: the Docker/OCI grammar and Docker's normalisation.
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] component ( "/" component )*
 *   domain     := host [ ":" port ]      host: DNS labels or "[IPv6]"
 *   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" 64 lowercase hex digits
 *
 * The first "/"-separated part is a registry only when it looks like one,
 * as Docker decides: it contains "." or ":", or is "localhost", or holds an
 * upper-case letter (which a repository may not).  Otherwise the registry
 * is docker.io, and a one-component name gets "library/" in front:
 * "alpine" is docker.io/library/alpine:latest.  A reference names a
 * registry the user did not choose only through these rules, so they are
 * strict: anything outside the grammar is refused, never guessed at.
 */
#ifndef AK_IMAGES_REF_H
#define AK_IMAGES_REF_H

#include <stdbool.h>

#include "common/error.h"

#define AK_IMGREF_MAX_NAME 255

typedef struct ak_imgref {
  char *registry;   /* "docker.io", "localhost:5000", "[::1]:5000" */
  char *repository; /* "library/alpine" */
  char *tag;        /* "latest" when neither tag nor digest was given; NULL with a digest only */
  char *digest;     /* "sha256:<hex>" or NULL */
} ak_imgref_t;

/* Parses and normalises text into *ref (cleared first; owned by the caller,
 * freed with ak_imgref_clear).  On failure *ref holds nothing and the error
 * names the reference and what is wrong with it. */
int ak_imgref_parse (const char *text, ak_imgref_t *ref, ak_error_t **err);
void ak_imgref_clear (ak_imgref_t *ref);

/* The canonical form: "docker.io/library/alpine:3.20",
 * "localhost:5000/x@sha256:...", tag and digest both when both were given.
 * Heap string. */
char *ak_imgref_format (const ak_imgref_t *ref);

/* The name without tag or digest: "docker.io/library/alpine".  Heap string. */
char *ak_imgref_name (const ak_imgref_t *ref);

/* The host[:port] the distribution API is spoken to: docker.io's API lives
 * at registry-1.docker.io.  Points into ref or at a constant. */
const char *ak_imgref_api_host (const ak_imgref_t *ref);

/* True when the registry is this machine (localhost, 127.0.0.0/8, [::1]):
 * the only registries spoken to over plain HTTP unless listed insecure. */
bool ak_imgref_is_loopback (const char *registry);

/* True for "sha256:" followed by 64 lowercase hex digits. */
bool ak_digest_valid (const char *digest);

#endif
