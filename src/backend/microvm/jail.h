/* The VMM's confinement, as Firecracker's jailer does it.
 *
 * Each VM holds host ids of its own, from a range that neither the
 * container backend (1000000000, 1000001000) nor any user account uses,
 * for as long as its supervisor lives: QEMU runs as one, and the other is
 * what the guest's root becomes in the shares' virtiofsd user namespaces.
 * Two live VMs never share one, so a guest that escapes into its QEMU is
 * nobody to any other VM or sandbox.
 *
 * QEMU itself (ak_vm_jail_exec, in the child, after it joined the VM's
 * network namespace, if any, and before exec) runs:
 *   - in PID (from its clone: AK_VM_JAIL_CLONE), mount, IPC and UTS
 *     namespaces of its own; the network namespace is the caller's business;
 *   - with an empty read-only tmpfs as its root (pivot_root) holding only
 *     /usr read-only (its program, libraries, firmware and modules), the
 *     kernel and initramfs at /boot (bound from their open files), and
 *     /dev/kvm when KVM is used; every other file it uses is an inherited
 *     descriptor;
 *   - as the VM's unprivileged host id (no capability; the kvm group only
 *     when KVM is used), no_new_privs, no core dumps, at most
 *     AK_VM_JAIL_NOFILE descriptors;
 *   - under the container backend's moderate seccomp filter (mount API,
 *     namespaces, ptrace, process_vm_*, bpf, keyctl, kexec, modules,
 *     perf_event_open, userfaultfd, io_uring refused) and one of its own
 *     refusing every exec but the one that starts it;
 *   - with QEMU's own -sandbox on top (spawn, privilege changes, obsolete
 *     calls and resource control refused once it is running).
 */
#ifndef AK_MICROVM_JAIL_H
#define AK_MICROVM_JAIL_H

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* The range: slot k holds BASE + 2k (QEMU) and BASE + 2k + 1 (the guest's
 * root in the shares). */
#define AK_VM_ID_BASE 1100000000u
#define AK_VM_ID_SLOTS 32768u
/* One lock file per slot, machine-wide (ids are machine-wide, whatever
 * state directory a caller uses), flock'ed by the VM's supervisor. */
#define AK_VM_ID_LOCKS "/run/agentkernel/vm-ids"

typedef struct ak_vm_ids {
  uid_t vmm;        /* QEMU's uid and gid */
  uid_t guest_root; /* the guest's root in the shares' user namespaces */
  int lock;         /* held while the VM lives; -1 when none */
} ak_vm_ids_t;

/* Takes a free slot; its lock dies with the process (kill -9 too). */
int ak_vm_ids_take (ak_vm_ids_t *ids, ak_error_t **err);
void ak_vm_ids_release (ak_vm_ids_t *ids);

/* The clone flags of the VMM's process. */
#define AK_VM_JAIL_CLONE CLONE_NEWPID
/* RLIMIT_NOFILE of the VMM, and the descriptor its program is executed
 * from: at the limit, a number it can never open again. */
#define AK_VM_JAIL_NOFILE 4096

typedef struct ak_vm_jail {
  uid_t id;           /* host uid and gid of the VMM */
  const char *exe;    /* its program */
  int kernel, initrd; /* bound at /boot/vmlinuz and /boot/initrd */
  bool kvm;           /* /dev/kvm bound in, its group kept */
  int supervisor;     /* a pidfd of the supervisor: the VMM leaves if it is gone */
  char *const *envp;  /* the VMM's environment */
} ak_vm_jail_t;

/* Confines the calling process (host root, a fresh child) and executes
 * the VMM with argv; returns -1 only on failure. */
int ak_vm_jail_exec (const ak_vm_jail_t *j, char *const *argv, ak_error_t **err);

#endif
