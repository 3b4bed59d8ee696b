/* libFuzzer target for the HTTP API's request checks (server/request.c)
 * and the text helpers its responses rely on.  The first byte picks what
 * the rest is fed to.  Beyond the sanitizers it checks the promises: a
 * refused request has an error with code EINVAL and a message; an accepted
 * one holds only what the endpoint may act on (absolute paths without "."
 * or "..", KEY=VALUE environment, durations in range); base64 decodes only
 * what it would encode back identically; cleaned text is valid UTF-8. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/base64.h"
#include "model/labels.h"
#include "server/common.h"
#include "server/request.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_refusal (int rc, ak_error_t *err)
{
  if (rc < 0)
    check (err != NULL && err->code == EINVAL && err->msg[0] != '\0', "refusal has a client error");
  else
    check (err == NULL, "success leaves no error");
  ak_error_free (err);
}

static void
check_path (const char *p)
{
  check (p[0] == '/', "path is absolute");
  check (strstr (p, "//") == NULL, "no empty components");
  check (strstr (p, "/./") == NULL && strstr (p, "/../") == NULL, "no dot components");
  size_t n = strlen (p);
  check (!(n >= 2 && strcmp (p + n - 2, "/.") == 0) && !(n >= 3 && strcmp (p + n - 3, "/..") == 0),
         "no trailing dot component");
  check (p[n - 1] != '/', "names a file, not a directory");
}

static void
check_cmd (const ak_api_cmd_t *c)
{
  check (c->argv && c->argv[0] && c->argv[0][0], "a command");
  for (char **e = c->env; e && *e; e++)
    check (strchr (*e, '=') != NULL && (*e)[0] != '=', "env is KEY=VALUE");
  check (c->workdir == NULL || c->workdir[0] == '/', "workdir is absolute");
}

/* Labels an accepted request carries: KEY=VALUE, each valid; on create
 * (unique) each key once and at most AK_LABELS_MAX. */
static void
check_labels (char **labels, bool unique)
{
  size_t n = 0;
  for (char **l = labels; l && *l; l++, n++)
    {
      char *eq = strchr (*l, '=');
      check (eq != NULL, "a label is KEY=VALUE");
      *eq = '\0';
      check (ak_label_check (*l, eq + 1, NULL) == 0, "a label is valid");
      for (char **o = labels; unique && o < l; o++)
        check (strncmp (*o, *l, strlen (*l)) != 0 || (*o)[strlen (*l)] != '=', "each key once");
      *eq = '=';
    }
  check (n <= AK_LABELS_MAX, "at most AK_LABELS_MAX labels");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ak_error_t *err = NULL;
  const char *text;
  char *copy;
  json_t *body;
  int rc;

  if (size == 0)
    return 0;
  text = (const char *) data + 1;
  size--;
  copy = strndup (text, size);

  switch (data[0] % 4)
    {
    case 0: /* a body for each endpoint */
      body = ak_api_parse_body (text, size, &err);
      check_refusal (body ? 0 : -1, err);
      if (body == NULL)
        break;
      {
        ak_api_cmd_t cmd;
        err = NULL;
        rc = ak_api_parse_run (body, &cmd, &err);
        if (rc == 0)
          check_cmd (&cmd),
              check (cmd.image == NULL
                         || (cmd.image[0] != '\0' && strlen (cmd.image) <= 512 && strcspn (cmd.image, " \t\r\n") == strlen (cmd.image)),
                     "an image is a reference: non-empty, bounded, no blanks");
        if (rc == 0)
          for (size_t i = 0; i < cmd.commands.n_allow + cmd.commands.n_block; i++)
            {
              const ak_cmdrule_t *r = i < cmd.commands.n_allow ? &cmd.commands.allow[i]
                                                               : &cmd.commands.block[i - cmd.commands.n_allow];
              ak_error_t *e2 = NULL;
              check (ak_cmd_entry_check (r->text, &e2) == 0, "an accepted command entry is well formed");
              ak_error_free (e2);
            }
        check_refusal (rc, err);
        ak_api_cmd_clear (&cmd);
        err = NULL;
        rc = ak_api_parse_exec (body, &cmd, &err);
        if (rc == 0)
          check_cmd (&cmd);
        check_refusal (rc, err);
        ak_api_cmd_clear (&cmd);
      }
      {
        ak_api_create_t c;
        err = NULL;
        rc = ak_api_parse_create (body, &c, &err);
        if (rc == 0)
          check (c.name != NULL && ak_name_valid (c.name), "valid name"), check_labels (c.labels, true),
              check (c.description == NULL || ak_description_check (c.description, NULL) == 0, "valid description");
        check_refusal (rc, err);
        ak_api_create_clear (&c);
      }
      {
        ak_api_patch_t pa;
        err = NULL;
        rc = ak_api_parse_patch (body, &pa, &err);
        if (rc == 0)
          {
            check_labels (pa.set, false);
            for (char **k = pa.unset; k && *k; k++)
              check (ak_label_key_valid (*k), "a removed label has a valid key");
            check (pa.description == NULL || pa.description[0] == '\0'
                       || ak_description_check (pa.description, NULL) == 0,
                   "valid description");
          }
        check_refusal (rc, err);
        ak_api_patch_clear (&pa);
      }
      {
        ak_api_cmd_t *cmds = NULL;
        size_t n = 0;
        err = NULL;
        rc = ak_api_parse_batch (body, &cmds, &n, &err);
        if (rc == 0)
          for (size_t i = 0; i < n; i++)
            check_cmd (&cmds[i]);
        check_refusal (rc, err);
        for (size_t i = 0; i < n; i++)
          ak_api_cmd_clear (&cmds[i]);
        free (cmds);
      }
      {
        ak_api_file_t *files = NULL, f;
        size_t n = 0;
        err = NULL;
        rc = ak_api_parse_files (body, "/home/user", &files, &n, &err);
        if (rc == 0)
          for (size_t i = 0; i < n; i++)
            check_path (files[i].path);
        check_refusal (rc, err);
        ak_api_files_free (files, n);
        err = NULL;
        rc = ak_api_parse_file_write (body, "tmp/x", &f, &err);
        if (rc == 0)
          check_path (f.path);
        check_refusal (rc, err);
        free (f.path);
        free (f.data);
      }
      {
        long long secs = 0;
        err = NULL;
        rc = ak_api_parse_extend (body, &secs, &err);
        if (rc == 0)
          check (secs >= 1 && secs <= 366LL * 86400, "duration in range");
        check_refusal (rc, err);
      }
      json_decref (body);
      break;
    case 1: /* a file path from a URL; a label filter from a query */
      {
        err = NULL;
        rc = ak_api_check_label_filter (copy, &err);
        if (rc == 0)
          check (memchr (copy, '=', strcspn (copy, ":")) == NULL && copy[0] != ':', "a filter's key is not empty, has no '='");
        check_refusal (rc, err);
        err = NULL;
      }
      {
        char *inside = NULL;
        rc = ak_api_file_path (copy, "/w", &inside, &err);
        if (rc == 0)
          check_path (inside);
        check_refusal (rc, err);
        free (inside);
      }
      break;
    case 2: /* base64 */
      {
        char *out = NULL;
        size_t len = 0;
        if (ak_base64_decode (text, size, &out, &len))
          {
            char *again = ak_base64_encode (out, len);
            check (strlen (again) == size && memcmp (again, text, size) == 0, "base64 round trip");
            free (again);
            free (out);
          }
        else
          check (out == NULL, "nothing on failure");
      }
      break;
    case 3: /* UTF-8 helpers */
      {
        size_t n, whole = ak_utf8_whole (text, size);
        char *clean = ak_utf8_clean (text, size, &n);
        check (ak_utf8_valid (clean, n) || memchr (clean, 0, n) != NULL, "cleaned text is valid UTF-8");
        check (whole <= size && size - whole <= 3, "at most 3 bytes held back");
        if (ak_utf8_valid (text, size))
          check (n == size && memcmp (clean, text, size) == 0 && whole == size, "valid text unchanged");
        free (clean);
        {
          long long secs;
          err = NULL;
          rc = ak_api_parse_duration (copy, &secs, &err);
          if (rc == 0)
            check (secs >= 1 && secs <= 366LL * 86400, "duration in range");
          check_refusal (rc, err);
        }
      }
      break;
    }
  free (copy);
  return 0;
}
