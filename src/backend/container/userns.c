/* User namespace: the sandbox holds exactly one id, never a host privilege.
 *
 * Run by an unprivileged user, the sandbox user (1000 inside) is that user
 * on the host: nothing more than the caller already has.  Run by root, it is
 * a dedicated unprivileged host id (AK_ROOTFUL_HOST_ID), so a process that
 * escaped every other layer would still be nobody in particular; directories
 * the user shares (workspace, home, volumes) are then idmapped so that their
 * owner appears as the sandbox user.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/syscalls.h"
#include "common/util.h"

void
ak_ids_plan (const ak_spec_t *spec, bool persistent, ak_ids_t *ids)
{
  uid_t uid = geteuid ();
  gid_t gid = getegid ();

  ids->caller_root = uid == 0;
  ids->host_uid = ids->caller_root ? AK_ROOTFUL_HOST_ID : uid;
  ids->host_gid = ids->caller_root ? AK_ROOTFUL_HOST_ID : gid;
  ids->inside_uid = spec->as_root ? 0 : 1000;
  ids->inside_gid = spec->as_root ? 0 : 1000;
  /* Only root may map a second id; a persistent sandbox then holds uid 0
   * too, as a second unprivileged host id, for `exec --root`. */
  ids->with_root = persistent && ids->caller_root && !spec->as_root;
  ids->host_root_id = AK_ROOTFUL_HOST_ID - 1000;
}

static int
write_proc (pid_t pid, const char *file, const char *data, ak_error_t **err)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/%s", (int) pid, file);
  return ak_write_string (path, data, err);
}

int
ak_userns_write_maps (pid_t pid, const ak_ids_t *ids, ak_error_t **err)
{
  char buf[64];

  /* Unprivileged callers must deny setgroups to write a gid map; root keeps
   * it so the init can drop root's supplementary groups (gid 0 among them). */
  if (write_proc (pid, "setgroups", ids->caller_root ? "allow" : "deny", err) < 0)
    return ak_error_prefix (err, "user namespace");
  if (ids->with_root)
    snprintf (buf, sizeof buf, "0 %u 1\n%u %u 1\n", ids->host_root_id, ids->inside_uid, ids->host_uid);
  else
    snprintf (buf, sizeof buf, "%u %u 1\n", ids->inside_uid, ids->host_uid);
  if (write_proc (pid, "uid_map", buf, err) < 0)
    return ak_error_prefix (err, "user namespace uid map");
  if (ids->with_root)
    snprintf (buf, sizeof buf, "0 %u 1\n%u %u 1\n", ids->host_root_id, ids->inside_gid, ids->host_gid);
  else
    snprintf (buf, sizeof buf, "%u %u 1\n", ids->inside_gid, ids->host_gid);
  if (write_proc (pid, "gid_map", buf, err) < 0)
    return ak_error_prefix (err, "user namespace gid map");
  return 0;
}

int
ak_userns_become (const ak_ids_t *ids, ak_error_t **err)
{
  if (ids->caller_root && setgroups (0, NULL) < 0)
    return ak_error_set (err, errno, "drop supplementary groups");
  /* With uid 0 mapped too, it stays in the real and saved ids: switching
   * between the two later needs no capability. */
  gid_t rg = ids->with_root ? 0 : ids->inside_gid;
  uid_t ru = ids->with_root ? 0 : ids->inside_uid;
  if (setresgid (rg, ids->inside_gid, rg) < 0)
    return ak_error_set (err, errno, "setresgid %u", ids->inside_gid);
  if (setresuid (ru, ids->inside_uid, ru) < 0)
    return ak_error_set (err, errno, "setresuid %u", ids->inside_uid);
  return 0;
}

int
ak_userns_idmap_fd (uid_t disk_uid, gid_t disk_gid, const ak_ids_t *ids, ak_error_t **err)
{
  char buf[64], path[64];
  int sync[2];
  pid_t pid;
  int fd, status;

  /* A throwaway process holds the namespace while its maps are written. */
  if (pipe2 (sync, O_CLOEXEC) < 0)
    return ak_error_set (err, errno, "pipe");
  pid = ak_raw_clone (CLONE_NEWUSER, NULL);
  if (pid < 0)
    {
      close (sync[0]);
      close (sync[1]);
      return ak_error_set (err, errno, "clone user namespace for idmapped mount");
    }
  if (pid == 0)
    {
      char c;
      close (sync[1]);
      (void) !read (sync[0], &c, 1);
      _exit (0);
    }
  close (sync[0]);
  snprintf (buf, sizeof buf, "%u %u 1\n", disk_uid, ids->host_uid);
  fd = -1;
  if (write_proc (pid, "uid_map", buf, err) == 0)
    {
      snprintf (buf, sizeof buf, "%u %u 1\n", disk_gid, ids->host_gid);
      if (write_proc (pid, "setgroups", "deny", err) == 0 && write_proc (pid, "gid_map", buf, err) == 0)
        {
          snprintf (path, sizeof path, "/proc/%d/ns/user", (int) pid);
          fd = open (path, O_RDONLY | O_CLOEXEC);
          if (fd < 0)
            ak_error_set (err, errno, "open %s", path);
        }
    }
  close (sync[1]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  return fd;
}

/* Host switches that forbid user namespaces, the value that does, and the fix. */
static const struct {
  const char *path;
  int blocking;
  bool unprivileged_only;
  const char *what;
} userns_switches[] = {
  { "/proc/sys/user/max_user_namespaces", 0, false,
    "user namespaces are disabled (user.max_user_namespaces = 0); enable them with: "
    "sysctl -w user.max_user_namespaces=15000" },
  { "/proc/sys/kernel/unprivileged_userns_clone", 0, true,
    "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); enable "
    "them with: sysctl -w kernel.unprivileged_userns_clone=1" },
  { "/proc/sys/kernel/apparmor_restrict_unprivileged_userns", 1, true,
    "AppArmor restricts unprivileged user namespaces "
    "(kernel.apparmor_restrict_unprivileged_userns = 1); allow them with: sysctl -w "
    "kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile granting 'userns' "
    "to agentkernel" },
};

int
ak_userns_check (ak_error_t **err)
{
  for (size_t i = 0; i < sizeof userns_switches / sizeof userns_switches[0]; i++)
    {
      _cleanup_free_ char *v = NULL;
      if (userns_switches[i].unprivileged_only && geteuid () == 0)
        continue;
      if (ak_read_file (userns_switches[i].path, &v, NULL, NULL) == 0
          && atoi (v) == userns_switches[i].blocking)
        return ak_error_set (err, 0, "%s", userns_switches[i].what);
    }
  return 0;
}
