/* realtime_parse.h — OpenAI's Realtime API (WebSocket /v1/realtime) as pure functions: a client
 * event (one text message) parsed and checked into an rt_event, under its current name or the older
 * beta name some clients still send; a session's configuration (session.update, both shapes)
 * merged into an rt_session; the session object and the error event the server sends; G.711
 * (µ-law, A-law) and pcm16 audio to and from float samples. No I/O, no threads; unit-tested
 * (tests/unit/test_realtime.c) and fuzzed (tests/fuzz/fuzz_realtime.c). Exports rt_*.
 * Must never accept an event without a known type, never decode more audio than the caller's
 * bound, never keep a pointer into the message it parsed, never let a bad field change the
 * session (an update is checked whole before any of it applies). */
#ifndef SY_REALTIME_PARSE_H
#define SY_REALTIME_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/api_error.h"

#define RT_RATE 24000     /* pcm16's sample rate, in and out (the API's) */
#define RT_G711_RATE 8000 /* g711's */
#define RT_MAX_ID 64      /* item, event and call ids we keep */
#define RT_MAX_VOICE 64
#define RT_MAX_INSTRUCTIONS 16384
#define RT_MAX_TOOLS 64
#define RT_MAX_TEXT 65536 /* one input_text part */

typedef enum rt_fmt { RT_FMT_PCM16 = 0, RT_FMT_ULAW, RT_FMT_ALAW } rt_fmt;

typedef struct rt_vad {
  bool server;             /* turn_detection server_vad (false: none; commits are the client's) */
  double threshold;        /* 0..1, default 0.5 */
  int prefix_padding_ms;   /* default 300 */
  int silence_duration_ms; /* default 500 */
  bool create_response;    /* default true */
  bool interrupt_response; /* default true: speech during a response cancels it (barge-in) */
} rt_vad;

typedef struct rt_session {
  bool transcription; /* a transcription session: no responses */
  char *instructions; /* owned; NULL: the pipeline's */
  char voice[RT_MAX_VOICE + 1];
  bool audio_out; /* output modalities: audio (and its transcript), else text only */
  rt_fmt in_fmt, out_fmt;
  rt_vad vad;
  char transcribe_model[RT_MAX_ID + 1]; /* input transcription model, "" = none asked */
  char language[RT_MAX_ID + 1];
  json_t *tools;         /* chat-completions tools (converted from the Realtime shape), or NULL */
  json_t *tool_choice;   /* chat-completions tool_choice ("auto", "none", "required", {function}) */
  double temperature;    /* < 0: the default */
  int max_output_tokens; /* 0: the default */
} rt_session;

typedef enum rt_type {
  RT_SESSION_UPDATE = 0, /* session.update, transcription_session.update */
  RT_AUDIO_APPEND,       /* input_audio_buffer.append */
  RT_AUDIO_COMMIT,       /* input_audio_buffer.commit */
  RT_AUDIO_CLEAR,        /* input_audio_buffer.clear */
  RT_ITEM_CREATE,        /* conversation.item.create */
  RT_ITEM_TRUNCATE,      /* conversation.item.truncate */
  RT_ITEM_DELETE,        /* conversation.item.delete */
  RT_ITEM_RETRIEVE,      /* conversation.item.retrieve */
  RT_RESPONSE_CREATE,    /* response.create */
  RT_RESPONSE_CANCEL,    /* response.cancel */
  RT_OUTPUT_AUDIO_CLEAR, /* output_audio_buffer.clear */
} rt_type;

typedef struct rt_event {
  rt_type type;
  char event_id[RT_MAX_ID + 1]; /* the client's, "" when none */
  json_t *obj;                  /* the whole event (owned): session, item, response */
  uint8_t *audio;               /* append: the decoded bytes (owned) */
  size_t audio_len;
  char item_id[RT_MAX_ID + 1]; /* truncate, delete, retrieve */
  int content_index;
  long long audio_end_ms;
} rt_event;

/* Parse one client event (a text message's bytes) into ev. max_audio bounds an append's decoded
 * bytes. 0, or -1 with e set (status 400; code invalid_json, invalid_event, unknown_event,
 * missing_field, invalid_value, audio_too_large; param the field) and ev->event_id filled when
 * it could be read (for the error event). ev is cleared first; rt_event_clear frees it. */
int rt_event_parse(const char *text, size_t len, size_t max_audio, rt_event *ev, api_error *e);
void rt_event_clear(rt_event *ev);

/* The defaults: audio out, pcm16 both ways, server VAD with its defaults, no tools. */
void rt_session_init(rt_session *s, bool transcription);
void rt_session_free(rt_session *s);
/* Merge session (a session.update's object, GA or beta shape) into s, checked whole first. 0, or
 * -1 with e (400, param the field, e.g. "session.audio.input.format") and s unchanged. */
int rt_session_apply(rt_session *s, const json_t *session, api_error *e);
/* The session object for session.created / session.updated (new reference). */
json_t *rt_session_json(const rt_session *s, const char *id, const char *model);

/* An error event for e (new reference): {"type":"error","event_id","error":{type,code,message,
 * param,event_id}}; client_event_id: the event it answers ("" or NULL: none). */
json_t *rt_error_event(const api_error *e, const char *client_event_id);

/* A user message item's text and audio parts: the text joined ("" when none), the input_audio
 * parts' base64 decoded and appended to audio (the session's input format; bounded by max_audio).
 * Also function_call_output (its output as text) and system/assistant messages. 0 or -1 + e. */
int rt_item_content(const json_t *item, char **text, uint8_t **audio, size_t *audio_len,
                    size_t max_audio, api_error *e);

/* Audio: n input bytes of fmt to float samples at the format's rate (pcm16: RT_RATE, g711:
 * RT_G711_RATE), appended to out (grown with realloc; *n_out updated). 0 or -1 (out of memory). */
int rt_audio_to_float(rt_fmt fmt, const uint8_t *in, size_t n, float **out, size_t *n_out);
/* Float samples (already at the format's rate) to fmt's bytes, n_out set. malloc'd, or NULL. */
uint8_t *rt_audio_from_float(rt_fmt fmt, const float *in, size_t n, size_t *n_out);
int rt_fmt_rate(rt_fmt fmt);

/* The server VAD's level of a window of samples, 0..1, compared with turn_detection.threshold:
 * an energy detector (RMS in dBFS, -60 → 0, 0 → 1, so 0.5 ≈ -30 dBFS). Pure. */
double rt_vad_level(const float *pcm, size_t n);

#endif
