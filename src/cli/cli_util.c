/* Small helpers of the command line: durations, the --branch name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "service/sandbox.h"

int
ak_cli_parse_duration (const char *s, long long *seconds, ak_error_t **err)
{
  if (ak_parse_duration (s, seconds) < 0)
    return ak_error_set (err, 0, "invalid duration '%s' (expected e.g. 30s, 10m, 1h, 2d or 1h30m; at most 366d)",
                         s ? s : "");
  return 0;
}

/* Reads at most len-1 bytes of dirfd/name, not following a symlink. */
static int
read_small (int dirfd, const char *name, char *buf, size_t len)
{
  _cleanup_close_ int fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  ssize_t n;
  if (fd < 0)
    return -1;
  n = read (fd, buf, len - 1);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return 0;
}

/* The sandbox name of --branch: <project>-<branch> of the git work tree
 * holding the current directory, every character outside [A-Za-z0-9_-]
 * turned into '-', runs of '-' folded, at most 63 characters.  git itself
 * is not run (a repository's config can make it run commands): .git and
 * HEAD are read as files. */
char *
ak_cli_branch_name (ak_error_t **err)
{
  _cleanup_free_ char *dir = getcwd (NULL, 0);
  _cleanup_free_ char *gitdir = NULL;
  char head[512], *branch, *raw, *out;
  size_t o = 0;

  if (dir == NULL)
    return ak_error_set (err, errno, "--branch: the current directory"), NULL;
  for (;;)
    {
      _cleanup_free_ char *dotgit = ak_xasprintf ("%s/.git", dir);
      char buf[1024];
      if (access (dotgit, F_OK) == 0)
        {
          if (read_small (AT_FDCWD, dotgit, buf, sizeof buf) == 0 && strncmp (buf, "gitdir: ", 8) == 0)
            {
              /* A linked work tree or a submodule: .git is a file. */
              buf[strcspn (buf, "\r\n")] = '\0';
              gitdir = buf[8] == '/' ? ak_xstrdup (buf + 8) : ak_xasprintf ("%s/%s", dir, buf + 8);
            }
          else
            gitdir = steal_pointer (&dotgit);
          break;
        }
      if (strcmp (dir, "/") == 0)
        return ak_error_set (err, 0, "--branch: %s is not inside a git work tree", ""), NULL;
      *strrchr (dir, '/') = '\0';
      if (dir[0] == '\0')
        strcpy (dir, "/");
    }
  {
    _cleanup_free_ char *headp = ak_xasprintf ("%s/HEAD", gitdir);
    if (read_small (AT_FDCWD, headp, head, sizeof head) < 0)
      return ak_error_set (err, errno, "--branch: %s", headp), NULL;
  }
  head[strcspn (head, "\r\n")] = '\0';
  if (strncmp (head, "ref: refs/heads/", 16) == 0)
    branch = head + 16;
  else if (strncmp (head, "ref: ", 5) == 0)
    branch = head + 5;
  else
    {
      head[12] = '\0'; /* detached: the commit, abbreviated */
      branch = head;
    }
  raw = ak_xasprintf ("%s-%s", strrchr (dir, '/') ? strrchr (dir, '/') + 1 : dir, branch);
  out = ak_xcalloc (64, 1);
  for (const char *p = raw; *p && o < 63; p++)
    {
      char c = *p;
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      if (!ok)
        c = '-';
      if (c == '-' && (o == 0 || out[o - 1] == '-'))
        continue;
      out[o++] = c;
    }
  while (o > 0 && out[o - 1] == '-')
    out[--o] = '\0';
  free (raw);
  if (o == 0)
    {
      free (out);
      return ak_error_set (err, 0, "--branch: no usable name from this work tree"), NULL;
    }
  return out;
}

int
ak_cli_set_ttl (const char *name, long long seconds, ak_error_t **err)
{
  long long until;
  return ak_sandbox_extend (name, seconds, &until, err);
}
