/* Command-line front end: one file per subcommand. */
#ifndef AK_CLI_H
#define AK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/error.h"
#include "images/image.h"
#include "model/spec.h"
#include "service/agent_host.h"

#define AK_EXIT_FAILURE 125

/* Flags that decide a sandbox, shared by run, create and config show.
 * Each records whether it was given, so that only explicit flags override
 * the config file (DESIGN.md: profile, then config keys, then CLI flags). */
typedef struct ak_cli_sandbox {
  const char *profile;
  const char *config;
  const char *workdir;
  const char *rootfs;
  unsigned disk_mb;
  bool disk_set;
  const char *image;
  const char *name;
  const char *hostname;
  const char *seccomp; /* --seccomp NAME|FILE */
  const char *agent;   /* --agent NAME: its compatibility mode, and the command */
  const char *backend; /* -B/--backend NAME */
  bool unsafe_seccomp; /* --allow-unsafe-seccomp */
  bool no_network;
  bool as_root;
  bool memory_set, cpus_set, pids_set;
  unsigned long long memory_mb;
  unsigned cpu_millis;
  unsigned pids;
  char **env;     /* -e values, in order */
  char **volumes; /* -v values, in order */
  char **allow_hosts; /* --allow-host values, in order */
  char **block_hosts; /* --block-host values, in order */
  char **allow_cmds;  /* --allow-cmd values, in order */
  char **block_cmds;  /* --block-cmd values, in order */
  char **publish;     /* -P/--publish values (create: -p too), in order */
  bool create;        /* parsing create's flags: -p publishes a port */
  bool show_only;     /* config show: a volume named by -v is not created */
  /* The named volumes of -v, held against a delete until freed
   * (ak_volume_hold). */
  int *volume_locks;
  size_t n_volume_locks;
  /* Set by ak_cli_sandbox_resolve(), for config show: the config file read
   * (NULL: none), whether it was trusted, and the settings it was refused. */
  char *config_used;
  bool config_trusted;
  char **config_refused;
} ak_cli_sandbox_t;

/* Parses one sandbox flag at argv[*i]; returns 1 if consumed (advancing *i
 * past its value), 0 if argv[*i] is not a sandbox flag, -1 on a bad value. */
int ak_cli_sandbox_flag (ak_cli_sandbox_t *f, int argc, char **argv, int *i, ak_error_t **err);
void ak_cli_sandbox_free (ak_cli_sandbox_t *f);
/* Resolves profile, config file and flags, in that order, into spec. */
int ak_cli_sandbox_resolve (ak_cli_sandbox_t *f, ak_spec_t *spec, ak_error_t **err);

/* Options and commands (commands.c): the one table --help, 'help CMD',
 * 'completions' and the man page ('help --man') are printed from. */
typedef struct ak_cli_opt {
  const char *lng;  /* "--keep" */
  const char *shrt; /* "-k" or NULL */
  const char *arg;  /* "NAME", "[PATH]" (optional value) or NULL */
  const char *help; /* lines separated by '\n' */
} ak_cli_opt_t;

enum {
  AK_CMD_SANDBOX_OPTS = 1, /* takes ak_cli_sandbox_opts too */
  AK_CMD_GROUP = 2,        /* also 'agentkernel sandbox NAME' */
  AK_CMD_OWN_HELP = 4,     /* prints its own --help (options not in the table) */
};

typedef struct ak_cli_cmd {
  const char *name, *alias, *args, *summary, *desc;
  int (*fn) (int argc, char **argv);
  const ak_cli_opt_t *opts;
  unsigned flags;
} ak_cli_cmd_t;

extern const ak_cli_opt_t ak_cli_sandbox_opts[];
extern const ak_cli_cmd_t ak_cli_commands[];
const ak_cli_cmd_t *ak_cli_cmd_find (const char *name);
void ak_cli_help (FILE *out, const ak_cli_cmd_t *c);
/* Prints name's help on out; -1 when there is no such command. */
int ak_cli_help_of (const char *name, FILE *out);
void ak_cli_print_opts (FILE *out, const ak_cli_opt_t *opts);
void ak_cli_usage (FILE *out);
/* The sandbox name --branch means (cli_util.c). */
char *ak_cli_branch_name (ak_error_t **err);
/* Sets a new sandbox's time to live (ak_sandbox_extend from now). */
int ak_cli_set_ttl (const char *name, long long seconds, ak_error_t **err);
/* "30s", "10m", "1h", "2d" or plain seconds -> seconds (1 s to 366 days). */
int ak_cli_parse_duration (const char *s, long long *seconds, ak_error_t **err);

/* Trusted config files (trust.c). */
void ak_sha256_hex (const void *data, size_t len, char out[65]);
/* Reads file once: its bytes and its canonical path. */
int ak_trust_read (const char *file, char **buf, size_t *len, char **real, ak_error_t **err);
/* Whether (real, hex) is recorded as trusted. */
bool ak_trust_check (const char *real, const char *hex);
/* Drops the record of real, then records (real, hex) unless hex is NULL. */
int ak_trust_update (const char *real, const char *hex, bool *was_present, ak_error_t **err);

/* Prints "agentkernel: <message>" and returns 125. */
int ak_cli_fail (ak_error_t *err);
int ak_cli_usage_error (const char *cmd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

int cmd_run (int argc, char **argv);
/* A pool front (front.c), run by the pool daemon only. */
int ak_cli_front_main (void);
int cmd_create (int argc, char **argv);
int cmd_start (int argc, char **argv);
int cmd_stop (int argc, char **argv);
int cmd_remove (int argc, char **argv);
int cmd_list (int argc, char **argv);
int cmd_exec (int argc, char **argv);
int cmd_attach (int argc, char **argv);
int cmd_cp (int argc, char **argv);
int cmd_audit (int argc, char **argv);
int cmd_detached (int argc, char **argv);
int cmd_config (int argc, char **argv);
int cmd_replay (int argc, char **argv);
int cmd_mcp (int argc, char **argv);
int cmd_serve (int argc, char **argv);
int cmd_daemon (int argc, char **argv);
/* serve --pool: a pool daemon (started as `daemon start` would) unless one runs. */
int ak_cli_daemon_ensure (void);
int cmd_image (int argc, char **argv);
int cmd_info (int argc, char **argv);
int cmd_extend_ttl (int argc, char **argv);
int cmd_gc (int argc, char **argv);
int cmd_clean (int argc, char **argv);
int cmd_export (int argc, char **argv);
int cmd_sandbox (int argc, char **argv);
int cmd_volume (int argc, char **argv);
int cmd_help (int argc, char **argv);
int cmd_completions (int argc, char **argv);
/* Agents, their integration files and the host check (cmd_agents.c,
 * cmd_plugin.c, cmd_doctor.c, cmd_setup.c). */
int cmd_agents (int argc, char **argv);
int cmd_plugin (int argc, char **argv);
int cmd_doctor (int argc, char **argv);
int cmd_setup (int argc, char **argv);
/* The host check, printed on out; true when everything needed is there. */
bool ak_cli_doctor (FILE *out, bool json);
/* plugin install/remove of target (an agent, mcp or all) in the current
 * directory or home, reporting each file on out. */
int ak_cli_plugin_apply (const char *target, int op, bool global, bool dry, bool force, FILE *out,
                         ak_error_t **err);
/* One agent's status as JSON (a new reference) and as text rows. */
struct json_t *ak_cli_agent_json (const ak_agent_status_t *st);
void ak_cli_agent_row (FILE *out, const ak_agent_status_t *st);

/* Pull progress on stderr (cmd_image.c): bars on a terminal, one line per
 * layer otherwise.  data: an ak_cli_progress_t. */
typedef struct ak_cli_progress {
  bool tty;
  unsigned long long start_ns, last_ns;
} ak_cli_progress_t;
void ak_cli_pull_progress (ak_pull_event_t ev, const char *digest, uint64_t done, uint64_t total, void *data);

#endif
