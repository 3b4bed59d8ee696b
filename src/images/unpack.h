/* Layer unpacking: one layer blob into one empty directory, safely.
 *
 * A layer is a tar stream from a registry: an attacker's input.  Every
 * entry is created through the layer directory's descriptor, its parents
 * reached without following any symlink (common/fsutil), so nothing can
 * land outside the layer: absolute names, "..", a symlink in a parent path
 * and hard links to anything not already in this layer are refused with
 * an error naming the layer and the entry.
 *
 * What is kept and what is not:
 *   - regular files, directories, symlinks, hard links within the layer,
 *     FIFOs; mode bits except setuid and setgid, which are stripped so no
 *     image file can ever raise privileges on the host or in a sandbox;
 *   - modification times of everything but directories;
 *   - ownership as the tar says when the caller is root; otherwise the
 *     caller's own (a user namespace maps it at run time);
 *   - device nodes (block and character) and sockets are skipped;
 *   - OCI whiteouts become overlayfs whiteouts: ".wh.NAME" a 0/0 character
 *     device NAME (which unprivileged users may create since Linux 5.8),
 *     ".wh..wh..opq" the opaque attribute on its directory
 *     (user.overlay.opaque for overlay's userxattr mounts, and
 *     trusted.overlay.opaque too when root).
 *   - extended attributes: user.* on files and directories (where the
 *     filesystem allows); trusted.*, security.* (file capabilities) and
 *     user.overlay.* are dropped.
 * The uncompressed stream is checked against the layer's diff id before
 * anything is written, and writing stops past max_bytes of file content.
 */
#ifndef AK_IMAGES_UNPACK_H
#define AK_IMAGES_UNPACK_H

#include <stdint.h>

#include "common/error.h"

#define AK_LAYER_MAX_DEFAULT (8ull << 30)

/* blobfd: the verified (compressed) layer blob; dirfd: an empty directory
 * (O_RDONLY|O_DIRECTORY).  name: the layer's digest, for messages. */
int ak_layer_unpack (int blobfd, const char *diff_id, const char *name, int dirfd, uint64_t max_bytes,
                     ak_error_t **err);

#endif
