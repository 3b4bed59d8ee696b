/* The OCI distribution API client (see registry.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "images/auth.h"
#include "images/curl_dl.h"
#include "images/registry.h"

#define MAX_ATTEMPTS 4
#define ERR_BODY_MAX 4096

static const char MANIFEST_ACCEPT[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                      "application/vnd.oci.image.manifest.v1+json, "
                                      "application/vnd.docker.distribution.manifest.list.v2+json, "
                                      "application/vnd.docker.distribution.manifest.v2+json";

struct ak_registry {
  CURL *curl;
  char *registry; /* as named by the reference: the key of credentials and certs.d */
  char *base;     /* "https://host[:port]" */
  char *repository;
  char *user, *password;
  char *bearer;
  char *cainfo;
  bool plain;
  bool basic; /* the registry asked for Basic */
  ak_registry_opts_t opts;
};

/* Where one response goes: a bounded memory buffer, or a file hashed as it
 * is written. */
typedef struct sink {
  ak_registry_t *r;
  char *buf;
  size_t len, max;
  int fd;
  ak_sha256_t sha;
  uint64_t done;
  int64_t expect;
  const char *digest;
  bool overflow;
  int write_errno;
  char *www_auth, *content_type;
  char errbody[ERR_BODY_MAX + 1];
  size_t errlen;
} sink_t;

static void
sink_reset (sink_t *s)
{
  free (s->buf);
  free (s->www_auth);
  free (s->content_type);
  s->buf = s->www_auth = s->content_type = NULL;
  s->len = s->errlen = 0;
  s->done = 0;
  s->overflow = false;
  s->write_errno = 0;
  s->errbody[0] = '\0';
  ak_sha256_init (&s->sha);
  if (s->fd >= 0)
    {
      if (ftruncate (s->fd, 0) < 0 || lseek (s->fd, 0, SEEK_SET) < 0)
        s->write_errno = errno;
    }
}

static size_t
on_header (char *data, size_t size, size_t n, void *user)
{
  sink_t *s = user;
  size_t len = size * n;
  char **slot = NULL;
  const char *v;
  size_t k;

  /* A new response (after a redirect or a 100) starts over. */
  if (len >= 5 && strncmp (data, "HTTP/", 5) == 0)
    {
      free (s->www_auth);
      free (s->content_type);
      s->www_auth = s->content_type = NULL;
      return len;
    }
  if (len > 17 && strncasecmp (data, "WWW-Authenticate:", 17) == 0)
    slot = &s->www_auth, k = 17;
  else if (len > 13 && strncasecmp (data, "Content-Type:", 13) == 0)
    slot = &s->content_type, k = 13;
  if (slot == NULL)
    return len;
  v = data + k;
  while (v < data + len && (*v == ' ' || *v == '\t'))
    v++;
  k = (size_t) (data + len - v);
  while (k > 0 && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
    k--;
  free (*slot);
  *slot = ak_xstrndup (v, k);
  return len;
}

static size_t
on_body (char *data, size_t size, size_t n, void *user)
{
  sink_t *s = user;
  size_t len = size * n;
  long status = 0;

  ak_curl.curl_easy_getinfo (s->r->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300)
    {
      size_t room = ERR_BODY_MAX - s->errlen;
      size_t k = len < room ? len : room;
      memcpy (s->errbody + s->errlen, data, k);
      s->errlen += k;
      s->errbody[s->errlen] = '\0';
      return len;
    }
  if (s->fd < 0)
    {
      if (s->len + len > s->max)
        {
          s->overflow = true;
          return 0;
        }
      s->buf = ak_xrealloc (s->buf, s->len + len + 1);
      memcpy (s->buf + s->len, data, len);
      s->len += len;
      s->buf[s->len] = '\0';
      ak_sha256_update (&s->sha, data, len);
      return len;
    }
  /* A registry that sends more than the manifest promised is cut off here,
   * before the excess reaches the disk. */
  if (s->expect >= 0 && s->done + len > (uint64_t) s->expect)
    {
      s->overflow = true;
      return 0;
    }
  if (ak_write_all (s->fd, data, len) < 0)
    {
      s->write_errno = errno;
      return 0;
    }
  ak_sha256_update (&s->sha, data, len);
  s->done += len;
  if (s->r->opts.progress != NULL)
    s->r->opts.progress (s->digest, s->done, s->expect > 0 ? (uint64_t) s->expect : 0, s->r->opts.progress_data);
  return len;
}

/* The value of key in a WWW-Authenticate challenge's parameters. */
static char *
challenge_param (const char *chal, const char *key)
{
  size_t kn = strlen (key);
  const char *p = chal;

  while ((p = strcasestr (p, key)) != NULL)
    {
      bool at_start = p == chal || p[-1] == ' ' || p[-1] == ',';
      if (at_start && p[kn] == '=' && p[kn + 1] == '"')
        {
          const char *v = p + kn + 2;
          char *out = ak_xmalloc (strlen (v) + 1), *o = out;
          while (*v && *v != '"')
            {
              if (*v == '\\' && v[1])
                v++;
              *o++ = *v++;
            }
          *o = '\0';
          return out;
        }
      p += kn;
    }
  return NULL;
}

static void
set_common (ak_registry_t *r, const char *url, sink_t *s, struct curl_slist *hdrs)
{
  CURL *c = r->curl;

  ak_curl.curl_easy_reset (c);
  ak_curl.curl_easy_setopt (c, CURLOPT_URL, url);
  ak_curl.curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  ak_curl.curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  ak_curl.curl_easy_setopt (c, CURLOPT_MAXREDIRS, 5L);
  /* Only HTTP(S), and a redirect from an HTTPS registry stays on HTTPS. */
  ak_curl.curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
  ak_curl.curl_easy_setopt (c, CURLOPT_REDIR_PROTOCOLS_STR, r->plain ? "http,https" : "https");
  ak_curl.curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 30L);
  ak_curl.curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  ak_curl.curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, 60L);
  ak_curl.curl_easy_setopt (c, CURLOPT_USERAGENT, "agentkernel/" AK_VERSION);
  ak_curl.curl_easy_setopt (c, CURLOPT_CAPATH, "/etc/ssl/certs");
  if (r->cainfo != NULL)
    ak_curl.curl_easy_setopt (c, CURLOPT_CAINFO, r->cainfo);
  ak_curl.curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, on_header);
  ak_curl.curl_easy_setopt (c, CURLOPT_HEADERDATA, s);
  ak_curl.curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, on_body);
  ak_curl.curl_easy_setopt (c, CURLOPT_WRITEDATA, s);
  if (hdrs != NULL)
    ak_curl.curl_easy_setopt (c, CURLOPT_HTTPHEADER, hdrs);
}

static bool
transient (CURLcode rc)
{
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
         || rc == CURLE_PARTIAL_FILE || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING
         || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

static int
curl_failure (ak_registry_t *r, CURLcode rc, ak_error_t **err)
{
  const char *what = ak_curl.curl_easy_strerror (rc);

  switch (rc)
    {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
      return ak_error_coded (err, EHOSTUNREACH, "registry %s unreachable: %s", r->registry, what);
    case CURLE_PEER_FAILED_VERIFICATION:
      /* Never a reason to fall back to plain HTTP: a server that speaks TLS
       * with a certificate we cannot verify is the case TLS exists for. */
      return ak_error_coded (err, EKEYREJECTED,
                             "TLS failure with registry %s: %s (a private CA goes in certs.d/%s/ca.crt)", r->registry,
                             what, r->registry);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return ak_error_coded (err, EPROTO, "TLS failure with registry %s: %s (a private CA goes in certs.d/%s/ca.crt)",
                             r->registry, what, r->registry);
    default:
      return ak_error_coded (err, EIO, "registry %s: %s", r->registry, what);
    }
}

static int fetch_token (ak_registry_t *r, const char *chal, ak_error_t **err);

/* One GET with the retry, redirect and authentication rules of registry.h.
 * Returns the final HTTP status (2xx, or 4xx other than a 401 that
 * credentials could answer), or -1. */
static int
get (ak_registry_t *r, const char *path, const char *accept, sink_t *s, ak_error_t **err)
{
  _cleanup_free_ char *url = ak_xasprintf ("%s%s", r->base, path);
  bool tried_auth = false;
  unsigned delay_ms = 250;

  for (int attempt = 1;; attempt++)
    {
      struct curl_slist *hdrs = NULL;
      _cleanup_free_ char *authz = NULL;
      CURLcode rc;
      long status = 0;

      sink_reset (s);
      if (s->write_errno != 0)
        return ak_error_set (err, s->write_errno, "reset a download file");
      if (accept != NULL)
        hdrs = ak_curl.curl_slist_append (hdrs, accept);
      if (r->bearer != NULL)
        {
          authz = ak_xasprintf ("Authorization: Bearer %s", r->bearer);
          hdrs = ak_curl.curl_slist_append (hdrs, authz);
        }
      set_common (r, url, s, hdrs);
      if (r->basic && r->user != NULL)
        {
          ak_curl.curl_easy_setopt (r->curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
          ak_curl.curl_easy_setopt (r->curl, CURLOPT_USERNAME, r->user);
          ak_curl.curl_easy_setopt (r->curl, CURLOPT_PASSWORD, r->password);
        }
      rc = ak_curl.curl_easy_perform (r->curl);
      ak_curl.curl_slist_free_all (hdrs);
      ak_curl.curl_easy_getinfo (r->curl, CURLINFO_RESPONSE_CODE, &status);
      if (s->overflow)
        return ak_error_coded (err, EFBIG, "registry %s sent more than %s allows for %s", r->registry,
                               s->fd < 0 ? "the manifest size limit" : "the manifest", path);
      if (s->write_errno != 0)
        return ak_error_set (err, s->write_errno, "write %s", s->digest ? s->digest : path);
      if (rc != CURLE_OK && !(transient (rc) && attempt < MAX_ATTEMPTS))
        return curl_failure (r, rc, err);
      if (rc == CURLE_OK && status == 401 && !tried_auth)
        {
          tried_auth = true;
          attempt--;
          if (s->www_auth != NULL && strncasecmp (s->www_auth, "Bearer", 6) == 0)
            {
              if (fetch_token (r, s->www_auth, err) < 0)
                return -1;
              continue;
            }
          if (s->www_auth != NULL && strncasecmp (s->www_auth, "Basic", 5) == 0 && r->user != NULL)
            {
              r->basic = true;
              continue;
            }
        }
      if (rc == CURLE_OK && status == 401)
        return ak_error_coded (err, EACCES, "registry %s: authentication %s (agentkernel image login %s)",
                               r->registry, r->user != NULL ? "refused" : "required", r->registry);
      if (rc == CURLE_OK && (status < 500 && status != 429))
        return (int) status;
      if (attempt >= MAX_ATTEMPTS)
        return ak_error_coded (err, EIO, "registry %s answered %ld for %s", r->registry, status, path);
      {
        struct timespec ts = { delay_ms / 1000, (long) (delay_ms % 1000) * 1000000L };
        nanosleep (&ts, NULL);
        delay_ms *= 2;
      }
    }
}

/* The Bearer flow: the challenge names a token server (realm), a service
 * and a scope; the token server answers with a token for them, given the
 * registry's credentials when there are any. */
static int
fetch_token (ak_registry_t *r, const char *chal, ak_error_t **err)
{
  _cleanup_free_ char *realm = challenge_param (chal, "realm");
  _cleanup_free_ char *service = challenge_param (chal, "service");
  _cleanup_free_ char *scope = challenge_param (chal, "scope");
  _cleanup_free_ char *url = NULL;
  char *esc_service = NULL, *esc_scope = NULL;
  sink_t s = { .r = r, .fd = -1, .max = 1u << 20, .expect = -1 };
  json_t *j;
  const char *tok;
  long status = 0;
  CURLcode rc;
  int ret = -1;

  if (realm == NULL || (strncmp (realm, "https://", 8) != 0 && strncmp (realm, "http://", 7) != 0))
    return ak_error_coded (err, EPROTO, "registry %s: its token challenge names no http(s) realm", r->registry);
  /* Credentials go over TLS, or to a token server of a registry already
   * trusted with plain HTTP. */
  if (strncmp (realm, "http://", 7) == 0 && !r->plain)
    return ak_error_coded (err, EPROTO, "registry %s: refusing a token server over plain HTTP (%s)", r->registry,
                           realm);
  if (scope == NULL && r->repository != NULL)
    scope = ak_xasprintf ("repository:%s:pull", r->repository);
  esc_service = service ? ak_curl.curl_easy_escape (r->curl, service, 0) : NULL;
  esc_scope = scope ? ak_curl.curl_easy_escape (r->curl, scope, 0) : NULL;
  url = ak_xasprintf ("%s%s%s%s%s%s", realm, strchr (realm, '?') ? "&" : "?", esc_service ? "service=" : "",
                      esc_service ? esc_service : "", esc_scope ? (esc_service ? "&scope=" : "scope=") : "",
                      esc_scope ? esc_scope : "");
  ak_curl.curl_free (esc_service);
  ak_curl.curl_free (esc_scope);
  sink_reset (&s);
  set_common (r, url, &s, NULL);
  if (r->user != NULL)
    {
      ak_curl.curl_easy_setopt (r->curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      ak_curl.curl_easy_setopt (r->curl, CURLOPT_USERNAME, r->user);
      ak_curl.curl_easy_setopt (r->curl, CURLOPT_PASSWORD, r->password);
    }
  rc = ak_curl.curl_easy_perform (r->curl);
  ak_curl.curl_easy_getinfo (r->curl, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK)
    {
      curl_failure (r, rc, err);
      ak_error_prefix (err, "token server %s", realm);
    }
  else if (status == 401 || status == 403)
    ak_error_coded (err, EACCES, "registry %s: authentication %s by its token server (agentkernel image login %s)",
                    r->registry, r->user != NULL ? "refused" : "required", r->registry);
  else if (status != 200 || s.buf == NULL || (j = json_loads (s.buf, 0, NULL)) == NULL)
    ak_error_coded (err, EPROTO, "registry %s: its token server answered %ld without a token", r->registry, status);
  else
    {
      tok = json_string_value (json_object_get (j, "token"));
      if (tok == NULL)
        tok = json_string_value (json_object_get (j, "access_token"));
      if (tok == NULL || tok[0] == '\0' || strpbrk (tok, "\r\n") != NULL)
        ak_error_coded (err, EPROTO, "registry %s: its token server's answer holds no usable token", r->registry);
      else
        {
          free (r->bearer);
          r->bearer = ak_xstrdup (tok);
          ret = 0;
        }
      json_decref (j);
    }
  sink_reset (&s);
  return ret;
}

static bool
listed (char *const *list, const char *registry)
{
  for (; list != NULL && *list != NULL; list++)
    if (strcmp (*list, registry) == 0)
      return true;
  return false;
}

static char *
find_ca (const char *registry)
{
  _cleanup_free_ char *dir = ak_images_config_dir ();
  char *p;

  if (dir != NULL)
    {
      p = ak_xasprintf ("%s/certs.d/%s/ca.crt", dir, registry);
      if (access (p, R_OK) == 0)
        return p;
      free (p);
    }
  p = ak_xasprintf ("/etc/docker/certs.d/%s/ca.crt", registry);
  if (access (p, R_OK) == 0)
    return p;
  free (p);
  return NULL;
}

void
ak_registry_close (ak_registry_t *r)
{
  if (r == NULL)
    return;
  if (r->curl != NULL)
    ak_curl.curl_easy_cleanup (r->curl);
  free (r->registry);
  free (r->base);
  free (r->repository);
  free (r->user);
  free (r->password);
  free (r->bearer);
  free (r->cainfo);
  free (r);
}

static ak_registry_t *
connect_registry (const char *registry, const char *api_host, const char *repository, const char *user,
                  const char *password, const ak_registry_opts_t *opts, ak_error_t **err)
{
  ak_registry_t *r;
  sink_t s = { .fd = -1, .max = 1u << 16, .expect = -1 };
  bool may_plain = ak_imgref_is_loopback (registry) || (opts != NULL && listed (opts->insecure, registry));
  int status;

  if (ak_curl_load (err) < 0)
    return NULL;
  r = ak_xcalloc (1, sizeof *r);
  s.r = r;
  if (opts != NULL)
    r->opts = *opts;
  r->registry = ak_xstrdup (registry);
  r->repository = repository ? ak_xstrdup (repository) : NULL;
  r->user = user ? ak_xstrdup (user) : NULL;
  r->password = password ? ak_xstrdup (password) : NULL;
  r->cainfo = find_ca (registry);
  r->base = ak_xasprintf ("https://%s", api_host);
  if ((r->curl = ak_curl.curl_easy_init ()) == NULL)
    {
      ak_error_set (err, ENOMEM, "curl_easy_init");
      goto fail;
    }
  /* The ping also finds the scheme: a plain-HTTP server answers a TLS
   * handshake with garbage, the only failure that falls back to HTTP, and
   * only for a registry that may be spoken to in plain. */
  status = get (r, "/v2/", NULL, &s, err);
  if (status < 0 && may_plain && (*err)->code == EPROTO)
    {
      ak_error_clear (err);
      free (r->base);
      r->base = ak_xasprintf ("http://%s", api_host);
      r->plain = true;
      status = get (r, "/v2/", NULL, &s, err);
    }
  if (status >= 0 && status != 200)
    status = ak_error_coded (err, EPROTO, "registry %s does not speak the distribution API (/v2/ answered %d)",
                             registry, status);
  sink_reset (&s);
  if (status < 0)
    goto fail;
  return r;
fail:
  sink_reset (&s);
  ak_registry_close (r);
  return NULL;
}

ak_registry_t *
ak_registry_open (const ak_imgref_t *ref, const ak_registry_opts_t *opts, ak_error_t **err)
{
  _cleanup_free_ char *user = NULL, *password = NULL;

  if (ak_auth_lookup (ref->registry, &user, &password, err) < 0)
    return NULL;
  return connect_registry (ref->registry, ak_imgref_api_host (ref), ref->repository, user, password, opts, err);
}

int
ak_registry_check_login (const char *registry, const char *user, const char *password,
                         const ak_registry_opts_t *opts, ak_error_t **err)
{
  ak_imgref_t ref = { .registry = (char *) registry, .repository = NULL };
  ak_registry_t *r = connect_registry (registry, ak_imgref_api_host (&ref), NULL, user, password, opts, err);

  if (r == NULL)
    return -1;
  ak_registry_close (r);
  return 0;
}

int
ak_registry_manifest (ak_registry_t *r, const char *reference, char **body, size_t *len, char **media_type,
                      char digest[AK_DIGEST_STR_LEN + 1], ak_error_t **err)
{
  _cleanup_free_ char *path = ak_xasprintf ("/v2/%s/manifests/%s", r->repository, reference);
  sink_t s = { .r = r, .fd = -1, .max = AK_MANIFEST_MAX, .expect = -1 };
  int status = get (r, path, MANIFEST_ACCEPT, &s, err);

  if (status < 0)
    goto fail;
  if (status == 404)
    {
      ak_error_coded (err, ENOENT, "registry %s has no %s %s in %s", r->registry,
                      strchr (reference, ':') ? "manifest" : "tag", reference, r->repository);
      goto fail;
    }
  if (status != 200 || s.buf == NULL)
    {
      ak_error_coded (err, EPROTO, "registry %s answered %d for the manifest %s of %s", r->registry, status,
                      reference, r->repository);
      goto fail;
    }
  ak_sha256_final (&s.sha, digest);
  if (strncmp (reference, "sha256:", 7) == 0 && strcmp (reference, digest) != 0)
    {
      ak_error_coded (err, EBADMSG, "registry %s sent a manifest whose digest is %s, not the %s asked for",
                      r->registry, digest, reference);
      goto fail;
    }
  *body = steal_pointer (&s.buf);
  *len = s.len;
  *media_type = steal_pointer (&s.content_type);
  sink_reset (&s);
  return 0;
fail:
  sink_reset (&s);
  return -1;
}

int
ak_registry_blob (ak_registry_t *r, const char *digest, int64_t size, int fd, ak_error_t **err)
{
  _cleanup_free_ char *path = ak_xasprintf ("/v2/%s/blobs/%s", r->repository, digest);
  sink_t s = { .r = r, .fd = fd, .expect = size, .digest = digest };
  char got[AK_DIGEST_STR_LEN + 1];
  int status = get (r, path, NULL, &s, err);
  int rc = -1;

  if (status < 0)
    goto out;
  if (status != 200)
    {
      ak_error_coded (err, status == 404 ? ENOENT : EPROTO, "registry %s answered %d for the blob %s of %s",
                      r->registry, status, digest, r->repository);
      goto out;
    }
  ak_sha256_final (&s.sha, got);
  if (size >= 0 && s.done != (uint64_t) size)
    ak_error_coded (err, EBADMSG, "blob %s from registry %s: %llu bytes, the manifest says %lld", digest,
                    r->registry, (unsigned long long) s.done, (long long) size);
  else if (strcmp (got, digest) != 0)
    ak_error_coded (err, EBADMSG, "blob %s from registry %s does not match its digest (got %s)", digest,
                    r->registry, got);
  else
    rc = 0;
out:
  s.fd = -1;
  sink_reset (&s);
  return rc;
}
