/* pipeline.h — pipelines: named virtual models whose steps are other models (matrix.h
 * matrix_pipeline, docs/CONFIG.md). Each step is an ordinary request to its model's worker, got
 * from the scheduler like any other (so steps load, queue, pin and evict as usual); a step that
 * fails is named in the error (param = "asr" | "llm" | "tts"). See docs/API.md "Pipelines".
 * Exports pipe_* (short for pipeline). */
#ifndef SY_PIPELINE_H
#define SY_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"
#include "http/api_error.h"

/* A pipeline's steps (an error's param names the failed one: "asr", "llm", "tts"). */
enum pipe_role { PIPE_ASR = 0, PIPE_LLM, PIPE_TTS };

/* Transcribe-and-clean (api/transcribe.c, once the form is checked and the audio decoded to 16 kHz
 * mono): the asr step's transcript, then the llm step with the pipeline's instruction as system
 * prompt and the transcript as user message. fmt is AUD_JSON, AUD_TEXT or AUD_VERBOSE (with
 * raw_text); language and prompt may be "" / NULL. Answers r. */
void pipe_transcribe_clean(sy_daemon *d, http_req *r, const matrix *mx, const matrix_pipeline *p,
                           const float *pcm, size_t n, const char *language, const char *prompt,
                           int fmt);

/* A voice turn (POST /v1/chat/completions naming a voice pipeline p, which the endpoint resolved;
 * req: the parsed body, borrowed): input_audio parts transcribed
 * by the asr step, the conversation answered by the llm step, its text cut into sentences, each
 * spoken by the tts step as soon as it is complete; streamed or not. Answers r (the status is
 * readable with http_reply_status; X-Switchyard-Model names the pipeline). */
void pipe_voice_turn(sy_daemon *d, http_req *r, const matrix *mx, const matrix_pipeline *p,
                     const json_t *req);

/* The asr step of p alone, over n samples of 16 kHz mono (a realtime session's committed turn,
 * api/realtime.c): the transcript appended to text. watch_fd (>= 0) hanging up cancels it (the
 * session's cancel socket). 1 = done, 0 = cancelled, -1 = err (naming the step). */
int pipe_run_asr(sy_daemon *d, const matrix *mx, const matrix_pipeline *p, const float *pcm,
                 size_t n, const char *language, int watch_fd, sy_buf *text, api_error *err);

/* A pipeline's entry in GET /v1/models: id, object "model", created, owned_by, and
 * "pipeline": {kind, asr, llm, tts}. */
json_t *pipe_model_json(const matrix_pipeline *p, long long created);

/* Pure, unit-tested: the length of the first piece of s[0..len) to speak — up to and including a
 * sentence end ('.', '!', '?' or ';' before white space, a newline, or 。！？), else, once
 * max_chars bytes have come with no sentence end, up to the last space before max_chars (or
 * max_chars, backed off to a UTF-8 boundary, when there is none); with final, the whole rest.
 * 0: wait for more text. */
size_t pipe_sentence_cut(const char *s, size_t len, size_t max_chars, bool final);

/* Pure, unit-tested: a step's worker error frame (hdr, borrowed) as a pipeline answers it:
 * api_error_from_worker (api_error.h) for status, type and code, then the step named: message
 * "pipeline 'P' step ROLE (MODEL) failed: why", param "asr" | "llm" | "tts" (role: a pipe_role). */
void pipe_step_error(const json_t *hdr, const matrix_pipeline *p, int role, const char *model,
                     api_error *e);

#endif
