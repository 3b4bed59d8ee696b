/* A minimal synthesised /etc for the host image.
 *
 * The host's /etc holds secrets (shadow, ssh host keys, credentials of
 * services) and names every host account; the sandbox gets only what
 * programs need to run: its own passwd/group, name resolution, the dynamic
 * linker's cache, certificates and the alternatives links that /usr/bin
 * points through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"

/* Small host files copied as they are (when present). */
static const char *const copied[] = {
  "ld.so.cache", "ld.so.conf", "nsswitch.conf", "protocols", "services", "mime.types",
  "bash.bashrc", "profile",    "inputrc",       "shells",    "debian_version", "host.conf",
  "gai.conf",    "mailcap",    "papersize",
};
/* Host directories shown read-only. */
static const char *const bound[] = { "alternatives", "ssl", "ca-certificates", "ld.so.conf.d",
                                     "profile.d", "python3", "perl" };
/* Host symlinks recreated as they are. */
static const char *const linked[] = { "localtime", "os-release", "mtab" };

/* Every file is written through the descriptor of /etc, itself made a real
 * directory first: in a persistent root the sandbox may have replaced any
 * name here with a symlink to a host path. */
static int
put (int dir, const char *name, const char *data, ak_error_t **err)
{
  return ak_fs_write_file (dir, name, data, strlen (data), 0644, err);
}

static int
copy_host (int dir, const char *name, ak_error_t **err)
{
  _cleanup_free_ char *from = ak_xasprintf ("/oldroot/etc/%s", name);
  _cleanup_free_ char *data = NULL;
  size_t len;
  ak_error_t *ignored = NULL;

  if (ak_read_file (from, &data, &len, &ignored) < 0)
    {
      /* Missing or unreadable on the host: the sandbox simply lacks it. */
      ak_error_free (ignored);
      return 0;
    }
  return ak_fs_write_file (dir, name, data, len, 0644, err);
}

static int
resolv_conf (int dir, const ak_spec_t *spec, int net_helper, ak_error_t **err)
{
  /* Without a network there is no resolver to name. */
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return put (dir, "resolv.conf", "", err);
  /* slirp4netns answers DNS itself, forwarding to the host's resolvers;
   * the egress policy answers there too (any DNS server's address does:
   * every query is redirected to it). */
  if (net_helper == AK_NET_SLIRP4NETNS || net_helper == AK_NET_POLICY)
    return put (dir, "resolv.conf", "nameserver 10.0.2.3\n", err);
  return copy_host (dir, "resolv.conf", err);
}

int
ak_etc_populate (int rootfd, const ak_spec_t *spec, int net_helper, ak_error_t **err)
{
  _cleanup_close_ int etc_dir = -1;
  _cleanup_free_ char *passwd = NULL;
  _cleanup_free_ char *hosts = NULL;
  _cleanup_free_ char *hostname = NULL;
  const char *shell = access ("/oldroot/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
  const char *hn = spec->hostname ? spec->hostname : "agentkernel";
  char host[PATH_MAX], target[PATH_MAX];

  etc_dir = ak_fs_ensure_dir (rootfd, "etc", 0755, err);
  if (etc_dir < 0)
    return -1;
  passwd = ak_xasprintf ("root:x:0:0:root:/root:%s\n"
                         "user:x:1000:1000:user:/home/user:%s\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                         shell, shell);
  hosts = ak_xasprintf ("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
                        "::1\tlocalhost ip6-localhost ip6-loopback\n",
                        hn);
  hostname = ak_xasprintf ("%s\n", hn);
  if (put (etc_dir, "passwd", passwd, err) < 0
      || put (etc_dir, "group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n", err) < 0
      || put (etc_dir, "hosts", hosts, err) < 0 || put (etc_dir, "hostname", hostname, err) < 0
      || resolv_conf (etc_dir, spec, net_helper, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
    if (copy_host (etc_dir, copied[i], err) < 0)
      return -1;
  for (size_t i = 0; i < sizeof linked / sizeof linked[0]; i++)
    {
      ssize_t n;
      snprintf (host, sizeof host, "/oldroot/etc/%s", linked[i]);
      n = readlink (host, target, sizeof target - 1);
      if (n < 0)
        continue;
      target[n] = '\0';
      if (ak_fs_symlink (etc_dir, linked[i], target, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < sizeof bound / sizeof bound[0]; i++)
    {
      struct stat st;
      snprintf (host, sizeof host, "/oldroot/etc/%s", bound[i]);
      if (lstat (host, &st) < 0 || !S_ISDIR (st.st_mode))
        continue;
      if (ak_mounts_bind_host (etc_dir, host, bound[i], true, err) < 0)
        return -1;
    }
  return 0;
}

/* An image's /etc is the image's own, in the overlay: only what the
 * sandbox's identity and network decide is written over it (through the
 * root descriptor, /etc made a real directory first). */
int
ak_etc_image (int rootfd, const ak_spec_t *spec, int net_helper, ak_error_t **err)
{
  _cleanup_close_ int etc_dir = ak_fs_ensure_dir (rootfd, "etc", 0755, err);
  _cleanup_free_ char *hosts = NULL;
  _cleanup_free_ char *hostname = NULL;
  const char *hn = spec->hostname ? spec->hostname : "agentkernel";

  if (etc_dir < 0)
    return -1;
  hosts = ak_xasprintf ("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
                        "::1\tlocalhost ip6-localhost ip6-loopback\n",
                        hn);
  hostname = ak_xasprintf ("%s\n", hn);
  if (put (etc_dir, "hosts", hosts, err) < 0 || put (etc_dir, "hostname", hostname, err) < 0
      || resolv_conf (etc_dir, spec, net_helper, err) < 0)
    return -1;
  return 0;
}
