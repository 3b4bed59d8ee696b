/* The host <-> agent protocol: one framing for every transport (a Unix
 * socket for a container, a virtio-serial port for a VM).
 *
 * Every frame is a 9-byte header followed by the payload:
 *
 *   u32 payload length (big endian) | u8 type | u32 channel (big endian)
 *
 * The payload is at most AK_PROTO_MAX_PAYLOAD bytes; a longer length, or a
 * type that is not one of enum ak_frame_type, is a protocol error and the
 * stream cannot be resynchronised.  Both checks are made as soon as the
 * header is in, so a peer cannot make the reader buffer more than one
 * maximum frame.
 *
 * The channel number ties frames to one request (an exec, a file transfer);
 * channel 0 is the connection itself (HELLO, connection-level ERROR).
 *
 * Payloads by type (JSON payloads are always one JSON object):
 *   HELLO       {"version": 1}
 *   EXEC        the exec request ("end_with_command": true: EXIT once the
 *               command ends, whatever holds its output; what it left in
 *               its process group is killed)
 *   STDIN       raw bytes; an empty payload is EOF
 *   STDOUT      raw bytes
 *   STDERR      raw bytes
 *   EXIT        {"exit_code": n, "signal": n?}
 *   RESIZE      {"rows": n, "cols": n}
 *   SIGNAL      {"signal": n, "process": true?} (to the command's process
 *               group, or with "process" to its process alone)
 *   ERROR       {"message": "..."}
 *   FILE_READ   {"path": "..."}
 *   FILE_DATA   raw bytes; an empty payload ends the file
 *   FILE_WRITE  {"path": "...", "mode": n, "size": n}, then FILE_DATA frames
 *               and an empty FILE_DATA
 *   OK          generic success reply
 *   STAT, LIST  {"path": "..."} (reserved)
 *
 * Nothing here is thread-safe: one reader per fd, and writers on one fd must
 * be serialised by the caller (a frame is written with one gather write, but
 * a short write is completed with further writes).
 */
#ifndef AK_PROTO_H
#define AK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"

#define AK_PROTO_VERSION 1
#define AK_PROTO_HEADER_SIZE 9
#define AK_PROTO_MAX_PAYLOAD (1024u * 1024u)

/* ak_proto_read(): more bytes are needed and the fd is non-blocking. */
#define AK_PROTO_AGAIN 2

enum ak_frame_type {
  AK_F_HELLO = 1,
  AK_F_EXEC = 2,
  AK_F_STDIN = 3,
  AK_F_STDOUT = 4,
  AK_F_STDERR = 5,
  AK_F_EXIT = 6,
  AK_F_RESIZE = 7,
  AK_F_SIGNAL = 8,
  AK_F_ERROR = 9,
  AK_F_FILE_READ = 10,
  AK_F_FILE_DATA = 11,
  AK_F_FILE_WRITE = 12,
  AK_F_OK = 13,
  AK_F_STAT = 14,
  AK_F_LIST = 15,
  AK_F_FILE_REMOVE = 16,
};

typedef struct ak_frame {
  uint8_t type;           /* one of enum ak_frame_type */
  uint32_t channel;
  const uint8_t *payload; /* borrowed: see ak_proto_read/ak_proto_decode */
  size_t len;             /* <= AK_PROTO_MAX_PAYLOAD */
} ak_frame_t;

/* "HELLO", "STDOUT", ...; NULL for a type outside enum ak_frame_type. */
const char *ak_proto_type_name (uint8_t type);

/* Fills hdr with the wire header of a frame.  Pure; does not validate. */
void ak_proto_encode_header (uint8_t hdr[AK_PROTO_HEADER_SIZE], uint8_t type, uint32_t channel,
                             uint32_t len);

/* Decodes the frame at the start of buf.  Pure: no allocation, no I/O.
 * Returns 1 with *out filled (out->payload points into buf) and *consumed
 * set to the frame's size on the wire; 0 when buf holds only the start of a
 * frame (*consumed = 0); -1 with *err set on an unknown type or an oversize
 * length, which are reported as soon as the header is complete. */
int ak_proto_decode (const uint8_t *buf, size_t len, ak_frame_t *out, size_t *consumed,
                     ak_error_t **err);

/* Writes one frame, retrying on EINTR and completing short writes (on a
 * non-blocking fd, by waiting until it is writable: a frame is never left
 * half-written).  On a socket, a closed peer is EPIPE, not SIGPIPE.
 * payload may be NULL when len is 0.  Returns 0, or -1 with *err set. */
int ak_proto_write (int fd, uint8_t type, uint32_t channel, const void *payload, size_t len,
                    ak_error_t **err);

/* Writes obj (a JSON object; not stolen) compactly as the payload. */
int ak_proto_write_json (int fd, uint8_t type, uint32_t channel, json_t *obj, ak_error_t **err);

/* Parses a frame's payload as a JSON object.  On success *out is a new
 * reference the caller must json_decref().  Strings may not contain NUL and
 * duplicate keys are refused: payloads come from the other side of a
 * sandbox boundary. */
int ak_proto_parse_json (const ak_frame_t *f, json_t **out, ak_error_t **err);

/* Streaming reader over a blocking or non-blocking fd.  The reader buffers:
 * while it is in use nothing else may read from fd.  It does not own fd. */
typedef struct ak_proto_reader ak_proto_reader_t;

ak_proto_reader_t *ak_proto_reader_new (int fd);
void ak_proto_reader_free (ak_proto_reader_t *r);

/* Returns 1 with *out filled (out->payload is owned by the reader and valid
 * until the next call to ak_proto_read or ak_proto_reader_free); 0 on EOF at
 * a frame boundary; AK_PROTO_AGAIN when the fd is non-blocking and the next
 * frame is not complete yet (wait for POLLIN and call again; partial data is
 * kept); -1 with *err set on a read error, on EOF inside a frame or on a
 * protocol error.  After -1 or 0 every later call returns the same. */
int ak_proto_read (ak_proto_reader_t *r, ak_frame_t *out, ak_error_t **err);

/* True when the reader already holds the whole next frame, so the next
 * ak_proto_read returns it without reading fd: a caller that polls fd must
 * not wait for POLLIN first (the bytes are no longer in the kernel). */
bool ak_proto_reader_has_frame (const ak_proto_reader_t *r);

#endif
