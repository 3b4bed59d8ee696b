/* Registry credentials: where they are read from and where `image login`
 * keeps them.
 *
 * Read, first match wins: agentkernel's own auth.json (written by
 * ak_auth_store, mode 0600 under the config directory), $REGISTRY_AUTH_FILE,
 * the containers auth.json ($XDG_RUNTIME_DIR/containers/auth.json, then
 * ~/.config/containers/auth.json), Docker's $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json.  All share Docker's format:
 * {"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}.
 * Credential helpers (credsStore) are not run.
 */
#ifndef AK_IMAGES_AUTH_H
#define AK_IMAGES_AUTH_H

#include "common/error.h"

/* $XDG_CONFIG_HOME/agentkernel or ~/.config/agentkernel (heap string, NULL
 * when neither is known): the same directory as service/store.h's
 * ak_config_dir, which no sandbox ever sees, so credentials and certs.d
 * stay out of reach of what runs inside. */
char *ak_images_config_dir (void);

/* 1 and heap *user / *password when a file names the registry, 0 when none
 * does, -1 on an unreadable or malformed file (the error names it). */
int ak_auth_lookup (const char *registry, char **user, char **password, ak_error_t **err);

/* Records (or, with user NULL, removes) the registry's credentials in
 * agentkernel's own auth.json, atomically.  Removing what is not there is
 * ENOENT. */
int ak_auth_store (const char *registry, const char *user, const char *password, ak_error_t **err);

#endif
