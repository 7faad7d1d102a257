/* transcribe.c — whisper.cpp behind the worker: engine logs into sy_log, `load` (the model and,
 * when configured, the Silero VAD model), and `transcribe` (whisper_full on 16 kHz mono float
 * samples; each new segment streamed as it is decoded; the request's cancel aborts the engine).
 * Calls whisper.h, parakeet.c for Parakeet models (parakeet.h only for its log hook) and
 * src/common (wio, utf8); never main.c. Never lets a request field reach the engine unchecked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "parakeet.h"
#include "utf8.h"
#include "whisper.h"
#include "wio.h"
#include "ww.h"

/* ---- engine logs -------------------------------------------------------------------------- */

static void log_flush(ww *w, int level) {
  if (w->log_len > 0) sy_log((enum sy_log_level)level, "engine: %.*s", (int)w->log_len, w->log_buf);
  w->log_len = 0;
}

/* whisper.cpp and ggml log in pieces; lines are assembled, warnings stay warnings, the rest is
 * debug. Only the main thread runs the engine, so one buffer is enough. */
static void log_cb(enum ggml_log_level level, const char *text, void *ud) {
  ww *w = ud;
  if (!text) return;
  int lv = level >= GGML_LOG_LEVEL_WARN ? SY_LOG_WARN : SY_LOG_DEBUG;
  if (lv > (int)sy_log_get_level()) return;
  for (const char *p = text; *p; p++) {
    if (*p == '\n') {
      log_flush(w, lv);
    } else {
      if (w->log_len == sizeof w->log_buf - 1) log_flush(w, lv);
      w->log_buf[w->log_len++] = *p;
    }
  }
}

void ww_log_install(ww *w) {
  whisper_log_set(log_cb, w);
  parakeet_log_set(log_cb, w);
}

/* ---- load --------------------------------------------------------------------------------- */

int ww_load(ww *w, const json_t *hdr) {
  const char *path = json_string_value(json_object_get(hdr, "model"));
  const json_t *jt = json_object_get(hdr, "n_threads"), *jv = json_object_get(hdr, "vad_model");
  const json_t *jg = json_object_get(hdr, "gpu");
  struct stat st;
  if (!path || !*path || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
    wio_error(&w->out, 0, 500, "load_failed", "cannot open the model file '%.512s'",
              path ? path : "");
    return -1;
  }
  if ((jt && !json_is_integer(jt)) || (jv && !json_is_string(jv) && !json_is_null(jv)) ||
      (jg && !json_is_boolean(jg))) {
    wio_error(&w->out, 0, 400, "load_failed",
              "load: n_threads must be an integer, vad_model a string, gpu a boolean");
    return -1;
  }
  long long nt = jt ? json_integer_value(jt) : 0;
  if (nt <= 0 || nt > 512) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nt = cpus > 0 ? (cpus < 8 ? cpus : 8) : 4;
  }
  w->n_threads = (int)nt;
  bool gpu = jg ? json_is_true(jg) : true;
  if (ww_parakeet_probe(path) == 1) { /* the same ggml magic, another engine */
    if (!ww_parakeet_load(w, path, gpu)) {
      wio_error(&w->out, 0, 500, "load_failed",
                "whisper.cpp could not load the Parakeet model '%.512s' (see the worker's log)",
                path);
      return -1;
    }
  } else {
    struct whisper_context_params cp = whisper_context_default_params();
    cp.use_gpu = gpu;
    cp.flash_attn = false;
    w->ctx = whisper_init_from_file_with_params(path, cp);
    if (!w->ctx) {
      wio_error(&w->out, 0, 500, "load_failed",
                "whisper.cpp could not load '%.512s' (see the worker's log)", path);
      return -1;
    }
  }
  const char *vad = jv ? json_string_value(jv) : NULL;
  if (vad && *vad) {
    if (!(w->vad_model = strdup(vad))) {
      wio_error(&w->out, 0, 500, "load_failed", "out of memory");
      return -1;
    }
    struct whisper_vad_context_params vp = whisper_vad_default_context_params();
    vp.n_threads = w->n_threads;
    vp.use_gpu = false; /* Silero is tiny; the CPU is quicker than a round trip to a device */
    w->vctx = whisper_vad_init_from_file_with_params(vad, vp);
    if (!w->vctx) {
      wio_error(&w->out, 0, 500, "load_failed", "whisper.cpp could not load the VAD model '%.512s'",
                vad);
      return -1;
    }
  }
  char desc[128];
  if (w->pctx)
    ww_parakeet_describe(w, desc, sizeof desc);
  else
    snprintf(desc, sizeof desc, "whisper %s%s", whisper_model_type_readable(w->ctx),
             whisper_is_multilingual(w->ctx) ? "" : " (English only)");
  /* Parakeet: no language control, so "multilingual" (whisper's language choice) is false */
  wio_send(&w->out,
           json_pack("{s:s, s:s, s:s, s:I, s:i, s:b, s:b, s:i, s:i, s:i}", "op", "ready", "arch",
                     w->pctx ? "parakeet" : "whisper", "desc", desc, "model_bytes",
                     (json_int_t)st.st_size, "n_vocab",
                     w->pctx ? parakeet_n_vocab(w->pctx) : whisper_n_vocab(w->ctx), "multilingual",
                     w->ctx && whisper_is_multilingual(w->ctx) != 0, "vad", w->vctx != NULL,
                     "n_ctx", w->pctx ? parakeet_n_audio_ctx(w->pctx) : whisper_n_text_ctx(w->ctx),
                     "n_parallel", 1, "n_threads", w->n_threads),
           NULL, 0);
  LOG_I("loaded %s (%s), %d threads%s", path, desc, w->n_threads, w->vctx ? ", VAD" : "");
  return w->out.dead ? -1 : 0;
}

void ww_free(ww *w) {
  if (w->vctx) whisper_vad_free(w->vctx);
  if (w->ctx) whisper_free(w->ctx);
  if (w->pctx) parakeet_free(w->pctx);
  w->vctx = NULL;
  w->ctx = NULL;
  w->pctx = NULL;
  free(w->vad_model);
  w->vad_model = NULL;
}

/* ---- transcribe --------------------------------------------------------------------------- */

typedef struct run {
  ww *w;
  wio_id id;
  bool words;
  bool vad;
  double duration; /* seconds of audio: segment times are kept inside it */
  sy_buf text;     /* all segments' text, for done */
} run;

static bool encoder_begin_cb(struct whisper_context *ctx, struct whisper_state *st, void *ud) {
  return !wio_inbox_aborted(&((ww *)ud)->in);
}

/* Words from a segment's tokens: a token that starts with a space starts a word; special and
 * timestamp tokens are skipped. Token times (centiseconds) are fitted into the segment's span
 * (with VAD, whisper.cpp maps segment times back to the original audio but not token times). */
static json_t *segment_words(struct whisper_context *ctx, struct whisper_state *st, int i,
                             double s0, double s1) {
  int n = whisper_full_n_tokens_from_state(st, i);
  whisper_token eot = whisper_token_eot(ctx);
  double tmin = -1, tmax = -1;
  for (int j = 0; j < n; j++) {
    if (whisper_full_get_token_id_from_state(st, i, j) >= eot) continue;
    whisper_token_data d = whisper_full_get_token_data_from_state(st, i, j);
    if (tmin < 0 || d.t0 < tmin) tmin = (double)d.t0;
    if (d.t1 > tmax) tmax = (double)d.t1;
  }
  double span = tmax > tmin && tmin >= 0 ? tmax - tmin : 0;
  ww_words b;
  ww_words_init(&b, s0);
  for (int j = 0; j < n; j++) {
    if (whisper_full_get_token_id_from_state(st, i, j) >= eot) continue;
    const char *t = whisper_full_get_token_text_from_state(ctx, st, i, j);
    whisper_token_data d = whisper_full_get_token_data_from_state(st, i, j);
    double t0 = s0, t1 = s0;
    if (span > 0) {
      t0 = s0 + ((double)d.t0 - tmin) / span * (s1 - s0);
      t1 = s0 + ((double)d.t1 - tmin) / span * (s1 - s0);
    }
    ww_words_piece(&b, t ? t : "", ww_clamp(t0, s0, s1), ww_clamp(t1, s0, s1));
  }
  return ww_words_end(&b);
}

static void new_segment_cb(struct whisper_context *ctx, struct whisper_state *st, int n_new,
                           void *ud) {
  run *r = ud;
  int n = whisper_full_n_segments_from_state(st);
  for (int i = n - n_new; i < n; i++) {
    if (i < 0) continue;
    const char *t = whisper_full_get_segment_text_from_state(st, i);
    size_t ln;
    char *text = sy_utf8_repair(t ? t : "", t ? strlen(t) : 0, &ln);
    if (!text) continue;
    double s0 = (double)whisper_full_get_segment_t0_from_state(st, i) / 100.0;
    double s1 = (double)whisper_full_get_segment_t1_from_state(st, i) / 100.0;
    /* the decoder may place a timestamp past the end of the audio (or of a VAD cut) */
    s0 = s0 < 0 ? 0 : s0 > r->duration ? r->duration : s0;
    s1 = s1 < s0 ? s0 : s1 > r->duration ? r->duration : s1;
    ww_send_segment(r->w, r->id, &r->text, text, ln, s0, s1,
                    r->words ? segment_words(ctx, st, i, s0, s1) : NULL);
    free(text);
  }
}

/* Speech found by the VAD model (seconds), reported with done; NULL when VAD is off. */
static json_t *speech_segments(ww *w, const float *pcm, int n, int *count) {
  *count = 0;
  if (!w->vctx) return NULL;
  struct whisper_vad_segments *segs =
      whisper_vad_segments_from_samples(w->vctx, whisper_vad_default_params(), pcm, n);
  if (!segs) return NULL;
  json_t *a = json_array();
  int k = whisper_vad_segments_n_segments(segs);
  for (int i = 0; i < k; i++)
    json_array_append_new(
        a, json_pack("{s:f, s:f}", "start", whisper_vad_segments_get_segment_t0(segs, i) / 100.0,
                     "end", whisper_vad_segments_get_segment_t1(segs, i) / 100.0));
  whisper_vad_free_segments(segs);
  *count = k;
  return a;
}

void ww_transcribe(ww *w, wio_id id, const ipc_msg *m) {
  const json_t *h = m->hdr;
  const json_t *jl = json_object_get(h, "language"), *jp = json_object_get(h, "prompt");
  const json_t *jt = json_object_get(h, "temperature");
  const json_t *jtr = json_object_get(h, "translate"), *jw = json_object_get(h, "word_timestamps");
  const json_t *jv = json_object_get(h, "vad"), *ji = json_object_get(h, "temperature_inc");
  if ((jl && !json_is_string(jl) && !json_is_null(jl)) ||
      (jp && !json_is_string(jp) && !json_is_null(jp)) ||
      (jt && !json_is_number(jt) && !json_is_null(jt)) || (jtr && !json_is_boolean(jtr)) ||
      (jw && !json_is_boolean(jw)) || (jv && !json_is_boolean(jv)) || (ji && !json_is_number(ji))) {
    wio_error(&w->out, id, 400, "invalid_request", "transcribe: a field has the wrong type");
    return;
  }
  if (m->payload_len == 0 || m->payload_len % sizeof(float) != 0 ||
      m->payload_len / sizeof(float) > (size_t)INT32_MAX) {
    wio_error(&w->out, id, 400, "invalid_request",
              "transcribe: the payload must be a non-empty array of float32 samples");
    return;
  }
  const char *lang = jl ? json_string_value(jl) : NULL;
  if (lang && (!*lang || strcmp(lang, "auto") == 0)) lang = NULL;
  if (lang && (strlen(lang) > 32 || whisper_lang_id(lang) < 0)) {
    wio_error(&w->out, id, 400, "invalid_language",
              "unknown language '%.32s' (an ISO-639-1 code such as en, de, fr)", lang);
    return;
  }
  double temp = jt && json_is_number(jt) ? json_number_value(jt) : 0.0;
  if (!isfinite(temp) || temp < 0 || temp > 1) {
    wio_error(&w->out, id, 400, "invalid_request", "temperature must be between 0 and 1");
    return;
  }
  double inc = ji ? json_number_value(ji) : -1; /* -1: the default rule below */
  if (ji && (!isfinite(inc) || inc < 0 || inc > 1)) {
    wio_error(&w->out, id, 400, "invalid_request", "temperature_inc must be between 0 and 1");
    return;
  }
  bool translate = jtr && json_is_true(jtr), vad = jv && json_is_true(jv);
  if (translate && w->pctx) {
    wio_error(&w->out, id, 400, "wrong_capability",
              "this Parakeet model transcribes; it does not translate");
    return;
  }
  if (vad && !w->vad_model) {
    wio_error(&w->out, id, 400, "no_vad_model", "this model has no vad_model configured");
    return;
  }
  if (!wio_inbox_begin(&w->in, id)) {
    wio_done(&w->out, id, "{s:s}", "finish_reason", "cancelled");
    return;
  }
  int n = (int)(m->payload_len / sizeof(float));
  const float *pcm = m->payload;
  /* a copy the engine may not see a NaN in: the mel spectrogram of one is NaN everywhere */
  float *clean = NULL;
  for (int i = 0; i < n; i++)
    if (!isfinite(pcm[i])) {
      if (!clean && !(clean = malloc(m->payload_len))) break;
      memcpy(clean, pcm, m->payload_len);
      for (int k = 0; k < n; k++)
        if (!isfinite(clean[k])) clean[k] = 0;
      pcm = clean;
      break;
    }

  run r = {.w = w,
           .id = id,
           .words = jw && json_is_true(jw),
           .vad = vad,
           .duration = (double)n / WW_SAMPLE_RATE};
  int n_speech = 0;
  json_t *speech = vad ? speech_segments(w, pcm, n, &n_speech) : NULL;
  struct whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
  p.n_threads = ww_threads(w);
  p.translate = translate;
  p.language = lang ? lang : "auto";
  p.detect_language = false; /* "auto" detects and then transcribes */
  p.print_progress = p.print_realtime = p.print_special = p.print_timestamps = false;
  p.token_timestamps = r.words;
  p.temperature = (float)temp;
  /* A set temperature is kept; 0 keeps the fallback ladder (whisper.cpp's step, 0.2) unless the
   * request gives temperature_inc (0: no fallback, so temperature 0 is plain greedy decoding, the
   * same text for the same audio on every request: the ladder's sampling draws from a generator
   * whisper.cpp seeds once per model, not per request). */
  if (inc >= 0)
    p.temperature_inc = (float)inc;
  else if (temp > 0)
    p.temperature_inc = 0;
  char prompt[WW_MAX_PROMPT + 1];
  const char *ps = jp ? json_string_value(jp) : NULL;
  if (ps && *ps) {
    snprintf(prompt, sizeof prompt, "%s", ps);
    p.initial_prompt = prompt;
  }
  p.new_segment_callback = new_segment_cb;
  p.new_segment_callback_user_data = &r;
  p.abort_callback = ww_abort_cb;
  p.abort_callback_user_data = w;
  p.encoder_begin_callback = encoder_begin_cb;
  p.encoder_begin_callback_user_data = w;
  p.vad = vad;
  p.vad_model_path = w->vad_model;

  int rc = 0;
  bool ran = !(vad && speech && n_speech == 0); /* no speech at all: nothing to decode */
  /* Parakeet: the language, prompt and temperature do not apply (greedy TDT decoding) */
  if (ran)
    rc = w->pctx ? ww_parakeet_full(w, id, pcm, n, speech, r.words, &r.text)
                 : whisper_full(w->ctx, p, pcm, n);
  if (ran && w->ctx &&
      sy_log_get_level() >= SY_LOG_DEBUG) { /* the engine's own timings, per request */
    whisper_print_timings(w->ctx);
    whisper_reset_timings(w->ctx);
  }
  bool cancelled = wio_inbox_aborted(&w->in);
  wio_inbox_begin(&w->in, 0);
  free(clean);
  if (cancelled) {
    wio_done(&w->out, id, "{s:s}", "finish_reason", "cancelled");
  } else if (rc != 0) {
    wio_error(&w->out, id, 500, "transcribe_failed",
              "whisper.cpp could not transcribe the audio (error %d)", rc);
  } else {
    int lid = ran && w->ctx ? whisper_full_lang_id(w->ctx) : lang ? whisper_lang_id(lang) : -1;
    const char *code = lid >= 0 ? whisper_lang_str(lid) : NULL,
               *name = lid >= 0 ? whisper_lang_str_full(lid) : NULL;
    json_t *d = json_pack("{s:s, s:I, s:s, s:s, s:s, s:f, s:s%}", "op", "done", "id",
                          (json_int_t)id, "finish_reason", "stop", "language", code ? code : "",
                          "language_name", name ? name : "", "duration", (double)n / WW_SAMPLE_RATE,
                          "text", r.text.data ? r.text.data : "", r.text.len);
    if (d && speech) json_object_set(d, "speech", speech);
    wio_send(&w->out, d, NULL, 0);
  }
  json_decref(speech);
  sy_buf_free(&r.text);
}
