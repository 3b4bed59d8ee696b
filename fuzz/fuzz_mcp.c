/* libFuzzer target for the MCP request handler: arbitrary bytes as one
 * request line.  Tools run in dry-run mode (arguments are checked, nothing
 * is acted on).  Beyond the sanitizers, it checks the framing promise: a
 * reply is one line of JSON, an object with jsonrpc "2.0" and exactly one
 * of result and error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/mcp.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *resp;
  json_t *j;

  ak_mcp_set_dry_run (true);
  resp = ak_mcp_handle_line ((const char *) data, size);
  if (resp == NULL)
    return 0;
  check (strchr (resp, '\n') == NULL, "reply is one line");
  j = json_loads (resp, 0, NULL);
  check (j != NULL && json_is_object (j), "reply is a JSON object");
  check (json_is_string (json_object_get (j, "jsonrpc"))
             && strcmp (json_string_value (json_object_get (j, "jsonrpc")), "2.0") == 0,
         "jsonrpc 2.0");
  check ((json_object_get (j, "result") != NULL) != (json_object_get (j, "error") != NULL),
         "exactly one of result and error");
  json_decref (j);
  free (resp);
  return 0;
}
