/* Images: the one header front ends (and, later, the sandbox set-up)
 * include.
 *
 * Pull a reference into the store (store.h) through the registry client
 * (registry.h), list, inspect, remove and prune what is there, and
 * resolve a present image for running it:
 *
 *   ak_image_t img;
 *   ak_image_resolve (state_root, "python:3.12-alpine", &img, &err);
 *   img.layer_dirs[0 .. n_layers)   lowest layer first: the overlay lower
 *                                   stack is these in reverse order
 *   img.config                      the image config (JSON object):
 *                                   config.Env, WorkingDir, User,
 *                                   Entrypoint, Cmd
 *
 * resolve reads nothing from the network, re-verifies the manifest and
 * config against their digests, and checks every layer directory exists.
 * A sandbox that runs an image should record img.digest and pass the
 * digests it uses as `keep` to ak_image_prune / ak_image_remove, so they
 * are never removed under it.
 */
#ifndef AK_IMAGES_IMAGE_H
#define AK_IMAGES_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"

typedef enum ak_pull_event {
  AK_PULL_MANIFEST,      /* digest: the manifest chosen; total: number of layers */
  AK_PULL_LAYER_PRESENT, /* digest: a layer already in the store */
  AK_PULL_LAYER_BYTES,   /* digest: a layer downloading; done / total bytes */
  AK_PULL_LAYER_DONE,    /* digest: a layer downloaded, verified and unpacked */
} ak_pull_event_t;

typedef void (*ak_pull_fn) (ak_pull_event_t ev, const char *digest, uint64_t done, uint64_t total, void *data);

typedef struct ak_pull_opts {
  const char *platform;  /* "os/arch[/variant]"; NULL: this host's */
  char *const *insecure; /* registries allowed plain HTTP besides loopback ones */
  uint64_t max_layer_bytes; /* 0: AK_LAYER_MAX_DEFAULT */
  /* "REGISTRY=MIRROR" entries: a reference on REGISTRY is pulled from each
   * of its mirrors in turn, then from REGISTRY itself. */
  char *const *mirrors;
  ak_pull_fn progress;
  void *progress_data;
  char **insecure_owned, **mirrors_owned; /* set by ak_pull_opts_from_env */
} ak_pull_opts_t;

/* insecure and mirrors from AGENTKERNEL_INSECURE_REGISTRIES and
 * AGENTKERNEL_REGISTRY_MIRRORS (comma-separated); a malformed mirror entry
 * is an error.  Free with ak_pull_opts_clear. */
int ak_pull_opts_from_env (ak_pull_opts_t *opts, ak_error_t **err);
void ak_pull_opts_clear (ak_pull_opts_t *opts);

/* Marks digests (layers, manifest, config) as in use by this process until
 * *hold is closed (or the process ends): prune and rm keep them. */
int ak_image_hold (const char *state_root, char *const *digests, int *hold, ak_error_t **err);

/* The store directories of these layers (diff ids), lowest first; ENOENT
 * when one is missing. */
int ak_image_layer_dirs (const char *state_root, char *const *diff_ids, char ***dirs, ak_error_t **err);

typedef struct ak_image {
  char *ref;      /* canonical reference */
  char *digest;   /* manifest digest */
  char *index;    /* the index's digest when the reference named one, else NULL */
  char *platform; /* "linux/amd64" */
  char *config_digest;
  json_t *config; /* the whole image config */
  size_t n_layers;
  char **layer_digests; /* blob digests */
  char **diff_ids;
  char **layer_dirs; /* absolute paths, lowest first */
  int64_t *layer_sizes;
  int64_t size; /* sum of the layer blobs */
  long long pulled; /* seconds since the epoch */
} ak_image_t;

void ak_image_clear (ak_image_t *img);

/* Pulls ref (verified, atomic, shared; see store.h) and records it.  On
 * success *img describes it (may be NULL). */
int ak_image_pull (const char *state_root, const char *ref, const ak_pull_opts_t *opts, ak_image_t *img,
                   ak_error_t **err);

/* A present image, without the network.  ENOENT when not pulled. */
int ak_image_resolve (const char *state_root, const char *ref, ak_image_t *img, ak_error_t **err);

/* Every recorded image, sorted by reference (heap array); a damaged one is
 * left out with a warning (ak_warn). */
int ak_image_list (const char *state_root, ak_image_t **imgs, size_t *n, ak_error_t **err);

/* Forgets ref, then removes what no other image reaches nor keep lists. */
int ak_image_remove (const char *state_root, const char *ref, char *const *keep, uint64_t *freed, ak_error_t **err);

/* Removes what no image reaches nor keep lists, and killed pulls' leftovers. */
int ak_image_prune (const char *state_root, char *const *keep, uint64_t *freed, ak_error_t **err);

/* `image inspect`'s JSON: reference, digest, platform, config, layers. */
json_t *ak_image_to_json (const ak_image_t *img);

#endif
