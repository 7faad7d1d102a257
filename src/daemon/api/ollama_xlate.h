/* ollama_xlate.h — Ollama's API as pure translations onto what Switchyard already has: an Ollama
 * name onto the matrix's names, a /api/chat or /api/generate body into the /v1/chat/completions
 * (or, raw, /v1/completions) body the usual validator and chat path take, an /api/embed or
 * /api/embeddings body into /v1/embeddings', the worker's events into Ollama's NDJSON lines or
 * its one answer, and the matrix's entries into /api/tags, /api/show and /api/ps objects. No I/O,
 * no global state, nothing that blocks: api/ollama.c is the glue (HTTP, scheduler, worker), and
 * tests/unit/test_ollama.c checks every rule here on tables. docs/API.md, "Ollama's API", is the
 * reference for what is translated, refused and different.
 *
 * Requests are checked here for Ollama's own fields (their types, and the ranges the OpenAI
 * validator would otherwise name under their OpenAI names); everything the translated body holds
 * is checked again by parse/api_parse.c, as any /v1 request is. Errors are api_error values (400
 * with a message naming the Ollama field); on Ollama's paths (ollama_path) every error is
 * answered in Ollama's shape, {"error": "<message>"} (ollama_error_json, from api.c's
 * api_error_body).
 *
 * Thread safety: every function is pure or touches only what it is given; any thread may call
 * them at once. Prefix ollama_. */
#ifndef SY_OLLAMA_XLATE_H
#define SY_OLLAMA_XLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "config/matrix.h"
#include "http/api_error.h"

/* The Ollama release whose API this layer follows (GET /api/version): clients turn features on by
 * it (think, tools, structured outputs). */
#define OLLAMA_API_VERSION "0.12.6"
/* Longest Ollama model name looked up; longer ones are unknown. */
#define OLLAMA_MAX_NAME 512

/* ---- names ---- */

/* The matrix's own name (a model's name, a router's or a pipeline's, pointing into mx) for an
 * Ollama model name, or NULL when none matches. The first rule that gives exactly one entry wins:
 *   1. the name as given: a model's name or alias, a router's or a pipeline's name (exact, as
 *      /v1 requests are matched);
 *   2. without a ":latest" tag ("qwen3:latest" → "qwen3");
 *   3. 1 and 2 again, ignoring ASCII case (Ollama's names are lower case, files often are not);
 *      two entries that differ only in case match neither;
 *   4. the tag joined with '-' instead of ':' ("qwen3:8b" → "qwen3-8b"), exact, then ignoring
 *      case.
 * A matrix name with a ':' (an alias "qwen3:8b") is matched by rule 1 as it is. */
const char *ollama_match(const matrix *mx, const char *name);

/* ---- /api/chat and /api/generate ---- */

typedef struct ollama_gen {
  json_t *body;      /* the translated /v1/chat/completions body (chat), or /v1/completions'
                        (generate with raw: true); "model" is the name as sent (owned) */
  const char *model; /* the request's "model" (points into body) */
  bool chat;         /* body is a chat body */
  bool stream;       /* Ollama's default: true */
  size_t n_images;   /* images in the messages (image_url parts) */
  bool load_only;    /* nothing to generate (no messages; an empty prompt and no images): load
                        the model, or unload it with keep_alive 0 */
  bool has_keep_alive;
  int keep_alive_s;  /* -1 = forever (any negative duration, as Ollama) */
  long long num_ctx; /* options.num_ctx as asked (never applied: load settings are the
                        matrix's), 0 when not given */
} ollama_gen;

/* Translate an /api/chat (chat_api) or /api/generate body (req: any JSON value, borrowed) into
 * *out. 0, or -1 + err (400 naming the Ollama field; *out is empty then). */
int ollama_parse_gen(const json_t *req, bool chat_api, ollama_gen *out, api_error *err);
void ollama_gen_clear(ollama_gen *g);

/* Ollama's keep_alive (v: borrowed, may be NULL): a number of seconds, or a Go duration string
 * ("5m", "1h30m", "300ms", "0"; a plain number string too), any negative value meaning forever.
 * 0 = absent, 1 = *secs set (-1 = forever; durations round up to whole seconds), -1 = malformed
 * (err: 400 naming keep_alive). */
int ollama_keep_alive(const json_t *v, int *secs, api_error *err);

/* An image as Ollama sends it (base64 of the file; a data: URL is kept as it is) → the data: URL
 * the image decoder takes, its type read from the first bytes (PNG, JPEG, WebP; anything else is
 * declared image/png and refused by the decoder with its own reason). New string, or NULL when out
 * of memory. */
json_t *ollama_image_url(const char *b64, size_t len);

/* ---- /api/embed and /api/embeddings ---- */

typedef struct ollama_embed {
  json_t *body;         /* the translated /v1/embeddings body (owned) */
  const char *model;    /* the request's "model" (points into body) */
  bool legacy;          /* /api/embeddings: one "prompt", answered {"embedding": [...]} */
  bool load_only;       /* no input: load the model and answer no vectors */
  long long dimensions; /* keep this many leading dimensions (renormalised); 0 = all */
  bool has_keep_alive;
  int keep_alive_s;
  long long num_ctx;
} ollama_embed;

/* Translate an /api/embed (legacy false) or /api/embeddings body into *out. 0, or -1 + err. */
int ollama_parse_embed(const json_t *req, bool legacy, ollama_embed *out, api_error *err);
void ollama_embed_clear(ollama_embed *e);

/* ---- answers ---- */

/* Wall-clock time as Ollama writes it (RFC 3339, UTC, nanoseconds):
 * "2025-01-02T03:04:05.000000006Z" into out (at least 40 bytes). */
void ollama_time(const struct timespec *ts, char *out, size_t len);

/* {"error": message}: Ollama's error body (new reference). */
json_t *ollama_error_json(const api_error *e);
/* Whether path (a query string may follow) is one of Ollama's, whose errors are Ollama's shape:
 * everything under /api/ but our own /api/load, /api/unload, /api/ps and /api/events. */
bool ollama_path(const char *path);

/* A translator of one answer's worker events (delta, done, error) into Ollama's shape: streamed,
 * one NDJSON line per event; whole, collected into one object. */
typedef struct ollama_tr ollama_tr;

typedef struct ollama_tr_params {
  const char *model; /* the answer's "model" (copied) */
  bool chat;         /* /api/chat ("message"), else /api/generate ("response") */
  bool stream;
  double t0;     /* monotonic seconds when the request's body was complete */
  double load_s; /* seconds spent getting the worker (loading, waiting for room) */
  /* when set, every created_at is this time (tests); else the wall clock */
  const struct timespec *fixed_time;
} ollama_tr_params;

/* NULL when out of memory. */
ollama_tr *ollama_tr_new(const ollama_tr_params *p);
void ollama_tr_free(ollama_tr *t);
/* One worker event (op "delta", "done" or "error"; hdr its header, borrowed) at monotonic time
 * now: streamed, the lines for the client are appended to out. True when it ended the answer
 * (done or error). Other ops are ignored. */
bool ollama_tr_event(ollama_tr *t, const char *op, const json_t *hdr, double now, sy_buf *out);
/* The whole answer after the event that ended it (new reference), or NULL + err (the worker's
 * error, mapped as /v1 maps it). */
json_t *ollama_tr_reply(ollama_tr *t, api_error *err);

/* The answer to a request that only loads or unloads (done_reason "load" or "unload"). */
json_t *ollama_load_reply(const char *model, bool chat, bool unload, const struct timespec *now);

/* ---- /api/tags, /api/show, /api/ps ---- */

/* Whether a model is listed by /api/tags and served by Ollama's routes: a chat, completion or
 * embedding model run by our llama worker (speech, transcription and external engines are not). */
bool ollama_lists(const matrix_model *m);

/* llama.cpp's name of a GGUF file type ("Q4_K_M", "F16"), or "" when unknown. */
const char *ollama_quant_name(int file_type);
/* An estimate of the parameter count from the file's size and type ("7.6B", "494M"), or "". */
void ollama_param_size(long long file_bytes, int file_type, char *out, size_t len);
/* A 64-hex-digit identity of the model's file (name, path, size, mtime): what Ollama's digest is
 * used for (telling versions apart), not the file's sha256. */
void ollama_digest(const matrix_model *m, long long mtime, char out[65]);
/* Ollama's "details" of a model (new reference). */
json_t *ollama_details(const matrix_model *m);
/* One /api/tags entry: name, model, modified_at (mtime: the file's, unix seconds), size, digest,
 * details (new reference). */
json_t *ollama_tags_entry(const matrix_model *m, long long mtime);
/* A router as an /api/tags entry (its name; details.family "router"). */
json_t *ollama_router_entry(const matrix_router *rt, long long started);
/* /api/show for m (new reference); its "template" is the config's chat_template when it has one,
 * else gguf_template (the model file's, or NULL: ""). */
json_t *ollama_show(const matrix_model *m, long long mtime, const char *gguf_template);
/* Add Ollama's fields to one /api/ps model object of ours (ps: its name, size, devices,
 * expires_in_s, context as the scheduler wrote them; m its matrix entry, or NULL): model, digest,
 * details, expires_at, size_vram, context_length. Nothing of ours is changed. */
void ollama_ps_fields(json_t *ps, const matrix_model *m, long long mtime, time_t now);

#endif
