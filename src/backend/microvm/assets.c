/* The microVM backend, host side: what a VM boots from (QEMU, virtiofsd,
 * the guest kernel and init, KVM), found on the host; what the backend
 * refuses to run (check) and what doctor reports of it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/microvm/microvm.h"
#include "common/cleanup.h"
#include "common/util.h"

void
ak_vm_assets_clear (ak_vm_assets_t *a)
{
  free (a->qemu), free (a->virtiofsd), free (a->kernel), free (a->release);
  free (a->modules), free (a->guest), free (a->initrd);
  memset (a, 0, sizeof *a);
}

static char *
which (const char *name)
{
  const char *path = getenv ("PATH");
  _cleanup_free_ char *copy = ak_xstrdup (path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (char *save = NULL, *d = strtok_r (copy, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *p = ak_xasprintf ("%s/%s", d, name);
      if (access (p, X_OK) == 0)
        return p;
      free (p);
    }
  return NULL;
}

/* The newest /boot/vmlinuz-*-cloud-amd64, else the newest vmlinuz. */
static char *
find_kernel (void)
{
  struct dirent **names = NULL;
  int n = scandir ("/boot", &names, NULL, versionsort);
  char *best = NULL, *cloud = NULL;
  for (int i = 0; i < n; i++)
    {
      const char *nm = names[i]->d_name;
      if (strncmp (nm, "vmlinuz-", 8) == 0)
        {
          free (best);
          best = ak_xasprintf ("/boot/%s", nm);
          if (strstr (nm, "-cloud-") != NULL)
            {
              free (cloud);
              cloud = ak_xstrdup (best);
            }
        }
      free (names[i]);
    }
  free (names);
  if (cloud != NULL)
    {
      free (best);
      return cloud;
    }
  return best;
}

/* PVM (kvm_pvm, a nested KVM for virtual machines without hardware
 * virtualisation of their own) runs only guest kernels built for it: a
 * stock kernel stops at its first emulation failure. */
static bool
kvm_is_pvm (void)
{
  return access ("/sys/module/kvm_pvm", F_OK) == 0;
}

static bool
kvm_works (void)
{
  const char *accel = getenv ("AK_MICROVM_ACCEL");
  _cleanup_close_ int fd = -1, vm = -1;
  if (accel != NULL && strcmp (accel, "tcg") == 0)
    return false;
  if (kvm_is_pvm () && (accel == NULL || strcmp (accel, "kvm") != 0))
    return false;
  fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl (fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
    return false;
  vm = ioctl (fd, KVM_CREATE_VM, 0);
  return vm >= 0;
}

int
ak_vm_assets_find (ak_vm_assets_t *a, ak_error_t **err)
{
  const char *k = getenv ("AK_MICROVM_KERNEL"), *g = getenv ("AK_MICROVM_GUEST");
  const char *base;
  memset (a, 0, sizeof *a);
  if ((a->qemu = which ("qemu-system-x86_64")) == NULL)
    return ak_error_set (err, ENOENT, "qemu-system-x86_64 not found: install it (apt-get install "
                                      "qemu-system-x86)");
  a->virtiofsd = ak_xstrdup ("/usr/lib/qemu/virtiofsd");
  if (access (a->virtiofsd, X_OK) < 0)
    return ak_error_set (err, ENOENT, "%s not found: install it (apt-get install qemu-system-x86)",
                         a->virtiofsd);
  a->kernel = k != NULL && *k ? ak_xstrdup (k) : find_kernel ();
  if (a->kernel == NULL || access (a->kernel, R_OK) < 0)
    return ak_error_set (err, ENOENT, "no guest kernel (%s): install one (apt-get install "
                                      "linux-image-cloud-amd64) or set AK_MICROVM_KERNEL",
                         a->kernel ? a->kernel : "/boot/vmlinuz-*");
  base = strrchr (a->kernel, '/') ? strrchr (a->kernel, '/') + 1 : a->kernel;
  if (strncmp (base, "vmlinuz-", 8) != 0)
    return ak_error_set (err, EINVAL, "guest kernel %s: the name must be vmlinuz-RELEASE", a->kernel);
  a->release = ak_xstrdup (base + 8);
  a->modules = ak_xasprintf ("/lib/modules/%s", a->release);
  if (g != NULL && *g)
    a->guest = ak_xstrdup (g);
  else
    {
      char self[4096];
      ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
      if (n > 0)
        {
          self[n] = 0;
          *strrchr (self, '/') = 0;
          a->guest = ak_xasprintf ("%s/agentkernel-guest", self);
        }
      if (a->guest == NULL || access (a->guest, R_OK) < 0)
        {
          free (a->guest);
          a->guest = ak_xstrdup ("/usr/lib/agentkernel/agentkernel-guest");
        }
    }
  if (access (a->guest, R_OK) < 0)
    return ak_error_set (err, ENOENT, "the guest init %s is missing (build it: make; or set "
                                      "AK_MICROVM_GUEST)", a->guest);
  a->kvm = kvm_works ();
  return 0;
}

/* Once per run or start, on the caller's own stream. */
void
ak_vm_warn (const ak_spec_t *spec)
{
  ak_vm_assets_t a;
  if (ak_vm_assets_find (&a, NULL) == 0 && !a.kvm)
    ak_warn ("microvm: KVM is not usable here (%s): the VM runs under TCG emulation, about 10x "
             "slower to boot",
             kvm_is_pvm () ? "/dev/kvm is PVM's, which boots only PVM guest kernels; AK_MICROVM_ACCEL=kvm "
                             "uses it anyway"
                           : "no working /dev/kvm");
  ak_vm_assets_clear (&a);
}

const char *
ak_vm_find_mke2fs (void)
{
  static const char *const paths[] = { "/usr/sbin/mke2fs", "/sbin/mke2fs", NULL };
  for (size_t i = 0; paths[i]; i++)
    if (access (paths[i], X_OK) == 0)
      return paths[i];
  return NULL;
}

int
ak_microvm_check (const ak_spec_t *spec, ak_error_t **err)
{
  ak_vm_assets_t a;
  int rc;
  if (geteuid () != 0)
    return ak_error_set (err, EPERM, "the microvm backend runs only as root for now (its file "
                                     "shares need virtiofsd, which needs root): use sudo, or "
                                     "--backend container");
  if (spec->n_files > 0 || spec->rootfs != NULL)
    return ak_error_coded (err, EINVAL, "the microvm backend does not support [[files]] or --rootfs yet: "
                                      "use --backend container");
  if (ak_vm_net_check (spec, err) < 0)
    return -1;
  /* A persistent sandbox (create, start): its layer needs mke2fs, said at
   * create rather than at the first start. */
  if (spec->name != NULL && ak_vm_find_mke2fs () == NULL)
    return ak_error_set (err, 0, AK_VM_MKE2FS_MISSING);
  if (spec->n_mounts + 3 > AK_VM_MAX_SHARES)
    return ak_error_coded (err, EINVAL, "the microvm backend shares at most %d volumes", AK_VM_MAX_SHARES - 3);
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      struct stat vs;
      if (stat (spec->mounts[i].source, &vs) == 0 && !S_ISDIR (vs.st_mode))
        return ak_error_coded (err, EINVAL, "volume %s: the microvm backend shares directories only",
                             spec->mounts[i].source);
    }
  /* Root in the guest reads what its root share's daemon reads: the host's
   * view is served by host root, an image only its own files. */
  if (spec->as_root && spec->image_digest == NULL)
    return ak_error_set (err, EINVAL, "the microvm backend runs commands only as the sandbox user "
                                      "on the host's view (no --root: it is served by host root, and root "
                                      "in the guest would read what host root reads); --root works with an "
                                      "image as the root (--image)");
  rc = ak_vm_assets_find (&a, err);
  ak_vm_assets_clear (&a);
  return rc;
}

void
ak_microvm_doctor (ak_host_check_fn report, void *data)
{
  ak_vm_assets_t a;
  ak_error_t *err = NULL;
  int rc = ak_vm_assets_find (&a, &err);
  ak_host_check_t c = { .name = "microvm backend: QEMU, guest kernel, guest init", .ok = rc == 0, .needed = false,
                        .detail = rc == 0 ? a.kernel : err->msg,
                        .fix = "apt-get install qemu-system-x86 linux-image-cloud-amd64" };
  report (&c, data);
  if (rc == 0)
    {
      ak_host_check_t k = { .name = "microvm backend: KVM", .ok = a.kvm, .needed = false,
                            .detail = a.kvm ? "/dev/kvm works"
                                      : kvm_is_pvm () ? "/dev/kvm is PVM's (kvm_pvm), which boots only PVM "
                                                        "guest kernels: guests run under TCG (slow)"
                                                      : "no usable /dev/kvm: guests run under TCG (slow)",
                            .fix = "enable virtualization (KVM) for this machine" };
      report (&k, data);
    }
  {
    const char *mke2fs = ak_vm_find_mke2fs ();
    ak_host_check_t m = { .name = "microvm backend: mke2fs", .ok = mke2fs != NULL, .needed = false,
                          .detail = mke2fs != NULL ? mke2fs
                                                   : "not found: persistent microVM sandboxes (create) "
                                                     "need it for their writable layer",
                          .fix = "apt-get install e2fsprogs" };
    report (&m, data);
  }
  ak_error_free (err);
  ak_vm_assets_clear (&a);
}
