/* Extraction of a tar stream from a sandbox onto the host (tar_extract.c). */
#ifndef AK_TAR_EXTRACT_H
#define AK_TAR_EXTRACT_H

#include <archive.h>

#include "common/error.h"

/* Extracts every entry of `in` beneath destfd (a directory descriptor),
 * the top component renamed to newtop unless it is NULL.  Symlinks whose
 * target leaves the copied tree are skipped with a warning; an entry named
 * outside the destination, or reached through a symlink, ends the
 * extraction with an error.  *written gets the bytes of file data. */
int ak_tar_extract_untrusted (struct archive *in, int destfd, const char *newtop, long long *written,
                              ak_error_t **err);

#endif
