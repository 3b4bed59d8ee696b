/* agentkernel volume create|list|info|delete: named volumes. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"
#include "service/volume.h"

int
cmd_volume (int argc, char **argv)
{
  const char *verb = NULL, *slug = NULL;
  bool json = false;
  ak_error_t *err = NULL;
  char **list = NULL;
  char *path = NULL;

  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        return ak_cli_help_of ("volume", stdout), 0;
      if (!strcmp (argv[i], "--json"))
        json = true;
      else if (argv[i][0] == '-')
        return ak_cli_usage_error ("volume", "unknown option '%s'", argv[i]);
      else if (verb == NULL)
        verb = argv[i];
      else if (slug == NULL)
        slug = argv[i];
      else
        return ak_cli_usage_error ("volume", "unexpected argument '%s'", argv[i]);
    }
  if (verb == NULL)
    return ak_cli_usage_error ("volume", "expected create, list, info or delete");
  if (!strcmp (verb, "list") || !strcmp (verb, "ls"))
    {
      json_t *a = json ? json_array () : NULL;
      if (slug != NULL)
        return ak_cli_usage_error ("volume", "list takes no argument");
      if (ak_volume_list (&list, &err) < 0)
        return ak_cli_fail (err);
      if (!json)
        printf ("%-24s %s\n", "NAME", "USED BY");
      for (char **s = list; *s; s++)
        {
          char **users = NULL;
          if (ak_volume_users (*s, &users, NULL) < 0)
            users = NULL;
          if (json)
            {
              json_t *u = json_array ();
              for (char **n = users; n && *n; n++)
                json_array_append_new (u, json_string (*n));
              json_array_append_new (a, json_pack ("{s:s, s:o}", "name", *s, "used_by", u));
            }
          else
            {
              printf ("%-24s", *s);
              for (char **n = users; n && *n; n++)
                printf ("%s%s", n == users ? " " : ",", *n);
              printf ("%s\n", users && users[0] ? "" : " -");
            }
          ak_strv_free (users);
        }
      if (json)
        {
          json_dumpf (a, stdout, JSON_INDENT (2));
          putchar ('\n');
          json_decref (a);
        }
      ak_strv_free (list);
      return 0;
    }
  if (strcmp (verb, "create") && strcmp (verb, "info") && strcmp (verb, "inspect") && strcmp (verb, "delete")
      && strcmp (verb, "rm") && strcmp (verb, "remove"))
    return ak_cli_usage_error ("volume", "unknown verb '%s' (expected create, list, info or delete)", verb);
  if (slug == NULL)
    return ak_cli_usage_error ("volume", "%s: no volume name given", verb);
  if (!strcmp (verb, "create"))
    {
      if (ak_volume_create (slug, false, &path, &err) < 0)
        return ak_cli_fail (err);
      printf ("%s\n", slug);
      free (path);
      return 0;
    }
  if (!strcmp (verb, "delete") || !strcmp (verb, "rm") || !strcmp (verb, "remove"))
    {
      if (ak_volume_delete (slug, &err) < 0)
        return ak_cli_fail (err);
      printf ("%s\n", slug);
      return 0;
    }
  {
    unsigned long long bytes, files;
    char **users = NULL;
    if (ak_volume_path (slug, &path, &err) < 0 || ak_volume_usage (slug, &bytes, &files, &err) < 0
        || ak_volume_users (slug, &users, &err) < 0)
      {
        free (path);
        ak_strv_free (users);
        return ak_cli_fail (err);
      }
    if (json)
      {
        json_t *u = json_array ();
        for (char **n = users; *n; n++)
          json_array_append_new (u, json_string (*n));
        json_t *o = json_pack ("{s:s, s:s, s:I, s:I, s:o}", "name", slug, "path", path, "bytes",
                               (json_int_t) bytes, "files", (json_int_t) files, "used_by", u);
        json_dumpf (o, stdout, JSON_INDENT (2));
        putchar ('\n');
        json_decref (o);
      }
    else
      {
        printf ("Name:     %s\nPath:     %s\nSize:     %llu bytes in %llu files\nUsed by: ", slug, path, bytes,
                files);
        for (char **n = users; *n; n++)
          printf (" %s", *n);
        printf ("%s\n", users[0] ? "" : " -");
      }
    free (path);
    ak_strv_free (users);
  }
  return 0;
}
