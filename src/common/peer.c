/* The peer of a local socket (peer.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/peer.h"
#include "common/syscalls.h"
#include "common/util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
/* A process's namespaces through its pidfd (Linux 6.11). */
#ifndef PIDFD_GET_MNT_NAMESPACE
#define PIDFD_GET_MNT_NAMESPACE _IO (0xFF, 3)
#define PIDFD_GET_USER_NAMESPACE _IO (0xFF, 9)
#endif

typedef struct confinement {
  unsigned long long cap_eff, cap_bnd;
  unsigned nnp, seccomp, filters;
} confinement_t;

/* The value after "Name:" in a status line, or NULL. */
static const char *
field (const char *line, const char *name)
{
  size_t n = strlen (name);
  return strncmp (line, name, n) == 0 && line[n] == ':' ? line + n + 1 : NULL;
}

/* The fields of /proc/<pid>/status (pid 0: this process) that say how
 * confined it is. */
static int
confinement_of (pid_t pid, confinement_t *c)
{
  char path[64], buf[4096];
  _cleanup_close_ int fd = -1;
  ssize_t n;
  int found = 0;

  if (pid == 0)
    snprintf (path, sizeof path, "/proc/self/status");
  else
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || (n = read (fd, buf, sizeof buf - 1)) <= 0)
    return -1;
  buf[n] = '\0';
  memset (c, 0, sizeof *c);
  for (char *line = buf; line != NULL && *line != '\0';)
    {
      char *next = strchr (line, '\n');
      const char *v;
      if (next != NULL)
        *next++ = '\0';
      if (line[0] == 'C' && (v = field (line, "CapEff")) != NULL)
        c->cap_eff = strtoull (v, NULL, 16), found++;
      else if (line[0] == 'C' && (v = field (line, "CapBnd")) != NULL)
        c->cap_bnd = strtoull (v, NULL, 16), found++;
      else if (line[0] == 'N' && (v = field (line, "NoNewPrivs")) != NULL)
        c->nnp = (unsigned) strtoul (v, NULL, 10), found++;
      else if (line[0] == 'S' && (v = field (line, "Seccomp")) != NULL)
        c->seccomp = (unsigned) strtoul (v, NULL, 10), found++;
      else if (line[0] == 'S' && (v = field (line, "Seccomp_filters")) != NULL)
        c->filters = (unsigned) strtoul (v, NULL, 10);
      line = next;
    }
  return found == 4 ? 0 : -1;
}

/* This process's own side, read once (a server that checks its peers
 * does not change its own namespaces, root or privileges after start). */
static struct {
  bool read;
  struct stat ns[2], root;
  confinement_t c;
} self;
static const char *const ns_names[] = { "ns/mnt", "ns/user" };
static const unsigned long ns_ioctls[] = { PIDFD_GET_MNT_NAMESPACE, PIDFD_GET_USER_NAMESPACE };

int
ak_peer_check_prepare (void)
{
  char path[64];
  if (self.read)
    return 0;
  for (size_t i = 0; i < 2; i++)
    {
      snprintf (path, sizeof path, "/proc/self/%s", ns_names[i]);
      if (stat (path, &self.ns[i]) < 0)
        return -1;
    }
  if (stat ("/", &self.root) < 0 || confinement_of (0, &self.c) < 0)
    return -1;
  self.read = true;
  return 0;
}

static bool
same_as (const char *path, const struct stat *mine)
{
  struct stat st;
  return stat (path, &st) == 0 && st.st_dev == mine->st_dev && st.st_ino == mine->st_ino;
}

/* Whether the process of pidfd is in namespace i of this one: asked of the
 * pidfd itself (the process, not whoever has its number now, and no walk
 * through /proc: a third of the time), else through /proc/<pid>. */
static bool
same_ns (int pidfd, pid_t pid, size_t i)
{
  char path[64];
  int fd = pidfd >= 0 ? ioctl (pidfd, ns_ioctls[i], 0) : -1;

  if (fd >= 0)
    {
      struct stat st;
      bool same = fstat (fd, &st) == 0 && st.st_dev == self.ns[i].st_dev && st.st_ino == self.ns[i].st_ino;
      close (fd);
      return same;
    }
  snprintf (path, sizeof path, "/proc/%d/%s", (int) pid, ns_names[i]);
  return same_as (path, &self.ns[i]);
}

int
ak_peer_check (int sock, pid_t *pid, ak_error_t **err)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  _cleanup_close_ int pidfd = -1;
  confinement_t theirs;
  const confinement_t *mine = &self.c;
  char path[64];

  if (ak_peer_check_prepare () < 0)
    return ak_error_set (err, errno, "this process's own namespaces and status");
  if (getsockopt (sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return ak_error_set (err, errno, "peer credentials");
  if (cred.uid != geteuid () || cred.pid <= 0)
    return ak_error_set (err, EPERM, "peer: another user, or outside this PID namespace");
  /* Pinned: the checks below are about this process, not one that got
   * its number after it ended. */
  len = sizeof pidfd;
  if (getsockopt (sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
    pidfd = -1;
  for (size_t i = 0; i < 2; i++)
    if (!same_ns (pidfd, cred.pid, i))
      return ak_error_set (err, EPERM, "peer: in another %s namespace", ns_names[i] + 3);
  snprintf (path, sizeof path, "/proc/%d/root", (int) cred.pid);
  if (!same_as (path, &self.root))
    return ak_error_set (err, EPERM, "peer: under another root directory");
  if (confinement_of (cred.pid, &theirs) < 0)
    return ak_error_set (err, EPERM, "peer: its status cannot be read");
  if ((mine->cap_eff & ~theirs.cap_eff) != 0 || (mine->cap_bnd & ~theirs.cap_bnd) != 0)
    return ak_error_set (err, EPERM, "peer: holds fewer capabilities");
  if (theirs.nnp > mine->nnp || theirs.seccomp > mine->seccomp
      || (theirs.seccomp == 2 && theirs.filters != mine->filters))
    return ak_error_set (err, EPERM, "peer: under no_new_privs or a seccomp filter this process is not");
  if (pidfd >= 0 && ak_pidfd_send_signal (pidfd, 0) < 0)
    return ak_error_set (err, errno, "peer: gone");
  *pid = cred.pid;
  return 0;
}

static struct {
  int fd;
  dev_t dev;
  ino_t ino;
} badge = { .fd = -1 };

void
ak_peer_badge_set (int fd)
{
  struct stat st;
  badge.fd = -1;
  if (fd >= 0 && fstat (fd, &st) == 0)
    badge.fd = fd, badge.dev = st.st_dev, badge.ino = st.st_ino;
}

int
ak_peer_badge (void)
{
  return badge.fd;
}

bool
ak_peer_badge_is (int fd)
{
  struct stat st;
  return badge.fd >= 0 && fd >= 0 && fstat (fd, &st) == 0 && st.st_dev == badge.dev && st.st_ino == badge.ino;
}
