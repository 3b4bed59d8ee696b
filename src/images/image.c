/* Images: pull, resolve, list, remove, prune (see image.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "images/image.h"
#include "images/manifest.h"
#include "images/ref.h"
#include "images/registry.h"
#include "images/store.h"
#include "images/unpack.h"

#define CONFIG_MAX (16u << 20)

void
ak_image_clear (ak_image_t *img)
{
  free (img->ref);
  free (img->digest);
  free (img->index);
  free (img->platform);
  free (img->config_digest);
  json_decref (img->config);
  ak_strv_free (img->layer_digests);
  ak_strv_free (img->diff_ids);
  ak_strv_free (img->layer_dirs);
  free (img->layer_sizes);
  memset (img, 0, sizeof *img);
}

static char *
canonical (const char *text, ak_imgref_t *ref, ak_error_t **err)
{
  if (ak_imgref_parse (text, ref, err) < 0)
    return NULL;
  return ak_imgref_format (ref);
}

/* Fills *img from the store for the recorded entry of key. */
static int
load_image (ak_istore_t *s, const char *key, json_t *entry, ak_image_t *img, ak_error_t **err)
{
  const char *digest = json_string_value (json_object_get (entry, "manifest"));
  const char *index = json_string_value (json_object_get (entry, "index"));
  const char *platform = json_string_value (json_object_get (entry, "platform"));
  _cleanup_free_ char *body = NULL, *cbody = NULL;
  size_t len, clen;
  ak_manifest_t m;
  json_t *config;
  int rc = -1;

  memset (img, 0, sizeof *img);
  if (!ak_digest_valid (digest))
    return ak_error_set (err, 0, "the image store's record of %s names no manifest digest", key);
  if (ak_istore_read_blob (s, digest, AK_MANIFEST_MAX, &body, &len, err) < 0)
    return ak_error_prefix (err, "image %s", key);
  if (ak_manifest_parse (body, len, &m, err) < 0)
    return ak_error_prefix (err, "image %s", key);
  if (m.is_index)
    {
      ak_error_set (err, 0, "image %s: the recorded manifest is an index", key);
      goto out;
    }
  if (ak_istore_read_blob (s, m.config.digest, CONFIG_MAX, &cbody, &clen, err) < 0)
    {
      ak_error_prefix (err, "image %s", key);
      goto out;
    }
  config = json_loadb (cbody, clen, 0, NULL);
  if (!json_is_object (config))
    {
      json_decref (config);
      ak_error_set (err, 0, "image %s: its config is not a JSON object", key);
      goto out;
    }
  img->config = config;
  if (ak_config_diff_ids (cbody, clen, m.n_items, &img->diff_ids, err) < 0)
    {
      ak_error_prefix (err, "image %s", key);
      goto out;
    }
  img->ref = ak_xstrdup (key);
  img->digest = ak_xstrdup (digest);
  img->index = index ? ak_xstrdup (index) : NULL;
  img->platform = ak_xstrdup (platform ? platform : "");
  img->config_digest = ak_xstrdup (m.config.digest);
  img->pulled = json_integer_value (json_object_get (entry, "pulled"));
  img->n_layers = m.n_items;
  img->layer_digests = ak_xcalloc (m.n_items + 1, sizeof (char *));
  img->layer_dirs = ak_xcalloc (m.n_items + 1, sizeof (char *));
  img->layer_sizes = ak_xcalloc (m.n_items + 1, sizeof (int64_t));
  for (size_t i = 0; i < m.n_items; i++)
    {
      img->layer_digests[i] = ak_xstrdup (m.items[i].digest);
      img->layer_sizes[i] = m.items[i].size;
      img->size += m.items[i].size;
      img->layer_dirs[i] = ak_istore_layer_path (s, img->diff_ids[i]);
    }
  rc = 0;
out:
  ak_manifest_clear (&m);
  if (rc < 0)
    ak_image_clear (img);
  return rc;
}

/* What the pull of one image needs from the registry, once. */
typedef struct puller {
  ak_istore_t *s;
  ak_registry_t *reg;
  const ak_pull_opts_t *opts;
  const char *ref;
  const char *layer; /* the layer blob downloading, the only one reported */
} puller_t;

static void
on_bytes (const char *digest, uint64_t done, uint64_t total, void *data)
{
  const puller_t *p = data;
  if (p->layer != NULL && strcmp (p->layer, digest) == 0)
    p->opts->progress (AK_PULL_LAYER_BYTES, digest, done, total, p->opts->progress_data);
}

static int
ensure_blob (puller_t *p, const ak_descriptor_t *d, ak_error_t **err)
{
  _cleanup_close_ int lock = -1, fd = -1;
  _cleanup_free_ char *name = NULL;

  if (ak_istore_has_blob (p->s, d->digest))
    return 0;
  if ((lock = ak_istore_lock (p->s, "blob", d->digest, err)) < 0)
    return -1;
  /* Another pull may have stored it while this one waited for the lock. */
  if (ak_istore_has_blob (p->s, d->digest))
    return 0;
  if ((fd = ak_istore_tmpfile (p->s, &name, err)) < 0)
    return -1;
  if (ak_registry_blob (p->reg, d->digest, d->size, fd, err) < 0)
    {
      unlinkat (p->s->dirfd, name, 0);
      return -1;
    }
  return ak_istore_commit_blob (p->s, fd, name, d->digest, err);
}

static int
ensure_layer (puller_t *p, const ak_descriptor_t *d, const char *diff_id, ak_error_t **err)
{
  _cleanup_close_ int lock = -1, blob = -1, dir = -1;
  _cleanup_free_ char *name = NULL;
  const ak_pull_opts_t *o = p->opts;

  if (ak_istore_has_layer (p->s, diff_id))
    goto present;
  if ((lock = ak_istore_lock (p->s, "layer", diff_id, err)) < 0)
    return -1;
  if (ak_istore_has_layer (p->s, diff_id))
    goto present;
  p->layer = d->digest;
  if (ensure_blob (p, d, err) < 0)
    return -1;
  p->layer = NULL;
  if ((blob = ak_istore_open_blob (p->s, d->digest, err)) < 0 || (dir = ak_istore_tmpdir (p->s, &name, err)) < 0)
    return -1;
  if (ak_layer_unpack (blob, diff_id, d->digest, dir, o->max_layer_bytes, err) < 0
      || ak_istore_commit_layer (p->s, name, diff_id, err) < 0)
    {
      ak_istore_remove_tree (p->s->dirfd, name, NULL);
      return -1;
    }
  if (o->progress != NULL)
    o->progress (AK_PULL_LAYER_DONE, d->digest, (uint64_t) d->size, (uint64_t) d->size, o->progress_data);
  return 0;
present:
  if (o->progress != NULL)
    o->progress (AK_PULL_LAYER_PRESENT, d->digest, (uint64_t) d->size, (uint64_t) d->size, o->progress_data);
  return 0;
}

static int
fetch_manifest (puller_t *p, const char *reference, ak_manifest_t *m, char digest[AK_DIGEST_STR_LEN + 1],
                ak_error_t **err)
{
  _cleanup_free_ char *body = NULL, *type = NULL;
  size_t len;

  /* A manifest named by digest that the store holds is read (and
   * verified) locally: content addressing makes the registry's copy the
   * same bytes, and a re-pull costs one request for the tag. */
  if (strncmp (reference, "sha256:", 7) == 0 && ak_istore_has_blob (p->s, reference))
    {
      if (ak_istore_read_blob (p->s, reference, AK_MANIFEST_MAX, &body, &len, err) < 0)
        return -1;
      strcpy (digest, reference);
      return ak_manifest_parse (body, len, m, err);
    }
  if (ak_registry_manifest (p->reg, reference, &body, &len, &type, digest, err) < 0)
    return -1;
  if (ak_manifest_parse (body, len, m, err) < 0)
    return -1;
  if (ak_istore_put_blob (p->s, digest, body, len, err) < 0)
    {
      ak_manifest_clear (m);
      return -1;
    }
  return 0;
}

static int
pull (puller_t *p, const ak_imgref_t *ref, const char *key, ak_error_t **err)
{
  _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL, *cbody = NULL;
  char digest[AK_DIGEST_STR_LEN + 1], index[AK_DIGEST_STR_LEN + 1] = "";
  const ak_descriptor_t *chosen;
  _cleanup_strv_ char **diff_ids = NULL;
  ak_manifest_t m;
  size_t clen;
  json_t *entry;
  int rc = -1;

  if (ak_platform_parse (p->opts->platform, &os, &arch, &variant, err) < 0)
    return -1;
  if (fetch_manifest (p, ref->digest ? ref->digest : ref->tag, &m, digest, err) < 0)
    return -1;
  if (m.is_index)
    {
      strcpy (index, digest);
      chosen = ak_index_select (&m, os, arch, variant, err);
      if (chosen == NULL)
        goto out;
      {
        char want[72];
        strcpy (want, chosen->digest);
        ak_manifest_clear (&m);
        if (fetch_manifest (p, want, &m, digest, err) < 0)
          return -1;
      }
      if (m.is_index)
        {
          ak_error_coded (err, EBADMSG, "the index entry %s is itself an index", digest);
          goto out;
        }
    }
  if (p->opts->progress != NULL)
    p->opts->progress (AK_PULL_MANIFEST, digest, 0, m.n_items, p->opts->progress_data);
  if (m.config.size > (int64_t) CONFIG_MAX)
    {
      ak_error_coded (err, EFBIG, "the image config %s is larger than %u bytes", m.config.digest, CONFIG_MAX);
      goto out;
    }
  if (ensure_blob (p, &m.config, err) < 0
      || ak_istore_read_blob (p->s, m.config.digest, CONFIG_MAX, &cbody, &clen, err) < 0
      || ak_config_diff_ids (cbody, clen, m.n_items, &diff_ids, err) < 0)
    goto out;
  if (index[0] == '\0' && p->opts->platform != NULL)
    {
      json_t *c = json_loadb (cbody, clen, 0, NULL);
      const char *cos = json_string_value (json_object_get (c, "os"));
      const char *carch = json_string_value (json_object_get (c, "architecture"));
      bool ok = cos && carch && strcmp (cos, os) == 0 && strcmp (carch, arch) == 0;
      if (!ok)
        ak_error_coded (err, ENOENT, "the image is for %s/%s, not %s", cos ? cos : "?", carch ? carch : "?",
                        p->opts->platform);
      json_decref (c);
      if (!ok)
        goto out;
    }
  for (size_t i = 0; i < m.n_items; i++)
    if (ensure_layer (p, &m.items[i], diff_ids[i], err) < 0)
      goto out;
  entry = json_pack ("{ss ss* ss++ sI}", "manifest", digest, "index", index[0] ? index : NULL, "platform", os,
                     "/", arch, "pulled", (json_int_t) time (NULL));
  if (variant != NULL)
    json_object_set_new (entry, "platform",
                         json_sprintf ("%s/%s/%s", os, arch, variant));
  rc = ak_istore_refs_set (p->s, key, entry, err);
out:
  ak_manifest_clear (&m);
  return rc;
}

int
ak_image_pull (const char *state_root, const char *text, const ak_pull_opts_t *opts, ak_image_t *img,
               ak_error_t **err)
{
  static const ak_pull_opts_t none = { 0 };
  _cleanup_free_ char *key = NULL;
  ak_registry_opts_t ropts = { 0 };
  ak_istore_t s;
  ak_imgref_t ref;
  puller_t p;
  int rc = -1;

  if (opts == NULL)
    opts = &none;
  if ((key = canonical (text, &ref, err)) == NULL)
    return -1;
  ropts.insecure = opts->insecure;
  if (opts->progress != NULL)
    {
      ropts.progress = on_bytes;
    }
  p = (puller_t){ .s = &s, .opts = opts, .ref = key };
  if (opts->progress != NULL)
    ropts.progress_data = &p;
  if (ak_istore_open (state_root, false, &s, err) < 0)
    goto out_store;
  /* Mirrors of the reference's registry first, in order; the registry
   * itself last.  Whatever serves it, the image is verified against the
   * digests its manifest names and recorded under its own reference. */
  for (char *const *m = opts->mirrors; m != NULL && *m != NULL && rc < 0; m++)
    {
      const char *eq = strchr (*m, '=');
      ak_imgref_t mref = ref;
      ak_error_t *merr = NULL;
      if (eq == NULL || strncmp (*m, ref.registry, (size_t) (eq - *m)) != 0
          || ref.registry[eq - *m] != '\0')
        continue;
      mref.registry = (char *) eq + 1;
      p.reg = ak_registry_open (&mref, &ropts, &merr);
      if (p.reg != NULL)
        {
          rc = pull (&p, &mref, key, &merr);
          ak_registry_close (p.reg);
        }
      if (rc < 0)
        {
          ak_warn ("mirror %s: %s; trying the next", eq + 1, merr->msg);
          ak_error_free (merr);
        }
    }
  if (rc < 0)
    {
      p.reg = ak_registry_open (&ref, &ropts, err);
      if (p.reg != NULL)
        {
          rc = pull (&p, &ref, key, err);
          ak_registry_close (p.reg);
        }
    }
  if (rc == 0 && img != NULL)
    {
      json_t *refs = NULL;
      rc = ak_istore_refs_load (&s, &refs, err);
      if (rc == 0)
        rc = load_image (&s, key, json_object_get (refs, key), img, err);
      json_decref (refs);
    }
out_store:
  if (rc < 0)
    ak_error_prefix (err, "pull %s", key);
  ak_istore_close (&s);
  ak_imgref_clear (&ref);
  return rc;
}

int
ak_image_resolve (const char *state_root, const char *text, ak_image_t *img, ak_error_t **err)
{
  _cleanup_free_ char *key = NULL;
  ak_imgref_t ref;
  ak_istore_t s;
  json_t *refs = NULL, *entry;
  int rc = -1;

  memset (img, 0, sizeof *img);
  if ((key = canonical (text, &ref, err)) == NULL)
    return -1;
  ak_imgref_clear (&ref);
  if (ak_istore_open (state_root, false, &s, err) < 0 || ak_istore_refs_load (&s, &refs, err) < 0)
    goto out;
  entry = json_object_get (refs, key);
  if (entry == NULL)
    {
      ak_error_coded (err, ENOENT, "no image %s (agentkernel image pull %s)", key, text);
      goto out;
    }
  if (load_image (&s, key, entry, img, err) < 0)
    goto out;
  for (size_t i = 0; i < img->n_layers; i++)
    if (!ak_istore_has_layer (&s, img->diff_ids[i]))
      {
        ak_error_coded (err, ENOENT, "image %s: layer %s is missing from the store (pull it again)", key,
                        img->layer_digests[i]);
        ak_image_clear (img);
        goto out;
      }
  rc = 0;
out:
  json_decref (refs);
  ak_istore_close (&s);
  return rc;
}

static int
by_ref (const void *a, const void *b)
{
  return strcmp (((const ak_image_t *) a)->ref, ((const ak_image_t *) b)->ref);
}

int
ak_image_list (const char *state_root, ak_image_t **imgs, size_t *n, ak_error_t **err)
{
  ak_istore_t s;
  json_t *refs = NULL, *entry;
  const char *key;
  int rc = -1;

  *imgs = NULL;
  *n = 0;
  if (ak_istore_open (state_root, false, &s, err) < 0 || ak_istore_refs_load (&s, &refs, err) < 0)
    goto out;
  *imgs = ak_xcalloc (json_object_size (refs) + 1, sizeof **imgs);
  json_object_foreach (refs, key, entry)
    {
      ak_error_t *e = NULL;
      /* One damaged image does not hide the others: it is named, and
       * `image rm` of it still works. */
      if (load_image (&s, key, entry, &(*imgs)[*n], &e) < 0)
        {
          ak_warn ("%s", e->msg);
          ak_error_free (e);
          continue;
        }
      (*n)++;
    }
  qsort (*imgs, *n, sizeof **imgs, by_ref);
  rc = 0;
out:
  json_decref (refs);
  ak_istore_close (&s);
  return rc;
}

static void held (ak_istore_t *s, char ***v);

/* Everything the recorded images reach, what running sandboxes hold, plus
 * keep. */
static int
reachable (ak_istore_t *s, char *const *keep, char ***out, ak_error_t **err)
{
  json_t *refs = NULL, *entry;
  const char *key;
  char **v = ak_strv_dup (keep != NULL ? keep : (char *const[]){ NULL });

  if (ak_istore_refs_load (s, &refs, err) < 0)
    {
      ak_strv_free (v);
      return -1;
    }
  held (s, &v);
  json_object_foreach (refs, key, entry)
    {
      ak_image_t img;
      if (load_image (s, key, entry, &img, err) < 0)
        {
          /* An image that cannot be read keeps what its record names, so
           * a damaged record never makes prune remove shared layers. */
          ak_error_clear (err);
          ak_strv_free (v);
          json_decref (refs);
          return ak_error_set (err, 0, "image %s in the store is damaged: remove it first", key);
        }
      ak_strv_push (&v, img.digest);
      if (img.index != NULL)
        ak_strv_push (&v, img.index);
      ak_strv_push (&v, img.config_digest);
      for (size_t i = 0; i < img.n_layers; i++)
        {
          ak_strv_push (&v, img.layer_digests[i]);
          ak_strv_push (&v, img.diff_ids[i]);
        }
      ak_image_clear (&img);
    }
  json_decref (refs);
  *out = v;
  return 0;
}

int
ak_image_prune (const char *state_root, char *const *keep, uint64_t *freed, ak_error_t **err)
{
  _cleanup_strv_ char **live = NULL;
  ak_istore_t s;
  int rc = -1;

  *freed = 0;
  if (ak_istore_open (state_root, true, &s, err) == 0 && reachable (&s, keep, &live, err) == 0)
    rc = ak_istore_gc (&s, live, freed, err);
  ak_istore_close (&s);
  return rc;
}

int
ak_image_remove (const char *state_root, const char *text, char *const *keep, uint64_t *freed, ak_error_t **err)
{
  _cleanup_strv_ char **live = NULL;
  _cleanup_free_ char *key = NULL;
  ak_imgref_t ref;
  ak_istore_t s;
  int rc = -1;

  *freed = 0;
  if ((key = canonical (text, &ref, err)) == NULL)
    return -1;
  ak_imgref_clear (&ref);
  if (ak_istore_open (state_root, true, &s, err) == 0 && ak_istore_refs_set (&s, key, NULL, err) == 0
      && reachable (&s, keep, &live, err) == 0)
    rc = ak_istore_gc (&s, live, freed, err);
  ak_istore_close (&s);
  return rc;
}

json_t *
ak_image_to_json (const ak_image_t *img)
{
  json_t *layers = json_array ();

  for (size_t i = 0; i < img->n_layers; i++)
    json_array_append_new (layers, json_pack ("{ss ss sI ss}", "digest", img->layer_digests[i], "diff_id",
                                              img->diff_ids[i], "size", (json_int_t) img->layer_sizes[i], "dir",
                                              img->layer_dirs[i]));
  return json_pack ("{ss ss ss* ss ss sI sI sO so}", "reference", img->ref, "digest", img->digest, "index", img->index,
                    "platform", img->platform, "config_digest", img->config_digest, "size", (json_int_t) img->size,
                    "pulled", (json_int_t) img->pulled, "config", img->config, "layers", layers);
}

/* A comma- or space-separated environment variable as a list. */
static char **
env_list (const char *name)
{
  const char *v = getenv (name);
  _cleanup_free_ char *copy = NULL;
  char **out = ak_xcalloc (1, sizeof (char *)), *save = NULL, *tok;

  if (v == NULL)
    return out;
  copy = ak_xstrdup (v);
  for (tok = strtok_r (copy, ", ", &save); tok != NULL; tok = strtok_r (NULL, ", ", &save))
    ak_strv_push (&out, tok);
  return out;
}

int
ak_pull_opts_from_env (ak_pull_opts_t *opts, ak_error_t **err)
{
  char **mirrors = env_list ("AGENTKERNEL_REGISTRY_MIRRORS");

  for (char **m = mirrors; *m != NULL; m++)
    {
      char *eq = strchr (*m, '=');
      ak_imgref_t probe;
      _cleanup_free_ char *text = NULL;
      if (eq == NULL || eq == *m || eq[1] == '\0')
        {
          ak_error_set (err, 0,
                        "AGENTKERNEL_REGISTRY_MIRRORS: '%s' is not REGISTRY=MIRROR (e.g. "
                        "docker.io=mirror.example:5000)",
                        *m);
          ak_strv_free (mirrors);
          return -1;
        }
      /* Both sides must be registry names as a reference spells them. */
      *eq = '\0';
      text = ak_xasprintf ("%s/x/y:1", strcmp (*m, "docker.io") == 0 ? "registry-1.docker.io" : *m);
      if (ak_imgref_parse (text, &probe, err) < 0)
        {
          ak_strv_free (mirrors);
          return ak_error_prefix (err, "AGENTKERNEL_REGISTRY_MIRRORS: %s", *m);
        }
      ak_imgref_clear (&probe);
      free (text);
      text = ak_xasprintf ("%s/x/y:1", eq + 1);
      if (ak_imgref_parse (text, &probe, err) < 0)
        {
          ak_strv_free (mirrors);
          return ak_error_prefix (err, "AGENTKERNEL_REGISTRY_MIRRORS: mirror %s", eq + 1);
        }
      ak_imgref_clear (&probe);
      *eq = '=';
    }
  opts->insecure_owned = env_list ("AGENTKERNEL_INSECURE_REGISTRIES");
  opts->insecure = opts->insecure_owned;
  opts->mirrors_owned = mirrors;
  opts->mirrors = mirrors;
  return 0;
}

void
ak_pull_opts_clear (ak_pull_opts_t *opts)
{
  ak_strv_free (opts->insecure_owned);
  ak_strv_free (opts->mirrors_owned);
  opts->insecure_owned = opts->mirrors_owned = NULL;
  opts->insecure = opts->mirrors = NULL;
}

/* ---- in use ------------------------------------------------------------ */

int
ak_image_hold (const char *state_root, char *const *digests, int *hold, ak_error_t **err)
{
  _cleanup_close_ int dir = -1, fd = -1;
  _cleanup_free_ char *name = NULL, *text = NULL;
  ak_istore_t s;
  size_t len = 0;
  int rc = -1;

  *hold = -1;
  if (ak_istore_open (state_root, false, &s, err) < 0)
    return -1;
  if ((mkdirat (s.dirfd, "inuse", 0700) < 0 && errno != EEXIST)
      || (dir = openat (s.dirfd, "inuse", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    {
      ak_error_set (err, errno, "%s/inuse", s.path);
      goto out;
    }
  name = ak_xasprintf ("%d-%llx", (int) getpid (), (unsigned long long) ak_now_ns ());
  fd = openat (dir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || flock (fd, LOCK_EX) < 0)
    {
      ak_error_set (err, errno, "%s/inuse/%s", s.path, name);
      goto out;
    }
  text = ak_xstrdup ("");
  for (char *const *d = digests; *d != NULL; d++)
    {
      char *t = ak_xasprintf ("%s%s\n", text, *d);
      free (text);
      text = t;
    }
  len = strlen (text);
  if (ak_write_all (fd, text, len) < 0)
    {
      ak_error_set (err, errno, "%s/inuse/%s", s.path, name);
      unlinkat (dir, name, 0);
      goto out;
    }
  *hold = take_fd (&fd);
  rc = 0;
out:
  ak_istore_close (&s);
  return rc;
}

/* Adds to *v what running sandboxes hold (ak_image_hold), and removes the
 * records of holders that are gone.  The store is held exclusively. */
static void
held (ak_istore_t *s, char ***v)
{
  _cleanup_close_ int dir = openat (s->dirfd, "inuse", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d;
  struct dirent *e;

  if (dir < 0 || (d = fdopendir (dup (dir))) == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      _cleanup_close_ int fd = -1;
      _cleanup_free_ char *data = NULL;
      char *save = NULL, *tok;
      size_t len;

      if (e->d_name[0] == '.')
        continue;
      fd = openat (dir, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        continue;
      if (flock (fd, LOCK_SH | LOCK_NB) == 0)
        {
          /* Nobody holds it: what it named is free. */
          unlinkat (dir, e->d_name, 0);
          continue;
        }
      data = ak_xcalloc (1, 64 * 1024);
      len = 0;
      for (ssize_t n; len < 64 * 1024 - 1 && (n = read (fd, data + len, 64 * 1024 - 1 - len)) > 0;)
        len += (size_t) n;
      for (tok = strtok_r (data, "\n", &save); tok != NULL; tok = strtok_r (NULL, "\n", &save))
        if (ak_digest_valid (tok))
          ak_strv_push (v, tok);
    }
  closedir (d);
}

int
ak_image_layer_dirs (const char *state_root, char *const *diff_ids, char ***dirs, ak_error_t **err)
{
  _cleanup_strv_ char **v = ak_xcalloc (1, sizeof (char *));
  ak_istore_t s;
  int rc = -1;

  if (ak_istore_open (state_root, false, &s, err) < 0)
    return -1;
  for (char *const *d = diff_ids; d != NULL && *d != NULL; d++)
    {
      if (!ak_digest_valid (*d) || !ak_istore_has_layer (&s, *d))
        {
          ak_error_coded (err, ENOENT, "layer %s is missing from the image store (pull the image again, or "
                          "re-create the sandbox)", *d);
          goto out;
        }
      _cleanup_free_ char *path = ak_istore_layer_path (&s, *d);
      ak_strv_push (&v, path);
    }
  *dirs = steal_pointer (&v);
  rc = 0;
out:
  ak_istore_close (&s);
  return rc;
}
