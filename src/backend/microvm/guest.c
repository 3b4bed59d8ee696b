/* The guest init: PID 1 of a microVM.
 *
 * 1. Mount /dev, /proc, /sys of the initramfs; load the modules it carries.
 * 2. Open the agent port (virtio-serial, named AK_MICROVM_PORT) and read
 *    the host's CONFIG: the sandbox's spec and what the host shares.
 * 3. Build the root: the host's read-only share (tag "root") under a
 *    writable layer on tmpfs (overlay), read-only when the profile says so;
 *    the workspace share (tag "ws") at /workspace; own /proc, /dev, /tmp.
 *    Under a command policy, its covers and Landlock ruleset (execpolicy.c)
 *    on the finished root.
 * 4. The network: loopback up; for network on, the NIC (eth0, QEMU's
 *    user-mode network: net.c) gets its address and default route, and
 *    /etc/resolv.conf the resolver the host names.
 *    Move into the root; report READY (or FAIL with the reason).
 * 5. Serve: each stream the host opens is an agent session (agent/), in a
 *    process of its own with no_new_privs, the command policy's Landlock
 *    domain and exec listener (its watcher reports to the host: AUDIT)
 *    and the sandbox's seccomp filter; commands run as the sandbox user
 *    (1000).
 * 6. On STOP or when the host goes: end every process, power off.
 *
 * Everything here runs inside the guest: the guest kernel is the boundary,
 * and nothing the guest does reaches the host beyond the shares (served
 * read-only by the host where they are read-only) and the port.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <net/route.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/session.h"
#include "backend/container/container.h"
#include "backend/microvm/microvm.h"
#include "backend/microvm/mux.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"
#include "model/spec_json.h"

typedef struct guest {
  int port;
  int sigfd;
  ak_spec_t spec;
  ak_agent_conf_t conf;
  int seccomp_fds[2];
  int n_seccomp;
  bool stopping;
  int stage;              /* warm pool: the staging share, mounted nowhere (-1: none) */
  char *stage_dest;       /* where the claim's workspace goes */
  bool claimed;
  int exec_ruleset;       /* the command policy's Landlock ruleset (-1: no policy) */
  int exec_info;          /* what its watcher needs (execpolicy.c) */
  int audit[2];           /* the watchers' reports: [0] read by the init, [1] theirs */
  int events;             /* epoll: sigfd and audit[0], the loop's extra fd */
} guest_t;

/* The guest's half of a watcher's report (the audit hook of a watcher
 * process): one datagram for the init to forward to the host. */
static int audit_out = -1;

static void __attribute__ ((format (printf, 1, 2)))
msg (const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  dprintf (2, "agentkernel-guest: %s\n", buf);
}

static _Noreturn void
power_off (void)
{
  sync ();
  reboot (RB_AUTOBOOT); /* QEMU runs with -no-reboot: a reset ends it */
  for (;;)
    pause ();
}

/* The kernel command line's "MODULE.param=value" words for one module
 * (modprobe's job, done here): QEMU describes the virtio-mmio devices of
 * a machine without ACPI as virtio_mmio.device= parameters. */
static char *
module_params (const char *file)
{
  char cmdline[4096] = "", name[300];
  const char *base = strchr (file, '-') ? strchr (file, '-') + 1 : file;
  size_t nl;
  char *out = ak_xstrdup ("");
  int fd = open ("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read (fd, cmdline, sizeof cmdline - 1);
  if (fd >= 0)
    close (fd);
  if (n <= 0)
    return out;
  cmdline[n] = 0;
  snprintf (name, sizeof name, "%s", base);
  if (strstr (name, ".ko") != NULL)
    *strstr (name, ".ko") = 0;
  nl = strlen (name);
  for (char *save = NULL, *w = strtok_r (cmdline, " \n", &save); w; w = strtok_r (NULL, " \n", &save))
    if (strncmp (w, name, nl) == 0 && w[nl] == '.')
      {
        char *o = ak_xasprintf ("%s%s%s", out, *out ? " " : "", w + nl + 1);
        free (out);
        out = o;
      }
  return out;
}

static void
load_modules (void)
{
  struct dirent **names = NULL;
  int n = scandir ("/mods", &names, NULL, alphasort);
  for (int i = 0; i < n; i++)
    {
      if (names[i]->d_name[0] != '.')
        {
          _cleanup_free_ char *p = ak_xasprintf ("/mods/%s", names[i]->d_name);
          _cleanup_close_ int fd = open (p, O_RDONLY | O_CLOEXEC);
          _cleanup_free_ char *params = module_params (names[i]->d_name);
          if (fd < 0 || (syscall (SYS_finit_module, fd, params, 0) < 0 && errno != EEXIST))
            msg ("cannot load module %s", p);
        }
      free (names[i]);
    }
  free (names);
}

/* The port named AK_MICROVM_PORT; the device appears once the driver has
 * talked with QEMU. */
static int
open_port (void)
{
  for (int tries = 0; tries < 1000; tries++)
    {
      DIR *d = opendir ("/sys/class/virtio-ports");
      struct dirent *e;
      while (d != NULL && (e = readdir (d)) != NULL)
        {
          char name[64] = "";
          _cleanup_free_ char *np = ak_xasprintf ("/sys/class/virtio-ports/%s/name", e->d_name);
          _cleanup_close_ int nf = open (np, O_RDONLY | O_CLOEXEC);
          ssize_t r = nf < 0 ? -1 : read (nf, name, sizeof name - 1);
          if (r > 0 && strncmp (name, AK_MICROVM_PORT "\n", strlen (AK_MICROVM_PORT) + 1) == 0)
            {
              _cleanup_free_ char *dev = ak_xasprintf ("/dev/%s", e->d_name);
              int fd = open (dev, O_RDWR | O_CLOEXEC);
              closedir (d);
              return fd;
            }
        }
      if (d != NULL)
        closedir (d);
      usleep (10000);
    }
  return -1;
}

static int
mnt (const char *src, const char *dst, const char *type, unsigned long flags, const char *data, ak_error_t **err)
{
  if (mkdir (dst, 0755) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "mkdir %s", dst);
  if (mount (src, dst, type, flags, data) < 0)
    return ak_error_set (err, errno, "mount %s on %s", type ? type : src, dst);
  return 0;
}

/* Directories at every component of path (under /mnt/root), made where
 * missing.  A persistent layer holds what an earlier run of the sandbox
 * left: in the layer (not in a share mounted there), a link or file where
 * a mount point or /etc is expected is removed rather than followed. */
static int
plain_dirs (const char *path)
{
  _cleanup_free_ char *p = ak_xstrdup (path);
  size_t skip = strlen ("/mnt/root");
  struct stat st;
  dev_t layer, parent;
  if (strncmp (p, "/mnt/root", skip) != 0 || stat ("/mnt/root", &st) < 0)
    return errno = EINVAL, -1;
  layer = parent = st.st_dev;
  for (char *c = p + skip;; c++)
    if (*c == '/' || *c == 0)
      {
        char was = *c;
        *c = 0;
        if (c > p + skip)
          {
            bool in_layer = parent == layer;
            if (in_layer && lstat (p, &st) == 0 && !S_ISDIR (st.st_mode) && unlink (p) < 0)
              return -1;
            if (mkdir (p, 0755) < 0 && errno != EEXIST)
              return -1;
            if (in_layer && (lstat (p, &st) < 0 || !S_ISDIR (st.st_mode)))
              return errno = ENOTDIR, -1;
            /* A directory: its device tells whether a share is mounted here. */
            parent = in_layer ? st.st_dev : parent;
          }
        *c = was;
        if (was == 0)
          return 0;
      }
}

/* The writable layer: a persistent sandbox's disk (an ext4 image of its
 * own on the host, virtio-blk), else tmpfs of disk_mb. */
static int
layer_mount (const json_t *cfg, unsigned long long disk, ak_error_t **err)
{
  static const char *const dirs[] = { "/mnt/rw/upper", "/mnt/rw/work" };
  if (json_is_true (json_object_get (cfg, "layer_disk")))
    {
      /* Named by the kernel once the driver found it (no udev). */
      for (int i = 0; i < 1000 && access ("/dev/vda", F_OK) < 0; i++)
        usleep (10000);
      if (mnt ("/dev/vda", "/mnt/rw", "ext4", MS_NOSUID | MS_NODEV, NULL, err) < 0)
        return ak_error_prefix (err, "the sandbox's writable layer"), -1;
    }
  else
    {
      _cleanup_free_ char *opts = disk > 0 ? ak_xasprintf ("mode=0755,size=%llum", disk) : ak_xstrdup ("mode=0755");
      if (mnt ("rw", "/mnt/rw", "tmpfs", 0, opts, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < 2; i++)
    {
      struct stat st;
      if (mkdir (dirs[i], 0755) < 0 && errno != EEXIST)
        return ak_error_set (err, errno, "mkdir %s", dirs[i]);
      if (lstat (dirs[i], &st) < 0 || !S_ISDIR (st.st_mode))
        return ak_error_set (err, ENOTDIR, "%s is not a directory", dirs[i]);
    }
  return 0;
}

/* The sandbox's own user database: root and the sandbox user. */
static int
write_etc (const ak_spec_t *spec, const char *resolv, ak_error_t **err)
{
  static const struct {
    const char *name, *text;
  } files[] = {
    { "/mnt/root/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
                              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" },
    { "/mnt/root/etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n" },
  };
  const char *hn = spec->hostname ? spec->hostname : "agentkernel";
  _cleanup_free_ char *hosts = ak_xasprintf ("127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n", hn);
  _cleanup_free_ char *hname = ak_xasprintf ("%s\n", hn);
  if (plain_dirs ("/mnt/root/etc") < 0)
    return ak_error_set (err, errno, "mkdir /etc");
  for (size_t i = 0; i < 5; i++)
    {
      static const char *const more[] = { "/mnt/root/etc/hosts", "/mnt/root/etc/hostname",
                                          "/mnt/root/etc/resolv.conf" };
      const char *path = i < 2 ? files[i].name : more[i - 2];
      /* Without a network there is no resolver to name. */
      const char *text = i < 2 ? files[i].text : i == 2 ? hosts : i == 3 ? hname : resolv ? resolv : "";
      _cleanup_close_ int fd = -1;
      (void) unlink (path);
      fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text))
        return ak_error_set (err, errno, "write %s", path + 9);
    }
  return 0;
}

static int
if_set (int s, const char *name, unsigned long req, const char *addr)
{
  struct ifreq ifr = { 0 };
  struct sockaddr_in *sin = (struct sockaddr_in *) &ifr.ifr_addr;
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (req == SIOCSIFFLAGS)
    {
      if (ioctl (s, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
      ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    }
  else
    {
      sin->sin_family = AF_INET;
      inet_pton (AF_INET, addr, &sin->sin_addr);
    }
  return ioctl (s, req, &ifr);
}

/* Step 4's network: loopback always; for network on (cfg's "net" is an
 * object), eth0 on QEMU's user-mode network with its default route. */
static int
net_up (const json_t *cfg, ak_error_t **err)
{
  _cleanup_close_ int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct rtentry rt = { 0 };
  char dev[] = "eth0";
  if (s < 0)
    return ak_error_set (err, errno, "socket");
  if (if_set (s, "lo", SIOCSIFFLAGS, NULL) < 0)
    return ak_error_set (err, errno, "bring loopback up");
  if (!json_is_object (json_object_get (cfg, "net")))
    return 0;
  /* The driver registered the NIC when its module loaded; it is named
   * by the kernel (no udev here). */
  for (int i = 0; i < 200 && if_nametoindex (dev) == 0; i++)
    usleep (10000);
  if (if_set (s, dev, SIOCSIFADDR, AK_VM_NET_ADDRESS) < 0 || if_set (s, dev, SIOCSIFNETMASK, AK_VM_NET_NETMASK) < 0
      || if_set (s, dev, SIOCSIFFLAGS, NULL) < 0)
    return ak_error_set (err, errno, "configure the network interface %s", dev);
  ((struct sockaddr_in *) &rt.rt_dst)->sin_family = AF_INET;
  ((struct sockaddr_in *) &rt.rt_genmask)->sin_family = AF_INET;
  ((struct sockaddr_in *) &rt.rt_gateway)->sin_family = AF_INET;
  inet_pton (AF_INET, AK_VM_NET_GATEWAY, &((struct sockaddr_in *) &rt.rt_gateway)->sin_addr);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = dev;
  if (ioctl (s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "the default route");
  return 0;
}

/* The private layer is the sandbox user's, as a container's is: the root,
 * its top-level directories and the sandbox's own /etc files belong to the
 * sandbox user (a change of owner there is a copy-up: the host view below
 * is untouched); what lies deeper in the host view keeps its owner.  Mount
 * points (/proc, /sys, /dev, the shares) are left as mounted. */
static int
own_private_layer (ak_error_t **err)
{
  static const char *const etc[] = { "passwd", "group", "hosts", "hostname", "resolv.conf" };
  _cleanup_close_ int root = open ("/mnt/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat rst;
  DIR *d;
  struct dirent *e;
  if (root < 0 || fstat (root, &rst) < 0 || chown ("/mnt/root", 1000, 1000) < 0)
    return ak_error_set (err, errno, "chown the private layer's /");
  if ((d = opendir ("/mnt/root")) == NULL)
    return ak_error_set (err, errno, "read the private layer's /");
  while ((e = readdir (d)) != NULL)
    {
      struct stat st;
      if (e->d_name[0] == '.' || fstatat (root, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode)
          || st.st_dev != rst.st_dev)
        continue;
      if (fchownat (root, e->d_name, 1000, 1000, AT_SYMLINK_NOFOLLOW) < 0 && errno != EROFS)
        {
          ak_error_set (err, errno, "chown the private layer's /%s", e->d_name);
          closedir (d);
          return -1;
        }
    }
  closedir (d);
  for (size_t i = 0; i < sizeof etc / sizeof etc[0]; i++)
    {
      _cleanup_free_ char *p = ak_xasprintf ("etc/%s", etc[i]);
      if (fchownat (root, p, 1000, 1000, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
        return ak_error_set (err, errno, "chown /%s", p);
    }
  return 0;
}

/* Step 3. */
static int
build_root (const json_t *cfg, const ak_spec_t *spec, guest_t *g, ak_error_t **err)
{
  json_t *shares = json_object_get (cfg, "shares"), *sh;
  const char *resolv = json_string_value (json_object_get (json_object_get (cfg, "net"), "resolv"));
  size_t i;
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);
  unsigned long long disk = spec->res.disk_mb;

  if (mnt ("s0", "/mnt/lower", "virtiofs", MS_RDONLY | MS_NODEV | MS_NOSUID, NULL, err) < 0
      || layer_mount (cfg, disk, err) < 0)
    return -1;
  if (mnt ("overlay", "/mnt/root", "overlay", MS_NOSUID | MS_NODEV,
           "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work", err) < 0)
    return -1;
  /* The shares, at their places.  Read-only ones are read-only on the
   * host (the daemon serves a read-only mount): they are deliberately not
   * marked read-only here, so that nothing relies on the guest for it. */
  json_array_foreach (shares, i, sh)
    {
      const char *tag = json_string_value (json_object_get (sh, "tag"));
      const char *dest = json_string_value (json_object_get (sh, "dest"));
      _cleanup_free_ char *at = NULL;
      if (tag == NULL || dest == NULL || dest[0] != '/' || strstr (dest, "..") != NULL)
        return ak_error_set (err, EINVAL, "bad share in the configuration");
      at = ak_xasprintf ("/mnt/root%s", dest);
      if (plain_dirs (at) < 0)
        return ak_error_set (err, errno, "mkdir %s", dest);
      /* Warm pool: mounted with the claim (stage_open). */
      if (json_is_true (json_object_get (sh, "stage")))
        continue;
      if (mount (tag, at, "virtiofs", MS_NODEV | MS_NOSUID, NULL) < 0)
        return ak_error_set (err, errno, "mount the share at %s", dest);
    }
  {
    static const char *const points[] = { "/mnt/root/proc", "/mnt/root/sys", "/mnt/root/dev", "/mnt/root/tmp" };
    for (size_t k = 0; k < 4; k++)
      if (plain_dirs (points[k]) < 0)
        return ak_error_set (err, errno, "mkdir %s", points[k] + 9);
  }
  if (mnt ("proc", "/mnt/root/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0
      || mnt ("sys", "/mnt/root/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0
      || mnt ("dev", "/mnt/root/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL, err) < 0
      || mnt ("devpts", "/mnt/root/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620", err) < 0
      || mnt ("shm", "/mnt/root/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err) < 0
      || mnt ("tmp", "/mnt/root/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
              disk > 0 ? "mode=1777,size=50%" : "mode=1777", err) < 0)
    return -1;
  /* /dev/ptmx of the new devpts (the devtmpfs node is the initial one). */
  (void) unlink ("/mnt/root/dev/ptmx");
  if (symlink ("pts/ptmx", "/mnt/root/dev/ptmx") < 0)
    return ak_error_set (err, errno, "symlink /dev/ptmx");
  if (write_etc (spec, resolv, err) < 0 || own_private_layer (err) < 0)
    return -1;
  /* The sandbox user's home, in the writable layer; where the home share
   * is mounted there (read-only on the host, its owner already the
   * sandbox user's), it stays as served. */
  if (plain_dirs ("/mnt/root/home/user") < 0 && errno != EROFS)
    return ak_error_set (err, errno, "mkdir /home/user");
  (void) chmod ("/mnt/root/home", 0755); /* the host view shows /home empty, mode 0 */
  if (lchown ("/mnt/root/home/user", 1000, 1000) < 0 && errno != EROFS)
    return ak_error_set (err, errno, "chown /home/user");
  /* The command policy, as a container's: the blocked programs covered
   * (the cover file lives in the initramfs, out of the new root) and the
   * execute rights decided on the finished view, as it is at this start. */
  if (ak_cmdpolicy_active (&spec->sec.commands))
    {
      _cleanup_close_ int rfd = open ("/mnt/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rfd < 0)
        return ak_error_set (err, errno, "open the new root");
      if (ak_execpolicy_prepare (rfd, spec, 1000, json_is_true (json_object_get (cfg, "root_ok")),
                                 &g->exec_ruleset, &g->exec_info, err)
          < 0)
        return -1;
    }
  if (chdir ("/mnt/root") < 0 || mount (".", "/", NULL, MS_MOVE, NULL) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    return ak_error_set (err, errno, "switch to the new root");
  if (ro && mount (NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
    return ak_error_set (err, errno, "make the root read-only");
  return 0;
}

/* Warm pool: the staging share, mounted where only this process reaches
 * it (beneath the sandbox's root, which covers it), for the claim.  Before
 * build_root. */
static int
stage_open (const json_t *cfg, guest_t *g, ak_error_t **err)
{
  json_t *shares = json_object_get (cfg, "shares"), *sh;
  size_t i;
  json_array_foreach (shares, i, sh)
    if (json_is_true (json_object_get (sh, "stage")))
      {
        const char *tag = json_string_value (json_object_get (sh, "tag"));
        const char *dest = json_string_value (json_object_get (sh, "dest"));
        if (tag == NULL || dest == NULL || mnt (tag, "/mnt/stage", "virtiofs", MS_NOSUID | MS_NODEV, NULL, err) < 0)
          return ak_error_prefix (err, "the workspace's staging share"), -1;
        g->stage = open ("/mnt/stage", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (g->stage < 0)
          return ak_error_set (err, errno, "open the workspace's staging share");
        g->stage_dest = ak_xstrdup (dest);
      }
  return 0;
}

static void
strv_from_json (char ***out, const json_t *a)
{
  size_t i;
  json_t *v;
  ak_strv_free (*out);
  *out = NULL;
  json_array_foreach (a, i, v)
    if (json_is_string (v))
      ak_strv_push (out, json_string_value (v));
}

/* A claim (warm pool), before any session: the claimant's environment,
 * and its workspace, which the host attached under the staging share. */
static int
claim (guest_t *g, const uint8_t *p, size_t len, ak_error_t **err)
{
  json_t *j = json_loadb ((const char *) p, len, 0, NULL);
  int rc = -1;
  if (g->claimed || j == NULL)
    {
      ak_error_set (err, EINVAL, "claim: %s", g->claimed ? "claimed already" : "bad request");
      goto out;
    }
  g->claimed = true;
  strv_from_json (&g->spec.env, json_object_get (j, "env"));
  strv_from_json (&g->spec.host_env, json_object_get (j, "host_env"));
  if (g->stage >= 0)
    {
      /* A name looked up for the first time: nothing cached hides the
       * tree attached to it. */
      _cleanup_close_ int tree = ak_open_tree (g->stage, "w", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (tree < 0)
        {
          ak_error_set (err, errno, "claim: the workspace");
          goto out;
        }
      if (ak_move_mount (tree, "", AT_FDCWD, g->stage_dest, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        {
          ak_error_set (err, errno, "claim: mount the workspace at %s", g->stage_dest);
          goto out;
        }
      /* The staging share is done with: gone from this namespace. */
      {
        _cleanup_free_ char *self = ak_xasprintf ("/proc/self/fd/%d", g->stage);
        (void) umount2 (self, MNT_DETACH);
      }
      ak_closep (&g->stage);
    }
  rc = 0;
out:
  json_decref (j);
  return rc;
}

static void
audit_send (const char *event, const char *sandbox, json_t *fields)
{
  json_t *j = json_pack ("{s:s, s:o}", "event", event, "fields", fields);
  char *text = j ? json_dumps (j, JSON_COMPACT) : NULL;
  (void) sandbox; /* the host names its sandbox itself */
  if (text != NULL && audit_out >= 0)
    (void) send (audit_out, text, strlen (text), MSG_NOSIGNAL);
  free (text);
  json_decref (j);
}

/* The exec watcher of one session (execwatch.c), a process of its own
 * outside the policy's domain, reparented to the init: answers the
 * listener until no process uses the filter any more. */
static _Noreturn void
watcher (guest_t *g, int sock, int session)
{
  int fds[2], type = 0, value = 0, listener = -1;
  size_t n = 2;
  ak_error_t *err = NULL;
  ak_execwatch_t *w;
  close (session); /* the stream ends with the session, not with this */
  if (ak_sync_recv (sock, &type, &value, NULL, 0, fds, &n) != 1 || type != AK_SYNC_WATCH || n != 1)
    _exit (1);
  close (sock);
  listener = fds[0];
  audit_out = g->audit[1];
  ak_backend_audit_hook = audit_send;
  w = ak_execwatch_new (&g->spec, listener, dup (g->exec_info), &err);
  if (w == NULL)
    {
      msg ("%s", err->msg);
      _exit (1);
    }
  for (;;)
    {
      struct pollfd p = { .fd = listener, .events = POLLIN };
      if (poll (&p, 1, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (p.revents & POLLIN)
        ak_execwatch_handle (w);
      else if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        break;
    }
  ak_execwatch_free (w);
  _exit (0);
}

/* In a session's process (session: its socket), after no_new_privs: its
 * watcher started, the command policy's Landlock domain entered and the
 * exec listener handed to the watcher, before the sandbox's own filters. */
static int
policy_enter (guest_t *g, int session, ak_error_t **err)
{
  int sp[2], st = 0, listener;
  pid_t pid;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    return ak_error_set (err, errno, "command policy: socketpair");
  pid = fork ();
  if (pid < 0)
    return ak_error_set (err, errno, "command policy: fork the exec watcher");
  if (pid == 0)
    {
      /* Twice: the watcher is the init's child, never the session's. */
      pid_t w = fork ();
      if (w == 0)
        {
          close (sp[0]);
          watcher (g, sp[1], session);
        }
      _exit (w < 0);
    }
  close (sp[1]);
  if (waitpid (pid, &st, 0) < 0 || !WIFEXITED (st) || WEXITSTATUS (st) != 0)
    {
      close (sp[0]);
      return ak_error_set (err, ECHILD, "command policy: the exec watcher did not start");
    }
  if (ak_execpolicy_apply (g->exec_ruleset, err) < 0)
    {
      close (sp[0]);
      return -1;
    }
  g->exec_ruleset = -1;
  listener = ak_execwatch_install (err);
  if (listener < 0)
    {
      close (sp[0]);
      return -1;
    }
  if (ak_sync_send (sp[0], AK_SYNC_WATCH, 0, NULL, &listener, 1) < 0)
    {
      close (sp[0]), close (listener);
      return ak_error_set (err, errno, "command policy: hand the exec listener to its watcher");
    }
  close (sp[0]), close (listener);
  close (g->exec_info);
  g->exec_info = -1;
  return 0;
}

static int
on_open (ak_mux_t *m, uint32_t id)
{
  guest_t *g = m->data;
  int sv[2];
  pid_t pid;
  if (g->stopping || socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -1;
  pid = fork ();
  if (pid < 0)
    {
      close (sv[0]), close (sv[1]);
      return -1;
    }
  if (pid == 0)
    {
      ak_error_t *err = NULL;
      sigset_t all;
      sigemptyset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      close (g->port);
      close (g->sigfd);
      if (g->events != g->sigfd)
        close (g->events);
      if (g->audit[0] >= 0)
        close (g->audit[0]);
      close (sv[0]);
      ak_mux_close_all (m);
      /* Every command of the sandbox runs under these (the agent session
       * itself too: nothing it does needs more). */
      if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit (125);
      if (g->exec_ruleset >= 0 && policy_enter (g, sv[1], &err) < 0)
        {
          msg ("%s", err->msg);
          _exit (125);
        }
      if (g->audit[1] >= 0)
        close (g->audit[1]);
      for (int i = 0; i < g->n_seccomp; i++)
        if (ak_seccomp_load (g->seccomp_fds[i], &err) < 0)
          _exit (125);
      _exit (ak_session_serve (sv[1], &g->conf));
    }
  close (sv[1]);
  return sv[0];
}

static void
begin_stop (guest_t *g)
{
  if (g->stopping)
    return;
  g->stopping = true;
  kill (-1, SIGTERM);
}

static int
on_control (ak_mux_t *m, uint8_t op, const uint8_t *p, size_t len)
{
  if (op == AK_MUX_CLAIM)
    {
      ak_error_t *err = NULL;
      if (claim (m->data, p, len, &err) < 0)
        {
          (void) ak_mux_send (m->chan, AK_MUX_FAIL, 0, err->msg, strlen (err->msg));
          ak_error_free (err);
        }
      else
        (void) ak_mux_send (m->chan, AK_MUX_READY, 0, NULL, 0);
      return 0;
    }
  if (op != AK_MUX_STOP)
    return 0;
  begin_stop (m->data);
  /* Nothing left to wait for: done now. */
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  return waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD ? 1 : 0;
}

static int
on_signal (ak_mux_t *m)
{
  guest_t *g = m->data;
  struct signalfd_siginfo si;
  /* The watchers' reports, for the host's audit log. */
  if (g->audit[0] >= 0)
    for (;;)
      {
        static char buf[16384];
        ssize_t n = recv (g->audit[0], buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
        if (n <= 0)
          break;
        if ((size_t) n <= sizeof buf)
          (void) ak_mux_send (m->chan, AK_MUX_AUDIT, 0, buf, (size_t) n);
      }
  if (read (g->sigfd, &si, sizeof si) != sizeof si)
    return 0;
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  if (si.ssi_signo != SIGCHLD)
    begin_stop (g);
  if (g->stopping && waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD)
    return 1;
  return 0;
}

static void
fail (int port, ak_error_t *err)
{
  const char *m = err ? err->msg : "setup failed";
  msg ("%s", m);
  if (port >= 0)
    (void) ak_mux_send (port, AK_MUX_FAIL, 0, m, strlen (m));
  power_off ();
}

int
ak_microvm_guest_main (void)
{
  guest_t g = { .port = -1, .sigfd = -1, .stage = -1, .exec_ruleset = -1, .exec_info = -1,
                .audit = { -1, -1 }, .events = -1 };
  ak_error_t *err = NULL;
  uint8_t op = 0, *p = NULL;
  uint32_t id;
  size_t len;
  json_t *cfg;
  sigset_t mask;

  if (getpid () != 1)
    {
      msg ("%s", "runs only as the init of a microVM");
      return 125;
    }
  /* 1. */
  (void) mount ("dev", "/dev", "devtmpfs", MS_NOSUID, NULL);
  (void) mount ("proc", "/proc", "proc", 0, NULL);
  (void) mount ("sys", "/sys", "sysfs", 0, NULL);
  load_modules ();
  /* 2. */
  if ((g.port = open_port ()) < 0)
    {
      char cl[1024] = "";
      int fd = open ("/proc/cmdline", O_RDONLY | O_CLOEXEC);
      if (fd >= 0 && read (fd, cl, sizeof cl - 1) < 0)
        cl[0] = 0;
      msg ("no agent port " AK_MICROVM_PORT " (virtio devices: %s; command line: %s)",
           access ("/sys/bus/virtio/devices/virtio0", F_OK) == 0 ? "some" : "none", cl);
      power_off ();
    }
  if (ak_mux_recv (g.port, &op, &id, &p, &len) != 1 || op != AK_MUX_CONFIG)
    fail (g.port, NULL);
  cfg = json_loadb ((const char *) p, len, 0, NULL);
  free (p);
  ak_spec_init (&g.spec);
  if (cfg == NULL || ak_spec_from_json (json_object_get (cfg, "spec"), &g.spec, &err) < 0)
    fail (g.port, err);
  /* 3. */
  if (stage_open (cfg, &g, &err) < 0 || build_root (cfg, &g.spec, &g, &err) < 0)
    fail (g.port, err);
  /* 4. The network. */
  if (net_up (cfg, &err) < 0)
    fail (g.port, err);
  {
    const char *hn = g.spec.hostname ? g.spec.hostname : "agentkernel";
    if (sethostname (hn, strlen (hn)) < 0)
      msg ("sethostname: %s", strerror (errno));
  }
  {
    int n = ak_seccomp_compile (&g.spec, g.seccomp_fds, &err);
    if (n < 0)
      fail (g.port, err);
    g.n_seccomp = n;
  }
  /* uid 0 only where the host says the root is an image (never the host's
   * view, which host root serves). */
  g.conf = (ak_agent_conf_t){ .spec = &g.spec, .user_uid = 1000, .user_gid = 1000,
                              .can_root = json_is_true (json_object_get (cfg, "root_ok")) };
  json_decref (cfg);
  /* 4. */
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  g.sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  g.events = g.sigfd;
  if (g.exec_ruleset >= 0)
    {
      struct epoll_event ev = { .events = EPOLLIN };
      g.events = epoll_create1 (EPOLL_CLOEXEC);
      if (g.events < 0 || socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, g.audit) < 0
          || epoll_ctl (g.events, EPOLL_CTL_ADD, g.sigfd, &ev) < 0
          || epoll_ctl (g.events, EPOLL_CTL_ADD, g.audit[0], &ev) < 0)
        {
          ak_error_set (&err, errno, "command policy: the exec watchers' channel");
          fail (g.port, err);
        }
    }
  if (ak_mux_send (g.port, AK_MUX_READY, 0, NULL, 0) < 0)
    power_off ();
  /* 5. */
  {
    ak_mux_t m = { .chan = g.port, .listen_fd = -1, .extra_fd = g.events, .data = &g,
                   .on_open = on_open, .on_control = on_control, .on_extra = on_signal };
    (void) ak_mux_run (&m);
  }
  /* 6. */
  begin_stop (&g);
  for (int i = 0; i < 30; i++)
    {
      while (waitpid (-1, NULL, WNOHANG) > 0)
        ;
      if (waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD)
        break;
      usleep (100000);
    }
  kill (-1, SIGKILL);
  power_off ();
}
