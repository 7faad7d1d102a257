/* speech.h — text to speech: POST /v1/audio/speech (OpenAI's shape: audio bytes streamed as
 * they are synthesised, or SSE speech.audio.delta events) and GET /v1/audio/voices. The worker
 * sends float32 PCM; the audio module (audio.h) encodes it at 24 kHz, as OpenAI's audio is.
 * Was api_speech.h. Exports api_speech_*, and also api_parse_speech (the body's validation,
 * which parse/ does for the other endpoints) and api_voices_handle. */
#ifndef SY_API_SPEECH_H
#define SY_API_SPEECH_H

#include <jansson.h>
#include <stdbool.h>

#include "config/matrix.h"
#include "daemon.h"
#include "http/api_error.h"
#include "parse/api_parse.h" /* API_SPEECH_RATE */

#define API_SPEECH_MAX_CHARS 4096 /* OpenAI's limit on input, in characters */
#define API_SPEECH_MAX_CLIP_S 30  /* voice.audio: seconds of a request's reference clip */

typedef struct api_speech {
  const matrix_model *model;
  json_t *msg;    /* the worker's `speak` message (owned) */
  char format[8]; /* mp3 opus aac flac wav pcm */
  bool sse;       /* stream_format "sse" */
  size_t n_chars; /* characters of input (code points) */
  json_t *clip;   /* voice.audio: the request's own reference clip (base64), or NULL */
} api_speech;

/* Validate a /v1/audio/speech body (pure); t: its "model" already resolved (api_resolve), or NULL
 * to resolve it here. 0, or -1 + err (400 naming the field; 404/400 for the model as
 * api_find_model). */
int api_parse_speech(const matrix *mx, const api_target *t, const json_t *req, api_speech *out,
                     api_error *err);
void api_speech_clear(api_speech *s);

/* The handlers (api_speech_handle, api_voices_handle) are declared in api_int.h, with the other
 * families': api.c's route table calls them. */

/* A worker's error frame (hdr, borrowed) as both endpoints answer it: api_error_from_worker
 * (api_error.h) unchanged (invalid_voice and invalid_language name "voice" and "language" there);
 * this is where a speech-only twist would go. Pure, unit-tested. */
void api_speech_worker_error(const json_t *hdr, api_error *e);

#endif
