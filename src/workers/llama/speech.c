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
 * speak's fields, voices, sentence chunks, the backbone decode, audio frames, seeds); neither of
 * those calls back up into this file. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define SP_CHUNK_TOKENS 50 /* MAX_TOKEN_PER_CHUNK of the reference */
#define SP_WINDOW 8        /* latents per GEN_WAV call */
#define SP_FRAME_RATE 12.5
#define SP_MAX_LATENT 64 /* floats per latent the reseeding GEN_WAV can hold */

struct speech_state {
  spq_core c; /* first: the queue, voices, the request being spoken, seeds */
  llama_token audio_bos, bos_voice;
  float temp;
  int pack_tail; /* frames after end-of-speech the variant pins, 0 = by length */
  bool pad_short;
  /* the request being spoken */
  int n_voice_pos;
  float *feats;
  size_t n_feats, latent;
  int eos_step, tail_frames;
};

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
    int rc = spq_add_sentence(w, &st->c, p, strlen(p), SP_CHUNK_TOKENS);
    free(p);
    if (rc != 0) return -1;
  }
  return 0;
}

/* ---- init ---------------------------------------------------------------------------------- */

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
  st->audio_bos = spq_find_token(w, "<|audio_bos|>");
  st->bos_voice = spq_find_token(w, "<|bos_before_voice|>");
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
  if (spq_core_init(w, &st->c, voices, err, err_len) != 0) return -1;
  LOG_I("speech: pocket-tts (variant \"%s\", temp %.2f), %d Hz, %d voices", var, (double)st->temp,
        w->sample_rate, st->c.n_voices);
  return 0;
}

static void sp_end_current(speech_state *st) {
  spq_end(&st->c);
  free(st->feats);
  st->feats = NULL;
  st->n_feats = 0;
}

void speech_free(worker *w) {
  q3s_free(w);
  speech_state *st = w->speech;
  if (!st) return;
  sp_end_current(st);
  spq_core_free(&st->c);
  free(st);
  w->speech = NULL;
}

bool speech_busy(const worker *w) { return q3s_busy(w) || (w->speech && spq_busy(&w->speech->c)); }

/* ---- requests ------------------------------------------------------------------------------ */

void speech_submit(worker *w, wio_id id, const json_t *hdr, const void *clip, size_t clip_len) {
  if (w->speech_q3) {
    q3s_submit(w, id, hdr, clip, clip_len);
    return;
  }
  speech_state *st = w->speech;
  spq_req_args a;
  if (spq_args(w, &st->c, id, hdr, &a) != 0) return;
  spq_enqueue(w, &st->c, id, &a, -1, clip, clip_len);
}

static void sp_done(worker *w, const char *reason) {
  speech_state *st = w->speech;
  spq_reply_done(w, st->c.cur->it.id, st->c.samples, reason);
  sp_end_current(st);
}

void speech_cancel(worker *w, wio_id id) {
  if (w->speech_q3) {
    q3s_cancel(w, id);
    return;
  }
  speech_state *st = w->speech;
  if (!st) return;
  if (st->c.cur && st->c.cur->it.id == id)
    sp_done(w, "cancelled");
  else
    spq_cancel_waiting(w, &st->c, id);
}

void speech_voices(worker *w, wio_id id) {
  if (w->speech_q3) {
    q3s_voices(w, id);
    return;
  }
  spq_reply_voices(w, id, w->speech ? &w->speech->c : NULL);
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* GEN_WAV over the buffered latents; the PCM leaves as one `audio` frame. 0 or -1. */
static int sp_flush(worker *w) {
  speech_state *st = w->speech;
  if (st->n_feats == 0) return 0;
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
  in.feats = st->feats;
  in.n_feats = st->n_feats;
  in.seed = SPQ_WAV_SEED;
  in.state_data = st->c.dec_state;
  in.state_size = st->c.dec_state_n;
  if (mtmd_gen_audio_process(w->mtmd, &in, &out) != 0 || (out.n_samples && !out.audio)) return -1;
  spq_note_seed(&st->c, SPQ_WAV_SEED);
  st->n_feats = 0;
  if (spq_keep_state(&st->c, &out) != 0) return -1;
  if (out.n_samples == 0) return 0;
  spq_send_audio(w, &st->c, out.audio, out.n_samples);
  return 0;
}

/* Prompt chunk st->c.chunk on top of the voice: [bos_before_voice] voice rows (first chunk only;
 * later ones rewind to them), the chunk's tokens, <|audio_bos|>. 0, or -1 + msg. */
static int sp_prompt(worker *w, char *msg, size_t msg_len) {
  speech_state *st = w->speech;
  spq_core *c = &st->c;
  const spq_chunk *ch = &c->chunks[c->chunk];
  if (c->chunk == 0) {
    llama_memory_clear(llama_get_memory(w->ctx), true);
    c->pos = 0;
    spq_voice *v = spq_cur_voice(c);
    if (v) {
      if (!mtmd_support_audio(w->mtmd)) {
        snprintf(msg, msg_len, "this model's projector has no voice encoder");
        return -1;
      }
      if (spq_voice_encode(w, v, w->n_ctx_seq / 2, msg, msg_len) != 0) return -1;
      if (st->bos_voice >= 0 && spq_decode(w, c, NULL, &st->bos_voice, 1, 1) != 0) goto fail;
      if (spq_decode(w, c, v->rows, NULL, v->n_rows, 1) != 0) goto fail;
    }
    st->n_voice_pos = c->pos;
  } else {
    llama_memory_seq_rm(llama_get_memory(w->ctx), 0, st->n_voice_pos, -1);
    c->pos = st->n_voice_pos;
  }
  if (c->pos + ch->n + 1 + 8 > w->n_ctx_seq) {
    snprintf(msg, msg_len, "the voice and a sentence of %d tokens do not fit the context (%d)",
             ch->n, w->n_ctx_seq);
    return -1;
  }
  llama_token *t = malloc((size_t)(ch->n + 1) * sizeof *t);
  if (!t) goto fail;
  memcpy(t, ch->toks, (size_t)ch->n * sizeof *t);
  t[ch->n] = st->audio_bos;
  int rc = spq_decode(w, c, NULL, t, ch->n + 1, 1);
  free(t);
  if (rc != 0) goto fail;
  /* the reference's _estimate_max_gen_len and tail guess, in frames */
  c->budget = (int)ceil((ch->n / 3.0 + 2.0) * SP_FRAME_RATE);
  st->tail_frames = st->pack_tail > 0 ? st->pack_tail : ch->n <= 6 ? 5 : 3;
  c->step = 0;
  st->eos_step = -1;
  c->prompted = true;
  return 0;
fail:
  snprintf(msg, msg_len, "the backbone failed to decode the prompt");
  return -1;
}

/* Start the next waiting request. 0, or -1 when it failed (answered). */
static int sp_start(worker *w) {
  speech_state *st = w->speech;
  spq_req *r = spq_begin(&st->c);
  st->n_feats = 0;
  if (sp_split(w, st, r->text) != 0) {
    wio_error(&w->out, r->it.id, 500, "synthesis_failed", "the text could not be tokenized");
    sp_end_current(st);
    return -1;
  }
  if (st->c.n_chunks == 0) { /* only spaces: nothing to say */
    sp_done(w, "stop");
    return -1;
  }
  if (st->latent > 0 && st->latent <= SP_MAX_LATENT) {
    float zero[SP_MAX_LATENT] = {0};
    struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
    in.feats = zero;
    in.n_feats = st->latent;
    spq_force_reseed(w, &st->c, &in);
  }
  return 0;
}

/* The current chunk is over: decode what is buffered, restart the decoder, go on. */
static int sp_finish_chunk(worker *w) {
  speech_state *st = w->speech;
  if (sp_flush(w) != 0) return -1;
  st->c.dec_state_n = 0; /* the next chunk's audio is not continuous with this one */
  st->c.prompted = false;
  st->c.chunk++;
  return 0;
}

void speech_step(worker *w) {
  if (w->speech_q3) {
    q3s_step(w);
    return;
  }
  speech_state *st = w->speech;
  if (!st) return;
  spq_core *c = &st->c;
  if (!c->cur) {
    if (!c->q.head || sp_start(w) != 0) return;
  }
  char msg[512];
  wio_id id = c->cur->it.id;
  if (!c->prompted) {
    if (c->chunk >= c->n_chunks) {
      sp_done(w, "stop");
      return;
    }
    if (sp_prompt(w, msg, sizeof msg) != 0) {
      spq_reply_prompt_failed(w, id, msg);
      sp_end_current(st);
    }
    return;
  }
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_CODE;
  in.embd = c->h;
  in.seed = spq_frame_seed(c, c->frame_no++);
  in.temp = st->temp;
  if (mtmd_gen_audio_process(w->mtmd, &in, &out) != 0 || !out.feats || out.n_feats == 0 ||
      out.n_feats > 4096 || !out.embd) {
    wio_error(&w->out, id, 500, "synthesis_failed", "the audio generator failed");
    sp_end_current(st);
    return;
  }
  spq_note_seed(c, in.seed);
  if (out.is_eos && st->eos_step < 0) st->eos_step = c->step;
  /* the stopping step's frame is dropped, as the reference does */
  bool chunk_done = (st->eos_step >= 0 && c->step >= st->eos_step + st->tail_frames) ||
                    c->step >= c->budget || c->pos + 1 >= w->n_ctx_seq;
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
  c->step++;
  /* the fed-back embedding is only valid until the next process() call: decode it first */
  if (spq_decode(w, c, out.embd, NULL, 1, 1) != 0) goto fail;
  if (st->n_feats / st->latent >= SP_WINDOW && sp_flush(w) != 0) goto fail;
  return;
fail:
  wio_error(&w->out, id, 500, "synthesis_failed", "speech synthesis failed");
  sp_end_current(st);
}
