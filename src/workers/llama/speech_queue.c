/* speech_queue.c — what the speech loops (speech.c Pocket-TTS, speech_qwen3.c Qwen3-TTS) share:
 * the FIFO of waiting `speak` requests, the checked fields of a speak frame, the voices (load's
 * table, a request's own clip, the projector's encoding of a clip), a request's life (queued,
 * begun, cut into sentence chunks, ended, cancelled), the backbone decode that feeds rows or
 * tokens and keeps the last hidden state, the audio and `done` frames, seeds, and where a sentence
 * ends. Below both loops: it calls only worker.h's lower layers (tok.c), wio.h and the engines,
 * never a speech loop. Must never let a waiting queue lose or duplicate a request (each item is in
 * at most one FIFO, and is its request), nor answer a request twice. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mtmd-helper.h"
#include "wio.h"
#include "worker.h"

/* ---- seeds --------------------------------------------------------------------------------- */

uint32_t spq_mix32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (uint32_t)x;
}

/* Below 2^31, and consecutive frames never share one (an odd step mod 2^31), so clip reseeds on
 * every call. */
uint32_t spq_frame_seed(const spq_core *c, uint32_t k) {
  return (c->seed_base + k * 0x9E3779B1u) & 0x7fffffffu;
}

void spq_note_seed(spq_core *c, uint32_t s) {
  c->last_seed = s;
  c->have_last = true;
}

void spq_force_reseed(worker *w, spq_core *c, struct mtmd_gen_inp *in) {
  if (!c->have_last || c->last_seed != spq_frame_seed(c, 0)) return;
  struct mtmd_gen_out out;
  in->type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
  in->seed = SPQ_WAV_SEED;
  if (mtmd_gen_audio_process(w->mtmd, in, &out) == 0) spq_note_seed(c, SPQ_WAV_SEED);
}

/* ---- text ---------------------------------------------------------------------------------- */

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

static int spq_push_chunk(spq_core *c, const llama_token *t, int n) {
  spq_chunk *nc = realloc(c->chunks, (size_t)(c->n_chunks + 1) * sizeof *nc);
  if (!nc) return -1;
  c->chunks = nc;
  llama_token *k = malloc((size_t)n * sizeof *k);
  if (!k) return -1;
  memcpy(k, t, (size_t)n * sizeof *k);
  c->chunks[c->n_chunks++] = (spq_chunk){k, n};
  return 0;
}

int spq_add_sentence(worker *w, spq_core *c, const char *s, size_t n, int max_tokens) {
  llama_token *toks = NULL;
  int32_t nt = 0;
  int rc = tok_tokenize(w, s, n, false, false, &toks, &nt);
  if (rc != 0) return -1;
  for (int32_t k = 0; k < nt && rc == 0; k += max_tokens)
    rc = spq_push_chunk(c, toks + k, nt - k < max_tokens ? nt - k : max_tokens);
  free(toks);
  return rc;
}

static void spq_chunks_free(spq_core *c) {
  for (int i = 0; i < c->n_chunks; i++) free(c->chunks[i].toks);
  free(c->chunks);
  c->chunks = NULL;
  c->n_chunks = c->chunk = 0;
}

/* ---- the FIFO ------------------------------------------------------------------------------ */

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

/* ---- voices -------------------------------------------------------------------------------- */

llama_token spq_find_token(const worker *w, const char *s) {
  int32_t n = llama_vocab_n_tokens(w->vocab);
  for (llama_token t = n - 1; t >= 0; t--) {
    const char *x = llama_vocab_get_text(w->vocab, t);
    if (x && strcmp(x, s) == 0) return t;
  }
  return -1;
}

/* load's "voices": {name: path} or {name: {audio: path, language?}}. 0, or -1 + err. */
static int spq_voices_load(spq_core *c, const json_t *voices, char *err, size_t err_len) {
  if (voices && !json_is_object(voices)) {
    snprintf(err, err_len, "load: \"voices\" must be an object {name: path}");
    return -1;
  }
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)voices, name, v) {
    const json_t *path = json_is_object(v) ? json_object_get(v, "audio") : v;
    const json_t *lang = json_is_object(v) ? json_object_get(v, "language") : NULL;
    if (!json_is_string(path) || (lang && !json_is_string(lang)) || c->n_voices >= SPQ_MAX_VOICES) {
      snprintf(err, err_len, "load: \"voices\" takes at most %d {name: path} entries",
               SPQ_MAX_VOICES);
      return -1;
    }
    spq_voice *sv = &c->voices[c->n_voices++];
    sv->name = strdup(name);
    sv->path = strdup(json_string_value(path));
    if (lang) sv->lang = strdup(json_string_value(lang));
    if (!sv->name || !sv->path || (lang && !sv->lang)) {
      snprintf(err, err_len, "out of memory");
      return -1;
    }
  }
  return 0;
}

int spq_voice_encode(worker *w, spq_voice *v, int max_rows, char *msg, size_t msg_len) {
  if (v->rows) return 0;
  struct mtmd_helper_bitmap_wrapper bw =
      v->clip ? mtmd_helper_bitmap_init_from_buf(w->mtmd, v->clip, v->clip_len, false,
                                                 mtmd_helper_init_opt_default())
              : mtmd_helper_bitmap_init_from_file(w->mtmd, v->path, false,
                                                  mtmd_helper_init_opt_default());
  if (!bw.bitmap) {
    snprintf(msg, msg_len, "voice '%s': cannot read the reference clip %s (wav, mp3, flac)",
             v->name, v->clip ? "(uploaded)" : v->path);
    return -1;
  }
  int rc = -1;
  mtmd_input_chunks *chunks = mtmd_input_chunks_init();
  const char *marker = mtmd_default_marker();
  mtmd_input_text in = {marker, strlen(marker), false, true};
  const mtmd_bitmap *bm[1] = {bw.bitmap};
  snprintf(msg, msg_len, "voice '%s': the reference clip could not be encoded", v->name);
  if (chunks && mtmd_tokenize(w->mtmd, chunks, &in, bm, 1) == 0) {
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
      const mtmd_input_chunk *c = mtmd_input_chunks_get(chunks, i);
      if (mtmd_input_chunk_get_type(c) != MTMD_INPUT_CHUNK_TYPE_AUDIO) continue;
      size_t nr = mtmd_input_chunk_get_n_tokens(c);
      if (nr == 0 || nr > (size_t)max_rows) {
        snprintf(msg, msg_len, "voice '%s': the reference clip is %zu frames; at most %d fit",
                 v->name, nr, max_rows);
        break;
      }
      if (mtmd_encode_chunk(w->mtmd, c) != 0) break;
      v->rows = malloc(nr * (size_t)w->n_embd * sizeof(float));
      if (!v->rows) break;
      memcpy(v->rows, mtmd_get_output_embd(w->mtmd), nr * (size_t)w->n_embd * sizeof(float));
      v->n_rows = (int)nr;
      rc = 0;
      break;
    }
  }
  if (chunks) mtmd_input_chunks_free(chunks);
  mtmd_bitmap_free(bw.bitmap);
  if (rc == 0)
    LOG_I("voice '%s': %d encoder rows from %s", v->name, v->n_rows,
          v->clip ? "the request" : v->path);
  return rc;
}

/* ---- the state ----------------------------------------------------------------------------- */

int spq_core_init(worker *w, spq_core *c, const json_t *voices, char *err, size_t err_len) {
  c->h = malloc((size_t)w->n_embd * sizeof(float));
  if (!c->h) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  return spq_voices_load(c, voices, err, err_len);
}

static void spq_req_free(spq_req *r) {
  if (!r) return;
  if (r->own) {
    free(r->own->clip);
    free(r->own->rows);
    free(r->own);
  }
  free(r->text);
  free(r);
}

void spq_end(spq_core *c) {
  spq_req_free(c->cur);
  c->cur = NULL;
  spq_chunks_free(c);
  free(c->dec_state);
  c->dec_state = NULL;
  c->dec_state_n = 0;
}

void spq_core_free(spq_core *c) {
  spq_end(c);
  for (spq_item *it; (it = spq_pop(&c->q));) spq_req_free((spq_req *)it);
  for (int i = 0; i < c->n_voices; i++) {
    free(c->voices[i].name);
    free(c->voices[i].path);
    free(c->voices[i].lang);
    free(c->voices[i].rows);
  }
  free(c->h);
}

bool spq_busy(const spq_core *c) { return c->cur || c->q.head; }

/* ---- requests ------------------------------------------------------------------------------ */

int spq_args(worker *w, const spq_core *c, wio_id id, const json_t *hdr, spq_req_args *out) {
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
  bool blank = true;
  for (size_t i = 0; i < len; i++) {
    if (!out->text[i]) out->text[i] = ' ';
    blank &= isspace((unsigned char)out->text[i]) != 0;
  }
  if (blank) { /* nothing to speak: no sentence would ever start, so answer now, no audio */
    free(out->text);
    out->text = NULL;
    spq_reply_done(w, id, 0, "stop");
    return -1;
  }
  const char *voice = json_is_string(vo) ? json_string_value(vo) : "";
  out->voice = -1;
  for (int i = 0; i < c->n_voices && *voice; i++)
    if (!strcmp(c->voices[i].name, voice)) out->voice = i;
  /* with configured voices a name must be one of them; without, any name (OpenAI clients always
   * send one) means the model's own voice */
  if (*voice && out->voice < 0 && c->n_voices > 0) {
    wio_error(&w->out, id, 400, "invalid_voice",
              "unknown voice '%.100s' (GET /v1/audio/voices lists them)", voice);
    free(out->text);
    out->text = NULL;
    return -1;
  }
  if (json_is_integer(sd)) {
    out->seed = spq_mix32((uint64_t)json_integer_value(sd));
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    out->seed = spq_mix32((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)id);
  }
  return 0;
}

void spq_enqueue(worker *w, spq_core *c, wio_id id, spq_req_args *a, llama_token lang,
                 const void *clip, size_t clip_len) {
  if (c->q.n >= SPQ_MAX_WAITING) {
    wio_error(&w->out, id, 503, "overloaded", "too many speech requests are waiting");
    free(a->text);
    return;
  }
  spq_req *r = calloc(1, sizeof *r);
  if (!r) {
    free(a->text);
    wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
    return;
  }
  r->text = a->text;
  if (clip_len) { /* a reference clip for this request only: encoded when its turn comes */
    static char uploaded[] = "uploaded";
    if (!(r->own = calloc(1, sizeof *r->own)) || !(r->own->clip = malloc(clip_len))) {
      spq_req_free(r);
      wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
      return;
    }
    memcpy(r->own->clip, clip, clip_len);
    r->own->clip_len = clip_len;
    r->own->name = uploaded;
  }
  r->it.id = id;
  r->voice = a->voice;
  r->lang = lang;
  r->seed = a->seed;
  spq_push(&c->q, &r->it);
}

spq_req *spq_begin(spq_core *c) {
  spq_req *r = (spq_req *)spq_pop(&c->q);
  c->cur = r;
  c->samples = 0;
  c->frame_no = 0;
  c->seed_base = r->seed;
  c->prompted = false;
  c->dec_state_n = 0;
  return r;
}

spq_voice *spq_cur_voice(spq_core *c) {
  if (c->cur->own) return c->cur->own;
  return c->cur->voice >= 0 ? &c->voices[c->cur->voice] : NULL;
}

bool spq_cancel_waiting(worker *w, spq_core *c, wio_id id) {
  spq_req *r = (spq_req *)spq_remove(&c->q, id);
  if (!r) return false;
  spq_reply_done(w, id, 0, "cancelled");
  spq_req_free(r);
  return true;
}

/* ---- the backbone and the decoder ---------------------------------------------------------- */

int spq_decode(worker *w, spq_core *c, const float *rows, const llama_token *toks, int n,
               int n_pos) {
  for (int done = 0; done < n;) {
    int k = n - done < w->n_batch ? n - done : w->n_batch;
    struct llama_batch b = llama_batch_init(n_pos * k, rows ? w->n_embd : 0, 1);
    if (rows) {
      if (!b.embd) return -1;
      memcpy(b.embd, rows + (size_t)done * (size_t)w->n_embd,
             (size_t)k * (size_t)w->n_embd * sizeof(float));
    }
    for (int i = 0; i < k; i++) {
      if (toks) b.token[i] = toks[done + i];
      for (int s = 0; s < n_pos; s++) b.pos[s * k + i] = c->pos + i;
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = 1; /* with embeddings on llama.cpp outputs every row anyway */
    }
    b.n_tokens = k;
    int rc = llama_decode(w->ctx, b);
    llama_batch_free(b);
    if (rc != 0) return -1;
    c->pos += k;
    done += k;
  }
  const float *he = llama_get_embeddings_ith(w->ctx, -1);
  if (!he) return -1;
  memcpy(c->h, he, (size_t)w->n_embd * sizeof(float));
  return 0;
}

int spq_keep_state(spq_core *c, const struct mtmd_gen_out *out) {
  char *ns = realloc(c->dec_state, out->state_size ? out->state_size : 1);
  if (!ns) return -1;
  c->dec_state = ns;
  memcpy(c->dec_state, out->state_data, out->state_size);
  c->dec_state_n = out->state_size;
  return 0;
}

/* ---- replies ------------------------------------------------------------------------------- */

void spq_send_audio(worker *w, spq_core *c, const float *pcm, size_t n) {
  c->samples += (int64_t)n;
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:i}", "op", "audio", "id", (json_int_t)c->cur->it.id, "rate",
                     w->sample_rate),
           pcm, n * sizeof(float));
}

void spq_reply_done(worker *w, wio_id id, int64_t samples, const char *reason) {
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:I, s:i, s:s}", "op", "done", "id", (json_int_t)id, "samples",
                     (json_int_t)samples, "rate", w->sample_rate, "finish_reason", reason),
           NULL, 0);
}

void spq_reply_prompt_failed(worker *w, wio_id id, const char *msg) {
  bool bad_voice = strncmp(msg, "voice ", 6) == 0;
  wio_error(&w->out, id, bad_voice ? 400 : 500, bad_voice ? "invalid_voice" : "synthesis_failed",
            "%s", msg);
}

void spq_reply_voices(worker *w, wio_id id, const spq_core *c) {
  json_t *arr = json_array();
  for (int i = 0; arr && c && i < c->n_voices; i++) {
    const char *name = c->voices[i].name;
    json_array_append_new(arr, json_pack("{s:s, s:s}", "id", name, "name", name));
  }
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:o, s:i}", "op", "done", "id", (json_int_t)id, "voices",
                     arr ? arr : json_array(), "rate", w->sample_rate),
           NULL, 0);
}
