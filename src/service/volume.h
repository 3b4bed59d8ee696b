/* Named volumes: directories under <state root>/volumes/<slug>/ that a
 * sandbox is given with --volume SLUG:/path[:ro] (shown like a host
 * directory, and pinned like one at create).
 *
 * A slug is 1-63 of [a-z0-9_-], starting with a letter or a digit. */
#ifndef AK_VOLUME_H
#define AK_VOLUME_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

bool ak_volume_slug_valid (const char *slug);
/* Creates the volume (exist_ok: an existing one is fine); *path (may be
 * NULL) gets its directory.  EEXIST when it exists and !exist_ok. */
int ak_volume_create (const char *slug, bool exist_ok, char **path, ak_error_t **err);
/* Holds the volume for a sandbox about to mount it, creating it when
 * missing (as ak_volume_create with exist_ok): a shared lock that a delete
 * takes exclusively, so a volume held is never deleted and one being
 * deleted is made anew only once it is gone.  Returns the descriptor that
 * holds it (close it once the sandbox is recorded or has ended). */
int ak_volume_hold (const char *slug, char **path, ak_error_t **err);
/* Where the volume's directory is or would be (NULL: no state directory);
 * nothing is created. */
char *ak_volume_dir (const char *slug);
/* The volume's directory (ENOENT when there is no such volume). */
int ak_volume_path (const char *slug, char **path, ak_error_t **err);
/* Every volume's slug, sorted (NULL-terminated; ak_strv_free). */
int ak_volume_list (char ***slugs, ak_error_t **err);
/* Names of the recorded sandboxes that mount the volume (ak_strv_free). */
int ak_volume_users (const char *slug, char ***names, ak_error_t **err);
/* Removes the volume and its files; refused (EBUSY) while a recorded
 * sandbox uses it or a sandbox being started holds it (ak_volume_hold). */
int ak_volume_delete (const char *slug, ak_error_t **err);
/* Bytes and files under the volume (not following symlinks). */
int ak_volume_usage (const char *slug, unsigned long long *bytes, unsigned long long *files, ak_error_t **err);

#endif
