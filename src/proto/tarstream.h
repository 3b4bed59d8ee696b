/* Tar streams over the agent protocol, used by both sides of `cp`.
 *
 * The sender archives one path (a file, or a directory with everything in
 * it, modes and times kept, symlinks as links) as FILE_DATA frames ended by
 * an empty one; the receiver extracts it refusing absolute names, "..",
 * and writes through symlinks, so an archive can never land outside the
 * destination.
 */
#ifndef AK_TARSTREAM_H
#define AK_TARSTREAM_H

#include <stdbool.h>

#include "common/error.h"
#include "proto/proto.h"

/* Sends path as a tar stream whose top entry is named after path's last
 * component. */
int ak_tar_send (int fd, const char *path, ak_error_t **err);

/* Receives a tar stream into dest: inside dest when it is an existing
 * directory, else as dest itself (the top entry renamed).  *bytes gets the
 * number of file bytes written.  from_sandbox: the stream is untrusted and
 * lands on the host: extracted beneath a descriptor on the destination,
 * only regular files, directories and symlinks that stay inside the copied
 * tree (others skipped with a warning), without setuid/setgid bits (see
 * tar_extract.h). */
int ak_tar_receive (ak_proto_reader_t *rd, const char *dest, bool from_sandbox, long long *bytes,
                    ak_error_t **err);

/* One regular file, from memory, as a tar stream with the entry `name`
 * (mode 0644). */
int ak_tar_send_mem (int fd, const char *name, const void *data, size_t len, ak_error_t **err);

/* Receives a tar stream holding one regular file of at most max bytes into
 * memory (*data is NUL-terminated, *len excludes the NUL).  Anything else
 * (a directory, a symlink) is refused with code EINVAL, a larger file with
 * EFBIG; an ERROR from the peer keeps its code. */
int ak_tar_receive_mem (ak_proto_reader_t *rd, size_t max, char **data, size_t *len, ak_error_t **err);

#endif
