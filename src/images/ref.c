/* Image references (see ref.h for the grammar and the normalisation). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "ref.h"

#define DOCKER_HUB "docker.io"
#define MAX_REF_LEN 1024

static bool
is_lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum (char c)
{
  return is_lower_alnum (c) || (c >= 'A' && c <= 'Z');
}

static bool
is_hex (const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

bool
ak_digest_valid (const char *digest)
{
  return digest != NULL && strncmp (digest, "sha256:", 7) == 0 && strlen (digest) == 7 + 64
         && is_hex (digest + 7, 64);
}

/* One path component, s[0..n): alphanumeric runs joined by ".", "_", "__"
 * or any number of "-". */
static bool
component_valid (const char *s, size_t n)
{
  size_t i = 0;

  if (n == 0 || !is_lower_alnum (s[0]) || !is_lower_alnum (s[n - 1]))
    return false;
  while (i < n)
    {
      if (is_lower_alnum (s[i]))
        {
          i++;
          continue;
        }
      if (s[i] == '.')
        i++;
      else if (s[i] == '_')
        i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
      else if (s[i] == '-')
        while (i < n && s[i] == '-')
          i++;
      else
        return false;
      if (i >= n || !is_lower_alnum (s[i]))
        return false;
    }
  return true;
}

static bool
path_valid (const char *s)
{
  const char *slash;

  for (;;)
    {
      slash = strchr (s, '/');
      if (!component_valid (s, slash ? (size_t) (slash - s) : strlen (s)))
        return false;
      if (slash == NULL)
        return true;
      s = slash + 1;
    }
}

static bool
label_valid (const char *s, size_t n)
{
  if (n == 0 || !is_alnum (s[0]) || !is_alnum (s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum (s[i]) && s[i] != '-')
      return false;
  return true;
}

/* host[:port], host being DNS labels or a bracketed IPv6 address. */
static bool
domain_valid (const char *s)
{
  const char *port = NULL, *p;

  if (s[0] == '[')
    {
      const char *close = strchr (s, ']');
      if (close == NULL || close == s + 1)
        return false;
      for (p = s + 1; p < close; p++)
        if (!(*p == ':' || is_hex (p, 1) || (*p >= 'A' && *p <= 'F')))
          return false;
      if (close[1] != '\0' && close[1] != ':')
        return false;
      port = close[1] == ':' ? close + 2 : NULL;
    }
  else
    {
      const char *colon = strchr (s, ':');
      const char *end = colon ? colon : s + strlen (s);
      const char *label = s;

      for (p = s; p <= end; p++)
        if (p == end || *p == '.')
          {
            if (!label_valid (label, (size_t) (p - label)))
              return false;
            label = p + 1;
          }
      port = colon ? colon + 1 : NULL;
    }
  if (port != NULL)
    {
      unsigned long long v;
      if (*port == '+' || !ak_parse_u64 (port, 1, 65535, &v))
        return false;
      for (p = port; *p; p++)
        if (*p < '0' || *p > '9')
          return false;
    }
  return true;
}

static bool
tag_valid (const char *s)
{
  size_t n = strlen (s);

  if (n == 0 || n > 128 || !(is_alnum (s[0]) || s[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(is_alnum (s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
      return false;
  return true;
}

void
ak_imgref_clear (ak_imgref_t *ref)
{
  free (ref->registry);
  free (ref->repository);
  free (ref->tag);
  free (ref->digest);
  memset (ref, 0, sizeof *ref);
}

static int
refuse (ak_error_t **err, const char *text, const char *why)
{
  return ak_error_coded (err, EINVAL, "invalid image reference \"%s\": %s", text, why);
}

int
ak_imgref_parse (const char *text, ak_imgref_t *ref, ak_error_t **err)
{
  _cleanup_free_ char *copy = NULL;
  char *at, *colon, *slash, *name, *remainder;
  const char *domain;
  size_t n;

  memset (ref, 0, sizeof *ref);
  n = strlen (text);
  if (n == 0)
    return ak_error_coded (err, EINVAL, "invalid image reference: empty");
  if (n > MAX_REF_LEN)
    return ak_error_coded (err, EINVAL, "invalid image reference: longer than %d bytes", MAX_REF_LEN);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char) text[i] <= ' ' || (unsigned char) text[i] >= 0x7f)
      return ak_error_coded (err, EINVAL, "invalid image reference: it holds a space, control or non-ASCII byte");
  /* Docker refuses a bare image ID, which would otherwise read as a
   * repository on Docker Hub. */
  if (n == 64 && is_hex (text, 64))
    return refuse (err, text, "a 64-digit hexadecimal string is an image ID, not a repository");

  copy = ak_xstrdup (text);
  at = strchr (copy, '@');
  if (at != NULL)
    {
      *at = '\0';
      if (!ak_digest_valid (at + 1))
        return refuse (err, text, "the digest must be sha256: and 64 lowercase hex digits");
    }
  slash = strrchr (copy, '/');
  colon = strrchr (slash ? slash : copy, ':');
  if (colon != NULL)
    {
      *colon = '\0';
      if (!tag_valid (colon + 1))
        return refuse (err, text, "the tag must be up to 128 of A-Z a-z 0-9 _ . - and not start with . or -");
    }
  name = copy;
  if (strlen (name) > AK_IMGREF_MAX_NAME)
    return refuse (err, text, "the name is longer than 255 bytes");

  slash = strchr (name, '/');
  if (slash != NULL)
    {
      *slash = '\0';
      if (strpbrk (name, ".:") != NULL || strcmp (name, "localhost") == 0 || strpbrk (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        {
          domain = name;
          remainder = slash + 1;
        }
      else
        {
          *slash = '/';
          domain = DOCKER_HUB;
          remainder = name;
        }
    }
  else
    {
      domain = DOCKER_HUB;
      remainder = name;
    }
  if (domain == name && !domain_valid (domain))
    return refuse (err, text, "the registry must be host[:port]");
  if (strpbrk (remainder, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL)
    return refuse (err, text, "the repository name must be lowercase");
  if (!path_valid (remainder))
    return refuse (err, text,
                   "the repository must be lowercase letters and digits, separated by / . _ __ or -");

  if (strcmp (domain, "index.docker.io") == 0)
    domain = DOCKER_HUB;
  ref->registry = ak_xstrdup (domain);
  if (strcmp (domain, DOCKER_HUB) == 0 && strchr (remainder, '/') == NULL)
    ref->repository = ak_xasprintf ("library/%s", remainder);
  else
    ref->repository = ak_xstrdup (remainder);
  /* Checked on the normalised name, so the canonical form parses back. */
  if (strlen (ref->registry) + 1 + strlen (ref->repository) > AK_IMGREF_MAX_NAME)
    {
      ak_imgref_clear (ref);
      return refuse (err, text, "the name is longer than 255 bytes");
    }
  if (colon != NULL)
    ref->tag = ak_xstrdup (colon + 1);
  else if (at == NULL)
    ref->tag = ak_xstrdup ("latest");
  if (at != NULL)
    ref->digest = ak_xstrdup (at + 1);
  return 0;
}

char *
ak_imgref_name (const ak_imgref_t *ref)
{
  return ak_xasprintf ("%s/%s", ref->registry, ref->repository);
}

char *
ak_imgref_format (const ak_imgref_t *ref)
{
  return ak_xasprintf ("%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
                       ref->tag ? ref->tag : "", ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}

const char *
ak_imgref_api_host (const ak_imgref_t *ref)
{
  return strcmp (ref->registry, DOCKER_HUB) == 0 ? "registry-1.docker.io" : ref->registry;
}

bool
ak_imgref_is_loopback (const char *registry)
{
  _cleanup_free_ char *host = NULL;
  struct in_addr a4;
  char *colon;

  if (registry[0] == '[')
    return strncmp (registry, "[::1]", 5) == 0 && (registry[5] == '\0' || registry[5] == ':');
  host = ak_xstrdup (registry);
  colon = strchr (host, ':');
  if (colon != NULL)
    *colon = '\0';
  if (strcmp (host, "localhost") == 0)
    return true;
  return inet_pton (AF_INET, host, &a4) == 1 && (ntohl (a4.s_addr) >> 24) == 127;
}
