/* Container backend internals: namespaces, mounts, seccomp, Landlock,
 * cgroups and user-mode networking, orchestrated by container.c.
 *
 * Two processes take part in a run:
 *   the supervisor  agentkernel itself, outside; writes the id maps, joins
 *                   the cgroup, starts the network, forwards signals, and
 *                   reports the exit status;
 *   the sandbox init PID 1 of the new namespaces; builds the root, drops
 *                   every privilege, then forks the command and reaps.
 * They talk over a SOCK_SEQPACKET pair with the messages below.
 */
#ifndef AK_CONTAINER_H
#define AK_CONTAINER_H

#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"

extern const ak_backend_t ak_container_backend;

/* ---- ids (userns.c) ---- */

/* The single uid/gid the sandbox runs as, inside and on the host. */
typedef struct ak_ids {
  uid_t inside_uid, host_uid;
  gid_t inside_gid, host_gid;
  bool caller_root; /* agentkernel runs as host root: host_uid is a dedicated
                       unprivileged id, never 0 */
  bool with_root;   /* also map uid/gid 0 (to host_root_id) and hold it in the
                       saved set, so the agent can run commands as either */
  uid_t host_root_id;
} ak_ids_t;

/* Host id the sandbox user gets when agentkernel runs as root. */
#define AK_ROOTFUL_HOST_ID 1000001000u

void ak_ids_plan (const ak_spec_t *spec, bool persistent, ak_ids_t *ids);
int ak_userns_write_maps (pid_t pid, const ak_ids_t *ids, ak_error_t **err);
int ak_userns_become (const ak_ids_t *ids, ak_error_t **err);
/* A user namespace fd mapping on-disk owner -> host id, for idmapped mounts
 * (root only). */
int ak_userns_idmap_fd (uid_t disk_uid, gid_t disk_gid, const ak_ids_t *ids, ak_error_t **err);
/* Whether this host lets the caller create user namespaces; fills *err with
 * what is missing and how to fix it. */
int ak_userns_check (ak_error_t **err);

/* ---- host sources (sources.c) ---- */

/* Host files and directories the sandbox shows (workspace, home, volumes,
 * injected files), opened while still the caller so that permissions are
 * the caller's, never the sandbox's. */
typedef struct ak_sources {
  int cwd_tree;  /* detached mount of spec->cwd, or -1 */
  int home_tree; /* detached mount of spec->home, or -1 */
  int persist_tree; /* a persistent sandbox's own directory (root, upper, work), or -1 */
  int rootfs_tree;  /* detached mount of spec->rootfs (read-only lower layer), or -1 */
  int *layer_trees; /* detached mounts of spec->image_layer_dirs (read-only), lowest first */
  size_t n_layers;
  int *vol_trees;
  size_t n_vols;
  int *file_fds;
  size_t n_files;
} ak_sources_t;

void ak_sources_init (ak_sources_t *s);
void ak_sources_close (ak_sources_t *s);
int ak_sources_open (const ak_spec_t *spec, const ak_ids_t *ids, bool idmap, const char *persist,
                     ak_sources_t *s, ak_error_t **err);
/* fd list in a fixed order, for passing over the sync socket. */
size_t ak_sources_fds (const ak_sources_t *s, int *fds, size_t max);
/* How many slots ak_sources_fds fills for spec. */
size_t ak_sources_count (const ak_spec_t *spec);
/* The workspace alone, as a detached tree of the pinned path (a claim of
 * the warm pool). */
int ak_sources_open_workspace (const char *path, const ak_fs_id_t *pin, const ak_ids_t *ids,
                               bool idmap, ak_error_t **err);
void ak_sources_from_fds (const ak_spec_t *spec, const int *fds, size_t n, ak_sources_t *s);

/* ---- the root filesystem (mounts.c, etc.c) ---- */

/* *exec_ruleset, *exec_info: the command policy's Landlock ruleset and
 * what its watcher needs (execpolicy.c), or -1; the caller enforces the one
 * with the rest of the confinement and hands the other to the supervisor. */
int ak_mounts_build_root (const ak_spec_t *spec, const ak_ids_t *ids, ak_sources_t *src,
                          int net_helper, int *exec_ruleset, int *exec_info, ak_error_t **err);
/* Attach a detached tree at dst beneath dirfd, on a mount point of the same
 * kind; owned: dst is a directory set-up owns, made real if it is not (else
 * created as needed, symlinks resolved within the root). */
int ak_mounts_attach (int dirfd, int tree, const char *dst, bool owned, ak_error_t **err);
/* A host path (under /oldroot) bound at dst beneath dirfd, nosuid, nodev. */
int ak_mounts_bind_host (int dirfd, const char *host, const char *dst, bool read_only,
                         ak_error_t **err);
/* Covers, in every share already attached (home, workspace, volumes), what
 * no sandbox may see: spec->private_paths (agentkernel's state, audit log,
 * recordings) and, unless spec->show_credentials, the credential stores
 * under home (hide.c). */
int ak_hide_private (const ak_spec_t *spec, const ak_sources_t *src, ak_error_t **err);
/* The synthesised /etc, written through rootfd (the new root's descriptor). */
int ak_etc_image (int rootfd, const ak_spec_t *spec, int net_helper, ak_error_t **err);
int ak_etc_populate (int rootfd, const ak_spec_t *spec, int net_helper, ak_error_t **err);

/* ---- confinement (landlock.c, seccomp.c, caps.c) ---- */

/* Landlock ABI version of the running kernel, 0 when unavailable (also when
 * disabled with AK_TEST_DISABLE=landlock, to test the fallback). */
int ak_landlock_abi (void);
int ak_landlock_apply (const ak_spec_t *spec, ak_error_t **err);

/* ---- the command policy (execpolicy.c) ---- */

/* In the new root (rootfd), before the pivot: covers the blocked programs
 * and builds the Landlock ruleset that makes execute a right of the allowed
 * files (or of the program trees); *ruleset is -1 when the spec has no
 * policy.  Fails, never silently weaker, where Landlock is missing.
 * writer: who the sandbox is, to tell what it can write: AK_EXECPOLICY_USERNS
 * (a container: any id mapped into its user namespace) or the uid its
 * commands run as (a microVM's guest, with no user namespace), and
 * root_writes when they may also run as root there. */
#define AK_EXECPOLICY_USERNS (-1L)
int ak_execpolicy_prepare (int rootfd, const ak_spec_t *spec, long writer, bool root_writes, int *ruleset,
                           int *info, ak_error_t **err);
/* After the sandbox's own Landlock domain: enforces that ruleset, for this
 * process and all it starts (closes it). */
int ak_execpolicy_apply (int ruleset, ak_error_t **err);

/* *info (a sealed memfd) holds this, for the watcher. */
#define AK_EXECINFO_MAX 512
typedef struct ak_execid {
  uint64_t dev, ino;
} ak_execid_t;
typedef struct ak_execinfo {
  uint64_t cover_dev, cover_ino; /* what every blocked program is covered with */
  uint32_t allowlist_only;
  uint32_t n_allowed;
  ak_execid_t allowed[AK_EXECINFO_MAX];
} ak_execinfo_t;

/* ---- the command policy's audit (execwatch.c) ----
 *
 * The kernel decides every exec (execpolicy.c); the watcher only sees them
 * coming, through a seccomp user notification on execve/execveat, and
 * reports in the audit log ("policy_violation") an exec the policy denies,
 * naming the program and the rule (and refuses it itself, with the same
 * EACCES the kernel would give).  Reading an exec's path from the process
 * races with its other threads: a report may name another file than the one
 * the kernel then opens, never let more run. */

/* In the init, after no_new_privs: the filter whose listener the
 * supervisor watches.  Returns the listener. */
int ak_execwatch_install (ak_error_t **err);
typedef struct ak_execwatch ak_execwatch_t;
/* Supervisor side: listener and info memfd (both taken). */
ak_execwatch_t *ak_execwatch_new (const ak_spec_t *spec, int listener, int info, ak_error_t **err);
int ak_execwatch_fd (const ak_execwatch_t *w);
/* Answers one pending notification (when fd is readable). */
void ak_execwatch_handle (ak_execwatch_t *w);
void ak_execwatch_free (ak_execwatch_t *w);

/* The newest system call the seccomp filter was written against
 * (file_setattr, Linux 6.17): every number above it gets ENOSYS. */
#define AK_SECCOMP_NR_MAX 469

/* The seccomp programs of a spec, each compiled into a sealed memfd, in the
 * order they are to be installed: the built-in filter (for a custom
 * profile: the one under it), then the custom profile's.  Returns how many
 * (1 or 2) were put in fds; the caller closes them.  ak_seccomp_load()
 * installs one from its fd. */
int ak_seccomp_compile (const ak_spec_t *spec, int fds[2], ak_error_t **err);
int ak_seccomp_compile_builtin (ak_seccomp_kind_t kind, ak_error_t **err);
/* A Docker seccomp profile (seccomp_custom.c); file names it in errors. */
int ak_seccomp_compile_custom (const char *file, const char *text, size_t len, ak_error_t **err);
int ak_seccomp_load (int fd, ak_error_t **err);
/* prefix (n instructions) then the rules' program into a sealed memfd. */
int ak_seccomp_export (const struct sock_filter *prefix, size_t n, scmp_filter_ctx rules,
                       ak_error_t **err);
/* The number of a system call by name (also those newer than libseccomp),
 * __NR_SCMP_ERROR when unknown. */
int ak_seccomp_nr (const char *name);

int ak_caps_drop_all (ak_error_t **err);

/* ---- limits (cgroup.c) ---- */

typedef struct ak_cgroup {
  char *paths[4]; /* directories we created, one per hierarchy touched */
  size_t n;
} ak_cgroup_t;

int ak_cgroup_create (const ak_spec_t *spec, ak_cgroup_t *cg, ak_error_t **err);
int ak_cgroup_attach (const ak_cgroup_t *cg, pid_t pid, ak_error_t **err);
void ak_cgroup_destroy (ak_cgroup_t *cg);
/* What a sandbox with memory, pids and cpu limits would get here: a group
 * is created and removed again.  Returns true when every limit would be
 * enforced; *detail (malloc'd) says which hierarchy and what is missing. */
bool ak_cgroup_probe (char **detail);

/* `agentkernel doctor` for this engine (doctor.c). */
void ak_container_doctor (ak_host_check_fn report, void *data);

/* ---- persistent sandboxes (persist.c) ---- */

/* Starts a persistent sandbox whose state lives in dir (spec.json's
 * directory): a detached supervisor runs it with the agent as PID 1,
 * serving on dir/agent.sock.  Returns once the agent serves, with the
 * supervisor's pid in *pid. */
int ak_container_start (const ak_spec_t *spec, const char *dir, pid_t *pid, ak_error_t **err);
/* The supervisor's part: runs the sandbox serving listen_fd until it ends
 * (*ready_fd gets the report of common/child.h once the agent serves, and
 * is then closed and set to -1). */
int ak_container_serve (const ak_spec_t *spec, int listen_fd, const char *persist, int *ready_fd,
                        ak_error_t **err);
/* The backend's connect and stop (see backend.h). */
int ak_container_connect (const char *dir, ak_error_t **err);
int ak_container_stop (const char *dir, pid_t supervisor, ak_error_t **err);
int ak_container_address (const char *dir, pid_t supervisor, char **ip, ak_error_t **err);

/* ---- warm pool (pool.c) ---- */

/* The backend's pool_start, pool_wait and pool_claim (see backend.h). */
int ak_container_pool_start (const ak_spec_t *spec, int claim_listen, pid_t *owner, ak_error_t **err);
/* A pooled sandbox's owner, forked (each backend's pool_start): it gets
 * death_signal when the daemon dies (re-checked against one that died
 * first), keeps only the standard streams, its end of the control channel
 * and claim_listen (-1: none), and starts from the default signal state.
 * Like fork(): 0 in the owner, its pid in the daemon, -1 with *err; *ctl
 * is the caller's end of the channel. */
pid_t ak_container_pool_fork (int claim_listen, int death_signal, int *ctl, ak_error_t **err);
int ak_container_pool_wait (int ctl, ak_error_t **err);
int ak_container_pool_claim (int ctl, const ak_spec_t *spec, const char *key, const ak_stdio_t *stdio, int *status,
                             ak_error_t **err);
/* The pooled sandbox's owner (container.c): builds it, reports it idle on
 * ctl, serves one claim, tears it down. */
int ak_container_pool_serve (const ak_spec_t *spec, int ctl, int claim_listen, ak_error_t **err);

/* In the pooled supervisor: the claimant's connection, which the daemon
 * sends over ctl (backend.h, pool_handoff), or -1 when the daemon is gone. */
int ak_pool_take_claimant (int ctl);
typedef struct ak_pool_first ak_pool_first_t;
/* In the idle pooled supervisor: a claimant that connected to the shape's
 * listening socket, when it is one of the daemon's fronts (its claim,
 * already sent, shows the daemon's badge: in *first, badge removed) or
 * passes ak_peer_check (common/peer.h: the same user, namespaces and
 * root, no more confined; its first message in *first when it had come),
 * else -1 (none waiting, another idle sandbox took it, or it was refused
 * and its connection closed: the claimant starts cold). */
int ak_pool_accept_claimant (int claim_listen, ak_pool_first_t *first);

/* Unprivileged: a process in a mount namespace owned by the sandbox's user
 * namespace, where it opens the claimant's workspace (pid -1: none). */
typedef struct ak_pool_helper {
  pid_t pid;
  int fd;
} ak_pool_helper_t;
int ak_pool_helper_start (pid_t init_pid, ak_pool_helper_t *h, ak_error_t **err);
void ak_pool_helper_stop (ak_pool_helper_t *h);

/* In the pooled supervisor: checks the claim (its len bytes, NUL after
 * them) is for exactly spec (whose pool key has the digest key_id,
 * "sha256:<hex>"), and opens its workspace (*cwd_tree, or -1). */
int ak_pool_claim_check (const ak_spec_t *spec, const char *key_id, const ak_ids_t *ids, const char *claim,
                         size_t len, ak_pool_helper_t *h, int *cwd_tree, ak_error_t **err);
/* Largest claim accepted (argv and environment included); one of up to
 * AK_SYNC_DATA_MAX bytes comes in its message, a larger one in a sealed
 * memfd (ak_sealed_memfd). */
#define AK_POOL_CLAIM_MAX (4u << 20)

/* What the claim brings to the sandbox init. */
typedef struct ak_pool_claim {
  ak_stdio_t stdio;
  char **argv, **env, **host_env; /* env: the explicit values, host_env: pass_env's */
  char *buf;                      /* the claim's bytes, which they point into */
} ak_pool_claim_t;
/* In the init, before privileges are dropped: takes fds (stdin, stdout,
 * stderr, the claim's memfd unless its bytes are given, and the workspace
 * when text says "cwd"), attaches the workspace and enters the working
 * directory.  An armed sandbox's command process calls it after the drop,
 * without a workspace. */
int ak_pool_init_claim (const ak_spec_t *spec, const char *text, const char *bytes, size_t bytes_len,
                        const int *fds, size_t n, ak_pool_claim_t *claim, ak_error_t **err);

/* ---- network (netns.c) ---- */

typedef enum ak_net_helper {
  AK_NET_NONE = 0,
  AK_NET_SLIRP4NETNS,
  AK_NET_PASTA,
  AK_NET_POLICY, /* the egress policy (egress.c, egress_ns.c): no NAT at all */
} ak_net_helper_t;

typedef struct ak_net {
  ak_net_helper_t kind;
  pid_t pid;    /* helper process while we own it, else -1 */
  int ready_fd; /* becomes readable when the network is up */
  int exit_fd;  /* closing it stops the helper */
  pid_t fwd_pid;   /* the published ports' forwarder (portfwd.c), or -1 */
  int fwd_exit_fd; /* closing it stops the forwarder */
} ak_net_t;

int ak_net_loopback_up (ak_error_t **err);
int ak_net_check (const ak_spec_t *spec, ak_error_t **err);
/* The helper this host would use, and its path. */
ak_net_helper_t ak_net_helper (const char **path);
/* Start the network of the namespace of `pid`: the egress policy of spec,
 * or user-mode NAT. */
int ak_net_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net,
                  ak_error_t **err);
/* The egress policy's half of ak_net_start (egress_ns.c), and the nft
 * program it needs (NULL when not installed). */
int ak_egress_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net,
                     ak_error_t **err);
const char *ak_egress_nft (void);
/* The published ports of spec (portfwd.c): bound on the host here (a port
 * in use is an error), forwarded into the namespace of pid. */
int ak_portfwd_start (pid_t pid, const ak_ids_t *ids, const ak_spec_t *spec, ak_net_t *net,
                      ak_error_t **err);
int ak_net_wait_ready (ak_net_t *net, ak_error_t **err);
void ak_net_stop (ak_net_t *net);

/* ---- sync messages (sync.c) ---- */

enum ak_sync_type {
  AK_SYNC_GO = 1,  /* supervisor -> init: maps written, cgroup joined */
  AK_SYNC_READY,   /* init -> supervisor: root built, waiting to drop privileges */
  AK_SYNC_EXEC,    /* supervisor -> init: network up, start the command */
  AK_SYNC_ERROR,   /* init -> supervisor: setup failed, text says why */
  AK_SYNC_WARN,    /* init -> supervisor: degraded feature, text says which */
  AK_SYNC_STARTED, /* init -> supervisor: command forked */
  AK_SYNC_EXIT,    /* init -> supervisor: command ended, value = wait status */
  AK_SYNC_WATCH,   /* init -> supervisor: the exec listener and policy info (fds) */
  AK_SYNC_CLAIM,   /* claimant -> pooled supervisor: stdin, stdout, stderr, the claim (pool.c),
                    * and a front's badge (common/peer.h) */
  AK_SYNC_SIGNAL,  /* claimant -> pooled supervisor: relay signal `value` */
  AK_SYNC_REPORT,  /* pooled supervisor -> claimant: the armed init's report channel (fd) */
  AK_SYNC_CLAIMED, /* pooled supervisor -> daemon: took a claimant from the shape's socket */
};

/* Most descriptors one message carries (the kernel's SCM_RIGHTS limit is
 * 253); fds given to ak_sync_recv must have room for this many. */
#define AK_SYNC_MAX_FDS 250
/* Most bytes one message carries as data (ak_sync_send_data). */
#define AK_SYNC_DATA_MAX 1023

/* A claimant's first message, when it was read with its connection
 * (ak_pool_accept_claimant). */
struct ak_pool_first {
  bool have;
  int type, value;
  char text[AK_SYNC_DATA_MAX + 2];
  int fds[AK_SYNC_MAX_FDS];
  size_t n_fds;
};
/* Most host sources one sandbox has (cwd, home, persist, rootfs, image
 * layers, volumes, files), so that they and the listening socket travel in
 * one message; past it a sandbox is refused with a clear error. */
#define AK_MAX_SOURCES (AK_SYNC_MAX_FDS - 1)

int ak_sync_send (int fd, int type, int value, const char *text, const int *fds, size_t n_fds);
/* A message whose text is len bytes of data (NULs allowed), with value len;
 * the receiver finds them in its text (ak_sync_recv copies every byte). */
int ak_sync_send_data (int fd, int type, const void *data, size_t len, const int *fds, size_t n_fds);
/* Receives one message; returns 0 on EOF (peer gone), 1 on a message. */
int ak_sync_recv (int fd, int *type, int *value, char *text, size_t text_len, int *fds,
                  size_t *n_fds);

#endif
