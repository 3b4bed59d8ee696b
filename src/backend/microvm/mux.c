/* The stream multiplexer of the microVM channel (see mux.h). */
#define _GNU_SOURCE
#include "backend/microvm/mux.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

/* Past this many queued bytes for one stream, the port is not read until
 * the stream's reader catches up. */
#define QUEUE_HIGH (8u * 1024u * 1024u)

static void
put_u32 (uint8_t *b, uint32_t v)
{
  b[0] = (uint8_t) (v >> 24), b[1] = (uint8_t) (v >> 16), b[2] = (uint8_t) (v >> 8), b[3] = (uint8_t) v;
}

static uint32_t
get_u32 (const uint8_t *b)
{
  return (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
}

static int
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t w = write (fd, p, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        {
          struct pollfd pf = { .fd = fd, .events = POLLOUT };
          (void) poll (&pf, 1, -1);
          continue;
        }
      if (w <= 0)
        return -1;
      p += w, len -= (size_t) w;
    }
  return 0;
}

int
ak_mux_send (int fd, uint8_t op, uint32_t id, const void *p, size_t len)
{
  uint8_t h[AK_MUX_HEADER];
  if (len > AK_MUX_MAX_PAYLOAD)
    return errno = EMSGSIZE, -1;
  put_u32 (h, (uint32_t) len);
  h[4] = op;
  put_u32 (h + 5, id);
  /* One buffer: a message is never interleaved with another writer's. */
  {
    _cleanup_free_ uint8_t *buf = ak_xmalloc (sizeof h + len);
    memcpy (buf, h, sizeof h);
    if (len > 0)
      memcpy (buf + sizeof h, p, len);
    return write_all (fd, buf, sizeof h + len);
  }
}

static int
read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  while (len > 0)
    {
      ssize_t r = read (fd, p, len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return r == 0 && p == buf ? 0 : -1;
      p += r, len -= (size_t) r;
    }
  return 1;
}

int
ak_mux_recv (int fd, uint8_t *op, uint32_t *id, uint8_t **p, size_t *len)
{
  uint8_t h[AK_MUX_HEADER];
  int rc = read_all (fd, h, sizeof h);
  if (rc <= 0)
    return rc;
  *len = get_u32 (h);
  *op = h[4];
  *id = get_u32 (h + 5);
  if (*len > AK_MUX_MAX_PAYLOAD)
    return errno = EPROTO, -1;
  *p = ak_xmalloc (*len + 1);
  (*p)[*len] = 0;
  if (*len > 0 && read_all (fd, *p, *len) != 1)
    {
      free (*p), *p = NULL;
      return -1;
    }
  return 1;
}

static ak_mux_stream_t *
find (ak_mux_t *m, uint32_t id)
{
  for (size_t i = 0; i < m->n; i++)
    if (m->s[i].id == id)
      return &m->s[i];
  return NULL;
}

static void
add (ak_mux_t *m, uint32_t id, int fd)
{
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
  m->s = ak_xrealloc (m->s, (m->n + 1) * sizeof *m->s);
  m->s[m->n++] = (ak_mux_stream_t){ .id = id, .fd = fd };
}

static void
drop (ak_mux_t *m, size_t i)
{
  close (m->s[i].fd);
  free (m->s[i].q);
  m->s[i] = m->s[--m->n];
}

/* One direction ended on the local side: tell the peer. */
static void
local_eof (ak_mux_t *m, ak_mux_stream_t *s)
{
  if (s->local_eof)
    return;
  s->local_eof = true;
  (void) ak_mux_send (m->chan, AK_MUX_CLOSE, s->id, NULL, 0);
}

static void
flush (ak_mux_t *m, ak_mux_stream_t *s)
{
  while (s->qlen > 0)
    {
      ssize_t w = send (s->fd, s->q, s->qlen, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        return;
      if (w <= 0)
        {
          /* The reader is gone: nothing more reaches it. */
          s->qlen = 0;
          s->peer_eof = true;
          local_eof (m, s);
          return;
        }
      memmove (s->q, s->q + w, s->qlen - (size_t) w);
      s->qlen -= (size_t) w;
    }
  if (s->peer_eof)
    (void) shutdown (s->fd, SHUT_WR);
}

/* Messages from the port, as many as are whole in the buffer. */
static int
handle_input (ak_mux_t *m)
{
  size_t off = 0;
  int ret = 0;
  while (ret == 0 && m->inlen - off >= AK_MUX_HEADER)
    {
      const uint8_t *h = m->in + off;
      uint32_t len = get_u32 (h), id = get_u32 (h + 5);
      uint8_t op = h[4];
      const uint8_t *p = h + AK_MUX_HEADER;
      ak_mux_stream_t *s;
      if (len > AK_MUX_MAX_PAYLOAD)
        return -1;
      if (m->inlen - off < AK_MUX_HEADER + len)
        break;
      off += AK_MUX_HEADER + len;
      if (id == 0)
        {
          if (m->on_control != NULL)
            ret = m->on_control (m, op, p, len);
          continue;
        }
      s = find (m, id);
      switch (op)
        {
        case AK_MUX_OPEN:
          if (s == NULL && m->on_open != NULL)
            {
              int fd = m->on_open (m, id);
              if (fd >= 0)
                add (m, id, fd);
              else
                (void) ak_mux_send (m->chan, AK_MUX_CLOSE, id, NULL, 0);
            }
          break;
        case AK_MUX_DATA:
          if (s != NULL && !s->peer_eof)
            {
              if (s->qlen + len > s->qcap)
                {
                  s->qcap = (s->qlen + len) * 2;
                  s->q = ak_xrealloc (s->q, s->qcap);
                }
              memcpy (s->q + s->qlen, p, len);
              s->qlen += len;
              flush (m, s);
            }
          break;
        case AK_MUX_CLOSE:
          if (s != NULL)
            {
              s->peer_eof = true;
              flush (m, s);
            }
          break;
        default:
          break;
        }
    }
  memmove (m->in, m->in + off, m->inlen - off);
  m->inlen -= off;
  return ret;
}

void
ak_mux_close_all (ak_mux_t *m)
{
  while (m->n > 0)
    drop (m, m->n - 1);
}

int
ak_mux_run (ak_mux_t *m)
{
  _cleanup_free_ struct pollfd *p = NULL;
  int ret = 0;

  if (m->next_id == 0)
    m->next_id = 1;
  for (;;)
    {
      size_t n = 0, base;
      bool full = false;
      for (size_t i = 0; i < m->n; i++)
        full |= m->s[i].qlen > QUEUE_HIGH;
      p = ak_xrealloc (p, (m->n + 3) * sizeof *p);
      p[n++] = (struct pollfd){ .fd = full ? -1 : m->chan, .events = POLLIN };
      p[n++] = (struct pollfd){ .fd = m->listen_fd, .events = POLLIN };
      p[n++] = (struct pollfd){ .fd = m->extra_fd, .events = POLLIN };
      base = n;
      for (size_t i = 0; i < m->n; i++)
        {
          /* A stream waiting for nothing is not polled at all: a peer that
           * hung up reports POLLHUP for ever, and the loop would spin until
           * the other side closes the stream too. */
          short ev = (short) ((m->s[i].local_eof ? 0 : POLLIN) | (m->s[i].qlen > 0 ? POLLOUT : 0));
          p[n++] = (struct pollfd){ .fd = ev != 0 ? m->s[i].fd : -1, .events = ev };
        }
      if (poll (p, (nfds_t) n, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          ret = -1;
          break;
        }
      if (p[0].revents)
        {
          ssize_t r;
          if (m->incap - m->inlen < 65536)
            {
              m->incap = m->incap * 2 + 65536 + AK_MUX_HEADER;
              m->in = ak_xrealloc (m->in, m->incap);
            }
          r = read (m->chan, m->in + m->inlen, m->incap - m->inlen);
          if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            break; /* the other side is gone */
          if (r > 0)
            {
              m->inlen += (size_t) r;
              if ((ret = handle_input (m)) != 0)
                break;
            }
        }
      if (m->extra_fd >= 0 && (p[2].revents & POLLIN) && m->on_extra != NULL && (ret = m->on_extra (m)) != 0)
        break;
      /* Streams, by index as polled (a stream dropped below is swapped
       * with the last one, so walk backwards). */
      for (size_t k = n; k-- > base;)
        {
          size_t i = k - base;
          ak_mux_stream_t *s;
          if (i >= m->n || (p[k].fd >= 0 && p[k].fd != m->s[i].fd))
            continue;
          s = &m->s[i];
          if (p[k].revents & POLLOUT)
            flush (m, s);
          if (!s->local_eof && (p[k].revents & (POLLIN | POLLHUP | POLLERR)))
            {
              char buf[65536];
              ssize_t r = read (s->fd, buf, sizeof buf);
              if (r > 0)
                {
                  if (ak_mux_send (m->chan, AK_MUX_DATA, s->id, buf, (size_t) r) < 0)
                    {
                      ret = -1;
                      goto out;
                    }
                }
              else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                local_eof (m, s);
            }
          if (s->local_eof && s->peer_eof && s->qlen == 0)
            drop (m, i);
        }
      if (m->listen_fd >= 0 && (p[1].revents & POLLIN))
        {
          int c = accept4 (m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
          if (c >= 0)
            {
              uint32_t id = m->next_id++;
              if (m->next_id == 0)
                m->next_id = 1;
              if (ak_mux_send (m->chan, AK_MUX_OPEN, id, NULL, 0) < 0)
                {
                  close (c);
                  ret = -1;
                  break;
                }
              add (m, id, c);
            }
        }
    }
out:
  ak_mux_close_all (m);
  free (m->s), m->s = NULL;
  free (m->in), m->in = NULL;
  m->inlen = m->incap = 0;
  return ret;
}
