/* The microVM backend, host side: finding the boot files, starting
 * virtiofsd and QEMU, and the supervisor that carries the agent socket's
 * connections over the VM's port (mux.h).
 *
 * Processes of one VM (all die with the supervisor: PR_SET_PDEATHSIG):
 *   supervisor   owns the agent socket, relays it to the guest, stops it
 *   virtiofsd    one per share, each in a mount namespace of its own that
 *                holds only read-only mounts where the share is read-only
 *                (virtiofsd itself has no read-only mode)
 *   qemu         the VMM, jailed (jail.h) after it joined its own network
 *                namespace (net.c): namespaces of its own, an empty root, a
 *                host id of this VM's own, seccomp; every file it uses is
 *                handed over as an open descriptor or bound in
 *   network      for network on, in QEMU's network namespace: the egress
 *                policy (or a NAT helper) and the published ports'
 *                forwarder of the container backend (net.c)
 * An ephemeral run's supervisor dies with agentkernel (kill -9 included),
 * and so everything of the VM does.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/close_range.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "backend/microvm/jail.h"
#include "backend/microvm/microvm.h"
#include "backend/microvm/mux.h"
#include "common/child.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"
#include "model/spec_json.h"
#include "proto/proto.h"

/* How long the guest may take to report READY (TCG is slow). */
#define BOOT_TIMEOUT_MS 120000
#define STOP_GRACE_MS 5000
/* What console.log keeps of the guest's console (docs/microvm.md). */
#define AK_VM_CONSOLE_MAX (1 << 20)
#ifndef AK_VM_LOGLEVEL
#define AK_VM_LOGLEVEL "4"
#endif

/* ---- the VM's processes ---- */

typedef struct vm {
  const ak_spec_t *spec;
  ak_vm_assets_t a;
  char *dir;         /* where its sockets and logs are */
  pid_t parent;      /* an ephemeral run's agentkernel (0: detached) */
  pid_t qemu;
  pid_t console;     /* the console's drain (spawn_console), or -1 */
  pid_t fs[AK_VM_MAX_SHARES]; /* virtiofsd per share */
  int chan;          /* our end of the agent port */
  ak_vm_net_t net;   /* QEMU's network namespace and its network (net.c) */
  ak_vm_ids_t ids;   /* host ids of this VM's own (jail.h) */
  bool pooled;       /* warm pool: the workspace comes with the claim (pool.c) */
  int stage_ns;      /* pooled: the staging share's mount namespace, or -1 */
  int layer;         /* persistent: the writable layer's disk image (layer_open), or -1 */
  int layer_ro;      /* the same file opened read-only (QEMU probes with it), or -1 */
} vm_t;

/* One directory the guest sees: share 0 is the root (the host's view),
 * then the workspace, home and volumes. */
typedef struct share {
  const char *source; /* host path */
  char **layers;      /* the root of an image: its layer directories, lowest first */
  const char *dest;   /* in the guest; NULL for the root */
  bool ro;
  char **hide;        /* host paths shown empty (NULL-terminated, or NULL) */
  const ak_fs_id_t *pin; /* what source was at create (persistent sandboxes), or NULL */
  bool stage;         /* warm pool: an empty staging directory, the claim's tree attached later */
} share_t;

static void
vm_kill (vm_t *v)
{
  for (size_t i = 0; i <= AK_VM_MAX_SHARES + 1; i++)
    {
      pid_t *p = i == 0 ? &v->qemu : i == 1 ? &v->console : &v->fs[i - 2];
      /* The console's drain ends by itself once QEMU (the pipe's only
       * writer) is gone, with what the guest wrote last in console.log
       * (an error quotes it): a moment for that first. */
      for (int t = 0; i == 1 && *p > 0 && t < 50; t++)
        if (waitpid (*p, NULL, WNOHANG) != 0)
          *p = -1;
        else
          usleep (20000);
      if (*p > 0)
        {
          kill (*p, SIGKILL);
          while (waitpid (*p, NULL, 0) < 0 && errno == EINTR)
            ;
        }
      *p = -1;
    }
  ak_vm_net_stop (&v->net);
}

static int
listen_socket (const char *path, ak_error_t **err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strlen (path) >= sizeof sa.sun_path)
    return ak_error_set (err, ENAMETOOLONG, "socket path %s", path);
  strcpy (sa.sun_path, path);
  (void) unlink (path);
  if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod (path, 0600) < 0
      || listen (fd, 16) < 0)
    return ak_error_set (err, errno, "socket %s", path);
  return take_fd (&fd);
}

static int
connect_socket (const char *path, ak_error_t **err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strlen (path) >= sizeof sa.sun_path)
    return ak_error_set (err, ENAMETOOLONG, "socket path %s", path);
  strcpy (sa.sun_path, path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return ak_error_set (err, errno, "connect %s", path);
  return take_fd (&fd);
}

/* In a child: dies with the supervisor, stdout/stderr to log. */
static void
child_common (int log)
{
  sigset_t none;
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  {
    int nul = open ("/dev/null", O_RDWR | O_CLOEXEC);
    dup2 (nul, 0);
  }
  if (log >= 0)
    dup2 (log, 1), dup2 (log, 2);
}

static _Noreturn void
child_fail (const char *what)
{
  dprintf (2, "agentkernel: microvm: %s: %s\n", what, strerror (errno));
  _exit (125);
}

static int
write_file (pid_t pid, const char *name, const char *text)
{
  _cleanup_free_ char *p = ak_xasprintf ("/proc/%d/%s", (int) pid, name);
  _cleanup_close_ int fd = open (p, O_WRONLY | O_CLOEXEC);
  return fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text) ? -1 : 0;
}

/* virtiofsd serving `source` on the listening socket lfd.  The root share
 * (ws == false) is the host's view, every mount read-only, agentkernel's own
 * state hidden.  The workspace share runs in a user namespace where the
 * workspace's owner is the sandbox user (1000), read-only when the profile
 * says so. */
static pid_t
spawn_virtiofsd (vm_t *v, const share_t *sh, int lfd, int log, ak_error_t **err)
{
  const char *source = sh->source;
  bool ws = sh->dest != NULL, ro = sh->ro;
  int go[2], ready[2];
  struct stat st;
  pid_t pid, sup = getpid ();
  char c = 0;
  _cleanup_close_ int srcfd = -1;

  /* A share is opened once, without following a symlink, and is what it
   * was at create: a workspace swapped for a link to / since is refused. */
  if (sh->stage)
    srcfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC); /* only for its fstat below */
  else if (ws && sh->pin != NULL && sh->pin->type != 0)
    srcfd = ak_fs_open_pinned (source, sh->pin, O_PATH | O_DIRECTORY | O_CLOEXEC, sh->dest, err);
  else
    srcfd = open (source, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (srcfd < 0)
    return err && *err ? -1 : ak_error_set (err, errno, "%s (shared at %s)", source, ws ? sh->dest : "/");
  if (fstat (srcfd, &st) < 0)
    return ak_error_set (err, errno, "%s", source);
  /* A detached copy of it: the only form in which a mount crosses into the
   * daemon's own mount namespace. */
  if (ws && !sh->stage)
    {
      int t = ak_open_tree (srcfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
      if (t < 0)
        return ak_error_set (err, errno, "%s: detach a copy of the share", source);
      close (srcfd);
      srcfd = t;
    }
  if (pipe2 (go, O_CLOEXEC) < 0 || pipe2 (ready, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  pid = fork ();
  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid == 0)
    {
      char fdarg[32], src[4096 + 16];
      child_common (log);
      close (go[1]), close (ready[0]);
      {
        /* No network, no core dump: what it serves arrives over its socket. */
        struct rlimit none = { 0, 0 };
        if (setrlimit (RLIMIT_CORE, &none) < 0)
          child_fail ("rlimit");
      }
      if (unshare (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | (ws ? CLONE_NEWUSER : 0)) < 0)
        child_fail ("unshare");
      if (ws)
        {
          /* The parent writes the id maps. */
          if (write (ready[1], "u", 1) != 1 || read (go[0], &c, 1) != 1)
            _exit (125);
          if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0 || setgroups (0, NULL) < 0)
            child_fail ("take ids");
          if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid () != sup)
            _exit (125);
        }
      if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        child_fail ("make mounts private");
      if (!ws)
        {
          struct ak_mount_attr ma = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
          if (ak_mount_setattr (AT_FDCWD, "/", AT_RECURSIVE, &ma) < 0)
            child_fail ("make the host view read-only");
          /* An image: its layers stacked read-only, served instead. */
          if (sh->layers != NULL && sh->layers[0] != NULL)
            {
              size_t nl = ak_strv_len (sh->layers);
              char *opts = ak_xstrdup ("lowerdir=");
              char first[64];
              /* Opened before /tmp is covered (the store may live there). */
              for (size_t l = nl; l-- > 0;)
                {
                  int lfd_ = open (sh->layers[l], O_PATH | O_DIRECTORY | O_CLOEXEC);
                  char *o;
                  if (lfd_ < 0)
                    child_fail ("open an image layer");
                  o = ak_xasprintf ("%s%s/proc/self/fd/%d", opts, l + 1 < nl ? ":" : "", lfd_);
                  free (opts);
                  opts = o;
                  if (l == 0)
                    snprintf (first, sizeof first, "/proc/self/fd/%d", lfd_);
                }
              if (mount ("akvm", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0
                  || mkdir ("/tmp/root", 0755) < 0)
                child_fail ("stage the image root");
              if (nl == 1 ? mount (first, "/tmp/root", NULL, MS_BIND | MS_RDONLY, NULL) < 0
                          : mount ("akvm-image", "/tmp/root", "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0)
                child_fail ("stack the image's layers");
              if (nl == 1)
                {
                  struct ak_mount_attr rda = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
                  if (ak_mount_setattr (AT_FDCWD, "/tmp/root", 0, &rda) < 0)
                    child_fail ("make the image read-only");
                }
              free (opts);
              source = "/tmp/root";
            }
        }
      else if (sh->stage)
        {
          /* Warm pool: an empty read-only directory whose "w" the claim's
           * workspace is attached to (pool.c), from this namespace, whose
           * mounts propagate to virtiofsd's (a slave of this one). */
          if (mount ("akvm", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0
              || mkdir ("/tmp/share", 0755) < 0
              || mount ("akvm-stage", "/tmp/share", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4k") < 0
              || mkdir ("/tmp/share/w", 0755) < 0
              || mount (NULL, "/tmp/share", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0
              || mount (NULL, "/tmp/share", NULL, MS_SHARED, NULL) < 0)
            child_fail ("stage the workspace share");
        }
      else
        {
          /* The share is the directory opened above, at a place of this
           * namespace's own: its path is never looked up again. */
          if (mount ("akvm", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0
              || mkdir ("/tmp/share", 0755) < 0
              || ak_move_mount (srcfd, "", AT_FDCWD, "/tmp/share", MOVE_MOUNT_F_EMPTY_PATH) < 0)
            child_fail ("attach the share");
          if (ro)
            {
              struct ak_mount_attr ma = { .attr_set = MOUNT_ATTR_RDONLY };
              if (ak_mount_setattr (AT_FDCWD, "/tmp/share", AT_RECURSIVE, &ma) < 0)
                child_fail ("make the share read-only");
            }
        }
      /* agentkernel's own state, and credential stores, shown empty. */
      for (char **pp = sh->hide; pp && *pp; pp++)
        {
          struct stat hs;
          size_t sl = sh->source != NULL ? strlen (sh->source) : 0;
          _cleanup_free_ char *at = NULL;
          /* In a share: the same place under /tmp/share. */
          if (ws && strncmp (*pp, sh->source, sl) == 0 && ((*pp)[sl] == '/' || (*pp)[sl] == 0))
            at = ak_xasprintf ("/tmp/share%s", *pp + sl);
          else if (ws)
            continue;
          else
            at = ak_xstrdup (*pp);
          if (lstat (at, &hs) < 0 || S_ISLNK (hs.st_mode))
            continue;
          if (S_ISDIR (hs.st_mode) ? mount ("hidden", at, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0") < 0
                                  : mount ("/dev/null", at, NULL, MS_BIND, NULL) < 0)
            child_fail ("hide a private path");
        }
      if (dup2 (lfd, 3) < 0)
        _exit (125);
      snprintf (fdarg, sizeof fdarg, "--fd=3");
      snprintf (src, sizeof src, "source=%s", ws ? "/tmp/share" : source);
      /* The root share is "/" of this namespace, which cannot be
       * pivot_root'ed into: chroot (the namespace is already private). */
      execl (v->a.virtiofsd, "virtiofsd", fdarg, "-o", src, "-o", "cache=always", "-o", getenv ("AK_VFS_DEBUG") ? "log_level=debug" : "log_level=warn",
             "-o", ws ? "sandbox=namespace" : "sandbox=chroot", (char *) NULL);
      child_fail ("exec virtiofsd");
    }
  close (go[0]), close (ready[1]);
  /* The host's view cannot be served from a user namespace where host root
   * is unmapped (the guest opens executables with O_NOATIME, which then
   * fails with EPERM): its virtiofsd is host root in a private mount
   * namespace of read-only mounts, and the guest never runs anything as
   * root (see ak_microvm_check). */
  if (ws)
    {
      /* The guest's root is this VM's own unprivileged host id.  Staging:
       * the claim's tree comes idmapped to AK_ROOTFUL_HOST_ID. */
      uid_t groot = v->ids.guest_root;
      uid_t u1000 = sh->stage || st.st_uid == groot ? AK_ROOTFUL_HOST_ID : st.st_uid;
      gid_t g1000 = sh->stage || st.st_gid == groot ? AK_ROOTFUL_HOST_ID : st.st_gid;
      _cleanup_free_ char *um = ak_xasprintf ("0 %u 1\n1000 %u 1\n", (unsigned) groot, (unsigned) u1000);
      _cleanup_free_ char *gm = ak_xasprintf ("0 %u 1\n1000 %u 1\n", (unsigned) groot, (unsigned) g1000);
      if (read (ready[0], &c, 1) != 1 || write_file (pid, "setgroups", "allow") < 0
          || write_file (pid, "uid_map", um) < 0 || write_file (pid, "gid_map", gm) < 0
          || write (go[1], "g", 1) != 1)
        {
          close (go[1]), close (ready[0]);
          kill (pid, SIGKILL);
          waitpid (pid, NULL, 0);
          return ak_error_set (err, errno, "map the workspace's ids for virtiofsd");
        }
      if (sh->stage)
        {
          /* Held: the claim attaches the workspace in this namespace. */
          _cleanup_free_ char *nsp = ak_xasprintf ("/proc/%d/ns/mnt", (int) pid);
          v->stage_ns = open (nsp, O_RDONLY | O_CLOEXEC);
          if (v->stage_ns < 0)
            {
              close (go[1]), close (ready[0]);
              kill (pid, SIGKILL);
              waitpid (pid, NULL, 0);
              return ak_error_set (err, errno, "open the staging share's mount namespace");
            }
        }
    }
  close (go[1]), close (ready[0]);
  return pid;
}

static int
dup_high (int fd, int want)
{
  return fd == want ? (fcntl (fd, F_SETFD, 0), fd) : dup2 (fd, want);
}

/* ---- a persistent sandbox's writable layer ----
 *
 * An ext4 image, AK_VM_LAYER_IMG in the sandbox's state directory, which
 * the guest gets as a virtio-blk disk and keeps its overlay's upper and
 * work directories on: what the sandbox wrote outside the shares is there
 * again at the next start.  Its content is the guest's: the host makes the
 * file system once, on a file it has just created itself, then only hands
 * QEMU the open image; it never mounts, reads or follows anything in it, so
 * what an earlier run left there is parsed by the guest kernel alone.
 * disk_mb is its size (AK_VM_LAYER_MB without).  An ephemeral run's and a
 * pooled VM's layer stay the guest's tmpfs. */
#define AK_VM_LAYER_IMG "layer.img"
#define AK_VM_LAYER_MB 4096ULL

/* A new empty ext4 image at dir/AK_VM_LAYER_IMG, mb MiB (sparse). */
static int
layer_create (const char *dir, unsigned long long mb, int log, ak_error_t **err)
{
  _cleanup_free_ char *tmp = ak_xasprintf ("%s/" AK_VM_LAYER_IMG ".new", dir);
  _cleanup_free_ char *img = ak_xasprintf ("%s/" AK_VM_LAYER_IMG, dir);
  _cleanup_close_ int fd = -1;
  const char *mke2fs = ak_vm_find_mke2fs ();
  int st = 0;
  pid_t pid;

  if (mke2fs == NULL)
    return ak_error_set (err, 0, AK_VM_MKE2FS_MISSING);
  if (unlink (tmp) < 0 && errno != ENOENT)
    return ak_error_set (err, errno, "%s", tmp);
  fd = open (tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate (fd, (off_t) (mb << 20)) < 0)
    return ak_error_set (err, errno, "create %s", tmp);
  pid = fork ();
  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid == 0)
    {
      int nul = open ("/dev/null", O_RDWR | O_CLOEXEC);
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (nul < 0 || dup2 (nul, 0) < 0 || (log >= 0 && (dup2 (log, 1) < 0 || dup2 (log, 2) < 0))
          || dup2 (fd, 3) < 0)
        _exit (125);
      /* The file just created, by its descriptor: no path of the state
       * directory is looked up by mke2fs. */
      execl (mke2fs, "mke2fs", "-q", "-F", "-t", "ext4", "-m", "0", "-L", "ak-layer", "-E",
             "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1", "/dev/fd/3", (char *) NULL);
      _exit (127);
    }
  while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0 || fsync (fd) < 0)
    {
      (void) unlink (tmp);
      return ak_error_set (err, EIO, "mke2fs %s failed (status %d; see %s/vm.log)", tmp,
                           WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st), dir);
    }
  if (rename (tmp, img) < 0)
    return ak_error_set (err, errno, "rename %s", tmp);
  return 0;
}

/* A persistent sandbox's layer image, made on its first start. */
static int
layer_open (vm_t *v, int log, ak_error_t **err)
{
  _cleanup_free_ char *img = NULL;
  _cleanup_close_ int fd = -1;
  struct stat st;
  if (v->pooled || v->parent != 0)
    return 0;
  img = ak_xasprintf ("%s/" AK_VM_LAYER_IMG, v->dir);
  fd = open (img, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    {
      unsigned long long mb = v->spec->res.disk_mb ? v->spec->res.disk_mb : AK_VM_LAYER_MB;
      if (layer_create (v->dir, mb, log, err) < 0)
        return ak_error_prefix (err, "the sandbox's writable layer"), -1;
      fd = open (img, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    }
  if (fd < 0)
    return ak_error_set (err, errno, "open %s", img);
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return ak_error_set (err, EINVAL, "%s is not a regular file", img);
  {
    /* QEMU opens an image read-only as well as read-write: its fd set
     * holds both (the file opened above, never its path again). */
    _cleanup_free_ char *self = ak_xasprintf ("/proc/self/fd/%d", fd);
    v->layer_ro = open (self, O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (v->layer_ro < 0)
      return ak_error_set (err, errno, "open %s", img);
  }
  v->layer = take_fd (&fd);
  return 0;
}

/* QEMU's arguments for the layer image (descriptors 7 + n_vfs, read-write,
 * and 8 + n_vfs, read-only).  No locking: the image is this VM's alone
 * (the sandbox runs once), and the jail has no /dev/null to probe it with. */
static void
layer_qemu_args (const vm_t *v, size_t n_vfs, char ***argv)
{
  _cleanup_free_ char *rw = NULL, *ro = NULL;
  if (v->layer < 0)
    return;
  rw = ak_xasprintf ("fd=%zu,set=1", 7 + n_vfs);
  ro = ak_xasprintf ("fd=%zu,set=1", 8 + n_vfs);
  ak_strv_push (argv, "-add-fd");
  ak_strv_push (argv, rw);
  ak_strv_push (argv, "-add-fd");
  ak_strv_push (argv, ro);
  ak_strv_push (argv, "-drive");
  ak_strv_push (argv, "file=/dev/fdset/1,format=raw,if=none,id=layer,file.locking=off");
  ak_strv_push (argv, "-device");
  ak_strv_push (argv, "virtio-blk-device,drive=layer");
}

/* The guest's console, bounded: QEMU writes it to a pipe, and this process
 * copies the first AK_VM_CONSOLE_MAX bytes (a note of the cut included) to
 * console.log and drops the rest, reading on until QEMU closes the pipe, so
 * that a guest writing without end neither fills the host's disk nor
 * stalls on a full pipe. */
static pid_t
spawn_console (int in, int out, int log, ak_error_t **err)
{
  static const char cut[] = "\n[agentkernel: console output beyond 1 MiB dropped]\n";
  pid_t pid = fork ();
  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid == 0)
    {
      char buf[65536];
      size_t kept = 0;
      bool full = false;
      child_common (log);
      /* Nothing of the supervisor's but the pipe and the file: the write
       * end above all, or the pipe never ends. */
      in = fcntl (in, F_DUPFD_CLOEXEC, 64), out = fcntl (out, F_DUPFD_CLOEXEC, 64);
      if (in < 0 || out < 0 || dup2 (in, 3) < 0 || dup2 (out, 4) < 0 || close_range (5, ~0U, 0) < 0)
        child_fail ("the console's descriptors");
      in = 3, out = 4;
      for (;;)
        {
          ssize_t n = read (in, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            _exit (0);
          if (full)
            continue;
          if (kept + (size_t) n > AK_VM_CONSOLE_MAX - (sizeof cut - 1))
            {
              n = (ssize_t) (AK_VM_CONSOLE_MAX - (sizeof cut - 1) - kept);
              full = true;
            }
          if ((n > 0 && write (out, buf, (size_t) n) != n) || (full && write (out, cut, sizeof cut - 1) < 0))
            full = true; /* a write that fails: drain only */
          kept += (size_t) n;
        }
    }
  return pid;
}

/* QEMU, with every file it needs as a descriptor (3: the port, 4: kernel,
 * 5: initrd, 6: the console (spawn_console), 7...: the shares' vhost-user connections, then
 * a persistent sandbox's layer image, read-write and read-only). */
static pid_t
spawn_qemu (vm_t *v, int chan, const int *vfs, size_t n_vfs, int log, ak_error_t **err)
{
  const ak_spec_t *spec = v->spec;
  unsigned long long mem = spec->res.memory_mb ? spec->res.memory_mb : 512;
  unsigned cpus = spec->res.vcpus ? spec->res.vcpus : 1;
  _cleanup_close_ int kfd = open (v->a.kernel, O_RDONLY | O_CLOEXEC);
  _cleanup_close_ int ifd = open (v->a.initrd, O_RDONLY | O_CLOEXEC);
  _cleanup_free_ char *conlog = ak_xasprintf ("%s/console.log", v->dir);
  _cleanup_close_ int cfd = open (conlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  _cleanup_close_ int self = (int) syscall (SYS_pidfd_open, getpid (), 0);
  _cleanup_close_ int con_r = -1, con_w = -1;
  pid_t pid;

  if (mem < 128)
    mem = 128;
  if (kfd < 0 || ifd < 0 || cfd < 0 || self < 0)
    return ak_error_set (err, errno, "open the VM's boot files");
  {
    int cp[2];
    if (pipe2 (cp, O_CLOEXEC) < 0)
      return ak_error_set (err, errno, "pipe");
    con_r = cp[0], con_w = cp[1];
  }
  if ((v->console = spawn_console (con_r, cfd, log, err)) < 0)
    return -1;
  pid = ak_raw_clone (AK_VM_JAIL_CLONE, NULL);
  if (pid < 0)
    return ak_error_set (err, errno, "fork");
  if (pid == 0)
    {
      char **argv = NULL;
      _cleanup_free_ char *m = ak_xasprintf ("%llu", mem), *smp = ak_xasprintf ("%u", cpus);
      _cleanup_free_ char *memobj = ak_xasprintf ("memory-backend-memfd,id=mem,size=%lluM,share=on", mem);
      int fds[6 + AK_VM_MAX_SHARES] = { chan, kfd, ifd, con_w };
      int tmp[6 + AK_VM_MAX_SHARES];
      size_t nfd = 4 + n_vfs + (v->layer >= 0 ? 2 : 0);
      child_common (log);
      /* Its own network namespace first, before anything else of its
       * confinement: empty for network off, the sandbox's network
       * (net.c) for network on. */
      if (setns (v->net.ns, CLONE_NEWNET) < 0)
        child_fail ("join the VM's network namespace");
      /* The guest's console goes to the console's drain (QEMU's stdout),
       * which keeps the first AK_VM_CONSOLE_MAX bytes in console.log. */
      if (dup2 (con_w, 1) < 0)
        child_fail ("dup");
      /* Renumber without clobbering: first above 20, then into place. */
      for (size_t i = 0; i < n_vfs; i++)
        fds[4 + i] = vfs[i];
      if (v->layer >= 0)
        fds[4 + n_vfs] = v->layer, fds[5 + n_vfs] = v->layer_ro;
      for (size_t i = 0; i < nfd; i++)
        tmp[i] = fds[i] < 0 ? -1 : fcntl (fds[i], F_DUPFD_CLOEXEC, 40);
      for (size_t i = 0; i < nfd; i++)
        if (tmp[i] >= 0 && dup_high (tmp[i], 3 + (int) i) < 0)
          child_fail ("dup");
#define A(s) ak_strv_push (&argv, s)
      A ("/usr/bin/qemu-system-x86_64");
      A ("-nodefaults"), A ("-no-user-config"), A ("-nographic"), A ("-no-reboot");
      A ("-M"), A ("microvm,memory-backend=mem");
      A ("-accel"), A (v->a.kvm ? "kvm" : "tcg");
      if (v->a.kvm)
        A ("-cpu"), A ("host");
      A ("-m"), A (m), A ("-smp"), A (smp);
      A ("-object"), A (memobj);
      A ("-global"), A ("virtio-mmio.force-legacy=false");
      A ("-sandbox"), A ("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
      /* Bound there by the jail. */
      A ("-kernel"), A ("/boot/vmlinuz"), A ("-initrd"), A ("/boot/initrd");
      A ("-append"), A ("console=ttyS0 loglevel=" AK_VM_LOGLEVEL " cryptomgr.notests random.trust_cpu=on "
                        "audit=0 panic=-1 reboot=t tsc_early_khz=2100000 nokaslr rdinit=/init");
      A ("-chardev"), A ("stdio,id=con,signal=off");
      A ("-serial"), A ("chardev:con");
      A ("-device"), A ("virtio-serial-device");
      A ("-chardev"), A ("socket,id=ag,fd=3");
      A ("-device"), A ("virtserialport,chardev=ag,name=" AK_MICROVM_PORT);
      for (size_t i = 0; i < n_vfs; i++)
        {
          _cleanup_free_ char *c = ak_xasprintf ("socket,id=vfs%zu,fd=%zu", i, 7 + i);
          _cleanup_free_ char *d = ak_xasprintf ("vhost-user-fs-device,chardev=vfs%zu,tag=s%zu", i, i);
          A ("-chardev"), A (c), A ("-device"), A (d);
        }
      layer_qemu_args (v, n_vfs, &argv);
      ak_vm_net_qemu_args (spec, &argv);
#undef A
      {
        ak_error_t *e = NULL;
        char *no_env[] = { NULL };
        ak_vm_jail_t j = { .id = v->ids.vmm, .exe = ak_test_vmm () ? ak_test_vmm () : v->a.qemu,
                           .kernel = kfd, .initrd = ifd, .kvm = v->a.kvm, .supervisor = self,
                           /* The caller's environment is none of QEMU's business;
                            * a test's probe takes its orders from it. */
                           .envp = ak_test_vmm () ? environ : no_env };
        ak_vm_jail_exec (&j, argv, &e);
        dprintf (2, "agentkernel: microvm: the VMM's jail: %s\n", e ? e->msg : "failed");
        _exit (125);
      }
    }
  return pid;
}

/* What the guest sees: the root, then the workspace (mount_cwd), home
 * (mount_home: always read-only, as in a container; credential stores
 * hidden unless shown) and volumes.  read_only covers the workspace and
 * volumes as it covers the root. */
static size_t
plan_shares (const ak_spec_t *spec, bool pooled, share_t *sh, char ***owned, char ***owned_root)
{
  bool ro = ak_spec_sec (spec, AK_SEC_READ_ONLY);
  size_t n = 0;
  char **root_hide = NULL;
  if (spec->image_layer_dirs == NULL)
    {
      /* The host view is served by host root with the host's ids, and the
       * guest's user is uid 1000, which on most hosts is a person: every
       * home (and root's) is shown empty, so that user's private files are
       * never the guest's.  The home share brings the user's own home
       * where the profile says so. */
      root_hide = ak_strv_dup (spec->private_paths);
      ak_strv_push (&root_hide, "/home");
      ak_strv_push (&root_hide, "/root");
      *owned_root = root_hide;
    }
  sh[n++] = (share_t){ .source = "/", .ro = true, .hide = root_hide, .layers = spec->image_layer_dirs };
  if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD) && spec->cwd != NULL)
    sh[n++] = (share_t){ .source = spec->cwd, .dest = "/workspace", .ro = ro, .hide = spec->private_paths,
                         .pin = &spec->cwd_pin };
  else if (ak_spec_sec (spec, AK_SEC_MOUNT_CWD) && pooled)
    sh[n++] = (share_t){ .dest = "/workspace", .ro = ro, .stage = true };
  if (ak_spec_sec (spec, AK_SEC_MOUNT_HOME) && spec->home != NULL)
    {
      char **hide = ak_strv_dup (spec->private_paths);
      if (!spec->show_credentials)
        for (const char *const *c = ak_credential_paths; *c; c++)
          {
            _cleanup_free_ char *p = ak_xasprintf ("%s/%s", spec->home, *c);
            ak_strv_push (&hide, p);
          }
      *owned = hide;
      sh[n++] = (share_t){ .source = spec->home, .dest = spec->as_root ? "/root" : "/home/user", .ro = true,
                           .hide = hide, .pin = &spec->home_pin };
    }
  for (size_t i = 0; i < spec->n_mounts && n < AK_VM_MAX_SHARES; i++)
    sh[n++] = (share_t){ .source = spec->mounts[i].source, .dest = spec->mounts[i].dest,
                         .ro = spec->mounts[i].read_only || ro, .hide = spec->private_paths,
                         .pin = &spec->mounts[i].pin };
  return n;
}

static json_t *
guest_config (const ak_spec_t *spec, const share_t *sh, size_t n, const ak_vm_net_t *net, bool layer)
{
  json_t *j = json_object (), *a = json_array ();
  json_object_set_new (j, "spec", ak_spec_to_json (spec));
  /* The writable layer on the disk (layer_open), else on tmpfs. */
  json_object_set_new (j, "layer_disk", json_boolean (layer));
  json_object_set_new (j, "net", ak_vm_net_guest_config (spec, net));
  for (size_t i = 1; i < n; i++)
    {
      _cleanup_free_ char *tag = ak_xasprintf ("s%zu", i);
      json_array_append_new (a, json_pack ("{s:s, s:s, s:b, s:b}", "tag", tag, "dest", sh[i].dest, "ro", sh[i].ro,
                                           "stage", sh[i].stage));
    }
  json_object_set_new (j, "shares", a);
  /* Root in the guest (--root, exec --root) only over an image: see
   * ak_microvm_check. */
  json_object_set_new (j, "root_ok", json_boolean (sh[0].layers != NULL && sh[0].layers[0] != NULL));
  return j;
}

/* The last lines a log holds, for an error message. */
static char *
log_tail (const char *path, size_t max)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  char buf[4096];
  off_t size;
  ssize_t n;
  char *s, *e;
  if (fd < 0 || (size = lseek (fd, 0, SEEK_END)) <= 0)
    return NULL;
  n = pread (fd, buf, sizeof buf - 1, size > (off_t) max ? size - (off_t) max : 0);
  if (n <= 0)
    return NULL;
  buf[n] = 0;
  for (char *c = buf; *c; c++)
    if (*c == '\r' || (*c == '\n' && c[1] != 0))
      *c = *c == '\r' ? ' ' : '|';
  s = buf;
  while (*s == '|' || *s == ' ')
    s++;
  e = s + strlen (s);
  while (e > s && (e[-1] == '\n' || e[-1] == '|' || e[-1] == ' '))
    *--e = 0;
  return *s ? ak_xstrdup (s) : NULL;
}

/* Adds what the VM's logs say to an error about the VM. */
static void
explain (const char *dir, ak_error_t **err)
{
  _cleanup_free_ char *vl = ak_xasprintf ("%s/vm.log", dir), *cl = ak_xasprintf ("%s/console.log", dir);
  _cleanup_free_ char *a = log_tail (vl, 400), *b = log_tail (cl, 400);
  if (err != NULL && *err != NULL && (a != NULL || b != NULL))
    {
      char *m = ak_xasprintf ("%s [vmm: %s] [console: %s]", (*err)->msg, a ? a : "-", b ? b : "-");
      free ((*err)->msg);
      (*err)->msg = m;
    }
}

/* Boots the VM up to the guest's READY.  In the supervisor. */
static int
vm_boot (vm_t *v, int log, ak_error_t **err)
{
  const ak_spec_t *spec = v->spec;
  share_t sh[AK_VM_MAX_SHARES];
  _cleanup_strv_ char **home_hide = NULL;
  _cleanup_strv_ char **root_hide = NULL;
  int conns[AK_VM_MAX_SHARES];
  size_t n;
  _cleanup_close_ int theirs = -1;
  int sv[2], rc = -1;
  bool disk = false;
  long long deadline;

  n = plan_shares (spec, v->pooled, sh, &home_hide, &root_hide);
  for (size_t i = 0; i < AK_VM_MAX_SHARES; i++)
    conns[i] = -1;
  if (ak_vm_initrd (&v->a, err) < 0)
    return ak_error_prefix (err, "microvm initramfs"), -1;
  /* The network first: a published port in use stops the start before
   * anything else runs. */
  if (ak_vm_net_start (spec, &v->net, err) < 0)
    return -1;
  if (layer_open (v, log, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      _cleanup_free_ char *sock = ak_xasprintf ("%s/vfs%zu.sock", v->dir, i);
      _cleanup_close_ int l = listen_socket (sock, err);
      if (l < 0 || (v->fs[i] = spawn_virtiofsd (v, &sh[i], l, log, err)) < 0)
        goto out;
      /* Connected now, accepted by virtiofsd when it is ready. */
      conns[i] = connect_socket (sock, err);
      (void) unlink (sock);
      if (conns[i] < 0)
        goto out;
    }
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return ak_error_set (err, errno, "socketpair");
  v->chan = sv[0];
  theirs = sv[1];
  if ((v->qemu = spawn_qemu (v, theirs, conns, n, log, err)) < 0)
    goto out;
  ak_closep (&theirs);
  disk = v->layer >= 0;
  ak_closep (&v->layer); /* QEMU's now */
  ak_closep (&v->layer_ro);
  for (size_t i = 0; i < n; i++)
    ak_closep (&conns[i]);
  {
    json_t *cfg = guest_config (spec, sh, n, &v->net, disk);
    _cleanup_free_ char *s = json_dumps (cfg, JSON_COMPACT);
    json_decref (cfg);
    if (ak_mux_send (v->chan, AK_MUX_CONFIG, 0, s, strlen (s)) < 0)
      return ak_error_set (err, errno, "send the guest its configuration");
  }
  {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + BOOT_TIMEOUT_MS;
  }
  for (;;)
    {
      struct pollfd p = { .fd = v->chan, .events = POLLIN };
      struct timespec ts;
      long long now;
      uint8_t op, *pl = NULL;
      uint32_t id;
      size_t len;
      int r;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
      if (now >= deadline)
        return ak_error_set (err, ETIMEDOUT, "the VM did not start within %d s (see %s/console.log)",
                             BOOT_TIMEOUT_MS / 1000, v->dir);
      r = poll (&p, 1, deadline - now > 200 ? 200 : (int) (deadline - now));
      if (v->parent != 0 && getppid () != v->parent)
        return ak_error_set (err, ECANCELED, "the run that started the VM is gone");
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        continue;
      r = ak_mux_recv (v->chan, &op, &id, &pl, &len);
      if (r <= 0)
        return ak_error_set (err, EIO, "the VM ended before its agent served (see %s/console.log)", v->dir);
      if (op == AK_MUX_READY)
        {
          free (pl);
          return 0;
        }
      if (op == AK_MUX_FAIL)
        {
          ak_error_set (err, EIO, "in the VM: %.*s", (int) len, (const char *) pl);
          free (pl);
          return -1;
        }
      free (pl);
    }
out:
  for (size_t i = 0; i < n; i++)
    ak_closep (&conns[i]);
  return rc;
}

static void
remove_dir (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  while (d != NULL && (e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      (void) unlinkat (dirfd (d), e->d_name, 0);
  if (d != NULL)
    closedir (d);
  (void) rmdir (dir);
}

typedef struct sup {
  vm_t *v;
  int sigfd;
  pid_t parent; /* an ephemeral run's agentkernel; 0 when detached */
  bool stopping;
  long long stop_deadline;
} sup_t;

static int
sup_signal (ak_mux_t *m)
{
  sup_t *s = m->data;
  struct signalfd_siginfo si;
  if (read (s->sigfd, &si, sizeof si) != sizeof si)
    return 0;
  if (si.ssi_signo == SIGCHLD)
    {
      int st;
      pid_t p;
      while ((p = waitpid (-1, &st, WNOHANG)) > 0)
        {
          if (p == s->v->qemu)
            {
              s->v->qemu = -1;
              return 1; /* the VM is gone */
            }
          if (p == s->v->console)
            s->v->console = -1;
          ak_vm_net_reaped (&s->v->net, p);
        }
      return 0;
    }
  /* The run that owns this VM died (its death signal): no grace. */
  if (s->parent != 0 && getppid () != s->parent)
    return 1;
  if (!s->stopping)
    {
      s->stopping = true;
      (void) ak_mux_send (m->chan, AK_MUX_STOP, 0, NULL, 0);
      /* The guest powers off when every process has ended; QEMU exits. */
      alarm (STOP_GRACE_MS / 1000);
      return 0;
    }
  return 1; /* SIGALRM, or asked again: no more waiting */
}

/* A report of the guest's exec watcher (the command policy's audit).  The
 * guest is not trusted: only a policy_violation of the commands policy, of
 * this sandbox (named here, never by the guest), with string and number
 * fields, is written. */
static int
sup_control (ak_mux_t *m, uint8_t op, const uint8_t *p, size_t len)
{
  sup_t *s = m->data;
  json_t *j, *fields, *out, *v;
  const char *k;
  if (op != AK_MUX_AUDIT || ak_backend_audit_hook == NULL || len > 16384
      || !ak_cmdpolicy_active (&s->v->spec->sec.commands))
    return 0;
  j = json_loadb ((const char *) p, len, 0, NULL);
  fields = json_object_get (j, "fields");
  if (j == NULL || !json_is_object (fields)
      || strcmp (json_string_value (json_object_get (j, "event")) ?: "", "policy_violation") != 0)
    {
      json_decref (j);
      return 0;
    }
  out = json_object ();
  json_object_foreach (fields, k, v)
    if (json_is_string (v) || json_is_integer (v))
      json_object_set (out, k, v);
  json_object_set_new (out, "policy", json_string ("commands"));
  ak_backend_audit_hook ("policy_violation", s->v->spec->name, out);
  json_decref (j);
  return 0;
}

/* The supervisor: boots the VM, reports, relays until the VM ends or is
 * stopped, then leaves nothing behind. */
static int
supervise (const ak_spec_t *spec, const char *dir, int listen_fd, int ready, int log, pid_t parent)
{
  vm_t v = { .spec = spec, .dir = (char *) dir, .parent = parent, .qemu = -1, .console = -1, .chan = -1,
             .ids.lock = -1, .layer = -1, .layer_ro = -1 };
  ak_error_t *err = NULL;
  sigset_t mask;
  int sigfd, rc = 1;

  ak_vm_net_init (&v.net);
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGALRM);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  /* A report to a run that is gone must not end the supervisor before it
   * has cleaned up. */
  signal (SIGPIPE, SIG_IGN);
  if (ak_vm_assets_find (&v.a, &err) < 0 || ak_vm_ids_take (&v.ids, &err) < 0 || vm_boot (&v, log, &err) < 0)
    {
      vm_kill (&v);
      ak_vm_ids_release (&v.ids);
      explain (dir, &err);
      (void) ak_report_error (ready, err);
      if (parent != 0)
        remove_dir (dir);
      return 1;
    }
  (void) ak_report_ok (ready, (int) getpid ());
  close (ready);
  {
    sup_t s = { .v = &v, .sigfd = sigfd, .parent = parent };
    ak_mux_t m = { .chan = v.chan, .listen_fd = listen_fd, .extra_fd = sigfd, .data = &s,
                   .on_control = sup_control, .on_extra = sup_signal };
    rc = ak_mux_run (&m) < 0 ? 1 : 0;
    if (v.qemu > 0 && s.stopping)
      {
        /* Asked to stop: give the guest its grace to power off. */
        for (int i = 0; i < STOP_GRACE_MS / 50 && waitpid (v.qemu, NULL, WNOHANG) == 0; i++)
          usleep (50000);
      }
  }
  vm_kill (&v);
  ak_vm_ids_release (&v.ids);
  ak_vm_assets_clear (&v.a);
  ak_closep (&v.layer);
  ak_closep (&v.layer_ro);
  if (parent != 0)
    remove_dir (dir); /* an ephemeral run's directory, whatever became of the run */
  return rc;
}

/* ---- run: a VM for one command ---- */

/* A signal to the command (its process alone, what a container's init
 * relays; a terminal's reaches its process group, as it would the
 * foreground group). */
static int
signal_command (int conn, int sig, bool group)
{
  json_t *j = json_pack ("{s:i}", "signal", sig);
  int rc;
  if (!group)
    json_object_set_new (j, "process", json_true ());
  rc = ak_proto_write_json (conn, AK_F_SIGNAL, 0, j, NULL);
  json_decref (j);
  return rc;
}

/* The command through the agent: EXEC, then stdio both ways until EXIT.
 * The run ends with the command, as a container's does: the agent sends
 * EXIT once the command has ended, whatever holds its output.  Signals to
 * agentkernel are relayed as the container's supervisor relays them: INT,
 * TERM, HUP, QUIT to the command, SIGKILL after the grace period (at once
 * for a second one). */
static int
exec_in_vm (int conn, const ak_spec_t *spec, const ak_stdio_t *io, int *status, ak_error_t **err)
{
  json_t *req = json_object (), *argv = json_array ();
  ak_proto_reader_t *rd;
  bool in_open = true, in_tty = isatty (io->in);
  int rc = -1;
  long long deadline = -1;
  sigset_t mask, old;
  _cleanup_close_ int sigfd = -1;

  for (char **a = spec->argv; a && *a; a++)
    json_array_append_new (argv, json_string (*a));
  json_object_set_new (req, "argv", argv);
  if (spec->workdir != NULL)
    json_object_set_new (req, "workdir", json_string (spec->workdir));
  if (spec->as_root)
    json_object_set_new (req, "root", json_true ());
  json_object_set_new (req, "end_with_command", json_true ());
  rc = ak_proto_write_json (conn, AK_F_EXEC, 0, req, err);
  json_decref (req);
  if (rc < 0)
    return -1;
  rc = -1;
  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGQUIT);
  sigprocmask (SIG_BLOCK, &mask, &old);
  sigfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0)
    {
      sigprocmask (SIG_SETMASK, &old, NULL);
      return ak_error_set (err, errno, "signalfd");
    }
  rd = ak_proto_reader_new (conn);
  for (;;)
    {
      struct pollfd p[3] = { { .fd = conn, .events = POLLIN },
                             { .fd = in_open ? io->in : -1, .events = POLLIN },
                             { .fd = sigfd, .events = POLLIN } };
      ak_frame_t f;
      int r, timeout = -1;
      if (deadline >= 0)
        {
          long long left = (deadline - (long long) ak_now_ns ()) / 1000000;
          timeout = left > 0 ? (int) left : 0;
        }
      r = ak_proto_reader_has_frame (rd) ? 1 : poll (p, 3, timeout);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          ak_error_set (err, errno, "poll");
          break;
        }
      if (r == 0)
        {
          /* Grace period over. */
          (void) signal_command (conn, SIGKILL, true);
          deadline = -1;
          continue;
        }
      if (p[2].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          if (read (sigfd, &si, sizeof si) == sizeof si)
            {
              /* The command is not on this terminal: what the terminal
               * sends (SI_KERNEL) is passed on too, to its group. */
              bool from_tty = si.ssi_code == SI_KERNEL && in_tty;
              if (deadline >= 0)
                (void) signal_command (conn, SIGKILL, true); /* a second one: no more waiting */
              else
                {
                  (void) signal_command (conn, (int) si.ssi_signo, from_tty);
                  if (si.ssi_signo != SIGQUIT || !from_tty)
                    deadline = (long long) ak_now_ns () + STOP_GRACE_MS * 1000000LL;
                }
            }
        }
      if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          char buf[65536];
          ssize_t n = read (io->in, buf, sizeof buf);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            in_open = false, n = 0;
          if (ak_proto_write (conn, AK_F_STDIN, 0, buf, (size_t) n, NULL) < 0)
            in_open = false;
        }
      if (!ak_proto_reader_has_frame (rd) && !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      r = ak_proto_read (rd, &f, err);
      if (r <= 0)
        {
          if (r == 0)
            ak_error_set (err, EIO, "the VM's agent closed the connection");
          break;
        }
      if (f.type == AK_F_STDOUT || f.type == AK_F_STDERR)
        {
          int fd = f.type == AK_F_STDOUT ? io->out : io->err;
          const uint8_t *q = f.payload;
          size_t left = f.len;
          while (left > 0)
            {
              ssize_t w = write (fd, q, left);
              if (w < 0 && errno == EINTR)
                continue;
              if (w <= 0)
                break;
              q += w, left -= (size_t) w;
            }
        }
      else if (f.type == AK_F_EXIT || f.type == AK_F_ERROR)
        {
          json_t *j = NULL;
          if (ak_proto_parse_json (&f, &j, err) < 0)
            break;
          if (f.type == AK_F_EXIT)
            {
              *status = (int) json_integer_value (json_object_get (j, "exit_code"));
              rc = 0;
            }
          else
            ak_error_set (err, 0, "%s", json_string_value (json_object_get (j, "message"))
                                            ? json_string_value (json_object_get (j, "message")) : "error");
          json_decref (j);
          break;
        }
    }
  ak_proto_reader_free (rd);
  sigprocmask (SIG_SETMASK, &old, NULL);
  return rc;
}

static pid_t
spawn_supervisor (const ak_spec_t *spec, const char *dir, bool detach, int *served, ak_error_t **err)
{
  int ready[2];
  pid_t child;
  _cleanup_free_ char *logp = ak_xasprintf ("%s/vm.log", dir);

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  {
    int keep[] = { ready[1] };
    /* An ephemeral run's supervisor is told (SIGTERM) when the run dies,
     * even by SIGKILL, and takes the VM down with it. */
    ak_worker_t w = { .keep = keep, .n_keep = 1, .detach = detach, .null_stdio = true,
                      .death_signal = detach ? 0 : SIGTERM };
    pid_t parent = getpid ();
    child = ak_worker_spawn (&w, err);
    if (child == 0)
      {
        ak_error_t *e = NULL;
        int log = open (logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        _cleanup_free_ char *sock = ak_xasprintf ("%s/agent.sock", dir);
        int lfd = listen_socket (sock, &e);
        /* Out of the terminal's foreground group: a Ctrl-C typed there is
         * the command's (relayed by the run), never QEMU's or the
         * supervisor's to end the VM with. */
        if (!detach)
          (void) setpgid (0, 0);
        if (log >= 0)
          dup2 (log, 2);
        if (lfd < 0)
          ak_report_fail (keep[0], e);
        _exit (supervise (spec, dir, lfd, keep[0], log, detach ? 0 : parent));
      }
  }
  close (ready[1]);
  if (child < 0)
    {
      close (ready[0]);
      return -1;
    }
  {
    _cleanup_free_ char *what = ak_xasprintf ("the microVM supervisor (see %s/vm.log)", dir);
    int rc = ak_report_read (ready[0], what, served, err);
    close (ready[0]);
    if (rc < 0)
      {
        if (!detach)
          waitpid (child, NULL, 0);
        return -1;
      }
  }
  return child;
}

int
ak_microvm_run (const ak_spec_t *spec, const ak_stdio_t *stdio, int *status, ak_error_t **err)
{
  char tmpl[] = "/tmp/agentkernel-vm.XXXXXX";
  _cleanup_free_ char *sock = NULL;
  _cleanup_close_ int conn = -1;
  ak_stdio_t io = stdio ? *stdio : (ak_stdio_t){ 0, 1, 2 };
  int served = 0, rc;
  pid_t sup;

  if (ak_microvm_check (spec, err) < 0)
    return -1;
  ak_vm_warn (spec);
  if (mkdtemp (tmpl) == NULL)
    return ak_error_set (err, errno, "mkdtemp");
  sup = spawn_supervisor (spec, tmpl, false, &served, err);
  if (sup < 0)
    {
      remove_dir (tmpl);
      return -1;
    }
  sock = ak_xasprintf ("%s/agent.sock", tmpl);
  rc = (conn = connect_socket (sock, err)) < 0 ? -1 : exec_in_vm (conn, spec, &io, status, err);
  ak_closep (&conn);
  {
    /* A supervisor stuck on a guest that stopped reading is killed after
     * the grace period, never waited for without end. */
    _cleanup_close_ int pidfd = (int) syscall (SYS_pidfd_open, sup, 0);
    kill (sup, SIGTERM);
    if (pidfd >= 0)
      {
        struct pollfd pw = { .fd = pidfd, .events = POLLIN };
        if (poll (&pw, 1, STOP_GRACE_MS + 5000) == 0)
          kill (sup, SIGKILL);
      }
  }
  while (waitpid (sup, NULL, 0) < 0 && errno == EINTR)
    ;
  remove_dir (tmpl);
  return rc;
}

/* ---- persistent sandboxes ---- */

int
ak_microvm_start (const ak_spec_t *spec, const char *dir, pid_t *supervisor, ak_error_t **err)
{
  int served = 0;
  if (ak_microvm_check (spec, err) < 0)
    return -1;
  ak_vm_warn (spec);
  if (spawn_supervisor (spec, dir, true, &served, err) < 0)
    return -1;
  *supervisor = (pid_t) served;
  return 0;
}

int
ak_microvm_connect (const char *dir, ak_error_t **err)
{
  _cleanup_free_ char *path = ak_xasprintf ("%s/agent.sock", dir);
  return connect_socket (path, err);
}

int
ak_microvm_stop (const char *dir, pid_t supervisor, ak_error_t **err)
{
  _cleanup_close_ int pidfd = (int) syscall (SYS_pidfd_open, supervisor, 0);
  struct pollfd p;
  if (pidfd < 0)
    return errno == ESRCH ? 0 : ak_error_set (err, errno, "pidfd_open %d", (int) supervisor);
  (void) ak_pidfd_send_signal (pidfd, SIGTERM);
  p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
  if (poll (&p, 1, STOP_GRACE_MS + 5000) == 0)
    {
      (void) ak_pidfd_send_signal (pidfd, SIGKILL);
      (void) poll (&p, 1, 5000);
    }
  return 0;
}

/* ---- warm pool: what pool.c needs of a VM ---- */

struct ak_vm {
  vm_t v;
};

ak_vm_t *
ak_vm_pool_boot (const ak_spec_t *spec, const char *dir, int log, pid_t parent, ak_error_t **err)
{
  ak_vm_t *p = ak_xcalloc (1, sizeof *p);
  p->v = (vm_t){ .spec = spec, .dir = (char *) dir, .parent = parent, .qemu = -1, .console = -1, .chan = -1,
                 .pooled = true, .stage_ns = -1, .ids.lock = -1, .layer = -1, .layer_ro = -1 };
  ak_vm_net_init (&p->v.net);
  if (spec->n_mounts > 0 || ak_spec_sec (spec, AK_SEC_MOUNT_HOME))
    ak_error_set (err, EINVAL, "a pooled VM has no volumes and no home share");
  else if (ak_vm_assets_find (&p->v.a, err) == 0 && ak_vm_ids_take (&p->v.ids, err) == 0
           && vm_boot (&p->v, log, err) == 0)
    return p;
  explain (dir, err);
  ak_vm_pool_free (p);
  return NULL;
}

int
ak_vm_pool_chan (const ak_vm_t *p)
{
  return p->v.chan;
}

pid_t
ak_vm_pool_qemu (const ak_vm_t *p)
{
  return p->v.qemu;
}

int
ak_vm_pool_stage_ns (const ak_vm_t *p)
{
  return p->v.stage_ns;
}

void
ak_vm_pool_free (ak_vm_t *p)
{
  if (p == NULL)
    return;
  vm_kill (&p->v);
  ak_vm_ids_release (&p->v.ids);
  ak_closep (&p->v.chan);
  ak_closep (&p->v.stage_ns);
  ak_vm_assets_clear (&p->v.a);
  free (p);
}

int
ak_vm_exec (int conn, const ak_spec_t *spec, const ak_stdio_t *io, int *status, ak_error_t **err)
{
  return exec_in_vm (conn, spec, io, status, err);
}

const ak_backend_t ak_microvm_backend = {
  .name = "microvm",
  .check = ak_microvm_check,
  .doctor = ak_microvm_doctor,
  .run = ak_microvm_run,
  .start = ak_microvm_start,
  .connect = ak_microvm_connect,
  .stop = ak_microvm_stop,
  .pool_start = ak_microvm_pool_start,
  .pool_wait = ak_container_pool_wait, /* the same READY/ERROR report on the control channel */
  .pool_claim = ak_microvm_pool_claim,
};
