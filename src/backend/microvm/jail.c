/* The VMM's confinement: its host ids and its jail (jail.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "backend/microvm/jail.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

/* ---- ids ---- */

/* A directory of root's own, never followed through a link. */
static int
open_lock_dir (ak_error_t **err)
{
  const char *dirs[] = { "/run/agentkernel", AK_VM_ID_LOCKS };
  int fd = -1;
  for (size_t i = 0; i < 2; i++)
    {
      struct stat st;
      if (mkdir (dirs[i], 0755) < 0 && errno != EEXIST)
        return ak_error_set (err, errno, "create %s", dirs[i]);
      if (fd >= 0)
        close (fd);
      fd = open (dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return ak_error_set (err, errno, "open %s", dirs[i]);
      if (fstat (fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0)
        {
          close (fd);
          return ak_error_set (err, EPERM, "%s is not root's own directory (owner %u, mode %o)",
                               dirs[i], (unsigned) st.st_uid, (unsigned) st.st_mode & 07777);
        }
    }
  return fd;
}

int
ak_vm_ids_take (ak_vm_ids_t *ids, ak_error_t **err)
{
  _cleanup_close_ int dir = -1;

  ids->lock = -1;
  if ((dir = open_lock_dir (err)) < 0)
    return ak_error_prefix (err, "the VM's host ids"), -1;
  for (unsigned k = 0; k < AK_VM_ID_SLOTS; k++)
    {
      char name[16];
      int fd;
      snprintf (name, sizeof name, "%u", AK_VM_ID_BASE + 2 * k);
      fd = openat (dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0)
        return ak_error_set (err, errno, "%s/%s", AK_VM_ID_LOCKS, name);
      if (flock (fd, LOCK_EX | LOCK_NB) == 0)
        {
          ids->vmm = AK_VM_ID_BASE + 2 * k;
          ids->guest_root = ids->vmm + 1;
          ids->lock = fd;
          return 0;
        }
      close (fd);
      if (errno != EWOULDBLOCK)
        return ak_error_set (err, errno, "lock %s/%s", AK_VM_ID_LOCKS, name);
    }
  return ak_error_set (err, EAGAIN, "all %u VM host ids are in use", AK_VM_ID_SLOTS);
}

void
ak_vm_ids_release (ak_vm_ids_t *ids)
{
  ak_closep (&ids->lock);
}

/* ---- the jail ---- */

/* An empty file at `at` (in the jail's tmpfs) with `tree` (a detached
 * mount of one file) on it, read-only where asked, never set-id or
 * executable. */
static int
bind_file (int tree, const char *at, bool ro, ak_error_t **err)
{
  struct ak_mount_attr ma = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | (ro ? MOUNT_ATTR_RDONLY : 0) };
  int fd = open (at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return ak_error_set (err, errno, "create %s", at);
  close (fd);
  if (ak_move_mount (tree, "", AT_FDCWD, at, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return ak_error_set (err, errno, "bind %s", at);
  if (ak_mount_setattr (AT_FDCWD, at, 0, &ma) < 0)
    return ak_error_set (err, errno, "restrict %s", at);
  return 0;
}

static int
clone_tree (int dfd, const char *path, unsigned extra, ak_error_t **err)
{
  int t = ak_open_tree (dfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | extra);
  if (t < 0)
    return ak_error_set (err, errno, "take a copy of %s", *path ? path : "a boot file");
  return t;
}

/* Refuses execve, and execveat but from AK_VM_JAIL_NOFILE, the descriptor
 * the VMM is started from: no descriptor can take that number again (the
 * limit is below it, and the VMM cannot raise it). */
static int
load_exec_filter (ak_error_t **err)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  int rc;
  if (ctx == NULL)
    return ak_error_set (err, ENOMEM, "seccomp: init");
  rc = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (execve), 0);
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (execveat), 1,
                           SCMP_A0 (SCMP_CMP_NE, (scmp_datum_t) AK_VM_JAIL_NOFILE));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (execveat), 1,
                           SCMP_A4 (SCMP_CMP_NE, (scmp_datum_t) AT_EMPTY_PATH));
  if (rc == 0)
    rc = seccomp_load (ctx);
  seccomp_release (ctx);
  if (rc < 0)
    return ak_error_set (err, -rc, "seccomp: the VMM's exec filter");
  return 0;
}

int
ak_vm_jail_exec (const ak_vm_jail_t *j, char *const *argv, ak_error_t **err)
{
  _cleanup_close_ int exe = -1, usr = -1, kernel = -1, initrd = -1, kvm = -1, filter = -1;
  struct ak_mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
  struct rlimit nofile = { AK_VM_JAIL_NOFILE + 1, AK_VM_JAIL_NOFILE + 1 }, none = { 0, 0 };
  gid_t kvm_gid = 0;

  if (geteuid () != 0)
    return ak_error_set (err, EPERM, "the VMM's jail needs root");
  /* 1. Everything taken from the host, while its paths are still there. */
  if ((exe = open (j->exe, O_RDONLY | O_CLOEXEC)) < 0)
    return ak_error_set (err, errno, "open %s", j->exe);
  if ((usr = clone_tree (AT_FDCWD, "/usr", AT_RECURSIVE, err)) < 0
      || (kernel = clone_tree (j->kernel, "", AT_EMPTY_PATH, err)) < 0
      || (initrd = clone_tree (j->initrd, "", AT_EMPTY_PATH, err)) < 0)
    return -1;
  if (j->kvm)
    {
      struct stat st;
      if ((kvm = clone_tree (AT_FDCWD, "/dev/kvm", 0, err)) < 0)
        return -1;
      if (stat ("/dev/kvm", &st) < 0)
        return ak_error_set (err, errno, "/dev/kvm");
      kvm_gid = st.st_gid;
    }
  if ((filter = ak_seccomp_compile_builtin (AK_SECCOMP_MODERATE, err)) < 0)
    return -1;
  /* The program at the one descriptor it may be executed from. */
  if (setrlimit (RLIMIT_NOFILE, &nofile) < 0 || dup3 (exe, AK_VM_JAIL_NOFILE, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "keep the VMM's program");

  /* 2. Namespaces of its own (PID from its clone; the network namespace is
   * the caller's). */
  if (unshare (CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
    return ak_error_set (err, errno, "unshare");
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return ak_error_set (err, errno, "make mounts private");
  if (sethostname ("vmm", 3) < 0)
    return ak_error_set (err, errno, "sethostname");

  /* 3. The root: an empty tmpfs holding only what QEMU opens by name. */
  if (mount ("akvmm", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16k,nr_inodes=32") < 0
      || chdir ("/tmp") < 0)
    return ak_error_set (err, errno, "the VMM's root");
  if (mkdir ("usr", 0755) < 0 || mkdir ("boot", 0755) < 0 || mkdir ("dev", 0755) < 0)
    return ak_error_set (err, errno, "the VMM's root");
  if (ak_move_mount (usr, "", AT_FDCWD, "usr", MOVE_MOUNT_F_EMPTY_PATH) < 0
      || ak_mount_setattr (AT_FDCWD, "usr", AT_RECURSIVE, &ro) < 0)
    return ak_error_set (err, errno, "bind /usr read-only");
  /* A merged /usr: the loader and libraries are found through these. */
  if (symlink ("usr/bin", "bin") < 0 || symlink ("usr/lib", "lib") < 0 || symlink ("usr/lib64", "lib64") < 0)
    return ak_error_set (err, errno, "the VMM's root");
  if (bind_file (kernel, "boot/vmlinuz", true, err) < 0 || bind_file (initrd, "boot/initrd", true, err) < 0)
    return -1;
  if (kvm >= 0 && bind_file (kvm, "dev/kvm", false, err) < 0)
    return -1;
  if (mount (NULL, "/tmp", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    return ak_error_set (err, errno, "make the VMM's root read-only");
  if (ak_pivot_root (".", ".") < 0 || umount2 (".", MNT_DETACH) < 0 || chdir ("/") < 0)
    return ak_error_set (err, errno, "pivot_root");

  /* 4. Privileges dropped: the VM's own host id, no capability. */
  if (setgroups (kvm >= 0 ? 1 : 0, &kvm_gid) < 0 || setresgid (j->id, j->id, j->id) < 0
      || setresuid (j->id, j->id, j->id) < 0)
    return ak_error_set (err, errno, "drop to host id %u", (unsigned) j->id);
  /* A change of ids clears the parent-death signal: set it again, and
   * leave if the supervisor died in between. */
  {
    struct pollfd p = { .fd = j->supervisor, .events = POLLIN };
    if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || poll (&p, 1, 0) != 0)
      return ak_error_set (err, ECANCELED, "the supervisor is gone");
  }
  nofile = (struct rlimit){ AK_VM_JAIL_NOFILE, AK_VM_JAIL_NOFILE };
  if (setrlimit (RLIMIT_NOFILE, &nofile) < 0 || setrlimit (RLIMIT_CORE, &none) < 0)
    return ak_error_set (err, errno, "rlimits");
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return ak_error_set (err, errno, "no_new_privs");

  /* 5. The filters, then the one exec they allow. */
  if (ak_seccomp_load (filter, err) < 0 || load_exec_filter (err) < 0)
    return -1;
  syscall (SYS_execveat, AK_VM_JAIL_NOFILE, "", argv, j->envp, AT_EMPTY_PATH);
  return ak_error_set (err, errno, "exec %s", j->exe);
}
