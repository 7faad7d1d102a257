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
 * it calls speech_queue.c and tok.c below it and must never call back into speech.c. */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "gguf.h"
#include "log.h"
#include "mtmd-helper.h"
#include "utf8.h"
#include "worker.h"

#define Q3_MAX_WAITING 256
#define Q3_CHUNK_TOKENS 120 /* a longer sentence is cut every this many tokens */
#define Q3_N_CODEC 3072     /* the codec head: the vocabulary's last 3072 tokens */
#define Q3_N_CODES 2048     /* codes 0..2047 may be sampled for codebook 0 */
#define Q3_GROUPS 16        /* codes per frame */
#define Q3_WINDOW 72        /* frames per GEN_WAV (clip.cpp's wav_tfm_swa) */
#define Q3_FIRST_EMIT 12    /* frames before the first audio of a request (~1 s) */
#define Q3_MAX_VOICES 64
#define Q3_WAV_SEED 0x80000000u /* GEN_WAV draws nothing; GEN_CODE seeds are all below this */
#define Q3_MAX_TOP_K 256

typedef struct q3_voice q3_voice;
typedef struct q3_req {
  spq_item it; /* first: the queue's link and the request's id */
  char *text;
  int voice;     /* index into st->voices, or -1 */
  q3_voice *own; /* a reference clip the request brought (voice_upload), or NULL */
  llama_token lang;
  uint32_t seed;
} q3_req;

struct q3_voice {
  char *name, *path, *lang;
  unsigned char *clip; /* or the clip itself (a WAV the daemon wrote), clip_len bytes */
  size_t clip_len;
  float *xvec; /* the speaker encoder's row (n_embd), made on first use */
};

typedef struct q3_chunk {
  llama_token *toks;
  int n;
} q3_chunk;

struct q3s_state {
  spq_fifo q; /* the requests waiting behind the current one */
  q3_voice voices[Q3_MAX_VOICES];
  int n_voices;
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
  uint32_t last_seed;
  bool have_last;
  /* the request being spoken */
  q3_req *cur;
  q3_chunk *chunks;
  int n_chunks, chunk;
  bool prompted;
  llama_pos pos;
  int step, budget;
  float *h, *fb;
  int32_t *codes;        /* the window: Q3_WINDOW x 16 */
  int n_win, n_sent_win; /* frames in the window; of them already sent as audio */
  bool first_window;     /* the sentence's first window: one early GEN_WAV after Q3_FIRST_EMIT */
  char *dec_state;
  size_t dec_state_n;
  uint32_t frame_no, seed_base;
  int64_t samples;
  /* where the time goes, for the log line at the end of a request (ms) */
  double t_start, t_talker, t_code, t_wav;
  int n_wav;
};

/* ---- seeds and sampling -------------------------------------------------------------------- */

/* GEN_CODE's seed for frame k: below 2^31, consecutive frames never share one (odd step mod
 * 2^31), so clip reseeds on every call. */
static uint32_t q3_frame_seed(const q3s_state *st, uint32_t k) {
  return (st->seed_base + k * 0x9E3779B1u) & 0x7fffffffu;
}

/* A uniform in [0, 1) from (seed, frame): the talker's draw for that frame. */
static double q3_uniform(const q3s_state *st, uint32_t k) {
  uint64_t z = ((uint64_t)st->seed_base << 32 | k) + 0x9e3779b97f4a7c15ULL;
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

static llama_token q3_find(const worker *w, const char *s) {
  int32_t n = llama_vocab_n_tokens(w->vocab);
  for (llama_token t = n - 1; t >= 0; t--) {
    const char *x = llama_vocab_get_text(w->vocab, t);
    if (x && strcmp(x, s) == 0) return t;
  }
  return -1;
}

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
  return q3_find(w, tok);
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
    if ((*dst[i] = q3_find(w, names[i])) < 0) {
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
  st->h = malloc((size_t)w->n_embd * sizeof(float));
  st->fb = malloc((size_t)w->n_embd * sizeof(float));
  st->pad_row = calloc((size_t)w->n_embd, sizeof(float));
  st->codes = malloc(sizeof(int32_t) * Q3_WINDOW * Q3_GROUPS);
  if (!st->h || !st->fb || !st->pad_row || !st->codes ||
      q3_emb_add(st, st->tts_pad, st->pad_row, w->n_embd) != 0) {
    snprintf(err, err_len, "out of memory, or token_embd.weight is unreadable");
    return -1;
  }
  struct mtmd_gen_inp def = mtmd_gen_inp_default(w->mtmd);
  st->top_k = def.top_k > 0 && def.top_k <= Q3_MAX_TOP_K ? def.top_k : 50;
  st->top_p = def.top_p > 0 && def.top_p <= 1 ? def.top_p : 1.0f;
  st->temp = def.temp > 0 ? def.temp : 0.9f;
  if (voices && !json_is_object(voices)) {
    snprintf(err, err_len, "load: \"voices\" must be an object {name: path}");
    return -1;
  }
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)voices, name, v) {
    /* {name: path} or {name: {audio: path, language?}} */
    const json_t *path = json_is_object(v) ? json_object_get(v, "audio") : v;
    const json_t *lang = json_is_object(v) ? json_object_get(v, "language") : NULL;
    if (!json_is_string(path) || (lang && !json_is_string(lang)) || st->n_voices >= Q3_MAX_VOICES) {
      snprintf(err, err_len, "load: \"voices\" takes at most %d {name: path} entries",
               Q3_MAX_VOICES);
      return -1;
    }
    q3_voice *qv = &st->voices[st->n_voices++];
    qv->name = strdup(name);
    qv->path = strdup(json_string_value(path));
    if (lang) qv->lang = strdup(json_string_value(lang));
    if (!qv->name || !qv->path || (lang && !qv->lang)) {
      snprintf(err, err_len, "out of memory");
      return -1;
    }
    if (qv->lang && q3_language(w, qv->lang) < 0) {
      snprintf(err, err_len, "voice '%s': unknown language '%.40s'", name, qv->lang);
      return -1;
    }
  }
  LOG_I("speech: qwen3-tts, %d Hz, top_k %d, temp %.2f, token_embd %s, %d voices", w->sample_rate,
        st->top_k, (double)st->temp, ggml_type_name(st->emb_type), st->n_voices);
  return 0;
}

static void q3_req_free(q3_req *r) {
  if (!r) return;
  if (r->own) {
    free(r->own->clip);
    free(r->own->xvec);
    free(r->own);
  }
  free(r->text);
  free(r);
}

static void q3_chunks_free(q3s_state *st) {
  for (int i = 0; i < st->n_chunks; i++) free(st->chunks[i].toks);
  free(st->chunks);
  st->chunks = NULL;
  st->n_chunks = st->chunk = 0;
}

static void q3_end_current(q3s_state *st) {
  q3_req_free(st->cur);
  st->cur = NULL;
  q3_chunks_free(st);
  free(st->dec_state);
  st->dec_state = NULL;
  st->dec_state_n = 0;
  st->n_win = st->n_sent_win = 0;
}

void q3s_free(worker *w) {
  q3s_state *st = w->speech_q3;
  if (!st) return;
  q3_end_current(st);
  for (spq_item *it; (it = spq_pop(&st->q));) q3_req_free((q3_req *)it);
  for (int i = 0; i < st->n_voices; i++) {
    free(st->voices[i].name);
    free(st->voices[i].path);
    free(st->voices[i].lang);
    free(st->voices[i].xvec);
  }
  if (st->emb_fd >= 0) close(st->emb_fd);
  free(st->emb_scratch);
  free(st->emb_tmp);
  free(st->pad_row);
  free(st->codes);
  free(st->h);
  free(st->fb);
  free(st);
  w->speech_q3 = NULL;
}

bool q3s_busy(const worker *w) {
  return w->speech_q3 && (w->speech_q3->cur || w->speech_q3->q.head);
}

/* ---- voices -------------------------------------------------------------------------------- */

/* The speaker encoder's x-vector of a voice's clip, made once. 0, or -1 + msg. */
static int q3_voice_xvec(worker *w, q3_voice *v, char *msg, size_t msg_len) {
  if (v->xvec) return 0;
  if (!mtmd_support_audio(w->mtmd)) {
    snprintf(msg, msg_len, "voice '%s': this model's projector has no speaker encoder", v->name);
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
      /* one x-vector per clip, whatever its length */
      if (mtmd_input_chunk_get_n_tokens(c) != 1 || mtmd_encode_chunk(w->mtmd, c) != 0) break;
      v->xvec = malloc((size_t)w->n_embd * sizeof(float));
      if (!v->xvec) break;
      memcpy(v->xvec, mtmd_get_output_embd(w->mtmd), (size_t)w->n_embd * sizeof(float));
      rc = 0;
      break;
    }
  }
  if (chunks) mtmd_input_chunks_free(chunks);
  mtmd_bitmap_free(bw.bitmap);
  if (rc == 0)
    LOG_I("voice '%s': speaker embedding from %s", v->name, v->clip ? "the request" : v->path);
  return rc;
}

/* ---- requests ------------------------------------------------------------------------------ */

void q3s_submit(worker *w, wio_id id, const json_t *hdr, const void *clip, size_t clip_len) {
  q3s_state *st = w->speech_q3;
  const json_t *lg = json_object_get(hdr, "language");
  if (lg && !json_is_null(lg) && !json_is_string(lg)) {
    wio_error(&w->out, id, 400, "invalid_request", "\"language\" must be a string");
    return;
  }
  spq_req_args a;
  if (spq_args(w, id, hdr, &a) != 0) return;
  int voice = -1;
  for (int i = 0; i < st->n_voices && *a.voice; i++)
    if (!strcmp(st->voices[i].name, a.voice)) voice = i;
  const char *refused = NULL;
  llama_token lang = st->lang_default;
  /* the request's language, else the voice's, else English */
  const char *ln = json_is_string(lg) && json_string_length(lg) ? json_string_value(lg)
                   : voice >= 0                                 ? st->voices[voice].lang
                                                                : NULL;
  if (*a.voice && voice < 0 && st->n_voices > 0) {
    wio_error(&w->out, id, 400, "invalid_voice",
              "unknown voice '%.100s' (GET /v1/audio/voices lists them)", a.voice);
    refused = "voice";
  } else if (ln && (lang = q3_language(w, ln)) < 0) {
    wio_error(&w->out, id, 400, "invalid_language",
              "unknown language '%.40s' (zh, en, de, it, pt, es, ja, ko, fr, ru)", ln);
    refused = "language";
  } else if (st->q.n >= Q3_MAX_WAITING) {
    wio_error(&w->out, id, 503, "overloaded", "too many speech requests are waiting");
    refused = "queue";
  }
  q3_req *r = refused ? NULL : calloc(1, sizeof *r);
  if (!r) {
    if (!refused) wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
    free(a.text);
    return;
  }
  r->text = a.text;
  if (clip_len) { /* a reference clip for this request only: encoded when its turn comes */
    static char uploaded[] = "uploaded";
    if (!(r->own = calloc(1, sizeof *r->own)) || !(r->own->clip = malloc(clip_len))) {
      q3_req_free(r);
      wio_error(&w->out, id, 500, "out_of_memory", "out of memory");
      return;
    }
    memcpy(r->own->clip, clip, clip_len);
    r->own->clip_len = clip_len;
    r->own->name = uploaded;
  }
  r->it.id = id;
  r->voice = voice;
  r->lang = lang;
  r->seed = a.seed;
  spq_push(&st->q, &r->it);
}

static void q3_done(worker *w, const char *reason) {
  q3s_state *st = w->speech_q3;
  LOG_I(
      "speak %lld: %s, %u frames, %.2f s of audio in %.0f ms: talker %.0f ms, code predictor %.0f "
      "ms, "
      "code2wav %.0f ms (%d calls)",
      (long long)st->cur->it.id, reason, st->frame_no, (double)st->samples / w->sample_rate,
      (sy_mono_s() * 1e3) - st->t_start, st->t_talker, st->t_code, st->t_wav, st->n_wav);
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:I, s:i, s:s}", "op", "done", "id", (json_int_t)st->cur->it.id,
                     "samples", (json_int_t)st->samples, "rate", w->sample_rate, "finish_reason",
                     reason),
           NULL, 0);
  q3_end_current(st);
}

void q3s_cancel(worker *w, wio_id id) {
  q3s_state *st = w->speech_q3;
  if (st->cur && st->cur->it.id == id) {
    q3_done(w, "cancelled");
    return;
  }
  q3_req *r = (q3_req *)spq_remove(&st->q, id);
  if (r) {
    spq_reply_cancelled(w, id);
    q3_req_free(r);
  }
}

void q3s_voices(worker *w, wio_id id) {
  q3s_state *st = w->speech_q3;
  const char *names[Q3_MAX_VOICES];
  int n = 0;
  for (int i = 0; i < st->n_voices; i++) names[n++] = st->voices[i].name;
  spq_reply_voices(w, id, names, n);
}

/* ---- text ---------------------------------------------------------------------------------- */

static int q3_push_chunk(q3s_state *st, const llama_token *t, int n) {
  q3_chunk *nc = realloc(st->chunks, (size_t)(st->n_chunks + 1) * sizeof *nc);
  if (!nc) return -1;
  st->chunks = nc;
  llama_token *c = malloc((size_t)n * sizeof *c);
  if (!c) return -1;
  memcpy(c, t, (size_t)n * sizeof *c);
  st->chunks[st->n_chunks++] = (q3_chunk){c, n};
  return 0;
}

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
    llama_token *toks = NULL;
    int32_t nt = 0;
    int rc = tok_tokenize(w, text + b, e - b, false, false, &toks, &nt);
    if (rc != 0) return -1;
    for (int32_t k = 0; k < nt && rc == 0; k += Q3_CHUNK_TOKENS)
      rc = q3_push_chunk(st, toks + k, nt - k < Q3_CHUNK_TOKENS ? nt - k : Q3_CHUNK_TOKENS);
    free(toks);
    if (rc != 0) return -1;
  }
  return 0;
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Decode n embedding rows at st->pos (4 equal M-RoPE position streams); h = the last hidden
 * state. The logits of the last row stay readable. 0 or -1. */
static int q3_decode_rows(worker *w, const float *rows, int n) {
  q3s_state *st = w->speech_q3;
  for (int done = 0; done < n;) {
    int k = n - done < w->n_batch ? n - done : w->n_batch;
    struct llama_batch b = llama_batch_init(4 * k, w->n_embd, 1);
    if (!b.embd) return -1;
    memcpy(b.embd, rows + (size_t)done * (size_t)w->n_embd,
           (size_t)k * (size_t)w->n_embd * sizeof(float));
    for (int i = 0; i < k; i++) {
      for (int s = 0; s < 4; s++) b.pos[s * k + i] = st->pos + i;
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
  in.seed = Q3_WAV_SEED;
  in.state_data = st->dec_state_n ? st->dec_state : NULL;
  in.state_size = st->dec_state_n;
  double t0 = (sy_mono_s() * 1e3);
  int rc = mtmd_gen_audio_process(w->mtmd, &in, &out);
  st->t_wav += (sy_mono_s() * 1e3) - t0;
  st->n_wav++;
  if (rc != 0 || !out.audio || out.n_samples == 0 || out.n_samples % (size_t)st->n_win) return -1;
  st->last_seed = Q3_WAV_SEED;
  st->have_last = true;
  size_t per = out.n_samples / (size_t)st->n_win, from = per * (size_t)st->n_sent_win;
  st->samples += (int64_t)(out.n_samples - from);
  wio_send(&w->out,
           json_pack("{s:s, s:I, s:i}", "op", "audio", "id", (json_int_t)st->cur->it.id, "rate",
                     w->sample_rate),
           out.audio + from, (out.n_samples - from) * sizeof(float));
  st->n_sent_win = st->n_win;
  if (keep) {
    char *ns = realloc(st->dec_state, out.state_size ? out.state_size : 1);
    if (!ns) return -1;
    st->dec_state = ns;
    memcpy(st->dec_state, out.state_data, out.state_size);
    st->dec_state_n = out.state_size;
    st->n_win = st->n_sent_win = 0;
    st->first_window = false;
  }
  return 0;
}

/* Prompt chunk st->chunk: role rows; tts_pad + think / think_bos / language / think_eos;
 * tts_pad + speaker x-vector (a voice); tts_text_bos + codec_pad; each text token + codec_pad;
 * tts_text_eod + codec_pad; tts_pad + codec_bos. 0, or -1 + msg. */
static int q3_prompt(worker *w, char *msg, size_t msg_len) {
  q3s_state *st = w->speech_q3;
  const q3_chunk *c = &st->chunks[st->chunk];
  const int E = w->n_embd;
  float *xvec = NULL;
  if (st->cur->own || st->cur->voice >= 0) {
    q3_voice *v = st->cur->own ? st->cur->own : &st->voices[st->cur->voice];
    if (q3_voice_xvec(w, v, msg, msg_len) != 0) return -1;
    xvec = v->xvec;
  }
  int n = st->n_role + 4 + (xvec ? 1 : 0) + 1 + c->n + 2;
  if (n + 16 > w->n_ctx_seq) {
    snprintf(msg, msg_len, "a sentence of %d tokens does not fit the context (%d)", c->n,
             w->n_ctx_seq);
    return -1;
  }
  float *rows = calloc((size_t)n * (size_t)E, sizeof(float));
  if (!rows) goto fail;
  llama_token a[Q3_CHUNK_TOKENS + 16], b[Q3_CHUNK_TOKENS + 16];
  int r = 0;
  for (int i = 0; i < st->n_role; i++) a[r] = st->role[i], b[r++] = -1;
  const llama_token think[4] = {st->think, st->think_bos, st->cur->lang, st->think_eos};
  for (int i = 0; i < 4; i++) a[r] = st->tts_pad, b[r++] = think[i];
  int xrow = -1;
  if (xvec) xrow = r, a[r] = st->tts_pad, b[r++] = -1;
  a[r] = st->tts_bos, b[r++] = st->codec_pad;
  for (int i = 0; i < c->n; i++) a[r] = c->toks[i], b[r++] = st->codec_pad;
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
  st->pos = 0;
  double t0 = (sy_mono_s() * 1e3);
  int rc = q3_decode_rows(w, rows, r);
  st->t_talker += (sy_mono_s() * 1e3) - t0;
  free(rows);
  if (rc != 0) goto fail;
  /* ~4 frames per token is ordinary speech; the budget stops a talker that never says EOS */
  st->budget = 16 + 8 * c->n;
  if (st->budget > w->n_ctx_seq - st->pos - 1) st->budget = w->n_ctx_seq - st->pos - 1;
  st->step = 0;
  st->prompted = true;
  st->first_window = true;
  st->n_win = st->n_sent_win = 0;
  st->dec_state_n = 0; /* each sentence starts the decoder afresh */
  return 0;
fail:
  snprintf(msg, msg_len, "the talker failed to decode the prompt");
  return -1;
}

/* Start the next waiting request. 0, or -1 when it failed (answered). */
static int q3_start(worker *w) {
  q3s_state *st = w->speech_q3;
  q3_req *r = (q3_req *)spq_pop(&st->q);
  st->cur = r;
  st->samples = 0;
  st->frame_no = 0;
  st->seed_base = r->seed;
  st->prompted = false;
  st->n_win = st->n_sent_win = 0;
  st->t_start = (sy_mono_s() * 1e3);
  st->t_talker = st->t_code = st->t_wav = 0;
  st->n_wav = 0;
  st->dec_state_n = 0;
  if (q3_split(w, st, r->text) != 0) {
    wio_error(&w->out, r->it.id, 500, "synthesis_failed", "the text could not be tokenized");
    q3_end_current(st);
    return -1;
  }
  if (st->n_chunks == 0) {
    q3_done(w, "stop");
    return -1;
  }
  if (st->have_last && st->last_seed == q3_frame_seed(st, 0)) {
    /* clip would not reseed: one throw-away GEN_WAV (one frame of code 0) with another seed */
    int32_t zero[Q3_GROUPS] = {0};
    struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
    struct mtmd_gen_out out;
    in.type = MTMD_GEN_PROCESS_TYPE_GEN_WAV;
    in.codes = zero;
    in.n_codes = Q3_GROUPS;
    in.seed = Q3_WAV_SEED;
    if (mtmd_gen_audio_process(w->mtmd, &in, &out) == 0) st->last_seed = Q3_WAV_SEED;
  }
  return 0;
}

void q3s_step(worker *w) {
  q3s_state *st = w->speech_q3;
  if (!st->cur) {
    if (!st->q.head || q3_start(w) != 0) return;
  }
  char msg[512];
  wio_id id = st->cur->it.id;
  if (!st->prompted) {
    if (st->chunk >= st->n_chunks) {
      q3_done(w, "stop");
      return;
    }
    if (q3_prompt(w, msg, sizeof msg) != 0) {
      bool bad_voice = strncmp(msg, "voice ", 6) == 0;
      wio_error(&w->out, id, bad_voice ? 400 : 500,
                bad_voice ? "invalid_voice" : "synthesis_failed", "%s", msg);
      q3_end_current(st);
    }
    return;
  }
  const float *logits = llama_get_logits_ith(w->ctx, -1);
  if (!logits) goto fail;
  uint32_t k = st->frame_no++;
  llama_token tok = q3_sample(st, logits, q3_uniform(st, k));
  if (tok == st->codec_eos || st->step >= st->budget) {
    /* the sentence is over: its last audio, then the next sentence */
    if (q3_wav(w, false) != 0) goto fail;
    st->prompted = false;
    st->chunk++;
    return;
  }
  struct mtmd_gen_inp in = mtmd_gen_inp_default(w->mtmd);
  struct mtmd_gen_out out;
  in.type = MTMD_GEN_PROCESS_TYPE_GEN_CODE;
  in.code0 = tok - st->codec0;
  in.embd = st->h;
  in.top_k = st->top_k;
  in.top_p = st->top_p;
  in.seed = q3_frame_seed(st, k);
  double t0 = (sy_mono_s() * 1e3);
  int rc = mtmd_gen_audio_process(w->mtmd, &in, &out);
  st->t_code += (sy_mono_s() * 1e3) - t0;
  if (rc != 0 || out.n_codes != Q3_GROUPS || !out.codes || !out.embd) goto fail;
  st->last_seed = in.seed;
  st->have_last = true;
  memcpy(st->codes + (size_t)st->n_win * Q3_GROUPS, out.codes, sizeof(int32_t) * Q3_GROUPS);
  st->n_win++;
  st->step++;
  /* the fed-back embedding is only valid until the next process() call: use it first */
  for (int i = 0; i < w->n_embd; i++) st->fb[i] = out.embd[i] + st->pad_row[i];
  t0 = (sy_mono_s() * 1e3);
  rc = q3_decode_rows(w, st->fb, 1);
  st->t_talker += (sy_mono_s() * 1e3) - t0;
  if (rc != 0) goto fail;
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
