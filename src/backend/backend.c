#define _GNU_SOURCE
#include "backend/backend.h"

#include <string.h>

#include "backend/container/container.h"
#include "backend/microvm/microvm.h"
#include "common/cleanup.h"
#include "common/util.h"

static const ak_backend_t *const backends[] = {
  &ak_container_backend,
  &ak_microvm_backend,
};

ak_backend_audit_fn ak_backend_audit_hook;
void (*ak_backend_claim_started_hook) (void);

const ak_backend_t *
ak_backend_lookup (const char *name, ak_error_t **err)
{
  for (size_t i = 0; i < sizeof (backends) / sizeof (backends[0]); i++)
    if (strcmp (backends[i]->name, name) == 0)
      return backends[i];
  ak_error_set (err, 0, "unknown backend '%s' (expected 'container' or 'microvm')", name);
  return NULL;
}
