#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "proto/archive_dl.h"

ak_archive_api_t ak_la;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[512];

static void
load (void)
{
  void *h = dlopen ("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      snprintf (why, sizeof why, "%s", dlerror ());
      return;
    }
#define AK_ARCHIVE_RESOLVE(f)                                                                                          \
  if (why[0] == '\0' && (ak_la.f = (__typeof__ (ak_la.f)) dlsym (h, #f)) == NULL)                                     \
    snprintf (why, sizeof why, "libarchive.so.13 has no %s", #f);
  AK_ARCHIVE_FUNCS (AK_ARCHIVE_RESOLVE)
#undef AK_ARCHIVE_RESOLVE
}

int
ak_archive_load (ak_error_t **err)
{
  pthread_once (&once, load);
  if (why[0] != '\0')
    return ak_error_set (err, 0, "file transfers need libarchive (install libarchive13): %s", why);
  return 0;
}
