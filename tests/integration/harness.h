/* harness.h — the integration tests' harness: the one header every feature file includes.
 *
 * The tests start the real daemon (which starts real llama.cpp, whisper.cpp and espeak workers on
 * random-weight models made by tools/mkmodel) on a free loopback port and drive it over HTTP with
 * libcurl. They assert on structure (shapes, token counts, finish reasons, status codes,
 * determinism under a fixed seed), never on meaning. No sleeps: every wait is on a condition (a
 * pipe, a response, a bounded poll of /api/ps).
 *
 * What is here: the CHECK macro and the counters; the daemon under test (D, started by main.c on
 * the config it_write_main_config writes) and a test's own second daemon (B, it_with_own_daemon);
 * HTTP helpers (it_http_do and friends), JSON path helpers (it_jpath, it_jstr, it_jnum), SSE
 * parsing, WAV and multipart helpers; only what more than one feature file uses. Everything else
 * is static in its feature file.
 *
 * A feature file (chat.c, speech.c, …) exports one itest_table, declared at the end of this file;
 * main.c runs the tables in the order listed there. Not thread-safe unless said otherwise: a test
 * runs on the main thread, CHECK only there (it returns from the calling function). */
#ifndef SWITCHYARD_ITEST_HARNESS_H
#define SWITCHYARD_ITEST_HARNESS_H

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "media/audio.h" /* the only path into src/daemon: the decoders speech tests use */
#include "buf.h"

/* ---- tiny test harness: counters, the current test's verdict, CHECK ---- */

/* the run's totals (main.c counts; a test may count itself skipped) */
extern int it_n_pass, it_n_fail, it_n_skip;

extern char it_cur_fail[1024]; /* the current test's first failed CHECK */

extern char it_cur_skip[256]; /* set by a test that cannot run here: counted as skipped */

extern bool it_cur_failed; /* the current test failed a CHECK */

/* CHECK(cond, fmt, ...): when cond is false, record the test's first failure (line, condition,
 * message) and return from the calling function (a void one). */
#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      if (!it_cur_failed) {                                                                   \
        int k_ = snprintf(it_cur_fail, sizeof it_cur_fail, "line %d: %s: ", __LINE__, #cond); \
        if (k_ > 0 && (size_t)k_ < sizeof it_cur_fail)                                        \
          snprintf(it_cur_fail + k_, sizeof it_cur_fail - (size_t)k_, __VA_ARGS__);           \
      }                                                                                       \
      it_cur_failed = true;                                                                   \
      return;                                                                                 \
    }                                                                                         \
  } while (0)

/* ---- the daemon under test ---- */

/* set by main.c from the command line before any test runs; paths are absolute */
extern const char *it_daemon_bin, *it_models_dir, *it_testdata_dir;

/* --engines or SWITCHYARD_ENGINES: the engine cache's install folder, or NULL */
extern const char *it_engines_dir;

extern char it_tmpdir[256];

typedef struct daemon_proc {
  pid_t pid;
  int port;
  char base[64];
  const char *api_key;
} daemon_proc;

extern daemon_proc D; /* the main instance */

extern bool it_have_testdata; /* --testdata holds llama-2-tiny-random.gguf */

extern bool it_have_vlm; /* models/tiny-vlm-mmproj.gguf exists (tests/models.sh) */

extern bool it_have_alm; /* models/tiny-alm-mmproj.gguf exists (mkmodel --mmproj-kind audio) */

extern bool
    it_have_quant; /* models/tiny-qwen2-q8_0.gguf and -q4_k_m.gguf exist (tests/models.sh) */

extern bool
    it_have_pocket; /* models/tiny-pocket-mmproj.gguf exists (mkmodel --arch pockettts --mmproj) */

extern bool it_have_hybrid; /* models/tiny-hybrid.gguf exists (tests/models.sh; qwen3next) */

/* When set, daemons started from then on log (stderr: theirs and their workers') to this file,
 * appended; NULL: to the test's own stderr. */
extern const char *it_daemon_log;

/* A text of about n words ending with "." (word k of a fixed list; salt changes them): prompts
 * whose tokens end where the next words begin (" word" never merges with "."). */
void it_words(char *out, size_t cap, int n, int salt);

/* Start the daemon on config (port 0, its own state folder "<config>.state"); returns once it
 * listens (0) or died (-1). */
int it_start_daemon(daemon_proc *d, const char *config);

/* it_start_daemon on this port (0: a free one): a daemon started again where its peers expect it.
 */
int it_start_daemon_at(daemon_proc *d, const char *config, int port);

/* SIGTERM and reap d: its exit status (128 + signal when killed), -1 when it was not running. */
int it_stop_daemon(daemon_proc *d);

/* ---- HTTP client ---- */

typedef struct resp {
  long status;
  sy_buf body;
  json_t *json;
  char model_hdr[128];
  char content_type[128];
  char retry_after[128];
  char server_timing[256];
} resp;

/* libcurl callbacks filling a resp (ud): the body, and the headers resp keeps */
size_t it_on_body(char *p, size_t sz, size_t n, void *ud);

size_t it_on_header(char *p, size_t sz, size_t n, void *ud);

/* Free r's body and JSON; r is zeroed. */
void it_resp_clear(resp *r);

/* method path body; extra headers NULL-terminated; fills r (json parsed when possible). */
void it_http_do(const daemon_proc *d, const char *method, const char *path, const char *body,
                resp *r, const char *const *headers);

/* it_http_do on the main instance D, without extra headers */
void it_post(const char *path, const char *body, resp *r);

void it_get(const char *path, resp *r);

/* POST body (stolen) as JSON to d's path. */
void it_post_json_at(const daemon_proc *d, const char *path, json_t *body, resp *r);

/* it_post_json_at on the main instance D */
void it_post_json(const char *path, json_t *body, resp *r);

extern daemon_proc B; /* a test's own second daemon (it_with_own_daemon) */

/* POST a chat body (stolen) to the test's own second daemon, B. */
void it_b_chat(json_t *body, resp *r);

/* The value at a dotted path ("choices.0.message.content"; numbers index arrays), or NULL. */
const json_t *it_jpath(const json_t *j, const char *path);

/* it_jpath's string, or NULL */
const char *it_jstr(const json_t *j, const char *path);

/* The whole file at path appended to b; false if it cannot be read. */
bool it_read_whole(const char *path, sy_buf *b);

/* it_jpath's integer, or -1 */
long long it_jnum(const json_t *j, const char *path);

/* Parse an SSE body into its JSON events; *done set when "data: [DONE]" ends it. */
json_t *it_sse_events(const sy_buf *b, bool *done, bool *well_formed);

/* Concatenated content of a chat/completion stream, with its finish reason and usage. */
void it_stream_text(json_t *events, bool chat, sy_buf *text, const char **finish, json_t **usage);

/* r is an OpenAI-style error with this status (and this error.code unless code is NULL) */
bool it_is_error(const resp *r, long status, const char *code);

/* A chat request (new reference): one user message, max_tokens, stream. */
json_t *it_chat_body(const char *model, const char *content, int max_tokens, bool stream);

/* it_chat_body with ignore_eos: it runs max_tokens, whatever the random weights say. */
json_t *it_long_chat_body(const char *model, const char *content, int max_tokens, bool stream);

/* POST the chat body (stolen) to D with stream: true: whether the answer is a 200 and a
 * well-formed SSE stream of more than one event ended by [DONE]. r holds the answer. */
bool it_chat_streams(json_t *body, resp *r);

/* The L2 norm of a JSON array of numbers; its length in *dim. */
double it_norm_of(const json_t *vec, size_t *dim);

/* ---- clients that hang up, background requests, the event feed ---- */

/* it_abort_after_first's state: a write callback that hangs up at the second chunk */
typedef struct it_abort_ctx {
  int chunks;
} it_abort_ctx;

size_t it_abort_after_first(char *p, size_t sz, size_t n, void *ud);

/* POST body (stolen) as JSON to d's path, the answer's body handed to on_body(…, ud) piece by
 * piece (a curl write callback: returning less than it was given hangs up). curl's code; the HTTP
 * status in *status when status is not NULL. */
CURLcode it_post_streamed(const daemon_proc *d, const char *path, json_t *body,
                          curl_write_callback on_body, void *ud, long *status);

/* POST body (stolen) to d's path as a client that hangs up at the answer's second piece
 * (it_abort_after_first): curl's code, CURLE_WRITE_ERROR when it did hang up. */
CURLcode it_abandon_stream(const daemon_proc *d, const char *path, json_t *body);

/* a chat run on a thread (it_bg_chat): its answer in r once it_bg_join has returned */
typedef struct it_bg_req {
  resp r;
  const daemon_proc *d;
  json_t *body;
  pthread_t th;
} it_bg_req;

/* POST the chat body (stolen) to d's /v1/chat/completions on a thread; it_bg_join waits for it. */
void it_bg_chat(it_bg_req *b, const daemon_proc *d, json_t *body);

void it_bg_join(it_bg_req *b);

/* GET /api/events followed on a thread (it_feed_main), until the strings in until[] were seen */
typedef struct it_feed {
  const daemon_proc *d; /* NULL: the main instance */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool hello;
  sy_buf body;
  CURLcode rc;
  const char *until[4]; /* hang up once all of these have been seen */
} it_feed;

/* The thread body: follows f->d's (or D's) /api/events into f->body. */
void *it_feed_main(void *arg);

/* Subscribe f (its fields set) on a thread; returns once the stream has started. */
void it_feed_start(it_feed *f, pthread_t *th);

/* ---- GET /metrics ---- */

/* The value of the sample `head` (name and labels exactly as rendered) in a Prometheus text body;
 * -1 when absent. */
double it_metric(const char *text, const char *head);

/* promtool check metrics on the body: 1 ok, 0 problems (in out), -1 promtool not installed. */
int it_promtool_check(const sy_buf *body, char *out, size_t outlen);

/* ---- a daemon of the test's own (B) ---- */

/* A short chat on B; its HTTP status. */
long it_budget_request(const char *model);

/* Run body against a daemon of its own (B) started with this config text; B is always stopped. */
void it_with_own_daemon(const char *name, const char *yaml, void (*body)(void));

/* Write text to path (replacing it). */
void it_write_file(const char *path, const char *text);

/* d's /api/ps entry for name: a new reference, or NULL when not listed. */
json_t *it_ps_model(const daemon_proc *d, const char *name);

/* it_ps_model on B */
json_t *it_b_ps_model(const char *name);

/* d's /api/ps stats.<key> (cancelled, …), or -1. */
long long it_ps_stat(const daemon_proc *d, const char *key);

/* Poll d's /api/ps (bounded, no sleeps) until name has a request in flight: true then, its pid in
 * *pid when pid is not NULL; false when it never showed. */
bool it_wait_inflight(const daemon_proc *d, const char *name, long long *pid);

/* POST /api/load of name on B; the HTTP status. */
long it_b_load(const char *name);

/* ---- vision ---- */

/* a small valid PNG (RGB, 5x4), base64 */
extern const char it_png_5x4[];
extern const char it_png_3x7[]; /* another image: base64 PNGs, 5x4 and 3x7 pixels */

/* A user message with the text and then one image_url part per url (NULL-terminated). */
json_t *it_vision_body(const char *model, const char *text, const char *const *urls);

/* "data:image/png;base64,<b64>" (malloc'd). */
char *it_data_url(const char *b64);

/* ---- speech to text (/v1/audio/transcriptions, /translations) ---- */

/* POST a multipart form to daemon d: the file (data, or none when NULL) and name/value pairs
 * (NULL-ended). */
void it_post_form_at(const daemon_proc *d, const char *path, const void *file, size_t file_len,
                     const char *const *kv, resp *r);

/* it_post_form_at on the main instance D. */
void it_post_form(const char *path, const void *file, size_t file_len, const char *const *kv,
                  resp *r);

/* A 16 kHz mono 16-bit WAV: secs of a gliding tone over a little noise. */
void it_make_wav(sy_buf *b, double secs);

/* Check an SRT (srt) or VTT body: numbered cues / WEBVTT header, well-formed and increasing
 * times, a text line per cue. Returns the number of cues, or -1 (reason in why). */
int it_check_subtitles(const char *body, bool srt, char *why, size_t wl);

/* a 3 s it_make_wav, made by the first test that needs it */
extern sy_buf it_test_wav;

/* ---- speech (the built-in `speak` model: espeak-ng, no file) ---- */

typedef struct it_speech_resp {
  long status;
  sy_buf body;
  int writes;   /* write callbacks: the body arrived in this many pieces */
  bool chunked; /* Transfer-Encoding: chunked */
  char ctype[64];
  double t_first, t_total;
} it_speech_resp;

/* POST /v1/audio/speech with body (stolen). */
void it_speech_post(const daemon_proc *d, json_t *body, it_speech_resp *r);

/* A RIFF/WAVE body (PCM, mono, 16 bit, 24 kHz): its samples' bytes in data and n; false if
 * malformed. */
bool it_wav_parse(const sy_buf *b, const unsigned char **data, size_t *n, char *why, size_t wl);

/* ---- neural speech: a Pocket-TTS pair through mtmd's audio generator (docs/TTS.md) ---- */

/* A /v1/audio/speech body (new reference): model, input, response_format, seed, and voice unless
 * NULL. */
json_t *it_speech_body(const char *model, const char *input, const char *format, const char *voice,
                       int seed);

/* A neural voice, seeded: text by model in the voice "ref" at seed 7 on d is a streamed 24 kHz
 * WAV, not silence, of at least min_bytes of samples in a multiple of `multiple` bytes; the same
 * request again gives the same bytes, seed 8 other audio. CHECKs: the caller returns when
 * it_cur_failed. */
void it_check_seeded_voice(const daemon_proc *d, const char *model, const char *text,
                           size_t min_bytes, size_t multiple);

/* A 2 s, 24 kHz, 16-bit sine: the reference clip of the `ref` voice. */
void it_write_ref_wav(const char *path);

/* The voice.audio of a request: a clip in it_tmpdir as a data: URL (voice cloning, voice_upload).
 */
json_t *it_uploaded_voice_file(const char *name);

/* base64 of data (malloc'd). */
char *it_b64_encode(const void *data, size_t n);

/* A user message with the text and then one input_audio part per base64 string (NULL-ended). */
json_t *it_audio_body(const char *model, const char *text, const char *const *b64s);

/* s is not NULL and equals want. */
bool it_str_is(const char *s, const char *want);

/* arr is a JSON array that holds the string s (a model's capabilities, say). */
bool it_lists(const json_t *arr, const char *s);

/* The pid B's /api/ps lists for name, or -1. */
long long it_b_ps_pid(const char *name);

/* ---- the main instance's config ---- */

/* The config of D: every model the shared tests use (the optional ones when their files exist). */
void it_write_main_config(const char *path);

/* ---- the tables ---- */

typedef struct it_test {
  const char *name;
  void (*fn)(void);
  bool needs_testdata; /* skipped without --testdata */
} it_test;

typedef struct itest_table {
  const char *name; /* the feature: `--only NAME` runs all of its tests */
  const it_test *tests;
  size_t count;
} itest_table;

/* one per feature file, in the order main.c runs them (the order the tests always ran in) */
extern const itest_table itest_prompt_cache, itest_basics, itest_threads, itest_embed,
    itest_serving, itest_ops, itest_budget, itest_config, itest_fidelity, itest_vision, itest_asr,
    itest_speech, itest_audio_models, itest_external, itest_routers, itest_whisper_server,
    itest_pipelines, itest_qwen3tts, itest_prompt_cache_budget, itest_messages, itest_responses,
    itest_cli, itest_pull, itest_ollama, itest_ui, itest_peers, itest_audio_arch, itest_moe_hybrid,
    itest_rpc, itest_websocket;
extern const itest_table itest_vision_arch;

#endif
