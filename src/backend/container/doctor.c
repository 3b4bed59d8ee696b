/* `agentkernel doctor` for the container engine: each host feature a
 * sandbox uses, probed the way a sandbox start uses it (the same checks and
 * helpers), with the one-line fix for what is missing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/util.h"

static void
check (ak_host_check_fn report, void *data, const char *name, bool ok, bool needed, const char *detail,
       const char *fix)
{
  ak_host_check_t c = { .name = name, .ok = ok, .needed = needed, .detail = detail, .fix = ok ? NULL : fix };
  report (&c, data);
}

static bool
has_filesystem (const char *fs)
{
  _cleanup_free_ char *data = NULL;
  char *save = NULL;
  if (ak_read_file ("/proc/filesystems", &data, NULL, NULL) < 0)
    return false;
  for (char *l = strtok_r (data, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      char *t = strrchr (l, '\t');
      if (strcmp (t ? t + 1 : l, fs) == 0)
        return true;
    }
  return false;
}

void
ak_container_doctor (ak_host_check_fn report, void *data)
{
  /* User namespaces: the switches ak_userns_check reads, and a limit of 0. */
  {
    ak_error_t *err = NULL;
    _cleanup_free_ char *max = NULL;
    bool ok = ak_userns_check (&err) == 0;
    _cleanup_free_ char *detail = NULL;
    if (ok && ak_read_file ("/proc/sys/user/max_user_namespaces", &max, NULL, NULL) == 0 && atoi (max) == 0)
      {
        ok = false;
        detail = ak_xstrdup ("user.max_user_namespaces = 0");
        check (report, data, "user namespaces", false, true, detail, "sysctl -w user.max_user_namespaces=15000");
      }
    else
      {
        detail = ok ? ak_xasprintf ("available (max_user_namespaces %d)", max ? atoi (max) : -1)
                    : ak_xstrdup (err->msg);
        check (report, data, "user namespaces", ok, true, detail,
               "sysctl -w kernel.unprivileged_userns_clone=1 (and see the message above)");
      }
    ak_error_free (err);
  }
  /* Landlock: confines file access where the kernel has it. */
  {
    int abi = ak_landlock_abi ();
    _cleanup_free_ char *detail = abi > 0 ? ak_xasprintf ("ABI %d", abi) : ak_xstrdup ("not available");
    check (report, data, "landlock", abi > 0, false, detail,
           "Linux 5.13 or later with landlock in the lsm= boot parameter (e.g. lsm=landlock,lockdown,yama,apparmor)");
  }
  /* seccomp filters. */
  {
    bool ok = prctl (PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    check (report, data, "seccomp", ok, true, ok ? "filters available" : strerror (errno),
           "a kernel built with CONFIG_SECCOMP_FILTER");
  }
  /* Resource limits. */
  {
    _cleanup_free_ char *detail = NULL;
    bool ok = ak_cgroup_probe (&detail);
    check (report, data, "cgroups", ok, false, detail,
           "run as root, or in a delegated cgroup v2 subtree: systemd-run --user --scope -p Delegate=yes agentkernel ...");
  }
  /* User-mode networking. */
  {
    const char *path = NULL;
    ak_net_helper_t h = ak_net_helper (&path);
    _cleanup_free_ char *detail = h != AK_NET_NONE ? ak_xasprintf ("%s", path) : ak_xstrdup ("neither slirp4netns nor pasta found");
    check (report, data, "network helper", h != AK_NET_NONE, true, detail,
           "apt-get install slirp4netns (or passt); without it only --no-network sandboxes run");
  }
  {
    bool ok = access ("/dev/net/tun", R_OK | W_OK) == 0;
    _cleanup_free_ char *detail = ok ? ak_xstrdup ("read-write") : ak_xasprintf ("%s", strerror (errno));
    check (report, data, "/dev/net/tun", ok, true, detail, "chmod 0666 /dev/net/tun (Debian's default mode)");
  }
  /* OCI images are assembled with overlayfs. */
  {
    bool ok = has_filesystem ("overlay");
    check (report, data, "overlayfs", ok, false, ok ? "available" : "not in /proc/filesystems",
           "modprobe overlay (needed for OCI images, not for the host image)");
  }
}
