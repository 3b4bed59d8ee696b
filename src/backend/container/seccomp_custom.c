/* Custom seccomp profiles: a Docker profile (parsed by
 * model/seccomp_profile.c) compiled with libseccomp into a second program,
 * installed on top of a built-in filter (seccomp.c) unless the user said
 * --allow-unsafe-seccomp.
 *
 * Docker's rules for which entries apply, as runc evaluates them:
 * - includes.caps: the entry applies only to a process holding one of the
 *   capabilities.  A sandboxed process holds none, so such an entry never
 *   applies; excludes.caps never excludes.
 * - includes.arches / excludes.arches: compared with the native
 *   architecture under Go's names (amd64, arm64, ...).
 * - includes.minKernel / excludes.minKernel: compared with the running
 *   kernel's major.minor.
 * An entry whose action is the default action adds nothing (libseccomp
 * refuses it); a system call name this libseccomp (and seccomp.c's table of
 * newer calls) does not know is skipped, as runc skips it.  When an entry
 * compares one argument twice, libseccomp cannot express the conjunction,
 * and each comparison becomes a rule of its own, as runc does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "model/seccomp_profile.h"

/* The native architecture as Docker's profiles name it (Go's GOARCH, and
 * the kernel's name for good measure). */
static const char *const native_names[] = {
#if defined(__x86_64__)
  "amd64", "x86_64",
#elif defined(__i386__)
  "386", "x86",
#elif defined(__aarch64__)
  "arm64", "aarch64",
#elif defined(__arm__)
  "arm",
#elif defined(__riscv)
  "riscv64",
#elif defined(__s390x__)
  "s390x",
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  "ppc64le",
#elif defined(__powerpc64__)
  "ppc64",
#endif
  NULL,
};

static bool
native_in (char *const *arches)
{
  for (size_t i = 0; arches != NULL && arches[i] != NULL; i++)
    for (size_t j = 0; native_names[j] != NULL; j++)
      if (strcmp (arches[i], native_names[j]) == 0)
        return true;
  return false;
}

static bool
kernel_at_least (const unsigned want[2])
{
  struct utsname u;
  unsigned major = 0, minor = 0;

  if (want[0] == 0 && want[1] == 0)
    return true;
  if (uname (&u) < 0 || sscanf (u.release, "%u.%u", &major, &minor) != 2)
    return false;
  return major > want[0] || (major == want[0] && minor >= want[1]);
}

static bool
applies (const ak_scmp_rule_t *r)
{
  const ak_scmp_cond_t *in = &r->includes, *ex = &r->excludes;

  if (in->caps != NULL && in->caps[0] != NULL)
    return false;
  if (in->arches != NULL && in->arches[0] != NULL && !native_in (in->arches))
    return false;
  if (!kernel_at_least (in->min_kernel))
    return false;
  if (native_in (ex->arches))
    return false;
  if ((ex->min_kernel[0] != 0 || ex->min_kernel[1] != 0) && kernel_at_least (ex->min_kernel))
    return false;
  return true;
}

static struct scmp_arg_cmp
cmp_of (const ak_scmp_arg_t *a)
{
  return (struct scmp_arg_cmp){ .arg = a->index, .op = (enum scmp_compare) a->op,
                                .datum_a = a->value, .datum_b = a->value_two };
}

static int
add_rule (scmp_filter_ctx ctx, const ak_scmp_rule_t *r, int nr)
{
  struct scmp_arg_cmp cmps[6];
  bool twice = false;
  int rc = 0;

  for (size_t i = 0; i < r->n_args; i++)
    {
      cmps[i] = cmp_of (&r->args[i]);
      for (size_t j = 0; j < i; j++)
        twice = twice || r->args[j].index == r->args[i].index;
    }
  if (!twice)
    return seccomp_rule_add_array (ctx, r->action, nr, (unsigned) r->n_args, cmps);
  for (size_t i = 0; rc == 0 && i < r->n_args; i++)
    rc = seccomp_rule_add_array (ctx, r->action, nr, 1, &cmps[i]);
  return rc;
}

static int
build (scmp_filter_ctx ctx, const char *file, const ak_scmp_profile_t *prof, ak_error_t **err)
{
  int rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);

  /* A call from an ABI the profile does not list ends the process. */
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc < 0)
    return ak_error_set (err, -rc, "seccomp profile %s: set attributes", file);
  /* An architecture that cannot share a filter with the native one (another
   * byte order, another kernel) is one this machine cannot run: skipped. */
  for (size_t i = 0; i < prof->n_arches; i++)
    if (prof->arches[i] != seccomp_arch_native ())
      (void) seccomp_arch_add (ctx, prof->arches[i]);
  for (size_t i = 0; i < prof->n_rules; i++)
    {
      const ak_scmp_rule_t *r = &prof->rules[i];
      if (!applies (r) || r->action == prof->default_action)
        continue;
      for (size_t k = 0; r->names[k] != NULL; k++)
        {
          int nr = ak_seccomp_nr (r->names[k]);
          if (nr == __NR_SCMP_ERROR)
            continue;
          rc = add_rule (ctx, r, nr);
          if (rc < 0)
            return ak_error_set (err, -rc, "seccomp profile %s: syscalls[%zu]: %s: rule refused by libseccomp (does another entry give it a different action?)",
                                 file, i, r->names[k]);
        }
    }
  return 0;
}

int
ak_seccomp_compile_custom (const char *file, const char *text, size_t len, ak_error_t **err)
{
  ak_scmp_profile_t *prof = NULL;
  scmp_filter_ctx ctx;
  int fd = -1;

  if (ak_scmp_profile_parse (file, text, len, &prof, err) < 0)
    return -1;
  ctx = seccomp_init (prof->default_action);
  if (ctx == NULL)
    {
      ak_scmp_profile_free (prof);
      return ak_error_set (err, ENOMEM, "seccomp profile %s: init", file);
    }
  if (build (ctx, file, prof, err) == 0)
    fd = ak_seccomp_export (NULL, 0, ctx, err);
  seccomp_release (ctx);
  ak_scmp_profile_free (prof);
  return fd;
}
