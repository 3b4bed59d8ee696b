/* Manifests and indexes (see manifest.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "images/manifest.h"
#include "images/ref.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

static const struct {
  const char *type;
  ak_compression_t comp;
} layer_types[] = {
  { "application/vnd.oci.image.layer.v1.tar", AK_COMP_NONE },
  { "application/vnd.oci.image.layer.v1.tar+gzip", AK_COMP_GZIP },
  { "application/vnd.oci.image.layer.v1.tar+zstd", AK_COMP_ZSTD },
  { "application/vnd.docker.image.rootfs.diff.tar.gzip", AK_COMP_GZIP },
  { "application/vnd.docker.image.rootfs.diff.tar", AK_COMP_NONE },
};

static void
descriptor_clear (ak_descriptor_t *d)
{
  free (d->media_type);
  free (d->os);
  free (d->arch);
  free (d->variant);
  memset (d, 0, sizeof *d);
}

void
ak_manifest_clear (ak_manifest_t *m)
{
  descriptor_clear (&m->config);
  for (size_t i = 0; i < m->n_items; i++)
    descriptor_clear (&m->items[i]);
  free (m->items);
  memset (m, 0, sizeof *m);
}

static int
descriptor (json_t *j, const char *what, ak_descriptor_t *d, ak_error_t **err)
{
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  const char *dg = json_string_value (json_object_get (j, "digest"));
  json_t *size = json_object_get (j, "size");

  if (!json_is_object (j))
    return ak_error_coded (err, EBADMSG, "invalid manifest: %s is not an object", what);
  if (!ak_digest_valid (dg))
    return ak_error_coded (err, EBADMSG, "invalid manifest: %s has no sha256 digest", what);
  if (!json_is_integer (size) || json_integer_value (size) < 0 || json_integer_value (size) > AK_BLOB_MAX)
    return ak_error_coded (err, EBADMSG, "invalid manifest: %s has no size in range", what);
  strcpy (d->digest, dg);
  d->size = json_integer_value (size);
  d->media_type = mt ? ak_xstrdup (mt) : NULL;
  return 0;
}

static bool
field_ok (const char *s)
{
  if (s == NULL || s[0] == '\0' || strlen (s) > 32)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return false;
  return true;
}

int
ak_manifest_parse (const char *body, size_t len, ak_manifest_t *m, ak_error_t **err)
{
  json_error_t jerr;
  json_t *j = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *arr, *cfg;
  const char *mt;
  int rc = -1;

  memset (m, 0, sizeof *m);
  if (j == NULL || !json_is_object (j))
    {
      ak_error_coded (err, EBADMSG, "invalid manifest: %s", j == NULL ? jerr.text : "not a JSON object");
      goto out;
    }
  if (json_integer_value (json_object_get (j, "schemaVersion")) != 2)
    {
      ak_error_coded (err, EBADMSG, "invalid manifest: schemaVersion is not 2 (Docker schema 1 is not supported)");
      goto out;
    }
  mt = json_string_value (json_object_get (j, "mediaType"));
  arr = json_object_get (j, "manifests");
  if (mt != NULL ? (strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0) : arr != NULL)
    m->is_index = true;
  else if (mt != NULL && strcmp (mt, MT_OCI_MANIFEST) != 0 && strcmp (mt, MT_DOCKER_MANIFEST) != 0)
    {
      ak_error_coded (err, EBADMSG, "invalid manifest: unsupported media type %s", mt);
      goto out;
    }
  if (!m->is_index)
    arr = json_object_get (j, "layers");
  if (!json_is_array (arr) || json_array_size (arr) > AK_MAX_LAYERS
      || (!m->is_index && json_array_size (arr) == 0))
    {
      ak_error_coded (err, EBADMSG, "invalid manifest: %s must be an array of 1 to %d entries",
                      m->is_index ? "manifests" : "layers", AK_MAX_LAYERS);
      goto out;
    }
  if (!m->is_index)
    {
      cfg = json_object_get (j, "config");
      if (descriptor (cfg, "the config", &m->config, err) < 0)
        goto out;
    }
  m->items = ak_xcalloc (json_array_size (arr) + 1, sizeof *m->items);
  for (size_t i = 0; i < json_array_size (arr); i++)
    {
      json_t *e = json_array_get (arr, i);
      ak_descriptor_t *d = &m->items[m->n_items++];
      char what[32];

      snprintf (what, sizeof what, "%s %zu", m->is_index ? "entry" : "layer", i + 1);
      if (descriptor (e, what, d, err) < 0)
        goto out;
      if (m->is_index)
        {
          json_t *p = json_object_get (e, "platform");
          const char *os = json_string_value (json_object_get (p, "os"));
          const char *arch = json_string_value (json_object_get (p, "architecture"));
          const char *var = json_string_value (json_object_get (p, "variant"));
          const char *kind = json_string_value (
              json_object_get (json_object_get (e, "annotations"), "vnd.docker.reference.type"));

          d->os = field_ok (os) ? ak_xstrdup (os) : NULL;
          d->arch = field_ok (arch) ? ak_xstrdup (arch) : NULL;
          d->variant = field_ok (var) ? ak_xstrdup (var) : NULL;
          d->attestation = (kind != NULL && strcmp (kind, "attestation-manifest") == 0) || d->os == NULL
                           || d->arch == NULL || strcmp (d->os, "unknown") == 0;
          continue;
        }
      d->compression = (ak_compression_t) -1;
      for (size_t k = 0; d->media_type != NULL && k < sizeof layer_types / sizeof layer_types[0]; k++)
        if (strcmp (d->media_type, layer_types[k].type) == 0)
          d->compression = layer_types[k].comp;
      if ((int) d->compression < 0)
        {
          ak_error_coded (err, EBADMSG, "invalid manifest: layer %zu has the unsupported media type %s", i + 1,
                          d->media_type ? d->media_type : "(none)");
          goto out;
        }
    }
  rc = 0;
out:
  if (rc < 0)
    ak_manifest_clear (m);
  json_decref (j);
  return rc;
}

int
ak_platform_parse (const char *text, char **os, char **arch, char **variant, ak_error_t **err)
{
  _cleanup_free_ char *copy = NULL;
  char *a, *v;

  *os = *arch = *variant = NULL;
  if (text == NULL)
    {
      struct utsname u;
      uname (&u);
      *os = ak_xstrdup ("linux");
      *arch = ak_xstrdup (strcmp (u.machine, "aarch64") == 0 ? "arm64" : strcmp (u.machine, "x86_64") == 0 ? "amd64"
                                                                                                           : u.machine);
      return 0;
    }
  copy = ak_xstrdup (text);
  a = strchr (copy, '/');
  if (a == NULL)
    return ak_error_coded (err, EINVAL, "invalid platform \"%s\": expected OS/ARCH[/VARIANT]", text);
  *a++ = '\0';
  v = strchr (a, '/');
  if (v != NULL)
    *v++ = '\0';
  if (!field_ok (copy) || !field_ok (a) || (v != NULL && !field_ok (v)))
    return ak_error_coded (err, EINVAL, "invalid platform \"%s\": expected OS/ARCH[/VARIANT]", text);
  *os = ak_xstrdup (copy);
  *arch = ak_xstrdup (a);
  *variant = v ? ak_xstrdup (v) : NULL;
  return 0;
}

const ak_descriptor_t *
ak_index_select (const ak_manifest_t *idx, const char *os, const char *arch, const char *variant, ak_error_t **err)
{
  const ak_descriptor_t *best = NULL;
  _cleanup_free_ char *have = ak_xstrdup ("");

  for (size_t i = 0; i < idx->n_items; i++)
    {
      const ak_descriptor_t *d = &idx->items[i];
      if (d->attestation)
        continue;
      if (strcmp (d->os, os) == 0 && strcmp (d->arch, arch) == 0)
        {
          if (variant != NULL ? (d->variant != NULL && strcmp (d->variant, variant) == 0) : true)
            {
              /* Without a variant asked for, the first entry wins, as with
               * Docker; an exact variant always wins. */
              if (best == NULL || variant != NULL)
                best = d;
              if (variant != NULL)
                break;
            }
        }
      char *more = ak_xasprintf ("%s%s%s/%s%s%s", have, have[0] ? ", " : "", d->os, d->arch, d->variant ? "/" : "",
                                 d->variant ? d->variant : "");
      free (have);
      have = more;
    }
  if (best == NULL)
    ak_error_coded (err, ENOENT, "no image for the platform %s/%s%s%s (the image has: %s)", os, arch,
                    variant ? "/" : "", variant ? variant : "", have[0] ? have : "nothing");
  return best;
}

int
ak_config_diff_ids (const char *body, size_t len, size_t n_layers, char ***diff_ids, ak_error_t **err)
{
  json_t *j = json_loadb (body, len, 0, NULL);
  json_t *ids = json_object_get (json_object_get (j, "rootfs"), "diff_ids");
  char **v = NULL;
  int rc = -1;

  *diff_ids = NULL;
  if (!json_is_array (ids) || json_array_size (ids) != n_layers)
    {
      ak_error_coded (err, EBADMSG, "invalid image config: rootfs.diff_ids must list one digest per layer (%zu)",
                      n_layers);
      goto out;
    }
  v = ak_xcalloc (n_layers + 1, sizeof *v);
  for (size_t i = 0; i < n_layers; i++)
    {
      const char *s = json_string_value (json_array_get (ids, i));
      if (!ak_digest_valid (s))
        {
          ak_error_coded (err, EBADMSG, "invalid image config: diff id %zu is not a sha256 digest", i + 1);
          ak_strv_free (v);
          goto out;
        }
      v[i] = ak_xstrdup (s);
    }
  *diff_ids = v;
  rc = 0;
out:
  json_decref (j);
  return rc;
}
