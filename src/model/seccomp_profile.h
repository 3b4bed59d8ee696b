/* Seccomp profiles: the built-in filters by name, and custom profiles in
 * Docker's seccomp JSON format, parsed into rules that the container
 * backend compiles with libseccomp (backend/container/seccomp.c).
 *
 * The parser takes untrusted bytes (a profile named by a repository's
 * agentkernel.toml): every field is checked for its type and value, a
 * malformed file is one error naming the file (and jansson's line and
 * column), and nothing is left allocated on failure.  Unknown system call
 * names are kept as written: the backend skips those it cannot resolve, as
 * Docker does.
 */
#ifndef AK_SECCOMP_PROFILE_H
#define AK_SECCOMP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/spec.h"

/* A profile file larger than this is refused unread (Docker's default
 * profile is about 20 KiB). */
#define AK_SECCOMP_PROFILE_MAX (1024 * 1024)

/* Comparison operators, as libseccomp numbers them (enum scmp_compare). */
typedef enum ak_scmp_op {
  AK_SCMP_NE = 1,
  AK_SCMP_LT = 2,
  AK_SCMP_LE = 3,
  AK_SCMP_EQ = 4,
  AK_SCMP_GE = 5,
  AK_SCMP_GT = 6,
  AK_SCMP_MASKED_EQ = 7,
} ak_scmp_op_t;

typedef struct ak_scmp_arg {
  unsigned index; /* 0-5 */
  uint64_t value, value_two;
  ak_scmp_op_t op;
} ak_scmp_arg_t;

/* Docker's includes/excludes: a rule applies when every "includes"
 * condition holds and no "excludes" one does. */
typedef struct ak_scmp_cond {
  char **arches; /* Go architecture names ("amd64", "arm64"), NULL-terminated or NULL */
  char **caps;   /* capability names */
  unsigned min_kernel[2]; /* major, minor; 0.0 when absent */
} ak_scmp_cond_t;

typedef struct ak_scmp_rule {
  char **names;    /* NULL-terminated */
  uint32_t action; /* a libseccomp action value (SCMP_ACT_*) */
  ak_scmp_arg_t args[6];
  size_t n_args;
  ak_scmp_cond_t includes, excludes;
} ak_scmp_rule_t;

typedef struct ak_scmp_profile {
  uint32_t default_action;
  uint32_t *arches; /* libseccomp architecture tokens (SCMP_ARCH_*) to add */
  size_t n_arches;
  ak_scmp_rule_t *rules;
  size_t n_rules;
} ak_scmp_profile_t;

/* Parses len bytes of a Docker seccomp profile; `file` names it in errors
 * ("FILE:LINE:COLUMN: ..." for JSON syntax, "FILE: syscalls[3].action: ..."
 * for a bad value).  *out is allocated on success (free with
 * ak_scmp_profile_free), untouched on failure.  The native architecture's
 * archMap entry selects which architectures are added. */
int ak_scmp_profile_parse (const char *file, const char *text, size_t len, ak_scmp_profile_t **out,
                           ak_error_t **err);
void ak_scmp_profile_free (ak_scmp_profile_t *p);

/* Reads a profile file of at most AK_SECCOMP_PROFILE_MAX bytes: `path`
 * relative to dirfd (or absolute, unless beneath).  With beneath, the file
 * must lie under dirfd and is reached through no symlink (a profile named
 * by an untrusted config file).  A regular file only; the text is
 * NUL-terminated.  *real gets the file's canonical path. */
int ak_scmp_profile_read (int dirfd, const char *dir, const char *path, bool beneath, char **text,
                          size_t *len, char **real, ak_error_t **err);

/* "default", "permissive", "moderate", "ai-agent", "restrictive", "custom". */
const char *ak_seccomp_name (ak_seccomp_kind_t k);
/* A built-in's name (not "custom"); an unknown one is an error listing them. */
int ak_seccomp_from_name (const char *name, ak_seccomp_kind_t *out, ak_error_t **err);
/* Whether a [security] seccomp / --seccomp value names a file rather than a
 * built-in: it holds a '/' or ends in ".json". */
bool ak_seccomp_is_path (const char *value);
/* The built-in filter a spec runs (for CUSTOM: the one under it). */
ak_seccomp_kind_t ak_seccomp_builtin (const ak_spec_t *spec);

/* Select a built-in (dropping any custom profile). */
void ak_spec_set_seccomp (ak_spec_t *spec, ak_seccomp_kind_t k, ak_source_t src, int line);
/* Select a custom profile: its text is parsed (a malformed one fails with
 * the parser's error) and kept in the spec with the built-in `under` it. */
int ak_spec_set_seccomp_custom (ak_spec_t *spec, const char *file, const char *text, size_t len,
                                ak_seccomp_kind_t under, ak_source_t src, int line,
                                ak_error_t **err);

#endif
