/* pipeline.c — see pipeline.h. A step is one request to one model's worker: the scheduler gives
 * the worker (loading the model if needed), the step's frames are read here, the worker is
 * given back when the step ends. Nothing goes through HTTP between steps.
 *
 * The voice turn is a small state machine driven by the reader of the response (a streamed one
 * through engines/relay.c, whose pull is one move; a loop for a whole answer): while a sentence is
 * being spoken its audio frames are relayed first; else the next complete sentence is handed to the
 * tts worker; else the next frame of the llm is read (its text goes out as transcript and is cut
 * into sentences). The llm worker keeps generating in its own process meanwhile (its frames queue
 * in its wreq), so the first sentence's audio leaves while the answer is still being written. Must
 * never leave a step running for a client that went away (freeing a wreq cancels it), never answer
 * twice, and never give a step's worker error a status or code other than api_error.h's table gives
 * it. */
#include "virtual/pipeline.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "engines/relay.h"
#include "http/sse.h"
#include "log.h"
#include "media/audio.h"
#include "media/base64.h"
#include "parse/api_parse.h"

/* ---- small helpers ---- */

static double ms(double seconds) { return seconds > 0 ? round(seconds * 10000.0) / 10.0 : 0.0; }

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)s[i])) return false;
  return true;
}

/* s[0..n) without white space at either end, as a new JSON string. */
static json_t *trimmed_json(const char *s, size_t n) {
  if (!s) return json_string("");
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  return json_stringn(s, n);
}

size_t pipe_sentence_cut(const char *s, size_t len, size_t max_chars, bool final) {
  if (max_chars < 1) max_chars = 1;
  size_t scan = len < max_chars ? len : max_chars;
  for (size_t i = 0; i < scan; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') return i + 1;
    if ((c == '.' || c == '!' || c == '?' || c == ';') && i + 1 < len &&
        isspace((unsigned char)s[i + 1]))
      return i + 1;
    if (c == 0xE3 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
        (unsigned char)s[i + 2] == 0x82)
      return i + 3;
    if (c == 0xEF && i + 2 < len && (unsigned char)s[i + 1] == 0xBC &&
        ((unsigned char)s[i + 2] == 0x81 || (unsigned char)s[i + 2] == 0x9F))
      return i + 3;
  }
  if (len >= max_chars) { /* a long clause: cut at its last space rather than wait */
    size_t k = max_chars;
    while (k > 0 && s[k - 1] != ' ') k--;
    if (k > 0) return k;
    k = max_chars;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return k ? k : max_chars;
  }
  return final ? len : 0;
}

json_t *pipe_model_json(const matrix_pipeline *p, long long created) {
  json_t *steps = json_pack("{s:s}", "kind", matrix_pipeline_kind_name(p->kind));
  if (steps && p->asr) json_object_set_new(steps, "asr", json_string(p->asr));
  if (steps && p->llm) json_object_set_new(steps, "llm", json_string(p->llm));
  if (steps && p->tts) json_object_set_new(steps, "tts", json_string(p->tts));
  json_t *caps = json_pack(p->kind == MATRIX_PIPE_VOICE ? "[s, s]" : "[s]",
                           p->kind == MATRIX_PIPE_VOICE ? "chat" : "transcribe", "speech");
  return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", p->name, "object", "model", "created",
                   (json_int_t)created, "owned_by", "switchyard", "capabilities", caps, "pipeline",
                   steps);
}

/* ---- steps ---- */

static const char *const role_names[] = {"asr", "llm", "tts"}; /* by pipe_role */

/* Make err say which step failed: "pipeline 'P' step ROLE (MODEL) failed: why", param ROLE. */
static void step_failed(api_error *e, const matrix_pipeline *p, int role, const char *model) {
  assert(role >= PIPE_ASR && role <= PIPE_TTS);
  char why[sizeof e->message];
  memcpy(why, e->message, sizeof why);
  why[sizeof why - 1] = '\0';
  if (!e->status) e->status = 500;
  if (!e->type) e->type = e->status < 500 ? "invalid_request_error" : "server_error";
  snprintf(e->message, sizeof e->message, "pipeline '%.128s' step %s (%.128s) failed: %.700s",
           p->name, role_names[role], model, why);
  e->param = role_names[role];
}

void pipe_step_error(const json_t *hdr, const matrix_pipeline *p, int role, const char *model,
                     api_error *e) {
  api_error_from_worker(hdr, e);
  step_failed(e, p, role, model);
}

typedef struct step {
  sy_daemon *d;
  const matrix_pipeline *p;
  const matrix_model *model;
  int role;
  worker *w;
  wreq *q;
  bool done; /* the current request ended (done frame) */
} step;

/* Resolve the step's model in mx and get its worker from the scheduler. 0, or -1 + err (named). */
static int step_acquire(step *s, sy_daemon *d, const matrix *mx, const matrix_pipeline *p, int role,
                        const char *name, api_error *err) {
  *s = (step){.d = d, .p = p, .role = role};
  s->model = matrix_find(mx, name);
  if (!s->model) {
    api_error_set(err, 500, "server_error", "model_not_found", NULL,
                  "model '%s' is not in the matrix", name);
    step_failed(err, p, role, name);
    return -1;
  }
  s->w = sched_acquire(d->sc, s->model, err);
  if (!s->w) {
    step_failed(err, p, role, name);
    return -1;
  }
  return 0;
}

static int step_submit(step *s, json_t *msg, const void *pay, size_t len, api_error *err) {
  wreq_free(s->q);
  s->done = false;
  s->q = worker_submit_payload(s->w, msg, pay, len, err);
  if (!s->q) {
    step_failed(err, s->p, s->role, s->model->name);
    return -1;
  }
  return 0;
}

/* The step's next frame: 1 (in *m; a done frame sets s->done), 0 when the client at fd went away
 * (or the wait failed), -1 for an error frame (err set, naming the step; *m cleared). */
static int step_next(step *s, int fd, ipc_msg *m, api_error *err) {
  bool hup = false;
  if (!wreq_wait(s->q, m, fd, -1, &hup)) return 0;
  if (strcmp(ipc_op(m), "error") == 0) {
    pipe_step_error(m->hdr, s->p, s->role, s->model->name, err);
    ipc_msg_clear(m);
    s->done = true;
    return -1;
  }
  if (strcmp(ipc_op(m), "done") == 0) s->done = true;
  return 1;
}

/* Cancel whatever still runs and give the worker back. */
static void step_end(step *s) {
  wreq_free(s->q);
  s->q = NULL;
  if (s->w) sched_release(s->d->sc, s->model, s->w);
  s->w = NULL;
}

/* The asr step over n samples of 16 kHz mono: the transcript into text (whisper's segments
 * appended to segs when given; its language name into lang). An audio LLM is asked with its
 * transcribe_prompt, as /v1/audio/transcriptions does. 1 = done, 0 = client gone, -1 = err. */
static int run_asr(sy_daemon *d, const matrix *mx, const matrix_pipeline *p, const float *pcm,
                   size_t n, const char *language, const char *prompt, int fd, sy_buf *text,
                   json_t *segs, char *lang, size_t lang_cap, api_error *err) {
  step s;
  if (step_acquire(&s, d, mx, p, PIPE_ASR, p->asr, err)) return -1;
  bool llm = s.model->engine == MATRIX_ENGINE_LLAMA;
  json_t *msg;
  if (llm) {
    sy_buf c = {0};
    sy_buf_printf(
        &c, "%s\n%s", API_IMAGE_MARKER,
        s.model->transcribe_prompt ? s.model->transcribe_prompt : MATRIX_TRANSCRIBE_PROMPT);
    if (language && *language && strcmp(language, "auto") != 0)
      sy_buf_printf(&c, "\nThe language is %s.", language);
    if (prompt && *prompt) sy_buf_printf(&c, "\n%s", prompt);
    msg = c.data ? json_pack("{s:s, s:[{s:s, s:s%}], s:I, s:f, s:[{s:I}]}", "op", "generate",
                             "messages", "role", "user", "content", c.data, c.len, "max_tokens",
                             (json_int_t)(64 + 16 * ((n + 15999) / 16000)), "temperature", 0.0,
                             "audios", "n", (json_int_t)n)
                 : NULL;
    sy_buf_free(&c);
  } else {
    msg = json_pack("{s:s, s:b, s:b, s:b}", "op", "transcribe", "translate", 0, "word_timestamps",
                    0, "vad", s.model->vad_model != NULL);
    if (msg && language && *language) json_object_set_new(msg, "language", json_string(language));
    if (msg && prompt && *prompt) json_object_set_new(msg, "prompt", json_string(prompt));
  }
  int rc = -1;
  if (!msg) {
    API_SERVER(err, "out_of_memory", "out of memory");
    step_failed(err, p, PIPE_ASR, s.model->name);
  } else if (step_submit(&s, msg, pcm, n * sizeof(float), err) == 0) {
    for (;;) {
      ipc_msg m;
      rc = step_next(&s, fd, &m, err);
      if (rc <= 0) break;
      const char *op = ipc_op(&m);
      const char *t = json_string_value(json_object_get(m.hdr, "text"));
      if (t && (llm ? strcmp(op, "delta") == 0 : strcmp(op, "segment") == 0)) {
        sy_buf_puts(text, t);
        if (segs && !llm) {
          json_t *t0 = json_object_get(m.hdr, "t0"), *t1 = json_object_get(m.hdr, "t1");
          json_array_append_new(
              segs, json_pack("{s:I, s:f, s:f, s:s}", "id", (json_int_t)json_array_size(segs),
                              "start", json_is_number(t0) ? json_number_value(t0) : 0.0, "end",
                              json_is_number(t1) ? json_number_value(t1) : 0.0, "text", t));
        }
      }
      if (s.done) {
        const char *ln = json_string_value(json_object_get(m.hdr, "language_name"));
        if (lang && ln) snprintf(lang, lang_cap, "%s", ln);
        ipc_msg_clear(&m);
        rc = 1;
        break;
      }
      ipc_msg_clear(&m);
    }
  }
  step_end(&s);
  return rc;
}

int pipe_run_asr(sy_daemon *d, const matrix *mx, const matrix_pipeline *p, const float *pcm,
                 size_t n, const char *language, int watch_fd, sy_buf *text, api_error *err) {
  return run_asr(d, mx, p, pcm, n, language, NULL, watch_fd, text, NULL, NULL, 0, err);
}

/* ---- transcribe and clean ---- */

static ssize_t body_read(void *cls, char *buf, size_t max) {
  sy_buf *b = cls;
  if (b->len == 0) return HTTP_STREAM_END;
  size_t n = b->len < max ? b->len : max;
  memcpy(buf, b->data, n);
  sy_buf_consume(b, n);
  return (ssize_t)n;
}

static void body_free(void *cls) {
  sy_buf_free(cls);
  free(cls);
}

void pipe_transcribe_clean(sy_daemon *d, http_req *r, const matrix *mx, const matrix_pipeline *p,
                           const float *pcm, size_t n, const char *language, const char *prompt,
                           int fmt) {
  metrics *mt = sched_metrics(d->sc);
  int row = metrics_model(mt, p->name);
  int fd = http_client_fd(r);
  api_error err = {0};
  double t0 = sy_mono_s();
  http_add_header(r, "X-Switchyard-Model", p->name);
  sy_buf raw = {0}, clean = {0};
  json_t *segs = json_array(), *req = NULL;
  char lang[64] = "";
  int rc = run_asr(d, mx, p, pcm, n, language, prompt, fd, &raw, segs, lang, sizeof lang, &err);
  double t_asr = sy_mono_s();
  if (rc < 0) metrics_pipeline_failure(mt, row, METRICS_STEP_ASR);
  if (rc <= 0) goto out;
  json_t *raw_j = trimmed_json(raw.data, raw.len);
  long long pt = 0, ct = 0;
  if (json_string_length(raw_j) > 0) { /* nothing said: nothing to clean */
    req = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:O}], s:i, s:f}", "model", p->llm, "messages",
                    "role", "system", "content",
                    p->instruction ? p->instruction : MATRIX_CLEAN_PROMPT, "role", "user",
                    "content", raw_j, "max_tokens", p->max_tokens, "temperature", p->temperature);
    api_gen g;
    step s = {0};
    if (api_parse_generate(mx, NULL, req, true, &g, &err) != 0) {
      step_failed(&err, p, PIPE_LLM, p->llm);
      rc = -1;
    } else {
      json_t *msg = g.msg;
      g.msg = NULL;
      api_gen_clear(&g);
      rc = step_acquire(&s, d, mx, p, PIPE_LLM, p->llm, &err);
      if (rc == 0)
        rc = step_submit(&s, msg, NULL, 0, &err);
      else
        json_decref(msg);
      while (rc == 0) {
        ipc_msg m;
        int k = step_next(&s, fd, &m, &err);
        if (k <= 0) {
          rc = k < 0 ? -1 : 1;
          break;
        }
        const char *t = json_string_value(json_object_get(m.hdr, "text"));
        if (t && strcmp(ipc_op(&m), "delta") == 0) sy_buf_puts(&clean, t);
        if (s.done) {
          json_t *v = json_object_get(m.hdr, "prompt_tokens"),
                 *c = json_object_get(m.hdr, "completion_tokens");
          pt = json_is_integer(v) ? json_integer_value(v) : 0;
          ct = json_is_integer(c) ? json_integer_value(c) : 0;
          rc = 2;
        }
        ipc_msg_clear(&m);
      }
      step_end(&s);
    }
    if (rc < 0) metrics_pipeline_failure(mt, row, METRICS_STEP_LLM);
    if (rc != 2) {
      json_decref(raw_j);
      if (rc == 1) rc = 0; /* gone */
      goto out;
    }
    metrics_tokens(mt, row, pt, ct);
  }
  rc = 1;
  double t_end = sy_mono_s();
  metrics_pipeline_stage(mt, row, METRICS_STAGE_STT, t_asr - t0);
  if (req) metrics_pipeline_stage(mt, row, METRICS_STAGE_LLM, t_end - t_asr);
  metrics_pipeline_stage(mt, row, METRICS_STAGE_TOTAL, t_end - t0);
  char st[160];
  snprintf(st, sizeof st, "stt;dur=%.1f, llm;dur=%.1f, total;dur=%.1f", ms(t_asr - t0),
           ms(t_end - t_asr), ms(t_end - t0));
  http_add_header(r, "Server-Timing", st);
  json_t *clean_j = trimmed_json(clean.data, clean.len);
  double duration = (double)n / API_AUDIO_RATE;
  if (fmt == AUD_TEXT) {
    sy_buf *b = calloc(1, sizeof *b);
    if (b && sy_buf_printf(b, "%s\n", json_string_value(clean_j)) == 0) {
      http_reply_stream(r, 200, "text/plain; charset=utf-8", body_read, b, body_free);
    } else {
      if (b) body_free(b);
      API_SERVER(&err, "out_of_memory", "out of memory");
      http_reply_error(r, &err);
    }
  } else {
    json_t *usage =
        json_pack("{s:s, s:I}", "type", "duration", "seconds", (json_int_t)ceil(duration));
    json_t *v = json_pack("{s:O, s:o}", "text", clean_j, "usage", usage);
    if (v && fmt == AUD_VERBOSE) {
      json_object_set_new(v, "task", json_string("transcribe"));
      json_object_set_new(v, "language", json_string(lang));
      json_object_set_new(v, "duration", json_real(duration));
      json_object_set(v, "raw_text", raw_j);
      json_object_set(v, "segments", segs); /* the raw transcript's */
      json_object_set_new(usage, "switchyard_timings",
                          json_pack("{s:f, s:f, s:f}", "stt_ms", ms(t_asr - t0), "llm_ms",
                                    ms(t_end - t_asr), "total_ms", ms(t_end - t0)));
      json_object_set_new(
          v, "switchyard_pipeline",
          json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", p->name, "asr", p->asr, "llm", p->llm,
                    "prompt_tokens", (json_int_t)pt, "completion_tokens", (json_int_t)ct));
    }
    http_reply_json(r, 200, v);
  }
  json_decref(clean_j);
  json_decref(raw_j);
out:
  if (rc < 0)
    http_reply_error(r, &err);
  else if (rc == 0) {
    atomic_fetch_add(&d->cancelled, 1);
    http_reply_abort(r);
  }
  json_decref(req);
  json_decref(segs);
  sy_buf_free(&raw);
  sy_buf_free(&clean);
}

/* ---- the voice turn ---- */

#define VOICE_MAX_PENDING \
  (64 * 1024) /* text waiting to be spoken: the llm is bounded by max_tokens anyway */

typedef struct voice_job {
  sy_daemon *d;
  const matrix *mx;
  const matrix_pipeline *p;
  metrics *mt;
  int row, fd;
  bool stream, audio_out;
  char id[48], audio_id[48], format[8], voice[104];
  long long created;
  step llm, tts;
  bool tts_busy, llm_done, finished, failed;
  sy_buf said;       /* the whole answer */
  sy_buf pending;    /* text not yet handed to the tts step */
  json_t *sentences; /* cut, waiting for the tts step */
  json_t *inputs;    /* the transcripts of the request's input_audio parts */
  sy_audio_enc *enc; /* streamed audio */
  int rate;          /* the tts worker's sample rate */
  sy_buf pcm;        /* whole answer: float samples at rate */
  relay rl;          /* the steps' frames to the client (a pull: its out is the SSE) */
  long long prompt_tokens, completion_tokens;
  char finish[16];
  api_error err;
  /* seconds: the request's start; the stages */
  double t0, stt, t_llm, first_token, t_tts, tts_first_audio, first_audio, total;
} voice_job;

static void voice_free(void *cls) {
  voice_job *j = cls;
  if (!j->finished) atomic_fetch_add(&j->d->cancelled, 1);
  step_end(&j->llm);
  step_end(&j->tts);
  sy_audio_enc_free(j->enc);
  json_decref(j->sentences);
  json_decref(j->inputs);
  sy_buf_free(&j->said);
  sy_buf_free(&j->pending);
  sy_buf_free(&j->pcm);
  relay_deinit(&j->rl);
  free(j);
}

static json_t *timings_json(const voice_job *j) {
  return json_pack("{s:f, s:f, s:f, s:f, s:f}", "stt_ms", ms(j->stt), "llm_first_token_ms",
                   ms(j->first_token), "tts_first_audio_ms", ms(j->tts_first_audio),
                   "first_audio_ms", ms(j->first_audio), "total_ms", ms(j->total));
}

static void server_timing(const voice_job *j, char *out, size_t cap) {
  snprintf(out, cap,
           "stt;dur=%.1f, llm_first_token;dur=%.1f, tts_first_audio;dur=%.1f, "
           "first_audio;dur=%.1f, total;dur=%.1f",
           ms(j->stt), ms(j->first_token), ms(j->tts_first_audio), ms(j->first_audio),
           ms(j->total));
}

static json_t *usage_json(const voice_job *j) {
  json_t *u = json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)j->prompt_tokens,
                        "completion_tokens", (json_int_t)j->completion_tokens, "total_tokens",
                        (json_int_t)(j->prompt_tokens + j->completion_tokens));
  if (u) json_object_set_new(u, "switchyard_timings", timings_json(j));
  return u;
}

static json_t *pipeline_json(const voice_job *j) {
  json_t *v = json_pack("{s:s, s:s, s:O}", "name", j->p->name, "llm", j->p->llm,
                        "input_transcripts", j->inputs);
  if (v && j->p->asr) json_object_set_new(v, "asr", json_string(j->p->asr));
  if (v && j->audio_out) json_object_set_new(v, "tts", json_string(j->p->tts));
  return v;
}

/* One chunk with delta (stolen) and finish reason (NULL: none). */
static void emit_chunk(voice_job *j, json_t *delta, const char *finish) {
  json_t *c =
      json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:n, s:o}]}", "id", j->id, "object",
                "chat.completion.chunk", "created", (json_int_t)j->created, "model", j->p->name,
                "system_fingerprint", "switchyard", "choices", "index", 0, "delta", delta,
                "logprobs", "finish_reason", finish ? json_string(finish) : json_null());
  if (c) sse_append_json(&j->rl.out, c);
  json_decref(c);
}

/* Text of the answer as it comes: the audio's transcript (or the content, when no audio). */
static void on_text(voice_job *j, const char *t) {
  if (!j->stream || !*t) return;
  if (j->audio_out)
    emit_chunk(j, json_pack("{s:{s:s, s:s}}", "audio", "id", j->audio_id, "transcript", t), NULL);
  else
    emit_chunk(j, json_pack("{s:s}", "content", t), NULL);
}

/* Encoded audio bytes for the client (streamed), as one chunk. */
static int emit_audio(voice_job *j, sy_buf *enc) {
  if (enc->len == 0) return 0;
  char *s = sy_base64_encode(enc->data, enc->len);
  sy_buf_consume(enc, enc->len);
  if (!s) return -1;
  emit_chunk(j, json_pack("{s:{s:s, s:s}}", "audio", "id", j->audio_id, "data", s), NULL);
  free(s);
  return 0;
}

static int on_audio(voice_job *j, const float *pcm, size_t n, int rate) {
  if (!j->first_audio) j->first_audio = sy_mono_s() - j->t0;
  if (!j->tts_first_audio) j->tts_first_audio = sy_mono_s() - j->t_tts;
  if (!j->rate) j->rate = rate > 0 ? rate : 22050;
  if (!j->stream) return sy_buf_append(&j->pcm, pcm, n * sizeof(float));
  char e[256] = "";
  if (!j->enc && !(j->enc = sy_audio_enc_new(j->format, j->rate, API_SPEECH_RATE, e, sizeof e))) {
    API_BAD(&j->err, "audio", "unsupported_format", "audio.format '%s': %s", j->format,
            *e ? e : "not supported");
    return -1;
  }
  sy_buf enc = {0};
  int rc = sy_audio_enc_feed(j->enc, pcm, n, &enc) == 0 ? emit_audio(j, &enc) : -1;
  if (rc)
    API_SERVER(&j->err, "encode_failed", "the audio encoder failed: %s",
               sy_audio_enc_error(j->enc));
  sy_buf_free(&enc);
  return rc;
}

/* Cut what can be spoken from pending into sentences. */
static void cut(voice_job *j, bool final) {
  for (;;) {
    size_t k = pipe_sentence_cut(j->pending.data ? j->pending.data : "", j->pending.len,
                                 (size_t)j->p->sentence_chars, final);
    if (k == 0) return;
    if (!blank(j->pending.data, k))
      json_array_append_new(j->sentences, trimmed_json(j->pending.data, k));
    sy_buf_consume(&j->pending, k);
    if (j->pending.len == 0) return;
  }
}

/* The end of a streamed answer: the encoder's tail, the finish chunk, the usage chunk (with the
 * timings: the headers are long gone), [DONE]. */
static int stream_end(voice_job *j) {
  if (j->audio_out) {
    sy_buf enc = {0};
    if (j->enc && (sy_audio_enc_finish(j->enc, &enc) != 0 || emit_audio(j, &enc) != 0)) {
      sy_buf_free(&enc);
      API_SERVER(&j->err, "encode_failed", "the audio encoder failed: %s",
                 sy_audio_enc_error(j->enc));
      return -1;
    }
    sy_buf_free(&enc);
    emit_chunk(j,
               json_pack("{s:{s:s, s:I}}", "audio", "id", j->audio_id, "expires_at",
                         (json_int_t)j->created + 3600),
               j->finish);
  } else {
    emit_chunk(j, json_object(), j->finish);
  }
  json_t *u = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[], s:o, s:o}", "id", j->id, "object",
                        "chat.completion.chunk", "created", (json_int_t)j->created, "model",
                        j->p->name, "system_fingerprint", "switchyard", "choices", "usage",
                        usage_json(j), "switchyard_pipeline", pipeline_json(j));
  if (u) sse_append_json(&j->rl.out, u);
  json_decref(u);
  sse_append_done(&j->rl.out);
  return 0;
}

static void record_stages(voice_job *j) {
  metrics_pipeline_stage(j->mt, j->row, METRICS_STAGE_STT, j->stt);
  metrics_pipeline_stage(j->mt, j->row, METRICS_STAGE_LLM_FIRST_TOKEN, j->first_token);
  if (j->first_audio) {
    metrics_pipeline_stage(j->mt, j->row, METRICS_STAGE_TTS_FIRST_AUDIO, j->tts_first_audio);
    metrics_pipeline_stage(j->mt, j->row, METRICS_STAGE_FIRST_AUDIO, j->first_audio);
  }
  metrics_pipeline_stage(j->mt, j->row, METRICS_STAGE_TOTAL, j->total);
  metrics_tokens(j->mt, j->row, j->prompt_tokens, j->completion_tokens);
}

/* One move of the machine. 1 = moved (maybe output), 0 = the client went away, -1 = failed
 * (j->err). */
static int voice_step(voice_job *j) {
  ipc_msg m;
  if (j->tts_busy) { /* the sentence being spoken comes first */
    int rc = step_next(&j->tts, j->fd, &m, &j->err);
    if (rc < 0) metrics_pipeline_failure(j->mt, j->row, METRICS_STEP_TTS);
    if (rc <= 0) return rc;
    int e = 0;
    if (strcmp(ipc_op(&m), "audio") == 0 && m.payload_len >= sizeof(float))
      e = on_audio(j, m.payload, m.payload_len / sizeof(float),
                   (int)json_integer_value(json_object_get(m.hdr, "rate")));
    if (j->tts.done) j->tts_busy = false;
    ipc_msg_clear(&m);
    return e ? -1 : 1;
  }
  if (json_array_size(j->sentences)) {
    json_t *msg = json_pack("{s:s, s:O, s:s, s:f}", "op", "speak", "input",
                            json_array_get(j->sentences, 0), "voice", j->voice, "speed", 1.0);
    json_array_remove(j->sentences, 0);
    if (!j->t_tts) j->t_tts = sy_mono_s();
    if (!msg) return API_SERVER(&j->err, "out_of_memory", "out of memory"), -1;
    if (step_submit(&j->tts, msg, NULL, 0, &j->err) != 0) {
      metrics_pipeline_failure(j->mt, j->row, METRICS_STEP_TTS);
      return -1;
    }
    j->tts_busy = true;
    return 1;
  }
  if (j->llm_done) {
    if (j->audio_out && j->pending.len) {
      cut(j, true);
      sy_buf_consume(&j->pending, j->pending.len);
      return 1;
    }
    j->total = sy_mono_s() - j->t0;
    j->finished = true;
    record_stages(j);
    return j->stream && stream_end(j) != 0 ? -1 : 1;
  }
  int rc = step_next(&j->llm, j->fd, &m, &j->err);
  if (rc < 0) metrics_pipeline_failure(j->mt, j->row, METRICS_STEP_LLM);
  if (rc <= 0) return rc;
  const char *t = json_string_value(json_object_get(m.hdr, "text"));
  if (t && *t && strcmp(ipc_op(&m), "delta") == 0) {
    if (!j->first_token) j->first_token = sy_mono_s() - j->t_llm;
    sy_buf_puts(&j->said, t);
    on_text(j, t);
    if (j->audio_out) {
      if (j->pending.len + strlen(t) > VOICE_MAX_PENDING)
        cut(j, true); /* bounded: speak what is there */
      sy_buf_puts(&j->pending, t);
      cut(j, false);
    }
  }
  if (j->llm.done) {
    json_t *pt = json_object_get(m.hdr, "prompt_tokens"),
           *ct = json_object_get(m.hdr, "completion_tokens");
    j->prompt_tokens = json_is_integer(pt) ? json_integer_value(pt) : 0;
    j->completion_tokens = json_is_integer(ct) ? json_integer_value(ct) : 0;
    const char *f = json_string_value(json_object_get(m.hdr, "finish_reason"));
    snprintf(j->finish, sizeof j->finish, "%s", f && strcmp(f, "length") == 0 ? "length" : "stop");
    j->llm_done = true;
    step_end(&j->llm); /* its worker is free for others while the rest is spoken */
  }
  ipc_msg_clear(&m);
  return 1;
}

/* The relay's pull: one move of the machine; a failure after the headers went out is the stream's
 * last event. */
static relay_rc voice_pull(void *job, sy_buf *out) {
  voice_job *j = job;
  int rc = voice_step(j);
  if (rc == 0) return RELAY_GONE; /* freeing the job cancels the steps */
  if (rc < 0) {
    LOG_W("pipeline %s: %s", j->p->name, j->err.message);
    json_t *e = api_error_json(&j->err);
    if (e) sse_append_json(out, e);
    json_decref(e);
    sse_append_done(out);
    j->finished = true;
  }
  return j->finished ? RELAY_END : RELAY_MORE;
}

static const relay_ops voice_ops = {.pull = voice_pull, .free = voice_free};

/* The whole answer, once the machine has finished. */
static void voice_reply_whole(voice_job *j, http_req *r) {
  json_t *transcript = trimmed_json(j->said.data, j->said.len);
  json_t *msg;
  if (j->audio_out) {
    sy_buf enc = {0};
    char e[256] = "";
    size_t n = j->pcm.len / sizeof(float);
    if (n && sy_audio_encode((const float *)j->pcm.data, n, j->rate, j->format, API_SPEECH_RATE,
                             &enc, e, sizeof e)) {
      json_decref(transcript);
      sy_buf_free(&enc);
      API_BAD(&j->err, "audio", "unsupported_format", "audio.format '%s': %s", j->format, e);
      http_reply_error(r, &j->err);
      return;
    }
    char *data = sy_base64_encode(enc.data ? enc.data : "", enc.len);
    sy_buf_free(&enc);
    msg = json_pack("{s:s, s:n, s:n, s:{s:s, s:s, s:I, s:O}}", "role", "assistant", "content",
                    "refusal", "audio", "id", j->audio_id, "data", data ? data : "", "expires_at",
                    (json_int_t)j->created + 3600, "transcript", transcript);
    free(data);
  } else {
    msg = json_pack("{s:s, s:O}", "role", "assistant", "content", transcript);
  }
  json_decref(transcript);
  json_t *resp = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:n, s:s}], s:o, s:o}", "id",
                           j->id, "object", "chat.completion", "created", (json_int_t)j->created,
                           "model", j->p->name, "system_fingerprint", "switchyard", "choices",
                           "index", 0, "message", msg, "logprobs", "finish_reason", j->finish,
                           "usage", usage_json(j), "switchyard_pipeline", pipeline_json(j));
  char st[256];
  server_timing(j, st, sizeof st);
  http_add_header(r, "Server-Timing", st);
  http_reply_json(r, 200, resp);
}

/* ---- the request, before any step runs ---- */

static const char *const voice_formats[] = {"wav", "mp3", "flac", "opus", "pcm16", "pcm", "aac"};

/* modalities, audio {voice, format}, n: the parts of the request that are the pipeline's. */
static int voice_options(voice_job *j, const json_t *req, api_error *err) {
  json_t *mod = json_object_get(req, "modalities");
  j->audio_out = true;
  if (mod && !json_is_null(mod)) {
    size_t i;
    json_t *v;
    if (!json_is_array(mod) || json_array_size(mod) == 0 || json_array_size(mod) > 2)
      return API_BAD(err, "modalities", "invalid_value",
                     "'modalities' must be [\"text\"] or [\"text\", \"audio\"]"),
             -1;
    j->audio_out = false;
    json_array_foreach(mod, i, v) {
      const char *s = json_string_value(v);
      if (!s || (strcmp(s, "text") && strcmp(s, "audio")))
        return API_BAD(err, "modalities", "invalid_value",
                       "'modalities' items must be \"text\" or \"audio\""),
               -1;
      if (!strcmp(s, "audio")) j->audio_out = true;
    }
  }
  const char *fmt = "wav", *voice = j->p->voice ? j->p->voice : "";
  json_t *au = json_object_get(req, "audio");
  if (au && !json_is_null(au)) {
    if (!json_is_object(au))
      return API_BAD(err, "audio", "invalid_type", "'audio' must be {voice, format}"), -1;
    json_t *v = json_object_get(au, "voice"), *f = json_object_get(au, "format");
    if (json_is_object(v)) v = json_object_get(v, "id");
    if (v && !json_is_null(v)) {
      if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 100 ||
          strlen(json_string_value(v)) != json_string_length(v))
        return API_BAD(err, "audio.voice", "invalid_value",
                       "'audio.voice' must be a voice name of 1..100 characters"),
               -1;
      voice = json_string_value(v);
    }
    if (f && !json_is_null(f)) {
      fmt = json_string_value(f);
      bool ok = false;
      for (size_t i = 0; fmt && i < sizeof voice_formats / sizeof *voice_formats; i++)
        ok |= !strcmp(fmt, voice_formats[i]);
      if (!ok)
        return API_BAD(err, "audio.format", "invalid_value",
                       "'audio.format' must be one of wav, mp3, flac, opus, pcm16, aac"),
               -1;
    }
  }
  snprintf(j->format, sizeof j->format, "%s", !strcmp(fmt, "pcm16") ? "pcm" : fmt);
  snprintf(j->voice, sizeof j->voice, "%s", voice);
  if (j->audio_out && !sy_audio_format_known(j->format))
    return API_BAD(err, "audio.format", "unsupported_format",
                   "audio.format '%s' is not supported by this build", fmt),
           -1;
  return 0;
}

/* One input_audio part ({data: base64, format}) decoded to 16 kHz mono. 0, or -1 + err. */
static int decode_part(const matrix *mx, const json_t *ia, size_t k, sy_audio *a, api_error *err) {
  const json_t *dv = json_object_get(ia, "data");
  if (!json_is_string(dv))
    return API_BAD(err, "messages", "invalid_audio",
                   "audio %zu: input_audio must be {data: base64, format}", k),
           -1;
  size_t max = mx->max_upload_bytes ? mx->max_upload_bytes : SY_AUDIO_DEFAULT_MAX_BYTES;
  char e[256] = "";
  bool unsupported = false;
  int rc =
      api_audio_b64(dv, max, API_AUDIO_RATE, API_MAX_AUDIO_SECONDS, a, &unsupported, e, sizeof e);
  if (rc != 0 || a->n < 2) {
    sy_audio_free(a);
    return API_BAD(err, "messages", "invalid_audio", "audio %zu: could not decode the audio%s: %s",
                   k, unsupported ? " (a format this build cannot read)" : "",
                   rc ? e : "it holds no samples"),
           -1;
  }
  return 0;
}

/* The llm step's request from the client's: input_audio parts replaced by their transcripts (the
 * asr step), earlier assistant audio by its transcript, the pipeline's instruction, max_tokens and
 * temperature where the request has none, the pipeline's own keys removed. 1 = built (*out),
 * 0 = the client went away, -1 = err. */
static int voice_llm_request(voice_job *j, const json_t *req, json_t **out, api_error *err) {
  json_t *tools = json_object_get(req, "tools");
  if (json_array_size(tools) > 0)
    return API_BAD(err, "tools", "unsupported_parameter",
                   "a voice turn speaks its answer: tools are not supported"),
           -1;
  json_t *q = json_deep_copy(req);
  if (!q) return API_SERVER(err, "out_of_memory", "out of memory"), -1;
  const char *drop[] = {"modalities", "audio", "stream", "stream_options"};
  for (size_t i = 0; i < sizeof drop / sizeof *drop; i++) json_object_del(q, drop[i]);
  json_object_set_new(q, "model", json_string(j->p->llm));
  if (!json_object_get(q, "max_tokens") && !json_object_get(q, "max_completion_tokens"))
    json_object_set_new(q, "max_tokens", json_integer(j->p->max_tokens));
  if (j->p->temperature >= 0 && !json_object_get(q, "temperature"))
    json_object_set_new(q, "temperature", json_real(j->p->temperature));
  json_t *msgs = json_object_get(q, "messages");
  size_t i, k = 0;
  json_t *m;
  double t = sy_mono_s();
  json_array_foreach(msgs, i, m) {
    json_t *content = json_object_get(m, "content");
    const char *role = json_string_value(json_object_get(m, "role"));
    if (role && !strcmp(role, "assistant") && json_is_object(json_object_get(m, "audio"))) {
      /* an earlier spoken answer: its transcript stands for it (audio is not kept here) */
      json_t *tr = json_object_get(json_object_get(m, "audio"), "transcript");
      if (!json_is_string(content))
        json_object_set_new(m, "content", json_is_string(tr) ? json_copy(tr) : json_string(""));
      json_object_del(m, "audio");
    }
    if (!json_is_array(content)) continue;
    size_t pi;
    json_t *part;
    json_array_foreach(content, pi, part) {
      const char *type = json_string_value(json_object_get(part, "type"));
      if (!type || strcmp(type, "input_audio") != 0) continue;
      if (++k > API_MAX_AUDIO) {
        json_decref(q);
        return API_BAD(err, "messages", "too_many_audio_parts",
                       "at most %d input_audio parts per request", API_MAX_AUDIO),
               -1;
      }
      if (!j->p->asr) {
        json_decref(q);
        return API_BAD(err, "messages", "unsupported_content",
                       "pipeline '%s' has no asr step: send text, not input_audio", j->p->name),
               -1;
      }
      sy_audio a = {0};
      if (decode_part(j->mx, json_object_get(part, "input_audio"), k, &a, err) != 0) {
        json_decref(q);
        return -1;
      }
      sy_buf text = {0};
      int rc = run_asr(j->d, j->mx, j->p, a.pcm, a.n, NULL, NULL, j->fd, &text, NULL, NULL, 0, err);
      sy_audio_free(&a);
      if (rc <= 0) {
        if (rc < 0) metrics_pipeline_failure(j->mt, j->row, METRICS_STEP_ASR);
        sy_buf_free(&text);
        json_decref(q);
        return rc;
      }
      json_t *tj = trimmed_json(text.data, text.len);
      sy_buf_free(&text);
      json_array_append(j->inputs, tj);
      json_array_set_new(content, pi, json_pack("{s:s, s:o}", "type", "text", "text", tj));
    }
  }
  if (k) j->stt = sy_mono_s() - t;
  if (j->p->instruction) {
    const char *r0 = json_string_value(json_object_get(json_array_get(msgs, 0), "role"));
    if (!r0 || (strcmp(r0, "system") && strcmp(r0, "developer")))
      json_array_insert_new(
          msgs, 0, json_pack("{s:s, s:s}", "role", "system", "content", j->p->instruction));
  }
  *out = q;
  return 1;
}

void pipe_voice_turn(sy_daemon *d, http_req *r, const matrix *mx, const matrix_pipeline *p,
                     const json_t *req) {
  api_error err = {0};
  voice_job *j = calloc(1, sizeof *j);
  if (!j) {
    API_SERVER(&err, "out_of_memory", "out of memory");
    http_reply_error(r, &err);
    return;
  }
  j->d = d;
  j->mx = mx;
  j->p = p;
  j->mt = sched_metrics(d->sc);
  j->row = metrics_model(j->mt, p->name);
  j->fd = http_client_fd(r);
  relay_init(&j->rl, &voice_ops, j, NULL, j->fd);
  j->t0 = sy_mono_s();
  j->created = (long long)time(NULL);
  j->sentences = json_array();
  j->inputs = json_array();
  j->llm = j->tts = (step){.d = d};
  j->finished =
      true; /* until the answer starts: an early return is a refusal, not a cancellation */
  api_random_id(j->id, sizeof j->id, "chatcmpl-");
  api_random_id(j->audio_id, sizeof j->audio_id, "audio_");
  snprintf(j->finish, sizeof j->finish, "stop");
  http_add_header(r, "X-Switchyard-Model", p->name);
  json_t *st = json_object_get(req, "stream");
  if (st && !json_is_null(st) && !json_is_boolean(st)) {
    API_BAD(&err, "stream", "invalid_type", "'stream' must be a boolean");
    goto refuse;
  }
  j->stream = json_is_true(st);
  if (voice_options(j, req, &err) != 0) goto refuse;
  json_t *q = NULL;
  int rc = voice_llm_request(j, req, &q, &err);
  if (rc == 0) {
    j->finished = false;
    voice_free(j);
    http_reply_abort(r);
    return;
  }
  if (rc < 0) goto refuse;
  api_gen g;
  rc = api_parse_generate(mx, NULL, q, true, &g, &err);
  json_decref(q);
  if (rc != 0) {
    if (err.param && !strcmp(err.param, "model")) step_failed(&err, p, PIPE_LLM, p->llm);
    goto refuse;
  }
  if (g.media) {
    api_gen_clear(&g);
    API_BAD(&err, "messages", "unsupported_content",
            "a voice pipeline takes text and input_audio parts, not images");
    goto refuse;
  }
  json_t *msg = g.msg;
  g.msg = NULL;
  api_gen_clear(&g);
  /* every step's worker before the first byte: a step that cannot load is a proper HTTP error */
  j->t_llm = sy_mono_s();
  if (step_acquire(&j->llm, d, mx, p, PIPE_LLM, p->llm, &err) != 0) {
    metrics_pipeline_failure(j->mt, j->row, METRICS_STEP_LLM);
    json_decref(msg);
    goto refuse;
  }
  if (j->audio_out && step_acquire(&j->tts, d, mx, p, PIPE_TTS, p->tts, &err) != 0) {
    metrics_pipeline_failure(j->mt, j->row, METRICS_STEP_TTS);
    json_decref(msg);
    goto refuse;
  }
  if (step_submit(&j->llm, msg, NULL, 0, &err) != 0) goto refuse;
  j->finished = false;
  if (j->stream) {
    /* the first move decides the status: an llm that refuses the prompt is an HTTP error */
    rc = voice_step(j);
    if (rc <= 0) {
      if (rc == 0) {
        voice_free(j);
        http_reply_abort(r);
        return;
      }
      err = j->err;
      j->finished = true;
      goto refuse;
    }
    sy_buf first = j->rl.out;
    j->rl.out = (sy_buf){0};
    emit_chunk(j, json_pack("{s:s, s:n}", "role", "assistant", "content"), NULL);
    sy_buf_append(&j->rl.out, first.data ? first.data : "", first.len);
    sy_buf_free(&first);
    relay_stream(&j->rl, r, 200, "text/event-stream");
    return;
  }
  while (!j->finished) {
    rc = voice_step(j);
    if (rc == 0) {
      voice_free(j);
      http_reply_abort(r);
      return;
    }
    if (rc < 0) {
      err = j->err;
      j->finished = true;
      goto refuse;
    }
  }
  voice_reply_whole(j, r);
  voice_free(j);
  return;
refuse:
  voice_free(j);
  http_reply_error(r, &err);
}
