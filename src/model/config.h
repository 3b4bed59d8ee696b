/* agentkernel.toml: the config file layer of a sandbox spec.
 *
 * DESIGN.md's order is profile, then explicit [security] keys, then CLI
 * flags.  This layer owns the middle step (and the profile step when the CLI
 * named none); the caller applies CLI flags afterwards.
 */
#ifndef AK_CONFIG_H
#define AK_CONFIG_H

#include <stdbool.h>

#include "common/error.h"
#include "model/spec.h"

/* Parse the config file at `path` and apply it to `spec`:
 *  - the profile from [security] profile, unless profile_from_cli (the CLI's
 *    --profile wins; the key is still checked);
 *  - each explicit [security] key, with source AK_SRC_CONFIG and its line;
 *  - [sandbox], [agent], [resources] and [[files]].
 * Settings the file does not name are left untouched.  Unknown keys and
 * tables are warnings (ak_warn), never errors; wrong types, bad values and
 * unsafe [[files]] entries fail with "FILE:LINE: [table] key: ...".
 * Returns 0, or -1 with *err set; on failure spec may be partly applied and
 * should be discarded. */
int ak_config_load_apply (const char *path, bool profile_from_cli, ak_spec_t *spec,
                          ak_error_t **err);

/* How a config file is to be applied.  A file nobody vouched for (found in
 * the current directory, which the agent or a cloned repository writes) may
 * only tighten: it cannot pick a looser profile than the one in force, turn
 * on network, mount_cwd, mount_home or pass_env, turn off read_only, or
 * raise a resource limit.  Each such setting is dropped with a warning and,
 * when `refused` is set, appended to it as "LINE: [table] key = value". */
typedef struct ak_config_opts {
  bool profile_from_cli;
  bool untrusted;
  char ***refused;
} ak_config_opts_t;

/* ak_config_load_apply() on len bytes of buf already read from path (the
 * bytes whose hash was checked are the bytes applied), with options. */
int ak_config_apply_buf (const char *path, const char *buf, size_t len, const ak_config_opts_t *o,
                         ak_spec_t *spec, ak_error_t **err);

/* [daemon]: the warm pool of `agentkernel daemon` (service/pool.h).
 *   pool_size = 2                      idle sandboxes kept per shape
 *   shapes = [{ profile = "moderate", image = "host", backend = "container",
 *               network = false }]     each key optional
 * With no shapes, the daemon pools the default sandbox (what a plain `run`
 * in the daemon's directory gets). */
#define AK_DAEMON_POOL_SIZE_DEFAULT 2
#define AK_DAEMON_POOL_SIZE_MAX 32
typedef struct ak_daemon_shape {
  char *profile, *image, *backend; /* NULL: the default */
  int network;                      /* -1: the profile's */
} ak_daemon_shape_t;
typedef struct ak_daemon_conf {
  unsigned pool_size;
  ak_daemon_shape_t *shapes;
  size_t n_shapes;
} ak_daemon_conf_t;
/* Reads [daemon] of the file at path (NULL: defaults only). */
int ak_config_daemon (const char *path, ak_daemon_conf_t *d, ak_error_t **err);
void ak_daemon_conf_clear (ak_daemon_conf_t *d);

/* Levenshtein distance between a and b (pure; used for "did you mean"). */
size_t ak_edit_distance (const char *a, const char *b);

#endif
