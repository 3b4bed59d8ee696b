/* asciicast v2 writer: header, timed events, UTF-8 repair. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "service/asciicast.h"

enum { STREAM_OUT, STREAM_IN };

struct ak_cast {
  FILE *f;
  unsigned long long t0;
  bool failed;
  int saved_errno;
  /* An incomplete UTF-8 sequence (at most 3 bytes) held back per stream. */
  uint8_t carry[2][4];
  size_t carry_len[2];
};

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void
buf_add (buf_t *b, const void *s, size_t n)
{
  if (b->cap - b->len < n + 1)
    {
      size_t cap = b->cap ? b->cap : 256;
      while (cap - b->len < n + 1)
        cap *= 2;
      b->p = ak_xrealloc (b->p, cap);
      b->cap = cap;
    }
  memcpy (b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void
buf_str (buf_t *b, const char *s)
{
  buf_add (b, s, strlen (s));
}

static void
add_ascii (buf_t *b, uint8_t c)
{
  char esc[8];
  switch (c)
    {
    case '"':
      buf_str (b, "\\\"");
      break;
    case '\\':
      buf_str (b, "\\\\");
      break;
    case '\b':
      buf_str (b, "\\b");
      break;
    case '\f':
      buf_str (b, "\\f");
      break;
    case '\n':
      buf_str (b, "\\n");
      break;
    case '\r':
      buf_str (b, "\\r");
      break;
    case '\t':
      buf_str (b, "\\t");
      break;
    default:
      if (c < 0x20)
        {
          snprintf (esc, sizeof esc, "\\u%04x", c);
          buf_str (b, esc);
        }
      else
        buf_add (b, &c, 1);
    }
}

static const uint8_t replacement[3] = { 0xef, 0xbf, 0xbd }; /* U+FFFD */

/* Appends p[0..len) to b as the inside of a JSON string, valid UTF-8 only.
 * Ill-formed sequences become U+FFFD, one per maximal ill-formed subpart
 * (Unicode's recommended practice, as browsers do).  Unless `final`, an
 * incomplete but so far well-formed sequence at the very end is not
 * consumed: the number of bytes left over is returned (0..3). */
static size_t
add_utf8 (buf_t *b, const uint8_t *p, size_t len, bool final)
{
  size_t i = 0;

  while (i < len)
    {
      uint8_t c = p[i];
      size_t need;
      uint8_t lo = 0x80, hi = 0xbf;

      if (c < 0x80)
        {
          add_ascii (b, c);
          i++;
          continue;
        }
      if (c >= 0xc2 && c <= 0xdf)
        need = 1;
      else if (c >= 0xe0 && c <= 0xef)
        {
          need = 2;
          if (c == 0xe0)
            lo = 0xa0; /* overlong */
          else if (c == 0xed)
            hi = 0x9f; /* surrogates */
        }
      else if (c >= 0xf0 && c <= 0xf4)
        {
          need = 3;
          if (c == 0xf0)
            lo = 0x90; /* overlong */
          else if (c == 0xf4)
            hi = 0x8f; /* beyond U+10FFFF */
        }
      else
        {
          buf_add (b, replacement, sizeof replacement);
          i++;
          continue;
        }

      size_t k;
      for (k = 1; k <= need; k++)
        {
          if (i + k == len)
            {
              if (!final)
                return len - i;
              break;
            }
          uint8_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xbf;
          if (p[i + k] < min || p[i + k] > max)
            break;
        }
      if (k <= need)
        {
          buf_add (b, replacement, sizeof replacement);
          i += k;
          continue;
        }
      buf_add (b, p + i, need + 1);
      i += need + 1;
    }
  return 0;
}

static void
add_json_string (buf_t *b, const char *s)
{
  buf_str (b, "\"");
  add_utf8 (b, (const uint8_t *) s, strlen (s), true);
  buf_str (b, "\"");
}

static int
cast_write (ak_cast_t *c, const buf_t *b)
{
  if (c->failed)
    {
      errno = c->saved_errno;
      return -1;
    }
  if (fwrite (b->p, 1, b->len, c->f) != b->len || fflush (c->f) != 0)
    {
      c->failed = true;
      c->saved_errno = errno ? errno : EIO;
      errno = c->saved_errno;
      return -1;
    }
  return 0;
}

/* Appends "[t, "code", " to b.  The time is formatted by hand: printf's
 * %f would follow LC_NUMERIC and could write a decimal comma. */
static void
event_start (ak_cast_t *c, buf_t *b, const char *code)
{
  unsigned long long us = (ak_now_ns () - c->t0) / 1000u;
  char head[64];
  snprintf (head, sizeof head, "[%llu.%06llu, \"%s\", \"", us / 1000000u, us % 1000000u, code);
  buf_str (b, head);
}

static int
cast_bytes (ak_cast_t *c, int stream, const void *data, size_t len, bool final)
{
  const uint8_t *p = data;
  _cleanup_free_ uint8_t *joined = NULL;
  size_t held;
  buf_t b = { 0 };
  int ret;

  if (c->carry_len[stream] > 0)
    {
      joined = ak_xmalloc (c->carry_len[stream] + len + 1);
      memcpy (joined, c->carry[stream], c->carry_len[stream]);
      if (len > 0)
        memcpy (joined + c->carry_len[stream], data, len);
      len += c->carry_len[stream];
      p = joined;
      c->carry_len[stream] = 0;
    }
  if (len == 0)
    return 0;

  event_start (c, &b, stream == STREAM_OUT ? "o" : "i");
  size_t head = b.len;
  held = add_utf8 (&b, p, len, final);
  memcpy (c->carry[stream], p + len - held, held);
  c->carry_len[stream] = held;
  if (b.len == head)
    {
      /* Everything was held back: the event is written with the bytes
       * that complete it. */
      free (b.p);
      return 0;
    }
  buf_str (&b, "\"]\n");
  ret = cast_write (c, &b);
  free (b.p);
  return ret;
}

int
ak_cast_output (ak_cast_t *c, const void *data, size_t len)
{
  return cast_bytes (c, STREAM_OUT, data, len, false);
}

int
ak_cast_input (ak_cast_t *c, const void *data, size_t len)
{
  return cast_bytes (c, STREAM_IN, data, len, false);
}

int
ak_cast_resize (ak_cast_t *c, unsigned cols, unsigned rows)
{
  buf_t b = { 0 };
  char size[32];
  int ret;

  event_start (c, &b, "r");
  snprintf (size, sizeof size, "%ux%u\"]\n", cols, rows);
  buf_str (&b, size);
  ret = cast_write (c, &b);
  free (b.p);
  return ret;
}

ak_cast_t *
ak_cast_open (const char *path, unsigned cols, unsigned rows, const char *title,
              const char *shell_env, ak_error_t **err)
{
  const char *term = getenv ("TERM");
  _cleanup_close_ int fd = -1;
  ak_cast_t *c;
  buf_t b = { 0 };
  char num[128];

  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      ak_error_set (err, errno, "create recording %s", path);
      return NULL;
    }
  c = ak_xcalloc (1, sizeof *c);
  c->f = fdopen (fd, "w");
  if (c->f == NULL)
    {
      ak_error_set (err, errno, "create recording %s", path);
      free (c);
      return NULL;
    }
  take_fd (&fd);
  c->t0 = ak_now_ns ();

  snprintf (num, sizeof num, "{\"version\": 2, \"width\": %u, \"height\": %u, \"timestamp\": %lld",
            cols, rows, (long long) time (NULL));
  buf_str (&b, num);
  if (title != NULL)
    {
      buf_str (&b, ", \"title\": ");
      add_json_string (&b, title);
    }
  buf_str (&b, ", \"env\": {\"SHELL\": ");
  add_json_string (&b, shell_env ? shell_env : "/bin/sh");
  buf_str (&b, ", \"TERM\": ");
  add_json_string (&b, term && *term ? term : "xterm-256color");
  buf_str (&b, "}}\n");
  if (cast_write (c, &b) < 0)
    {
      ak_error_set (err, errno, "write recording %s", path);
      free (b.p);
      fclose (c->f);
      free (c);
      return NULL;
    }
  free (b.p);
  return c;
}

void
ak_cast_close (ak_cast_t *c)
{
  if (c == NULL)
    return;
  cast_bytes (c, STREAM_OUT, NULL, 0, true);
  cast_bytes (c, STREAM_IN, NULL, 0, true);
  fclose (c->f);
  free (c);
}

static int
mkdir_private (const char *path)
{
  struct stat st;
  if (mkdir (path, 0700) == 0)
    return 0;
  if (errno != EEXIST)
    return -1;
  if (stat (path, &st) < 0)
    return -1;
  if (!S_ISDIR (st.st_mode))
    {
      errno = ENOTDIR;
      return -1;
    }
  return 0;
}

char *
ak_cast_default_path (const char *sandbox_name)
{
  const char *home = getenv ("HOME");
  _cleanup_free_ char *top = NULL;
  _cleanup_free_ char *dir = NULL;
  _cleanup_free_ char *name = ak_xstrdup (sandbox_name && *sandbox_name ? sandbox_name : "sandbox");
  char stamp[32];
  struct tm tm;
  time_t now = time (NULL);

  if (home == NULL || *home == '\0')
    {
      struct passwd *pw = getpwuid (getuid ());
      if (pw == NULL || pw->pw_dir == NULL)
        {
          errno = ENOENT;
          return NULL;
        }
      home = pw->pw_dir;
    }
  for (char *s = name; *s != '\0'; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
          || *s == '.' || *s == '_' || *s == '-'))
      *s = '_';
  if (name[0] == '.')
    name[0] = '_';

  top = ak_xasprintf ("%s/.agentkernel", home);
  dir = ak_xasprintf ("%s/recordings", top);
  if (mkdir_private (top) < 0 || mkdir_private (dir) < 0)
    return NULL;
  if (localtime_r (&now, &tm) == NULL || strftime (stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm) == 0)
    {
      errno = EOVERFLOW;
      return NULL;
    }

  for (unsigned n = 0; n < 1000; n++)
    {
      char *path = n == 0 ? ak_xasprintf ("%s/%s-%s.cast", dir, name, stamp)
                          : ak_xasprintf ("%s/%s-%s-%u.cast", dir, name, stamp, n);
      struct stat st;
      if (lstat (path, &st) < 0 && errno == ENOENT)
        return path;
      free (path);
    }
  errno = EEXIST;
  return NULL;
}
