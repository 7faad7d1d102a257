/* speech_qwen3.c — Qwen3-TTS through llama.cpp's experimental mtmd audio-generation API
 * (docs/TTS.md). The talker (a qwen3vl backbone whose output head is the 3072-entry codec head)
 * samples codebook 0 of each 12.5 Hz frame; the projector's code predictor (GEN_CODE) samples
 * the other 15 codebooks and returns the embedding fed back to the talker (plus the <tts_pad>
 * row); code2wav (GEN_WAV) turns windows of 72 frames into 24 kHz PCM, carrying its state.
 *
 * The prompt rows are sums of token-embedding rows (text token + codec pad, ...), read from the
 * GGUF's token_embd.weight (llama.cpp has no C call for them). The text is cut into sentences;
 * each sentence is its own prompt (KV cache cleared, decoder state restarted) and ends on
 * <|codec_eos_token|> or its frame budget. Audio leaves per full window, at the end of each
 * sentence, and once early in a request's first window (code2wav is causal, so a window decoded
 * early and again later agrees on the frames both saw; only the new samples are sent).
 *
 * Same protocol as speech.c (speak / voices / cancel; one request at a time, a FIFO behind it;
 * one speech_step = one frame). Same request and seed → same bytes: the talker's sampler and
 * every GEN_CODE seed are pure functions of (seed, frame). Called only by speech.c (the front);
 * it calls speech_queue.c (what both loops share) below it and must never call back into
 * speech.c. */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "gguf.h"
#include "log.h"
#include "worker.h"

#define Q3_CHUNK_TOKENS 120 /* a longer sentence is cut every this many tokens */
#define Q3_N_CODEC 3072     /* the codec head: the vocabulary's last 3072 tokens */
#define Q3_N_CODES 2048     /* codes 0..2047 may be sampled for codebook 0 */
#define Q3_GROUPS 16        /* codes per frame */
#define Q3_WINDOW 72        /* frames per GEN_WAV (clip.cpp's wav_tfm_swa) */
#define Q3_FIRST_EMIT 12    /* frames before the first audio of a request (~1 s) */
#define Q3_MAX_TOP_K 256
#define Q3_POS_STREAMS 4 /* M-RoPE: each position given 4 times */

struct q3s_state {
  spq_core c; /* first: the queue, voices, the request being spoken, seeds */
  /* token ids */
  llama_token codec0, codec_eos, codec_pad, codec_bos, think, think_bos, think_eos;
  llama_token tts_pad, tts_bos, tts_eod, lang_default;
  llama_token role[3]; /* <|im_start|> assistant \n */
  int n_role;
  /* token_embd.weight rows, read from the file */
  int emb_fd;
  size_t emb_off, emb_row_bytes;
  enum ggml_type emb_type;
  int64_t emb_rows;
  void *emb_scratch;
  float *emb_tmp, *pad_row;
  /* sampling */
  int top_k;
  float temp, top_p;
  /* the request being spoken */
  float *fb;
  int32_t *codes;        /* the window: Q3_WINDOW x 16 */
  int n_win, n_sent_win; /* frames in the window; of them already sent as audio */
  bool first_window;     /* the sentence's first window: one early GEN_WAV after Q3_FIRST_EMIT */
  /* where the time goes, for the log line at the end of a request (ms) */
  double t_start, t_talker, t_code, t_wav;
  int n_wav;
};

/* ---- sampling ------------------------------------------------------------------------------ */

/* A uniform in [0, 1) from (seed, frame): the talker's draw for that frame. */
static double q3_uniform(const q3s_state *st, uint32_t k) {
  uint64_t z = ((uint64_t)st->c.seed_base << 32 | k) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Sample codebook 0 from the codec head: the 2048 codes and <|codec_eos_token|> only (the other
 * codec entries are control rows the talker never emits), top-k, temperature, top-p. Returns
 * the token. */
static llama_token q3_sample(const q3s_state *st, const float *logits, double u) {
  llama_token cand[Q3_MAX_TOP_K];
  float lg[Q3_MAX_TOP_K];
  int k = st->top_k, n = 0;
  for (int i = 0; i <= Q3_N_CODES; i++) {
    llama_token t = i < Q3_N_CODES ? st->codec0 + i : st->codec_eos;
    float v = logits[t];
    if (!isfinite(v)) continue;
    if (n < k) {
      int j = n++;
      while (j > 0 && lg[j - 1] < v) lg[j] = lg[j - 1], cand[j] = cand[j - 1], j--;
      lg[j] = v, cand[j] = t;
    } else if (v > lg[n - 1]) {
      int j = n - 1;
      while (j > 0 && lg[j - 1] < v) lg[j] = lg[j - 1], cand[j] = cand[j - 1], j--;
      lg[j] = v, cand[j] = t;
    }
  }
  if (n == 0) return st->codec_eos;
  if (st->temp <= 0.0f) return cand[0];
  double p[Q3_MAX_TOP_K], sum = 0;
  for (int i = 0; i < n; i++) sum += p[i] = exp((double)(lg[i] - lg[0]) / st->temp);
  /* top-p over the sorted candidates (the crossing one kept) */
  double keep = 0;
  int m = 0;
  while (m < n && keep < st->top_p * sum) keep += p[m++];
  double x = u * keep;
  for (int i = 0; i < m; i++) {
    if (x < p[i]) return cand[i];
    x -= p[i];
  }
  return cand[m - 1];
}

/* ---- token_embd rows ----------------------------------------------------------------------- */

static int q3_emb_open(q3s_state *st, const char *path, int n_embd, char *err, size_t err_len) {
  struct ggml_context *meta = NULL;
  struct gguf_init_params gp = {.no_alloc = true, .ctx = &meta};
  struct gguf_context *g = gguf_init_from_file(path, gp);
  int rc = -1;
  if (g && meta) {
    int64_t ti = gguf_find_tensor(g, "token_embd.weight");
    struct ggml_tensor *t = ggml_get_tensor(meta, "token_embd.weight");
    if (ti >= 0 && t && t->ne[0] == n_embd && ggml_get_type_traits(t->type)->to_float) {
      st->emb_off = gguf_get_data_offset(g) + gguf_get_tensor_offset(g, ti);
      st->emb_type = t->type;
      st->emb_rows = t->ne[1];
      st->emb_row_bytes = ggml_row_size(t->type, t->ne[0]);
      st->emb_fd = open(path, O_RDONLY | O_CLOEXEC);
      rc = st->emb_fd >= 0 ? 0 : -1;
    }
  }
  if (g) gguf_free(g);
  if (meta) ggml_free(meta);
  if (rc == 0) {
    st->emb_scratch = malloc(st->emb_row_bytes);
    st->emb_tmp = malloc((size_t)n_embd * sizeof(float));
    if (!st->emb_scratch || !st->emb_tmp) rc = -1;
  }
  if (rc != 0) snprintf(err, err_len, "cannot read token_embd.weight from %.300s", path);
  return rc;
}

/* out += row(tok). 0 or -1. */
static int q3_emb_add(q3s_state *st, llama_token tok, float *out, int n_embd) {
  if (tok < 0 || tok >= st->emb_rows) return -1;
  off_t at = (off_t)(st->emb_off + (size_t)tok * st->emb_row_bytes);
  if (pread(st->emb_fd, st->emb_scratch, st->emb_row_bytes, at) != (ssize_t)st->emb_row_bytes)
    return -1;
  ggml_get_type_traits(st->emb_type)->to_float(st->emb_scratch, st->emb_tmp, n_embd);
  for (int i = 0; i < n_embd; i++) out[i] += st->emb_tmp[i];
  return 0;
}

/* ---- init ---------------------------------------------------------------------------------- */

/* <|codec_language_NAME|> for an ISO code (en, de, ...) or a name (english); -1 if unknown. */
static llama_token q3_language(const worker *w, const char *lang) {
  static const char *const codes[][2] = {
      {"zh", "chinese"},    {"en", "english"}, {"de", "german"},   {"it", "italian"},
      {"pt", "portuguese"}, {"es", "spanish"}, {"ja", "japanese"}, {"ko", "korean"},
      {"fr", "french"},     {"ru", "russian"},
  };
  char name[48], tok[80];
  size_t n = strlen(lang);
  if (n == 0 || n >= sizeof name) return -1;
  for (size_t i = 0; i <= n; i++) name[i] = (char)tolower((unsigned char)lang[i]);
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (!strcmp(name, codes[i][0])) snprintf(name, sizeof name, "%s", codes[i][1]);
  for (size_t i = 0; name[i]; i++)
    if (!isalnum((unsigned char)name[i]) && name[i] != '_') return -1;
  snprintf(tok, sizeof tok, "<|codec_language_%s|>", name);
  return spq_find_token(w, tok);
}

int q3s_init(worker *w, const char *model_path, const json_t *voices, char *err, size_t err_len) {
  q3s_state *st = calloc(1, sizeof *st);
  if (!st) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  w->speech_q3 = st;
  st->emb_fd = -1;
  struct mtmd_gen_audio_info info = mtmd_gen_audio_get_info(w->mtmd);
  w->sample_rate = info.sample_rate > 0 ? info.sample_rate : 24000;
  static const char *const names[] = {
      "<|codec_0|>",     "<|codec_eos_token|>", "<|codec_pad|>",       "<|codec_bos|>",
      "<|codec_think|>", "<|codec_think_bos|>", "<|codec_think_eos|>", "<tts_pad>",
      "<tts_text_bos>",  "<tts_text_eod>"};
  llama_token *dst[] = {&st->codec0,  &st->codec_eos, &st->codec_pad, &st->codec_bos,
                        &st->think,   &st->think_bos, &st->think_eos, &st->tts_pad,
                        &st->tts_bos, &st->tts_eod};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if ((*dst[i] = spq_find_token(w, names[i])) < 0) {
      snprintf(err, err_len, "the vocabulary has no %s: not a Qwen3-TTS talker", names[i]);
      return -1;
    }
  }
  int32_t n_vocab = llama_vocab_n_tokens(w->vocab);
  if (st->codec0 + Q3_N_CODES > n_vocab || st->codec0 < n_vocab - Q3_N_CODEC) {
    snprintf(err, err_len, "<|codec_0|> is not at the start of the vocabulary's last %d tokens",
             Q3_N_CODEC);
    return -1;
  }
  st->lang_default = q3_language(w, "english");
  if (st->lang_default < 0) {
    snprintf(err, err_len, "the vocabulary has no <|codec_language_english|>");
    return -1;
  }
  llama_token *role = NULL;
  int32_t nr = 0;
  const char *rs = "<|im_start|>assistant\n";
  if (tok_tokenize(w, rs, strlen(rs), false, true, &role, &nr) != 0 || nr < 1 || nr > 3) {
    free(role);
    snprintf(err, err_len, "the vocabulary does not tokenize the assistant role");
    return -1;
  }
  memcpy(st->role, role, (size_t)nr * sizeof *role);
  st->n_role = nr;
  free(role);
  if (q3_emb_open(st, model_path, w->n_embd, err, err_len) != 0) return -1;
  st->fb = malloc((size_t)w->n_embd * sizeof(float));
  st->pad_row = calloc((size_t)w->n_embd, sizeof(float));
  st->codes = malloc(sizeof(int32_t) * Q3_WINDOW * Q3_GROUPS);
  if (!st->fb || !st->pad_row || !st->codes ||
      q3_emb_add(st, st->tts_pad, st->pad_row, w->n_embd) != 0) {
    snprintf(err, err_len, "out of memory, or token_embd.weight is unreadable");
    return -1;
  }
  struct mtmd_gen_inp def = mtmd_gen_inp_default(w->mtmd);
  st->top_k = def.top_k > 0 && def.top_k <= Q3_MAX_TOP_K ? def.top_k : 50;
  st->top_p = def.top_p > 0 && def.top_p <= 1 ? def.top_p : 1.0f;
  st->temp = def.temp > 0 ? def.temp : 0.9f;
  if (spq_core_init(w, &st->c, voices, err, err_len) != 0) return -1;
  for (int i = 0; i < st->c.n_voices; i++) {
    const spq_voice *v = &st->c.voices[i];
    if (v->lang && q3_language(w, v->lang) < 0) {
      snprintf(err, err_len, "voice '%s': unknown language '%.40s'", v->name, v->lang);
      return -1;
    }
  }
  LOG_I("speech: qwen3-tts, %d Hz, top_k %d, temp %.2f, token_embd %s, %d voices", w->sample_rate,
        st->top_k, (double)st->temp, ggml_type_name(st->emb_type), st->c.n_voices);
  return 0;
}

static void q3_end_current(q3s_state *st) {
  spq_end(&st->c);
  st->n_win = st->n_sent_win = 0;
}

void q3s_free(worker *w) {
  q3s_state *st = w->speech_q3;
  if (!st) return;
  q3_end_current(st);
  spq_core_free(&st->c);
  if (st->emb_fd >= 0) close(st->emb_fd);
  free(st->emb_scratch);
  free(st->emb_tmp);
  free(st->pad_row);
  free(st->codes);
  free(st->fb);
  free(st);
  w->speech_q3 = NULL;
}

bool q3s_busy(const worker *w) { return w->speech_q3 && spq_busy(&w->speech_q3->c); }

/* ---- requests ------------------------------------------------------------------------------ */

void q3s_submit(worker *w, wio_id id, const json_t *hdr, const void *clip, size_t clip_len) {
  q3s_state *st = w->speech_q3;
  const json_t *lg = json_object_get(hdr, "language");
  if (lg && !json_is_null(lg) && !json_is_string(lg)) {
    wio_error(&w->out, id, 400, "invalid_request", "\"language\" must be a string");
    return;
  }
  spq_req_args a;
  if (spq_args(w, &st->c, id, hdr, &a) != 0) return;
  llama_token lang = st->lang_default;
  /* the request's language, else the voice's, else English */
  const char *ln = json_is_string(lg) && json_string_length(lg) ? json_string_value(lg)
                   : a.voice >= 0                               ? st->c.voices[a.voice].lang
                                                                : NULL;
  if (ln && (lang = q3_language(w, ln)) < 0) {
    wio_error(&w->out, id, 400, "invalid_language",
              "unknown language '%.40s' (zh, en, de, it, pt, es, ja, ko, fr, ru)", ln);
    free(a.text);
    return;
  }
  spq_enqueue(w, &st->c, id, &a, lang, clip, clip_len);
}

static void q3_done(worker *w, const char *reason) {
  q3s_state *st = w->speech_q3;
  LOG_I(
      "speak %lld: %s, %u frames, %.2f s of audio in %.0f ms: talker %.0f ms, code predictor %.0f "
      "ms, "
      "code2wav %.0f ms (%d calls)",
      (long long)st->c.cur->it.id, reason, st->c.frame_no, (double)st->c.samples / w->sample_rate,
      (sy_mono_s() * 1e3) - st->t_start, st->t_talker, st->t_code, st->t_wav, st->n_wav);
  spq_reply_done(w, st->c.cur->it.id, st->c.samples, reason);
  q3_end_current(st);
}

void q3s_cancel(worker *w, wio_id id) {
  q3s_state *st = w->speech_q3;
  if (st->c.cur && st->c.cur->it.id == id)
    q3_done(w, "cancelled");
  else
    spq_cancel_waiting(w, &st->c, id);
}

void q3s_voices(worker *w, wio_id id) { spq_reply_voices(w, id, &w->speech_q3->c); }

/* ---- text ---------------------------------------------------------------------------------- */

/* Sentences as token chunks; the text is tokenized without specials (an "<|im_end|>" typed by
 * a client stays text). 0, or -1 on out of memory / tokenizer failure. */
static int q3_split(worker *w, q3s_state *st, const char *text) {
  size_t n = strlen(text), i = 0;
  while (i < n) {
    size_t e = spq_sentence_end(text, n, i), b = i;
    i = e;
    while (b < e && isspace((unsigned char)text[b])) b++;
    while (e > b && isspace((unsigned char)text[e - 1])) e--;
    if (b == e) continue;
    if (spq_add_sentence(w, &st->c, text + b, e - b, Q3_CHUNK_TOKENS) != 0) return -1;
  }
  return 0;
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* The talker over n embedding rows at st->c.pos, timed. 0 or -1. */
static int q3_decode_rows(worker *w, const float *rows, int n) {
  q3s_state *st = w->speech_q3;
  double t0 = (sy_mono_s() * 1e3);
  int rc = spq_decode(w, &st->c, rows, NULL, n, Q3_POS_STREAMS);
  st->t_talker += (sy_mono_s() * 1e3) - t0;
  return rc;
}

/* GEN_WAV over the window's frames (from the state at the window's start); sends the samples
 * of the frames not sent yet. keep: the window is complete, its state becomes the next
 * window's. 0 or -1. */
static int q3_wav(worker *w, bool keep) {
  q3s_state *st = w->speech_q3;
  if (st->n_win == 0 || st->n_win == st->n_sent_win) return 0;
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
  in.codes = st->codes;
  in.n_codes = (size_t)st->n_win * Q3_GROUPS;
  in.seed = SPQ_WAV_SEED;
  in.state_data = st->c.dec_state_n ? st->c.dec_state : NULL;
  in.state_size = st->c.dec_state_n;
  double t0 = (sy_mono_s() * 1e3);
  int rc = mtmd_gen_audio_process(w->mtmd, &in, &out);
  st->t_wav += (sy_mono_s() * 1e3) - t0;
  st->n_wav++;
  if (rc != 0 || !out.audio || out.n_samples == 0 || out.n_samples % (size_t)st->n_win) return -1;
  spq_note_seed(&st->c, SPQ_WAV_SEED);
  size_t per = out.n_samples / (size_t)st->n_win, from = per * (size_t)st->n_sent_win;
  spq_send_audio(w, &st->c, out.audio + from, out.n_samples - from);
  st->n_sent_win = st->n_win;
  if (keep) {
    if (spq_keep_state(&st->c, &out) != 0) return -1;
    st->n_win = st->n_sent_win = 0;
    st->first_window = false;
  }
  return 0;
}

/* Prompt chunk st->c.chunk: role rows; tts_pad + think / think_bos / language / think_eos;
 * tts_pad + speaker x-vector (a voice); tts_text_bos + codec_pad; each text token + codec_pad;
 * tts_text_eod + codec_pad; tts_pad + codec_bos. 0, or -1 + msg. */
static int q3_prompt(worker *w, char *msg, size_t msg_len) {
  q3s_state *st = w->speech_q3;
  spq_core *c = &st->c;
  const spq_chunk *ch = &c->chunks[c->chunk];
  const int E = w->n_embd;
  float *xvec = NULL;
  spq_voice *v = spq_cur_voice(c);
  if (v) {
    if (!mtmd_support_audio(w->mtmd)) {
      snprintf(msg, msg_len, "voice '%s': this model's projector has no speaker encoder", v->name);
      return -1;
    }
    /* the speaker encoder gives one x-vector per clip, whatever its length */
    if (spq_voice_encode(w, v, 1, msg, msg_len) != 0) return -1;
    xvec = v->rows;
  }
  int n = st->n_role + 4 + (xvec ? 1 : 0) + 1 + ch->n + 2;
  if (n + 16 > w->n_ctx_seq) {
    snprintf(msg, msg_len, "a sentence of %d tokens does not fit the context (%d)", ch->n,
             w->n_ctx_seq);
    return -1;
  }
  float *rows = calloc((size_t)n * (size_t)E, sizeof(float));
  if (!rows) goto fail;
  llama_token a[Q3_CHUNK_TOKENS + 16], b[Q3_CHUNK_TOKENS + 16];
  int r = 0;
  for (int i = 0; i < st->n_role; i++) a[r] = st->role[i], b[r++] = -1;
  const llama_token think[4] = {st->think, st->think_bos, c->cur->lang, st->think_eos};
  for (int i = 0; i < 4; i++) a[r] = st->tts_pad, b[r++] = think[i];
  int xrow = -1;
  if (xvec) xrow = r, a[r] = st->tts_pad, b[r++] = -1;
  a[r] = st->tts_bos, b[r++] = st->codec_pad;
  for (int i = 0; i < ch->n; i++) a[r] = ch->toks[i], b[r++] = st->codec_pad;
  a[r] = st->tts_eod, b[r++] = st->codec_pad;
  a[r] = st->tts_pad, b[r++] = st->codec_bos;
  for (int i = 0; i < r; i++) {
    float *row = rows + (size_t)i * (size_t)E;
    if (q3_emb_add(st, a[i], row, E) != 0 || (b[i] >= 0 && q3_emb_add(st, b[i], row, E) != 0)) {
      free(rows);
      goto fail;
    }
    if (i == xrow)
      for (int k = 0; k < E; k++) row[k] += xvec[k];
  }
  llama_memory_clear(llama_get_memory(w->ctx), true);
  c->pos = 0;
  int rc = q3_decode_rows(w, rows, r);
  free(rows);
  if (rc != 0) goto fail;
  /* ~4 frames per token is ordinary speech; the budget stops a talker that never says EOS */
  c->budget = 16 + 8 * ch->n;
  if (c->budget > w->n_ctx_seq - c->pos - 1) c->budget = w->n_ctx_seq - c->pos - 1;
  c->step = 0;
  c->prompted = true;
  st->first_window = true;
  st->n_win = st->n_sent_win = 0;
  c->dec_state_n = 0; /* each sentence starts the decoder afresh */
  return 0;
fail:
  snprintf(msg, msg_len, "the talker failed to decode the prompt");
  return -1;
}

/* Start the next waiting request. 0, or -1 when it failed (answered). */
static int q3_start(worker *w) {
  q3s_state *st = w->speech_q3;
  spq_req *r = spq_begin(&st->c);
  st->n_win = st->n_sent_win = 0;
  st->t_start = (sy_mono_s() * 1e3);
  st->t_talker = st->t_code = st->t_wav = 0;
  st->n_wav = 0;
  if (q3_split(w, st, r->text) != 0) {
    wio_error(&w->out, r->it.id, 500, "synthesis_failed", "the text could not be tokenized");
    q3_end_current(st);
    return -1;
  }
  if (st->c.n_chunks == 0) {
    q3_done(w, "stop");
    return -1;
  }
  int32_t zero[Q3_GROUPS] = {0}; /* one frame of code 0 */
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  in.codes = zero;
  in.n_codes = Q3_GROUPS;
  spq_force_reseed(w, &st->c, &in);
  return 0;
}

void q3s_step(worker *w) {
  q3s_state *st = w->speech_q3;
  spq_core *c = &st->c;
  if (!c->cur) {
    if (!c->q.head || q3_start(w) != 0) return;
  }
  char msg[512];
  wio_id id = c->cur->it.id;
  if (!c->prompted) {
    if (c->chunk >= c->n_chunks) {
      q3_done(w, "stop");
      return;
    }
    if (q3_prompt(w, msg, sizeof msg) != 0) {
      spq_reply_prompt_failed(w, id, msg);
      q3_end_current(st);
    }
    return;
  }
  const float *logits = llama_get_logits_ith(w->ctx, -1);
  if (!logits) goto fail;
  uint32_t k = c->frame_no++;
  llama_token tok = q3_sample(st, logits, q3_uniform(st, k));
  if (tok == st->codec_eos || c->step >= c->budget) {
    /* the sentence is over: its last audio, then the next sentence */
    if (q3_wav(w, false) != 0) goto fail;
    c->prompted = false;
    c->chunk++;
    return;
  }
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_CODE;
  in.code0 = tok - st->codec0;
  in.embd = c->h;
  in.top_k = st->top_k;
  in.top_p = st->top_p;
  in.seed = spq_frame_seed(c, k);
  double t0 = (sy_mono_s() * 1e3);
  int rc = mtmd_gen_audio_process(w->mtmd, &in, &out);
  st->t_code += (sy_mono_s() * 1e3) - t0;
  if (rc != 0 || out.n_codes != Q3_GROUPS || !out.codes || !out.embd) goto fail;
  spq_note_seed(c, in.seed);
  memcpy(st->codes + (size_t)st->n_win * Q3_GROUPS, out.codes, sizeof(int32_t) * Q3_GROUPS);
  st->n_win++;
  c->step++;
  /* the fed-back embedding is only valid until the next process() call: use it first */
  for (int i = 0; i < w->n_embd; i++) st->fb[i] = out.embd[i] + st->pad_row[i];
  if (q3_decode_rows(w, st->fb, 1) != 0) goto fail;
  if (st->n_win == Q3_WINDOW) {
    if (q3_wav(w, true) != 0) goto fail;
  } else if (st->first_window && st->n_sent_win == 0 && st->n_win == Q3_FIRST_EMIT) {
    if (q3_wav(w, false) != 0) goto fail;
  }
  return;
fail:
  wio_error(&w->out, id, 500, "synthesis_failed", "speech synthesis failed");
  q3_end_current(st);
}
