/* The microVM channel's multiplexer: messages round-trip, a malformed one
 * is refused, and streams relayed through a host mux and a guest mux (as on
 * the two ends of the virtio-serial port) carry every byte both ways, two
 * at once, with half-close. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/microvm/mux.h"

static void
test_roundtrip (void **state)
{
  int sv[2];
  uint8_t op, *p = NULL;
  uint32_t id;
  size_t len;
  (void) state;
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (ak_mux_send (sv[0], AK_MUX_DATA, 77, "hello", 5), 0);
  assert_int_equal (ak_mux_send (sv[0], AK_MUX_CLOSE, 77, NULL, 0), 0);
  assert_int_equal (ak_mux_recv (sv[1], &op, &id, &p, &len), 1);
  assert_int_equal (op, AK_MUX_DATA);
  assert_int_equal (id, 77);
  assert_int_equal (len, 5);
  assert_memory_equal (p, "hello", 5);
  free (p);
  assert_int_equal (ak_mux_recv (sv[1], &op, &id, &p, &len), 1);
  assert_int_equal (op, AK_MUX_CLOSE);
  assert_int_equal (len, 0);
  free (p);
  close (sv[0]);
  assert_int_equal (ak_mux_recv (sv[1], &op, &id, &p, &len), 0); /* clean EOF */
  close (sv[1]);
}

static void
test_malformed (void **state)
{
  int sv[2];
  uint8_t op, *p = NULL;
  uint32_t id;
  size_t len;
  /* A length past the maximum. */
  const uint8_t bad[9] = { 0xff, 0xff, 0xff, 0xff, AK_MUX_DATA, 0, 0, 0, 1 };
  /* A header cut short. */
  const uint8_t cut[4] = { 0, 0, 0, 1 };
  (void) state;
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (write (sv[0], bad, sizeof bad), (ssize_t) sizeof bad);
  assert_int_equal (ak_mux_recv (sv[1], &op, &id, &p, &len), -1);
  close (sv[0]), close (sv[1]);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal (write (sv[0], cut, sizeof cut), (ssize_t) sizeof cut);
  close (sv[0]);
  assert_int_equal (ak_mux_recv (sv[1], &op, &id, &p, &len), -1);
  close (sv[1]);
  /* Larger than a message may be: refused before anything is written. */
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  {
    char *big = calloc (1, AK_MUX_MAX_PAYLOAD + 1);
    assert_int_equal (ak_mux_send (sv[0], AK_MUX_DATA, 1, big, AK_MUX_MAX_PAYLOAD + 1), -1);
    free (big);
  }
  close (sv[0]), close (sv[1]);
}

/* Guest side: each stream is served by an echo process. */
static int
echo_open (ak_mux_t *m, uint32_t id)
{
  int s[2];
  (void) id;
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0)
    return -1;
  if (fork () == 0)
    {
      char buf[65536];
      ssize_t n;
      close (s[0]);
      ak_mux_close_all (m);
      while ((n = read (s[1], buf, sizeof buf)) > 0)
        if (write (s[1], buf, (size_t) n) != n)
          _exit (1);
      _exit (0);
    }
  close (s[1]);
  return s[0];
}

static void
client (const char *path, size_t size, int result)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  char *out = malloc (size), *in = malloc (size);
  size_t got = 0, sent = 0;
  int ok;
  for (size_t i = 0; i < size; i++)
    out[i] = (char) (i * 7 + size);
  strcpy (sa.sun_path, path);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    _exit (2);
  /* Writes and reads interleaved: the echo answers while we still send. */
  while (sent < size || got < size)
    {
      if (sent < size)
        {
          ssize_t w = send (fd, out + sent, size - sent > 8192 ? 8192 : size - sent, MSG_DONTWAIT);
          if (w > 0)
            sent += (size_t) w;
          if (sent == size)
            shutdown (fd, SHUT_WR);
        }
      {
        ssize_t r = recv (fd, in + got, size - got, sent < size ? MSG_DONTWAIT : 0);
        if (r == 0)
          break;
        if (r > 0)
          got += (size_t) r;
      }
    }
  ok = got == size && memcmp (in, out, size) == 0;
  /* After the whole echo, the stream ends (the echo's EOF came through). */
  ok = ok && recv (fd, in, 1, 0) == 0;
  _exit (ok ? result : 3);
}

static void
test_relay (void **state)
{
  char dir[] = "/tmp/ak-mux-test.XXXXXX";
  char path[128];
  int chan[2], lfd, st;
  pid_t g, h, c1, c2;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  (void) state;

  signal (SIGPIPE, SIG_IGN);
  assert_non_null (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/s", dir);
  strcpy (sa.sun_path, path);
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal (bind (lfd, (struct sockaddr *) &sa, sizeof sa), 0);
  assert_int_equal (listen (lfd, 8), 0);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan), 0);
  g = fork ();
  if (g == 0)
    {
      ak_mux_t m = { .chan = chan[1], .listen_fd = -1, .extra_fd = -1, .on_open = echo_open };
      signal (SIGCHLD, SIG_IGN);
      close (chan[0]), close (lfd);
      _exit (ak_mux_run (&m) < 0 ? 1 : 0);
    }
  h = fork ();
  if (h == 0)
    {
      ak_mux_t m = { .chan = chan[0], .listen_fd = lfd, .extra_fd = -1 };
      close (chan[1]);
      _exit (ak_mux_run (&m) < 0 ? 1 : 0);
    }
  close (chan[0]), close (chan[1]), close (lfd);
  /* Two streams at once, one larger than a message and the queue mark. */
  c1 = fork ();
  if (c1 == 0)
    client (path, 12u * 1024 * 1024 + 3, 0);
  c2 = fork ();
  if (c2 == 0)
    client (path, 1000, 0);
  assert_int_equal (waitpid (c1, &st, 0), c1);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  assert_int_equal (waitpid (c2, &st, 0), c2);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  /* The guest gone, the host's loop ends. */
  kill (g, SIGKILL);
  waitpid (g, NULL, 0);
  assert_int_equal (waitpid (h, &st, 0), h);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  unlink (path);
  rmdir (dir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_roundtrip),
    cmocka_unit_test (test_malformed),
    cmocka_unit_test (test_relay),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
