#include "common/base64.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/util.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
ak_base64_encode (const void *data, size_t len)
{
  const unsigned char *in = data;
  char *out = ak_xmalloc ((len + 2) / 3 * 4 + 1), *o = out;
  size_t i;

  for (i = 0; i + 2 < len; i += 3)
    {
      uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
      *o++ = alphabet[v >> 18];
      *o++ = alphabet[(v >> 12) & 63];
      *o++ = alphabet[(v >> 6) & 63];
      *o++ = alphabet[v & 63];
    }
  if (i < len)
    {
      uint32_t v = (uint32_t) in[i] << 16 | (i + 1 < len ? (uint32_t) in[i + 1] << 8 : 0);
      *o++ = alphabet[v >> 18];
      *o++ = alphabet[(v >> 12) & 63];
      *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
      *o++ = '=';
    }
  *o = '\0';
  return out;
}

static int
value_of (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

bool
ak_base64_decode (const char *text, size_t len, char **out, size_t *out_len)
{
  char *buf, *o;

  if (len % 4 != 0)
    return false;
  buf = o = ak_xmalloc (len / 4 * 3 + 1);
  for (size_t i = 0; i < len; i += 4)
    {
      int v[4];
      size_t pad = 0;
      bool last = i + 4 == len;
      for (int k = 0; k < 4; k++)
        {
          v[k] = value_of (text[i + k]);
          if (v[k] < 0)
            {
              /* '=' only as the last one or two characters. */
              if (text[i + k] != '=' || !last || k < 2 || (k == 2 && text[i + 3] != '='))
                goto bad;
              v[k] = 0;
              pad++;
            }
        }
      {
        uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
        /* Bits beyond the data must be zero (one encoding per input). */
        if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
          goto bad;
        *o++ = (char) (w >> 16);
        if (pad < 2)
          *o++ = (char) (w >> 8);
        if (pad < 1)
          *o++ = (char) w;
      }
    }
  *o = '\0';
  *out = buf;
  *out_len = (size_t) (o - buf);
  return true;
bad:
  free (buf);
  return false;
}
