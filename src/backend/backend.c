#define _GNU_SOURCE
#include "backend/backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend/container/container.h"
#include "common/cleanup.h"
#include "common/util.h"

static const ak_backend_t *const backends[] = {
  &ak_container_backend,
};

const ak_backend_t *
ak_backend_lookup (const char *name, ak_error_t **err)
{
  for (size_t i = 0; i < sizeof (backends) / sizeof (backends[0]); i++)
    if (strcmp (backends[i]->name, name) == 0)
      return backends[i];
  if (strcmp (name, "microvm") == 0)
    return ak_error_set (err, 0, "backend 'microvm' is not available in this build (use 'container')"),
           NULL;
  ak_error_set (err, 0, "unknown backend '%s' (expected 'container')", name);
  return NULL;
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
  _cleanup_free_ char *msg = NULL;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ak_oom ();
  va_end (ap);
  warn_fn (msg, warn_data);
}
