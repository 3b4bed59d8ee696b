/* The sandbox spec as JSON: the form a persistent sandbox's spec is stored
 * in, and the form the HTTP/MCP front ends exchange.
 *
 * Every field of ak_spec_t is represented, including where each security
 * setting and resource came from, so a spec read back behaves exactly as the
 * one written:
 *
 *   { "version": 1, "name": "x" | null, "backend": "container",
 *     "image": "host", "rootfs": null | "/abs",
 *     "security": { "profile": { "value": "moderate", "source": "default" },
 *                   "network": { "value": true, "source": "profile", "line": 0 },
 *                   "mount_cwd": ..., "mount_home": ..., "pass_env": ...,
 *                   "read_only": ... },
 *     "resources": { "memory_mb": { "value": 512, "source": "profile" },
 *                    "cpu_millis": ..., "pids": ..., "vcpus": ... },
 *     "cwd": null | "/abs", "home": null | "/abs",
 *     "env": ["K=V", ...], "host_env": ["K=V", ...],
 *     "mounts": [{ "source": "/abs", "dest": "/abs", "read_only": false }],
 *     "files": [{ "source": "/abs", "dest": "/abs", "line": 3 }],
 *     "workdir": null | "/abs", "argv": null | ["cmd", ...], "as_root": false,
 *     "hostname": null | "h", "agent": null | "s", "compat_mode": null | "s" }
 *
 * plus, where create recorded a host source's identity, "rootfs_pin",
 * "cwd_pin", "home_pin" and a "pin" in each mounts/files entry:
 *   { "dev": 2049, "ino": 131, "type": "directory" | "file" | ... }
 * (absent in specs written before identities were recorded).
 */
#ifndef AK_SPEC_JSON_H
#define AK_SPEC_JSON_H

#include <jansson.h>

#include "common/error.h"
#include "model/spec.h"

#define AK_SPEC_JSON_VERSION 1

/* A new JSON object describing `spec`; the caller owns the reference.  Never
 * fails (out of memory aborts). */
json_t *ak_spec_to_json (const ak_spec_t *spec);

/* Fill `spec` from `j`, which may come from anyone (a file on disk, an HTTP
 * request).  Validation is strict: wrong types, unknown keys, unknown profile
 * or source names, relative or '..' paths, invalid names, malformed
 * KEY=VALUE pairs and strings holding NUL bytes are errors naming the field.
 * A key that is absent keeps the value ak_spec_init() gives it.
 *
 * `spec` is overwritten without being freed first.  On return, success or
 * not, it is initialised and owned by the caller, who releases it with
 * ak_spec_clear(); on failure it holds the defaults of ak_spec_init(). */
int ak_spec_from_json (const json_t *j, ak_spec_t *spec, ak_error_t **err);

/* The warm pool's key of spec: its JSON form (keys sorted, compact) without
 * what a claim applies to an idle sandbox (argv, env, pass_env's values,
 * workdir, the workspace directory, the name) and without where each value
 * came from.  Two specs with the same key get exactly the same isolation:
 * profile, every security setting, seccomp, domains, resources, image,
 * backend.  malloc'd. */
char *ak_spec_pool_key (const ak_spec_t *spec);

#endif
