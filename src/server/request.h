/* The HTTP API's requests, checked before anything acts on them.
 *
 * Pure functions over a request's JSON body and URL pieces: no I/O, no
 * sandbox touched, so they can be fuzzed on their own (tests/fuzz).  Every
 * error is a client error: a message naming the field and what it must be.
 * Unknown fields are refused, not ignored: a misspelt "profile" must not
 * silently leave a sandbox with the default one.
 */
#ifndef AK_SERVER_REQUEST_H
#define AK_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"
#include "model/cmdpolicy.h"

/* Most commands in one POST /batch/run, files in one POST .../files. */
#define AK_API_MAX_BATCH 64
#define AK_API_MAX_FILES 1000

/* A command to run: POST /run, /run/stream, /sandboxes/{name}/exec[/detach]
 * and each of /batch/run's. */
typedef struct ak_api_cmd {
  char **argv;    /* NULL-terminated, at least one */
  char **env;     /* KEY=VALUE, NULL-terminated (may be empty) */
  char *workdir;  /* absolute, or NULL */
  bool sudo;      /* exec as the sandbox's root */
  char *profile;  /* run: "permissive" | "moderate" | "restrictive" | NULL */
  char *image;    /* NULL (host), or a reference, "host" or "auto" */
  char *backend;  /* run: "container" | "microvm" | NULL (the default) */
  char **allow_hosts; /* run: host patterns (model/netpolicy.h), or NULL */
  char **block_hosts;
  ak_cmdpolicy_t commands; /* run: {allow, block, allowlist_only} (model/cmdpolicy.h) */
  char **ports;       /* run: published ports ([ADDR:]HOSTPORT:PORT[/udp]), or NULL */
} ak_api_cmd_t;

typedef struct ak_api_create {
  char *name;
  char *profile;
  char *image;
  char *backend;                /* "container" | "microvm" | NULL */
  unsigned long long memory_mb; /* 0: the profile's */
  unsigned disk_mb;             /* 0: none */
  unsigned vcpus;               /* 0: the profile's */
  char **allow_hosts;           /* host patterns, or NULL */
  char **block_hosts;
  char **labels;                /* "KEY=VALUE" (model/labels.h), or NULL */
  char *description;            /* or NULL */
  ak_cmdpolicy_t commands;      /* the command policy, added to the server's */
  char **ports;                 /* published ports, or NULL */
} ak_api_create_t;

/* PATCH /sandboxes/{name}: a JSON merge patch (RFC 7396) of the labels and
 * the description. */
typedef struct ak_api_patch {
  char **set;        /* "KEY=VALUE" to set, NULL-terminated */
  char **unset;      /* keys whose value is null: removed */
  char *description; /* NULL: unchanged; "": removed (null or "") */
} ak_api_patch_t;

typedef struct ak_api_file {
  char *path; /* absolute inside the sandbox */
  char *data;
  size_t len;
} ak_api_file_t;

void ak_api_cmd_clear (ak_api_cmd_t *c);
void ak_api_create_clear (ak_api_create_t *c);
void ak_api_files_free (ak_api_file_t *files, size_t n);
void ak_api_patch_clear (ak_api_patch_t *p);

/* The body as a JSON object (no duplicate keys).  An empty body is {}. */
json_t *ak_api_parse_body (const char *body, size_t len, ak_error_t **err);

/* {command, image?, profile?, backend?, fast?, allow_hosts?, block_hosts?, commands?} */
int ak_api_parse_run (const json_t *body, ak_api_cmd_t *out, ak_error_t **err);
/* {command, env?, workdir?, sudo?} */
int ak_api_parse_exec (const json_t *body, ak_api_cmd_t *out, ak_error_t **err);
/* {name, image?, profile?, backend?, vcpus?, memory_mb?, disk_mb?, allow_hosts?, block_hosts?, commands?,
 * labels?: {key: value}, description?} (+ fields this server refuses) */
int ak_api_parse_create (const json_t *body, ak_api_create_t *out, ak_error_t **err);
/* {labels?: {key: value | null}, description?: string | null}, at least one */
int ak_api_parse_patch (const json_t *body, ak_api_patch_t *out, ak_error_t **err);
/* The ?label= filters of GET /sandboxes ("k:v" or "k"), checked. */
int ak_api_check_label_filter (const char *filter, ak_error_t **err);
/* {commands: [{command, profile?}, ...]}: *cmds is an array of *n */
int ak_api_parse_batch (const json_t *body, ak_api_cmd_t **cmds, size_t *n, ak_error_t **err);
/* {content, encoding?: "utf8" | "base64"} for a file at `path` */
int ak_api_parse_file_write (const json_t *body, const char *path, ak_api_file_t *out, ak_error_t **err);
/* {files: {path: content}}: relative paths resolve against base */
int ak_api_parse_files (const json_t *body, const char *base, ak_api_file_t **files, size_t *n,
                        ak_error_t **err);
/* {by: "30m"} */
int ak_api_parse_extend (const json_t *body, long long *seconds, ak_error_t **err);

/* "45s", "30m", "1h30m", "2d", or plain seconds; 1 s to 366 days. */
int ak_api_parse_duration (const char *s, long long *seconds, ak_error_t **err);

/* A file path from a URL (already percent-decoded, without its leading
 * "/files/"), or a path from a body: *inside is the absolute path it names.
 * Refuses "." and ".." components (also when they arrived encoded), NUL
 * bytes and overlong paths. */
int ak_api_file_path (const char *rest, const char *base, char **inside, ak_error_t **err);

#endif
