/* speech_queue.c — what the speech loops (speech.c Pocket-TTS, speech_qwen3.c Qwen3-TTS) share:
 * the FIFO of waiting `speak` requests, the checked fields of a speak frame, the `done` of a
 * request cancelled while it waited, seeds, and where a sentence ends. Below both loops: it calls
 * only worker.h's lower layers and wio.h, never a speech loop. Must never let a waiting queue
 * lose or duplicate a request (each item is in at most one FIFO, and is its request). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wio.h"
#include "worker.h"

uint32_t spq_mix32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (uint32_t)x;
}

/* End of the sentence that starts at s[i]: after ./!/? followed by a space or the end, a CJK
 * full stop, or a blank line. */
size_t spq_sentence_end(const char *s, size_t n, size_t i) {
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c == '.' || c == '!' || c == '?') && (i + 1 == n || isspace((unsigned char)s[i + 1]))) {
      while (i + 1 < n && strchr(".!?\"')", s[i + 1])) i++;
      return i + 1;
    }
    if (c == '\n' && i + 1 < n && s[i + 1] == '\n') return i + 1;
    /* 。！？ are E3 80 82, EF BC 81, EF BC 9F */
    if (c == 0xE3 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
        (unsigned char)s[i + 2] == 0x82)
      return i + 3;
    if (c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBC &&
        ((unsigned char)s[i + 2] == 0x81 || (unsigned char)s[i + 2] == 0x9F))
      return i + 3;
  }
  return n;
}

void spq_push(spq_fifo *f, spq_item *it) {
  it->next = NULL;
  if (f->tail)
    f->tail->next = it;
  else
    f->head = it;
  f->tail = it;
  f->n++;
}

spq_item *spq_pop(spq_fifo *f) {
  spq_item *it = f->head;
  if (!it) return NULL;
  f->head = it->next;
  if (!f->head) f->tail = NULL;
  f->n--;
  it->next = NULL;
  return it;
}

spq_item *spq_remove(spq_fifo *f, wio_id id) {
  spq_item *prev = NULL;
  for (spq_item *it = f->head; it; prev = it, it = it->next) {
    if (it->id != id) continue;
    if (prev)
      prev->next = it->next;
    else
      f->head = it->next;
    if (f->tail == it) f->tail = prev;
    f->n--;
    it->next = NULL;
    return it;
  }
  return NULL;
}

void spq_reply_cancelled(worker *w, wio_id id) {
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:i, s:i, s:s}", "op", "done", "id", (json_int_t)id, "samples", 0,
                     "rate", w->sample_rate, "finish_reason", "cancelled"),
           NULL, 0);
}

void spq_reply_voices(worker *w, wio_id id, const char *const *names, int n) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < n; i++)
    json_array_append_new(arr, json_pack("{s:s, s:s}", "id", names[i], "name", names[i]));
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:o, s:i}", "op", "done", "id", (json_int_t)id, "voices",
                     arr ? arr : json_array(), "rate", w->sample_rate),
           NULL, 0);
}

int spq_args(worker *w, wio_id id, const json_t *hdr, spq_req_args *out) {
  const json_t *in = json_object_get(hdr, "input"), *vo = json_object_get(hdr, "voice");
  const json_t *sd = json_object_get(hdr, "seed");
  memset(out, 0, sizeof *out);
  if (!json_is_string(in) || json_string_length(in) == 0 ||
      json_string_length(in) > SPQ_MAX_INPUT) {
    wio_error(&w->out, id, 400, "invalid_request", "speak needs \"input\": 1..%d bytes of text",
              SPQ_MAX_INPUT);
    return -1;
  }
  if (vo && !json_is_null(vo) && !json_is_string(vo)) {
    wio_error(&w->out, id, 400, "invalid_request", "\"voice\" must be a string");
    return -1;
  }
  if (sd && !json_is_null(sd) && !(json_is_integer(sd) && json_integer_value(sd) >= 0)) {
    wio_error(&w->out, id, 400, "invalid_request", "\"seed\" must be an integer >= 0");
    return -1;
  }
  size_t len = json_string_length(in);
  if (!(out->text = malloc(len + 1))) {
    wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
    return -1;
  }
  memcpy(out->text, json_string_value(in), len + 1);
  for (size_t i = 0; i < len; i++)
    if (!out->text[i]) out->text[i] = ' ';
  out->voice = json_is_string(vo) ? json_string_value(vo) : "";
  if (json_is_integer(sd)) {
    out->seed = spq_mix32((uint64_t)json_integer_value(sd));
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    out->seed = spq_mix32((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)id);
  }
  return 0;
}
