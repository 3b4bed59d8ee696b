/* Path safety: every file operation inside a sandbox root, and every open of
 * a pinned host source.
 *
 * A sandbox root may hold anything its sandbox wrote (a persistent root, a
 * rootfs's writable layer): a symlink where set-up expects a directory would
 * otherwise make a string path under /newroot land on the host.  So nothing
 * here takes a path alone: each call names a directory descriptor (the root,
 * opened once) and resolves beneath it with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS), or RESOLVE_NO_SYMLINKS where no symlink is
 * legitimate.  Where the kernel lacks openat2 (ENOSYS), a component walk with
 * O_NOFOLLOW takes its place; it refuses every symlink and every "..", which
 * is stricter than RESOLVE_IN_ROOT and never looser.
 *
 * Calls returning an int descriptor or -1 set errno on failure (the ones
 * without ak_error_t) or *err.  Returned descriptors are O_CLOEXEC and owned
 * by the caller.
 */
#ifndef AK_FSUTIL_H
#define AK_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* How a path is resolved beneath its directory descriptor. */
typedef enum ak_fs_how {
  AK_FS_IN_ROOT = 0,     /* symlinks followed, but only ever within the root */
  AK_FS_NO_SYMLINKS = 1, /* any symlink on the way is an error (ELOOP) */
  AK_FS_BENEATH = 2,     /* no symlink, and ".." out of dirfd is an error (EXDEV) */
} ak_fs_how_t;

/* openat2 beneath dirfd (a leading '/' in path is ignored), or the O_NOFOLLOW
 * walk when openat2 is missing.  -1 with errno set. */
int ak_fs_openat (int dirfd, const char *path, int flags, mode_t mode, ak_fs_how_t how);

/* The walk itself (exposed so it can be tested on kernels that have openat2):
 * intermediate components opened one at a time with O_NOFOLLOW, the last with
 * flags | O_NOFOLLOW.  A symlink anywhere but a final O_PATH|O_NOFOLLOW
 * component is ELOOP; ".." is EXDEV. */
int ak_fs_walk (int dirfd, const char *path, int flags, mode_t mode);

/* Opens the directory holding `path` (O_PATH), never through a symlink;
 * with create, makes missing directories (mode 0755).  *base points at the
 * last component, which is never empty, "." or "..".  -1 with errno set:
 * ELOOP for a symlink on the way, ENOTDIR for a non-directory, EISDIR when
 * path ends in '/', EINVAL for "." or "..". */
int ak_fs_open_parent (int dirfd, const char *path, bool create, const char **base);

/* mkdir -p beneath root (RESOLVE_IN_ROOT): returns an O_PATH descriptor of
 * the directory. */
int ak_fs_mkdir_p (int rootfd, const char *path, mode_t mode, ak_error_t **err);

/* A real directory at path, reached without any symlink: each component that
 * is not a directory (a symlink, a file, a socket) is removed and replaced by
 * a new directory of `mode`.  Returns an O_RDONLY|O_DIRECTORY descriptor
 * (usable with fchmod, fchdir and as a new dirfd). */
int ak_fs_ensure_dir (int dirfd, const char *path, mode_t mode, ak_error_t **err);

/* A new regular file at path (parents made as by ak_fs_mkdir_p), opened
 * O_WRONLY: whatever non-directory held the name before is removed first, so
 * the write can never go through a symlink or a hard link into another file. */
int ak_fs_create_file (int rootfd, const char *path, mode_t mode, ak_error_t **err);
/* ak_fs_create_file, then all of data written, then fchmod to mode. */
int ak_fs_write_file (int rootfd, const char *path, const void *data, size_t len, mode_t mode,
                      ak_error_t **err);
/* The rest of src copied into a new file at path. */
int ak_fs_copy_file (int rootfd, const char *path, int src, mode_t mode, ak_error_t **err);

/* A symlink at path pointing at target; an existing symlink or file of that
 * name is replaced, an existing directory is left as it is. */
int ak_fs_symlink (int rootfd, const char *path, const char *target, ak_error_t **err);

/* A mount point for a file: an existing regular file is kept, anything else
 * that is not a directory is replaced.  Returns an O_PATH descriptor. */
int ak_fs_touch (int rootfd, const char *path, ak_error_t **err);

/* The identity of a host source: what it was when a sandbox was created. */
typedef struct ak_fs_id {
  unsigned long long dev, ino;
  unsigned type; /* st_mode & S_IFMT; 0 = not recorded */
} ak_fs_id_t;

/* Canonicalises path (realpath) into *canonical, opens it without following
 * any symlink and records its identity.  Returns the O_PATH descriptor. */
int ak_fs_pin (const char *path, ak_fs_id_t *id, char **canonical, ak_error_t **err);
/* Opens an absolute canonical path with flags, following no symlink on the
 * way (RESOLVE_NO_SYMLINKS, O_NOFOLLOW), and checks that it is still the
 * object `id` recorded.  A mismatch is an error naming `what`. */
int ak_fs_open_pinned (const char *path, const ak_fs_id_t *id, int flags, const char *what,
                       ak_error_t **err);

/* Removes parent/name and everything beneath it: never following a link,
 * never crossing into another file system (EXDEV: a mount point left
 * behind), opening up directories left without permissions, with one
 * directory open at a time however deep the tree.  Adds the bytes of the
 * regular files removed (last links only) to *freed when non-NULL.  A name
 * that does not exist is success. */
int ak_fs_remove_tree (int parent, const char *name, uint64_t *freed, ak_error_t **err);

#endif
