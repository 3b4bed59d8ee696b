/* OCI and Docker schema-2 manifests and indexes: parsed strictly, from
 * bytes a registry sent (untrusted; fuzzed by fuzz/fuzz_manifest.c).
 *
 * Accepted: OCI image manifests and indexes, Docker schema-2 manifests and
 * manifest lists.  Layers must be tar, gzip or zstd tars.  Every digest is
 * checked for form (sha256 only), every size for range, so the store can
 * use a digest as a file name.
 */
#ifndef AK_IMAGES_MANIFEST_H
#define AK_IMAGES_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define AK_MAX_LAYERS 256
#define AK_BLOB_MAX (64ll << 30)

typedef enum ak_compression { AK_COMP_NONE, AK_COMP_GZIP, AK_COMP_ZSTD } ak_compression_t;

typedef struct ak_descriptor {
  char *media_type;
  char digest[72];
  int64_t size;
  ak_compression_t compression; /* layers */
  char *os, *arch, *variant;    /* index entries */
  bool attestation;             /* index entry that is not an image (unknown/unknown, attestation-manifest) */
} ak_descriptor_t;

typedef struct ak_manifest {
  bool is_index;
  ak_descriptor_t config;  /* manifests */
  ak_descriptor_t *items;  /* layers of a manifest, entries of an index */
  size_t n_items;
} ak_manifest_t;

int ak_manifest_parse (const char *body, size_t len, ak_manifest_t *m, ak_error_t **err);
void ak_manifest_clear (ak_manifest_t *m);

/* "os/arch[/variant]"; NULL means this host's platform (linux/amd64 on
 * x86-64, linux/arm64 on AArch64). Refuses a malformed string. */
int ak_platform_parse (const char *text, char **os, char **arch, char **variant, ak_error_t **err);

/* The index entry for the platform, attestation entries skipped; ENOENT
 * (naming the platforms there are) when none matches. */
const ak_descriptor_t *ak_index_select (const ak_manifest_t *idx, const char *os, const char *arch,
                                        const char *variant, ak_error_t **err);

/* From an image config: the layers' diff ids (uncompressed digests, one per
 * layer, heap vector) and the platform. */
int ak_config_diff_ids (const char *body, size_t len, size_t n_layers, char ***diff_ids, ak_error_t **err);

#endif
