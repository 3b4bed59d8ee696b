#define _GNU_SOURCE
#include "util.h"

#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"

void
ak_oom (void)
{
  static const char m[] = "agentkernel: out of memory\n";
  (void) !write (STDERR_FILENO, m, sizeof m - 1);
  abort ();
}

void *
ak_xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (p == NULL)
    ak_oom ();
  return p;
}

void *
ak_xcalloc (size_t n, size_t m)
{
  void *p = calloc (n ? n : 1, m ? m : 1);
  if (p == NULL)
    ak_oom ();
  return p;
}

void *
ak_xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (p == NULL)
    ak_oom ();
  return p;
}

char *
ak_xstrdup (const char *s)
{
  char *p = strdup (s);
  if (p == NULL)
    ak_oom ();
  return p;
}

char *
ak_xstrndup (const char *s, size_t n)
{
  char *p = strndup (s, n);
  if (p == NULL)
    ak_oom ();
  return p;
}

char *
ak_xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *p = NULL;
  va_start (ap, fmt);
  if (vasprintf (&p, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  return p;
}

size_t
ak_strv_len (char *const *v)
{
  size_t n = 0;
  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

void
ak_strv_push (char ***v, const char *s)
{
  size_t n = ak_strv_len (*v);
  *v = ak_xrealloc (*v, (n + 2) * sizeof (char *));
  (*v)[n] = ak_xstrdup (s);
  (*v)[n + 1] = NULL;
}

char **
ak_strv_dup (char *const *v)
{
  size_t n = ak_strv_len (v);
  char **r = ak_xcalloc (n + 1, sizeof (char *));
  for (size_t i = 0; i < n; i++)
    r[i] = ak_xstrdup (v[i]);
  return r;
}

void
ak_strv_free (char **v)
{
  ak_strvfreep (&v);
}

int
ak_write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

int
ak_send_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

ssize_t
ak_read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t got = 0;
  while (got < len)
    {
      ssize_t n = read (fd, p + got, len - got);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (n == 0)
        break;
      got += (size_t) n;
    }
  return (ssize_t) got;
}

int
ak_write_file (const char *path, const char *data, size_t len, int mode, ak_error_t **err)
{
  _cleanup_close_ int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return ak_error_set (err, errno, "open %s", path);
  if (ak_write_all (fd, data, len) < 0)
    return ak_error_set (err, errno, "write %s", path);
  return 0;
}

int
ak_write_string (const char *path, const char *s, ak_error_t **err)
{
  _cleanup_close_ int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return ak_error_set (err, errno, "open %s", path);
  if (ak_write_all (fd, s, strlen (s)) < 0)
    return ak_error_set (err, errno, "write '%s' to %s", s, path);
  return 0;
}

int
ak_read_file (const char *path, char **out, size_t *len, ak_error_t **err)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  _cleanup_free_ char *buf = NULL;
  size_t cap = 4096, used = 0;

  if (fd < 0)
    return ak_error_set (err, errno, "open %s", path);
  buf = ak_xmalloc (cap);
  for (;;)
    {
      ssize_t n;
      if (used + 1 >= cap)
        {
          cap *= 2;
          buf = ak_xrealloc (buf, cap);
        }
      n = read (fd, buf + used, cap - used - 1);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return ak_error_set (err, errno, "read %s", path);
        }
      if (n == 0)
        break;
      used += (size_t) n;
    }
  buf[used] = '\0';
  if (len != NULL)
    *len = used;
  *out = steal_pointer (&buf);
  return 0;
}

bool
ak_parse_u64 (const char *s, unsigned long long min, unsigned long long max,
              unsigned long long *out)
{
  unsigned long long v = 0;
  if (s == NULL || *s == '\0')
    return false;
  for (const char *p = s; *p; p++)
    {
      if (*p < '0' || *p > '9')
        return false;
      if (v > (~0ULL - 9) / 10)
        return false;
      v = v * 10 + (unsigned) (*p - '0');
    }
  if (v < min || v > max)
    return false;
  *out = v;
  return true;
}

unsigned long long
ak_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (unsigned long long) ts.tv_sec * 1000000000ULL + (unsigned long long) ts.tv_nsec;
}

/* Only the test build (build/agentkernel-test: this file compiled with
 * -DAK_TEST_BUILD) reads AK_TEST_DISABLE.  In the product it does not
 * exist: no variable in a caller's environment, set by whatever started
 * agentkernel, can switch the filter or Landlock off. */
bool
ak_test_disabled (const char *feature)
{
#ifdef AK_TEST_BUILD
  const char *v = getenv ("AK_TEST_DISABLE");
  size_t n = strlen (feature);
  for (const char *p = v; p != NULL && *p; p += strcspn (p, ","), p += *p == ',')
    if (strncmp (p, feature, n) == 0 && (p[n] == ',' || p[n] == '\0'))
      return true;
#else
  (void) feature;
#endif
  return false;
}

const char *
ak_test_hosts_file (void)
{
#ifdef AK_TEST_BUILD
  const char *v = getenv ("AK_TEST_HOSTS");
  return v != NULL && v[0] == '/' ? v : NULL;
#else
  return NULL;
#endif
}

const char *
ak_test_vmm (void)
{
#ifdef AK_TEST_BUILD
  const char *v = getenv ("AK_TEST_VMM");
  return v != NULL && v[0] == '/' ? v : NULL;
#else
  return NULL;
#endif
}

void
ak_signals_default (void)
{
  /* The kernel's struct for rt_sigaction(2). */
  struct {
    void (*handler) (int);
    unsigned long flags;
    void (*restorer) (void);
    unsigned long mask;
  } dfl = { SIG_DFL, 0, NULL, 0 };
  sigset_t none;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int s = 1; s <= 64; s++)
    if (s != SIGKILL && s != SIGSTOP)
      syscall (SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);
}

void
ak_block_owner_signals (sigset_t *mask)
{
  sigemptyset (mask);
  sigaddset (mask, SIGCHLD);
  sigaddset (mask, SIGTERM);
  sigaddset (mask, SIGINT);
  sigaddset (mask, SIGHUP);
  sigprocmask (SIG_BLOCK, mask, NULL);
}

int
ak_hex_value (int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool
ak_dir_exists (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

int
ak_parse_duration (const char *s, long long *seconds)
{
  long long total = 0;
  const char *p = s;

  if (s == NULL || *s == '\0')
    return AK_DURATION_SYNTAX;
  while (*p)
    {
      long long v = 0, unit;
      if (*p < '0' || *p > '9')
        return AK_DURATION_SYNTAX;
      while (*p >= '0' && *p <= '9')
        {
          v = v * 10 + (*p++ - '0');
          if (v > 1000000000LL)
            return AK_DURATION_SYNTAX;
        }
      switch (*p)
        {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case '\0':
          /* A bare number is seconds, and only alone. */
          if (total != 0)
            return AK_DURATION_SYNTAX;
          unit = 1;
          p--;
          break;
        default:
          return AK_DURATION_SYNTAX;
        }
      p++;
      total += v * unit;
      if (total > 366LL * 86400)
        return AK_DURATION_LONG;
    }
  if (total <= 0)
    return AK_DURATION_ZERO;
  *seconds = total;
  return 0;
}

/* Touches n bytes of stack below the caller's frame. */
static void __attribute__ ((noinline))
touch_stack (size_t n)
{
  volatile char *p = alloca (n);
  for (size_t i = 0; i < n; i += 4096)
    p[i] = 0;
}

void
ak_prefault (size_t heap_bytes, size_t stack_bytes)
{
  FILE *maps = fopen ("/proc/self/maps", "re");
  char line[512];
  long page = sysconf (_SC_PAGESIZE);
  enum { CHUNK = 4000 };
  void **blocks;
  size_t n;

  if (page <= 0)
    page = 4096;
  int pagemap = open ("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

  /* Pages present (pagemap, bit 63) in private writable mappings, written
   * in place (the same byte back): copy-on-write pages shared with a parent
   * become this process's own; pages never used stay unallocated. */
  while (maps != NULL && pagemap >= 0 && fgets (line, sizeof line, maps) != NULL)
    {
      unsigned long lo, hi;
      char perms[8];
      uint64_t entry[64];
      if (sscanf (line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || strstr (line, "[stack]") != NULL)
        continue;
      /* The program's and its libraries' code: read, so that the run does
       * not fault it in page by page (installed programs, never a memfd
       * or a device). */
      if (strcmp (perms, "r-xp") == 0 && strchr (line, '/') != NULL && strstr (line, " /memfd:") == NULL
          && strstr (line, " /dev/") == NULL)
        {
          for (unsigned long a = lo; a < hi; a += (unsigned long) page)
            (void) *(volatile const char *) a;
          continue;
        }
      if (strcmp (perms, "rw-p") != 0)
        continue;
      for (unsigned long a = lo; a < hi;)
        {
          size_t want = (hi - a) / (unsigned long) page;
          ssize_t got;
          if (want > 64)
            want = 64;
          got = pread (pagemap, entry, want * sizeof entry[0], (off_t) (a / (unsigned long) page * sizeof entry[0]));
          if (got <= 0)
            break;
          for (size_t i = 0; i < (size_t) got / sizeof entry[0]; i++, a += (unsigned long) page)
            if (entry[i] >> 63)
              {
                volatile char *c = (volatile char *) a;
                *c = *c;
              }
        }
    }
  if (pagemap >= 0)
    close (pagemap);
  if (maps != NULL)
    fclose (maps);
  /* Small blocks (below the allocator's mmap threshold), freed in one go:
   * their pages stay in the heap, under its trim threshold. */
  n = heap_bytes / CHUNK;
  blocks = n > 0 ? calloc (n, sizeof *blocks) : NULL;
  for (size_t i = 0; blocks != NULL && i < n; i++)
    if ((blocks[i] = malloc (CHUNK)) != NULL)
      memset (blocks[i], 0, CHUNK);
  for (size_t i = 0; blocks != NULL && i < n; i++)
    free (blocks[i]);
  free (blocks);
  if (stack_bytes > 0)
    touch_stack (stack_bytes);
}

/* The kernel's struct sigaction: raw rt_sigaction also reaches the signals
 * the C library keeps for itself (32, 33), which a caller may ignore too. */
struct k_sigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

static struct {
  bool known;
  uint64_t set;
} ignored;

void
ak_signals_ignored_are (uint64_t set)
{
  ignored.known = true;
  ignored.set = set & ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)));
}

uint64_t
ak_signals_ignored (void)
{
  uint64_t set = 0;

  if (ignored.known)
    return ignored.set;
  /* One question per signal: 62 system calls cost less than reading
   * /proc/self/status (measured: 6.6 against 9.9 us warm, more cold). */
  for (int sig = 1; sig <= 64; sig++)
    {
      struct k_sigaction old;
      if (sig != SIGKILL && sig != SIGSTOP && syscall (SYS_rt_sigaction, sig, NULL, &old, sizeof old.mask) == 0
          && old.handler == (void *) SIG_IGN)
        set |= 1ULL << (sig - 1);
    }
  return set;
}

void
ak_signals_ignore (uint64_t set)
{
  for (int sig = 1; sig <= 64; sig++)
    if ((set & (1ULL << (sig - 1))) && sig != SIGKILL && sig != SIGSTOP)
      {
        struct k_sigaction ign = { .handler = (void *) SIG_IGN };
        (void) syscall (SYS_rt_sigaction, sig, &ign, NULL, sizeof ign.mask);
      }
}

size_t
ak_count_entries (const char *buf, size_t len)
{
  size_t n = 0;
  for (const char *p = buf, *end = buf + len; p < end; n++)
    {
      const char *z = memchr (p, '\0', (size_t) (end - p));
      p = z != NULL ? z + 1 : end;
    }
  return n;
}

int
ak_sealed_memfd (const char *name, const void *buf, size_t len, ak_error_t **err)
{
  _cleanup_close_ int fd = memfd_create (name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (fd < 0)
    return ak_error_set (err, errno, "memfd_create");
  if (ak_write_all (fd, buf, len) < 0
      || fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return ak_error_set (err, errno, "%s", name);
  return take_fd (&fd);
}

char *
ak_read_fd (int fd, size_t max, size_t *len, const char *what, ak_error_t **err)
{
  struct stat st;
  char *buf;

  if (fstat (fd, &st) < 0)
    return ak_error_set (err, errno, "%s", what), NULL;
  if (st.st_size <= 0 || (size_t) st.st_size > max)
    return ak_error_set (err, 0, "%s: bad size", what), NULL;
  buf = ak_xmalloc ((size_t) st.st_size + 1);
  if (pread (fd, buf, (size_t) st.st_size, 0) != st.st_size)
    {
      free (buf);
      return ak_error_set (err, errno, "%s: read", what), NULL;
    }
  buf[st.st_size] = '\0';
  *len = (size_t) st.st_size;
  return buf;
}
