/* libarchive, loaded the first time a tar stream is needed.
 *
 * libarchive pulls in a dozen libraries (libxml2, ICU, libstdc++, the
 * compressors); the dynamic loader takes about 1.5 ms to map and relocate
 * them, longer than the rest of a sandbox's start-up.  Only file transfers
 * need it, so `run` and `exec` never load it.  Whoever starts an agent
 * loads it first (ak_archive_load), so the agent has it inside a sandbox
 * whose root holds no libarchive.
 */
#ifndef AK_ARCHIVE_DL_H
#define AK_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

#include "common/error.h"

#define AK_ARCHIVE_FUNCS(X)                                                                                            \
  X (archive_entry_dev)                                                                                                \
  X (archive_entry_filetype)                                                                                           \
  X (archive_entry_free)                                                                                               \
  X (archive_entry_gid)                                                                                                \
  X (archive_entry_hardlink)                                                                                           \
  X (archive_entry_ino64)                                                                                           \
  X (archive_entry_mode)                                                                                               \
  X (archive_entry_mtime)                                                                                              \
  X (archive_entry_new)                                                                                                \
  X (archive_entry_pathname)                                                                                           \
  X (archive_entry_perm)                                                                                               \
  X (archive_entry_set_filetype)                                                                                       \
  X (archive_entry_set_mtime)                                                                                          \
  X (archive_entry_set_pathname)                                                                                       \
  X (archive_entry_set_perm)                                                                                           \
  X (archive_entry_set_size)                                                                                           \
  X (archive_entry_size)                                                                                               \
  X (archive_entry_sourcepath)                                                                                               \
  X (archive_entry_symlink)                                                                                            \
  X (archive_entry_uid)                                                                                                \
  X (archive_entry_xattr_next)                                                                                         \
  X (archive_entry_xattr_reset)                                                                                        \
  X (archive_error_string)                                                                                             \
  X (archive_read_data)                                                                                                \
  X (archive_read_data_block)                                                                                          \
  X (archive_read_data_skip)                                                                                           \
  X (archive_read_disk_descend)                                                                                        \
  X (archive_read_disk_new)                                                                                            \
  X (archive_read_disk_open)                                                                                           \
  X (archive_read_disk_set_standard_lookup)                                                                            \
  X (archive_read_disk_set_symlink_physical)                                                                           \
  X (archive_read_free)                                                                                                \
  X (archive_read_new)                                                                                                 \
  X (archive_read_next_header)                                                                                         \
  X (archive_read_next_header2)                                                                                        \
  X (archive_read_open)                                                                                                \
  X (archive_read_open_fd)                                                                                             \
  X (archive_read_support_filter_all)                                                                                  \
  X (archive_read_support_format_raw)                                                                                  \
  X (archive_read_support_format_tar)                                                                                  \
  X (archive_write_close)                                                                                              \
  X (archive_write_data)                                                                                               \
  X (archive_write_data_block)                                                                                         \
  X (archive_write_disk_new)                                                                                           \
  X (archive_write_disk_set_options)                                                                                   \
  X (archive_write_finish_entry)                                                                                       \
  X (archive_write_free)                                                                                               \
  X (archive_write_header)                                                                                             \
  X (archive_write_new)                                                                                                \
  X (archive_write_open)                                                                                               \
  X (archive_write_set_bytes_per_block)                                                                                \
  X (archive_write_set_format_pax_restricted)

typedef struct ak_archive_api {
#define AK_ARCHIVE_MEMBER(f) __typeof__ (f) *f;
  AK_ARCHIVE_FUNCS (AK_ARCHIVE_MEMBER)
#undef AK_ARCHIVE_MEMBER
} ak_archive_api_t;

/* Filled by ak_archive_load; call through it (ak_la.archive_read_new ()). */
extern ak_archive_api_t ak_la;

/* Loads libarchive once (thread safe); fails naming the package to install. */
int ak_archive_load (ak_error_t **err);

#endif
