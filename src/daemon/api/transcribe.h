/* transcribe.h — speech to text: POST /v1/audio/transcriptions and /v1/audio/translations
 * (OpenAI's multipart/form-data API), answered by a whisper worker. See docs/API.md. */
#ifndef SY_API_TRANSCRIBE_H
#define SY_API_TRANSCRIBE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "daemon.h"
#include "http/api_error.h"
#include "parse/api_parse.h" /* AUD_* */

/* The handler (either endpoint; translate: /v1/audio/translations) is declared in api_int.h,
 * with the other families': the route table calls it with the form already parsed. */

/* Pure helpers, unit-tested. */
/* "json", "text", "srt", "vtt", "verbose_json" → AUD_*; -1 when unknown. */
int api_transcribe_format(const char *s);
/* A cue's time: "HH:MM:SS,mmm" (srt) or "HH:MM:SS.mmm" (vtt), rounded to the millisecond;
 * negative or non-finite times are 0. */
void api_transcribe_timestamp(double secs, bool srt, char *out, size_t cap);
/* Subtitles from segments [{start, end, text}]: cues numbered (srt) or under a WEBVTT header,
 * each cue's start no earlier than the one before and its end no earlier than its start, text
 * trimmed; segments with no text are left out. 0, or -1 when out refused to grow. */
int api_transcribe_subtitles(const json_t *segments, bool srt, sy_buf *out);
/* A worker's error frame (hdr, borrowed) as both endpoints answer it: api_error_from_worker
 * (api_error.h) unchanged; this is where a transcription-only twist would go. Pure, unit-tested. */
void api_transcribe_worker_error(const json_t *hdr, api_error *e);

#endif
