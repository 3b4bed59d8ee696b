/* `--image auto`: which image a project needs, from its files and then the
 * command's name.  Pure: the caller says which files exist. */
#ifndef AK_MODEL_IMAGE_AUTO_H
#define AK_MODEL_IMAGE_AUTO_H

#include <stdbool.h>

/* Whether the project directory holds a file of this name. */
typedef bool (*ak_has_file_fn) (const char *name, void *data);

typedef enum { AK_DETECT_FILE, AK_DETECT_COMMAND, AK_DETECT_DEFAULT } ak_detect_by_t;

/* The image for a project: the first rule whose file exists (in the
 * documented order), else the rule naming the command (argv0's base name,
 * may be NULL), else alpine.  *why (static text) is the file or command
 * that decided (*by says which), or "no project file or known command". */
const char *ak_image_detect (ak_has_file_fn has, void *data, const char *argv0, const char **why,
                             ak_detect_by_t *by);

/* Every file name the rules look at, NULL-terminated (for callers that
 * list a directory once). */
extern const char *const ak_image_detect_files[];

#endif
