/* The microVM channel: many agent connections over one virtio-serial port.
 *
 * A virtio-serial port is one byte stream, while the agent serves one
 * connection per request (proto/proto.h).  The mux carries every connection
 * of the host's agent socket over the port as numbered streams:
 *
 *   u32 payload length (big endian) | u8 op | u32 stream (big endian)
 *
 * OPEN starts a stream (host to guest), DATA carries its bytes, CLOSE ends
 * one direction of it.  Stream 0 is the control stream: CONFIG (host to
 * guest: what the guest is to build), READY and FAIL (guest to host, once),
 * STOP (host to guest: end every process and power off), CLAIM (host to
 * guest, once, warm pool: what a claim brings, answered READY or FAIL).
 *
 * The same loop runs on both sides: the host accepts connections on the
 * agent socket, the guest forks an agent session per OPEN.  Each stream's
 * outgoing bytes are queued, so a slow reader of one stream never stalls
 * another or the port.
 */
#ifndef AK_MICROVM_MUX_H
#define AK_MICROVM_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AK_MUX_HEADER 9
#define AK_MUX_MAX_PAYLOAD (1024u * 1024u)

enum ak_mux_op {
  AK_MUX_OPEN = 1,
  AK_MUX_DATA = 2,
  AK_MUX_CLOSE = 3,
  AK_MUX_CONFIG = 4,
  AK_MUX_READY = 5,
  AK_MUX_FAIL = 6,
  AK_MUX_STOP = 7,
  AK_MUX_CLAIM = 8, /* host to guest (warm pool): the claimant's environment and workspace;
                       the guest answers READY or FAIL */
  AK_MUX_AUDIT = 9, /* guest to host: what the command policy's exec watcher reports
                       ({"event":..., "fields":{...}}), for the host's audit log */
};

typedef struct ak_mux_stream {
  uint32_t id;
  int fd;
  char *q; /* bytes waiting to be written to fd */
  size_t qlen, qcap;
  bool local_eof; /* fd said EOF: CLOSE sent */
  bool peer_eof;  /* the other side sent CLOSE */
} ak_mux_stream_t;

typedef struct ak_mux ak_mux_t;
struct ak_mux {
  int chan;      /* the port (guest) or QEMU's end of it (host) */
  int listen_fd; /* host: the agent socket; -1 in the guest */
  int extra_fd;  /* polled for input, handled by on_extra; -1: none */
  void *data;
  /* guest: a stream opened by the host; returns the local fd or -1 */
  int (*on_open) (ak_mux_t *m, uint32_t id);
  /* a control message (stream 0): returns 1 to leave the loop */
  int (*on_control) (ak_mux_t *m, uint8_t op, const uint8_t *p, size_t len);
  /* extra_fd readable: returns 1 to leave the loop */
  int (*on_extra) (ak_mux_t *m);
  /* internal */
  ak_mux_stream_t *s;
  size_t n;
  uint32_t next_id;
  uint8_t *in;
  size_t inlen, incap;
};

/* Writes one message on fd (blocking, completes short writes). */
int ak_mux_send (int fd, uint8_t op, uint32_t id, const void *p, size_t len);
/* Reads one whole message (blocking); *p is malloc'ed.  0 on EOF, -1 on
 * error or a malformed message, 1 on success. */
int ak_mux_recv (int fd, uint8_t *op, uint32_t *id, uint8_t **p, size_t *len);
/* Runs until the channel ends (0), a handler asks to leave (1), or an
 * error (-1).  Closes every stream on the way out. */
int ak_mux_run (ak_mux_t *m);
/* Closes every stream's fd (in a forked child that keeps none). */
void ak_mux_close_all (ak_mux_t *m);

#endif
