/* speech.c — text to speech through llama.cpp's experimental mtmd audio-generation API, for a
 * model whose mmproj generates audio (docs/TTS.md). Only the Pocket-TTS pipeline is driven: the
 * backbone's hidden state goes through the projector's flow net (GEN_CODE) to one latent per
 * 12.5 Hz frame and an embedding that is fed back; the mimi decoder (GEN_WAV) turns runs of 8
 * latents into PCM, carrying its streaming state. The text is cut into sentences; each sentence
 * is prompted on top of the voice (a reference clip's rows) and ends on the end-of-speech head
 * plus a few tail frames, or on its frame budget.
 *
 * One `speak` runs at a time (one mtmd context, one sequence); others wait in a FIFO. The main
 * loop calls speech_step between drains of the inbox, and one step is one frame, so a cancel is
 * seen within a frame. Same request and seed → same samples: every GEN_CODE passes its own seed
 * (clip reseeds its generator only when the seed changes), a pure function of (seed, frame).
 *
 * It is also the speech front main.c and engine.c call: with a Qwen3-TTS projector each
 * speech_* call is handed to speech_qwen3.c. Both loops sit on speech_queue.c (the FIFO, a
 * speak's fields, seeds, sentence ends); neither of those calls back up into this file. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mtmd-helper.h"
#include "worker.h"

#define SP_MAX_WAITING 256
#define SP_CHUNK_TOKENS 50 /* MAX_TOKEN_PER_CHUNK of the reference */
#define SP_WINDOW 8        /* latents per GEN_WAV call */
#define SP_FRAME_RATE 12.5
#define SP_MAX_VOICES 64
#define SP_WAV_SEED 0x80000000u /* GEN_WAV draws nothing; GEN_CODE seeds are all below this */

typedef struct sp_voice sp_voice;
typedef struct sp_req {
  spq_item it; /* first: the queue's link and the request's id */
  char *text;
  int voice;     /* index into st->voices, or -1 */
  sp_voice *own; /* a reference clip the request brought (voice_upload), or NULL */
  uint32_t seed;
} sp_req;

struct sp_voice {
  char *name, *path;
  unsigned char *clip; /* or the clip itself (a WAV the daemon wrote), clip_len bytes */
  size_t clip_len;
  float *rows; /* encoded on first use: n_rows x n_embd */
  int n_rows;
};

typedef struct sp_chunk {
  llama_token *toks;
  int n;
} sp_chunk;

struct speech_state {
  spq_fifo q; /* the requests waiting behind the current one */
  sp_voice voices[SP_MAX_VOICES];
  int n_voices;
  llama_token audio_bos, bos_voice;
  float temp;
  int pack_tail; /* frames after end-of-speech the variant pins, 0 = by length */
  bool pad_short;
  uint32_t last_seed;
  bool have_last;
  /* the request being spoken */
  sp_req *cur;
  sp_chunk *chunks;
  int n_chunks, chunk;
  bool prompted; /* the current chunk's prompt is in the KV cache */
  int n_voice_pos;
  llama_pos pos;
  float *h; /* the backbone's last hidden state, n_embd */
  float *feats;
  size_t n_feats, latent;
  char *dec_state;
  size_t dec_state_n;
  int step, eos_step, budget, tail_frames;
  uint32_t frame_no, seed_base;
  int64_t samples;
};

/* ---- seeds --------------------------------------------------------------------------------- */

/* The seed of frame k: below 2^31, and consecutive frames never share one (an odd step mod
 * 2^31), so clip reseeds on every call. */
static uint32_t sp_frame_seed(const speech_state *st, uint32_t k) {
  return (st->seed_base + k * 0x9E3779B1u) & 0x7fffffffu;
}

static void sp_note_seed(speech_state *st, uint32_t s) {
  st->last_seed = s;
  st->have_last = true;
}

/* ---- text ---------------------------------------------------------------------------------- */

/* Normalise one sentence as the reference's prepare_text_prompt: newlines → spaces, ';' → ',',
 * trimmed, the first ASCII letter upper case, a '.' after a final letter or digit; short texts
 * padded for the packs that want it. Returns a malloc'd string ("" when nothing is left). */
static char *sp_prepare(const char *s, size_t n, bool pad_short) {
  char *out = malloc(n + 16);
  if (!out) return NULL;
  size_t b = 0, e = n;
  while (b < e && (isspace((unsigned char)s[b]) || s[b] == '\0')) b++;
  while (e > b && (isspace((unsigned char)s[e - 1]) || s[e - 1] == '\0')) e--;
  size_t o = 0, words = 0;
  bool in_word = false;
  if (pad_short) o = 8; /* filled below if needed */
  for (size_t i = b; i < e; i++) {
    char c = s[i];
    if (c == '\n' || c == '\r' || c == '\t' || c == '\0') c = ' ';
    if (c == ';') c = ',';
    if (c == ' ')
      in_word = false;
    else if (!in_word)
      in_word = true, words++;
    out[o++] = c;
  }
  size_t start = pad_short ? 8 : 0;
  if (o > start && out[start] >= 'a' && out[start] <= 'z')
    out[start] = (char)(out[start] - 'a' + 'A');
  if (o > start && isalnum((unsigned char)out[o - 1])) out[o++] = '.';
  if (pad_short) {
    if (o > start && words < 5) {
      memset(out, ' ', 8);
    } else {
      memmove(out, out + 8, o - 8);
      o -= 8;
    }
  }
  out[o] = '\0';
  return out;
}

static void sp_chunks_free(speech_state *st) {
  for (int i = 0; i < st->n_chunks; i++) free(st->chunks[i].toks);
  free(st->chunks);
  st->chunks = NULL;
  st->n_chunks = st->chunk = 0;
}

static int sp_push_chunk(speech_state *st, const llama_token *t, int n) {
  sp_chunk *nc = realloc(st->chunks, (size_t)(st->n_chunks + 1) * sizeof *nc);
  if (!nc) return -1;
  st->chunks = nc;
  llama_token *c = malloc((size_t)n * sizeof *c);
  if (!c) return -1;
  memcpy(c, t, (size_t)n * sizeof *c);
  st->chunks[st->n_chunks++] = (sp_chunk){c, n};
  return 0;
}

/* Sentences of the text as token chunks (a sentence over the budget is cut every
 * SP_CHUNK_TOKENS tokens). 0, or -1 on out of memory / tokenizer failure. */
static int sp_split(worker *w, speech_state *st, const char *text) {
  size_t n = strlen(text), i = 0;
  while (i < n) {
    size_t e = spq_sentence_end(text, n, i);
    char *p = sp_prepare(text + i, e - i, st->pad_short);
    i = e;
    if (!p) return -1;
    if (!*p) {
      free(p);
      continue;
    }
    llama_token *toks = NULL;
    int32_t nt = 0;
    int rc = tok_tokenize(w, p, strlen(p), false, false, &toks, &nt);
    free(p);
    if (rc != 0) return -1;
    for (int32_t k = 0; k < nt && rc == 0; k += SP_CHUNK_TOKENS)
      rc = sp_push_chunk(st, toks + k, nt - k < SP_CHUNK_TOKENS ? nt - k : SP_CHUNK_TOKENS);
    free(toks);
    if (rc != 0) return -1;
  }
  return 0;
}

/* ---- voices -------------------------------------------------------------------------------- */

/* Encode a voice's reference clip once (the rows stay for the worker's life). 0, or -1 + msg. */
static int sp_voice_rows(worker *w, sp_voice *v, char *msg, size_t msg_len) {
  if (v->rows) return 0;
  if (!mtmd_support_audio(w->mtmd)) {
    snprintf(msg, msg_len, "this model's projector has no voice encoder");
    return -1;
  }
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
      if (nr == 0 || nr > (size_t)w->n_ctx_seq / 2) {
        snprintf(msg, msg_len, "voice '%s': the reference clip is %zu frames; at most %d fit",
                 v->name, nr, w->n_ctx_seq / 2);
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
    LOG_I("voice '%s': %d frames from %s", v->name, v->n_rows, v->clip ? "the request" : v->path);
  return rc;
}

/* ---- init ---------------------------------------------------------------------------------- */

static llama_token sp_find_token(const worker *w, const char *s) {
  int32_t n = llama_vocab_n_tokens(w->vocab);
  for (llama_token t = n - 1; t >= 0; t--) {
    const char *x = llama_vocab_get_text(w->vocab, t);
    if (x && strcmp(x, s) == 0) return t;
  }
  return -1;
}

int speech_init(worker *w, const char *model_path, const json_t *voices, char *err,
                size_t err_len) {
  struct mtmd_gen_audio_info info = mtmd_gen_audio_get_info(w->mtmd);
  if (info.type == MTMD_GEN_AUDIO_TYPE_QWEN3TTS)
    return q3s_init(w, model_path, voices, err, err_len);
  if (info.type != MTMD_GEN_AUDIO_TYPE_POCKETTTS) {
    snprintf(err, err_len,
             "this projector generates audio with a pipeline Switchyard does not "
             "drive yet (Pocket-TTS and Qwen3-TTS; see docs/TTS.md)");
    return -1;
  }
  speech_state *st = calloc(1, sizeof *st);
  if (!st) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  w->speech = st;
  w->sample_rate = info.sample_rate > 0 ? info.sample_rate : 24000;
  st->audio_bos = sp_find_token(w, "<|audio_bos|>");
  st->bos_voice = sp_find_token(w, "<|bos_before_voice|>");
  if (st->audio_bos < 0) {
    snprintf(err, err_len, "the vocabulary has no <|audio_bos|>: not a Pocket-TTS backbone");
    return -1;
  }
  /* per-pack settings the checkpoint does not carry (the reference's yaml) */
  const char *var = info.model_variant ? info.model_variant : "";
  st->temp = mtmd_gen_inp_default(w->mtmd).temp;
  if (!strcmp(var, "english") || !strcmp(var, "english_2026-04")) st->temp = 0.3f;
  if (!strcmp(var, "english_2026-01")) st->temp = 0.7f, st->pad_short = true;
  if (!strcmp(var, "french_24l")) st->temp = 0.7f, st->pack_tail = 8;
  st->h = malloc((size_t)w->n_embd * sizeof(float));
  if (!st->h) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  const char *name;
  json_t *path;
  if (voices && !json_is_object(voices)) {
    snprintf(err, err_len, "load: \"voices\" must be an object {name: path}");
    return -1;
  }
  json_object_foreach((json_t *)voices, name, path) {
    if (json_is_object(path)) path = json_object_get(path, "audio"); /* {audio, language} */
    if (!json_is_string(path) || st->n_voices >= SP_MAX_VOICES) {
      snprintf(err, err_len, "load: \"voices\" takes at most %d {name: path} entries",
               SP_MAX_VOICES);
      return -1;
    }
    sp_voice *v = &st->voices[st->n_voices++];
    v->name = strdup(name);
    v->path = strdup(json_string_value(path));
    if (!v->name || !v->path) {
      snprintf(err, err_len, "out of memory");
      return -1;
    }
  }
  LOG_I("speech: pocket-tts (variant \"%s\", temp %.2f), %d Hz, %d voices", var, (double)st->temp,
        w->sample_rate, st->n_voices);
  return 0;
}

static void sp_req_free(sp_req *r) {
  if (!r) return;
  if (r->own) {
    free(r->own->clip);
    free(r->own->rows);
    free(r->own);
  }
  free(r->text);
  free(r);
}

static void sp_end_current(speech_state *st) {
  sp_req_free(st->cur);
  st->cur = NULL;
  sp_chunks_free(st);
  free(st->feats);
  st->feats = NULL;
  st->n_feats = 0;
  free(st->dec_state);
  st->dec_state = NULL;
  st->dec_state_n = 0;
}

void speech_free(worker *w) {
  q3s_free(w);
  speech_state *st = w->speech;
  if (!st) return;
  sp_end_current(st);
  for (spq_item *it; (it = spq_pop(&st->q));) sp_req_free((sp_req *)it);
  for (int i = 0; i < st->n_voices; i++) {
    free(st->voices[i].name);
    free(st->voices[i].path);
    free(st->voices[i].rows);
  }
  free(st->h);
  free(st);
  w->speech = NULL;
}

bool speech_busy(const worker *w) {
  return q3s_busy(w) || (w->speech && (w->speech->cur || w->speech->q.head));
}

/* ---- requests ------------------------------------------------------------------------------ */

void speech_submit(worker *w, wio_id id, const json_t *hdr, const void *clip, size_t clip_len) {
  if (w->speech_q3) {
    q3s_submit(w, id, hdr, clip, clip_len);
    return;
  }
  speech_state *st = w->speech;
  spq_req_args a;
  if (spq_args(w, id, hdr, &a) != 0) return;
  int voice = -1;
  for (int i = 0; i < st->n_voices && *a.voice; i++)
    if (!strcmp(st->voices[i].name, a.voice)) voice = i;
  /* with configured voices a name must be one of them; without, any name (OpenAI clients always
   * send one) means the model's own voice */
  if (*a.voice && voice < 0 && st->n_voices > 0) {
    wio_error(&w->out, id, 400, "invalid_voice",
              "unknown voice '%.100s' (GET /v1/audio/voices lists them)", a.voice);
    free(a.text);
    return;
  }
  if (st->q.n >= SP_MAX_WAITING) {
    wio_error(&w->out, id, 503, "overloaded", "too many speech requests are waiting");
    free(a.text);
    return;
  }
  sp_req *r = calloc(1, sizeof *r);
  if (!r) {
    free(a.text);
    wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
    return;
  }
  r->text = a.text;
  if (clip_len) { /* a reference clip for this request only: encoded when its turn comes */
    static char uploaded[] = "uploaded";
    if (!(r->own = calloc(1, sizeof *r->own)) || !(r->own->clip = malloc(clip_len))) {
      sp_req_free(r);
      wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
      return;
    }
    memcpy(r->own->clip, clip, clip_len);
    r->own->clip_len = clip_len;
    r->own->name = uploaded;
  }
  r->it.id = id;
  r->voice = voice;
  r->seed = a.seed;
  spq_push(&st->q, &r->it);
}

static void sp_done(worker *w, const char *reason) {
  speech_state *st = w->speech;
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:I, s:i, s:s}", "op", "done", "id", (json_int_t)st->cur->it.id,
                     "samples", (json_int_t)st->samples, "rate", w->sample_rate, "finish_reason",
                     reason),
           NULL, 0);
  sp_end_current(st);
}

void speech_cancel(worker *w, wio_id id) {
  if (w->speech_q3) {
    q3s_cancel(w, id);
    return;
  }
  speech_state *st = w->speech;
  if (!st) return;
  if (st->cur && st->cur->it.id == id) {
    sp_done(w, "cancelled");
    return;
  }
  sp_req *r = (sp_req *)spq_remove(&st->q, id);
  if (r) {
    spq_reply_cancelled(w, id);
    sp_req_free(r);
  }
}

void speech_voices(worker *w, wio_id id) {
  if (w->speech_q3) {
    q3s_voices(w, id);
    return;
  }
  speech_state *st = w->speech;
  const char *names[SP_MAX_VOICES];
  int n = 0;
  for (int i = 0; st && i < st->n_voices; i++) names[n++] = st->voices[i].name;
  spq_reply_voices(w, id, names, n);
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Decode n embedding rows at st->pos (logits on the last); the hidden state goes to st->h. */
static int sp_decode_rows(worker *w, const float *rows, int n) {
  speech_state *st = w->speech;
  for (int done = 0; done < n;) {
    int k = n - done < w->n_batch ? n - done : w->n_batch;
    struct llama_batch b = llama_batch_init(k, w->n_embd, 1);
    if (!b.embd) return -1;
    memcpy(b.embd, rows + (size_t)done * (size_t)w->n_embd,
           (size_t)k * (size_t)w->n_embd * sizeof(float));
    for (int i = 0; i < k; i++) {
      b.pos[i] = st->pos + i;
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = 1; /* with embeddings on llama.cpp outputs every row anyway */
    }
    b.n_tokens = k;
    int rc = llama_decode(w->ctx, b);
    llama_batch_free(b);
    if (rc != 0) return -1;
    st->pos += k;
    done += k;
  }
  const float *he = llama_get_embeddings_ith(w->ctx, -1);
  if (!he) return -1;
  memcpy(st->h, he, (size_t)w->n_embd * sizeof(float));
  return 0;
}

static int sp_decode_tokens(worker *w, const llama_token *toks, int n) {
  speech_state *st = w->speech;
  for (int done = 0; done < n;) {
    int k = n - done < w->n_batch ? n - done : w->n_batch;
    struct llama_batch b = llama_batch_init(k, 0, 1);
    for (int i = 0; i < k; i++) {
      b.token[i] = toks[done + i];
      b.pos[i] = st->pos + i;
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = 1; /* with embeddings on llama.cpp outputs every row anyway */
    }
    b.n_tokens = k;
    int rc = llama_decode(w->ctx, b);
    llama_batch_free(b);
    if (rc != 0) return -1;
    st->pos += k;
    done += k;
  }
  const float *he = llama_get_embeddings_ith(w->ctx, -1);
  if (!he) return -1;
  memcpy(st->h, he, (size_t)w->n_embd * sizeof(float));
  return 0;
}

/* GEN_WAV over the buffered latents; the PCM leaves as one `audio` frame. 0 or -1. */
static int sp_flush(worker *w) {
  speech_state *st = w->speech;
  if (st->n_feats == 0) return 0;
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
  in.feats = st->feats;
  in.n_feats = st->n_feats;
  in.seed = SP_WAV_SEED;
  in.state_data = st->dec_state;
  in.state_size = st->dec_state_n;
  if (mtmd_gen_audio_process(w->mtmd, &in, &out) != 0 || (out.n_samples && !out.audio)) return -1;
  sp_note_seed(st, SP_WAV_SEED);
  st->n_feats = 0;
  char *ns = realloc(st->dec_state, out.state_size ? out.state_size : 1);
  if (!ns) return -1;
  st->dec_state = ns;
  memcpy(st->dec_state, out.state_data, out.state_size);
  st->dec_state_n = out.state_size;
  if (out.n_samples == 0) return 0;
  st->samples += (int64_t)out.n_samples;
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:i}", "op", "audio", "id", (json_int_t)st->cur->it.id, "rate",
                     w->sample_rate),
           out.audio, out.n_samples * sizeof(float));
  return 0;
}

/* Prompt chunk st->chunk on top of the voice: [bos_before_voice] voice rows (first chunk only;
 * later ones rewind to them), the chunk's tokens, <|audio_bos|>. 0, or -1 + msg. */
static int sp_prompt(worker *w, char *msg, size_t msg_len) {
  speech_state *st = w->speech;
  const sp_chunk *c = &st->chunks[st->chunk];
  if (st->chunk == 0) {
    llama_memory_clear(llama_get_memory(w->ctx), true);
    st->pos = 0;
    if (st->cur->own || st->cur->voice >= 0) {
      sp_voice *v = st->cur->own ? st->cur->own : &st->voices[st->cur->voice];
      if (sp_voice_rows(w, v, msg, msg_len) != 0) return -1;
      if (st->bos_voice >= 0 && sp_decode_tokens(w, &st->bos_voice, 1) != 0) goto fail;
      if (sp_decode_rows(w, v->rows, v->n_rows) != 0) goto fail;
    }
    st->n_voice_pos = st->pos;
  } else {
    llama_memory_seq_rm(llama_get_memory(w->ctx), 0, st->n_voice_pos, -1);
    st->pos = st->n_voice_pos;
  }
  if (st->pos + c->n + 1 + 8 > w->n_ctx_seq) {
    snprintf(msg, msg_len, "the voice and a sentence of %d tokens do not fit the context (%d)",
             c->n, w->n_ctx_seq);
    return -1;
  }
  llama_token *t = malloc((size_t)(c->n + 1) * sizeof *t);
  if (!t) goto fail;
  memcpy(t, c->toks, (size_t)c->n * sizeof *t);
  t[c->n] = st->audio_bos;
  int rc = sp_decode_tokens(w, t, c->n + 1);
  free(t);
  if (rc != 0) goto fail;
  /* the reference's _estimate_max_gen_len and tail guess, in frames */
  st->budget = (int)ceil((c->n / 3.0 + 2.0) * SP_FRAME_RATE);
  st->tail_frames = st->pack_tail > 0 ? st->pack_tail : c->n <= 6 ? 5 : 3;
  st->step = 0;
  st->eos_step = -1;
  st->prompted = true;
  return 0;
fail:
  snprintf(msg, msg_len, "the backbone failed to decode the prompt");
  return -1;
}

/* Start the next waiting request. 0, or -1 when it failed (answered). */
static int sp_start(worker *w) {
  speech_state *st = w->speech;
  sp_req *r = (sp_req *)spq_pop(&st->q);
  st->cur = r;
  st->samples = 0;
  st->frame_no = 0;
  st->seed_base = r->seed;
  st->prompted = false;
  st->n_feats = 0;
  st->dec_state_n = 0;
  if (sp_split(w, st, r->text) != 0) {
    wio_error(&w->out, r->it.id, 500, "synthesis_failed", "the text could not be tokenized");
    sp_end_current(st);
    return -1;
  }
  if (st->n_chunks == 0) { /* only spaces: nothing to say */
    sp_done(w, "stop");
    return -1;
  }
  if (st->have_last && st->last_seed == sp_frame_seed(st, 0) && st->latent > 0 &&
      st->latent <= 64) {
    /* clip would not reseed: one throw-away GEN_WAV with another seed forces it */
    float zero[64] = {0};
    struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
    struct mtmd_gen_out out;
    in.type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
    in.feats = zero;
    in.n_feats = st->latent;
    in.seed = SP_WAV_SEED;
    if (mtmd_gen_audio_process(w->mtmd, &in, &out) == 0) sp_note_seed(st, SP_WAV_SEED);
  }
  return 0;
}

/* The current chunk is over: decode what is buffered, restart the decoder, go on. */
static int sp_finish_chunk(worker *w) {
  speech_state *st = w->speech;
  if (sp_flush(w) != 0) return -1;
  st->dec_state_n = 0; /* the next chunk's audio is not continuous with this one */
  st->prompted = false;
  st->chunk++;
  return 0;
}

void speech_step(worker *w) {
  if (w->speech_q3) {
    q3s_step(w);
    return;
  }
  speech_state *st = w->speech;
  if (!st) return;
  if (!st->cur) {
    if (!st->q.head || sp_start(w) != 0) return;
  }
  char msg[512];
  wio_id id = st->cur->it.id;
  if (!st->prompted) {
    if (st->chunk >= st->n_chunks) {
      sp_done(w, "stop");
      return;
    }
    if (sp_prompt(w, msg, sizeof msg) != 0) {
      bool bad_voice = strncmp(msg, "voice ", 6) == 0;
      wio_error(&w->out, id, bad_voice ? 400 : 500,
                bad_voice ? "invalid_voice" : "synthesis_failed", "%s", msg);
      sp_end_current(st);
    }
    return;
  }
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_CODE;
  in.embd = st->h;
  in.seed = sp_frame_seed(st, st->frame_no++);
  in.temp = st->temp;
  if (mtmd_gen_audio_process(w->mtmd, &in, &out) != 0 || !out.feats || out.n_feats == 0 ||
      out.n_feats > 4096 || !out.embd) {
    wio_error(&w->out, id, 500, "synthesis_failed", "the audio generator failed");
    sp_end_current(st);
    return;
  }
  sp_note_seed(st, in.seed);
  if (out.is_eos && st->eos_step < 0) st->eos_step = st->step;
  /* the stopping step's frame is dropped, as the reference does */
  bool chunk_done = (st->eos_step >= 0 && st->step >= st->eos_step + st->tail_frames) ||
                    st->step >= st->budget || st->pos + 1 >= w->n_ctx_seq;
  if (chunk_done) {
    if (sp_finish_chunk(w) != 0) goto fail;
    return;
  }
  if (!st->feats) {
    st->latent = out.n_feats;
    st->feats = malloc((size_t)SP_WINDOW * out.n_feats * sizeof(float));
    if (!st->feats) goto fail;
  }
  if (out.n_feats != st->latent) goto fail;
  memcpy(st->feats + st->n_feats, out.feats, out.n_feats * sizeof(float));
  st->n_feats += out.n_feats;
  st->step++;
  /* the fed-back embedding is only valid until the next process() call: decode it first */
  if (sp_decode_rows(w, out.embd, 1) != 0) goto fail;
  if (st->n_feats / st->latent >= SP_WINDOW && sp_flush(w) != 0) goto fail;
  return;
fail:
  wio_error(&w->out, id, 500, "synthesis_failed", "speech synthesis failed");
  sp_end_current(st);
}
