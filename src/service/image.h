/* Sandboxes that run OCI images: resolving a spec's image (detecting it for
 * "auto", pulling it when absent), the store directories each run or start
 * mounts, and which images sandboxes still use. */
#ifndef AK_SERVICE_IMAGE_H
#define AK_SERVICE_IMAGE_H

#include "common/error.h"
#include "images/image.h"
#include "model/spec.h"

/* Progress of pulls that runs and creates start (NULL: silent).  Front ends
 * set it once: the CLI draws bars on stderr, servers stay silent. */
void ak_sandbox_set_pull_progress (ak_pull_fn fn, void *data);

/* Whether spec names an OCI image (not "host", not a --rootfs directory). */
bool ak_spec_wants_image (const ak_spec_t *spec);

/* Resolves spec->image for a run or create: "auto" becomes the detected
 * image (said on stderr with the reason), an image not in the store is
 * pulled, and the spec records the digest, the layers and the image's Env;
 * with no command, the image's Entrypoint and Cmd become it; without
 * mount_cwd and without a workdir, the image's WorkingDir is used.  Does
 * nothing for the host image or a rootfs. */
int ak_sandbox_image_prepare (ak_spec_t *spec, ak_error_t **err);
/* The same, reporting a pull to fn (NULL: silent) instead of the hook. */
int ak_sandbox_image_prepare_progress (ak_spec_t *spec, ak_pull_fn fn, void *data, ak_error_t **err);

/* Whether spec's image (when it names one) is in the store already. */
bool ak_sandbox_image_present (const ak_spec_t *spec);

/* Before each run or start of a spec that has an image: fills
 * spec->image_layer_dirs from the store, and (hold != NULL) marks the
 * layers in use until *hold is closed. */
int ak_sandbox_image_dirs (ak_spec_t *spec, int *hold, ak_error_t **err);

/* Every digest the persistent sandboxes use (NULL-terminated, heap), for
 * ak_image_remove/prune's keep; *users (when non-NULL) gets "NAME DIGEST"
 * for each sandbox that has an image. */
int ak_sandbox_images_in_use (char ***keep, char ***users, ak_error_t **err);

#endif
