/* ipc.c — framing for the daemon <-> worker socketpair (see ipc.h, docs/PROTOCOL.md).
 * Must never allocate a length it has not bounded, nor let two frames interleave on a send. */
#include "ipc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const unsigned char ipc_magic[4] = {'S', 'Y', 'W', '1'};

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void ipc_chan_init(ipc_chan *c, int fd) {
  c->fd = fd;
  pthread_mutex_init(&c->send_lock, NULL);
}

void ipc_chan_deinit(ipc_chan *c) { pthread_mutex_destroy(&c->send_lock); }

/* Write every byte of the iovec array, resuming after short writes and EINTR. */
static int write_all_v(int fd, struct iovec *iov, int iovcnt) {
  while (iovcnt > 0) {
    struct msghdr mh = {0};
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)iovcnt;
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOTSOCK) n = writev(fd, iov, iovcnt);
      if (n < 0) return -1;
    }
    size_t left = (size_t)n;
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      iovcnt--;
    }
    if (iovcnt > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

int ipc_send(ipc_chan *c, const json_t *hdr, const void *payload, size_t payload_len) {
  if (!json_is_object(hdr) || payload_len > IPC_MAX_PAYLOAD) {
    errno = EINVAL;
    return IPC_ERR;
  }
  char *js = json_dumps(hdr, JSON_COMPACT | JSON_REAL_PRECISION(9));
  if (!js) {
    errno = ENOMEM;
    return IPC_ERR;
  }
  size_t hl = strlen(js);
  if (hl > IPC_MAX_HEADER) {
    free(js);
    errno = EMSGSIZE;
    return IPC_ERR;
  }
  unsigned char pre[12];
  memcpy(pre, ipc_magic, 4);
  put_u32(pre + 4, (uint32_t)hl);
  put_u32(pre + 8, (uint32_t)payload_len);
  struct iovec iov[3] = {{pre, sizeof pre}, {js, hl}, {(void *)payload, payload_len}};
  pthread_mutex_lock(&c->send_lock);
  int rc = write_all_v(c->fd, iov, payload_len ? 3 : 2);
  pthread_mutex_unlock(&c->send_lock);
  free(js);
  return rc == 0 ? IPC_OK : IPC_ERR;
}

int ipc_send_steal(ipc_chan *c, json_t *hdr, const void *payload, size_t payload_len) {
  int rc = ipc_send(c, hdr, payload, payload_len);
  json_decref(hdr);
  return rc;
}

/* Read exactly n bytes. Returns 0, 1 on EOF before the first byte, -1 on error/short EOF. */
static int read_all(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      if (got == 0) return 1;
      errno = EPROTO;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int parse_header(const char *js, size_t hl, ipc_msg *m) {
  json_error_t err;
  json_t *h = json_loadb(js, hl, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
  if (!json_is_object(h)) {
    json_decref(h);
    errno = EBADMSG;
    return IPC_BADMSG;
  }
  m->hdr = h;
  return IPC_OK;
}

int ipc_recv(int fd, ipc_msg *m) {
  memset(m, 0, sizeof *m);
  unsigned char pre[12];
  int r = read_all(fd, pre, sizeof pre);
  if (r == 1) return IPC_EOF;
  if (r < 0) return errno == ECONNRESET ? IPC_EOF : IPC_ERR;
  uint32_t hl = get_u32(pre + 4), pl = get_u32(pre + 8);
  if (memcmp(pre, ipc_magic, 4) != 0 || hl == 0 || hl > IPC_MAX_HEADER || pl > IPC_MAX_PAYLOAD) {
    errno = EPROTO;
    return IPC_ERR;
  }
  /* Read the whole frame before judging its header, so a bad header leaves the stream in step. */
  char *js = malloc(hl);
  void *payload = pl ? malloc(pl) : NULL;
  if (!js || (pl && !payload) || read_all(fd, js, hl) != 0 ||
      (pl && read_all(fd, payload, pl) != 0)) {
    int e = errno;
    free(js);
    free(payload);
    errno = e;
    return e == ECONNRESET ? IPC_EOF : IPC_ERR;
  }
  int rc = parse_header(js, hl, m);
  free(js);
  if (rc != IPC_OK) {
    free(payload);
    return rc;
  }
  m->payload = payload;
  m->payload_len = pl;
  return IPC_OK;
}

void ipc_msg_clear(ipc_msg *m) {
  json_decref(m->hdr);
  free(m->payload);
  memset(m, 0, sizeof *m);
}

const char *ipc_op(const ipc_msg *m) {
  const char *op = m->hdr ? json_string_value(json_object_get(m->hdr, "op")) : NULL;
  return op ? op : "";
}

unsigned char *ipc_encode(const json_t *hdr, const void *payload, size_t payload_len,
                          size_t *out_len) {
  if (!json_is_object(hdr) || payload_len > IPC_MAX_PAYLOAD) return NULL;
  char *js = json_dumps(hdr, JSON_COMPACT | JSON_REAL_PRECISION(9));
  if (!js) return NULL;
  size_t hl = strlen(js);
  unsigned char *buf = hl <= IPC_MAX_HEADER ? malloc(12 + hl + payload_len) : NULL;
  if (buf) {
    memcpy(buf, ipc_magic, 4);
    put_u32(buf + 4, (uint32_t)hl);
    put_u32(buf + 8, (uint32_t)payload_len);
    memcpy(buf + 12, js, hl);
    if (payload_len) memcpy(buf + 12 + hl, payload, payload_len);
    *out_len = 12 + hl + payload_len;
  }
  free(js);
  return buf;
}

int ipc_decode(const unsigned char *buf, size_t len, ipc_msg *m, size_t *used) {
  memset(m, 0, sizeof *m);
  if (len < 12) return len >= 4 && memcmp(buf, ipc_magic, 4) != 0 ? IPC_ERR : IPC_EOF;
  uint32_t hl = get_u32(buf + 4), pl = get_u32(buf + 8);
  if (memcmp(buf, ipc_magic, 4) != 0 || hl == 0 || hl > IPC_MAX_HEADER || pl > IPC_MAX_PAYLOAD)
    return IPC_ERR;
  if (len - 12 < (size_t)hl + pl) return IPC_EOF;
  int rc = parse_header((const char *)buf + 12, hl, m);
  if (rc != IPC_OK) {
    *used = 12 + (size_t)hl + pl;
    return rc;
  }
  if (pl) {
    m->payload = malloc(pl);
    if (!m->payload) {
      ipc_msg_clear(m);
      return IPC_ERR;
    }
    memcpy(m->payload, buf + 12 + hl, pl);
    m->payload_len = pl;
  }
  *used = 12 + (size_t)hl + pl;
  return IPC_OK;
}
