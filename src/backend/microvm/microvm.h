/* MicroVM backend internals: the guest's boot files, the VMM, the guest init.
 *
 * A sandbox is a QEMU `microvm` machine (virtio-mmio devices only) booting
 * Debian's cloud kernel with an initramfs that agentkernel builds: the
 * static guest init (agentkernel-guest, which becomes the agent) and the
 * kernel modules it needs.  The root filesystem and the workspace are
 * shared from the host by virtiofsd, read-only where the profile says so
 * (enforced on the host: the daemon serves read-only mounts).  The agent
 * speaks the framed protocol of proto/ over a virtio-serial port,
 * multiplexed (mux.h) so that the host's agent socket serves as many
 * connections as the container backend's.
 */
#ifndef AK_MICROVM_H
#define AK_MICROVM_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "backend/backend.h"
#include "backend/container/container.h"
#include "common/error.h"
#include "model/spec.h"

/* The guest's name for the agent port. */
#define AK_MICROVM_PORT "ak.agent"

/* What a VM boots from, found on the host. */
typedef struct ak_vm_assets {
  char *qemu;      /* qemu-system-x86_64 */
  char *virtiofsd; /* /usr/lib/qemu/virtiofsd */
  char *kernel;    /* vmlinuz */
  char *release;   /* the kernel's release (its modules' directory name) */
  char *modules;   /* /lib/modules/<release> */
  char *guest;     /* the static guest init */
  char *initrd;    /* the cached initramfs (ak_vm_initrd) */
  bool kvm;        /* /dev/kvm works */
} ak_vm_assets_t;

void ak_vm_assets_clear (ak_vm_assets_t *a);
/* Finds everything; fails naming what is missing and how to get it. */
int ak_vm_assets_find (ak_vm_assets_t *a, ak_error_t **err);
/* The initramfs for a's kernel and guest init, built once into the cache
 * directory and rebuilt when either changes; sets a->initrd. */
int ak_vm_initrd (ak_vm_assets_t *a, ak_error_t **err);
/* Where built boot files are kept. */
char *ak_vm_cache_dir (void);

/* The most virtiofsd shares of one VM (the root and the workspace
 * among them: check keeps three for its own). */
#define AK_VM_MAX_SHARES 16
/* mke2fs, which makes a persistent sandbox's writable layer (vm.c):
 * at a fixed system path only, never looked up in PATH (a repository's
 * directory on it would plant one).  NULL when there is none. */
const char *ak_vm_find_mke2fs (void);
#define AK_VM_MKE2FS_MISSING                                                                     \
  "mke2fs not found (/usr/sbin/mke2fs, /sbin/mke2fs): a persistent microVM sandbox keeps its " \
  "writable layer in an ext4 image it makes: apt-get install e2fsprogs"

/* Host side: what the backend refuses and what doctor reports of it
 * (assets.c); a VM's processes (vm.c). */
int ak_microvm_check (const ak_spec_t *spec, ak_error_t **err);
void ak_microvm_doctor (ak_host_check_fn report, void *data);
int ak_microvm_run (const ak_spec_t *spec, const ak_stdio_t *stdio, int *status, ak_error_t **err);
int ak_microvm_start (const ak_spec_t *spec, const char *dir, pid_t *supervisor, ak_error_t **err);
int ak_microvm_connect (const char *dir, ak_error_t **err);
int ak_microvm_stop (const char *dir, pid_t supervisor, ak_error_t **err);

/* The VM's network (net.c).  The guest's network in QEMU's user-mode
 * stack: not slirp's default 10.0.2.0/24, so that the guest reaches the
 * namespace's resolver and policy proxy (10.0.2.3, AK_NET_PROXY_ADDR) at
 * the address a container does. */
#define AK_VM_NET_NETWORK "10.0.3.0/24"
#define AK_VM_NET_ADDRESS "10.0.3.15"
#define AK_VM_NET_NETMASK "255.255.255.0"
#define AK_VM_NET_GATEWAY "10.0.3.2"   /* in slirp: the namespace's own loopback */
#define AK_VM_NET_SLIRP_DNS "10.0.3.3" /* slirp's resolver, passed on to the namespace's */

typedef struct ak_vm_net {
  bool on;      /* network on: the policy or NAT below is running */
  int ns;       /* QEMU's network namespace, or -1 */
  pid_t holder; /* a process in it while it is set up, or -1 */
  ak_net_t net; /* the container backend's network of that namespace */
} ak_vm_net_t;

void ak_vm_net_init (ak_vm_net_t *n);
/* What network on needs on this host (nftables, or a NAT helper). */
int ak_vm_net_check (const ak_spec_t *spec, ak_error_t **err);
/* Creates the namespace (empty for network off) and, for network on, its
 * egress policy or NAT and the published ports' forwarder; ready when it
 * returns. */
int ak_vm_net_start (const ak_spec_t *spec, ak_vm_net_t *n, ak_error_t **err);
void ak_vm_net_stop (ak_vm_net_t *n);
/* pid, a child of the supervisor, was reaped: never signalled again. */
void ak_vm_net_reaped (ak_vm_net_t *n, pid_t pid);
/* QEMU's -netdev/-device arguments (none for network off). */
void ak_vm_net_qemu_args (const ak_spec_t *spec, char ***argv);
/* What the guest needs to configure its side: null for network off. */
json_t *ak_vm_net_guest_config (const ak_spec_t *spec, const ak_vm_net_t *n);

/* Warm pool (pool.c): the backend's pool_start and pool_claim (its pool_wait
 * is the container backend's: the same report on the control channel). */
int ak_microvm_pool_start (const ak_spec_t *spec, int claim_listen, pid_t *owner, ak_error_t **err);
int ak_microvm_pool_claim (int ctl, const ak_spec_t *spec, const char *key, const ak_stdio_t *stdio, int *status,
                           ak_error_t **err);

/* What pool.c uses of a VM (vm.c).  A pooled VM boots with no workspace:
 * with mount_cwd, its workspace share serves an empty staging directory
 * whose "w" the claim attaches the claimant's workspace to, in the mount
 * namespace ak_vm_pool_stage_ns names (virtiofsd's own is a slave of it);
 * the guest mounts that share nowhere until the claim (AK_MUX_CLAIM). */
typedef struct ak_vm ak_vm_t;
/* Boots spec's VM (dir: its sockets and logs; parent: the boot is given up
 * when the caller's parent is no longer `parent`, 0: never). */
ak_vm_t *ak_vm_pool_boot (const ak_spec_t *spec, const char *dir, int log, pid_t parent,
                          ak_error_t **err);
int ak_vm_pool_chan (const ak_vm_t *v);      /* the agent port's host end */
pid_t ak_vm_pool_qemu (const ak_vm_t *v);    /* the VMM's pid */
int ak_vm_pool_stage_ns (const ak_vm_t *v);  /* -1 without mount_cwd */
/* Kills every process of the VM. */
void ak_vm_pool_free (ak_vm_t *v);
/* The command over a connection to the VM's agent (what run does). */
int ak_vm_exec (int conn, const ak_spec_t *spec, const ak_stdio_t *io, int *status, ak_error_t **err);
/* The notices a run of spec gives (TCG, no network). */
void ak_vm_warn (const ak_spec_t *spec);

/* The guest init (guest.c): PID 1 of the VM. */
int ak_microvm_guest_main (void);

extern const ak_backend_t ak_microvm_backend;

#endif
