/* transcribe.c — POST /v1/audio/transcriptions and /v1/audio/translations: the multipart form
 * (parsed once by api.c's route table) checked field by field, the file decoded to 16 kHz mono
 * float (audio.c), a whisper worker from the scheduler, its segments relayed (engines/relay.c) as
 * one answer in the asked format
 * (json, text, srt, vtt, verbose_json) or as server-sent events (transcript.text.delta, then
 * transcript.text.done). Never leaves a worker request running for a client that went away, and
 * never answers twice; a worker's error is answered as api_error.h's table says, never with a
 * status or code of this file's own. A transcription asked of an audio-input LLM (an mmproj that
 * takes audio) is a chat instead: one user message with the audio and the model's
 * transcribe_prompt, its answer's text relayed the same way (json and text only: an LLM gives no
 * timestamps). Was api_audio.c (speech to text; text to speech is speech.c). Exports
 * api_transcribe_*. */
#include "api/transcribe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "engines/relay.h"
#include "http/multipart.h"
#include "http/sse.h"
#include "log.h"
#include "media/audio.h"
#include "parse/api_parse.h"
#include "virtual/pipeline.h"

/* ---- pure helpers -------------------------------------------------------------------------- */

int api_transcribe_format(const char *s) {
  static const char *const names[] = {"json", "text", "srt", "vtt", "verbose_json"};
  for (int i = 0; s && i < 5; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

void api_transcribe_timestamp(double secs, bool srt, char *out, size_t cap) {
  long long ms = isfinite(secs) && secs > 0 ? llround(secs * 1000.0) : 0;
  if (ms > 359999999LL) ms = 359999999LL; /* 99:59:59.999 */
  snprintf(out, cap, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
           srt ? ',' : '.', ms % 1000);
}

static double jnum(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* text trimmed of ASCII white space at both ends: [*s, *s + return) */
static size_t trimmed(const char **s) {
  const char *p = *s ? *s : "";
  size_t n = strlen(p);
  while (n && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r')) n--;
  *s = p;
  return n;
}

int api_transcribe_subtitles(const json_t *segments, bool srt, sy_buf *out) {
  int rc = srt ? 0 : sy_buf_puts(out, "WEBVTT\n\n");
  double prev = 0;
  size_t i, cue = 0;
  json_t *seg;
  json_array_foreach(segments, i, seg) {
    const char *t = json_string_value(json_object_get(seg, "text"));
    size_t n = trimmed(&t);
    if (n == 0) continue;
    double a = jnum(seg, "start"), b = jnum(seg, "end");
    if (!(a >= prev)) a = prev;
    if (!(b >= a)) b = a;
    prev = a;
    char ta[32], tb[32];
    api_transcribe_timestamp(a, srt, ta, sizeof ta);
    api_transcribe_timestamp(b, srt, tb, sizeof tb);
    /* a blank line would end the cue early: cue text never holds one */
    sy_buf line = {0};
    for (size_t k = 0; k < n; k++)
      if (t[k] != '\r' && !(t[k] == '\n' && k + 1 < n && t[k + 1] == '\n'))
        sy_buf_append(&line, t + k, 1);
    if (srt) rc |= sy_buf_printf(out, "%zu\n", ++cue);
    rc |= sy_buf_printf(out, "%s --> %s\n%s\n\n", ta, tb, line.data ? line.data : "");
    sy_buf_free(&line);
  }
  return rc ? -1 : 0;
}

/* ---- the request --------------------------------------------------------------------------- */

typedef struct tr_job {
  sy_daemon *d;
  const matrix_model *model;
  worker *w;
  wreq *q;
  relay rl; /* the worker's events to the client (its out: SSE waiting to be written) */
  bool translate, stream, want_words, want_segments;
  int fmt;
  json_t *segments, *words; /* collected (not streamed) */
  sy_buf text;              /* every segment's text, in order */
  bool started;             /* streamed: a delta has gone out (the first is trimmed at its start) */
  bool finished;
  json_t *done;    /* whole: the last frame's header, kept for the reply */
  bool done_error; /* ... and it was an error frame */
  bool llm;        /* an audio LLM's generate: "delta" frames carry the text */
  double duration; /* llm: seconds of audio sent */
} tr_job;

static void job_free(void *cls) {
  tr_job *j = cls;
  if (!j->finished) atomic_fetch_add(&j->d->cancelled, 1);
  relay_deinit(&j->rl);
  wreq_free(j->q); /* cancels the worker's request if it still runs */
  sched_release(j->d->sc, j->model, j->w);
  json_decref(j->segments);
  json_decref(j->words);
  sy_buf_free(&j->text);
  json_decref(j->done);
  free(j);
}

void api_transcribe_worker_error(const json_t *hdr, api_error *e) { api_error_from_worker(hdr, e); }

/* A segment frame: its text (the stream's delta), and, when collecting, its JSON. Returns the
 * text to stream (trimmed at the very start of the transcript), owned by the frame. */
static const char *job_segment(tr_job *j, const json_t *h, size_t *len) {
  const char *t = json_string_value(json_object_get(h, "text"));
  if (!t) t = "";
  if (!j->started) {
    while (*t == ' ') t++;
    j->started = *t != '\0';
  }
  *len = strlen(t);
  sy_buf_append(&j->text, t, *len);
  if (!j->stream && !j->llm) {
    json_t *seg = json_pack("{s:I, s:i, s:f, s:f, s:O, s:[], s:f}", "id",
                            (json_int_t)json_array_size(j->segments), "seek", 0, "start",
                            jnum(h, "t0"), "end", jnum(h, "t1"), "text", json_object_get(h, "text"),
                            "tokens", "temperature", 0.0);
    if (seg) json_array_append_new(j->segments, seg);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(h, "words"), i, w) {
      if (json_is_string(json_object_get(w, "word")))
        json_array_append_new(
            j->words, json_pack("{s:O, s:f, s:f}", "word", json_object_get(w, "word"), "start",
                                jnum(w, "start"), "end", jnum(w, "end")));
    }
  }
  return t;
}

static json_t *usage_json(double duration) {
  return json_pack("{s:s, s:I}", "type", "duration", "seconds", (json_int_t)ceil(duration));
}

/* The usage of a finished job: whisper's seconds of audio, or an LLM's tokens (OpenAI's shape for
 * its token-billed transcription models). */
static json_t *job_usage(const tr_job *j, const json_t *done) {
  if (!j->llm) return usage_json(jnum(done, "duration"));
  json_int_t in = (json_int_t)jnum(done, "prompt_tokens"),
             out = (json_int_t)jnum(done, "completion_tokens");
  return json_pack("{s:s, s:I, s:I, s:I, s:f}", "type", "tokens", "input_tokens", in,
                   "output_tokens", out, "total_tokens", in + out, "seconds", j->duration);
}

/* A frame with transcript text: whisper's "segment", or an LLM's content "delta" (its reasoning and
 * tool-call deltas are not the transcript). */
static bool job_is_text(const tr_job *j, const ipc_msg *m) {
  const char *op = ipc_op(m);
  return j->llm ? strcmp(op, "delta") == 0 && json_is_string(json_object_get(m->hdr, "text"))
                : strcmp(op, "segment") == 0;
}

/* ---- streamed answers ---- */

static void emit(sy_buf *out, json_t *ev) {
  if (ev) sse_append_json(out, ev);
  json_decref(ev);
}

/* The relay's translate function: one worker event as SSE text in out. */
static relay_rc stream_event(void *job, const ipc_msg *m, sy_buf *out) {
  tr_job *j = job;
  const char *op = ipc_op(m);
  if (job_is_text(j, m)) {
    size_t n;
    const char *t = job_segment(j, m->hdr, &n);
    if (n) emit(out, json_pack("{s:s, s:s%}", "type", "transcript.text.delta", "delta", t, n));
  } else if (strcmp(op, "done") == 0) {
    emit(out,
         json_pack("{s:s, s:s%, s:o}", "type", "transcript.text.done", "text",
                   j->text.data ? j->text.data : "", j->text.len, "usage", job_usage(j, m->hdr)));
    j->finished = true;
    return RELAY_END;
  } else if (strcmp(op, "error") == 0) {
    api_error e;
    api_transcribe_worker_error(m->hdr, &e);
    json_t *ev = api_error_json(&e);
    if (ev) json_object_set_new(ev, "type", json_string("error"));
    emit(out, ev);
    j->finished = true;
    return RELAY_END;
  }
  return RELAY_MORE;
}

static const relay_ops stream_ops = {.event = stream_event, .free = job_free};

/* relay_collect's function for a whole answer: segments collected, the last frame kept. */
static relay_rc whole_event(void *job, const ipc_msg *m, sy_buf *out) {
  (void)out;
  tr_job *j = job;
  const char *op = ipc_op(m);
  if (job_is_text(j, m)) {
    size_t n;
    job_segment(j, m->hdr, &n);
  } else if (strcmp(op, "done") == 0 || strcmp(op, "error") == 0) {
    j->finished = true;
    j->done = json_incref(m->hdr);
    j->done_error = strcmp(op, "error") == 0;
    return RELAY_END;
  }
  return RELAY_MORE;
}

/* ---- whole answers ---- */

static void reply_text(http_req *r, const char *content_type, sy_buf *b) {
  http_reply_buf(r, 200, content_type, b);
}

static void reply_whole(tr_job *j, http_req *r, const json_t *done) {
  double duration = jnum(done, "duration");
  const char *all = j->text.data;
  size_t n = trimmed(&all);
  sy_buf b = {0};
  if (j->fmt == AUD_TEXT) {
    sy_buf_append(&b, all, n);
    sy_buf_puts(&b, "\n");
    reply_text(r, "text/plain; charset=utf-8", &b);
  } else if (j->fmt == AUD_SRT || j->fmt == AUD_VTT) {
    api_transcribe_subtitles(j->segments, j->fmt == AUD_SRT, &b);
    reply_text(r, j->fmt == AUD_SRT ? "text/plain; charset=utf-8" : "text/vtt; charset=utf-8", &b);
  } else if (j->fmt == AUD_JSON) {
    http_reply_json(r, 200, json_pack("{s:s%, s:o}", "text", all, n, "usage", job_usage(j, done)));
  } else {
    const char *lang = json_string_value(json_object_get(done, "language_name"));
    json_t *v =
        json_pack("{s:s, s:s, s:f, s:s%}", "task", j->translate ? "translate" : "transcribe",
                  "language", lang ? lang : "", "duration", duration, "text", all, n);
    if (v && j->want_segments) json_object_set(v, "segments", j->segments);
    if (v && j->want_words) json_object_set(v, "words", j->words);
    json_t *speech = json_object_get(done, "speech");
    if (v && json_is_array(speech))
      json_object_set(v, "speech_segments", speech); /* VAD's view (extension) */
    if (v) json_object_set_new(v, "usage", usage_json(duration));
    http_reply_json(r, 200, v);
  }
}

/* ---- the form ---- */

typedef struct tr_form {
  const matrix_model *model;
  const matrix_pipeline *pipe; /* a transcribe_clean pipeline: model is its asr step */
  const mp_part *file;
  char language[40];
  char *prompt;
  int fmt;
  bool has_temperature;
  double temperature;
  bool
      has_temperature_inc; /* whisper-server's field: the fallback ladder's step, 0 = no fallback */
  double temperature_inc;
  bool stream, words, segments, vad;
} tr_form;

/* A text field as a NUL-terminated copy in out (cap bytes); -1 when longer or not text. */
static int field_str(const mp_part *p, char *out, size_t cap) {
  if (p->len >= cap || memchr(p->data, '\0', p->len)) return -1;
  memcpy(out, p->data, p->len);
  out[p->len] = '\0';
  return 0;
}

static int field_bool(const mp_part *p, const char *name, bool *out, api_error *err) {
  char v[8];
  if (field_str(p, v, sizeof v) == 0 && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0))
    *out = true;
  else if (field_str(p, v, sizeof v) == 0 && (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0))
    *out = false;
  else
    return API_BAD(err, name, "invalid_value", "'%s' must be true or false", name), -1;
  return 0;
}

/* A number from 0 to 1 (temperature, temperature_inc) into *out; -1 + err (invalid_value on
 * name) when it is anything else. */
static int field_unit(const mp_part *p, const char *name, double *out, api_error *err) {
  char v[32], *end;
  double t = field_str(p, v, sizeof v) == 0 ? strtod(v, &end) : NAN;
  if (!(t >= 0 && t <= 1) || *end)
    return API_BAD(err, name, "invalid_value", "'%s' must be a number between 0 and 1", name), -1;
  *out = t;
  return 0;
}

/* The form (parsed once by api.c's route table: c->parts) checked field by field into *f; its model
 * is c->target (a transcribe_clean pipeline: its asr step). 0, or -1 + err. */
static int parse_form(const api_call *c, bool translate, tr_form *f, api_error *err) {
  memset(f, 0, sizeof *f);
  const matrix *mx = c->mx;
  const mp_part *parts = c->parts, *p;
  size_t np = c->n_parts;
  const char *what = translate ? "translation" : "transcription";
  if (c->target.kind ==
      API_TARGET_PIPELINE) { /* pipeline.c: its asr step is checked as the model */
    f->pipe = c->target.pipeline;
    if (translate || f->pipe->kind != MATRIX_PIPE_TRANSCRIBE_CLEAN)
      return API_BAD(err, "model", "wrong_capability", "'%s' is a %s pipeline: %s", f->pipe->name,
                     matrix_pipeline_kind_name(f->pipe->kind),
                     translate ? "translations need a whisper model"
                               : "use it with /v1/chat/completions"),
             -1;
    json_t *req = json_pack("{s:s}", "model", f->pipe->asr);
    f->model = api_find_model(mx, req, MATRIX_CAP_TRANSCRIBE, what, err);
    json_decref(req);
  } else {
    f->model = api_target_model(&c->target, MATRIX_CAP_TRANSCRIBE, what, err);
  }
  if (!f->model) return -1;
  bool llm = f->model->engine == MATRIX_ENGINE_LLAMA && (f->model->caps & MATRIX_CAP_AUDIO);
  if (llm && translate)
    return API_BAD(err, "model", "wrong_capability",
                   "model '%s' is an audio LLM: ask it for a translation in /v1/chat/completions "
                   "(translations "
                   "here need a whisper model)",
                   f->model->name),
           -1;
  if (f->model->engine != MATRIX_ENGINE_WHISPER && !llm) {
    char caps[128];
    return API_BAD(err, "model", "wrong_capability",
                   "model '%s' does not support %s (its capabilities: %s)", f->model->name,
                   translate ? "translation" : "transcription",
                   matrix_caps_str(f->model->caps & ~(unsigned)MATRIX_CAP_TRANSCRIBE, caps,
                                   sizeof caps)),
           -1;
  }
  f->file = mp_find(parts, np, "file");
  if (!f->file)
    return API_BAD(err, "file", "missing_required_parameter", "you must provide a file"), -1;
  if (f->file->len == 0)
    return API_BAD(err, "file", "invalid_value", "the uploaded file is empty"), -1;

  if (!translate && (p = mp_find(parts, np, "language")) && p->len) {
    if (field_str(p, f->language, sizeof f->language) != 0)
      return API_BAD(err, "language", "invalid_value",
                     "'language' must be an ISO-639-1 code such as en"),
             -1;
  }
  if ((p = mp_find(parts, np, "prompt")) && p->len) {
    if (p->len > 16384 || memchr(p->data, '\0', p->len))
      return API_BAD(err, "prompt", "invalid_value",
                     "'prompt' must be text of at most 16384 bytes"),
             -1;
    if (!(f->prompt = strndup(p->data, p->len)))
      return api_error_set(err, 500, "server_error", "out_of_memory", NULL, "out of memory"), -1;
  }
  f->fmt = AUD_JSON;
  if ((p = mp_find(parts, np, "response_format")) && p->len) {
    char v[16];
    f->fmt = field_str(p, v, sizeof v) == 0 ? api_transcribe_format(v) : -1;
    if (f->fmt < 0)
      return API_BAD(err, "response_format", "invalid_value",
                     "'response_format' must be one of json, text, srt, verbose_json, vtt"),
             -1;
  }
  if ((p = mp_find(parts, np, "temperature")) && p->len) {
    if (field_unit(p, "temperature", &f->temperature, err)) return -1;
    f->has_temperature = true;
  }
  if ((p = mp_find(parts, np, "temperature_inc")) && p->len) {
    if (field_unit(p, "temperature_inc", &f->temperature_inc, err)) return -1;
    f->has_temperature_inc = true;
  }
  if ((p = mp_find(parts, np, "stream")) && p->len && field_bool(p, "stream", &f->stream, err))
    return -1;
  f->vad = f->model->vad_model !=
           NULL; /* on when the model has a VAD model, unless the form says vad=false */
  if ((p = mp_find(parts, np, "vad")) && p->len && field_bool(p, "vad", &f->vad, err)) return -1;
  if (f->vad && !f->model->vad_model)
    return API_BAD(err, "vad", "invalid_value", "model '%s' has no vad_model configured",
                   f->model->name),
           -1;
  bool any = false;
  for (size_t i = 0; i < np; i++) {
    if (strcmp(parts[i].name, "timestamp_granularities[]") &&
        strcmp(parts[i].name, "timestamp_granularities"))
      continue;
    char v[16];
    any = true;
    if (field_str(&parts[i], v, sizeof v) == 0 && strcmp(v, "word") == 0)
      f->words = true;
    else if (field_str(&parts[i], v, sizeof v) == 0 && strcmp(v, "segment") == 0)
      f->segments = true;
    else
      return API_BAD(err, "timestamp_granularities", "invalid_value",
                     "'timestamp_granularities[]' items must be word or segment"),
             -1;
  }
  if (!any) f->segments = true;
  if (any && f->fmt != AUD_VERBOSE)
    return API_BAD(err, "timestamp_granularities", "invalid_value",
                   "timestamp_granularities needs response_format verbose_json"),
           -1;
  if (f->pipe && (f->fmt == AUD_SRT || f->fmt == AUD_VTT || f->stream))
    return API_BAD(err, f->stream ? "stream" : "response_format", "unsupported_parameter",
                   "pipeline '%s' answers json, text or verbose_json, not streamed (its cleaned "
                   "text has no "
                   "timestamps)",
                   f->pipe->name),
           -1;
  if (llm && !f->pipe && f->fmt != AUD_JSON && f->fmt != AUD_TEXT)
    return API_BAD(err, "response_format", "unsupported_parameter",
                   "response_format %s needs timestamps, which model '%s' (an audio LLM) does not "
                   "give: use json or "
                   "text",
                   f->fmt == AUD_SRT   ? "srt"
                   : f->fmt == AUD_VTT ? "vtt"
                                       : "verbose_json",
                   f->model->name),
           -1;
  if (f->stream && f->fmt != AUD_JSON && f->fmt != AUD_TEXT)
    return API_BAD(
               err, "stream", "unsupported_parameter",
               "streaming is supported with response_format json or text (the events carry text)"),
           -1;
  return 0;
}

/* The generate message of a transcription by an audio LLM: one user message, the audio (its
 * marker) then the model's instruction, with the form's language and prompt as hints after it;
 * greedy unless the form gives a temperature; at most 64 + 16 tokens per second of audio (speech
 * is a few words a second: the bound only stops a model that loops). The n samples (16 kHz) go
 * as the payload. */
static json_t *llm_message(const tr_form *f, size_t n) {
  sy_buf c = {0};
  const char *instr =
      f->model->transcribe_prompt ? f->model->transcribe_prompt : MATRIX_TRANSCRIBE_PROMPT;
  sy_buf_printf(&c, "%s\n%s", API_IMAGE_MARKER, instr);
  if (f->language[0] && strcmp(f->language, "auto") != 0)
    sy_buf_printf(&c, "\nThe language is %s.", f->language);
  if (f->prompt) sy_buf_printf(&c, "\n%s", f->prompt);
  json_t *msg =
      c.data ? json_pack("{s:s, s:[{s:s, s:s%}], s:I, s:f, s:[{s:I}]}", "op", "generate",
                         "messages", "role", "user", "content", c.data, c.len, "max_tokens",
                         (json_int_t)(64 + 16 * ((n + 15999) / 16000)), "temperature",
                         f->has_temperature ? f->temperature : 0.0, "audios", "n", (json_int_t)n)
             : NULL;
  sy_buf_free(&c);
  return msg;
}

void api_transcribe_handle(sy_daemon *d, http_req *r, api_call *c, bool translate) {
  api_error err = {0};
  tr_form f;
  const matrix *mx = c->mx;
  if (parse_form(c, translate, &f, &err) != 0) {
    free(f.prompt);
    http_reply_error(r, &err);
    return;
  }
  atomic_fetch_add(&d->requests, 1);
  /* decode before loading anything: a bad file costs no model load */
  sy_audio a = {0};
  bool unsupported = false;
  char aerr[256] = "";
  sy_audio_limits lim = {.max_bytes = mx->max_upload_bytes};
  int drc =
      sy_audio_decode(f.file->data, f.file->len, 16000, &lim, &a, &unsupported, aerr, sizeof aerr);
  f.file = NULL; /* the samples are in a */
  if (drc != 0 || a.n == 0) {
    if (unsupported)
      api_error_set(&err, 415, "invalid_request_error", "unsupported_audio_format", "file", "%s",
                    aerr);
    else
      API_BAD(&err, "file", "invalid_audio", "could not decode the audio file: %s",
              drc != 0 ? aerr : "it holds no samples");
    sy_audio_free(&a);
    free(f.prompt);
    http_reply_error(r, &err);
    return;
  }
  if (f.pipe) { /* transcribe and clean: pipeline.c runs the steps and answers */
    pipe_transcribe_clean(d, r, mx, f.pipe, a.pcm, a.n, f.language, f.prompt, f.fmt);
    sy_audio_free(&a);
    free(f.prompt);
    return;
  }
  bool llm = f.model->engine == MATRIX_ENGINE_LLAMA;
  json_t *msg;
  if (llm) {
    msg = llm_message(&f, a.n);
  } else {
    msg = json_pack("{s:s, s:b, s:b, s:b}", "op", "transcribe", "translate", translate,
                    "word_timestamps", f.words, "vad", f.vad);
    if (msg && f.language[0]) json_object_set_new(msg, "language", json_string(f.language));
    if (msg && f.prompt) json_object_set_new(msg, "prompt", json_string(f.prompt));
    if (msg && f.has_temperature) json_object_set_new(msg, "temperature", json_real(f.temperature));
    if (msg && f.has_temperature_inc)
      json_object_set_new(msg, "temperature_inc", json_real(f.temperature_inc));
  }
  free(f.prompt);

  worker *w = sched_acquire(d->sc, f.model, &err);
  if (!w) {
    json_decref(msg);
    sy_audio_free(&a);
    http_reply_error(r, &err);
    return;
  }
  tr_job *j = calloc(1, sizeof *j);
  if (!j) {
    json_decref(msg);
    sy_audio_free(&a);
    sched_release(d->sc, f.model, w);
    API_SERVER(&err, "out_of_memory", "out of memory");
    http_reply_error(r, &err);
    return;
  }
  *j = (tr_job){.d = d,
                .model = f.model,
                .w = w,
                .translate = translate,
                .stream = f.stream,
                .want_words = f.words,
                .want_segments = f.segments,
                .fmt = f.fmt,
                .segments = json_array(),
                .words = json_array(),
                .llm = llm,
                .duration = (double)a.n / 16000.0};
  j->q = worker_submit_payload(w, msg, a.pcm, a.n * sizeof(float), &err);
  sy_audio_free(&a);
  if (!j->q) {
    j->finished = true;
    job_free(j);
    http_reply_error(r, &err);
    return;
  }
  relay_init(&j->rl, &stream_ops, j, j->q, http_client_fd(r));
  http_add_header(r, "X-Switchyard-Model", f.model->name);
  /* the first event decides the status: a refused request is an HTTP error even when streamed */
  ipc_msg m;
  if (!relay_next(&j->rl, &m)) {
    job_free(j);
    http_reply_abort(r);
    return;
  }
  if (strcmp(ipc_op(&m), "error") == 0) {
    api_transcribe_worker_error(m.hdr, &err);
    ipc_msg_clear(&m);
    j->finished = true;
    job_free(j);
    http_reply_error(r, &err);
    return;
  }
  relay_put_back(&j->rl, &m);
  if (j->stream) {
    relay_stream(&j->rl, r, 200, "text/event-stream");
    return;
  }
  if (relay_collect(&j->rl, whole_event, j) != RELAY_END) {
    http_reply_abort(r); /* the client went away: freeing the job cancels the request */
  } else if (j->done_error) {
    api_transcribe_worker_error(j->done, &err);
    http_reply_error(r, &err);
  } else {
    const char *fr = json_string_value(json_object_get(j->done, "finish_reason"));
    if (fr && strcmp(fr, "cancelled") == 0)
      http_reply_abort(r);
    else
      reply_whole(j, r, j->done);
  }
  job_free(j);
}
