/* libcurl, loaded the first time a registry is spoken to.
 *
 * libcurl brings TLS, HTTP/2, IDN and LDAP libraries with it; mapping them
 * would cost every `run` start-up, which never touches a registry.  So, as
 * with libarchive (proto/archive_dl.h), it is opened with dlopen by the
 * commands that pull, and `run -- true` maps nothing of it.
 */
#ifndef AK_CURL_DL_H
#define AK_CURL_DL_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "common/error.h"

#define AK_CURL_FUNCS(X)                                                                                               \
  X (curl_global_init)                                                                                                 \
  X (curl_easy_init)                                                                                                   \
  X (curl_easy_setopt)                                                                                                 \
  X (curl_easy_perform)                                                                                                \
  X (curl_easy_getinfo)                                                                                                \
  X (curl_easy_reset)                                                                                                  \
  X (curl_easy_cleanup)                                                                                                \
  X (curl_easy_strerror)                                                                                               \
  X (curl_easy_escape)                                                                                                 \
  X (curl_free)                                                                                                        \
  X (curl_slist_append)                                                                                                \
  X (curl_slist_free_all)

typedef struct ak_curl_api {
#define AK_CURL_MEMBER(f) __typeof__ (f) *f;
  AK_CURL_FUNCS (AK_CURL_MEMBER)
#undef AK_CURL_MEMBER
} ak_curl_api_t;

/* Filled by ak_curl_load; call through it (ak_curl.curl_easy_init ()). */
extern ak_curl_api_t ak_curl;

/* Loads libcurl once (thread safe); fails naming the package to install. */
int ak_curl_load (ak_error_t **err);

#endif
