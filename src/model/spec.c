#define _GNU_SOURCE
#include "model/spec.h"

#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

const char *const ak_sec_key_names[AK_SEC_N] = {
  [AK_SEC_NETWORK] = "network",   [AK_SEC_MOUNT_CWD] = "mount_cwd",
  [AK_SEC_MOUNT_HOME] = "mount_home", [AK_SEC_PASS_ENV] = "pass_env",
  [AK_SEC_READ_ONLY] = "read_only",
};

const char *const ak_pass_env_names[] = { "PATH", "HOME", "USER", "LANG", "LC_ALL", "TERM", NULL };

static const char *const profile_names[] = {
  [AK_PROFILE_PERMISSIVE] = "permissive",
  [AK_PROFILE_MODERATE] = "moderate",
  [AK_PROFILE_RESTRICTIVE] = "restrictive",
};

/* Where tools keep keys and tokens.  Data, not code: a new store is one more
 * line. */
const char *const ak_credential_paths[] = {
  ".ssh", ".aws", ".gnupg", ".docker/config.json", ".netrc", ".config/gcloud", ".kube",
  ".git-credentials", ".config/gh", NULL,
};

/* The founding table, row for row. */
static const bool profile_table[3][AK_SEC_N] = {
  /*                          network mount_cwd mount_home pass_env read_only */
  [AK_PROFILE_PERMISSIVE] = { true, true, true, true, false },
  [AK_PROFILE_MODERATE] = { true, false, false, false, false },
  [AK_PROFILE_RESTRICTIVE] = { false, false, false, false, true },
};

/* Resource defaults per profile: memory MB, CPU (millis), pids. */
static const ak_resources_t profile_resources[3] = {
  [AK_PROFILE_PERMISSIVE] = { .memory_mb = 0, .cpu_millis = 0, .pids = 4096 },
  [AK_PROFILE_MODERATE] = { .memory_mb = 512, .cpu_millis = 0, .pids = 1024 },
  [AK_PROFILE_RESTRICTIVE] = { .memory_mb = 256, .cpu_millis = 500, .pids = 256 },
};

const char *
ak_profile_name (ak_profile_t p)
{
  return (unsigned) p < 3 ? profile_names[p] : "?";
}

int
ak_profile_from_name (const char *name, ak_profile_t *out, ak_error_t **err)
{
  for (int i = 0; i < 3; i++)
    if (name != NULL && strcmp (name, profile_names[i]) == 0)
      {
        *out = (ak_profile_t) i;
        return 0;
      }
  return ak_error_set (err, 0, "unknown profile '%s' (expected permissive, moderate or restrictive)",
                       name ? name : "");
}

const char *
ak_source_name (ak_source_t s)
{
  switch (s)
    {
    case AK_SRC_DEFAULT:
      return "default";
    case AK_SRC_PROFILE:
      return "profile";
    case AK_SRC_CONFIG:
      return "config";
    case AK_SRC_CLI:
      return "cli";
    }
  return "?";
}

int
ak_sec_key_from_name (const char *name)
{
  for (int i = 0; i < AK_SEC_N; i++)
    if (strcmp (name, ak_sec_key_names[i]) == 0)
      return i;
  return -1;
}

void
ak_spec_init (ak_spec_t *spec)
{
  memset (spec, 0, sizeof (*spec));
  spec->backend = ak_xstrdup ("container");
  spec->image = ak_xstrdup ("host");
  spec->env = ak_xcalloc (1, sizeof (char *));
  spec->host_env = ak_xcalloc (1, sizeof (char *));
  ak_spec_set_profile (spec, AK_PROFILE_MODERATE, AK_SRC_DEFAULT);
}

void
ak_spec_clear (ak_spec_t *spec)
{
  free (spec->name);
  free (spec->backend);
  free (spec->image);
  free (spec->rootfs);
  free (spec->image_digest);
  ak_strv_free (spec->image_layers);
  ak_strv_free (spec->image_env);
  ak_strv_free (spec->image_layer_dirs);
  free (spec->cwd);
  free (spec->home);
  ak_strv_free (spec->env);
  ak_strv_free (spec->host_env);
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      free (spec->mounts[i].source);
      free (spec->mounts[i].dest);
    }
  free (spec->mounts);
  for (size_t i = 0; i < spec->n_files; i++)
    {
      free (spec->files[i].source);
      free (spec->files[i].dest);
    }
  free (spec->files);
  free (spec->workdir);
  ak_strv_free (spec->argv);
  free (spec->hostname);
  free (spec->agent);
  free (spec->compat_mode);
  ak_strv_free (spec->labels);
  free (spec->description);
  free (spec->sec.seccomp.file);
  free (spec->sec.seccomp.text);
  ak_netpolicy_clear (&spec->sec.domains);
  ak_cmdpolicy_clear (&spec->sec.commands);
  ak_strv_free (spec->private_paths);
  ak_strv_free (spec->shared_paths);
  memset (spec, 0, sizeof (*spec));
}

void
ak_spec_set_profile (ak_spec_t *spec, ak_profile_t p, ak_source_t src)
{
  ak_source_t row_src = src == AK_SRC_DEFAULT ? AK_SRC_DEFAULT : AK_SRC_PROFILE;

  spec->sec.profile = p;
  spec->sec.profile_source = src;
  for (int k = 0; k < AK_SEC_N; k++)
    spec->sec.s[k] = (ak_setting_t){ .value = profile_table[p][k], .source = row_src };
  /* Explicitly set resources survive a profile change. */
  if (spec->res_source[0] <= AK_SRC_PROFILE)
    spec->res.memory_mb = profile_resources[p].memory_mb;
  if (spec->res_source[1] <= AK_SRC_PROFILE)
    spec->res.cpu_millis = profile_resources[p].cpu_millis;
  if (spec->res_source[2] <= AK_SRC_PROFILE)
    spec->res.pids = profile_resources[p].pids;
}

void
ak_spec_set_security (ak_spec_t *spec, ak_sec_key_t key, bool value, ak_source_t src, int line)
{
  spec->sec.s[key] = (ak_setting_t){ .value = value, .source = src, .line = line };
}

static bool
env_key_valid (const char *k, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (k[i] == '\0' || k[i] == '=')
      return false;
  return true;
}

/* Replace or append KEY=VALUE in a vector, keyed on KEY. */
static void
env_set (char ***v, const char *kv)
{
  size_t klen = strcspn (kv, "=");
  for (char **p = *v; p && *p; p++)
    if (strncmp (*p, kv, klen) == 0 && (*p)[klen] == '=')
      {
        free (*p);
        *p = ak_xstrdup (kv);
        return;
      }
  ak_strv_push (v, kv);
}

int
ak_spec_add_env (ak_spec_t *spec, const char *kv, ak_error_t **err)
{
  const char *eq = strchr (kv, '=');
  if (eq == NULL)
    {
      /* `-e KEY` passes the caller's value of KEY, as docker does. */
      const char *v = getenv (kv);
      if (!env_key_valid (kv, strlen (kv)))
        return ak_error_set (err, 0, "invalid environment variable '%s' (expected KEY=VALUE)", kv);
      if (v != NULL)
        {
          _cleanup_free_ char *s = ak_xasprintf ("%s=%s", kv, v);
          env_set (&spec->env, s);
        }
      return 0;
    }
  if (!env_key_valid (kv, (size_t) (eq - kv)))
    return ak_error_set (err, 0, "invalid environment variable '%s' (expected KEY=VALUE)", kv);
  env_set (&spec->env, kv);
  return 0;
}

static bool
path_clean_absolute (const char *p)
{
  if (p == NULL || p[0] != '/')
    return false;
  /* No ".." components: a destination must not climb out of its parent. */
  for (const char *s = p; (s = strstr (s, "..")) != NULL; s += 2)
    if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
      return false;
  return true;
}

int
ak_spec_add_mount (ak_spec_t *spec, const char *arg, ak_error_t **err)
{
  _cleanup_free_ char *copy = ak_xstrdup (arg);
  _cleanup_free_ char *real = NULL;
  char *src = copy, *dst, *mode;
  bool ro = false;

  dst = strchr (copy, ':');
  if (dst == NULL)
    return ak_error_set (err, 0, "invalid volume '%s' (expected HOST:DEST[:ro])", arg);
  *dst++ = '\0';
  mode = strchr (dst, ':');
  if (mode != NULL)
    {
      *mode++ = '\0';
      if (strcmp (mode, "ro") == 0)
        ro = true;
      else if (strcmp (mode, "rw") != 0)
        return ak_error_set (err, 0, "invalid volume mode '%s' in '%s' (expected ro or rw)", mode, arg);
    }
  if (*src == '\0')
    return ak_error_set (err, 0, "invalid volume '%s': empty host path", arg);
  if (!path_clean_absolute (dst) || strcmp (dst, "/") == 0)
    return ak_error_set (err, 0, "invalid volume '%s': destination must be an absolute path without '..'",
                         arg);
  real = realpath (src, NULL);
  if (real == NULL)
    return ak_error_set (err, errno, "volume '%s': host path %s", arg, src);
  spec->mounts = ak_xrealloc (spec->mounts, (spec->n_mounts + 1) * sizeof (ak_mount_t));
  spec->mounts[spec->n_mounts++] = (ak_mount_t){
    .source = steal_pointer (&real), .dest = ak_xstrdup (dst), .read_only = ro
  };
  return 0;
}

static int
pin (char **path, ak_fs_id_t *id, const char *what, ak_error_t **err)
{
  int fd;
  if (*path == NULL || id->type != 0)
    return 0;
  fd = ak_fs_pin (*path, id, path, err);
  if (fd < 0)
    return ak_error_prefix (err, "%s", what);
  close (fd);
  return 0;
}

int
ak_spec_pin_sources (ak_spec_t *spec, ak_error_t **err)
{
  if (pin (&spec->rootfs, &spec->rootfs_pin, "rootfs", err) < 0)
    return -1;
  if (spec->sec.s[AK_SEC_MOUNT_CWD].value && pin (&spec->cwd, &spec->cwd_pin, "mount_cwd", err) < 0)
    return -1;
  if (spec->sec.s[AK_SEC_MOUNT_HOME].value
      && pin (&spec->home, &spec->home_pin, "mount_home", err) < 0)
    return -1;
  for (size_t i = 0; i < spec->n_mounts; i++)
    if (pin (&spec->mounts[i].source, &spec->mounts[i].pin, "volume", err) < 0)
      return -1;
  for (size_t i = 0; i < spec->n_files; i++)
    if (pin (&spec->files[i].source, &spec->files[i].pin, "[[files]] source", err) < 0)
      return -1;
  return 0;
}

void
ak_spec_capture_host_env (ak_spec_t *spec, char *const *environ_)
{
  for (const char *const *n = ak_pass_env_names; *n; n++)
    {
      size_t l = strlen (*n);
      for (char *const *e = environ_; e && *e; e++)
        if (strncmp (*e, *n, l) == 0 && (*e)[l] == '=')
          {
            env_set (&spec->host_env, *e);
            break;
          }
    }
}

bool
ak_name_valid (const char *name)
{
  size_t n = name ? strlen (name) : 0;
  if (n < 1 || n > 63)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = name[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
            || c == '_'))
        return false;
    }
  return true;
}

int
ak_spec_validate (const ak_spec_t *spec, ak_error_t **err)
{
  if (spec->name != NULL && !ak_name_valid (spec->name))
    return ak_error_set (err, 0, "invalid sandbox name '%s' (1-63 of letters, digits, '-', '_')",
                         spec->name);
  if (spec->workdir != NULL && !path_clean_absolute (spec->workdir))
    return ak_error_set (err, 0, "invalid workdir '%s': must be an absolute path without '..'",
                         spec->workdir);
  if (spec->sec.s[AK_SEC_MOUNT_CWD].value && spec->cwd == NULL)
    return ak_error_set (err, 0, "mount_cwd is on but the current directory is unknown");
  for (size_t i = 0; i < spec->n_files; i++)
    if (!path_clean_absolute (spec->files[i].dest))
      return ak_error_set (err, 0, "invalid file destination '%s'", spec->files[i].dest);
  /* Rules given for this very sandbox (flags, API fields) on a sandbox
   * without network are a mistake to report, never to ignore.  Rules from a
   * config file are moot there: nothing at all is reached. */
  if (!spec->sec.s[AK_SEC_NETWORK].value)
    {
      const ak_netpolicy_t *pol = &spec->sec.domains;
      for (size_t i = 0; i < pol->n_allow + pol->n_block; i++)
        {
          const ak_netpat_t *p = i < pol->n_allow ? &pol->allow[i] : &pol->block[i - pol->n_allow];
          if (p->source == AK_SRC_CLI)
            return ak_error_set (err, 0,
                                 "%s host '%s': this sandbox has no network (--no-network, or "
                                 "network = false from its profile or config): drop the host "
                                 "rules, or turn network on",
                                 i < pol->n_allow ? "allow" : "block", p->text);
        }
    }
  return 0;
}

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The caller's PATH=..., keeping only what exists inside. */
static char *
path_inside (const char *kv, bool (*dir_exists) (const char *dir))
{
  _cleanup_free_ char *copy = ak_xstrdup (kv + 5);
  char *out = ak_xstrdup ("PATH="), *save = NULL;
  bool any = false;
  for (char *d = strtok_r (copy, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *n;
      if (d[0] != '/' || (dir_exists != NULL && !dir_exists (d)))
        continue;
      n = ak_xasprintf ("%s%s%s", out, any ? ":" : "", d);
      free (out);
      out = n;
      any = true;
    }
  if (!any)
    {
      free (out);
      out = ak_xstrdup ("PATH=" DEFAULT_PATH);
    }
  return out;
}

char **
ak_spec_build_env (const ak_spec_t *spec)
{
  return ak_spec_build_env_in (spec, spec->as_root, NULL);
}

char **
ak_spec_build_env_in (const ak_spec_t *spec, bool root, bool (*dir_exists) (const char *dir))
{
  char **env = NULL;

  if (spec->image_env != NULL)
    {
      /* An image: the clean environment, the image's Env over it, then
       * pass_env's values, except PATH (and HOME), which must name what
       * exists in the image, not on the host. */
      env_set (&env, "PATH=" DEFAULT_PATH);
      env_set (&env, root ? "HOME=/root" : "HOME=/home/user");
      env_set (&env, root ? "USER=root" : "USER=user");
      for (char **e = spec->image_env; *e; e++)
        env_set (&env, *e);
      if (spec->sec.s[AK_SEC_PASS_ENV].value)
        for (char **e = spec->host_env; e && *e; e++)
          if (strncmp (*e, "PATH=", 5) != 0 && strncmp (*e, "HOME=", 5) != 0)
            env_set (&env, *e);
    }
  else if (spec->sec.s[AK_SEC_PASS_ENV].value)
    {
      /* The caller's variables, but HOME names the home inside and PATH
       * only directories that exist there. */
      for (char **e = spec->host_env; e && *e; e++)
        if (strncmp (*e, "PATH=", 5) == 0)
          {
            _cleanup_free_ char *p = path_inside (*e, dir_exists);
            env_set (&env, p);
          }
        else if (strncmp (*e, "HOME=", 5) != 0)
          env_set (&env, *e);
      env_set (&env, root ? "HOME=/root" : "HOME=/home/user");
      if (root)
        env_set (&env, "USER=root");
    }
  else
    {
      /* The fixed clean environment. */
      env_set (&env, "PATH=" DEFAULT_PATH);
      env_set (&env, root ? "HOME=/root" : "HOME=/home/user");
      env_set (&env, root ? "USER=root" : "USER=user");
      env_set (&env, "LANG=C.UTF-8");
    }
  for (char **e = spec->env; e && *e; e++)
    env_set (&env, *e);
  if (env == NULL)
    env = ak_xcalloc (1, sizeof (char *));
  return env;
}

const char *
ak_spec_default_workdir (const ak_spec_t *spec, bool root)
{
  if (spec->workdir)
    return spec->workdir;
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD))
    return "/workspace";
  return root ? "/root" : "/home/user";
}
