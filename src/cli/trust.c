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
#include "common/util.h"

/* SHA-256 as specified by FIPS 180-4.  Only config files go through it, and
 * only when one is found, so it stays off the start-up path of a plain run. */
static const uint32_t k256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t
ror (uint32_t x, unsigned n)
{
  return (x >> n) | (x << (32 - n));
}

static void
sha256_block (uint32_t h[8], const unsigned char *p)
{
  uint32_t w[64], a, b, c, d, e, f, g, hh;

  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 | (uint32_t) p[4 * i + 2] << 8
           | p[4 * i + 3];
  for (int i = 16; i < 64; i++)
    {
      uint32_t s0 = ror (w[i - 15], 7) ^ ror (w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ror (w[i - 2], 17) ^ ror (w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
  a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++)
    {
      uint32_t t1 = hh + (ror (e, 6) ^ ror (e, 11) ^ ror (e, 25)) + ((e & f) ^ (~e & g)) + k256[i]
                    + w[i];
      uint32_t t2 = (ror (a, 2) ^ ror (a, 13) ^ ror (a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void
ak_sha256_hex (const void *data, size_t len, char out[65])
{
  uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  const unsigned char *p = data;
  unsigned char tail[128] = { 0 };
  size_t full = len / 64 * 64, rest = len - full, tlen;
  uint64_t bits = (uint64_t) len * 8;

  for (size_t i = 0; i < full; i += 64)
    sha256_block (h, p + i);
  memcpy (tail, p + full, rest);
  tail[rest] = 0x80;
  tlen = rest + 9 <= 64 ? 64 : 128;
  for (int i = 0; i < 8; i++)
    tail[tlen - 1 - i] = (unsigned char) (bits >> (8 * i));
  for (size_t i = 0; i < tlen; i += 64)
    sha256_block (h, tail + i);
  for (int i = 0; i < 8; i++)
    snprintf (out + 8 * i, 9, "%08x", h[i]);
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
