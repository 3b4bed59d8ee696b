/* The flags that decide a sandbox, shared by every command that makes one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "service/agent_host.h"
#include "model/agents.h"
#include "model/config.h"
#include "model/seccomp_profile.h"
#include "service/volume.h"

extern char **environ;

/* Value of --flag VALUE or --flag=VALUE. */
static const char *
value_of (const char *flag, int argc, char **argv, int *i, bool *matched)
{
  const char *a = argv[*i];
  size_t n = strlen (flag);
  *matched = false;
  if (strncmp (a, flag, n) != 0)
    return NULL;
  if (a[n] == '=')
    {
      *matched = true;
      return a + n + 1;
    }
  if (a[n] != '\0')
    return NULL;
  *matched = true;
  if (*i + 1 >= argc)
    return NULL;
  return argv[++*i];
}

static bool
parse_cpus (const char *s, unsigned *millis)
{
  char *end;
  double v;
  errno = 0;
  v = strtod (s, &end);
  if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 1024)
    return false;
  *millis = (unsigned) (v * 1000.0 + 0.5);
  return !(v > 0 && *millis == 0);
}

int
ak_cli_sandbox_flag (ak_cli_sandbox_t *f, int argc, char **argv, int *i, ak_error_t **err)
{
  static const struct {
    const char *lng, *shrt;
    int id;
  } table[] = {
    { "--profile", "-p", 'p' }, { "--config", "-c", 'c' },  { "--env", "-e", 'e' },
    { "--workdir", "-w", 'w' }, { "--volume", "-v", 'v' },  { "--memory", "-m", 'm' },
    { "--cpus", NULL, 'C' },    { "--pids", NULL, 'P' },    { "--rootfs", NULL, 'r' },
    { "--hostname", NULL, 'h' }, { "--name", NULL, 'n' },   { "--seccomp", NULL, 'S' },
    { "--image", "-i", 'i' },   { "--disk", NULL, 'D' },   { "--agent", NULL, 'G' },
    { "--allow-host", NULL, 'A' }, { "--block-host", NULL, 'B' }, { "--backend", "-B", 'b' },
    { "--allow-cmd", NULL, 'X' }, { "--block-cmd", NULL, 'Y' },
    { "--publish", "-P", 'u' },
  };
  const char *a = argv[*i];
  unsigned long long n;

  if (strcmp (a, "--no-network") == 0)
    {
      f->no_network = true;
      return 1;
    }
  /* create -p is --publish, as in agentkernel; it used to be the profile,
   * and a profile's name is still taken as one, with a word about it. */
  if (f->create && (strcmp (a, "-p") == 0 || strncmp (a, "-p=", 3) == 0))
    {
      static bool warned;
      bool matched;
      ak_profile_t p;
      const char *v = value_of ("-p", argc, argv, i, &matched);
      if (v == NULL)
        return ak_error_set (err, 0, "option -p (--publish) needs a value");
      if (strchr (v, ':') == NULL && ak_profile_from_name (v, &p, NULL) == 0)
        {
          if (!warned)
            ak_warn ("create -p now publishes a port (-p HOSTPORT:PORT); taking '%s' as the profile: "
                     "write --profile %s",
                     v, v);
          warned = true;
          f->profile = v;
          return 1;
        }
      ak_strv_push (&f->publish, v);
      return 1;
    }
  if (strcmp (a, "--root") == 0)
    {
      f->as_root = true;
      return 1;
    }
  if (strcmp (a, "--allow-unsafe-seccomp") == 0)
    {
      f->unsafe_seccomp = true;
      return 1;
    }
  for (size_t t = 0; t < sizeof table / sizeof table[0]; t++)
    {
      bool matched = false;
      const char *v = value_of (table[t].lng, argc, argv, i, &matched);
      if (!matched && table[t].shrt != NULL)
        v = value_of (table[t].shrt, argc, argv, i, &matched);
      if (!matched)
        continue;
      if (v == NULL)
        return ak_error_set (err, 0, "option %s needs a value", table[t].lng);
      switch (table[t].id)
        {
        case 'p':
          if (strchr (v, ':') != NULL)
            return ak_error_set (err, 0, "-p/--profile '%s' is not a profile; to publish a port: "
                                 "-P/--publish %s", v, v);
          f->profile = v;
          break;
        case 'c':
          f->config = v;
          break;
        case 'e':
          ak_strv_push (&f->env, v);
          break;
        case 'w':
          f->workdir = v;
          break;
        case 'v':
          ak_strv_push (&f->volumes, v);
          break;
        case 'm':
          if (!ak_parse_u64 (v, 0, 1ULL << 30, &n))
            return ak_error_set (err, 0, "invalid --memory '%s' (expected MiB, e.g. 512)", v);
          f->memory_mb = n;
          f->memory_set = true;
          break;
        case 'C':
          if (!parse_cpus (v, &f->cpu_millis))
            return ak_error_set (err, 0, "invalid --cpus '%s' (expected a number such as 0.5)", v);
          f->cpus_set = true;
          break;
        case 'P':
          if (!ak_parse_u64 (v, 0, 1U << 22, &n))
            return ak_error_set (err, 0, "invalid --pids '%s' (expected a number)", v);
          f->pids = (unsigned) n;
          f->pids_set = true;
          break;
        case 'r':
          f->rootfs = v;
          break;
        case 'i':
          if (*v == '\0')
            return ak_error_set (err, 0, "--image needs an image reference, 'host' or 'auto'");
          f->image = v;
          break;
        case 'h':
          f->hostname = v;
          break;
        case 'b':
          f->backend = v;
          break;
        case 'n':
          f->name = v;
          break;
        case 'S':
          f->seccomp = v;
          break;
        case 'A':
          ak_strv_push (&f->allow_hosts, v);
          break;
        case 'B':
          ak_strv_push (&f->block_hosts, v);
          break;
        case 'X':
          if (ak_cmd_entry_check (v, err) < 0)
            return ak_error_prefix (err, "--allow-cmd");
          ak_strv_push (&f->allow_cmds, v);
          break;
        case 'Y':
          if (ak_cmd_entry_check (v, err) < 0)
            return ak_error_prefix (err, "--block-cmd");
          ak_strv_push (&f->block_cmds, v);
          break;
        case 'u':
          ak_strv_push (&f->publish, v);
          break;
        case 'D':
          if (!ak_parse_u64 (v, 0, AK_DISK_MB_MAX, &n))
            return ak_error_set (err, 0, "invalid --disk '%s' (expected MiB, e.g. 1024)", v);
          f->disk_mb = (unsigned) n;
          f->disk_set = true;
          break;
        case 'G':
          if (ak_agent_find (v) == NULL)
            return ak_error_set (err, 0, "unknown agent '%s' (expected %s)", v, ak_agent_names ());
          f->agent = v;
          break;
        }
      return 1;
    }
  return 0;
}

void
ak_cli_sandbox_free (ak_cli_sandbox_t *f)
{
  ak_strv_free (f->env);
  ak_strv_free (f->volumes);
  ak_strv_free (f->allow_hosts);
  ak_strv_free (f->block_hosts);
  ak_strv_free (f->allow_cmds);
  ak_strv_free (f->block_cmds);
  ak_strv_free (f->publish);
  ak_strv_free (f->config_refused);
  free (f->config_used);
  for (size_t i = 0; i < f->n_volume_locks; i++)
    close (f->volume_locks[i]);
  free (f->volume_locks);
  memset (f, 0, sizeof (*f));
}

static bool
hostname_valid (const char *h)
{
  size_t n = strlen (h);
  if (n == 0 || n > 63)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9')
          || h[i] == '-'))
      return false;
  return h[0] != '-';
}

/* A config file: trusted when named with --config (the user chose it) or
 * when its exact bytes were recorded by `config trust`; otherwise a found
 * ./agentkernel.toml, which the repository and the sandbox itself can write,
 * may only tighten (config.h). */
static int
apply_config (ak_cli_sandbox_t *f, const char *file, bool explicit, ak_spec_t *spec,
              ak_error_t **err)
{
  _cleanup_free_ char *buf = NULL;
  _cleanup_free_ char *real = NULL;
  size_t len = 0;
  char hex[65];
  ak_config_opts_t o = { .profile_from_cli = f->profile != NULL, .refused = &f->config_refused };

  if (ak_trust_read (file, &buf, &len, &real, err) < 0)
    return -1;
  if (explicit)
    f->config_trusted = true;
  else
    {
      ak_sha256_hex (buf, len, hex);
      f->config_trusted = ak_trust_check (real, hex);
    }
  free (f->config_used);
  f->config_used = ak_xstrdup (real);
  o.untrusted = !f->config_trusted;
  return ak_config_apply_buf (file, buf, len, &o, spec, err);
}

/* --seccomp, then --allow-unsafe-seccomp, which only a custom profile the
 * user chose (this flag, or a trusted config file) can take: a profile from
 * an untrusted file stays on top of the filter in force. */
static int
apply_seccomp (const ak_cli_sandbox_t *f, ak_spec_t *spec, ak_error_t **err)
{
  ak_seccomp_sel_t *sc = &spec->sec.seccomp;

  if (f->seccomp != NULL && !ak_seccomp_is_path (f->seccomp))
    {
      ak_seccomp_kind_t k;
      if (ak_seccomp_from_name (f->seccomp, &k, err) < 0)
        return ak_error_prefix (err, "--seccomp");
      ak_spec_set_seccomp (spec, k, AK_SRC_CLI, 0);
    }
  else if (f->seccomp != NULL)
    {
      _cleanup_free_ char *text = NULL;
      _cleanup_free_ char *real = NULL;
      size_t len;
      if (ak_scmp_profile_read (AT_FDCWD, ".", f->seccomp, false, &text, &len, &real, err) < 0
          || ak_spec_set_seccomp_custom (spec, real, text, len, AK_SECCOMP_PERMISSIVE, AK_SRC_CLI,
                                         0, err)
                 < 0)
        return ak_error_prefix (err, "--seccomp");
    }
  if (!f->unsafe_seccomp)
    return 0;
  if (sc->kind != AK_SECCOMP_CUSTOM)
    return ak_error_set (err, 0,
                         "--allow-unsafe-seccomp applies to a custom seccomp profile (--seccomp "
                         "FILE.json, or [security] seccomp in a trusted config file)");
  if (sc->under != AK_SECCOMP_PERMISSIVE)
    return ak_error_set (err, 0,
                         "--allow-unsafe-seccomp: the seccomp profile %s was named by a config "
                         "file that is not trusted; pass it with --seccomp, or trust the file "
                         "('agentkernel config trust')",
                         sc->file);
  /* The warning is the backend's, at every start of such a sandbox. */
  sc->unsafe = true;
  return 0;
}

/* An agent's config path under home: shown when it exists; a missing
 * directory is created (empty, 0700) so that what the agent writes there
 * outlives the sandbox, as it would outside; a missing file is left to the
 * agent, which creates it inside. */
static bool
agent_path_usable (const char *host, const ak_agent_path_t *p, void *data)
{
  struct stat st;
  (void) data;
  if (lstat (host, &st) == 0)
    return p->is_file ? S_ISREG (st.st_mode) || S_ISLNK (st.st_mode) : S_ISDIR (st.st_mode) || S_ISLNK (st.st_mode);
  if (errno != ENOENT || p->is_file)
    return false;
  {
    _cleanup_free_ char *d = ak_xstrdup (host);
    for (char *s = strchr (d + 1, '/'); ; s = strchr (s + 1, '/'))
      {
        if (s != NULL)
          *s = '\0';
        if (mkdir (d, 0700) < 0 && errno != EEXIST)
          return false;
        if (s == NULL)
          break;
        *s = '/';
      }
  }
  return true;
}

/* Directories the host image shows (DESIGN.md: the host's /usr, /bin,
 * /lib*, /sbin). */
static bool
in_host_image (const char *p)
{
  static const char *const dirs[] = { "/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/libx32/" };
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    if (strncmp (p, dirs[i], strlen (dirs[i])) == 0)
      return true;
  return false;
}

/* Shows dir read-only at the same path inside, unless the host image
 * already does.  Never the whole home (nor /): only the directory that
 * holds the program. */
static int
show_dir (ak_spec_t *spec, const char *dir, const char *home, ak_error_t **err)
{
  _cleanup_free_ char *with_slash = ak_xasprintf ("%s/", dir);
  _cleanup_free_ char *vol = NULL;
  if (in_host_image (with_slash))
    return 0;
  if (strcmp (dir, "/") == 0 || (home != NULL && strcmp (dir, home) == 0))
    return ak_error_set (err, 0,
                         "the agent's program lives in %s, which would mean showing all of it to "
                         "the sandbox; install it under a directory of its own (e.g. ~/.local/bin, "
                         "or npm's global prefix)",
                         dir);
  for (size_t i = 0; i < spec->n_mounts; i++)
    if (strcmp (spec->mounts[i].dest, dir) == 0)
      return 0;
  vol = ak_xasprintf ("%s:%s:ro", dir, dir);
  return ak_spec_add_mount (spec, vol, err);
}

/* The agent's program, reachable inside: its path on the caller's PATH;
 * outside the host image, its directory (and for an npm package the whole
 * node_modules tree its link points into) shown read-only at the same
 * place, and that directory first on PATH.  The command becomes the
 * program, followed by the arguments given. */
static int
agent_command (ak_spec_t *spec, const ak_agent_t *a, const char *home, ak_error_t **err)
{
  _cleanup_free_ char *path = ak_which (a->binary, NULL);
  _cleanup_free_ char *real = NULL;
  _cleanup_free_ char *bindir = NULL;
  char **argv;
  size_t n = ak_strv_len (spec->argv);
  bool host_image = spec->rootfs == NULL && (spec->image == NULL || strcmp (spec->image, "host") == 0);

  if (!host_image)
    {
      /* An image brings its own copy of the agent, found on its PATH. */
      path = path ? (free (path), ak_xstrdup (a->binary)) : ak_xstrdup (a->binary);
    }
  else
    {
      char *slash, *nm;
      if (path == NULL)
        return ak_error_set (err, 0, "agent %s: '%s' is not installed on this host (not on PATH); install it: %s",
                             a->name, a->binary, a->install_hint);
      real = realpath (path, NULL);
      if (real == NULL)
        return ak_error_set (err, errno, "agent %s: %s", a->name, path);
      bindir = ak_xstrdup (path);
      *strrchr (bindir, '/') = '\0';
      if (show_dir (spec, bindir[0] ? bindir : "/", home, err) < 0)
        return -1;
      nm = strstr (real, "/node_modules/");
      if (nm != NULL)
        nm[strlen ("/node_modules")] = '\0';
      else if ((slash = strrchr (real, '/')) != NULL)
        *slash = '\0';
      if (strcmp (real, bindir) != 0 && show_dir (spec, real[0] ? real : "/", home, err) < 0)
        return -1;
      {
        _cleanup_free_ char *with_slash = ak_xasprintf ("%s/", bindir);
        if (!in_host_image (with_slash))
          {
            _cleanup_free_ char *pathvar
                = ak_xasprintf ("PATH=%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", bindir);
            if (ak_spec_add_env (spec, pathvar, err) < 0)
              return -1;
          }
      }
    }
  argv = ak_xcalloc (n + 2, sizeof *argv);
  argv[0] = steal_pointer (&path);
  for (size_t i = 0; i < n; i++)
    argv[i + 1] = spec->argv[i];
  free (spec->argv);
  spec->argv = argv;
  return 0;
}

/* --allow-host and --block-host; the first --allow-host turns allowlist
 * mode on.  Whether the sandbox has a network to apply them to is checked
 * with the whole spec (ak_spec_validate). */
static int
apply_hosts (const ak_cli_sandbox_t *f, ak_spec_t *spec, ak_error_t **err)
{
  ak_netpolicy_t *pol = &spec->sec.domains;

  for (char **a = f->allow_hosts; a && *a; a++)
    if (ak_netpolicy_add (pol, AK_NET_ALLOW, *a, AK_SRC_CLI, 0, err) < 0)
      return ak_error_prefix (err, "--allow-host");
  for (char **b = f->block_hosts; b && *b; b++)
    if (ak_netpolicy_add (pol, AK_NET_BLOCK, *b, AK_SRC_CLI, 0, err) < 0)
      return ak_error_prefix (err, "--block-host");
  if (f->allow_hosts != NULL && f->allow_hosts[0] != NULL)
    {
      pol->allowlist_only = true;
      pol->allowlist_source = AK_SRC_CLI;
      pol->allowlist_line = 0;
    }
  return 0;
}

/* -v SRC:DEST[:ro]: SRC with no '/' that does not start with '.' or '~'
 * is a named volume (created when missing, and held against a delete
 * until f is freed; only shown, with show_only), as with docker; anything
 * else is a host path. */
static int
add_volume (ak_cli_sandbox_t *f, ak_spec_t *spec, const char *arg, ak_error_t **err)
{
  const char *colon = strchr (arg, ':');
  _cleanup_free_ char *slug = NULL;
  _cleanup_free_ char *path = NULL;
  _cleanup_free_ char *vol = NULL;

  if (colon == NULL || colon == arg || memchr (arg, '/', (size_t) (colon - arg)) != NULL || arg[0] == '.'
      || arg[0] == '~')
    return ak_spec_add_mount (spec, arg, err);
  slug = ak_xstrndup (arg, (size_t) (colon - arg));
  if (!ak_volume_slug_valid (slug))
    return ak_error_set (err, 0,
                         "invalid volume '%s': '%s' is neither a path (give ./%s for one in the current "
                         "directory) nor a volume name (a-z, 0-9, '-', '_')",
                         arg, slug, slug);
  if (f->show_only && ak_volume_path (slug, &path, NULL) < 0)
    {
      /* Not there yet: shown where a run would create it. */
      _cleanup_free_ char *dir = ak_volume_dir (slug);
      vol = ak_xasprintf ("/%s", colon);
      if (dir == NULL)
        return ak_error_set (err, 0, "no state directory (set AGENTKERNEL_STATE_DIR or HOME)");
      if (ak_spec_add_mount (spec, vol, err) < 0)
        return -1;
      free (spec->mounts[spec->n_mounts - 1].source);
      spec->mounts[spec->n_mounts - 1].source = steal_pointer (&dir);
      return 0;
    }
  if (!f->show_only)
    {
      int lock = ak_volume_hold (slug, &path, err);
      if (lock < 0)
        return -1;
      f->volume_locks = ak_xrealloc (f->volume_locks, (f->n_volume_locks + 1) * sizeof (int));
      f->volume_locks[f->n_volume_locks++] = lock;
    }
  vol = ak_xasprintf ("%s%s", path, colon);
  return ak_spec_add_mount (spec, vol, err);
}

/* --allow-cmd and --block-cmd; the first --allow-cmd turns allowlist mode
 * on, as --allow-host does for hosts. */
static int
apply_cmds (const ak_cli_sandbox_t *f, ak_spec_t *spec, ak_error_t **err)
{
  ak_cmdpolicy_t *pol = &spec->sec.commands;

  for (char **a = f->allow_cmds; a && *a; a++)
    if (ak_cmdpolicy_add (pol, AK_CMD_ALLOW, *a, AK_SRC_CLI, 0, err) < 0)
      return ak_error_prefix (err, "--allow-cmd");
  for (char **b = f->block_cmds; b && *b; b++)
    if (ak_cmdpolicy_add (pol, AK_CMD_BLOCK, *b, AK_SRC_CLI, 0, err) < 0)
      return ak_error_prefix (err, "--block-cmd");
  if (f->allow_cmds != NULL && f->allow_cmds[0] != NULL)
    {
      pol->allowlist_only = true;
      pol->allowlist_source = AK_SRC_CLI;
      pol->allowlist_line = 0;
    }
  return 0;
}

int
ak_cli_sandbox_resolve (ak_cli_sandbox_t *f, ak_spec_t *spec, ak_error_t **err)
{
  const char *home = getenv ("HOME");
  _cleanup_free_ char *cwd = getcwd (NULL, 0);

  /* 1. The profile. */
  if (f->profile != NULL)
    {
      ak_profile_t p;
      if (ak_profile_from_name (f->profile, &p, err) < 0)
        return -1;
      ak_spec_set_profile (spec, p, AK_SRC_CLI);
    }
  /* 2. The config file: its profile unless --profile named one, then its
   * explicit [security] keys. */
  if (f->config != NULL)
    {
      if (apply_config (f, f->config, true, spec, err) < 0)
        return -1;
    }
  else if (access ("agentkernel.toml", F_OK) == 0)
    {
      if (apply_config (f, "agentkernel.toml", false, spec, err) < 0)
        return -1;
    }

  /* 2b. An agent's compatibility mode: --agent, else the trusted config's
   * [agent] compatibility_mode, else its preferred agent. */
  {
    const char *name = f->agent ? f->agent : spec->compat_mode ? spec->compat_mode : spec->agent;
    if (name != NULL)
      {
        const ak_agent_t *a = ak_agent_lookup (name, err);
        if (a == NULL || ak_agent_apply (spec, a, home, agent_path_usable, NULL, f->agent ? AK_SRC_CLI : AK_SRC_CONFIG, err) < 0)
          return -1;
        free (spec->compat_mode);
        spec->compat_mode = ak_xstrdup (a->name);
      }
  }

  /* 3. Explicit flags, last. */
  if (f->no_network)
    ak_spec_set_security (spec, AK_SEC_NETWORK, false, AK_SRC_CLI, 0);
  for (char **e = f->env; e && *e; e++)
    if (ak_spec_add_env (spec, *e, err) < 0)
      return -1;
  for (char **v = f->volumes; v && *v; v++)
    if (add_volume (f, spec, *v, err) < 0)
      return -1;
  if (f->memory_set)
    spec->res.memory_mb = f->memory_mb, spec->res_source[0] = AK_SRC_CLI;
  if (f->cpus_set)
    spec->res.cpu_millis = f->cpu_millis, spec->res_source[1] = AK_SRC_CLI;
  if (f->pids_set)
    spec->res.pids = f->pids, spec->res_source[2] = AK_SRC_CLI;
  if (f->disk_set)
    spec->res.disk_mb = f->disk_mb, spec->res_source[5] = AK_SRC_CLI;
  if (f->workdir != NULL)
    {
      free (spec->workdir);
      spec->workdir = ak_xstrdup (f->workdir);
    }
  if (f->rootfs != NULL && f->image != NULL)
    return ak_error_set (err, 0, "--rootfs and --image exclude each other");
  if (f->image != NULL)
    {
      free (spec->image);
      spec->image = ak_xstrdup (f->image);
    }
  if (f->rootfs != NULL)
    {
      char *real = realpath (f->rootfs, NULL);
      if (real == NULL)
        return ak_error_set (err, errno, "rootfs %s", f->rootfs);
      free (spec->rootfs);
      spec->rootfs = real;
      free (spec->image);
      spec->image = ak_xasprintf ("dir:%s", real);
    }
  if (f->backend != NULL)
    {
      free (spec->backend);
      spec->backend = ak_xstrdup (f->backend);
    }
  if (f->hostname != NULL)
    {
      if (!hostname_valid (f->hostname))
        return ak_error_set (err, 0, "invalid hostname '%s'", f->hostname);
      free (spec->hostname);
      spec->hostname = ak_xstrdup (f->hostname);
    }
  if (f->name != NULL)
    {
      free (spec->name);
      spec->name = ak_xstrdup (f->name);
    }
  if (f->as_root)
    spec->as_root = true;
  if (apply_seccomp (f, spec, err) < 0)
    return -1;
  if (apply_hosts (f, spec, err) < 0 || apply_cmds (f, spec, err) < 0)
    return -1;
  for (char **pp = f->publish; pp && *pp; pp++)
    if (ak_spec_add_port (spec, *pp, err) < 0)
      return ak_error_prefix (err, "--publish");
  if (spec->compat_mode != NULL)
    {
      const ak_agent_t *a = ak_agent_find (spec->compat_mode);
      if (ak_agent_check (spec, a, err) < 0)
        return -1;
      /* The agent is the command: named by --agent, or the preferred agent
       * of a sandbox given no command. */
      if ((f->agent != NULL || (spec->argv != NULL && spec->argv[0] == NULL && spec->agent != NULL))
          && spec->argv != NULL && agent_command (spec, f->agent ? a : ak_agent_find (spec->agent), home, err) < 0)
        return -1;
    }

  /* What the caller's side contributes. */
  if (spec->cwd == NULL && cwd != NULL)
    spec->cwd = ak_xstrdup (cwd);
  if (spec->home == NULL && home != NULL && home[0] == '/')
    spec->home = ak_xstrdup (home);
  ak_spec_capture_host_env (spec, environ);
  return ak_spec_validate (spec, err);
}
