/* Trusted config files: the SHA-256 of a file the user vouched for with
 * `agentkernel config trust`, with its canonical path.
 *
 * A ./agentkernel.toml is written by whoever writes the repository, the
 * sandboxed agent included, so by default it may only tighten (config.h).
 * The record binds the user's consent to the exact bytes: a file changed
 * after `trust` (by a sandbox through /workspace, or by a pull) is untrusted
 * again.  The records live in the caller's config directory, which no
 * sandbox is given write access to (the home share is read-only). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/store.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/digest.h"
#include "common/util.h"

/* The hex SHA-256 of a config file's bytes, as the trust records keep it. */
void
ak_sha256_hex (const void *data, size_t len, char out[65])
{
  char d[AK_DIGEST_STR_LEN + 1];
  ak_sha256_digest (data, len, d);
  memcpy (out, d + 7, AK_SHA256_HEX_LEN + 1);
}

/* The records, one "HEX PATH" a line; an absent file is an empty list. */
static int
read_records (const char *path, char **out, ak_error_t **err)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  size_t len;

  *out = NULL;
  if (fd < 0 && errno == ENOENT)
    {
      *out = ak_xstrdup ("");
      return 0;
    }
  if (fd < 0 || fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "trusted config records %s", path);
  /* Someone else's record would let them vouch for files in our name. */
  if (!S_ISREG (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 022) != 0)
    return ak_error_set (err, 0,
                         "trusted config records %s: not a regular file of ours, writable by us "
                         "alone; remove it and trust the files again",
                         path);
  len = (size_t) st.st_size;
  *out = ak_xmalloc (len + 1);
  if (ak_read_all (fd, *out, len) != (ssize_t) len)
    {
      free (*out);
      *out = NULL;
      return ak_error_set (err, errno, "trusted config records %s: short read", path);
    }
  (*out)[len] = '\0';
  return 0;
}

bool
ak_trust_check (const char *real, const char *hex)
{
  _cleanup_free_ char *dir = ak_config_dir (NULL);
  _cleanup_free_ char *path = NULL;
  _cleanup_free_ char *recs = NULL;
  ak_error_t *err = NULL;
  size_t rl = strlen (real);

  if (dir == NULL)
    return false;
  path = ak_xasprintf ("%s/trusted", dir);
  if (read_records (path, &recs, &err) < 0)
    {
      ak_warn ("%s", err->msg);
      ak_error_free (err);
      return false;
    }
  for (char *l = recs; *l != '\0';)
    {
      char *nl = strchr (l, '\n');
      size_t n = nl ? (size_t) (nl - l) : strlen (l);
      if (n == 65 + rl && strncmp (l, hex, 64) == 0 && l[64] == ' ' && strncmp (l + 65, real, rl) == 0)
        return true;
      l += n + (nl != NULL);
    }
  return false;
}

/* Rewrites the records without `real`, then with it (hash `hex`) unless hex
 * is NULL.  The new list goes to a private temporary file renamed over the
 * old one, so a crash never leaves half a list. */
int
ak_trust_update (const char *real, const char *hex, bool *was_present, ak_error_t **err)
{
  _cleanup_free_ char *dir = ak_config_dir (err);
  _cleanup_free_ char *path = NULL, *tmp = NULL, *recs = NULL, *out = NULL;
  size_t rl = strlen (real), olen = 0;
  _cleanup_close_ int fd = -1;

  *was_present = false;
  if (dir == NULL)
    return -1;
  {
    _cleanup_free_ char *parent = ak_xstrndup (dir, (size_t) (strrchr (dir, '/') - dir));
    if (mkdir (parent, 0700) < 0 && errno != EEXIST)
      return ak_error_set (err, errno, "mkdir %s", parent);
  }
  if (mkdir (dir, 0700) < 0 && errno != EEXIST)
    return ak_error_set (err, errno, "mkdir %s", dir);
  path = ak_xasprintf ("%s/trusted", dir);
  if (read_records (path, &recs, err) < 0)
    return -1;
  out = ak_xmalloc (strlen (recs) + rl + 80);
  for (char *l = recs; *l != '\0';)
    {
      char *nl = strchr (l, '\n');
      size_t n = nl ? (size_t) (nl - l) : strlen (l);
      if (n == 65 + rl && l[64] == ' ' && strncmp (l + 65, real, rl) == 0)
        *was_present = true;
      else if (n > 0)
        {
          memcpy (out + olen, l, n);
          olen += n;
          out[olen++] = '\n';
        }
      l += n + (nl != NULL);
    }
  if (hex != NULL)
    olen += (size_t) sprintf (out + olen, "%s %s\n", hex, real);
  tmp = ak_xasprintf ("%s/.trusted.%d", dir, (int) getpid ());
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return ak_error_set (err, errno, "create %s", tmp);
  if (ak_write_all (fd, out, olen) < 0 || fsync (fd) < 0 || rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return ak_error_set (err, e, "write %s", path);
    }
  return 0;
}

/* Reads a config file for hashing and parsing: one read, so the bytes
 * applied are the bytes whose hash was checked. */
int
ak_trust_read (const char *file, char **buf, size_t *len, char **real, ak_error_t **err)
{
  _cleanup_close_ int fd = open (file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  ssize_t n;

  *buf = NULL, *real = NULL;
  if (fd < 0 || fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "config file %s", file);
  if (!S_ISREG (st.st_mode))
    return ak_error_set (err, 0, "config file %s: not a regular file", file);
  if (st.st_size > (16 << 20))
    return ak_error_set (err, 0, "config file %s: larger than 16 MiB", file);
  *buf = ak_xmalloc ((size_t) st.st_size + 1);
  n = ak_read_all (fd, *buf, (size_t) st.st_size);
  if (n < 0)
    {
      free (*buf);
      *buf = NULL;
      return ak_error_set (err, errno, "config file %s", file);
    }
  *len = (size_t) n;
  (*buf)[n] = '\0';
  *real = realpath (file, NULL);
  if (*real == NULL)
    {
      free (*buf);
      *buf = NULL;
      return ak_error_set (err, errno, "config file %s", file);
    }
  return 0;
}
