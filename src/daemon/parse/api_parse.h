/* api_parse.h — validation of OpenAI request bodies into worker messages. Pure functions (no I/O,
 * no global state) so every rule is unit-tested. Unknown fields are ignored, as llama-server and
 * Ollama do; known fields of the wrong type or out of range are a 400 naming the field.
 *
 * Below api/ (the endpoints) because a pipeline's llm step is validated by the very same rules
 * (virtual/pipeline.c); nothing here knows HTTP. Exports api_parse_* and the few api_* names its
 * results need (api_gen/api_embed/api_rerank and their _clear, api_find_model, api_random_id,
 * api_audio_b64), kept from when it sat among the endpoints. */
#ifndef SY_API_PARSE_H
#define SY_API_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/matrix.h"
#include "engines/peer.h"
#include "http/api_error.h"

#define API_MAX_STOP 4
#define API_MAX_TOOLS 128 /* tools per request, tool calls per message */
#define API_MAX_EMBED_INPUTS 2048
#define API_MAX_RERANK_DOCUMENTS 1024
#define API_COMPLETIONS_DEFAULT_MAX_TOKENS 16 /* OpenAI's default for /v1/completions */
#define API_MAX_IMAGES 16                     /* image_url parts per request */
#define API_MAX_AUDIO 8                       /* input_audio parts per request */
/* input_audio is decoded to this rate: whisper-style encoders (Ultravox, Qwen2-Audio, Voxtral,
 * Qwen3-Omni) all take 16 kHz; the worker refuses audio when its projector wants another rate. */
#define API_AUDIO_RATE 16000
#define API_MAX_AUDIO_SECONDS 1800 /* input_audio per request, all parts together */
/* Speech out (/v1/audio/speech, a voice pipeline's tts step): every format's sample rate. */
#define API_SPEECH_RATE 24000
/* A transcription's response_format (/v1/audio/transcriptions, a transcribe-and-clean pipeline):
 * api_transcribe_format (api/transcribe.h) reads the name; pipelines answer in three of them. */
enum { AUD_JSON = 0, AUD_TEXT, AUD_SRT, AUD_VTT, AUD_VERBOSE };
/* Where an image goes in a message's text: llama.cpp's mtmd_default_marker() (the daemon links no
 * engine, so it is spelled out here; the worker hands the text to mtmd_tokenize). */
#define API_IMAGE_MARKER "<__media__>"

typedef struct api_gen {
  const matrix_model *model;
  json_t *msg;   /* the worker's "generate" message, without id (owned) */
  json_t *media; /* chat with images or audio, in marker order: image_url URLs (strings) and
                    input_audio parts ({data, format} objects); or NULL */
  bool chat;
  bool stream;
  bool include_usage;
  bool has_keep_alive; /* the request named a keep_alive (Ollama's extension) */
  int keep_alive_s;    /* -1 = forever, 0 = unload when idle */
} api_gen;

typedef struct api_embed {
  const matrix_model *model;
  json_t *msg; /* the worker's "embed" message, without id (owned) */
  size_t n_inputs;
  bool base64;
  bool has_keep_alive;
  int keep_alive_s;
  long long dimensions; /* OpenAI's "dimensions": keep the first n, renormalised; 0 = all */
} api_embed;

typedef struct api_rerank {
  const matrix_model *model;
  json_t *msg;       /* the worker's "rerank" message, without id (owned) */
  json_t *documents; /* the documents' texts, an array of strings (owned) */
  size_t n_documents;
  size_t top_n;          /* results to return, 1..n_documents */
  bool return_documents; /* echo the texts (Jina/Cohere "return_documents", TEI "return_text") */
  bool tei;              /* the request used TEI's "texts": answer TEI's bare array with "score" */
  bool has_keep_alive;
  int keep_alive_s;
} api_rerank;

/* Parse a JSON body: NULL + err (400 invalid_json) when it is not a JSON object. */
/* prefix + 24 random letters and digits (a response's id: chatcmpl-..., audio_...), into out. */
void api_random_id(char *out, size_t len, const char *prefix);

/* An audio file sent inside JSON (base64, or a data: URL as some clients send it), decoded as
 * every upload is (sy_audio_decode: mono float at rate) with at most max_bytes of file and
 * max_seconds of audio. 0 (out filled; sy_audio_free), or -1 with a one-line reason in why
 * (*unsupported set when the format needs a program this machine lacks: answer 415). */
struct sy_audio;
int api_audio_b64(const json_t *str, size_t max_bytes, int rate, double max_seconds,
                  struct sy_audio *out, bool *unsupported, char *why, size_t why_len);

json_t *api_parse_body(const char *body, size_t len, api_error *err);

/* What a request's "model" names in the matrix: resolved once per request (api_resolve, called by
 * api/api.c's dispatcher) and carried to the handler, so no endpoint looks the name up again.
 * Model, router and pipeline names are unique across the matrix (matrix.c refuses a clash, aliases
 * included), so the kind is unambiguous. */
typedef enum api_target_kind {
  API_TARGET_NONE = 0, /* not resolved: err says why */
  API_TARGET_MODEL,    /* a model run by one of our workers */
  API_TARGET_ROUTER,   /* a router (virtual/router_decide.c decides the route's model) */
  API_TARGET_PIPELINE, /* a pipeline (virtual/pipeline.c) */
  API_TARGET_EXTERNAL, /* a model of engine external (engines/proxy.c relays it) */
  API_TARGET_PEER      /* a model a peer offers (engines/proxy.c forwards it: proxy_peer) */
} api_target_kind;

typedef struct api_target {
  api_target_kind kind;
  const matrix_model *model;       /* MODEL, EXTERNAL */
  const matrix_router *router;     /* ROUTER */
  const matrix_pipeline *pipeline; /* PIPELINE */
  peer *peer;                      /* PEER: valid until the daemon stops (engines/peer.h) */
  char peer_model[PEER_OFFER_NAME_MAX + 1]; /* PEER: the name as asked (a copy) */
  api_error err; /* why the name is not a model: NONE: 400 "model" missing or not a string, 404
                    model_not_found; ROUTER, PIPELINE: that same 404 (for endpoints that take
                    only models) */
} api_target;

/* Resolve req's "model" (req: any JSON value, borrowed; a model's alias counts as its name) into
 * *t; the pointers point into mx and live as long as it. The matrix's names come first (models,
 * routers, pipelines); a name none of them takes is looked up among the peers' models (pp, in
 * config order; NULL: no peers): API_TARGET_PEER. Returns t->kind (API_TARGET_NONE: t->err
 * is 400 missing_required_parameter / invalid_type, or 404 model_not_found listing the available
 * models; for a router, pipeline or peer target t->err is that 404 too). Pure but for pp's
 * lookup (thread safe). */
api_target_kind api_resolve(const matrix *mx, peers *pp, const json_t *req, api_target *t);

/* The target's model when it is one (MODEL, EXTERNAL) and has cap; else NULL + err: t->err for
 * anything but a model, 400 wrong_capability naming its capabilities (what: the kind of request,
 * "chat completions") for a model without cap. */
const matrix_model *api_target_model(const api_target *t, unsigned cap, const char *what,
                                     api_error *err);

/* Find the request's model (api_resolve, then api_target_model): a router or a pipeline is not a
 * model here (404 like any unknown name). For names that are not the request's own (a pipeline's
 * step) and tests. */
const matrix_model *api_find_model(const matrix *mx, const json_t *req, unsigned cap,
                                   const char *what, api_error *err);

/* The parsers below take the request's "model" already resolved (t; its capability is checked
 * here), or t = NULL to resolve req's "model" in mx here (a pipeline's step, tests). */

/* /v1/chat/completions (chat = true) and /v1/completions (chat = false). 0 or -1 + err. */
int api_parse_generate(const matrix *mx, const api_target *t, const json_t *req, bool chat,
                       api_gen *out, api_error *err);
void api_gen_clear(api_gen *g);

/* /v1/embeddings. 0 or -1 + err. */
int api_parse_embed(const matrix *mx, const api_target *t, const json_t *req, api_embed *out,
                    api_error *err);
void api_embed_clear(api_embed *e);
/* The first keep values of an L2-normalised vector, L2-normalised again, in place: a Matryoshka
 * embedding cut to fewer dimensions (OpenAI's and Ollama's "dimensions"). A zero vector stays. */
void api_embed_truncate(float *v, size_t keep);

/* Qwen3-Embedding's query layout for the "instruction" extension of /v1/embeddings: each input
 * becomes "Instruct: <instruction>\nQuery:<input>" (its model card's get_detailed_instruct). */
#define API_EMBED_INSTRUCT_FMT "Instruct: %s\nQuery:%s"
#define API_MAX_EMBED_INSTRUCTION 4096 /* bytes */

/* /v1/rerank (Jina/Cohere shape, as llama-server; TEI's "texts" too). 0 or -1 + err. */
int api_parse_rerank(const matrix *mx, const api_target *t, const json_t *req, api_rerank *out,
                     api_error *err);
void api_rerank_clear(api_rerank *r);

#endif
