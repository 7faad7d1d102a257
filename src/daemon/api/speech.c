/* speech.c — see speech.h. The status is chosen on the worker's first event (an unknown
 * voice is a proper 400); after that the audio is encoded and sent chunk by chunk (HTTP chunked
 * transfer, through engines/relay.c), so the first bytes leave while later sentences are still
 * being synthesised. A client that hangs up cancels the synthesis (the request is freed, which
 * cancels it in the worker).
 * Must never keep synthesising for a client that went away, and never answer a worker's error
 * other than as api_error.h's table says (api_speech_worker_error). */
#include "api/speech.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "engines/relay.h"
#include "http/sse.h"
#include "log.h"
#include "media/audio.h"
#include "media/base64.h"
#include "parse/api_parse.h"

static const char *const formats[] = {"mp3", "opus", "aac", "flac", "wav", "pcm"};

/* Code points of a valid UTF-8 string (jansson's strings are valid UTF-8). */
static size_t utf8_chars(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

int api_parse_speech(const matrix *mx, const api_target *t, const json_t *req, api_speech *out,
                     api_error *err) {
  memset(out, 0, sizeof *out);
  api_target own;
  if (!t) {
    api_resolve(mx, NULL, req, &own);
    t = &own;
  }
  const matrix_model *m = api_target_model(t, MATRIX_CAP_SPEECH, "speech", err);
  if (!m) return -1;
  json_t *in = json_object_get(req, "input");
  if (!in || json_is_null(in)) {
    API_BAD(err, "input", "missing_required_parameter", "you must provide an input parameter");
    return -1;
  }
  if (!json_is_string(in)) {
    API_BAD(err, "input", "invalid_type", "'input' must be a string");
    return -1;
  }
  size_t chars = utf8_chars(json_string_value(in), json_string_length(in));
  if (chars == 0) {
    API_BAD(err, "input", "invalid_value", "'input' must not be empty");
    return -1;
  }
  if (chars > API_SPEECH_MAX_CHARS) {
    API_BAD(err, "input", "string_above_max_length",
            "'input' is %zu characters long; the maximum is %d characters", chars,
            API_SPEECH_MAX_CHARS);
    return -1;
  }
  json_t *v = json_object_get(req, "voice");
  const char *voice = "";
  json_t *clip = json_is_object(v) ? json_object_get(v, "audio") : NULL;
  if (clip) { /* a Switchyard extension: {"audio": base64 or data: URL of a reference clip} */
    if (!json_is_string(clip) || json_string_length(clip) == 0) {
      API_BAD(err, "voice", "invalid_type",
              "'voice.audio' must be a reference clip: base64 or a data: URL");
      return -1;
    }
    if (!m->voice_upload) {
      API_BAD(err, "voice", "voice_upload_disabled",
              "model '%s' does not take uploaded voices (voice_upload in the model matrix); use a "
              "voice name",
              m->name);
      return -1;
    }
  } else if (v && !json_is_null(v)) {
    /* OpenAI also takes {"id": "voice_..."} for custom voices: the id names the voice here */
    json_t *s = json_is_object(v) ? json_object_get(v, "id") : v;
    if (!json_is_string(s) || json_string_length(s) > 100 ||
        strlen(json_string_value(s)) != json_string_length(s)) {
      API_BAD(err, "voice", "invalid_type",
              "'voice' must be a voice name (a string of at most 100 characters)");
      return -1;
    }
    voice = json_string_value(s);
  }
  json_t *f = json_object_get(req, "response_format");
  const char *fmt = "mp3";
  if (f && !json_is_null(f)) {
    fmt = json_string_value(f);
    bool ok = false;
    for (size_t i = 0; fmt && i < sizeof formats / sizeof *formats; i++)
      ok = ok || strcmp(fmt, formats[i]) == 0;
    if (!ok) {
      API_BAD(err, "response_format", "invalid_value",
              "'response_format' must be one of mp3, opus, aac, flac, wav, pcm");
      return -1;
    }
  }
  json_t *sp = json_object_get(req, "speed");
  double speed = 1.0;
  if (sp && !json_is_null(sp)) {
    speed = json_is_number(sp) ? json_number_value(sp) : NAN;
    if (!(speed >= 0.25 && speed <= 4.0)) {
      API_BAD(err, "speed", "invalid_value", "'speed' must be a number between 0.25 and 4.0");
      return -1;
    }
  }
  json_t *sf = json_object_get(req, "stream_format");
  bool sse = false;
  if (sf && !json_is_null(sf)) {
    const char *s = json_string_value(sf);
    if (!s || (strcmp(s, "audio") != 0 && strcmp(s, "sse") != 0)) {
      API_BAD(err, "stream_format", "invalid_value",
              "'stream_format' must be \"audio\" or \"sse\"");
      return -1;
    }
    sse = s[0] == 's';
  }
  /* a Switchyard extension: neural voices sample noise, a seed makes the audio repeatable */
  json_t *seed = json_object_get(req, "seed");
  if (seed && !json_is_null(seed) && !(json_is_integer(seed) && json_integer_value(seed) >= 0)) {
    API_BAD(err, "seed", "invalid_type", "'seed' must be an integer >= 0");
    return -1;
  }
  /* a Switchyard extension: the language a neural voice speaks (Qwen3-TTS); else the voice's */
  json_t *lang = json_object_get(req, "language");
  if (lang && !json_is_null(lang) &&
      !(json_is_string(lang) && json_string_length(lang) >= 1 && json_string_length(lang) <= 32 &&
        strspn(json_string_value(lang), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") ==
            json_string_length(lang))) {
    API_BAD(err, "language", "invalid_value",
            "'language' must be a language code or name such as en or english");
    return -1;
  }
  out->msg =
      json_pack("{s:s, s:O, s:s, s:f}", "op", "speak", "input", in, "voice", voice, "speed", speed);
  if (!out->msg) {
    API_SERVER(err, "out_of_memory", "out of memory");
    return -1;
  }
  if (json_is_integer(seed)) json_object_set(out->msg, "seed", seed);
  if (json_is_string(lang)) json_object_set(out->msg, "language", lang);
  if (clip) out->clip = json_incref(clip);
  out->model = m;
  snprintf(out->format, sizeof out->format, "%s", fmt);
  out->sse = sse;
  out->n_chars = chars;
  return 0;
}

void api_speech_clear(api_speech *s) {
  json_decref(s->msg);
  s->msg = NULL;
  json_decref(s->clip);
  s->clip = NULL;
}

/* ---- helpers ---- */

/* A request's reference clip (voice.audio): base64 (or a data: URL) of an audio file, decoded here
 * like every upload (the worker never parses a client's file) and handed over as a 16-bit WAV at
 * API_SPEECH_RATE, 0.5 to API_SPEECH_MAX_CLIP_S seconds. 0, or -1 + err (400; 415 for a format
 * this build cannot read). */
static int speech_clip(const matrix *mx, const json_t *clip, sy_buf *wav, api_error *err) {
  size_t max = mx->max_upload_bytes ? mx->max_upload_bytes : SY_AUDIO_DEFAULT_MAX_BYTES;
  char e[256] = "";
  sy_audio a = {0};
  bool unsupported = false;
  int rc = api_audio_b64(clip, max, API_SPEECH_RATE, API_SPEECH_MAX_CLIP_S, &a, &unsupported, e,
                         sizeof e);
  if (rc == 0 && a.n < API_SPEECH_RATE / 2) {
    snprintf(e, sizeof e, "the clip is %.2f s; at least 0.5 s of speech is needed",
             (double)a.n / API_SPEECH_RATE);
    rc = -1;
  }
  if (rc == 0)
    rc = sy_audio_encode(a.pcm, a.n, API_SPEECH_RATE, "wav", API_SPEECH_RATE, wav, e, sizeof e);
  sy_audio_free(&a);
  if (rc != 0) {
    api_error_set(err, unsupported ? 415 : 400, "invalid_request_error", "invalid_voice_audio",
                  "voice", "voice.audio: could not use the reference clip%s: %s",
                  unsupported ? " (a format this build cannot read)" : "", e);
    return -1;
  }
  return 0;
}

void api_speech_worker_error(const json_t *hdr, api_error *e) { api_error_from_worker(hdr, e); }

/* ---- POST /v1/audio/speech ---- */

typedef struct speech_job {
  sy_daemon *d;
  const matrix_model *model;
  worker *w;
  wreq *q;
  relay rl; /* the worker's events to the client (its out: the bytes for the client) */
  bool sse, finished;
  char format[8];
  size_t n_chars;
  sy_audio_enc *enc;
  int in_rate;
  sy_buf audio; /* encoded bytes not yet sent as an SSE event */
} speech_job;

static void speech_job_free(void *cls) {
  speech_job *j = cls;
  if (!j->finished && j->q) atomic_fetch_add(&j->d->cancelled, 1); /* the client went away */
  wreq_free(j->q); /* cancels the synthesis unless it ended */
  sched_release(j->d->sc, j->model, j->w);
  sy_audio_enc_free(j->enc);
  sy_buf_free(&j->audio);
  relay_deinit(&j->rl);
  free(j);
}

/* Move what the encoder produced into the client's bytes (raw, or one SSE delta event). */
static int flush_audio(speech_job *j) {
  if (j->audio.len == 0) return 0;
  int rc = 0;
  if (!j->sse) {
    rc = sy_buf_append(&j->rl.out, j->audio.data, j->audio.len);
  } else {
    char *s = sy_base64_encode(j->audio.data, j->audio.len);
    json_t *ev = s ? json_pack("{s:s, s:s}", "type", "speech.audio.delta", "audio", s) : NULL;
    rc = ev ? sse_append_json(&j->rl.out, ev) : -1;
    json_decref(ev);
    free(s);
  }
  sy_buf_consume(&j->audio, j->audio.len);
  return rc;
}

static int ensure_encoder(speech_job *j, int rate, api_error *err) {
  if (j->enc) return 0;
  char e[256] = "";
  j->in_rate = rate > 0 ? rate : 22050;
  j->enc = sy_audio_enc_new(j->format, j->in_rate, API_SPEECH_RATE, e, sizeof e);
  if (!j->enc) {
    API_BAD(err, "response_format", "unsupported_format", "response_format '%s': %s", j->format,
            *e ? e : "not supported by this build");
    return -1;
  }
  return 0;
}

/* One worker event into j->rl.out. Returns 0, or -1 when the stream must end abnormally (err set).
 */
static int speech_event(speech_job *j, const ipc_msg *m, api_error *err) {
  const char *op = ipc_op(m);
  int rate = (int)json_integer_value(json_object_get(m->hdr, "rate"));
  if (strcmp(op, "audio") == 0) {
    if (ensure_encoder(j, rate, err)) return -1;
    size_t n = m->payload_len / sizeof(float);
    if (n && sy_audio_enc_feed(j->enc, (const float *)m->payload, n, &j->audio) != 0) {
      API_SERVER(err, "encode_failed", "the audio encoder failed: %s", sy_audio_enc_error(j->enc));
      return -1;
    }
    return flush_audio(j);
  }
  if (strcmp(op, "done") == 0) {
    j->finished = true;
    if (ensure_encoder(j, rate, err) || sy_audio_enc_finish(j->enc, &j->audio) != 0) {
      if (!err->status)
        API_SERVER(err, "encode_failed", "the audio encoder failed: %s",
                   sy_audio_enc_error(j->enc));
      return -1;
    }
    if (flush_audio(j)) return -1;
    if (j->sse) {
      long long in = json_integer_value(json_object_get(m->hdr, "samples"));
      int rate_out = sy_audio_enc_rate(j->enc);
      long long out = j->in_rate > 0 ? llround((double)in * rate_out / j->in_rate) : 0;
      json_t *ev = json_pack("{s:s, s:{s:I, s:I, s:I}, s:I, s:i}", "type", "speech.audio.done",
                             "usage", "input_tokens", (json_int_t)j->n_chars, "output_tokens",
                             (json_int_t)0, "total_tokens", (json_int_t)j->n_chars, "samples",
                             (json_int_t)out, "sample_rate", rate_out);
      int rc = ev ? sse_append_json(&j->rl.out, ev) : -1;
      json_decref(ev);
      return rc;
    }
    return 0;
  }
  if (strcmp(op, "error") == 0) {
    j->finished = true;
    api_speech_worker_error(m->hdr, err);
    return -1;
  }
  return 0; /* an op we do not know: ignore */
}

/* The relay's translate function: one worker event as the client's bytes. After the first event
 * (which chose the status) an error can only end the stream: an SSE error event, or raw audio
 * cut short (it cannot carry one). */
static relay_rc speech_relay_event(void *job, const ipc_msg *m, sy_buf *out) {
  speech_job *j = job;
  api_error err = {0};
  if (speech_event(j, m, &err) == 0) return j->finished ? RELAY_END : RELAY_MORE;
  LOG_W("speech: %s", err.message);
  if (!j->sse) return RELAY_ABORT;
  json_t *e = api_error_json(&err);
  if (e) json_object_set_new(e, "type", json_string("error"));
  if (e) sse_append_json(out, e);
  json_decref(e);
  j->finished = true;
  return RELAY_END;
}

static const relay_ops speech_ops = {.event = speech_relay_event, .free = speech_job_free};

void api_speech_handle(sy_daemon *d, http_req *r, api_call *c) {
  api_error err = {0};
  api_speech s;
  if (api_parse_speech(c->mx, &c->target, c->req, &s, &err) != 0) {
    http_reply_error(r, &err);
    return;
  }
  sy_buf clip = {0}; /* before any model loads: a bad clip costs nothing */
  int crc = s.clip ? speech_clip(c->mx, s.clip, &clip, &err) : 0;
  json_decref(s.clip);
  s.clip = NULL;
  if (crc != 0) {
    api_speech_clear(&s);
    http_reply_error(r, &err);
    return;
  }
  atomic_fetch_add(&d->requests, 1);
  worker *w = sched_acquire(d->sc, s.model, &err);
  if (!w) {
    api_speech_clear(&s);
    sy_buf_free(&clip);
    http_reply_error(r, &err);
    return;
  }
  speech_job *j = calloc(1, sizeof *j);
  if (!j) {
    sched_release(d->sc, s.model, w);
    api_speech_clear(&s);
    sy_buf_free(&clip);
    API_SERVER(&err, "out_of_memory", "out of memory");
    http_reply_error(r, &err);
    return;
  }
  *j = (speech_job){.d = d, .model = s.model, .w = w, .sse = s.sse, .n_chars = s.n_chars};
  snprintf(j->format, sizeof j->format, "%s", s.format);
  json_t *msg = s.msg;
  s.msg = NULL;
  j->q = clip.len ? worker_submit_payload(w, msg, clip.data, clip.len, &err)
                  : worker_submit(w, msg, &err);
  sy_buf_free(&clip);
  if (!j->q) {
    j->finished = true;
    speech_job_free(j);
    http_reply_error(r, &err);
    return;
  }
  relay_init(&j->rl, &speech_ops, j, j->q, http_client_fd(r));
  http_add_header(r, "X-Switchyard-Model", j->model->name);
  /* the first event decides the status: an unknown voice or format is a 400, not a cut stream */
  ipc_msg first;
  if (!relay_next(&j->rl, &first)) {
    speech_job_free(j); /* counts as cancelled */
    http_reply_abort(r);
    return;
  }
  int rc = speech_event(j, &first, &err);
  ipc_msg_clear(&first);
  if (rc != 0) {
    j->finished = true; /* refused, not cancelled */
    speech_job_free(j);
    http_reply_error(r, &err);
    return;
  }
  /* a first event that was already the end (nothing to speak: done with no audio) ends the stream
   * once its bytes are out, instead of waiting for events that will never come */
  j->rl.ended = j->finished;
  const char *ct = j->sse ? "text/event-stream" : sy_audio_content_type(j->format);
  relay_stream(&j->rl, r, 200, ct ? ct : "application/octet-stream");
}

/* ---- GET /v1/audio/voices ---- */

/* The voices of one speech model (its worker is loaded for it, as for any request). */
static json_t *model_voices(sy_daemon *d, const matrix_model *m, int fd) {
  api_error err = {0};
  json_t *entry = json_pack("{s:s}", "model", m->name);
  worker *w = sched_acquire(d->sc, m, &err);
  if (!w) {
    json_object_set_new(entry, "error", json_string(err.message));
    return entry;
  }
  wreq *q = worker_submit(w, json_pack("{s:s}", "op", "voices"), &err);
  ipc_msg msg = {0};
  bool hup = false;
  if (!q) {
    json_object_set_new(entry, "error", json_string(err.message));
  } else if (!wreq_wait(q, &msg, fd, 30000, &hup)) {
    json_object_set_new(entry, "error",
                        json_string(hup ? "cancelled" : "the worker did not answer"));
  } else if (json_is_array(json_object_get(msg.hdr, "voices"))) {
    json_object_set(entry, "voices", json_object_get(msg.hdr, "voices"));
  } else {
    api_speech_worker_error(msg.hdr, &err);
    json_object_set_new(entry, "error", json_string(err.message));
  }
  ipc_msg_clear(&msg);
  wreq_free(q);
  sched_release(d->sc, m, w);
  return entry;
}

void api_voices_handle(sy_daemon *d, http_req *r) {
  const matrix *mx = d->mx;
  json_t *data = json_array();
  for (size_t i = 0; i < mx->n_models; i++) {
    if (!(mx->models[i].caps & MATRIX_CAP_SPEECH)) continue;
    if (mx->models[i].engine == MATRIX_ENGINE_EXTERNAL)
      continue; /* its own API: not started just to list */
    json_array_append_new(data, model_voices(d, &mx->models[i], http_client_fd(r)));
    if (fd_peer_gone(http_client_fd(r))) break;
  }
  http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
