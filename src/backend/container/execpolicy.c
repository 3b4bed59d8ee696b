/* The command policy ([security.commands]) enforced by the kernel.
 *
 * What identifies a program is the file the kernel executes, never the
 * name or the path string an exec names; every decision is taken at set-up,
 * in the sandbox's own view, before the command holds a single instruction:
 *
 *  - A blocked program (an entry's name on the sandbox's PATH, or its path;
 *    symlinks resolved within the root) is covered by an empty, read-only,
 *    noexec file: an exec of it by any name, path or symlink fails with
 *    EACCES, the loader cannot map it (noexec), and it cannot be read, so no
 *    copy of it can be made inside.  Every other file in the PATH
 *    directories with the same inode (a hard link) or the same content
 *    (SHA-256, for a file of the same size: a copy renamed in the image, or
 *    one a persistent sandbox made before the rule existed) is covered too.
 *  - Landlock (a second ruleset, handling execute only, stacked on the
 *    sandbox's own) makes execute a right of listed inodes or trees:
 *      allowlist mode: each allowed program, and what the kernel must open
 *        to start it (the ELF interpreter it names, a script's #!
 *        interpreter and, for "#!/usr/bin/env NAME", NAME on PATH), minus
 *        whatever is blocked;
 *      block list only: the program trees (/usr, /bin, /sbin, /lib*, /opt
 *        and read-only volumes), file by file where the sandbox can write
 *        in them (the private layer's /usr), as they are at start.
 *    Nothing a sandbox can write (/tmp, /workspace, home, read-write
 *    volumes, a new file anywhere) is ever executable under a policy: a
 *    program the sandbox can write is a program it can rename.  Landlock
 *    checks the inode the kernel actually opens, for the program and for
 *    its interpreter, in every process, whatever exec call or helper (sh
 *    -c, env, xargs, find -exec) makes it; no thread can race it.
 *
 *  - Allowlist mode: the PATH directories are noexec mounts but for the
 *    allowed programs in them, so the loader cannot map what is not
 *    allowed.  (A memfd, which Landlock does not see, is made
 *    non-executable by the exec watcher's filter: execwatch.c.)
 *
 * Both are irrevocable from inside: the covers are mounts the sandbox has
 * neither the capability nor the system calls to remove, and a Landlock
 * domain only ever narrows.  The policy comes from the spec (for a
 * persistent sandbox, the one stored at create), never from a file inside.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/fsutil.h"
#include "common/syscalls.h"
#include "common/util.h"

/* In the staging tmpfs, never part of the new root. */
#define COVER_FILE "/.blocked-program"
/* Program directories searched for names, besides the sandbox's PATH. */
#define SEARCH_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Where programs live, executable under a block list. */
static const char *const program_trees[]
    = { "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", NULL };
/* How deep an interpreter chain is followed (script -> env -> node ...). */
#define MAX_CHAIN 4
/* Largest PATH directory scanned for copies of a blocked program. */
#define MAX_SCAN 20000
/* A program tree the sandbox can write is granted file by file: this deep,
 * this many files at most (past that, not executable). */
#define MAX_TREE_DEPTH 12
#define MAX_TREE_RULES 50000
/* How an id not mapped into the sandbox's user namespace shows. */
#define AK_OVERFLOW_ID 65534

typedef struct file_id {
  dev_t dev;
  ino_t ino;
} file_id_t;

typedef struct blocked {
  file_id_t id;
  off_t size;
  char digest[AK_DIGEST_STR_LEN + 1];
  const ak_cmdrule_t *rule;
  char *path; /* where an entry found it (NULL: found by the scan) */
} blocked_t;

typedef struct ctx {
  int rootfd;
  const ak_spec_t *spec;
  const ak_cmdpolicy_t *pol;
  char **dirs; /* PATH directories, inside the root */
  blocked_t *blocked;
  size_t n_blocked;
  file_id_t *allowed;
  size_t n_allowed;
  size_t n_tree_rules;
  int ruleset;
  long writer;      /* the sandbox's own id (a guest), or -1: those mapped into its user namespace */
  bool root_writes; /* a guest whose commands may run as root */
} ctx_t;

/* Whether path is one of the program trees or beneath one. */
static bool
in_program_tree (const char *path)
{
  for (const char *const *t = program_trees; *t; t++)
    {
      size_t n = strlen (*t);
      if (strncmp (path, *t, n) == 0 && (path[n] == '/' || path[n] == 0))
        return true;
    }
  return false;
}

/* The PATH directories names are looked up in: only those in the program
 * trees.  A directory the sandbox can write (~/.local/bin from a passed
 * PATH, /workspace/bin) is never where an allowed name is found: the
 * sandbox could rewrite the file it names in place. */
static void
dirs_add (char ***dirs, const char *path)
{
  char *copy = ak_xstrdup (path);
  for (char *s = copy, *save = NULL, *d; (d = strtok_r (s, ":", &save)) != NULL; s = NULL)
    {
      bool seen = false;
      if (d[0] != '/' || !in_program_tree (d))
        continue;
      for (char **o = *dirs; o && *o; o++)
        seen |= strcmp (*o, d) == 0;
      if (!seen)
        ak_strv_push (dirs, d);
    }
  free (copy);
}

static bool
id_in (const file_id_t *ids, size_t n, const struct stat *st)
{
  for (size_t i = 0; i < n; i++)
    if (ids[i].dev == st->st_dev && ids[i].ino == st->st_ino)
      return true;
  return false;
}

static const blocked_t *
blocked_find (const ctx_t *c, const struct stat *st)
{
  for (size_t i = 0; i < c->n_blocked; i++)
    if (c->blocked[i].id.dev == st->st_dev && c->blocked[i].id.ino == st->st_ino)
      return &c->blocked[i];
  return NULL;
}

/* Opens `path` inside the root, symlinks followed within it: the file an
 * exec of that path would reach.  -1 (errno) when there is none. */
static int
open_in_root (const ctx_t *c, const char *path, int flags)
{
  return ak_fs_openat (c->rootfd, path, flags | O_CLOEXEC, 0, AK_FS_IN_ROOT);
}

static int
digest_of (const ctx_t *c, const char *path, char out[AK_DIGEST_STR_LEN + 1], ak_error_t **err)
{
  _cleanup_close_ int fd = open_in_root (c, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return ak_error_set (err, errno, "command policy: read %s", path);
  return ak_sha256_fd (fd, out, err);
}

/* Covers the file open as target with the empty, read-only, noexec file. */
static int
cover (int target, const char *what, ak_error_t **err)
{
  struct ak_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
                                            | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
  _cleanup_close_ int tree = -1;
  int fd = open (COVER_FILE, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0);

  if (fd < 0)
    return ak_error_set (err, errno, "command policy: create " COVER_FILE);
  close (fd);
  tree = ak_open_tree (AT_FDCWD, COVER_FILE, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0 || ak_mount_setattr (tree, "", AT_EMPTY_PATH, &attr) < 0
      || ak_move_mount (tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return ak_error_set (err, errno, "command policy: block %s", what);
  return 0;
}

/* One blocked program found at path (a regular file): recorded with its
 * identity and content, to find its links and copies. */
static int
block_add (ctx_t *c, const char *path, const ak_cmdrule_t *rule, ak_error_t **err)
{
  _cleanup_close_ int fd = open_in_root (c, path, O_PATH);
  struct stat st;
  blocked_t b = { .rule = rule };

  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || blocked_find (c, &st) != NULL)
    return 0;
  b.id = (file_id_t) { st.st_dev, st.st_ino };
  b.size = st.st_size;
  if (digest_of (c, path, b.digest, err) < 0)
    return -1;
  b.path = ak_xstrdup (path);
  c->blocked = ak_xrealloc (c->blocked, (c->n_blocked + 1) * sizeof (blocked_t));
  c->blocked[c->n_blocked++] = b;
  return 0;
}

/* Each block entry: its path, or its name in every PATH directory. */
static int
resolve_blocked (ctx_t *c, ak_error_t **err)
{
  for (size_t i = 0; i < c->pol->n_block; i++)
    {
      const ak_cmdrule_t *r = &c->pol->block[i];
      if (strchr (r->text, '/') != NULL)
        {
          if (block_add (c, r->text, r, err) < 0)
            return -1;
          continue;
        }
      for (char **d = c->dirs; *d; d++)
        {
          _cleanup_free_ char *p = ak_xasprintf ("%s/%s", *d, r->text);
          if (block_add (c, p, r, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* One file met by the scan (fd: O_PATH, never through a symlink): covered
 * when it is a blocked program by inode, by name or by content. */
static int
scan_one (ctx_t *c, int fd, const char *p, size_t n_primary, ak_error_t **err)
{
  struct stat st;
  const blocked_t *hit = NULL;
  const ak_cmdrule_t *named, *rule;

  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return 0;
  hit = blocked_find (c, &st);
  named = ak_cmdpolicy_match (c->pol, AK_CMD_BLOCK, p);
  for (size_t i = 0; hit == NULL && i < n_primary; i++)
    if (c->blocked[i].size == st.st_size)
      {
        char dg[AK_DIGEST_STR_LEN + 1];
        ak_error_t *e2 = NULL;
        if (digest_of (c, p, dg, &e2) < 0)
          ak_error_free (e2);
        else if (strcmp (dg, c->blocked[i].digest) == 0)
          hit = &c->blocked[i];
      }
  if (hit == NULL && named == NULL)
    return 0;
  if (cover (fd, p, err) < 0)
    return -1;
  if (hit != NULL && hit->id.ino == st.st_ino && hit->id.dev == st.st_dev)
    return 0;
  rule = hit ? hit->rule : named;
  c->blocked = ak_xrealloc (c->blocked, (c->n_blocked + 1) * sizeof (blocked_t));
  c->blocked[c->n_blocked++]
      = (blocked_t) { .id = { st.st_dev, st.st_ino }, .size = st.st_size, .rule = rule };
  return 0;
}

/* Every regular file in the PATH directories and in read-only volumes that
 * is a blocked program by inode, name or content is covered, as is what
 * each entry itself reached. */
static int
cover_blocked (ctx_t *c, ak_error_t **err)
{
  size_t n_primary = c->n_blocked, n_scanned = 0;
  _cleanup_strv_ char **scan = NULL;
  _cleanup_free_ file_id_t *scanned = NULL;

  for (char **d = c->dirs; *d; d++)
    ak_strv_push (&scan, *d);
  for (size_t i = 0; i < c->spec->n_mounts; i++)
    if (c->spec->mounts[i].read_only)
      ak_strv_push (&scan, c->spec->mounts[i].dest);
  scanned = ak_xcalloc (ak_strv_len (scan) + 1, sizeof (file_id_t));
  for (char **d = scan; d && *d; d++)
    {
      _cleanup_close_ int dfd = open_in_root (c, *d, O_RDONLY | O_DIRECTORY);
      DIR *dir;
      struct dirent *de;
      size_t seen = 0;
      struct stat dst;

      if (dfd < 0 && errno == ENOTDIR)
        {
          /* A volume of one file. */
          _cleanup_close_ int fd = open_in_root (c, *d, O_PATH | O_NOFOLLOW);
          if (fd >= 0 && scan_one (c, fd, *d, n_primary, err) < 0)
            return -1;
          continue;
        }
      /* /bin and /usr/bin are often one directory: scanned once. */
      if (dfd < 0 || fstat (dfd, &dst) < 0 || id_in (scanned, n_scanned, &dst))
        continue;
      scanned[n_scanned++] = (file_id_t) { dst.st_dev, dst.st_ino };
      dir = fdopendir (dfd);
      if (dir == NULL)
        return ak_error_set (err, errno, "command policy: list %s", *d);
      dfd = -1; /* owned by dir now */
      while ((de = readdir (dir)) != NULL && seen++ < MAX_SCAN)
        {
          _cleanup_free_ char *p = NULL;
          _cleanup_close_ int fd = -1;

          if (de->d_name[0] == '.' && (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))
            continue;
          p = ak_xasprintf ("%s/%s", *d, de->d_name);
          /* The entry itself, never through a symlink: a symlink leads to
           * a file this loop (or resolve_blocked) meets as a file. */
          fd = ak_fs_openat (dirfd (dir), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, AK_FS_BENEATH);
          if (fd >= 0 && scan_one (c, fd, p, n_primary, err) < 0)
            {
              closedir (dir);
              return -1;
            }
        }
      closedir (dir);
    }
  /* What an entry reached outside the scanned directories (a path entry, a
   * symlink's target elsewhere), unless the scan covered it already. */
  for (size_t i = 0; i < n_primary; i++)
    {
      const blocked_t *b = &c->blocked[i];
      _cleanup_close_ int fd = open_in_root (c, b->path, O_PATH);
      struct stat st;
      if (fd >= 0 && fstat (fd, &st) == 0 && st.st_dev == b->id.dev && st.st_ino == b->id.ino
          && cover (fd, b->path, err) < 0)
        return -1;
    }
  return 0;
}

static int
grant (ctx_t *c, int fd, const char *what, ak_error_t **err)
{
  struct landlock_path_beneath_attr pb = { .allowed_access = LANDLOCK_ACCESS_FS_EXECUTE,
                                           .parent_fd = fd };
  if (ak_landlock_add_rule (c->ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
    return ak_error_set (err, errno, "command policy: landlock rule for %s", what);
  return 0;
}

/* The interpreter a program names: PT_INTERP of an ELF file, or the #!
 * line of a script (and, for env, the program it runs).  The file is the
 * sandbox's (a persistent root): read with bounds, never trusted further. */
static void
interpreters_of (const ctx_t *c, const char *path, char ***out)
{
  _cleanup_close_ int fd = open_in_root (c, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  unsigned char buf[256];
  ssize_t n;

  if (fd < 0)
    return;
  n = pread (fd, buf, sizeof buf - 1, 0);
  if (n < 4)
    return;
  buf[n] = 0;
  if (buf[0] == '#' && buf[1] == '!')
    {
      char *line = (char *) buf + 2, *nl = strchr (line, '\n'), *save = NULL, *interp, *arg;
      if (nl == NULL)
        return;
      *nl = 0;
      interp = strtok_r (line, " \t", &save);
      if (interp == NULL || interp[0] != '/')
        return;
      ak_strv_push (out, interp);
      if (strcmp (strrchr (interp, '/') + 1, "env") != 0)
        return;
      while ((arg = strtok_r (NULL, " \t", &save)) != NULL && arg[0] == '-')
        ;
      if (arg != NULL && strchr (arg, '/') == NULL)
        for (char **d = c->dirs; *d; d++)
          {
            _cleanup_free_ char *p = ak_xasprintf ("%s/%s", *d, arg);
            _cleanup_close_ int t = open_in_root (c, p, O_PATH);
            if (t >= 0)
              {
                ak_strv_push (out, p);
                break;
              }
          }
      else if (arg != NULL && arg[0] == '/')
        ak_strv_push (out, arg);
      return;
    }
  if (memcmp (buf, ELFMAG, SELFMAG) != 0 || n < (ssize_t) sizeof (Elf32_Ehdr))
    return;
  {
    bool is64 = buf[EI_CLASS] == ELFCLASS64;
    uint64_t phoff;
    unsigned phnum, phentsize;
    if (is64 && n >= (ssize_t) sizeof (Elf64_Ehdr))
      {
        Elf64_Ehdr eh;
        memcpy (&eh, buf, sizeof eh);
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
        if (phentsize != sizeof (Elf64_Phdr))
          return;
      }
    else if (!is64)
      {
        Elf32_Ehdr eh;
        memcpy (&eh, buf, sizeof eh);
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
        if (phentsize != sizeof (Elf32_Phdr))
          return;
      }
    else
      return;
    for (unsigned i = 0; i < phnum && i < 64; i++)
      {
        uint64_t type, off, size;
        char interp[PATH_MAX];
        if (is64)
          {
            Elf64_Phdr ph;
            if (pread (fd, &ph, sizeof ph, (off_t) (phoff + (uint64_t) i * phentsize)) != sizeof ph)
              return;
            type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
          }
        else
          {
            Elf32_Phdr ph;
            if (pread (fd, &ph, sizeof ph, (off_t) (phoff + (uint64_t) i * phentsize)) != sizeof ph)
              return;
            type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
          }
        if (type != PT_INTERP)
          continue;
        if (size < 2 || size >= sizeof interp
            || pread (fd, interp, (size_t) size, (off_t) off) != (ssize_t) size)
          return;
        interp[size] = 0;
        if (interp[0] == '/' && strlen (interp) == size - 1)
          ak_strv_push (out, interp);
        return;
      }
  }
}

/* One allowed program at path, and what the kernel opens to start it. */
static int
allow_file (ctx_t *c, const char *path, int depth, ak_error_t **err)
{
  _cleanup_close_ int fd = open_in_root (c, path, O_PATH);
  _cleanup_strv_ char **interps = NULL;
  struct stat st;

  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return 0;
  if (blocked_find (c, &st) != NULL || id_in (c->allowed, c->n_allowed, &st))
    return 0;
  if (grant (c, fd, path, err) < 0)
    return -1;
  c->allowed = ak_xrealloc (c->allowed, (c->n_allowed + 1) * sizeof (file_id_t));
  c->allowed[c->n_allowed++] = (file_id_t) { st.st_dev, st.st_ino };
  if (depth >= MAX_CHAIN)
    return 0;
  interpreters_of (c, path, &interps);
  for (char **i = interps; i && *i; i++)
    if (allow_file (c, *i, depth + 1, err) < 0)
      return -1;
  return 0;
}

static int
grant_allowed (ctx_t *c, ak_error_t **err)
{
  for (size_t i = 0; i < c->pol->n_allow; i++)
    {
      const ak_cmdrule_t *r = &c->pol->allow[i];
      if (strchr (r->text, '/') != NULL)
        {
          if (allow_file (c, r->text, 0, err) < 0)
            return -1;
          continue;
        }
      for (char **d = c->dirs; *d; d++)
        {
          _cleanup_free_ char *p = ak_xasprintf ("%s/%s", *d, r->text);
          if (allow_file (c, p, 0, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* Allowlist mode: the PATH directories become noexec, so that the loader
 * (which needs no execute right on what it maps, only a mount that allows
 * mapping it executable) cannot start a program that is not allowed; each
 * allowed program in them is bound back over itself from the mount it came
 * from, exec intact.  The covers of blocked programs move along (the bind
 * is recursive). */
static int
noexec_dirs (ctx_t *c, ak_error_t **err)
{
  size_t n_done = 0;
  _cleanup_free_ file_id_t *done = ak_xcalloc (ak_strv_len (c->dirs) + 1, sizeof (file_id_t));

  for (char **d = c->dirs; *d; d++)
    {
      struct ak_mount_attr attr = { .attr_set = MOUNT_ATTR_NOEXEC };
      _cleanup_close_ int dfd = open_in_root (c, *d, O_RDONLY | O_DIRECTORY);
      _cleanup_close_ int tree = -1, ndfd = -1;
      _cleanup_strv_ char **names = NULL;
      _cleanup_free_ int *trees = NULL;
      size_t n = 0;
      struct stat dst;
      DIR *dir;
      struct dirent *de;

      if (dfd < 0 || fstat (dfd, &dst) < 0 || id_in (done, n_done, &dst))
        continue;
      done[n_done++] = (file_id_t) { dst.st_dev, dst.st_ino };
      /* The allowed programs here, each cloned from its exec mount. */
      {
        int lfd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0 || (dir = fdopendir (lfd)) == NULL)
          {
            if (lfd >= 0)
              close (lfd);
            return ak_error_set (err, errno, "command policy: list %s", *d);
          }
      }
      while ((de = readdir (dir)) != NULL)
        {
          _cleanup_close_ int fd = -1;
          struct stat st;
          int t;
          if (de->d_name[0] == '.')
            {
              if (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0))
                continue;
            }
          fd = ak_fs_openat (dirfd (dir), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, AK_FS_BENEATH);
          if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)
              || !id_in (c->allowed, c->n_allowed, &st))
            continue;
          t = ak_open_tree (fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
          if (t < 0)
            {
              closedir (dir);
              return ak_error_set (err, errno, "command policy: keep %s/%s", *d, de->d_name);
            }
          ak_strv_push (&names, de->d_name);
          trees = ak_xrealloc (trees, (n + 1) * sizeof (int));
          trees[n++] = t;
        }
      closedir (dir);
      tree = ak_open_tree (dfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
      if (tree < 0 || ak_mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0
          || ak_move_mount (tree, "", dfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        {
          int e = errno;
          for (size_t i = 0; i < n; i++)
            close (trees[i]);
          return ak_error_set (err, e, "command policy: make %s noexec", *d);
        }
      ndfd = open_in_root (c, *d, O_PATH | O_DIRECTORY);
      for (size_t i = 0; i < n; i++)
        {
          _cleanup_close_ int t = trees[i];
          _cleanup_close_ int target = ndfd < 0 ? -1
                                                : ak_fs_openat (ndfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC, 0,
                                                                AK_FS_BENEATH);
          if (target < 0
              || ak_move_mount (t, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            {
              int e = errno;
              for (size_t j = i + 1; j < n; j++)
                close (trees[j]);
              return ak_error_set (err, e, "command policy: allow %s/%s", *d, names[i]);
            }
        }
    }
  return 0;
}

/* Whether the sandbox could create entries in (or rewrite) what st
 * describes: its owner or group is an id mapped into the sandbox (shown as
 * the overflow id otherwise) or, in a guest, the sandbox's own id (root's
 * too when the command may run as root), or anyone may write it. */
static bool
sandbox_writable (const ctx_t *c, const struct stat *st)
{
  if (c->writer >= 0)
    return st->st_uid == (uid_t) c->writer || (st->st_mode & S_IWOTH)
           || (st->st_gid == (gid_t) c->writer && (st->st_mode & S_IWGRP))
           || (c->root_writes && (st->st_uid == 0 || (st->st_gid == 0 && (st->st_mode & S_IWGRP))));
  return st->st_uid != AK_OVERFLOW_ID || (st->st_mode & S_IWOTH)
         || (st->st_gid != AK_OVERFLOW_ID && (st->st_mode & S_IWGRP));
}

/* A program tree: executable as a whole when the sandbox cannot write in
 * it; otherwise (its own image, the private layer's /usr or /opt) entry by
 * entry, as they are now, so that nothing it adds later is executable. */
static int
grant_tree (ctx_t *c, int dfd, const char *path, int depth, ak_error_t **err)
{
  struct stat st;
  DIR *dir;
  struct dirent *de;
  int lfd;

  if (fstat (dfd, &st) < 0 || !S_ISDIR (st.st_mode))
    return 0;
  if (!sandbox_writable (c, &st))
    return grant (c, dfd, path, err);
  if (depth >= MAX_TREE_DEPTH)
    return 0; /* deeper than that: not executable (never more) */
  lfd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lfd < 0 || (dir = fdopendir (lfd)) == NULL)
    {
      if (lfd >= 0)
        close (lfd);
      return ak_error_set (err, errno, "command policy: list %s", path);
    }
  while ((de = readdir (dir)) != NULL)
    {
      _cleanup_close_ int fd = -1;
      _cleanup_free_ char *p = NULL;
      struct stat est;
      int rc = 0;

      if (de->d_name[0] == '.' && (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))
        continue;
      fd = ak_fs_openat (dirfd (dir), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, AK_FS_BENEATH);
      if (fd < 0 || fstat (fd, &est) < 0)
        continue;
      p = ak_xasprintf ("%s/%s", path, de->d_name);
      if (S_ISDIR (est.st_mode))
        rc = grant_tree (c, fd, p, depth + 1, err);
      else if (S_ISREG (est.st_mode) && (est.st_mode & 0111) && c->n_tree_rules++ < MAX_TREE_RULES)
        rc = grant (c, fd, p, err);
      if (rc < 0)
        {
          closedir (dir);
          return -1;
        }
    }
  closedir (dir);
  return 0;
}

static int
grant_trees (ctx_t *c, ak_error_t **err)
{
  for (const char *const *t = program_trees; *t; t++)
    {
      _cleanup_close_ int fd = open_in_root (c, *t, O_PATH | O_DIRECTORY);
      if (fd >= 0 && grant_tree (c, fd, *t, 0, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < c->spec->n_mounts; i++)
    {
      _cleanup_close_ int fd = -1;
      if (!c->spec->mounts[i].read_only)
        continue;
      fd = open_in_root (c, c->spec->mounts[i].dest, O_PATH);
      if (fd >= 0 && grant (c, fd, c->spec->mounts[i].dest, err) < 0)
        return -1;
    }
  return 0;
}

/* What the watcher (execwatch.c) needs to tell a denied exec: the cover's
 * identity and the allowed files, in a sealed memfd. */
static int
write_info (const ctx_t *c, ak_error_t **err)
{
  struct stat cst;
  ak_execinfo_t h = { .allowlist_only = c->pol->allowlist_only, .n_allowed = c->n_allowed };
  _cleanup_close_ int fd = memfd_create ("ak-execpolicy", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (stat (COVER_FILE, &cst) == 0)
    h.cover_dev = cst.st_dev, h.cover_ino = cst.st_ino;
  if (fd < 0)
    return ak_error_set (err, errno, "command policy: memfd");
  for (size_t i = 0; i < c->n_allowed; i++)
    h.allowed[i < AK_EXECINFO_MAX ? i : AK_EXECINFO_MAX - 1]
        = (ak_execid_t) { .dev = c->allowed[i].dev, .ino = c->allowed[i].ino };
  if (h.n_allowed > AK_EXECINFO_MAX)
    h.n_allowed = AK_EXECINFO_MAX;
  if (write (fd, &h, sizeof h) != (ssize_t) sizeof h
      || fcntl (fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
    return ak_error_set (err, errno, "command policy: write memfd");
  return take_fd (&fd);
}

int
ak_execpolicy_prepare (int rootfd, const ak_spec_t *spec, long writer, bool root_writes, int *ruleset,
                       int *info, ak_error_t **err)
{
  const ak_cmdpolicy_t *pol = &spec->sec.commands;
  struct landlock_ruleset_attr attr = { .handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE };
  _cleanup_strv_ char **env = NULL;
  ctx_t c = { .rootfd = rootfd, .spec = spec, .pol = pol, .ruleset = -1, .writer = writer,
             .root_writes = root_writes };
  int rc = -1;

  *ruleset = -1;
  *info = -1;
  if (!ak_cmdpolicy_active (pol))
    return 0;
  /* Never a policy silently not applied. */
  if (ak_landlock_abi () <= 0)
    return ak_error_set (err, 0,
                         "the command policy ([security.commands], --allow-cmd, --block-cmd) needs "
                         "Landlock, which this kernel does not offer (Linux >= 5.13 with landlock "
                         "in its lsm= list; see 'agentkernel doctor'); remove the policy to run "
                         "without it");
  env = ak_spec_build_env (spec);
  for (char **e = env; e && *e; e++)
    if (strncmp (*e, "PATH=", 5) == 0)
      dirs_add (&c.dirs, *e + 5);
  dirs_add (&c.dirs, SEARCH_PATH);
  c.ruleset = ak_landlock_create_ruleset (&attr, sizeof (uint64_t), 0);
  if (c.ruleset < 0)
    {
      ak_error_set (err, errno, "command policy: landlock ruleset");
      goto out;
    }
  if (resolve_blocked (&c, err) < 0 || cover_blocked (&c, err) < 0)
    goto out;
  if (pol->allowlist_only ? grant_allowed (&c, err) < 0 || noexec_dirs (&c, err) < 0
                          : grant_trees (&c, err) < 0)
    goto out;
  *info = write_info (&c, err);
  if (*info < 0)
    goto out;
  *ruleset = take_fd (&c.ruleset);
  rc = 0;
out:
  if (c.ruleset >= 0)
    close (c.ruleset);
  ak_strv_free (c.dirs);
  for (size_t i = 0; i < c.n_blocked; i++)
    free (c.blocked[i].path);
  free (c.blocked);
  free (c.allowed);
  return rc;
}

int
ak_execpolicy_apply (int ruleset, ak_error_t **err)
{
  if (ruleset < 0)
    return 0;
  if (ak_landlock_restrict_self (ruleset, 0) < 0)
    return ak_error_set (err, errno, "command policy: landlock restrict self");
  close (ruleset);
  return 0;
}
