/* The sandbox spec: everything that decides a sandbox, resolved once.
 *
 * Front ends (CLI, HTTP, MCP) build a spec from a profile, a config file and
 * their own flags; backends consume it and never look at flags or files.
 * Ownership: every pointer in a spec is owned by it; ak_spec_clear() frees
 * them all.  A spec is not thread safe; copy it with ak_spec_copy().
 */
#ifndef AK_SPEC_H
#define AK_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "model/cmdpolicy.h"
#include "model/netpolicy.h"

typedef enum ak_profile {
  AK_PROFILE_PERMISSIVE = 0,
  AK_PROFILE_MODERATE,
  AK_PROFILE_RESTRICTIVE,
} ak_profile_t;

/* Where the value of a security setting came from (for `config show`). */
typedef enum ak_source {
  AK_SRC_DEFAULT = 0, /* built-in default */
  AK_SRC_PROFILE,     /* the profile's table row */
  AK_SRC_CONFIG,      /* an explicit key in agentkernel.toml */
  AK_SRC_CLI,         /* an explicit command-line flag (or API field) */
} ak_source_t;

typedef struct ak_setting {
  bool value;
  ak_source_t source;
  int line; /* config line when source == AK_SRC_CONFIG */
} ak_setting_t;

/* The five rows of the profile table, in table order. */
typedef enum ak_sec_key {
  AK_SEC_NETWORK = 0,
  AK_SEC_MOUNT_CWD,
  AK_SEC_MOUNT_HOME,
  AK_SEC_PASS_ENV,
  AK_SEC_READ_ONLY,
  AK_SEC_N
} ak_sec_key_t;

/* The seccomp filter ([security] seccomp, --seccomp): a built-in by name,
 * from loosest to strictest, or a custom profile (model/seccomp_profile.h). */
typedef enum ak_seccomp_kind {
  AK_SECCOMP_DEFAULT = 0, /* the profile's own: permissive, moderate or restrictive */
  AK_SECCOMP_PERMISSIVE,  /* also the floor every custom profile is stacked on */
  AK_SECCOMP_MODERATE,
  AK_SECCOMP_AI_AGENT,
  AK_SECCOMP_RESTRICTIVE,
  AK_SECCOMP_CUSTOM,
} ak_seccomp_kind_t;

typedef struct ak_seccomp_sel {
  ak_seccomp_kind_t kind;
  ak_source_t source;
  int line; /* config line when source == AK_SRC_CONFIG */
  /* CUSTOM only.  The text is the profile as read when the spec was
   * resolved: a persistent sandbox's start runs what create checked, never
   * a file changed since. */
  char *file;
  char *text;
  /* The built-in filter installed before the custom one, whose refusals the
   * custom one cannot lift: the floor (PERMISSIVE) for a profile the user
   * chose, the filter in force for one named by an untrusted config. */
  ak_seccomp_kind_t under;
  /* --allow-unsafe-seccomp (command line only): nothing under it. */
  bool unsafe;
} ak_seccomp_sel_t;

typedef struct ak_security {
  ak_profile_t profile;
  ak_source_t profile_source;
  ak_setting_t s[AK_SEC_N];
  ak_seccomp_sel_t seccomp;
  /* [security.domains], --allow-host, --block-host (model/netpolicy.h):
   * enforced whenever network is on. */
  ak_netpolicy_t domains;
  /* [security.commands], --allow-cmd, --block-cmd (model/cmdpolicy.h):
   * enforced at every exec inside the sandbox. */
  ak_cmdpolicy_t commands;
} ak_security_t;

typedef struct ak_mount {
  char *source; /* absolute host path */
  char *dest;   /* absolute path inside */
  bool read_only;
  ak_fs_id_t pin; /* what source was at create (see ak_spec_pin_sources) */
} ak_mount_t;

typedef struct ak_inject {
  char *source; /* absolute host path (resolved against the config file) */
  char *dest;   /* absolute path inside */
  int line;
  ak_fs_id_t pin;
} ak_inject_t;

typedef struct ak_resources {
  unsigned long long memory_mb; /* 0: no limit */
  unsigned cpu_millis;          /* 1000 = one CPU; 0: no limit */
  unsigned pids;                /* 0: no limit */
  unsigned vcpus;               /* microVM only; containers see all CPUs */
  unsigned log_mb;              /* cap of each detached command's log, MiB; 0: AK_LOG_MB_DEFAULT */
  unsigned disk_mb;             /* size of the writable layer (and of /tmp), MiB; 0: no limit */
} ak_resources_t;

/* A detached command's stdout and stderr are each kept to this many MiB,
 * plus one rotated file of the same size ([resources] log_mb). */
#define AK_LOG_MB_DEFAULT 16
#define AK_LOG_MB_MAX 65536
#define AK_DISK_MB_MAX (1u << 24)
#define AK_RES_N 6

typedef struct ak_spec {
  char *name;    /* NULL for an anonymous `run` */
  char *backend; /* "container" */
  char *image;   /* "host" unless an image or rootfs is named */
  char *rootfs;  /* host directory used as root, or NULL */
  /* An OCI image (image names a reference): what create or run resolved it
   * to, so that every start runs exactly that image.  The layer
   * directories are derived from the diff ids under the image store, never
   * stored as paths. */
  char *image_digest;  /* manifest digest, or NULL for the host image / a rootfs */
  char **image_layers; /* layer diff ids ("sha256:HEX"), lowest first, or NULL */
  char **image_env;    /* the image config's Env, or NULL */
  char **image_layer_dirs; /* set by the service layer before each run or start; never stored */
  ak_security_t sec;
  ak_resources_t res;
  ak_source_t res_source[AK_RES_N]; /* memory, cpu, pids, vcpus, log, disk */
  char *cwd;      /* host directory shown at /workspace when mount_cwd */
  char *home;     /* host home shown at /home/user when mount_home */
  ak_fs_id_t rootfs_pin, cwd_pin, home_pin;
  char **env;     /* explicit KEY=VALUE pairs (-e), NULL-terminated */
  char **host_env; /* pass_env values captured from the caller, KEY=VALUE */
  ak_mount_t *mounts;
  size_t n_mounts;
  ak_inject_t *files;
  size_t n_files;
  char *workdir; /* inside; NULL: /workspace when mounted, else HOME */
  char **argv;   /* the command, NULL-terminated */
  bool as_root;  /* run as uid 0 inside (still without host privileges) */
  char *hostname;
  /* Well-known credential stores under home (ak_credential_paths) are shown
   * with mount_home only when set ([security] hide_credentials = false). */
  bool show_credentials;
  /* Host paths holding agentkernel's own state (sandbox records, the audit
   * log, recordings), never shown inside whatever share holds them.  Set by
   * the service layer before each run or start, from where this agentkernel
   * keeps them; never stored.  NULL-terminated, canonical, or NULL. */
  char **private_paths;
  /* Directories beneath a private path that a share may still name as its
   * source, each one below them (named volumes: <state>/volumes/<slug>).
   * Set and never stored like private_paths. */
  char **shared_paths;
  char *agent;       /* [agent] preferred */
  char *compat_mode; /* [agent] compatibility_mode */
  /* Metadata given at create (model/labels.h): recorded with the sandbox's
   * state (service/store.h: ak_record_t), where it can change later; never
   * part of spec.json. */
  char **labels; /* "KEY=VALUE", sorted, or NULL */
  char *description;
} ak_spec_t;

extern const char *const ak_sec_key_names[AK_SEC_N];
/* The exact variables pass_env lets through. */
extern const char *const ak_pass_env_names[];

const char *ak_profile_name (ak_profile_t p);
int ak_profile_from_name (const char *name, ak_profile_t *out, ak_error_t **err);
const char *ak_source_name (ak_source_t s);
int ak_sec_key_from_name (const char *name);

/* A spec with built-in defaults and the moderate profile. */
void ak_spec_init (ak_spec_t *spec);
void ak_spec_clear (ak_spec_t *spec);

/* Reset the five settings (and the profile's resource defaults, unless they
 * were set explicitly) to the table row of `p`. */
void ak_spec_set_profile (ak_spec_t *spec, ak_profile_t p, ak_source_t src);
void ak_spec_set_security (ak_spec_t *spec, ak_sec_key_t key, bool value, ak_source_t src, int line);
static inline bool
ak_spec_sec (const ak_spec_t *spec, ak_sec_key_t key)
{
  return spec->sec.s[key].value;
}

/* Add an explicit KEY=VALUE; a later value for the same key replaces an
 * earlier one.  Fails on an empty or malformed key. */
int ak_spec_add_env (ak_spec_t *spec, const char *kv, ak_error_t **err);
/* Parse "HOST:DEST[:ro|:rw]". */
int ak_spec_add_mount (ak_spec_t *spec, const char *arg, ak_error_t **err);
/* Capture the caller's pass_env variables (done once, by the front end). */
void ak_spec_capture_host_env (ak_spec_t *spec, char *const *environ_);

/* Pins every host source the sandbox will show (rootfs, the workspace with
 * mount_cwd, home with mount_home, volumes, [[files]]): its path made
 * canonical and its identity (device, inode, type) recorded, unless already
 * recorded (config files pin their [[files]] when they resolve them).  A
 * persistent sandbox's start re-opens each source without following
 * symlinks and refuses one that is no longer the same object: a source
 * inside a writable workspace swapped for a symlink to / or to a secret
 * after create is not shown. */
int ak_spec_pin_sources (ak_spec_t *spec, ak_error_t **err);

/* Checks that only make sense on the whole spec (after all layers). */
int ak_spec_validate (const ak_spec_t *spec, ak_error_t **err);

/* The final environment of the command, as the sandbox will see it. */
char **ak_spec_build_env (const ak_spec_t *spec);
/* The same for a command run as root (root) or as the sandbox user, seen
 * from inside: HOME is always the home inside (/root or /home/user), never
 * the host's; with pass_env, the caller's PATH keeps only the directories
 * dir_exists accepts (NULL: all), and the default PATH when none is left. */
char **ak_spec_build_env_in (const ak_spec_t *spec, bool root, bool (*dir_exists) (const char *dir));
/* Where a command starts when it names no directory: the spec's workdir,
 * else /workspace when the project is mounted, else the user's home. */
const char *ak_spec_default_workdir (const ak_spec_t *spec, bool root);

/* Credential stores hidden from the home share unless show_credentials,
 * relative to home, NULL-terminated. */
extern const char *const ak_credential_paths[];

/* Valid sandbox name: 1-63 of [A-Za-z0-9_-]. */
bool ak_name_valid (const char *name);

#endif
