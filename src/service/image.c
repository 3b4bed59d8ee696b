/* Sandboxes that run OCI images (see image.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/image_auto.h"
#include "service/image.h"
#include "service/store.h"

static ak_pull_fn pull_progress;
static void *pull_progress_data;

void
ak_sandbox_set_pull_progress (ak_pull_fn fn, void *data)
{
  pull_progress = fn;
  pull_progress_data = data;
}

bool
ak_spec_wants_image (const ak_spec_t *spec)
{
  return spec->rootfs == NULL && spec->image != NULL && strcmp (spec->image, "host") != 0
         && strncmp (spec->image, "dir:", 4) != 0;
}

static bool
has_file (const char *name, void *data)
{
  int dirfd = *(int *) data;
  struct stat st;
  return dirfd >= 0 && fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* "auto": the project directory (the workspace, else the directory the
 * command was started from) and the command decide. */
static void
detect (ak_spec_t *spec)
{
  const char *dir = spec->cwd != NULL ? spec->cwd : ".";
  _cleanup_close_ int dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const char *why;
  ak_detect_by_t by;
  const char *img = ak_image_detect (has_file, &dirfd, spec->argv ? spec->argv[0] : NULL, &why, &by);

  fprintf (stderr, "agentkernel: image auto: %s (%s%s%s)\n", img,
           by == AK_DETECT_FILE ? "found " : by == AK_DETECT_COMMAND ? "command " : "", why,
           by == AK_DETECT_FILE ? " in the project" : "");
  free (spec->image);
  spec->image = ak_xstrdup (img);
}

static char **
json_strv (const json_t *a)
{
  char **v = ak_xcalloc (1, sizeof (char *));
  size_t i;
  const json_t *e;

  json_array_foreach (a, i, e)
    if (json_is_string (e))
      ak_strv_push (&v, json_string_value (e));
  return v;
}

int
ak_sandbox_image_prepare (ak_spec_t *spec, ak_error_t **err)
{
  return ak_sandbox_image_prepare_progress (spec, pull_progress, pull_progress_data, err);
}

int
ak_sandbox_image_prepare_progress (ak_spec_t *spec, ak_pull_fn fn, void *data, ak_error_t **err)
{
  _cleanup_free_ char *root = NULL;
  ak_pull_opts_t opts = { 0 };
  ak_image_t img;
  const json_t *cfg;
  int rc;

  if (spec->image != NULL && strcmp (spec->image, "auto") == 0 && spec->rootfs == NULL)
    detect (spec);
  if (!ak_spec_wants_image (spec))
    return 0;
  if ((root = ak_store_root ()) == NULL)
    return ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME");
  rc = ak_image_resolve (root, spec->image, &img, err);
  if (rc < 0 && (*err)->code == ENOENT)
    {
      ak_error_clear (err);
      if (ak_pull_opts_from_env (&opts, err) < 0)
        return -1;
      opts.progress = fn;
      opts.progress_data = data;
      rc = ak_image_pull (root, spec->image, &opts, &img, err);
      ak_pull_opts_clear (&opts);
    }
  if (rc < 0)
    return ak_error_prefix (err, "image %s", spec->image);

  free (spec->image);
  spec->image = ak_xstrdup (img.ref);
  free (spec->image_digest);
  spec->image_digest = ak_xstrdup (img.digest);
  ak_strv_free (spec->image_layers);
  spec->image_layers = ak_xcalloc (1, sizeof (char *));
  for (size_t i = 0; i < img.n_layers; i++)
    ak_strv_push (&spec->image_layers, img.diff_ids[i]);
  cfg = json_object_get (img.config, "config");
  ak_strv_free (spec->image_env);
  spec->image_env = json_strv (json_object_get (cfg, "Env"));
  if (spec->argv == NULL || spec->argv[0] == NULL)
    {
      _cleanup_strv_ char **cmd = json_strv (json_object_get (cfg, "Cmd"));
      char **argv = json_strv (json_object_get (cfg, "Entrypoint"));
      for (char **c = cmd; *c != NULL; c++)
        ak_strv_push (&argv, *c);
      if (argv[0] == NULL)
        {
          ak_strv_free (argv);
          ak_image_clear (&img);
          return ak_error_set (err, 0, "image %s has no default command: name one", spec->image);
        }
      ak_strv_free (spec->argv);
      spec->argv = argv;
    }
  if (spec->workdir == NULL && !ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    {
      const char *wd = json_string_value (json_object_get (cfg, "WorkingDir"));
      if (wd != NULL && wd[0] == '/')
        spec->workdir = ak_xstrdup (wd);
    }
  ak_image_clear (&img);
  return 0;
}

bool
ak_sandbox_image_present (const ak_spec_t *spec)
{
  _cleanup_free_ char *root = NULL;
  ak_error_t *err = NULL;
  ak_image_t img;

  if (spec->image != NULL && strcmp (spec->image, "auto") == 0)
    return false;
  if (!ak_spec_wants_image (spec))
    return true;
  if ((root = ak_store_root ()) == NULL || ak_image_resolve (root, spec->image, &img, &err) < 0)
    {
      ak_error_free (err);
      return false;
    }
  ak_image_clear (&img);
  return true;
}

int
ak_sandbox_image_dirs (ak_spec_t *spec, int *hold, ak_error_t **err)
{
  _cleanup_free_ char *root = NULL;
  _cleanup_close_ int h = -1;

  if (hold != NULL)
    *hold = -1;
  if (spec->image_digest == NULL)
    return 0;
  if ((root = ak_store_root ()) == NULL)
    return ak_error_set (err, 0, "cannot find the state directory: set HOME or XDG_DATA_HOME");
  /* Held first, then looked up: a prune that ran in between is seen. */
  if (hold != NULL)
    {
      _cleanup_strv_ char **digests = ak_strv_dup (spec->image_layers);
      ak_strv_push (&digests, spec->image_digest);
      if (ak_image_hold (root, digests, &h, err) < 0)
        return -1;
    }
  ak_strv_free (spec->image_layer_dirs);
  spec->image_layer_dirs = NULL;
  if (ak_image_layer_dirs (root, spec->image_layers, &spec->image_layer_dirs, err) < 0)
    return ak_error_prefix (err, "image %s", spec->image);
  if (hold != NULL)
    *hold = take_fd (&h);
  return 0;
}

int
ak_sandbox_images_in_use (char ***keep, char ***users, ak_error_t **err)
{
  ak_record_t *recs = NULL;
  size_t n = 0;

  if (ak_store_list (&recs, &n, err) < 0)
    return -1;
  *keep = ak_xcalloc (1, sizeof (char *));
  if (users != NULL)
    *users = ak_xcalloc (1, sizeof (char *));
  for (size_t i = 0; i < n; i++)
    {
      const ak_spec_t *s = &recs[i].spec;
      if (recs[i].load_error != NULL || s->image_digest == NULL)
        continue;
      ak_strv_push (keep, s->image_digest);
      for (char **l = s->image_layers; l != NULL && *l != NULL; l++)
        ak_strv_push (keep, *l);
      if (users != NULL)
        {
          _cleanup_free_ char *u = ak_xasprintf ("%s %s %s", recs[i].name, s->image_digest, s->image);
          ak_strv_push (users, u);
        }
    }
  ak_store_list_free (recs, n);
  return 0;
}
