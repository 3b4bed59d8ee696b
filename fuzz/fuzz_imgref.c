/* libFuzzer target for image references: arbitrary bytes through
 * ak_imgref_parse().  Beyond the sanitizers, it checks that a failure
 * carries a message and leaves nothing allocated, and that an accepted
 * reference's canonical form parses back to the same reference (what the
 * store records is what a later pull asks the registry for). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "images/ref.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = ak_xstrndup ((const char *) data, size);
  ak_imgref_t ref, again;
  ak_error_t *err = NULL;
  char *canonical, *second;

  if (ak_imgref_parse (text, &ref, &err) < 0)
    {
      check (err != NULL && strncmp (err->msg, "invalid image reference", 23) == 0, "error message");
      check (ref.registry == NULL && ref.repository == NULL && ref.tag == NULL && ref.digest == NULL,
             "nothing kept after failure");
      ak_error_free (err);
      free (text);
      return 0;
    }
  check (err == NULL, "no error on success");
  check (ref.tag != NULL || ref.digest != NULL, "a tag or a digest");
  check (ref.digest == NULL || ak_digest_valid (ref.digest), "digest valid");
  check (strstr (ref.repository, "..") == NULL && ref.repository[0] != '/', "repository is a plain path");
  canonical = ak_imgref_format (&ref);
  check (ak_imgref_parse (canonical, &again, &err) == 0, "canonical form parses");
  second = ak_imgref_format (&again);
  check (strcmp (canonical, second) == 0, "canonical form is stable");
  check (strcmp (ref.registry, again.registry) == 0 && strcmp (ref.repository, again.repository) == 0,
         "round trip");
  free (second);
  free (canonical);
  ak_imgref_clear (&again);
  ak_imgref_clear (&ref);
  free (text);
  return 0;
}
