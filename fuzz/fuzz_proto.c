/* libFuzzer target for the agent protocol decoder: walk arbitrary bytes
 * frame by frame as the reader does, and parse the JSON payloads.  Beyond
 * the sanitizers, it checks what the reader relies on: a frame never
 * reaches past the input, sizes and types are within bounds, re-encoding a
 * decoded header gives back the same bytes, and a decoded frame is refused
 * only on a complete, invalid header. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
is_json_type (uint8_t t)
{
  switch (t)
    {
    case AK_F_STDIN:
    case AK_F_STDOUT:
    case AK_F_STDERR:
    case AK_F_FILE_DATA:
      return 0;
    default:
      return 1;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *p = data;
  size_t left = size;

  for (;;)
    {
      ak_error_t *err = NULL;
      ak_frame_t f;
      size_t used = 12345;
      int ret = ak_proto_decode (p, left, &f, &used, &err);

      if (ret < 0)
        {
          check (err != NULL && strncmp (err->msg, "protocol error: ", 16) == 0, "error message");
          check (left >= AK_PROTO_HEADER_SIZE, "error only on a complete header");
          check (used == 0, "nothing consumed on error");
          ak_error_free (err);
          return 0;
        }
      check (err == NULL, "no error on success");
      if (ret == 0)
        {
          check (used == 0, "nothing consumed when incomplete");
          return 0;
        }
      check (ret == 1, "return value");
      check (ak_proto_type_name (f.type) != NULL, "known type");
      check (f.len <= AK_PROTO_MAX_PAYLOAD, "payload bound");
      check (used == AK_PROTO_HEADER_SIZE + f.len && used <= left, "consumed within input");
      check (f.payload == p + AK_PROTO_HEADER_SIZE, "payload position");

      uint8_t hdr[AK_PROTO_HEADER_SIZE];
      ak_proto_encode_header (hdr, f.type, f.channel, (uint32_t) f.len);
      check (memcmp (hdr, p, sizeof hdr) == 0, "header re-encodes identically");

      if (is_json_type (f.type))
        {
          json_t *obj = NULL;
          if (ak_proto_parse_json (&f, &obj, &err) == 0)
            {
              check (json_is_object (obj) && err == NULL, "parsed an object");
              json_decref (obj);
            }
          else
            {
              check (obj == NULL && err != NULL, "parse error reported");
              ak_error_free (err);
            }
        }
      p += used;
      left -= used;
    }
}
