/* libFuzzer target for manifests, indexes and image configs: arbitrary
 * bytes through ak_manifest_parse, ak_index_select and ak_config_diff_ids.
 * Beyond the sanitizers, it checks that a failure carries a message and
 * leaves nothing, and that whatever is accepted holds only well-formed
 * digests and sizes in range (the store uses digests as file names). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "images/manifest.h"
#include "images/ref.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ak_manifest_t m;
  ak_error_t *err = NULL;
  char **ids = NULL;

  if (ak_manifest_parse ((const char *) data, size, &m, &err) < 0)
    {
      check (err != NULL && err->msg[0] != '\0', "error message");
      check (m.items == NULL && m.n_items == 0, "nothing kept after failure");
      ak_error_clear (&err);
    }
  else
    {
      check (m.n_items <= AK_MAX_LAYERS, "layer count bounded");
      check (m.is_index || (ak_digest_valid (m.config.digest) && m.n_items > 0), "config digest");
      for (size_t i = 0; i < m.n_items; i++)
        {
          check (ak_digest_valid (m.items[i].digest), "item digest");
          check (m.items[i].size >= 0 && m.items[i].size <= AK_BLOB_MAX, "item size");
        }
      if (m.is_index)
        {
          const ak_descriptor_t *d = ak_index_select (&m, "linux", "amd64", NULL, &err);
          check ((d == NULL) == (err != NULL), "selection or error");
          check (d == NULL || !d->attestation, "attestations skipped");
          ak_error_clear (&err);
        }
      ak_manifest_clear (&m);
    }
  if (ak_config_diff_ids ((const char *) data, size, 2, &ids, &err) < 0)
    {
      check (err != NULL && ids == NULL, "config error");
      ak_error_clear (&err);
    }
  else
    {
      check (ak_strv_len (ids) == 2 && ak_digest_valid (ids[0]) && ak_digest_valid (ids[1]), "diff ids");
      ak_strv_free (ids);
    }
  return 0;
}
