/* Messages between the supervisor and the sandbox init (see container.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "backend/container/container.h"

#define MAX_FDS AK_SYNC_MAX_FDS

struct wire {
  int type;
  int value;
  char text[1024];
};

_Static_assert (AK_SYNC_DATA_MAX < sizeof ((struct wire *) 0)->text, "data fits a message's text");

static int
send_wire (int fd, struct wire *w, const int *fds, size_t n_fds);

int
ak_sync_send (int fd, int type, int value, const char *text, const int *fds, size_t n_fds)
{
  struct wire w = { .type = type, .value = value };

  if (text != NULL)
    strncpy (w.text, text, sizeof w.text - 1);
  return send_wire (fd, &w, fds, n_fds);
}

int
ak_sync_send_data (int fd, int type, const void *data, size_t len, const int *fds, size_t n_fds)
{
  struct wire w = { .type = type, .value = (int) len };

  if (len > AK_SYNC_DATA_MAX)
    {
      errno = E2BIG;
      return -1;
    }
  memcpy (w.text, data, len);
  return send_wire (fd, &w, fds, n_fds);
}

static int
send_wire (int fd, struct wire *w, const int *fds, size_t n_fds)
{
  struct iovec iov = { .iov_base = w, .iov_len = sizeof *w };
  union {
    char buf[CMSG_SPACE (sizeof (int) * MAX_FDS)];
    struct cmsghdr align;
  } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

  if (n_fds > 0)
    {
      struct cmsghdr *c;
      if (n_fds > MAX_FDS)
        {
          errno = E2BIG;
          return -1;
        }
      memset (&u, 0, sizeof u);
      msg.msg_control = u.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (c), fds, sizeof (int) * n_fds);
    }
  for (;;)
    {
      ssize_t n = sendmsg (fd, &msg, MSG_NOSIGNAL);
      if (n >= 0)
        return 0;
      if (errno != EINTR)
        return -1;
    }
}

int
ak_sync_recv (int fd, int *type, int *value, char *text, size_t text_len, int *fds, size_t *n_fds)
{
  struct wire w;
  struct iovec iov = { .iov_base = &w, .iov_len = sizeof w };
  union {
    char buf[CMSG_SPACE (sizeof (int) * MAX_FDS)];
    struct cmsghdr align;
  } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
  ssize_t n;

  do
    n = recvmsg (fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -1;
  if (n == 0)
    return 0;
  if ((size_t) n != sizeof w)
    {
      errno = EPROTO;
      return -1;
    }
  *type = w.type;
  *value = w.value;
  if (text != NULL && text_len > 0)
    {
      /* Every byte (data may hold NULs: ak_sync_send_data), the last one
       * a NUL whatever was sent. */
      size_t k = text_len - 1 < sizeof w.text ? text_len - 1 : sizeof w.text;
      w.text[sizeof w.text - 1] = '\0';
      memcpy (text, w.text, k);
      text[k] = '\0';
    }
  if (n_fds != NULL)
    *n_fds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        size_t k = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        if (k > MAX_FDS)
          k = MAX_FDS;
        if (fds != NULL && n_fds != NULL)
          {
            memcpy (fds, CMSG_DATA (c), k * sizeof (int));
            *n_fds = k;
          }
      }
  return 1;
}
