#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "images/curl_dl.h"

ak_curl_api_t ak_curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[512];

static void
load (void)
{
  void *h = dlopen ("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      snprintf (why, sizeof why, "%s", dlerror ());
      return;
    }
#define AK_CURL_RESOLVE(f)                                                                                             \
  if (why[0] == '\0' && (ak_curl.f = (__typeof__ (ak_curl.f)) dlsym (h, #f)) == NULL)                                 \
    snprintf (why, sizeof why, "libcurl.so.4 has no %s", #f);
  AK_CURL_FUNCS (AK_CURL_RESOLVE)
#undef AK_CURL_RESOLVE
  if (why[0] == '\0' && ak_curl.curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    snprintf (why, sizeof why, "curl_global_init failed");
}

int
ak_curl_load (ak_error_t **err)
{
  pthread_once (&once, load);
  if (why[0] != '\0')
    return ak_error_set (err, 0, "pulling images needs libcurl (install libcurl4): %s", why);
  return 0;
}
