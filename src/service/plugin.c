/* Agent integration files on disk (see plugin.h). */
#define _GNU_SOURCE
#include "service/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

/* Reads path if it exists: *data NULL when there is no file.  *real is
 * where to write: the path, or a symlink's target. */
static int
read_existing (const char *path, char **data, size_t *len, char **real, mode_t *mode, ak_error_t **err)
{
  struct stat st;
  _cleanup_close_ int fd = -1;

  *data = NULL;
  *len = 0;
  *real = NULL;
  if (lstat (path, &st) < 0)
    {
      if (errno == ENOENT)
        {
          *real = ak_xstrdup (path);
          return 0;
        }
      return ak_error_set (err, errno, "%s", path);
    }
  if (S_ISLNK (st.st_mode))
    {
      *real = realpath (path, NULL);
      if (*real == NULL)
        return ak_error_set (err, errno, "%s: a symlink whose target cannot be resolved", path);
    }
  else
    *real = ak_xstrdup (path);
  fd = open (*real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    return ak_error_set (err, errno, "%s", path);
  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s", path);
  if (!S_ISREG (st.st_mode))
    return ak_error_set (err, 0, "%s: not a regular file; nothing was changed", path);
  if (st.st_size > AK_PLUGIN_FILE_MAX)
    return ak_error_set (err, 0, "%s: larger than %d MiB; nothing was changed", path,
                         AK_PLUGIN_FILE_MAX >> 20);
  *mode = st.st_mode & 07777;
  *data = ak_xmalloc ((size_t) st.st_size + 1);
  ssize_t n = ak_read_all (fd, *data, (size_t) st.st_size);
  if (n < 0)
    {
      free (*data);
      *data = NULL;
      return ak_error_set (err, errno, "read %s", path);
    }
  (*data)[n] = '\0';
  *len = (size_t) n;
  return 0;
}

int
ak_plugin_plan_add (ak_plugin_plan_t *plan, const ak_plugin_t *p, const char *project_dir,
                    const char *home, bool global, ak_plugin_op_t op, bool force, ak_error_t **err)
{
  for (const ak_plugin_file_t *f = p->files; f->project_path || f->global_path; f++)
    {
      bool g = global ? f->global_path != NULL : f->project_path == NULL;
      const char *base = g ? home : project_dir;
      const char *rel = g ? f->global_path : f->project_path;
      _cleanup_free_ char *path = NULL;
      _cleanup_free_ char *data = NULL;
      _cleanup_free_ char *real = NULL;
      char *after = NULL;
      size_t len = 0;
      mode_t mode = 0;
      ak_plugin_found_t found;
      ak_plugin_change_t *c;

      if (global && f->global_path == NULL)
        return ak_error_set (err, 0, "%s: %s has no user-wide file; run without --global in the project",
                             p->target, f->project_path);
      if (base == NULL || base[0] != '/')
        return ak_error_set (err, 0, "%s: no %s directory (HOME must be an absolute path)", p->target,
                             g ? "home" : "project");
      path = ak_xasprintf ("%s/%s", base, rel);
      if (read_existing (path, &data, &len, &real, &mode, err) < 0)
        return -1;
      if (ak_plugin_merge (f, path, data, len, op, force, &after, &found, err) < 0)
        return -1;
      plan->changes = ak_xrealloc (plan->changes, (plan->n + 1) * sizeof *plan->changes);
      c = &plan->changes[plan->n++];
      *c = (ak_plugin_change_t){ .plugin = p, .file = f, .path = steal_pointer (&real),
                                 .shown = steal_pointer (&path), .global = g, .found = found,
                                 .before = steal_pointer (&data), .before_len = len, .after = after };
      if (op == AK_PLUGIN_REMOVE && after != NULL && after[0] == '\0')
        {
          c->unlink = true;
          free (c->after);
          c->after = NULL;
        }
    }
  return 0;
}

/* Creates the missing directories of path's parent. */
static int
make_parents (const char *path, mode_t mode, ak_error_t **err)
{
  _cleanup_free_ char *dir = ak_xstrdup (path);
  char *slash = strrchr (dir, '/');
  if (slash == NULL || slash == dir)
    return 0;
  *slash = '\0';
  for (char *p = dir + 1; ; p++)
    {
      if (*p == '/' || *p == '\0')
        {
          char c = *p;
          *p = '\0';
          if (mkdir (dir, mode) < 0 && errno != EEXIST)
            return ak_error_set (err, errno, "mkdir %s", dir);
          *p = c;
          if (c == '\0')
            break;
        }
    }
  return 0;
}

/* Writes data to path atomically with the given mode. */
static int
write_atomic (const char *path, const char *data, size_t len, mode_t mode, ak_error_t **err)
{
  _cleanup_free_ char *copy = ak_xstrdup (path);
  _cleanup_free_ char *tmp = ak_xasprintf ("%s/.%s.ak-XXXXXX", dirname (copy), strrchr (path, '/') + 1);
  _cleanup_close_ int fd = mkostemp (tmp, O_CLOEXEC);

  if (fd < 0)
    return ak_error_set (err, errno, "create a file beside %s", path);
  if (fchmod (fd, mode) < 0 || ak_write_all (fd, data, len) < 0 || fsync (fd) < 0)
    {
      int e = errno;
      unlink (tmp);
      return ak_error_set (err, e, "write %s", path);
    }
  if (rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return ak_error_set (err, e, "rename into %s", path);
    }
  return 0;
}

int
ak_plugin_plan_commit (const ak_plugin_plan_t *plan, ak_error_t **err)
{
  for (size_t i = 0; i < plan->n; i++)
    {
      const ak_plugin_change_t *c = &plan->changes[i];
      struct stat st;
      mode_t mode;

      if (c->after == NULL && !c->unlink)
        continue;
      mode = c->global ? 0600 : 0644;
      if (c->file->kind == AK_PLUGIN_FILE)
        mode = 0644;
      if (c->before != NULL && stat (c->path, &st) == 0)
        mode = st.st_mode & 07777;
      /* The previous contents, kept beside it (ours are not worth one). */
      if (c->before != NULL && !(c->unlink && c->found == AK_PLUGIN_SAME))
        {
          _cleanup_free_ char *bak = ak_xasprintf ("%s.bak", c->path);
          if (write_atomic (bak, c->before, c->before_len, mode, err) < 0)
            return -1;
        }
      if (c->unlink)
        {
          if (unlink (c->path) < 0 && errno != ENOENT)
            return ak_error_set (err, errno, "remove %s", c->path);
          /* Our own directory (.claude/skills/agentkernel) goes when empty. */
          if (strstr (c->path, "/agentkernel/") != NULL)
            {
              _cleanup_free_ char *d = ak_xstrdup (c->path);
              rmdir (dirname (d));
            }
          continue;
        }
      if (make_parents (c->path, c->global ? 0700 : 0755, err) < 0
          || write_atomic (c->path, c->after, strlen (c->after), mode, err) < 0)
        return -1;
    }
  return 0;
}

void
ak_plugin_plan_clear (ak_plugin_plan_t *plan)
{
  for (size_t i = 0; i < plan->n; i++)
    {
      free (plan->changes[i].path);
      free (plan->changes[i].shown);
      free (plan->changes[i].before);
      free (plan->changes[i].after);
    }
  free (plan->changes);
  plan->changes = NULL;
  plan->n = 0;
}
