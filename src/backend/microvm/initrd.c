/* The guest's initramfs: the static guest init as /init and the kernel
 * modules it loads (in dependency order), as an uncompressed newc cpio
 * archive.  Built into the cache directory under a name derived from
 * everything that goes in (the init's bytes, the kernel release, each
 * module's bytes), so a changed input is a new file and never a stale one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/microvm/microvm.h"
#include "common/cleanup.h"
#include "common/util.h"

/* What the guest needs, in load order; each module's dependencies are
 * loaded before it. */
static const char *const wanted[] = { "virtio_mmio", "virtio_console", "virtiofs", "overlay", "virtio_net",
                                      "virtio_blk", "ext4", NULL };

char *
ak_vm_cache_dir (void)
{
  const char *s = getenv ("AGENTKERNEL_STATE_DIR"), *c = getenv ("XDG_CACHE_HOME"), *h = getenv ("HOME");
  if (s != NULL && s[0] == '/')
    return ak_xasprintf ("%s/cache/microvm", s);
  if (c != NULL && c[0] == '/')
    return ak_xasprintf ("%s/agentkernel/microvm", c);
  if (h != NULL && h[0] == '/')
    return ak_xasprintf ("%s/.cache/agentkernel/microvm", h);
  return NULL;
}

static int
mkdirs (const char *path)
{
  _cleanup_free_ char *p = ak_xstrdup (path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/')
      {
        *s = 0;
        if (mkdir (p, 0700) < 0 && errno != EEXIST)
          return -1;
        *s = '/';
      }
  return mkdir (p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static char *
read_file (const char *path, size_t *len)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  char *buf;
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return NULL;
  buf = ak_xmalloc ((size_t) st.st_size + 1);
  *len = 0;
  while (*len < (size_t) st.st_size)
    {
      ssize_t r = read (fd, buf + *len, (size_t) st.st_size - *len);
      if (r <= 0)
        {
          free (buf);
          return NULL;
        }
      *len += (size_t) r;
    }
  buf[*len] = 0;
  return buf;
}

static bool
strv_has (char **v, const char *s)
{
  for (; v && *v; v++)
    if (strcmp (*v, s) == 0)
      return true;
  return false;
}

/* The modules to load, dependencies first, as paths relative to dir. */
static int
module_list (const char *dir, char ***out, ak_error_t **err)
{
  _cleanup_free_ char *depfile = ak_xasprintf ("%s/modules.dep", dir);
  size_t len;
  _cleanup_free_ char *dep = read_file (depfile, &len);
  char **list = NULL;
  if (dep == NULL)
    return ak_error_set (err, errno, "read %s (is the kernel's module package installed?)", depfile);
  for (size_t w = 0; wanted[w]; w++)
    {
      _cleanup_free_ char *needle = ak_xasprintf ("/%s.ko", wanted[w]);
      char *line = NULL;
      for (char *l = dep; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
        {
          char *colon = strchr (l, ':');
          size_t nl = strlen (needle);
          if (colon != NULL && (size_t) (colon - l) >= nl && strncmp (colon - nl, needle, nl) == 0)
            {
              line = l;
              break;
            }
        }
      if (line == NULL)
        {
          /* Built into the kernel: nothing to load. */
          continue;
        }
      {
        char *end = strchr (line, '\n');
        _cleanup_free_ char *copy = ak_xstrndup (line, end ? (size_t) (end - line) : strlen (line));
        char *colon = strchr (copy, ':');
        char **deps = NULL;
        *colon = 0;
        /* modules.dep lists dependencies nearest first: load them last to first. */
        for (char *t = strtok (colon + 1, " "); t; t = strtok (NULL, " "))
          ak_strv_push (&deps, t);
        for (size_t n = deps ? ak_strv_len (deps) : 0; n-- > 0;)
          if (!strv_has (list, deps[n]))
            ak_strv_push (&list, deps[n]);
        if (!strv_has (list, copy))
          ak_strv_push (&list, copy);
        ak_strv_free (deps);
      }
    }
  *out = list;
  return 0;
}

typedef struct cpio {
  FILE *f;
  unsigned ino;
} cpio_t;

static void
cpio_entry (cpio_t *c, const char *name, unsigned mode, unsigned rmaj, unsigned rmin, const char *data,
            size_t len)
{
  size_t nl = strlen (name) + 1;
  static const char zeros[4];
  fprintf (c->f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ++c->ino, mode, 0u, 0u,
           1u, 0u, len, 0u, 0u, rmaj, rmin, nl, 0u);
  fwrite (name, 1, nl, c->f);
  fwrite (zeros, 1, (4 - (110 + nl) % 4) % 4, c->f);
  if (len > 0)
    fwrite (data, 1, len, c->f);
  fwrite (zeros, 1, (4 - len % 4) % 4, c->f);
}

static void
hash_str (struct sha256_ctx *h, const char *s, size_t len)
{
  uint8_t l[8];
  for (int i = 0; i < 8; i++)
    l[i] = (uint8_t) (len >> (8 * i));
  sha256_update (h, sizeof l, l);
  sha256_update (h, len, (const uint8_t *) s);
}

int
ak_vm_initrd (ak_vm_assets_t *a, ak_error_t **err)
{
  _cleanup_free_ char *cache = ak_vm_cache_dir ();
  _cleanup_free_ char *guest = NULL;
  char **mods = NULL;
  char **blobs = NULL;
  size_t guest_len, *lens = NULL, n;
  struct sha256_ctx h;
  uint8_t d[SHA256_DIGEST_SIZE];
  char hex[2 * SHA256_DIGEST_SIZE + 1];
  _cleanup_free_ char *path = NULL;
  _cleanup_free_ char *tmp = NULL;
  int ret = -1;

  if (cache == NULL)
    return ak_error_set (err, 0, "no cache directory (set AGENTKERNEL_STATE_DIR or HOME)");
  if ((guest = read_file (a->guest, &guest_len)) == NULL)
    return ak_error_set (err, errno, "read the guest init %s", a->guest);
  if (module_list (a->modules, &mods, err) < 0)
    return -1;
  n = mods ? ak_strv_len (mods) : 0;
  blobs = ak_xcalloc (n + 1, sizeof (char *));
  lens = ak_xcalloc (n + 1, sizeof (size_t));
  sha256_init (&h);
  hash_str (&h, "agentkernel-initrd-1", 20);
  hash_str (&h, guest, guest_len);
  hash_str (&h, a->release, strlen (a->release));
  for (size_t i = 0; i < n; i++)
    {
      _cleanup_free_ char *mp = ak_xasprintf ("%s/%s", a->modules, mods[i]);
      if ((blobs[i] = read_file (mp, &lens[i])) == NULL)
        {
          ak_error_set (err, errno, "read module %s", mp);
          goto out;
        }
      hash_str (&h, mods[i], strlen (mods[i]));
      hash_str (&h, blobs[i], lens[i]);
    }
  sha256_digest (&h, sizeof d, d);
  for (size_t i = 0; i < sizeof d; i++)
    snprintf (hex + 2 * i, 3, "%02x", d[i]);
  path = ak_xasprintf ("%s/initrd-%.32s.cpio", cache, hex);
  if (access (path, R_OK) == 0)
    {
      a->initrd = steal_pointer (&path);
      ret = 0;
      goto out;
    }
  if (mkdirs (cache) < 0)
    {
      ak_error_set (err, errno, "mkdir %s", cache);
      goto out;
    }
  tmp = ak_xasprintf ("%s.%d.tmp", path, (int) getpid ());
  {
    cpio_t c = { .f = fopen (tmp, "we") };
    if (c.f == NULL)
      {
        ak_error_set (err, errno, "create %s", tmp);
        goto out;
      }
    cpio_entry (&c, "dev", 040755, 0, 0, NULL, 0);
    cpio_entry (&c, "dev/console", 020600, 5, 1, NULL, 0);
    cpio_entry (&c, "proc", 040755, 0, 0, NULL, 0);
    cpio_entry (&c, "sys", 040755, 0, 0, NULL, 0);
    cpio_entry (&c, "mnt", 040755, 0, 0, NULL, 0);
    cpio_entry (&c, "mods", 040755, 0, 0, NULL, 0);
    cpio_entry (&c, "init", 0100755, 0, 0, guest, guest_len);
    for (size_t i = 0; i < n; i++)
      {
        const char *base = strrchr (mods[i], '/') ? strrchr (mods[i], '/') + 1 : mods[i];
        _cleanup_free_ char *name = ak_xasprintf ("mods/%02zu-%s", i, base);
        cpio_entry (&c, name, 0100644, 0, 0, blobs[i], lens[i]);
      }
    cpio_entry (&c, "TRAILER!!!", 0, 0, 0, NULL, 0);
    if (fflush (c.f) != 0 || fsync (fileno (c.f)) < 0)
      {
        fclose (c.f);
        ak_error_set (err, errno, "write %s", tmp);
        unlink (tmp);
        goto out;
      }
    fclose (c.f);
  }
  if (chmod (tmp, 0644) < 0 || rename (tmp, path) < 0)
    {
      ak_error_set (err, errno, "rename %s", tmp);
      unlink (tmp);
      goto out;
    }
  a->initrd = steal_pointer (&path);
  ret = 0;
out:
  for (size_t i = 0; blobs && i < n; i++)
    free (blobs[i]);
  free (blobs);
  free (lens);
  ak_strv_free (mods);
  return ret;
}
