/* Registry credentials (see auth.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/base64.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "images/auth.h"

static const char *
home_dir (void)
{
  const char *home = getenv ("HOME");
  struct passwd *pw;

  if (home != NULL && home[0] == '/')
    return home;
  pw = getpwuid (getuid ());
  return pw != NULL ? pw->pw_dir : NULL;
}

char *
ak_images_config_dir (void)
{
  const char *s = getenv ("XDG_CONFIG_HOME");
  const char *home;

  if (s != NULL && s[0] == '/')
    return ak_xasprintf ("%s/agentkernel", s);
  home = home_dir ();
  return home != NULL ? ak_xasprintf ("%s/.config/agentkernel", home) : NULL;
}

static char *
own_file (void)
{
  _cleanup_free_ char *dir = ak_images_config_dir ();
  return dir != NULL ? ak_xasprintf ("%s/auth.json", dir) : NULL;
}

/* The keys a file may use for a registry: the bare host, a URL of it, and
 * Docker Hub's historical names. */
static bool
key_matches (const char *key, const char *registry)
{
  size_t n = strlen (registry);

  if (strncmp (key, "https://", 8) == 0)
    key += 8;
  else if (strncmp (key, "http://", 7) == 0)
    key += 7;
  if (strcmp (registry, "docker.io") == 0
      && (strncmp (key, "index.docker.io", 15) == 0 || strncmp (key, "registry-1.docker.io", 20) == 0))
    return true;
  return strncmp (key, registry, n) == 0 && (key[n] == '\0' || key[n] == '/');
}

static int
lookup_in (const char *path, const char *registry, char **user, char **password, ak_error_t **err)
{
  json_error_t jerr;
  json_t *j, *auths, *entry;
  const char *key;
  int rc = 0;

  if (access (path, F_OK) != 0)
    return 0;
  j = json_load_file (path, 0, &jerr);
  if (j == NULL)
    return ak_error_set (err, 0, "credentials file %s: %s", path, jerr.text);
  auths = json_object_get (j, "auths");
  json_object_foreach (auths, key, entry)
    {
      const char *b64 = json_string_value (json_object_get (entry, "auth"));
      const char *u = json_string_value (json_object_get (entry, "username"));
      const char *p = json_string_value (json_object_get (entry, "password"));
      char *decoded = NULL, *colon;
      size_t len;

      if (!key_matches (key, registry))
        continue;
      if (b64 != NULL && b64[0] != '\0')
        {
          if (!ak_base64_decode (b64, strlen (b64), &decoded, &len) || (colon = strchr (decoded, ':')) == NULL)
            {
              free (decoded);
              rc = ak_error_set (err, 0, "credentials file %s: the entry for %s is not base64 of user:password",
                                 path, key);
              break;
            }
          *colon = '\0';
          *user = ak_xstrdup (decoded);
          *password = ak_xstrdup (colon + 1);
          free (decoded);
          rc = 1;
          break;
        }
      if (u != NULL && p != NULL)
        {
          *user = ak_xstrdup (u);
          *password = ak_xstrdup (p);
          rc = 1;
          break;
        }
    }
  json_decref (j);
  return rc;
}

int
ak_auth_lookup (const char *registry, char **user, char **password, ak_error_t **err)
{
  const char *home = home_dir (), *s;
  char *files[6] = { 0 };
  int n = 0, rc = 0;

  *user = *password = NULL;
  files[n++] = own_file ();
  if ((s = getenv ("REGISTRY_AUTH_FILE")) != NULL && s[0] != '\0')
    files[n++] = ak_xstrdup (s);
  if ((s = getenv ("XDG_RUNTIME_DIR")) != NULL && s[0] == '/')
    files[n++] = ak_xasprintf ("%s/containers/auth.json", s);
  if (home != NULL)
    files[n++] = ak_xasprintf ("%s/.config/containers/auth.json", home);
  if ((s = getenv ("DOCKER_CONFIG")) != NULL && s[0] == '/')
    files[n++] = ak_xasprintf ("%s/config.json", s);
  else if (home != NULL)
    files[n++] = ak_xasprintf ("%s/.docker/config.json", home);
  for (int i = 0; i < n && rc == 0; i++)
    if (files[i] != NULL)
      rc = lookup_in (files[i], registry, user, password, err);
  for (int i = 0; i < n; i++)
    free (files[i]);
  return rc;
}

int
ak_auth_store (const char *registry, const char *user, const char *password, ak_error_t **err)
{
  _cleanup_free_ char *dir = ak_images_config_dir (), *path = NULL, *tmp = NULL, *text = NULL;
  json_t *j = NULL, *auths;
  json_error_t jerr;
  int rc = -1;

  if (dir == NULL)
    return ak_error_set (err, 0, "cannot find the configuration directory: set HOME or XDG_CONFIG_HOME");
  path = ak_xasprintf ("%s/auth.json", dir);
  if (access (path, F_OK) == 0 && (j = json_load_file (path, 0, &jerr)) == NULL)
    return ak_error_set (err, 0, "credentials file %s: %s", path, jerr.text);
  if (j == NULL || !json_is_object (j))
    {
      json_decref (j);
      j = json_object ();
    }
  auths = json_object_get (j, "auths");
  if (!json_is_object (auths))
    {
      auths = json_object ();
      json_object_set_new (j, "auths", auths);
    }
  if (user == NULL)
    {
      if (json_object_del (auths, registry) != 0)
        {
          ak_error_coded (err, ENOENT, "not logged in to %s", registry);
          goto out;
        }
    }
  else
    {
      _cleanup_free_ char *pair = ak_xasprintf ("%s:%s", user, password);
      _cleanup_free_ char *b64 = ak_base64_encode (pair, strlen (pair));
      json_object_set_new (auths, registry, json_pack ("{ss}", "auth", b64));
    }
  for (char *p = dir + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (dir, 0700) < 0 && errno != EEXIST)
          {
            ak_error_set (err, errno, "create %s", dir);
            goto out;
          }
        *p = '/';
      }
  if (mkdir (dir, 0700) < 0 && errno != EEXIST)
    {
      ak_error_set (err, errno, "create %s", dir);
      goto out;
    }
  text = json_dumps (j, JSON_INDENT (2) | JSON_SORT_KEYS);
  tmp = ak_xasprintf ("%s.tmp.%d", path, (int) getpid ());
  /* The file holds passwords: 0600 from its creation, never wider. */
  if (ak_write_file (tmp, text, strlen (text), 0600, err) < 0)
    goto out;
  if (rename (tmp, path) < 0)
    {
      ak_error_set (err, errno, "replace %s", path);
      unlink (tmp);
      goto out;
    }
  rc = 0;
out:
  json_decref (j);
  return rc;
}
