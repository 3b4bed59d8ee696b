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
 * lands on the host: only regular files, directories and symlinks, without
 * setuid/setgid bits. */
int ak_tar_receive (ak_proto_reader_t *rd, const char *dest, bool from_sandbox, long long *bytes,
                    ak_error_t **err);

#endif
