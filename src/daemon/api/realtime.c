/* realtime.c — OpenAI's Realtime API over WebSocket: GET /v1/realtime?model=<voice pipeline>
 * (a chat model alone: a text session; ?intent=transcription with a transcribe model or a
 * pipeline with an asr step: transcription only). A session is
 * two threads: the connection's (ws_run: client events parsed by parse/realtime_parse.c and acted
 * on at once — session config, the input buffer and the server VAD, items, response.create and
 * cancel) and a turn thread that does the slow work one job at a time: the asr step of a committed
 * turn (virtual/pipeline.c's pipe_run_asr), then a response: the llm step streamed, its text cut
 * into sentences (pipe_sentence_cut) and each spoken by the tts step as soon as it is complete, the
 * audio sent as response.output_audio.delta while the rest is still being generated.
 * Barge-in: speech starting while a response runs (turn_detection.interrupt_response) cancels it:
 * a cancel socket that every worker wait watches is shut down, the steps' requests are cancelled
 * in their workers, and the assistant item keeps only the text whose audio was sent.
 * The server VAD is an energy detector on 20 ms windows (rt_vad_level): threshold, prefix padding
 * and silence duration as the API names them.
 * Must never hold a worker after the session ends (the client vanishing cancels like barge-in),
 * never block the connection's thread on a worker, never send an event after the session's end,
 * never keep more than RT_MAX_BUFFER_S of input audio. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_int.h"
#include "clock.h"
#include "log.h"
#include "media/audio.h"
#include "media/base64.h"
#include "parse/api_parse.h"
#include "parse/realtime_parse.h"
#include "virtual/pipeline.h"
#include "ws/ws.h"

#define RT_MAX_BUFFER_S 300      /* input audio held uncommitted (then input_audio_buffer_full) */
#define RT_VAD_WINDOW_MS 20      /* the server VAD's window */
#define RT_MAX_ITEMS 256         /* conversation items kept (the oldest go first) */
#define RT_MAX_JOBS 16           /* turn jobs waiting */
#define RT_MAX_APPEND (15 << 20) /* one append's decoded bytes */
#define RT_AUDIO_CHUNK_MS 200    /* audio deltas are cut to at most this much */

typedef struct rt_item {
  char id[RT_MAX_ID + 1];
  char role[16]; /* user, assistant, system, tool */
  char *text;    /* owned: the transcript or text ("" while transcribing) */
  char call_id[RT_MAX_ID + 1];
  char name[RT_MAX_ID + 1]; /* function_call: the function (text: its arguments) */
  char *spoken;  /* assistant: the text whose audio was sent, sentence by sentence (owned) */
  json_t *marks; /* ... [audio_end_ms, bytes of spoken] after each sentence (truncate) */
} rt_item;

static void item_clear(rt_item *it) {
  free(it->text);
  free(it->spoken);
  json_decref(it->marks);
}

typedef enum rt_job_kind { JOB_TRANSCRIBE, JOB_RESPOND } rt_job_kind;

typedef struct rt_job {
  rt_job_kind kind;
  char item_id[RT_MAX_ID + 1];
  float *pcm; /* TRANSCRIBE: the turn at 16 kHz (owned) */
  size_t n;
  bool respond_after;  /* TRANSCRIBE: then a response (server VAD's create_response) */
  double t_speech_end; /* when the turn's speech ended (monotonic s), 0: not a spoken turn */
  json_t *response;    /* RESPOND: response.create's "response" (owned, may be NULL) */
} rt_job;

typedef struct rt_sess {
  sy_daemon *d;
  const matrix *mx;
  matrix_pipeline own; /* a transcribe model on its own, as a pipeline with only an asr step */
  const matrix_pipeline *p;
  ws_conn *c;
  metrics *mt;
  int row;
  char id[48];
  pthread_mutex_t mu; /* everything below */
  pthread_cond_t cv;
  rt_session cfg;
  /* the input buffer, float at the input format's rate */
  float *in;
  size_t n_in;
  size_t consumed; /* samples before in[0] since the session began (for audio_*_ms) */
  size_t vad_pos;  /* samples of in already looked at by the VAD */
  bool speaking;
  size_t speech_start, silence_run; /* in in[], and samples of silence since the last speech */
  char speech_item[RT_MAX_ID + 1];
  rt_item items[RT_MAX_ITEMS];
  size_t n_items;
  rt_job jobs[RT_MAX_JOBS];
  size_t n_jobs;
  bool quit;
  /* the response (or transcription) running now */
  bool busy_response;
  char resp_id[RT_MAX_ID + 1];
  int cancel_fd[2]; /* socketpair: [1] shut down cancels the job running now (a worker wait that
                       has nothing queued sees it at once) */
  atomic_bool cancelled; /* ... and this, looked at before every step (frames may be queued) */
  const char *cancel_reason;
  pthread_t turn;
  bool turn_started;
} rt_sess;

/* ---- sending events ---- */

static void rt_send(rt_sess *s, json_t *ev) {
  if (!ev) return;
  char eid[48];
  api_random_id(eid, sizeof eid, "event_");
  json_object_set_new(ev, "event_id", json_string(eid));
  char *t = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  if (!t) return;
  size_t n = strlen(t);
  if (ws_send(s->c, true, t, n) == 0) ws_hub_count(s->d->ws, WS_ROUTE_REALTIME, false, n);
  free(t);
}

static void rt_send_error(rt_sess *s, const api_error *e, const char *client_event_id) {
  rt_send(s, rt_error_event(e, client_event_id));
}

/* ---- items (under s->mu) ---- */

static rt_item *item_find(rt_sess *s, const char *id) {
  for (size_t i = 0; i < s->n_items; i++)
    if (strcmp(s->items[i].id, id) == 0) return &s->items[i];
  return NULL;
}

static rt_item *item_add(rt_sess *s, const char *role, const char *text) {
  if (s->n_items == RT_MAX_ITEMS) { /* the oldest goes */
    item_clear(&s->items[0]);
    memmove(s->items, s->items + 1, (RT_MAX_ITEMS - 1) * sizeof *s->items);
    s->n_items--;
  }
  rt_item *it = &s->items[s->n_items++];
  memset(it, 0, sizeof *it);
  api_random_id(it->id, sizeof it->id, "item_");
  snprintf(it->role, sizeof it->role, "%s", role);
  it->text = strdup(text ? text : "");
  return it;
}

static json_t *item_json(const rt_item *it, const char *status, bool audio) {
  if (strcmp(it->role, "function_call") == 0)
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", it->id, "object", "realtime.item",
                     "type", "function_call", "status", status, "call_id", it->call_id, "name",
                     it->name, "arguments", it->text ? it->text : "");
  if (strcmp(it->role, "tool") == 0)
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", it->id, "object", "realtime.item",
                     "type", "function_call_output", "status", status, "call_id", it->call_id,
                     "output", it->text ? it->text : "");
  const char *pt = strcmp(it->role, "assistant") == 0 ? (audio ? "output_audio" : "output_text")
                   : audio                            ? "input_audio"
                                                      : "input_text";
  json_t *part = json_pack("{s:s}", "type", pt);
  json_object_set_new(part, audio ? "transcript" : "text",
                      it->text && (*it->text || !audio) ? json_string(it->text) : json_null());
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[o]}", "id", it->id, "object", "realtime.item",
                   "type", "message", "status", status, "role", it->role, "content", part);
}

/* conversation.item.added (current name) and conversation.item.created (beta), then .done. */
static void send_item_added(rt_sess *s, json_t *item, const char *prev) {
  rt_send(s, json_pack("{s:s, s:O, s:o}", "type", "conversation.item.added", "item", item,
                       "previous_item_id", prev && *prev ? json_string(prev) : json_null()));
  rt_send(s, json_pack("{s:s, s:O, s:o}", "type", "conversation.item.created", "item", item,
                       "previous_item_id", prev && *prev ? json_string(prev) : json_null()));
  rt_send(s, json_pack("{s:s, s:o}", "type", "conversation.item.done", "item", item));
}

/* ---- jobs ---- */

static void job_clear(rt_job *j) {
  free(j->pcm);
  json_decref(j->response);
  memset(j, 0, sizeof *j);
}

/* Queue a job (under s->mu). -1 when the queue is full. */
static int job_push(rt_sess *s, const rt_job *j) {
  if (s->n_jobs == RT_MAX_JOBS) return -1;
  s->jobs[s->n_jobs++] = *j;
  pthread_cond_broadcast(&s->cv);
  return 0;
}

/* Cancel the job running now (any thread; under s->mu). */
static void cancel_now(rt_sess *s, const char *reason) {
  atomic_store(&s->cancelled, true);
  if (s->cancel_fd[1] >= 0) {
    s->cancel_reason = reason;
    shutdown(s->cancel_fd[1], SHUT_RDWR);
  }
}

/* ---- the turn thread: one job at a time ---- */

typedef struct rt_step {
  rt_sess *s;
  const matrix_model *model;
  worker *w;
  wreq *q;
  bool done;
} rt_step;

static int step_get(rt_step *st, rt_sess *s, const char *name, api_error *e) {
  *st = (rt_step){.s = s};
  st->model = matrix_find(s->mx, name);
  if (!st->model) {
    API_SERVER(e, "model_not_found", "model '%s' is not in the matrix", name);
    return -1;
  }
  st->w = sched_acquire(s->d->sc, st->model, e);
  return st->w ? 0 : -1;
}

static void step_put(rt_step *st) {
  wreq_free(st->q);
  st->q = NULL;
  if (st->w) sched_release(st->s->d->sc, st->model, st->w);
  st->w = NULL;
}

/* The next frame of st: 1, 0 cancelled, -1 error frame (e). */
static int step_wait(rt_step *st, int cancel_fd, ipc_msg *m, api_error *e) {
  bool hup = false;
  if (!wreq_wait(st->q, m, cancel_fd, -1, &hup)) return 0;
  if (strcmp(ipc_op(m), "error") == 0) {
    api_error_from_worker(m->hdr, e);
    ipc_msg_clear(m);
    st->done = true;
    return -1;
  }
  if (strcmp(ipc_op(m), "done") == 0) st->done = true;
  return 1;
}

static double ms(double s) { return s > 0 ? round(s * 10000.0) / 10.0 : 0.0; }

/* Transcribe a committed turn. 1 done, 0 cancelled, -1 failed (an error event was sent). */
static int do_transcribe(rt_sess *s, rt_job *j, int cancel_fd, double *stt_s) {
  sy_buf text = {0};
  api_error e = {0};
  double t0 = sy_mono_s();
  pthread_mutex_lock(&s->mu);
  char lang[RT_MAX_ID + 1];
  snprintf(lang, sizeof lang, "%s", s->cfg.language);
  pthread_mutex_unlock(&s->mu);
  int rc = pipe_run_asr(s->d, s->mx, s->p, j->pcm, j->n, lang, cancel_fd, &text, &e);
  *stt_s = sy_mono_s() - t0;
  if (rc < 0) {
    metrics_pipeline_failure(s->mt, s->row, METRICS_STEP_ASR);
    rt_send(s, json_pack("{s:s, s:s, s:i, s:{s:s, s:s, s:s}}", "type",
                         "conversation.item.input_audio_transcription.failed", "item_id",
                         j->item_id, "content_index", 0, "error", "type", "server_error", "code",
                         e.code ? e.code : "asr_failed", "message", e.message));
  }
  if (rc <= 0) {
    sy_buf_free(&text);
    return rc;
  }
  metrics_pipeline_stage(s->mt, s->row, METRICS_STAGE_STT, *stt_s);
  /* trimmed */
  const char *t = text.data ? text.data : "";
  while (*t == ' ' || *t == '\n') t++;
  size_t n = strlen(t);
  while (n && (t[n - 1] == ' ' || t[n - 1] == '\n')) n--;
  char *tr = strndup(t, n);
  sy_buf_free(&text);
  if (!tr) return -1;
  pthread_mutex_lock(&s->mu);
  rt_item *it = item_find(s, j->item_id);
  if (it) {
    free(it->text);
    it->text = strdup(tr);
  }
  pthread_mutex_unlock(&s->mu);
  if (n)
    rt_send(s, json_pack("{s:s, s:s, s:i, s:s}", "type",
                         "conversation.item.input_audio_transcription.delta", "item_id", j->item_id,
                         "content_index", 0, "delta", tr));
  rt_send(s,
          json_pack("{s:s, s:s, s:i, s:s, s:{s:s, s:f}, s:{s:f}}", "type",
                    "conversation.item.input_audio_transcription.completed", "item_id", j->item_id,
                    "content_index", 0, "transcript", tr, "usage", "type", "duration", "seconds",
                    (double)j->n / API_AUDIO_RATE, "switchyard_timings", "stt_ms", ms(*stt_s)));
  free(tr);
  return 1;
}

/* The chat body of a response: the instructions, then the conversation's items as messages. */
static json_t *chat_body(rt_sess *s, const json_t *resp) {
  json_t *msgs = json_array();
  pthread_mutex_lock(&s->mu);
  const char *ins = json_string_value(json_object_get(resp, "instructions"));
  if (!ins) ins = s->cfg.instructions ? s->cfg.instructions : s->p->instruction;
  if (ins && *ins)
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", ins));
  for (size_t i = 0; i < s->n_items; i++) {
    const rt_item *it = &s->items[i];
    if (strcmp(it->role, "function_call") == 0) { /* the assistant called it */
      json_array_append_new(
          msgs, json_pack("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant",
                          "content", "tool_calls", "id", it->call_id, "type", "function",
                          "function", "name", it->name, "arguments", it->text ? it->text : "{}"));
      continue;
    }
    if (strcmp(it->role, "tool") == 0) {
      json_array_append_new(msgs, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id",
                                            it->call_id, "content", it->text ? it->text : ""));
      continue;
    }
    const char *role = it->role;
    /* a user's turn counts even when the asr step heard nothing (it was said); an answer cut
     * before any of it was spoken was not */
    if (!it->text || (!*it->text && strcmp(it->role, "user") != 0)) continue;
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", role, "content", it->text));
  }
  json_t *b = json_pack("{s:s, s:o, s:i}", "model", s->p->llm, "messages", msgs, "max_tokens",
                        s->cfg.max_output_tokens ? s->cfg.max_output_tokens : s->p->max_tokens);
  if (json_array_size(s->cfg.tools)) {
    json_object_set(b, "tools", s->cfg.tools);
    if (s->cfg.tool_choice) json_object_set(b, "tool_choice", s->cfg.tool_choice);
  }
  double temp = s->cfg.temperature >= 0 ? s->cfg.temperature : s->p->temperature;
  if (temp >= 0) json_object_set_new(b, "temperature", json_real(temp));
  pthread_mutex_unlock(&s->mu);
  return b;
}

typedef struct rt_resp {
  rt_sess *s;
  char id[RT_MAX_ID + 1], item_id[RT_MAX_ID + 1];
  bool audio;
  rt_fmt fmt;
  int out_rate;
  rt_step llm, tts;
  bool tts_busy, llm_done;
  sy_buf said, spoken, pending; /* all text; text whose audio was sent; not yet cut */
  json_t *sentences;            /* waiting for the tts step */
  json_t *marks;                /* [audio ms, bytes of spoken] after each spoken sentence */
  json_t *calls;                /* the llm's tool calls, folded (chat-completions shape) */
  char *speaking;               /* the sentence the tts step is on */
  sy_resampler rs;
  int rs_in;
  long long audio_bytes;
  long long prompt_tokens, completion_tokens;
  double t0, t_speech_end, stt_s, first_token, first_audio, tts_start, tts_first;
  api_error err;
} rt_resp;

static void send_audio(rt_resp *r, const float *pcm, size_t n, int rate) {
  if (r->rs_in != rate) {
    sy_resampler_free(&r->rs);
    char e[128];
    if (sy_resampler_init(&r->rs, rate, r->out_rate, e, sizeof e) != 0) return;
    r->rs_in = rate;
  }
  sy_fvec v = {0};
  if (sy_resampler_feed(&r->rs, pcm, n, &v) != 0 || v.n == 0) {
    sy_fvec_free(&v);
    return;
  }
  size_t chunk = (size_t)r->out_rate * RT_AUDIO_CHUNK_MS / 1000;
  for (size_t off = 0; off < v.n; off += chunk) {
    size_t k = v.n - off < chunk ? v.n - off : chunk, nb = 0;
    uint8_t *b = rt_audio_from_float(r->fmt, v.p + off, k, &nb);
    char *b64 = b ? sy_base64_encode(b, nb) : NULL;
    free(b);
    if (!b64) break;
    rt_send(r->s, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "type", "response.output_audio.delta",
                            "response_id", r->id, "item_id", r->item_id, "output_index", 0,
                            "content_index", 0, "delta", b64));
    free(b64);
    r->audio_bytes += (long long)nb;
  }
  sy_fvec_free(&v);
  if (!r->first_audio) {
    r->first_audio = sy_mono_s();
    r->tts_first = r->first_audio - r->tts_start;
  }
}

static void cut_sentences(rt_resp *r, rt_sess *s, bool final) {
  for (;;) {
    size_t k = pipe_sentence_cut(r->pending.data ? r->pending.data : "", r->pending.len,
                                 (size_t)s->p->sentence_chars, final);
    if (k == 0) return;
    size_t a = 0;
    while (a < k && (r->pending.data[a] == ' ' || r->pending.data[a] == '\n')) a++;
    if (a < k) json_array_append_new(r->sentences, json_stringn(r->pending.data + a, k - a));
    sy_buf_consume(&r->pending, k);
    if (r->pending.len == 0) return;
  }
}

/* One move of a response. 1 moved, 0 cancelled, -1 failed (r->err), 2 finished. */
static int resp_step(rt_resp *r, int cancel_fd) {
  rt_sess *s = r->s;
  ipc_msg m;
  if (atomic_load(&s->cancelled)) return 0;
  if (r->tts_busy) {
    int rc = step_wait(&r->tts, cancel_fd, &m, &r->err);
    if (rc <= 0) return rc;
    if (strcmp(ipc_op(&m), "audio") == 0 && m.payload_len >= sizeof(float))
      send_audio(r, m.payload, m.payload_len / sizeof(float),
                 (int)json_integer_value(json_object_get(m.hdr, "rate")));
    if (r->tts.done) {
      r->tts_busy = false;
      sy_buf_puts(&r->spoken, r->spoken.len ? " " : "");
      sy_buf_puts(&r->spoken, r->speaking ? r->speaking : "");
      long long bps = r->fmt == RT_FMT_PCM16 ? 2 : 1;
      json_array_append_new(
          r->marks, json_pack("[I, I]", (json_int_t)(r->audio_bytes / bps * 1000 / r->out_rate),
                              (json_int_t)r->spoken.len));
      free(r->speaking);
      r->speaking = NULL;
    }
    ipc_msg_clear(&m);
    return 1;
  }
  if (json_array_size(r->sentences)) {
    const char *sent = json_string_value(json_array_get(r->sentences, 0));
    pthread_mutex_lock(&s->mu);
    const char *voice = s->cfg.voice[0] ? s->cfg.voice : s->p->voice;
    json_t *msg = json_pack("{s:s, s:s, s:f}", "op", "speak", "input", sent, "speed", 1.0);
    if (msg && voice) json_object_set_new(msg, "voice", json_string(voice));
    pthread_mutex_unlock(&s->mu);
    r->speaking = strdup(sent);
    json_array_remove(r->sentences, 0);
    if (!r->tts_start) r->tts_start = sy_mono_s();
    wreq_free(r->tts.q);
    r->tts.done = false;
    r->tts.q = msg ? worker_submit_payload(r->tts.w, msg, NULL, 0, &r->err) : NULL;
    if (!r->tts.q) return -1;
    r->tts_busy = true;
    return 1;
  }
  if (r->llm_done) {
    if (r->pending.len) {
      cut_sentences(r, s, true);
      sy_buf_consume(&r->pending, r->pending.len);
      return 1;
    }
    return 2;
  }
  int rc = step_wait(&r->llm, cancel_fd, &m, &r->err);
  if (rc <= 0) return rc;
  const char *t = json_string_value(json_object_get(m.hdr, "text"));
  json_t *tc = json_object_get(json_object_get(m.hdr, "delta"), "tool_calls");
  if (json_is_array(tc) && strcmp(ipc_op(&m), "delta") == 0) {
    if (!r->first_token) r->first_token = sy_mono_s();
    api_fold_tool_calls(r->calls, tc);
  }
  if (t && *t && strcmp(ipc_op(&m), "delta") == 0) {
    if (!r->first_token) r->first_token = sy_mono_s();
    sy_buf_puts(&r->said, t);
    rt_send(s, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "type",
                         r->audio ? "response.output_audio_transcript.delta"
                                  : "response.output_text.delta",
                         "response_id", r->id, "item_id", r->item_id, "output_index", 0,
                         "content_index", 0, "delta", t));
    if (r->audio) {
      if (r->pending.len + strlen(t) > 64 * 1024) cut_sentences(r, s, true);
      sy_buf_puts(&r->pending, t);
      cut_sentences(r, s, false);
    }
  }
  if (r->llm.done) {
    r->prompt_tokens = api_jint(m.hdr, "prompt_tokens");
    r->completion_tokens = api_jint(m.hdr, "completion_tokens");
    r->llm_done = true;
    step_put(&r->llm); /* free for others while the rest is spoken */
  }
  ipc_msg_clear(&m);
  return 1;
}

static json_t *timings(const rt_resp *r) {
  double base = r->t_speech_end > 0 ? r->t_speech_end : r->t0;
  return json_pack("{s:f, s:f, s:f, s:f}", "stt_ms", ms(r->stt_s), "llm_first_token_ms",
                   r->first_token ? ms(r->first_token - base) : 0.0, "tts_first_audio_ms",
                   ms(r->tts_first), "first_audio_ms",
                   r->first_audio ? ms(r->first_audio - base) : 0.0);
}

/* A response, from response.created to response.done. */
/* A response begins: response.created and its message item, sent at once (before the turn's
 * transcript, as OpenAI's server does: speech from now on is a barge-in). NULL: out of memory. */
static rt_resp *resp_begin(rt_sess *s, rt_job *j) {
  rt_resp *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->s = s;
  r->t0 = sy_mono_s();
  r->t_speech_end = j->t_speech_end;
  r->sentences = json_array();
  r->marks = json_array();
  r->calls = json_array();
  api_random_id(r->id, sizeof r->id, "resp_");
  pthread_mutex_lock(&s->mu);
  r->audio = s->cfg.audio_out && s->p->tts;
  json_t *mods = json_object_get(j->response, "output_modalities");
  if (!mods) mods = json_object_get(j->response, "modalities");
  if (json_is_array(mods)) {
    bool a = false;
    size_t i;
    json_t *v;
    json_array_foreach(mods, i, v) a |= json_is_string(v) && !strcmp(json_string_value(v), "audio");
    r->audio = a && s->p->tts;
  }
  r->fmt = s->cfg.out_fmt;
  r->out_rate = rt_fmt_rate(r->fmt);
  rt_item *it = item_add(s, "assistant", "");
  snprintf(r->item_id, sizeof r->item_id, "%s", it->id);
  snprintf(s->resp_id, sizeof s->resp_id, "%s", r->id);
  s->busy_response = true;
  pthread_mutex_unlock(&s->mu);
  const char *mod = r->audio ? "audio" : "text";
  rt_send(s, json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:[s]}}", "type", "response.created",
                       "response", "id", r->id, "object", "realtime.response", "status",
                       "in_progress", "output", "output_modalities", mod));
  json_t *item =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "id", r->item_id, "object", "realtime.item",
                "type", "message", "status", "in_progress", "role", "assistant", "content");
  rt_send(s, json_pack("{s:s, s:s, s:i, s:O}", "type", "response.output_item.added", "response_id",
                       r->id, "output_index", 0, "item", item));
  rt_send(s, json_pack("{s:s, s:n, s:O}", "type", "conversation.item.added", "previous_item_id",
                       "item", item));
  rt_send(s, json_pack("{s:s, s:n, s:o}", "type", "conversation.item.created", "previous_item_id",
                       "item", item));
  rt_send(s, json_pack("{s:s, s:s, s:s, s:i, s:i, s:{s:s, s:s}}", "type",
                       "response.content_part.added", "response_id", r->id, "item_id", r->item_id,
                       "output_index", 0, "content_index", 0, "part", "type",
                       r->audio ? "audio" : "text", r->audio ? "transcript" : "text", ""));
  return r;
}

/* The rest of a response: the llm and tts steps when go is 1 (0: the turn was cancelled before,
 * -1: its asr step failed), then the closing events, the metrics; r is freed. */
static void resp_finish(rt_resp *r, rt_job *j, int cancel_fd, double stt_s, int go) {
  rt_sess *s = r->s;
  r->stt_s = stt_s;
  const char *mod = r->audio ? "audio" : "text";
  const char *status = "completed";
  int rc = go > 0 ? 0 : -1;
  json_t *body = go > 0 ? chat_body(s, j->response) : NULL;
  api_gen g;
  if (go > 0) {
    rc = api_parse_generate(s->mx, NULL, body, true, &g, &r->err);
    json_decref(body);
  } else if (go < 0) {
    api_error_set(&r->err, 500, "server_error", "asr_failed", NULL,
                  "the turn could not be transcribed");
  }
  if (rc == 0) {
    json_t *msg = g.msg;
    g.msg = NULL;
    api_gen_clear(&g);
    rc = step_get(&r->llm, s, s->p->llm, &r->err);
    if (rc == 0 && r->audio) rc = step_get(&r->tts, s, s->p->tts, &r->err);
    if (rc == 0) {
      r->llm.q = worker_submit_payload(r->llm.w, msg, NULL, 0, &r->err);
      msg = NULL;
      rc = r->llm.q ? 0 : -1;
    }
    json_decref(msg);
  }
  rc = go == 0 ? 0 : rc == 0 ? 1 : -1; /* now 1 moved, 0 cancelled, -1 failed, 2 finished */
  while (rc == 1) rc = resp_step(r, cancel_fd);
  if (rc == 0) status = "cancelled";
  if (rc < 0) {
    status = "failed";
    metrics_pipeline_failure(s->mt, s->row, METRICS_STEP_LLM);
    LOG_W("realtime %s: %s", s->p->name, r->err.message);
    rt_send_error(s, &r->err, NULL);
  }
  step_put(&r->llm);
  step_put(&r->tts);
  /* what the item keeps: all of it, or (cancelled with audio) what was spoken */
  const char *kept = rc == 0 && r->audio ? (r->spoken.data ? r->spoken.data : "")
                                         : (r->said.data ? r->said.data : "");
  pthread_mutex_lock(&s->mu);
  rt_item *mine = item_find(s, r->item_id);
  if (mine) {
    free(mine->text);
    mine->text = strdup(kept);
    free(mine->spoken);
    mine->spoken = strdup(r->spoken.data ? r->spoken.data : "");
    json_decref(mine->marks);
    mine->marks = json_incref(r->marks);
  }
  const char *reason = s->cancel_reason ? s->cancel_reason : "client_cancelled";
  s->busy_response = false;
  s->resp_id[0] = '\0';
  pthread_mutex_unlock(&s->mu);
  if (r->audio)
    rt_send(s, json_pack("{s:s, s:s, s:s, s:i, s:i}", "type", "response.output_audio.done",
                         "response_id", r->id, "item_id", r->item_id, "output_index", 0,
                         "content_index", 0));
  rt_send(
      s, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "type",
                   r->audio ? "response.output_audio_transcript.done" : "response.output_text.done",
                   "response_id", r->id, "item_id", r->item_id, "output_index", 0, "content_index",
                   0, r->audio ? "transcript" : "text", kept));
  json_t *part = json_pack("{s:s, s:s}", "type", r->audio ? "audio" : "text",
                           r->audio ? "transcript" : "text", kept);
  rt_send(s, json_pack("{s:s, s:s, s:s, s:i, s:i, s:O}", "type", "response.content_part.done",
                       "response_id", r->id, "item_id", r->item_id, "output_index", 0,
                       "content_index", 0, "part", part));
  json_t *done_item =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:[O]}", "id", r->item_id, "object", "realtime.item",
                "type", "message", "status", rc == 2 ? "completed" : "incomplete", "role",
                "assistant", "content", part);
  rt_send(
      s,
      json_pack(
          "{s:s, s:s, s:i, s:O}", "type", "response.output_item.done", "response_id", r->id,
          "output_index", 0, "item",
          done_item)); /* the llm's function calls: items of their own, with the argument events */
  json_t *calls_out = json_array();
  size_t ci;
  json_t *call;
  json_array_foreach(rc == 2 ? r->calls : NULL, ci, call) {
    json_t *fn = json_object_get(call, "function");
    const char *cid = json_string_value(json_object_get(call, "id"));
    const char *fname = json_string_value(json_object_get(fn, "name"));
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    if (!cid || !fname) continue;
    pthread_mutex_lock(&s->mu);
    rt_item *fi = item_add(s, "function_call", args ? args : "");
    snprintf(fi->call_id, sizeof fi->call_id, "%.64s", cid);
    snprintf(fi->name, sizeof fi->name, "%.64s", fname);
    rt_item copy = *fi;
    json_t *added = item_json(fi, "in_progress", false), *fdone = item_json(fi, "completed", false);
    pthread_mutex_unlock(&s->mu);
    json_object_set_new(added, "arguments", json_string(""));
    int oi = (int)ci + 1;
    rt_send(s, json_pack("{s:s, s:s, s:i, s:o}", "type", "response.output_item.added",
                         "response_id", r->id, "output_index", oi, "item", added));
    rt_send(s, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "type",
                         "response.function_call_arguments.delta", "response_id", r->id, "item_id",
                         copy.id, "output_index", oi, "call_id", copy.call_id, "delta",
                         args ? args : ""));
    rt_send(s, json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "type",
                         "response.function_call_arguments.done", "response_id", r->id, "item_id",
                         copy.id, "output_index", oi, "call_id", copy.call_id, "name", copy.name,
                         "arguments", args ? args : ""));
    rt_send(s, json_pack("{s:s, s:s, s:i, s:O}", "type", "response.output_item.done", "response_id",
                         r->id, "output_index", oi, "item", fdone));
    rt_send(s, json_pack("{s:s, s:O}", "type", "conversation.item.done", "item", fdone));
    json_array_append_new(calls_out, fdone);
  }
  json_t *resp = json_pack(
      "{s:s, s:s, s:s, s:[o], s:[s], s:{s:I, s:I, s:I}, s:o}", "id", r->id, "object",
      "realtime.response", "status", status, "output", done_item, "output_modalities", mod, "usage",
      "total_tokens", (json_int_t)(r->prompt_tokens + r->completion_tokens), "input_tokens",
      (json_int_t)r->prompt_tokens, "output_tokens", (json_int_t)r->completion_tokens, "metadata",
      json_pack("{s:o}", "switchyard_timings", timings(r)));
  json_array_extend(json_object_get(resp, "output"), calls_out);
  json_decref(calls_out);
  if (rc == 0)
    json_object_set_new(resp, "status_details",
                        json_pack("{s:s, s:s}", "type", "cancelled", "reason", reason));
  rt_send(s, json_pack("{s:s, s:o}", "type", "response.done", "response", resp));
  rt_send(s, json_pack("{s:s, s:[{s:s, s:i, s:i, s:f}, {s:s, s:i, s:i, s:f}]}", "type",
                       "rate_limits.updated", "rate_limits", "name", "requests", "limit", 1000000,
                       "remaining", 1000000, "reset_seconds", 0.0, "name", "tokens", "limit",
                       1000000, "remaining", 1000000, "reset_seconds", 0.0));
  json_decref(part);
  /* metrics: the stages of a turn */
  double base = r->t_speech_end > 0 ? r->t_speech_end : r->t0;
  if (r->first_token)
    metrics_pipeline_stage(s->mt, s->row, METRICS_STAGE_LLM_FIRST_TOKEN, r->first_token - base);
  if (r->first_audio) {
    metrics_pipeline_stage(s->mt, s->row, METRICS_STAGE_TTS_FIRST_AUDIO, r->tts_first);
    metrics_pipeline_stage(s->mt, s->row, METRICS_STAGE_FIRST_AUDIO, r->first_audio - base);
  }
  metrics_pipeline_stage(s->mt, s->row, METRICS_STAGE_TOTAL, sy_mono_s() - base);
  metrics_tokens(s->mt, s->row, r->prompt_tokens, r->completion_tokens);
  sy_buf_free(&r->said);
  sy_buf_free(&r->spoken);
  sy_buf_free(&r->pending);
  json_decref(r->sentences);
  json_decref(r->marks);
  json_decref(r->calls);
  free(r->speaking);
  sy_resampler_free(&r->rs);
  free(r);
}

static void *turn_main(void *arg) {
  rt_sess *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->quit && s->n_jobs == 0) pthread_cond_wait(&s->cv, &s->mu);
    if (s->quit) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    rt_job j = s->jobs[0];
    memmove(s->jobs, s->jobs + 1, (s->n_jobs - 1) * sizeof *s->jobs);
    s->n_jobs--;
    /* a fresh cancel socket for this job */
    s->cancel_reason = NULL;
    atomic_store(&s->cancelled, false);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->cancel_fd) != 0)
      s->cancel_fd[0] = s->cancel_fd[1] = -1;
    int cfd = s->cancel_fd[0];
    pthread_mutex_unlock(&s->mu);
    double stt = 0;
    int rc = 1;
    rt_resp *r = j.kind == JOB_RESPOND || j.respond_after ? resp_begin(s, &j) : NULL;
    if (j.kind == JOB_TRANSCRIBE) rc = do_transcribe(s, &j, cfd, &stt);
    if (rc > 0 && atomic_load(&s->cancelled)) rc = 0;
    if (r) resp_finish(r, &j, cfd, stt, rc);
    pthread_mutex_lock(&s->mu);
    if (s->cancel_fd[0] >= 0) {
      close(s->cancel_fd[0]);
      close(s->cancel_fd[1]);
    }
    s->cancel_fd[0] = s->cancel_fd[1] = -1;
    pthread_mutex_unlock(&s->mu);
    job_clear(&j);
  }
  return NULL;
}

/* ---- the connection's side: client events ---- */

/* The input buffer's samples [a, b) at 16 kHz for the asr step (malloc'd), *n set. */
static float *to_16k(const rt_sess *s, size_t a, size_t b, size_t *n) {
  sy_resampler rs;
  char e[128];
  *n = 0;
  if (sy_resampler_init(&rs, rt_fmt_rate(s->cfg.in_fmt), API_AUDIO_RATE, e, sizeof e) != 0)
    return NULL;
  sy_fvec v = {0};
  if (sy_resampler_feed(&rs, s->in + a, b - a, &v) != 0 || sy_resampler_feed(&rs, NULL, 0, &v) != 0)
    sy_fvec_free(&v);
  sy_resampler_free(&rs);
  *n = v.n;
  return v.p;
}

static long long samples_ms(const rt_sess *s, size_t samples) {
  return (long long)samples * 1000 / rt_fmt_rate(s->cfg.in_fmt);
}

/* Commit in[a, b) as a user audio item (under s->mu): committed, item added, the turn queued. */
static void commit_turn(rt_sess *s, size_t a, size_t b, const char *item_id, bool respond,
                        double t_end) {
  rt_job j = {.kind = JOB_TRANSCRIBE, .respond_after = respond, .t_speech_end = t_end};
  j.pcm = to_16k(s, a, b, &j.n);
  const char *prev = s->n_items ? s->items[s->n_items - 1].id : NULL;
  char prev_id[RT_MAX_ID + 1] = "";
  if (prev) snprintf(prev_id, sizeof prev_id, "%s", prev);
  rt_item *it = item_add(s, "user", "");
  if (item_id && *item_id) snprintf(it->id, sizeof it->id, "%s", item_id);
  snprintf(j.item_id, sizeof j.item_id, "%s", it->id);
  rt_item copy = *it; /* its ids only: the text may change once the lock is released */
  json_t *ij = item_json(it, "completed", true);
  /* the samples are gone from the buffer */
  memmove(s->in, s->in + b, (s->n_in - b) * sizeof *s->in);
  s->n_in -= b;
  s->consumed += b;
  s->vad_pos = s->vad_pos > b ? s->vad_pos - b : 0;
  pthread_mutex_unlock(&s->mu);
  /* the commit's events before the job is queued: its response.created comes after them */
  rt_send(s,
          json_pack("{s:s, s:o, s:s}", "type", "input_audio_buffer.committed", "previous_item_id",
                    *prev_id ? json_string(prev_id) : json_null(), "item_id", copy.id));
  send_item_added(s, ij, prev_id);
  pthread_mutex_lock(&s->mu);
  bool queued = s->p->asr && j.pcm && job_push(s, &j) == 0;
  pthread_mutex_unlock(&s->mu);
  if (!queued) {
    api_error e;
    if (!s->p->asr)
      API_BAD(&e, NULL, "no_asr_step", "model '%s' has no asr step: audio cannot be transcribed",
              s->p->name);
    else
      api_error_set(&e, 503, "server_error", "turn_queue_full", NULL,
                    "too many turns are waiting (%d)", RT_MAX_JOBS);
    rt_send_error(s, &e, NULL);
    job_clear(&j);
  }
  pthread_mutex_lock(&s->mu);
}

/* The server VAD over what was appended (under s->mu; may unlock to send). */
static void vad_run(rt_sess *s) {
  int rate = rt_fmt_rate(s->cfg.in_fmt);
  size_t win = (size_t)rate * RT_VAD_WINDOW_MS / 1000;
  size_t silence_need = (size_t)rate * (size_t)s->cfg.vad.silence_duration_ms / 1000;
  size_t prefix = (size_t)rate * (size_t)s->cfg.vad.prefix_padding_ms / 1000;
  while (s->cfg.vad.server && s->vad_pos + win <= s->n_in) {
    double lv = rt_vad_level(s->in + s->vad_pos, win);
    bool voiced = lv >= s->cfg.vad.threshold;
    size_t at = s->vad_pos;
    s->vad_pos += win;
    if (!s->speaking && voiced) {
      s->speaking = true;
      s->silence_run = 0;
      s->speech_start = at > prefix ? at - prefix : 0;
      api_random_id(s->speech_item, sizeof s->speech_item, "item_");
      bool barge = s->busy_response && s->cfg.vad.interrupt_response;
      if (barge) cancel_now(s, "turn_detected");
      long long start_ms = samples_ms(s, s->consumed + s->speech_start);
      char item[RT_MAX_ID + 1];
      snprintf(item, sizeof item, "%s", s->speech_item);
      pthread_mutex_unlock(&s->mu);
      rt_send(s, json_pack("{s:s, s:I, s:s}", "type", "input_audio_buffer.speech_started",
                           "audio_start_ms", (json_int_t)start_ms, "item_id", item));
      pthread_mutex_lock(&s->mu);
    } else if (s->speaking) {
      s->silence_run = voiced ? 0 : s->silence_run + win;
      if (s->silence_run >= silence_need) {
        s->speaking = false;
        size_t end = s->vad_pos - s->silence_run + win / 2;
        if (end > s->n_in) end = s->n_in;
        long long end_ms = samples_ms(s, s->consumed + end);
        char item[RT_MAX_ID + 1];
        snprintf(item, sizeof item, "%s", s->speech_item);
        size_t a = s->speech_start;
        pthread_mutex_unlock(&s->mu);
        rt_send(s, json_pack("{s:s, s:I, s:s}", "type", "input_audio_buffer.speech_stopped",
                             "audio_end_ms", (json_int_t)end_ms, "item_id", item));
        pthread_mutex_lock(&s->mu);
        commit_turn(s, a, end, item, s->cfg.vad.create_response && !s->cfg.transcription,
                    sy_mono_s());
      }
    }
  }
  /* without speech, keep only the prefix padding's worth */
  if (!s->speaking && s->cfg.vad.server && s->vad_pos > prefix) {
    size_t drop = s->vad_pos - prefix;
    memmove(s->in, s->in + drop, (s->n_in - drop) * sizeof *s->in);
    s->n_in -= drop;
    s->consumed += drop;
    s->vad_pos -= drop;
  }
}

static void on_append(rt_sess *s, rt_event *ev) {
  pthread_mutex_lock(&s->mu);
  size_t max = (size_t)rt_fmt_rate(s->cfg.in_fmt) * RT_MAX_BUFFER_S;
  size_t before = s->n_in;
  int rc = rt_audio_to_float(s->cfg.in_fmt, ev->audio, ev->audio_len, &s->in, &s->n_in);
  if (rc == 0 && s->n_in > max) {
    s->n_in = before;
    rc = -2;
  }
  if (rc == 0) vad_run(s);
  pthread_mutex_unlock(&s->mu);
  if (rc != 0) {
    api_error e;
    API_BAD(&e, "audio", "input_audio_buffer_full",
            "the input audio buffer holds at most %d s: commit or clear it", RT_MAX_BUFFER_S);
    rt_send_error(s, &e, ev->event_id);
  }
}

static void on_item_create(rt_sess *s, rt_event *ev) {
  json_t *item = json_object_get(ev->obj, "item");
  char *text = NULL;
  uint8_t *audio = NULL;
  size_t na = 0;
  api_error e;
  if (rt_item_content(item, &text, &audio, &na, RT_MAX_APPEND, &e) != 0) {
    rt_send_error(s, &e, ev->event_id);
    return;
  }
  const char *type = json_string_value(json_object_get(item, "type"));
  bool tool = type && strcmp(type, "function_call_output") == 0;
  const char *role = tool ? "tool" : json_string_value(json_object_get(item, "role"));
  pthread_mutex_lock(&s->mu);
  char prev[RT_MAX_ID + 1] = "";
  if (s->n_items) snprintf(prev, sizeof prev, "%s", s->items[s->n_items - 1].id);
  rt_item *it = item_add(s, role, text);
  const char *cid = json_string_value(json_object_get(item, "id"));
  if (cid && strlen(cid) <= RT_MAX_ID) snprintf(it->id, sizeof it->id, "%s", cid);
  const char *call = json_string_value(json_object_get(item, "call_id"));
  if (call && strlen(call) <= RT_MAX_ID) snprintf(it->call_id, sizeof it->call_id, "%s", call);
  rt_item copy = *it; /* its ids only: the text may change once the lock is released */
  json_t *ij = item_json(it, "completed", na > 0);
  bool queued = true;
  if (na && s->p->asr) { /* an audio item: transcribed like a committed turn */
    size_t save = s->n_in;
    float *pcm = NULL;
    size_t n = 0;
    rt_audio_to_float(s->cfg.in_fmt, audio, na, &pcm, &n);
    sy_resampler rs;
    char err[128];
    sy_fvec v = {0};
    if (pcm &&
        sy_resampler_init(&rs, rt_fmt_rate(s->cfg.in_fmt), API_AUDIO_RATE, err, sizeof err) == 0) {
      sy_resampler_feed(&rs, pcm, n, &v);
      sy_resampler_feed(&rs, NULL, 0, &v);
      sy_resampler_free(&rs);
    }
    free(pcm);
    rt_job j = {.kind = JOB_TRANSCRIBE, .pcm = v.p, .n = v.n};
    snprintf(j.item_id, sizeof j.item_id, "%s", copy.id);
    queued = v.p && job_push(s, &j) == 0;
    if (!queued) free(v.p);
    (void)save;
  }
  pthread_mutex_unlock(&s->mu);
  send_item_added(s, ij, prev);
  if (!queued) {
    api_error_set(&e, 503, "server_error", "turn_queue_full", NULL, "too many turns are waiting");
    rt_send_error(s, &e, ev->event_id);
  }
  free(text);
  free(audio);
}

static void on_event(void *ud, ws_conn *c, bool text, const uint8_t *data, size_t len) {
  rt_sess *s = ud;
  ws_hub_count(s->d->ws, WS_ROUTE_REALTIME, true, len);
  if (!text) { /* the protocol is JSON text: a binary frame is refused, and the session ends */
    api_error e;
    API_BAD(&e, NULL, "invalid_event", "binary frames are not accepted: send JSON text events");
    rt_send_error(s, &e, NULL);
    ws_close(c, WS_CLOSE_UNSUPPORTED, "binary frames are not accepted");
    return;
  }
  rt_event ev;
  api_error e = {0};
  if (rt_event_parse((const char *)data, len, RT_MAX_APPEND, &ev, &e) != 0) {
    rt_send_error(s, &e, ev.event_id);
    return;
  }
  switch (ev.type) {
    case RT_SESSION_UPDATE:
      pthread_mutex_lock(&s->mu);
      int rc = rt_session_apply(&s->cfg, json_object_get(ev.obj, "session"), &e);
      if (rc == 0 && !s->p->tts) s->cfg.audio_out = false;
      json_t *sj = rc == 0 ? rt_session_json(&s->cfg, s->id, s->p->name) : NULL;
      pthread_mutex_unlock(&s->mu);
      if (rc != 0) {
        rt_send_error(s, &e, ev.event_id);
      } else {
        const char *t = json_string_value(json_object_get(ev.obj, "type"));
        rt_send(s, json_pack("{s:s, s:o}", "type",
                             t && !strcmp(t, "transcription_session.update")
                                 ? "transcription_session.updated"
                                 : "session.updated",
                             "session", sj));
      }
      break;
    case RT_AUDIO_APPEND:
      on_append(s, &ev);
      break;
    case RT_AUDIO_COMMIT: {
      pthread_mutex_lock(&s->mu);
      size_t n = s->n_in;
      if (n < (size_t)rt_fmt_rate(s->cfg.in_fmt) / 10) { /* under 100 ms, as OpenAI refuses */
        pthread_mutex_unlock(&s->mu);
        API_BAD(&e, NULL, "input_audio_buffer_commit_empty",
                "the input audio buffer holds less than 100 ms of audio");
        rt_send_error(s, &e, ev.event_id);
        break;
      }
      s->speaking = false;
      commit_turn(s, 0, n, NULL, false, sy_mono_s());
      pthread_mutex_unlock(&s->mu);
      break;
    }
    case RT_AUDIO_CLEAR:
      pthread_mutex_lock(&s->mu);
      s->consumed += s->n_in;
      s->n_in = s->vad_pos = 0;
      s->speaking = false;
      pthread_mutex_unlock(&s->mu);
      rt_send(s, json_pack("{s:s}", "type", "input_audio_buffer.cleared"));
      break;
    case RT_ITEM_CREATE:
      on_item_create(s, &ev);
      break;
    case RT_ITEM_TRUNCATE: {
      pthread_mutex_lock(&s->mu);
      rt_item *it = item_find(s, ev.item_id);
      bool ok = it && strcmp(it->role, "assistant") == 0;
      if (ok && it->spoken) { /* the text of the sentences heard by audio_end_ms */
        size_t keep = 0, i;
        json_t *m;
        json_array_foreach(it->marks, i, m) {
          if (json_integer_value(json_array_get(m, 0)) <= ev.audio_end_ms)
            keep = (size_t)json_integer_value(json_array_get(m, 1));
        }
        if (keep <= strlen(it->spoken)) {
          free(it->text);
          it->text = strndup(it->spoken, keep);
        }
      }
      pthread_mutex_unlock(&s->mu);
      if (!ok) {
        API_BAD(&e, "item_id", "item_not_found", "no assistant item '%s'", ev.item_id);
        rt_send_error(s, &e, ev.event_id);
        break;
      }
      rt_send(s, json_pack("{s:s, s:s, s:i, s:I}", "type", "conversation.item.truncated", "item_id",
                           ev.item_id, "content_index", ev.content_index, "audio_end_ms",
                           (json_int_t)ev.audio_end_ms));
      break;
    }
    case RT_ITEM_DELETE:
    case RT_ITEM_RETRIEVE: {
      pthread_mutex_lock(&s->mu);
      rt_item *it = item_find(s, ev.item_id);
      json_t *ij = it ? item_json(it, "completed", false) : NULL;
      if (it && ev.type == RT_ITEM_DELETE) {
        item_clear(it);
        size_t k = (size_t)(it - s->items);
        memmove(it, it + 1, (s->n_items - k - 1) * sizeof *it);
        s->n_items--;
      }
      pthread_mutex_unlock(&s->mu);
      if (!ij) {
        API_BAD(&e, "item_id", "item_not_found", "no item '%s'", ev.item_id);
        rt_send_error(s, &e, ev.event_id);
      } else if (ev.type == RT_ITEM_DELETE) {
        json_decref(ij);
        rt_send(
            s, json_pack("{s:s, s:s}", "type", "conversation.item.deleted", "item_id", ev.item_id));
      } else {
        rt_send(s, json_pack("{s:s, s:o}", "type", "conversation.item.retrieved", "item", ij));
      }
      break;
    }
    case RT_RESPONSE_CREATE: {
      pthread_mutex_lock(&s->mu);
      bool refuse = s->cfg.transcription;
      rt_job j = {.kind = JOB_RESPOND,
                  .response = json_incref(json_object_get(ev.obj, "response"))};
      int rc2 = refuse ? -1 : job_push(s, &j);
      pthread_mutex_unlock(&s->mu);
      if (rc2 != 0) {
        json_decref(j.response);
        if (refuse)
          API_BAD(&e, "type", "invalid_event", "a transcription session makes no responses");
        else
          api_error_set(&e, 503, "server_error", "turn_queue_full", NULL,
                        "too many responses are waiting");
        rt_send_error(s, &e, ev.event_id);
      }
      break;
    }
    case RT_RESPONSE_CANCEL:
    case RT_OUTPUT_AUDIO_CLEAR:
      pthread_mutex_lock(&s->mu);
      bool active = s->busy_response;
      if (active) cancel_now(s, "client_cancelled");
      pthread_mutex_unlock(&s->mu);
      if (!active && ev.type == RT_RESPONSE_CANCEL) {
        API_BAD(&e, NULL, "response_cancel_not_active", "there is no response to cancel");
        rt_send_error(s, &e, ev.event_id);
      }
      break;
  }
  rt_event_clear(&ev);
}

/* ---- the session ---- */

static void sess_free(rt_sess *s) {
  for (size_t i = 0; i < s->n_items; i++) item_clear(&s->items[i]);
  for (size_t i = 0; i < s->n_jobs; i++) job_clear(&s->jobs[i]);
  rt_session_free(&s->cfg);
  free(s->in);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

static void session(void *ud, ws_conn *c, int stop_fd) {
  rt_sess *s = ud;
  s->c = c;
  LOG_I("realtime %s: session %s open%s", s->p->name, s->id,
        s->cfg.transcription ? " (transcription)" : "");
  json_t *sj = rt_session_json(&s->cfg, s->id, s->p->name);
  rt_send(s, json_pack("{s:s, s:o}", "type",
                       s->cfg.transcription ? "transcription_session.created" : "session.created",
                       "session", sj));
  if (s->cfg.transcription) /* the GA name too: current clients wait for session.created */
    rt_send(s, json_pack("{s:s, s:o}", "type", "session.created", "session",
                         rt_session_json(&s->cfg, s->id, s->p->name)));
  s->turn_started = pthread_create(&s->turn, NULL, turn_main, s) == 0;
  if (!s->turn_started) ws_close(c, WS_CLOSE_INTERNAL, "out of threads");
  ws_handler h = {.on_message = on_event, .extra_fd = -1};
  int code = ws_run(c, &h, s, stop_fd);
  /* the client is gone (or closed): whatever runs is cancelled, its workers freed */
  pthread_mutex_lock(&s->mu);
  s->quit = true;
  cancel_now(s, "client_gone");
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->turn_started) pthread_join(s->turn, NULL);
  uint16_t sent = ws_close_code_sent(c);
  ws_hub_closed(s->d->ws, WS_ROUTE_REALTIME, sent ? sent : code);
  LOG_I("realtime %s: session %s closed (%d)", s->p->name, s->id, sent ? sent : code);
  sess_free(s);
}

static void drop(void *ud) { sess_free(ud); }

/* Whether the client offered subprotocol want (Sec-WebSocket-Protocol: a comma list). */
static bool offers(const char *list, const char *want) {
  size_t wl = strlen(want);
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    if ((size_t)(e - p) == wl && strncmp(p, want, wl) == 0) return true;
    p = e;
  }
  return false;
}

void api_realtime_handle(sy_daemon *d, http_req *r, api_call *c) {
  api_error e = {0};
  const char *name = http_arg(r, "model");
  const char *intent = http_arg(r, "intent");
  bool transcription = intent && strcmp(intent, "transcription") == 0;
  if (!d->ws) {
    api_error_set(&e, 503, "server_error", "too_many_sessions", NULL,
                  "WebSocket sessions are not available");
    http_reply_error(r, &e);
    return;
  }
  if (intent && !transcription) {
    API_BAD(&e, "intent", "invalid_value", "intent must be 'transcription' (or absent)");
    http_reply_error(r, &e);
    return;
  }
  if (!name || !*name) {
    API_BAD(&e, "model", "missing_required_parameter",
            "/v1/realtime needs ?model=<voice pipeline> (or a transcribe model with "
            "intent=transcription)");
    http_reply_error(r, &e);
    return;
  }
  json_t *q = json_pack("{s:s}", "model", name);
  api_target t;
  api_resolve(c->mx, NULL, q, &t); /* a peer's model is not a realtime session here */
  json_decref(q);
  rt_sess *s = calloc(1, sizeof *s);
  if (!s) {
    API_SERVER(&e, "out_of_memory", "out of memory");
    http_reply_error(r, &e);
    return;
  }
  if (t.kind == API_TARGET_PIPELINE && t.pipeline->kind == MATRIX_PIPE_VOICE) {
    s->p = t.pipeline;
  } else if (t.kind == API_TARGET_PIPELINE && transcription && t.pipeline->asr) {
    s->p = t.pipeline;
  } else if (t.kind == API_TARGET_MODEL && transcription &&
             (t.model->caps & MATRIX_CAP_TRANSCRIBE)) {
    s->own = (matrix_pipeline){.name = t.model->name,
                               .kind = MATRIX_PIPE_VOICE,
                               .asr = t.model->name,
                               .max_tokens = 1,
                               .temperature = -1,
                               .sentence_chars = 200};
    s->p = &s->own;
  } else if (t.kind == API_TARGET_MODEL && !transcription && (t.model->caps & MATRIX_CAP_CHAT)) {
    /* a chat model on its own: a text session (no asr, no tts) */
    s->own = (matrix_pipeline){.name = t.model->name,
                               .kind = MATRIX_PIPE_VOICE,
                               .llm = t.model->name,
                               .max_tokens = 512,
                               .temperature = -1,
                               .sentence_chars = 200};
    s->p = &s->own;
  } else {
    free(s);
    if (t.kind == API_TARGET_NONE) {
      http_reply_error(r, &t.err);
      return;
    }
    API_BAD(&e, "model", "wrong_capability",
            "'%s' is not a voice pipeline or chat model%s: /v1/realtime serves voice pipelines "
            "(STT → chat → TTS), chat models (text only), and transcribe models with "
            "intent=transcription",
            name, transcription ? " or a transcribe model" : "");
    http_reply_error(r, &e);
    return;
  }
  s->d = d;
  s->mx = c->mx;
  s->mt = sched_metrics(d->sc);
  s->row = metrics_model(s->mt, s->p->name);
  s->cancel_fd[0] = s->cancel_fd[1] = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  rt_session_init(&s->cfg, transcription);
  if (!s->p->tts) s->cfg.audio_out = false;
  api_random_id(s->id, sizeof s->id, transcription ? "sess_tr_" : "sess_");
  const char *offered = http_header(r, "Sec-WebSocket-Protocol");
  if (ws_accept(d->ws, r, WS_ROUTE_REALTIME, offers(offered, "realtime") ? "realtime" : NULL,
                session, s, drop, &e) != 0) {
    sess_free(s);
    http_reply_error(r, &e);
  }
}
