/* The image store: verified, content-addressed, shared by every image.
 *
 * Under <state>/images/:
 *   blobs/sha256/<hex>     manifests, indexes, configs and layer blobs,
 *                          each checked against its digest before it is
 *                          renamed here (and manifests and configs again
 *                          when read back)
 *   layers/sha256/<hex>/   one unpacked directory per layer diff id
 *   refs.json              reference -> manifest digest, platform, time
 *   tmp/                   downloads and unpacks in progress
 *   locks/                 one lock file per blob or layer being made
 *   store.lock             shared by pulls, exclusive for rm and prune
 *
 * Everything enters by temp + fsync + rename, so a process killed at any
 * point leaves either nothing or a complete, verified entry, and the next
 * pull completes what is missing.  Concurrent pulls serialise per blob
 * and per layer on flock()s: the second finds the first's result and
 * downloads nothing.  rm and prune take the store exclusively, so they
 * never remove what a pull in progress is about to reference, and they
 * remove only what no remaining reference (nor the caller's in-use list)
 * reaches.
 */
#ifndef AK_IMAGES_STORE_H
#define AK_IMAGES_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"

typedef struct ak_istore {
  int dirfd;  /* <state>/images */
  int lockfd; /* store.lock, held shared or exclusive until close */
  char *path;
} ak_istore_t;

int ak_istore_open (const char *state_root, bool exclusive, ak_istore_t *s, ak_error_t **err);
void ak_istore_close (ak_istore_t *s);

/* Exclusive flock on locks/<kind>-<hex>; returns the descriptor to close. */
int ak_istore_lock (ak_istore_t *s, const char *kind, const char *digest, ak_error_t **err);

bool ak_istore_has_blob (ak_istore_t *s, const char *digest);
/* O_RDONLY descriptor of a present blob. */
int ak_istore_open_blob (ak_istore_t *s, const char *digest, ak_error_t **err);
/* A new file under tmp/ (O_RDWR); *name is its name there (heap). */
int ak_istore_tmpfile (ak_istore_t *s, char **name, ak_error_t **err);
/* fsync, then rename tmp/<name> to blobs/sha256/<hex>. */
int ak_istore_commit_blob (ak_istore_t *s, int fd, const char *name, const char *digest, ak_error_t **err);
/* Writes data as a blob after checking it hashes to digest. */
int ak_istore_put_blob (ak_istore_t *s, const char *digest, const char *data, size_t len, ak_error_t **err);
/* Reads a blob of at most max bytes and checks its digest. */
int ak_istore_read_blob (ak_istore_t *s, const char *digest, size_t max, char **data, size_t *len, ak_error_t **err);

bool ak_istore_has_layer (ak_istore_t *s, const char *diff_id);
/* A new empty directory under tmp/ (O_RDONLY|O_DIRECTORY). */
int ak_istore_tmpdir (ak_istore_t *s, char **name, ak_error_t **err);
int ak_istore_commit_layer (ak_istore_t *s, const char *name, const char *diff_id, ak_error_t **err);
/* Absolute path of a layer directory (heap). */
char *ak_istore_layer_path (ak_istore_t *s, const char *diff_id);

/* The refs index: a JSON object (new reference), never NULL on success. */
int ak_istore_refs_load (ak_istore_t *s, json_t **refs, ak_error_t **err);
/* Sets key to val (stolen), or removes it when val is NULL (ENOENT when
 * absent); atomic, serialised with other updates. */
int ak_istore_refs_set (ak_istore_t *s, const char *key, json_t *val, ak_error_t **err);

/* Removes every blob and layer whose digest is not in keep (what the
 * references reach, computed by the caller; NULL-terminated), and
 * everything under tmp/.  Needs the store exclusively.  *freed: bytes
 * removed. */
int ak_istore_gc (ak_istore_t *s, char *const *keep, uint64_t *freed, ak_error_t **err);

/* Removes a tree beneath parent through descriptors, never following a
 * symlink; adds the bytes removed to *freed when non-NULL. */
int ak_istore_remove_tree (int parent, const char *name, uint64_t *freed);

#endif
