/* inbox.c — the worker's reader thread and the bounded FIFO of frames it hands to the main thread.
 * The reader only receives and queues; it must never send a frame, touch the engine, or let the
 * queue grow past WK_INBOX_CAP (it waits for room instead). A frame with a bad JSON header is
 * skipped (the stream is still in step); broken framing ends the channel. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

struct inbox_node {
  ipc_msg msg;
  inbox_node *next;
};

void inbox_init(inbox *in, int fd) {
  memset(in, 0, sizeof *in);
  in->fd = fd;
  pthread_mutex_init(&in->mu, NULL);
  pthread_cond_init(&in->cv_msg, NULL);
  pthread_cond_init(&in->cv_space, NULL);
  atomic_init(&in->ended_flag, false);
}

static void inbox_mark_ended(inbox *in, bool failed) {
  pthread_mutex_lock(&in->mu);
  in->ended = true;
  in->failed = failed;
  atomic_store(&in->ended_flag, true);
  pthread_cond_broadcast(&in->cv_msg);
  pthread_mutex_unlock(&in->mu);
}

static void *inbox_reader(void *arg) {
  inbox *in = arg;
  for (;;) {
    ipc_msg m;
    int rc = ipc_recv(in->fd, &m);
    if (rc == IPC_BADMSG) { /* the stream is still in step: skip this frame */
      LOG_W("ipc: skipping a frame whose header is not a JSON object");
      continue;
    }
    if (rc == IPC_EOF) {
      LOG_D("ipc: end of stream");
      inbox_mark_ended(in, false);
      return NULL;
    }
    if (rc != IPC_OK) {
      bool closing;
      pthread_mutex_lock(&in->mu);
      closing = in->closing;
      pthread_mutex_unlock(&in->mu);
      if (!closing)
        LOG_E("ipc: bad framing or read error (%s); giving up on the channel", strerror(errno));
      inbox_mark_ended(in, !closing);
      return NULL;
    }
    inbox_node *node = malloc(sizeof *node);
    if (!node) {
      LOG_E("ipc: out of memory queueing a frame");
      ipc_msg_clear(&m);
      inbox_mark_ended(in, true);
      return NULL;
    }
    node->msg = m;
    node->next = NULL;
    pthread_mutex_lock(&in->mu);
    while (in->n >= WK_INBOX_CAP && !in->closing) pthread_cond_wait(&in->cv_space, &in->mu);
    if (in->closing) {
      pthread_mutex_unlock(&in->mu);
      ipc_msg_clear(&node->msg);
      free(node);
      return NULL;
    }
    if (in->tail)
      in->tail->next = node;
    else
      in->head = node;
    in->tail = node;
    in->n++;
    pthread_cond_signal(&in->cv_msg);
    pthread_mutex_unlock(&in->mu);
  }
}

int inbox_start(inbox *in) {
  if (pthread_create(&in->thread, NULL, inbox_reader, in) != 0) return -1;
  in->started = true;
  return 0;
}

int inbox_pop(inbox *in, ipc_msg *out, bool wait) {
  pthread_mutex_lock(&in->mu);
  while (wait && !in->head && !in->ended) pthread_cond_wait(&in->cv_msg, &in->mu);
  int rc;
  if (in->head) {
    inbox_node *node = in->head;
    in->head = node->next;
    if (!in->head) in->tail = NULL;
    in->n--;
    *out = node->msg;
    free(node);
    pthread_cond_signal(&in->cv_space);
    rc = INBOX_MSG;
  } else {
    rc = in->ended ? INBOX_END : INBOX_EMPTY;
  }
  pthread_mutex_unlock(&in->mu);
  return rc;
}

bool inbox_ended(inbox *in) { return atomic_load(&in->ended_flag); }

bool inbox_failed(inbox *in) {
  pthread_mutex_lock(&in->mu);
  bool f = in->failed;
  pthread_mutex_unlock(&in->mu);
  return f;
}

void inbox_deinit(inbox *in) {
  if (in->started) {
    pthread_mutex_lock(&in->mu);
    in->closing = true;
    pthread_cond_broadcast(&in->cv_space);
    pthread_mutex_unlock(&in->mu);
    /* Wake a reader blocked in read(2): on a socket, shutting the read side makes it see EOF.
     * On anything else (a pipe in a test), cancel it; read(2) is a cancellation point. */
    if (shutdown(in->fd, SHUT_RD) != 0) {
      bool ended;
      pthread_mutex_lock(&in->mu);
      ended = in->ended;
      pthread_mutex_unlock(&in->mu);
      if (!ended) pthread_cancel(in->thread);
    }
    pthread_join(in->thread, NULL);
    in->started = false;
  }
  while (in->head) {
    inbox_node *node = in->head;
    in->head = node->next;
    ipc_msg_clear(&node->msg);
    free(node);
  }
  in->tail = NULL;
  in->n = 0;
  pthread_cond_destroy(&in->cv_msg);
  pthread_cond_destroy(&in->cv_space);
  pthread_mutex_destroy(&in->mu);
}
