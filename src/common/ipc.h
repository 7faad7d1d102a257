/* ipc.h — framed messages between the daemon and its workers over a socketpair.
 *
 * A frame is: 4-byte magic "SYW1", u32 header length H, u32 payload length P (little endian),
 * then H bytes of UTF-8 JSON (an object with at least "op"), then P bytes of binary payload.
 * Message shapes (ops) are documented in docs/PROTOCOL.md.
 *
 * Thread safety: an ipc_chan may be sent on from many threads (sends are serialised by its
 * mutex, so frames never interleave); receiving is done by exactly one thread per channel.
 * This module never trusts a frame: lengths are bounded before anything is allocated.
 */
#ifndef SY_IPC_H
#define SY_IPC_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#define IPC_MAX_HEADER (16u << 20)   /* 16 MiB of JSON */
#define IPC_MAX_PAYLOAD (512u << 20) /* 512 MiB of binary */

typedef struct ipc_chan {
  int fd;
  pthread_mutex_t send_lock;
} ipc_chan;

typedef struct ipc_msg {
  json_t *hdr;   /* owned; an object */
  void *payload; /* owned; NULL when payload_len == 0 */
  size_t payload_len;
} ipc_msg;

enum { IPC_OK = 0, IPC_EOF = 1, IPC_BADMSG = 2, IPC_ERR = -1 };

/* Initialise a channel over an open fd (the channel does not own the fd). */
void ipc_chan_init(ipc_chan *c, int fd);
void ipc_chan_deinit(ipc_chan *c);

/* Send one frame. hdr must be a JSON object. Returns IPC_OK or IPC_ERR (errno set). */
int ipc_send(ipc_chan *c, const json_t *hdr, const void *payload, size_t payload_len);

/* Convenience: send and decref hdr (steals the reference). */
int ipc_send_steal(ipc_chan *c, json_t *hdr, const void *payload, size_t payload_len);

/* Receive one frame (blocking). Returns IPC_OK and fills *m; IPC_EOF on a clean end of stream
 * before any byte of a frame, or when the peer reset the connection; IPC_BADMSG when a whole,
 * well-framed frame was read but its header is not a JSON object (the stream is still in step:
 * the caller may skip it and read on); IPC_ERR on an I/O error, a bad magic or a length over the
 * limits (the stream is lost). JSON strings may hold \u0000: every length is explicit. */
int ipc_recv(int fd, ipc_msg *m);

/* Free what a received message owns and zero it. */
void ipc_msg_clear(ipc_msg *m);

/* The "op" of a message, or "" when absent. */
const char *ipc_op(const ipc_msg *m);

/* Encode/decode a frame in memory (for tests and fuzzing). ipc_encode returns a malloc'd buffer
 * and its length, or NULL. ipc_decode parses exactly one frame from buf; returns IPC_OK and sets
 * *used, IPC_EOF when buf holds less than a whole frame, IPC_BADMSG (with *used set) when the
 * frame is whole but its header is not a JSON object, IPC_ERR when the framing is invalid. */
unsigned char *ipc_encode(const json_t *hdr, const void *payload, size_t payload_len,
                          size_t *out_len);
int ipc_decode(const unsigned char *buf, size_t len, ipc_msg *m, size_t *used);

#endif
