/* A sandbox's labels and description: metadata a user attaches to find and
 * tell sandboxes apart (`create --label`, the API's "labels" and PATCH,
 * `GET /sandboxes?label=k:v`).  Pure rules, no I/O.
 *
 * Labels are kept as a NULL-terminated, key-sorted vector of "KEY=VALUE"
 * strings, each key once.
 *   key:   1-63 bytes of letters, digits, '.', '_', '-', '/', starting with a
 *          letter or digit (so never '=' or ':', which separate it from the
 *          value in `--label K=V` and `?label=k:v`)
 *   value: 0-255 bytes of UTF-8 without control characters
 * At most AK_LABELS_MAX labels; a description is at most
 * AK_DESCRIPTION_MAX bytes of UTF-8 without control characters other than
 * newline and tab.
 */
#ifndef AK_MODEL_LABELS_H
#define AK_MODEL_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"

#define AK_LABELS_MAX 64
#define AK_LABEL_KEY_MAX 63
#define AK_LABEL_VALUE_MAX 255
#define AK_DESCRIPTION_MAX 1024

bool ak_label_key_valid (const char *key);
/* The checks, as EINVAL errors naming what is wrong. */
int ak_label_check (const char *key, const char *value, ak_error_t **err);
int ak_description_check (const char *text, ak_error_t **err);

/* Sets key to value (replacing an earlier value); fails when the pair is
 * invalid or a new key would pass AK_LABELS_MAX.  *labels may be NULL. */
int ak_labels_set (char ***labels, const char *key, const char *value, ak_error_t **err);
/* "KEY=VALUE" (the CLI's --label), set as above. */
int ak_labels_set_kv (char ***labels, const char *kv, ak_error_t **err);
/* Removes key; nothing when absent. */
void ak_labels_unset (char **labels, const char *key);
/* The value of key, or NULL. */
const char *ak_labels_get (char *const *labels, const char *key);

/* The labels as a JSON object {key: value} (new reference). */
json_t *ak_labels_json (char *const *labels);

/* A filter "k:v" (the label k has the value v) or "k" (the sandbox has a
 * label k), checked like a label. */
int ak_label_filter_check (const char *filter, ak_error_t **err);
/* Whether labels satisfy a checked filter. */
bool ak_labels_match (char *const *labels, const char *filter);

#endif
