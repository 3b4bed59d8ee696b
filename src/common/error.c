#define _GNU_SOURCE
#include "error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
ak_error_setv (ak_error_t **err, int code, const char *fmt, va_list ap)
{
  char *msg = NULL;

  if (err == NULL)
    return -1;
  if (vasprintf (&msg, fmt, ap) < 0)
    ak_oom ();
  if (code != 0)
    {
      char *full = NULL;
      if (asprintf (&full, "%s: %s", msg, strerror (code)) < 0)
        ak_oom ();
      free (msg);
      msg = full;
    }
  /* Keep the first error: it names the root cause. */
  if (*err != NULL)
    {
      free (msg);
      return -1;
    }
  *err = ak_xmalloc (sizeof (**err));
  (*err)->code = code;
  (*err)->msg = msg;
  return -1;
}

int
ak_error_set (ak_error_t **err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  ak_error_setv (err, code, fmt, ap);
  va_end (ap);
  return -1;
}

int
ak_error_coded (ak_error_t **err, int code, const char *fmt, ...)
{
  va_list ap;
  bool fresh = err != NULL && *err == NULL;
  va_start (ap, fmt);
  ak_error_setv (err, 0, fmt, ap);
  va_end (ap);
  if (fresh)
    (*err)->code = code;
  return -1;
}

int
ak_error_prefix (ak_error_t **err, const char *fmt, ...)
{
  va_list ap;
  char *ctx = NULL;
  char *full = NULL;

  if (err == NULL || *err == NULL)
    return -1;
  va_start (ap, fmt);
  if (vasprintf (&ctx, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  if (asprintf (&full, "%s: %s", ctx, (*err)->msg) < 0)
    ak_oom ();
  free (ctx);
  free ((*err)->msg);
  (*err)->msg = full;
  return -1;
}

void
ak_error_free (ak_error_t *err)
{
  if (err == NULL)
    return;
  free (err->msg);
  free (err);
}

void
ak_error_clear (ak_error_t **err)
{
  if (err == NULL)
    return;
  ak_error_free (*err);
  *err = NULL;
}

static void
default_warn (const char *msg, void *data)
{
  (void) data;
  fprintf (stderr, "agentkernel: warning: %s\n", msg);
}

static ak_warn_fn warn_fn = default_warn;
static void *warn_data;

void
ak_set_warn_handler (ak_warn_fn fn, void *data)
{
  warn_fn = fn ? fn : default_warn;
  warn_data = data;
}

void
ak_warn (const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  warn_fn (msg, warn_data);
  free (msg);
}
