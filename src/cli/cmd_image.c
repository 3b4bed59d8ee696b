/* agentkernel image pull|list|inspect|rm|prune|login|logout: the image
 * store.  Progress goes to stderr (bars on a terminal, one line per layer
 * otherwise, nothing with --quiet); results to stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "service/image.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "images/auth.h"
#include "images/image.h"
#include "images/ref.h"
#include "images/registry.h"
#include "service/store.h"

static const char usage_text[]
    = "Usage: agentkernel image COMMAND\n\n"
      "  pull REF [--platform OS/ARCH[/VARIANT]] [--quiet]   fetch an image into the store\n"
      "  list [--json]                                       images in the store\n"
      "  inspect REF                                         an image as JSON\n"
      "  rm REF...                                           forget images, free what nothing else uses\n"
      "  prune                                               free what no image uses\n"
      "  login REGISTRY [-u USER] [--password-stdin]         record credentials\n"
      "  logout REGISTRY                                     forget them\n\n"
      "REF is a Docker reference: alpine:3.20, ghcr.io/o/img@sha256:..., localhost:5000/x.\n"
      "Plain HTTP is used only for loopback registries and those in\n"
      "$AGENTKERNEL_INSECURE_REGISTRIES (comma-separated host:port).  A layer that\n"
      "expands past $AGENTKERNEL_IMAGE_MAX_LAYER_BYTES (default 8 GiB) stops the pull.\n";

static char *
state_root (ak_error_t **err)
{
  char *root = ak_store_root ();
  if (root == NULL)
    ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME");
  return root;
}

static void
human (uint64_t n, char *buf, size_t len)
{
  if (n >= 1000000)
    snprintf (buf, len, "%.1f MB", (double) n / 1e6);
  else if (n >= 1000)
    snprintf (buf, len, "%.1f kB", (double) n / 1e3);
  else
    snprintf (buf, len, "%llu B", (unsigned long long) n);
}


void
ak_cli_pull_progress (ak_pull_event_t ev, const char *digest, uint64_t done, uint64_t total, void *data)
{
  ak_cli_progress_t *p = data;
  char d[32], t[32], r[32];
  const char *id = digest + 7;

  switch (ev)
    {
    case AK_PULL_MANIFEST:
      fprintf (stderr, "manifest %.12s: %llu layer%s\n", id, (unsigned long long) total, total == 1 ? "" : "s");
      break;
    case AK_PULL_LAYER_PRESENT:
      fprintf (stderr, "layer %.12s: already present\n", id);
      break;
    case AK_PULL_LAYER_BYTES:
      {
        unsigned long long now = ak_now_ns ();
        if (!p->tty)
          break;
        if (done == 0 || p->start_ns == 0)
          p->start_ns = now;
        /* A terminal is redrawn at most 10 times a second. */
        if (now - p->last_ns < 100000000ull && done != total)
          break;
        p->last_ns = now;
        {
          int width = 30, fill = total ? (int) (done * (uint64_t) width / total) : 0;
          double secs = (double) (now - p->start_ns) / 1e9;
          human (done, d, sizeof d);
          human (total, t, sizeof t);
          human (secs > 0 ? (uint64_t) ((double) done / secs) : 0, r, sizeof r);
          fprintf (stderr, "\rlayer %.12s: [%.*s%*s] %s / %s  %s/s   ", id, fill, "##############################",
                   width - fill, "", d, t, r);
        }
        break;
      }
    case AK_PULL_LAYER_DONE:
      human (total, t, sizeof t);
      fprintf (stderr, "%slayer %.12s: %s downloaded, verified and unpacked\n", p->tty ? "\r\033[K" : "", id, t);
      p->start_ns = 0;
      break;
    }
}

static int
do_pull (int argc, char **argv)
{
  _cleanup_free_ char *root = NULL;
  const char *ref = NULL, *platform = NULL, *max;
  bool quiet = false;
  ak_cli_progress_t prog = { .tty = isatty (2) == 1 };
  ak_pull_opts_t opts = { 0 };
  ak_error_t *err = NULL;
  ak_image_t img;

  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--quiet") || !strcmp (argv[i], "-q"))
        quiet = true;
      else if (!strcmp (argv[i], "--platform") && i + 1 < argc)
        platform = argv[++i];
      else if (!strncmp (argv[i], "--platform=", 11))
        platform = argv[i] + 11;
      else if (argv[i][0] == '-')
        return ak_cli_usage_error ("image pull", "unknown option '%s'", argv[i]);
      else if (ref == NULL)
        ref = argv[i];
      else
        return ak_cli_usage_error ("image pull", "unexpected argument '%s'", argv[i]);
    }
  if (ref == NULL)
    return ak_cli_usage_error ("image pull", "missing the image reference");
  if ((max = getenv ("AGENTKERNEL_IMAGE_MAX_LAYER_BYTES")) != NULL
      && !ak_parse_u64 (max, 1, UINT64_MAX, (unsigned long long *) &opts.max_layer_bytes))
    return ak_cli_usage_error ("image pull", "AGENTKERNEL_IMAGE_MAX_LAYER_BYTES is not a number of bytes");
  if (ak_pull_opts_from_env (&opts, &err) < 0)
    return ak_cli_fail (err);
  opts.platform = platform;
  if (!quiet)
    {
      opts.progress = ak_cli_pull_progress;
      opts.progress_data = &prog;
    }
  if ((root = state_root (&err)) == NULL || ak_image_pull (root, ref, &opts, &img, &err) < 0)
    {
      if (prog.tty && !quiet)
        fprintf (stderr, "\r\033[K");
      ak_pull_opts_clear (&opts);
      return ak_cli_fail (err);
    }
  ak_pull_opts_clear (&opts);
  printf ("%s %s\n", img.ref, img.digest);
  ak_image_clear (&img);
  return 0;
}

static int
do_list (int argc, char **argv)
{
  _cleanup_free_ char *root = NULL;
  ak_error_t *err = NULL;
  ak_image_t *imgs = NULL;
  bool json = argc > 1 && !strcmp (argv[1], "--json");
  size_t n = 0;

  if (argc > (json ? 2 : 1))
    return ak_cli_usage_error ("image list", "unexpected argument '%s'", argv[json ? 2 : 1]);
  if ((root = state_root (&err)) == NULL || ak_image_list (root, &imgs, &n, &err) < 0)
    return ak_cli_fail (err);
  if (json)
    {
      json_t *a = json_array ();
      char *s;
      for (size_t i = 0; i < n; i++)
        json_array_append_new (a, json_pack ("{ss ss ss sI sI}", "reference", imgs[i].ref, "digest", imgs[i].digest,
                                             "platform", imgs[i].platform, "size", (json_int_t) imgs[i].size,
                                             "layers", (json_int_t) imgs[i].n_layers));
      s = json_dumps (a, JSON_INDENT (2));
      printf ("%s\n", s);
      free (s);
      json_decref (a);
    }
  else
    {
      printf ("%-50s %-19s %-14s %10s\n", "REFERENCE", "DIGEST", "PLATFORM", "SIZE");
      for (size_t i = 0; i < n; i++)
        {
          char sz[32];
          human ((uint64_t) imgs[i].size, sz, sizeof sz);
          printf ("%-50s %.19s %-14s %10s\n", imgs[i].ref, imgs[i].digest, imgs[i].platform, sz);
        }
    }
  for (size_t i = 0; i < n; i++)
    ak_image_clear (&imgs[i]);
  free (imgs);
  return 0;
}

static int
do_inspect (int argc, char **argv)
{
  _cleanup_free_ char *root = NULL, *s = NULL;
  ak_error_t *err = NULL;
  ak_image_t img;
  json_t *j;

  if (argc != 2)
    return ak_cli_usage_error ("image inspect", "expected one image reference");
  if ((root = state_root (&err)) == NULL || ak_image_resolve (root, argv[1], &img, &err) < 0)
    return ak_cli_fail (err);
  j = ak_image_to_json (&img);
  s = json_dumps (j, JSON_INDENT (2));
  printf ("%s\n", s);
  json_decref (j);
  ak_image_clear (&img);
  return 0;
}

static int
do_rm (int argc, char **argv, bool prune)
{
  _cleanup_free_ char *root = NULL;
  _cleanup_strv_ char **keep = NULL, **users = NULL;
  ak_error_t *err = NULL;
  uint64_t freed = 0, total = 0;
  char sz[32];

  if (prune ? argc != 1 : argc < 2)
    return ak_cli_usage_error (prune ? "image prune" : "image rm",
                               prune ? "takes no argument" : "expected image references");
  if ((root = state_root (&err)) == NULL || ak_sandbox_images_in_use (&keep, &users, &err) < 0)
    return ak_cli_fail (err);
  if (prune)
    {
      if (ak_image_prune (root, keep, &total, &err) < 0)
        return ak_cli_fail (err);
    }
  /* An image a sandbox runs is never removed under it: refused, naming it. */
  for (int i = 1; !prune && i < argc; i++)
    {
      ak_image_t img;
      if (ak_image_resolve (root, argv[i], &img, &err) < 0)
        {
          ak_error_clear (&err);
          continue;
        }
      for (char **u = users; *u != NULL; u++)
        {
          char *sp = strchr (*u, ' ');
          if (strncmp (sp + 1, img.digest, strlen (img.digest)) == 0
              && strcmp (sp + 1 + strlen (img.digest) + 1, img.ref) == 0)
            {
              ak_error_set (&err, 0, "image %s is used by sandbox '%.*s': remove the sandbox first",
                            img.ref, (int) (sp - *u), *u);
              ak_image_clear (&img);
              return ak_cli_fail (err);
            }
        }
      ak_image_clear (&img);
    }
  for (int i = 1; !prune && i < argc; i++)
    {
      if (ak_image_remove (root, argv[i], keep, &freed, &err) < 0)
        return ak_cli_fail (err);
      printf ("removed %s\n", argv[i]);
      total += freed;
    }
  human (total, sz, sizeof sz);
  printf ("freed %s\n", sz);
  return 0;
}

/* "REGISTRY" as a reference's registry part: docker.io's aliases folded. */
static char *
registry_name (const char *text, ak_error_t **err)
{
  _cleanup_free_ char *probe = ak_xasprintf ("%s/x", text);
  ak_imgref_t ref = { 0 };
  char *out;

  if (strchr (text, '/') != NULL || ak_imgref_parse (probe, &ref, err) < 0
      || (strcmp (ref.registry, "docker.io") == 0 && strcmp (text, "docker.io") != 0
          && strcmp (text, "index.docker.io") != 0))
    {
      ak_error_clear (err);
      if (ref.registry != NULL)
        ak_imgref_clear (&ref);
      ak_error_coded (err, EINVAL, "invalid registry \"%s\": expected HOST[:PORT]", text);
      return NULL;
    }
  out = ak_xstrdup (ref.registry);
  ak_imgref_clear (&ref);
  return out;
}

static int
do_login (int argc, char **argv, bool logout)
{
  _cleanup_free_ char *registry = NULL, *password = NULL;
  const char *user = NULL, *reg = NULL;
  bool from_stdin = false;
  ak_registry_opts_t opts = { 0 };
  ak_pull_opts_t env __attribute__ ((cleanup (ak_pull_opts_clear))) = { 0 };
  ak_error_t *err = NULL;
  const char *cmd = logout ? "image logout" : "image login";

  if (ak_pull_opts_from_env (&env, &err) < 0)
    return ak_cli_fail (err);
  opts.insecure = env.insecure;

  for (int i = 1; i < argc; i++)
    {
      if (!logout && (!strcmp (argv[i], "-u") || !strcmp (argv[i], "--username")) && i + 1 < argc)
        user = argv[++i];
      else if (!logout && !strcmp (argv[i], "--password-stdin"))
        from_stdin = true;
      else if (argv[i][0] == '-')
        return ak_cli_usage_error (cmd, "unknown option '%s'", argv[i]);
      else if (reg == NULL)
        reg = argv[i];
      else
        return ak_cli_usage_error (cmd, "unexpected argument '%s'", argv[i]);
    }
  if (reg == NULL)
    return ak_cli_usage_error (cmd, "missing the registry");
  if ((registry = registry_name (reg, &err)) == NULL)
    return ak_cli_fail (err);
  if (logout)
    {
      if (ak_auth_store (registry, NULL, NULL, &err) < 0)
        return ak_cli_fail (err);
      printf ("logged out of %s\n", registry);
      return 0;
    }
  if (user == NULL)
    return ak_cli_usage_error (cmd, "missing -u USER");
  if (from_stdin)
    {
      size_t cap = 0;
      ssize_t n = getline (&password, &cap, stdin);
      if (n <= 0)
        return ak_cli_usage_error (cmd, "--password-stdin: nothing on standard input");
      while (n > 0 && (password[n - 1] == '\n' || password[n - 1] == '\r'))
        password[--n] = '\0';
    }
  else if (isatty (0))
    {
      char *p = getpass ("Password: ");
      password = ak_xstrdup (p ? p : "");
    }
  else
    return ak_cli_usage_error (cmd, "without a terminal, give the password with --password-stdin");
  if (password[0] == '\0')
    return ak_cli_usage_error (cmd, "empty password");
  if (ak_registry_check_login (registry, user, password, &opts, &err) < 0)
    {
      ak_error_prefix (&err, "login to %s", registry);
      return ak_cli_fail (err);
    }
  if (ak_auth_store (registry, user, password, &err) < 0)
    return ak_cli_fail (err);
  printf ("logged in to %s\n", registry);
  return 0;
}

int
cmd_image (int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;

  if (sub == NULL)
    {
      fputs (usage_text, stderr);
      return AK_EXIT_FAILURE;
    }
  if (!strcmp (sub, "--help") || !strcmp (sub, "-h") || !strcmp (sub, "help"))
    {
      fputs (usage_text, stdout);
      return 0;
    }
  for (int i = 2; i < argc; i++)
    if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
      {
        fputs (usage_text, stdout);
        return 0;
      }
  if (!strcmp (sub, "pull"))
    return do_pull (argc - 1, argv + 1);
  if (!strcmp (sub, "list") || !strcmp (sub, "ls"))
    return do_list (argc - 1, argv + 1);
  if (!strcmp (sub, "inspect"))
    return do_inspect (argc - 1, argv + 1);
  if (!strcmp (sub, "rm"))
    return do_rm (argc - 1, argv + 1, false);
  if (!strcmp (sub, "prune"))
    return do_rm (argc - 1, argv + 1, true);
  if (!strcmp (sub, "login"))
    return do_login (argc - 1, argv + 1, false);
  if (!strcmp (sub, "logout"))
    return do_login (argc - 1, argv + 1, true);
  return ak_cli_usage_error ("image", "unknown command '%s'", sub);
}
