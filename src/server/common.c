#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/labels.h"
#include "service/sandbox.h"
#include "server/common.h"

extern char **environ;

/* Length of the valid sequence at s[0..len), 0 when invalid or cut short
 * (*cut tells the two apart). */
static size_t
utf8_seq (const unsigned char *s, size_t len, bool *cut)
{
  unsigned char c = s[0], lo = 0x80, hi = 0xbf;
  size_t need;

  *cut = false;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    need = 1;
  else if (c >= 0xe0 && c <= 0xef)
    need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
  else if (c >= 0xf0 && c <= 0xf4)
    need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
  else
    return 0;
  for (size_t k = 1; k <= need; k++)
    {
      if (k >= len)
        {
          *cut = true;
          return 0;
        }
      if (k == 1 ? (s[1] < lo || s[1] > hi) : (s[k] < 0x80 || s[k] > 0xbf))
        return 0;
    }
  return need + 1;
}

char *
ak_utf8_clean (const char *buf, size_t len, size_t *out_len)
{
  const unsigned char *s = (const unsigned char *) buf;
  char *out = ak_xmalloc (len * 3 + 1);
  size_t i = 0, o = 0;

  while (i < len)
    {
      bool cut;
      size_t n = utf8_seq (s + i, len - i, &cut);
      if (n > 0)
        {
          memcpy (out + o, s + i, n);
          o += n;
          i += n;
        }
      else
        {
          memcpy (out + o, "\xef\xbf\xbd", 3);
          o += 3;
          i++;
        }
    }
  out[o] = '\0';
  *out_len = o;
  return out;
}

size_t
ak_utf8_whole (const char *buf, size_t len)
{
  const unsigned char *s = (const unsigned char *) buf;
  /* Only the last three bytes can start a cut-short sequence. */
  for (size_t back = 1; back <= 3 && back <= len; back++)
    {
      bool cut;
      if (s[len - back] < 0xc0)
        continue;
      if (utf8_seq (s + len - back, back, &cut) == 0 && cut)
        return len - back;
      break;
    }
  return len;
}

bool
ak_utf8_valid (const char *buf, size_t len)
{
  const unsigned char *s = (const unsigned char *) buf;
  size_t i = 0;
  while (i < len)
    {
      bool cut;
      size_t n = s[i] == 0 ? 0 : utf8_seq (s + i, len - i, &cut);
      if (n == 0)
        return false;
      i += n;
    }
  return true;
}

json_t *
ak_json_text (const char *buf, size_t len)
{
  size_t n;
  _cleanup_free_ char *clean = ak_utf8_clean (buf, len, &n);
  json_t *j = json_stringn (clean, n);
  if (j == NULL)
    ak_oom ();
  return j;
}

static ak_profile_t max_profile = AK_PROFILE_MODERATE;
static const char *max_profile_flag = "--max-profile";

void
ak_server_set_max_profile (ak_profile_t max, const char *flag)
{
  max_profile = max;
  max_profile_flag = flag;
}

int
ak_server_hosts (ak_spec_t *spec, char *const *allow, char *const *block, ak_error_t **err)
{
  ak_netpolicy_t *pol = &spec->sec.domains;
  for (size_t i = 0; allow != NULL && allow[i] != NULL; i++)
    if (ak_netpolicy_add (pol, AK_NET_ALLOW, allow[i], AK_SRC_CLI, 0, err) < 0)
      return ak_error_prefix (err, "allow_hosts[%zu]", i);
  for (size_t i = 0; block != NULL && block[i] != NULL; i++)
    if (ak_netpolicy_add (pol, AK_NET_BLOCK, block[i], AK_SRC_CLI, 0, err) < 0)
      return ak_error_prefix (err, "block_hosts[%zu]", i);
  if (allow != NULL && allow[0] != NULL)
    {
      pol->allowlist_only = true;
      pol->allowlist_source = AK_SRC_CLI;
    }
  return 0;
}

int
ak_server_spec (const char *profile, ak_spec_t *spec, ak_error_t **err)
{
  const char *home = getenv ("HOME");
  _cleanup_free_ char *cwd = getcwd (NULL, 0);

  ak_spec_init (spec);
  if (profile != NULL)
    {
      ak_profile_t p;
      if (ak_profile_from_name (profile, &p, err) < 0)
        return -1;
      /* The enum runs from loosest to strictest. */
      if (p < max_profile)
        {
          ak_error_set (err, 0,
                             "profile '%s' is looser than this server allows (at most %s); whoever "
                             "started the server can raise the cap with %s %s",
                             profile, ak_profile_name (max_profile), max_profile_flag, profile);
          (*err)->code = EACCES; /* 403, a tool error */
          return -1;
        }
      ak_spec_set_profile (spec, p, AK_SRC_CLI);
    }
  else if (max_profile > AK_PROFILE_MODERATE)
    ak_spec_set_profile (spec, max_profile, AK_SRC_CLI);
  if (cwd != NULL)
    spec->cwd = ak_xstrdup (cwd);
  if (home != NULL && home[0] == '/')
    spec->home = ak_xstrdup (home);
  ak_spec_capture_host_env (spec, environ);
  return 0;
}

json_t *
ak_server_rfc3339 (long long t)
{
  char buf[32];
  time_t tt = (time_t) t;
  struct tm tm;
  gmtime_r (&tt, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_string (buf);
}

json_t *
ak_server_sandbox_json (const ak_record_t *rec)
{
  json_t *j = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", rec->name, "uuid", rec->uuid, "status",
                         ak_sandbox_status (rec), "backend", rec->spec.backend, "image",
                         rec->spec.image ? rec->spec.image : "host", "profile",
                         ak_profile_name (rec->spec.sec.profile), "created_at", rec->created);
  if (j == NULL)
    ak_oom ();
  if (rec->spec.res.memory_mb > 0)
    json_object_set_new (j, "memory_mb", json_integer ((json_int_t) rec->spec.res.memory_mb));
  if (rec->spec.res.disk_mb > 0)
    json_object_set_new (j, "disk_mb", json_integer ((json_int_t) rec->spec.res.disk_mb));
  if (rec->spec.res.cpu_millis > 0)
    json_object_set_new (j, "vcpus", json_integer ((rec->spec.res.cpu_millis + 999) / 1000));
  if (rec->expires_at > 0)
    json_object_set_new (j, "expires_at", ak_server_rfc3339 (rec->expires_at));
  {
    _cleanup_free_ char *ip = ak_sandbox_address (rec);
    if (ip != NULL)
      json_object_set_new (j, "ip", json_string (ip));
  }
  json_object_set_new (j, "labels", ak_labels_json (rec->labels));
  if (rec->description != NULL)
    json_object_set_new (j, "description", json_string (rec->description));
  return j;
}

