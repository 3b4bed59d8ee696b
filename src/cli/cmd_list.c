/* agentkernel list [--json]: every persistent sandbox and its status. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "model/labels.h"
#include "service/sandbox.h"

int
cmd_list (int argc, char **argv)
{
  ak_record_t *recs = NULL;
  size_t n = 0;
  ak_error_t *err = NULL;
  bool json = false;

  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--json"))
        json = true;
      else if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        {
          ak_cli_help_of ("list", stdout);
          return 0;
        }
      else
        return ak_cli_usage_error ("list", "unexpected argument '%s'", argv[i]);
    }
  if (ak_store_list (&recs, &n, &err) < 0)
    return ak_cli_fail (err);
  if (json)
    {
      json_t *a = json_array ();
      char *s;
      for (size_t i = 0; i < n; i++)
        {
          const ak_record_t *r = &recs[i];
          if (r->load_error)
            json_array_append_new (a, json_pack ("{s:s, s:s, s:s}", "name", r->name, "status", "broken",
                                                 "error", r->load_error));
          else
            json_array_append_new (
                a, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", r->name, "uuid", r->uuid,
                              "status", ak_sandbox_status (r), "backend", r->spec.backend, "profile",
                              ak_profile_name (r->spec.sec.profile), "image", r->spec.image, "created",
                              r->created));
          if (!r->load_error)
            {
              json_t *last = json_array_get (a, json_array_size (a) - 1);
              json_object_set_new (last, "labels", ak_labels_json (r->labels));
              if (r->description != NULL)
                json_object_set_new (last, "description", json_string (r->description));
            }
        }
      s = json_dumps (a, JSON_INDENT (2));
      printf ("%s\n", s);
      free (s);
      json_decref (a);
    }
  else
    {
      printf ("%-24s %-8s %-10s %-12s %-10s %s\n", "NAME", "STATUS", "BACKEND", "PROFILE", "IMAGE", "CREATED");
      for (size_t i = 0; i < n; i++)
        {
          const ak_record_t *r = &recs[i];
          if (r->load_error)
            printf ("%-24s %-8s %s\n", r->name, "broken", r->load_error);
          else
            printf ("%-24s %-8s %-10s %-12s %-10s %s\n", r->name, ak_sandbox_status (r), r->spec.backend,
                    ak_profile_name (r->spec.sec.profile), r->spec.image, r->created);
        }
    }
  ak_store_list_free (recs, n);
  return 0;
}
