/* The command policy's audit: every exec in a sandbox under a command
 * policy is seen by the supervisor, outside the sandbox, which reports (and
 * refuses) the ones the policy denies.  See container.h for what this does
 * and does not decide: the kernel's Landlock domain and the covers of
 * blocked programs (execpolicy.c) are the enforcement.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/util.h"

/* memfd_create's flag (Linux >= 6.3), newer than the installed headers. */
#define AK_MFD_NOEXEC_SEAL 0x0008U

struct ak_execwatch {
  int listener;
  const ak_spec_t *spec;
  ak_execinfo_t info;
  struct seccomp_notif *req;
  struct seccomp_notif_resp *resp;
};

/* Program trees (as in execpolicy.c): where a block list lets programs
 * run. */
static const char *const trees[]
    = { "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", NULL };

int
ak_execwatch_install (ak_error_t **err)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  int fd = -1;

  if (ctx == NULL)
    return ak_error_set (err, ENOMEM, "command policy: seccomp");
  /* Landlock governs the files of the sandbox's tree; a memfd is none of
   * them, so an executable memfd would take any bytes past the policy (a
   * program that is not allowed, read and written into one).  Only memfds
   * sealed non-executable may be made. */
  if (seccomp_rule_add (ctx, SCMP_ACT_NOTIFY, SCMP_SYS (execve), 0) < 0
      || seccomp_rule_add (ctx, SCMP_ACT_NOTIFY, SCMP_SYS (execveat), 0) < 0
      || seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EACCES), SCMP_SYS (memfd_create), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, AK_MFD_NOEXEC_SEAL, 0))
             < 0
      || seccomp_load (ctx) < 0
      || (fd = seccomp_notify_fd (ctx)) < 0)
    {
      seccomp_release (ctx);
      return ak_error_set (err, EINVAL, "command policy: exec listener (seccomp user notification)");
    }
  seccomp_release (ctx);
  (void) fcntl (fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

ak_execwatch_t *
ak_execwatch_new (const ak_spec_t *spec, int listener, int info, ak_error_t **err)
{
  ak_execwatch_t *w = ak_xcalloc (1, sizeof *w);

  w->listener = listener;
  w->spec = spec;
  if (pread (info, &w->info, sizeof w->info, 0) != (ssize_t) sizeof w->info
      || seccomp_notify_alloc (&w->req, &w->resp) < 0)
    {
      ak_error_set (err, errno, "command policy: exec listener");
      close (info);
      ak_execwatch_free (w);
      return NULL;
    }
  close (info);
  if (w->info.n_allowed > AK_EXECINFO_MAX)
    w->info.n_allowed = AK_EXECINFO_MAX;
  return w;
}

int
ak_execwatch_fd (const ak_execwatch_t *w)
{
  return w ? w->listener : -1;
}

void
ak_execwatch_free (ak_execwatch_t *w)
{
  if (w == NULL)
    return;
  if (w->listener >= 0)
    close (w->listener);
  if (w->req != NULL)
    seccomp_notify_free (w->req, w->resp);
  free (w);
}

/* The path argument of the exec, read from the process (racy: see above). */
static bool
read_path (pid_t pid, uint64_t addr, char *out, size_t len)
{
  char mem[64];
  _cleanup_close_ int fd = -1;
  ssize_t n;

  snprintf (mem, sizeof mem, "/proc/%d/mem", (int) pid);
  fd = open (mem, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = pread (fd, out, len - 1, (off_t) addr);
  if (n <= 0)
    return false;
  out[n] = 0;
  return strnlen (out, (size_t) n) < (size_t) n;
}

/* A /proc link of the process, as the path inside the sandbox. */
static bool
proc_link (pid_t pid, const char *what, char *out, size_t len)
{
  char p[64];
  ssize_t n;

  snprintf (p, sizeof p, "/proc/%d/%s", (int) pid, what);
  n = readlink (p, out, len - 1);
  if (n <= 0 || out[0] != '/')
    return false;
  out[n] = 0;
  return true;
}

static bool
beneath (const char *path, const char *dir)
{
  size_t n = strlen (dir);
  return strncmp (path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

static bool
allowed_id (const ak_execwatch_t *w, const struct stat *st)
{
  for (uint32_t i = 0; i < w->info.n_allowed; i++)
    if (w->info.allowed[i].dev == (uint64_t) st->st_dev && w->info.allowed[i].ino == (uint64_t) st->st_ino)
      return true;
  return false;
}

static bool
is_cover (const ak_execwatch_t *w, const struct stat *st)
{
  return w->info.cover_ino != 0 && (uint64_t) st->st_dev == w->info.cover_dev
         && (uint64_t) st->st_ino == w->info.cover_ino;
}

/* Why the policy denies the file at `path` inside the sandbox (opened as
 * fd), or NULL.  *rule_out: the entry that decides, when one does. */
static const char *
verdict (const ak_execwatch_t *w, int fd, const char *path, const char **rule_out)
{
  const ak_cmdpolicy_t *pol = &w->spec->sec.commands;
  struct stat st;
  const ak_cmdrule_t *r;

  *rule_out = NULL;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return NULL;
  if (is_cover (w, &st) || (r = ak_cmdpolicy_match (pol, AK_CMD_BLOCK, path)) != NULL)
    {
      r = ak_cmdpolicy_match (pol, AK_CMD_BLOCK, path);
      *rule_out = r ? r->text : NULL;
      return "block";
    }
  if (w->info.allowlist_only)
    return allowed_id (w, &st) ? NULL : "allowlist_only";
  for (const char *const *t = trees; *t; t++)
    if (beneath (path, *t))
      return NULL;
  for (size_t i = 0; i < w->spec->n_mounts; i++)
    if (w->spec->mounts[i].read_only && beneath (path, w->spec->mounts[i].dest))
      return NULL;
  return "not_program_tree";
}

static void
report (const ak_execwatch_t *w, pid_t pid, const char *named, const char *program, const char *why,
        const char *rule, const char *interp_of)
{
  json_t *f;

  if (ak_backend_audit_hook == NULL)
    return;
  f = json_pack ("{s:s, s:s, s:s, s:i}", "program", program, "exec", named, "rule", why,
                 "process", (int) pid);
  if (f == NULL)
    return;
  if (rule != NULL)
    json_object_set_new (f, "entry", json_string (rule));
  if (interp_of != NULL)
    json_object_set_new (f, "interpreter_of", json_string (interp_of));
  json_object_set_new (f, "policy", json_string ("commands"));
  ak_backend_audit_hook ("policy_violation", w->spec->name, f);
}

/* Resolves `path` (absolute, inside the sandbox) within the process's root
 * and returns an O_PATH descriptor, with the canonical path in canon. */
static int
resolve (int rootfd, const char *path, char *canon, size_t len)
{
  int fd = ak_fs_openat (rootfd, path, O_PATH | O_CLOEXEC, 0, AK_FS_IN_ROOT);
  char link[64];
  ssize_t n;

  if (fd < 0)
    return -1;
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink (link, canon, len - 1);
  if (n <= 0)
    {
      close (fd);
      return -1;
    }
  canon[n] = 0;
  return fd;
}

void
ak_execwatch_handle (ak_execwatch_t *w)
{
  struct seccomp_notif *req = w->req;
  struct seccomp_notif_resp *resp = w->resp;
  char arg[PATH_MAX], base[PATH_MAX], full[2 * PATH_MAX + 2], canon[PATH_MAX];
  char rootp[64];
  const char *why = NULL, *rule = NULL, *interp_of = NULL;
  _cleanup_close_ int rootfd = -1, fd = -1;
  bool at = false;

  memset (req, 0, sizeof *req);
  if (seccomp_notify_receive (w->listener, req) < 0)
    return;
  memset (resp, 0, sizeof *resp);
  resp->id = req->id;
  resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;

  at = req->data.nr == seccomp_syscall_resolve_name ("execveat");
  snprintf (rootp, sizeof rootp, "/proc/%d/root", (int) req->pid);
  rootfd = open (rootp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0 || !read_path (req->pid, req->data.args[at ? 1 : 0], arg, sizeof arg))
    goto answer;
  if (arg[0] == '/')
    snprintf (full, sizeof full, "%s", arg);
  else
    {
      int dfd = at ? (int) req->data.args[0] : AT_FDCWD;
      char what[32];
      if (dfd == AT_FDCWD)
        snprintf (what, sizeof what, "cwd");
      else
        snprintf (what, sizeof what, "fd/%d", dfd);
      if (!proc_link (req->pid, what, base, sizeof base))
        goto answer;
      if (arg[0] == 0)
        snprintf (full, sizeof full, "%s", base); /* AT_EMPTY_PATH: the fd itself */
      else
        snprintf (full, sizeof full, "%s/%s", base, arg);
    }
  if (seccomp_notify_id_valid (w->listener, req->id) < 0)
    return; /* the process is gone */
  fd = resolve (rootfd, full, canon, sizeof canon);
  if (fd < 0)
    goto answer;
  why = verdict (w, fd, canon, &rule);
  if (why == NULL)
    {
      /* A script: its interpreter is executed too. */
      _cleanup_close_ int rfd
          = ak_fs_openat (rootfd, canon, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0, AK_FS_IN_ROOT);
      struct stat rst;
      char head[256];
      ssize_t n = rfd >= 0 && fstat (rfd, &rst) == 0 && S_ISREG (rst.st_mode)
                      ? pread (rfd, head, sizeof head - 1, 0)
                      : -1;
      if (n > 2 && head[0] == '#' && head[1] == '!')
        {
          char *p = head + 2, *e;
          head[n] = 0;
          while (*p == ' ' || *p == '\t')
            p++;
          e = p + strcspn (p, " \t\n");
          *e = 0;
          if (*p == '/')
            {
              char icanon[PATH_MAX];
              _cleanup_close_ int ifd = resolve (rootfd, p, icanon, sizeof icanon);
              if (ifd >= 0 && (why = verdict (w, ifd, icanon, &rule)) != NULL)
                {
                  interp_of = canon;
                  report (w, req->pid, arg, icanon, why, rule, interp_of);
                  goto deny;
                }
            }
        }
    }
  if (why != NULL)
    {
      report (w, req->pid, arg, canon, why, rule, NULL);
      goto deny;
    }
answer:
  (void) seccomp_notify_respond (w->listener, resp);
  return;
deny:
  /* The kernel would refuse it too; refusing here spares the race. */
  resp->flags = 0;
  resp->error = -EACCES;
  (void) seccomp_notify_respond (w->listener, resp);
}
