/* The host <-> agent framing: encoder, pure decoder, streaming reader. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "proto/proto.h"

/* What the reader asks of read() at least; frames are usually small, and a
 * larger buffer lets one read() pick up several of them. */
#define READER_MIN_BUF (64u * 1024u)

static const char *const type_names[] = {
  [AK_F_HELLO] = "HELLO",         [AK_F_EXEC] = "EXEC",
  [AK_F_STDIN] = "STDIN",         [AK_F_STDOUT] = "STDOUT",
  [AK_F_STDERR] = "STDERR",       [AK_F_EXIT] = "EXIT",
  [AK_F_RESIZE] = "RESIZE",       [AK_F_SIGNAL] = "SIGNAL",
  [AK_F_ERROR] = "ERROR",         [AK_F_FILE_READ] = "FILE_READ",
  [AK_F_FILE_DATA] = "FILE_DATA", [AK_F_FILE_WRITE] = "FILE_WRITE",
  [AK_F_OK] = "OK",               [AK_F_STAT] = "STAT",
  [AK_F_LIST] = "LIST",
  [AK_F_FILE_REMOVE] = "FILE_REMOVE",
};

const char *
ak_proto_type_name (uint8_t type)
{
  if (type >= sizeof type_names / sizeof type_names[0])
    return NULL;
  return type_names[type];
}

static void
put_be32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

static uint32_t
get_be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

void
ak_proto_encode_header (uint8_t hdr[AK_PROTO_HEADER_SIZE], uint8_t type, uint32_t channel,
                        uint32_t len)
{
  put_be32 (hdr, len);
  hdr[4] = type;
  put_be32 (hdr + 5, channel);
}

int
ak_proto_decode (const uint8_t *buf, size_t len, ak_frame_t *out, size_t *consumed,
                 ak_error_t **err)
{
  uint32_t plen;
  uint8_t type;

  *consumed = 0;
  if (len < AK_PROTO_HEADER_SIZE)
    return 0;
  plen = get_be32 (buf);
  type = buf[4];
  if (ak_proto_type_name (type) == NULL)
    return ak_error_set (err, 0, "protocol error: unknown frame type %u", (unsigned) type);
  if (plen > AK_PROTO_MAX_PAYLOAD)
    return ak_error_set (err, 0, "protocol error: %s frame of %" PRIu32 " bytes exceeds the %u-byte limit",
                         ak_proto_type_name (type), plen, AK_PROTO_MAX_PAYLOAD);
  if (len - AK_PROTO_HEADER_SIZE < plen)
    return 0;
  out->type = type;
  out->channel = get_be32 (buf + 5);
  out->payload = buf + AK_PROTO_HEADER_SIZE;
  out->len = plen;
  *consumed = AK_PROTO_HEADER_SIZE + (size_t) plen;
  return 1;
}

/* One gather write; sendmsg() on sockets so that a vanished peer is EPIPE
 * instead of a SIGPIPE that would kill the whole process. */
static ssize_t
write_iov (int fd, struct iovec *iov, int n, bool *is_socket)
{
  if (*is_socket)
    {
      struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t) n };
      ssize_t r = sendmsg (fd, &m, MSG_NOSIGNAL);
      if (r >= 0 || errno != ENOTSOCK)
        return r;
      *is_socket = false;
    }
  return writev (fd, iov, n);
}

int
ak_proto_write (int fd, uint8_t type, uint32_t channel, const void *payload, size_t len,
                ak_error_t **err)
{
  uint8_t hdr[AK_PROTO_HEADER_SIZE];
  struct iovec iov[2];
  struct iovec *cur = iov;
  int n = 2;
  bool is_socket = true;

  if (ak_proto_type_name (type) == NULL)
    return ak_error_set (err, EINVAL, "write frame of unknown type %u", (unsigned) type);
  if (len > AK_PROTO_MAX_PAYLOAD)
    return ak_error_set (err, EMSGSIZE, "write %s frame of %zu bytes", ak_proto_type_name (type), len);
  if (len > 0 && payload == NULL)
    return ak_error_set (err, EINVAL, "write %s frame: no payload", ak_proto_type_name (type));

  ak_proto_encode_header (hdr, type, channel, (uint32_t) len);
  iov[0] = (struct iovec) { .iov_base = hdr, .iov_len = sizeof hdr };
  iov[1] = (struct iovec) { .iov_base = (void *) payload, .iov_len = len };
  if (len == 0)
    n = 1;

  while (n > 0)
    {
      ssize_t w = write_iov (fd, cur, n, &is_socket);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
              struct pollfd p = { .fd = fd, .events = POLLOUT };
              if (poll (&p, 1, -1) < 0 && errno != EINTR)
                return ak_error_set (err, errno, "write %s frame: poll", ak_proto_type_name (type));
              continue;
            }
          return ak_error_set (err, errno, "write %s frame", ak_proto_type_name (type));
        }
      size_t done = (size_t) w;
      while (n > 0 && done >= cur->iov_len)
        {
          done -= cur->iov_len;
          cur++;
          n--;
        }
      if (n > 0)
        {
          cur->iov_base = (uint8_t *) cur->iov_base + done;
          cur->iov_len -= done;
        }
    }
  return 0;
}

int
ak_proto_write_json (int fd, uint8_t type, uint32_t channel, json_t *obj, ak_error_t **err)
{
  _cleanup_free_ char *s = NULL;

  if (!json_is_object (obj))
    return ak_error_set (err, EINVAL, "write %s frame: payload is not a JSON object",
                         ak_proto_type_name (type) ? ak_proto_type_name (type) : "?");
  s = json_dumps (obj, JSON_COMPACT);
  if (s == NULL)
    return ak_error_set (err, ENOMEM, "encode %s frame", ak_proto_type_name (type) ? ak_proto_type_name (type) : "?");
  return ak_proto_write (fd, type, channel, s, strlen (s), err);
}

int
ak_proto_parse_json (const ak_frame_t *f, json_t **out, ak_error_t **err)
{
  const char *name = ak_proto_type_name (f->type) ? ak_proto_type_name (f->type) : "?";
  json_error_t jerr;
  json_t *v;

  if (f->len == 0)
    return ak_error_set (err, 0, "protocol error: empty %s frame, expected a JSON object", name);
  v = json_loadb ((const char *) f->payload, f->len, JSON_REJECT_DUPLICATES, &jerr);
  if (v == NULL)
    return ak_error_set (err, 0, "protocol error: %s frame: invalid JSON at offset %d: %s", name,
                         jerr.position, jerr.text);
  if (!json_is_object (v))
    {
      json_decref (v);
      return ak_error_set (err, 0, "protocol error: %s frame: expected a JSON object", name);
    }
  *out = v;
  return 0;
}

enum reader_state { READER_OK, READER_EOF, READER_FAILED };

struct ak_proto_reader {
  int fd;
  enum reader_state state;
  uint8_t *buf;
  size_t cap;
  size_t start; /* first byte not yet handed out */
  size_t end;   /* one past the last byte read */
  size_t pending; /* size of the frame returned last, dropped on the next call */
};

ak_proto_reader_t *
ak_proto_reader_new (int fd)
{
  ak_proto_reader_t *r = ak_xcalloc (1, sizeof *r);
  r->fd = fd;
  r->cap = READER_MIN_BUF;
  r->buf = ak_xmalloc (r->cap);
  return r;
}

void
ak_proto_reader_free (ak_proto_reader_t *r)
{
  if (r == NULL)
    return;
  free (r->buf);
  free (r);
}

/* Makes room for `need` bytes from r->start (a whole frame at most),
 * moving the unconsumed bytes to the front of the buffer first. */
static void
reader_reserve (ak_proto_reader_t *r, size_t need)
{
  if (r->start > 0)
    {
      memmove (r->buf, r->buf + r->start, r->end - r->start);
      r->end -= r->start;
      r->start = 0;
    }
  if (r->cap < need)
    {
      r->buf = ak_xrealloc (r->buf, need);
      r->cap = need;
    }
}

static int
reader_fail (ak_proto_reader_t *r)
{
  r->state = READER_FAILED;
  return -1;
}

bool
ak_proto_reader_has_frame (const ak_proto_reader_t *r)
{
  size_t start = r->start + r->pending, have = r->end - start;
  if (r->state != READER_OK || have < AK_PROTO_HEADER_SIZE)
    return false;
  return have - AK_PROTO_HEADER_SIZE >= get_be32 (r->buf + start);
}

int
ak_proto_read (ak_proto_reader_t *r, ak_frame_t *out, ak_error_t **err)
{
  r->start += r->pending;
  r->pending = 0;
  if (r->state == READER_FAILED)
    return ak_error_set (err, 0, "protocol stream unusable after an earlier error");
  if (r->state == READER_EOF)
    return 0;

  for (;;)
    {
      size_t have = r->end - r->start;
      size_t used;
      int ret = ak_proto_decode (r->buf + r->start, have, out, &used, err);
      ssize_t n;

      if (ret < 0)
        return reader_fail (r);
      if (ret == 1)
        {
          r->pending = used;
          return 1;
        }

      /* Incomplete: the header, once in, says how much the frame needs. */
      size_t need = AK_PROTO_HEADER_SIZE;
      if (have >= AK_PROTO_HEADER_SIZE)
        need += get_be32 (r->buf + r->start);
      if (have == 0)
        r->start = r->end = 0;
      if (r->cap - r->start < need)
        reader_reserve (r, need);

      n = read (r->fd, r->buf + r->end, r->cap - r->end);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return AK_PROTO_AGAIN;
          ak_error_set (err, errno, "read protocol stream");
          return reader_fail (r);
        }
      if (n == 0)
        {
          if (have == 0)
            {
              r->state = READER_EOF;
              return 0;
            }
          ak_error_set (err, 0, "protocol error: connection closed inside a frame (%zu of %zu bytes)",
                        have, need);
          return reader_fail (r);
        }
      r->end += (size_t) n;
    }
}
