/* libFuzzer target for the spec's JSON reader: arbitrary bytes through
 * jansson into ak_spec_from_json().  Beyond the sanitizers, it checks that a
 * failure always carries a message, and that whatever is accepted survives a
 * round trip unchanged (what is stored is what is read back). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/spec_json.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  json_t *j = json_loadb ((const char *) data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  ak_error_t *err = NULL;
  ak_spec_t spec, again;
  json_t *a, *b;

  if (j == NULL)
    return 0;
  if (ak_spec_from_json (j, &spec, &err) < 0)
    {
      check (err != NULL && strncmp (err->msg, "invalid spec", 12) == 0, "error message");
      check (spec.backend != NULL && spec.image != NULL, "defaults after failure");
      ak_error_free (err);
      ak_spec_clear (&spec);
      json_decref (j);
      return 0;
    }
  check (err == NULL, "no error on success");
  a = ak_spec_to_json (&spec);
  check (ak_spec_from_json (a, &again, &err) == 0, "written spec reads back");
  b = ak_spec_to_json (&again);
  check (json_equal (a, b), "round trip");
  json_decref (a);
  json_decref (b);
  ak_spec_clear (&again);
  ak_spec_clear (&spec);
  json_decref (j);
  return 0;
}
