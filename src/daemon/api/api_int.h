/* api_int.h — private to api/: what the endpoint families share (a request's metrics record, the
 * error reply that counts it, the call the route table hands them: body parsed once, model
 * resolved once) and each family's handler, called from api.c's route table. Nothing outside
 * src/daemon/api/ includes this header; api.h is the wing's public face. */
#ifndef SY_API_INT_H
#define SY_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "daemon.h"
#include "engines/relay.h"
#include "http/multipart.h"
#include "obs/metrics.h"
#include "parse/api_parse.h"

/* What GET /metrics needs to know of one request. */
typedef struct req_obs {
  metrics *mt;
  int model; /* index in the matrix, METRICS_NO_MODEL until the request names a known model */
  metrics_endpoint ep;
  double t0; /* when the body was complete (sy_mono_s) */
} req_obs;

/* A JSON integer field of o, 0 when absent or not an integer. */
long long api_jint(const json_t *o, const char *k);
/* Seconds since the body was complete. */
double api_obs_elapsed(const req_obs *o);
/* The request is answered with status (499: the client went away first). */
void api_obs_end(const req_obs *o, int status);
/* Reply with an error and count it. */
void api_fail(http_req *r, const req_obs *o, const api_error *e);
/* The model a refused request named, when it is one of the matrix's (never a client's string). */
int api_obs_model_of(const sy_daemon *d, const api_target *t);

/* One request as api.c's route table hands it to a handler: the method and path checked, the body
 * parsed once (JSON, or a multipart form when Content-Type says so), its "model" resolved once.
 * Lives on the HTTP thread's stack for the handler's duration; everything in it is borrowed. */
typedef struct api_call {
  const matrix *mx; /* the matrix the target was resolved in (read once per request) */
  peers *peers;     /* the daemon's peers (d->peers; NULL: none), where a name may also be */
  const char *rest; /* a prefix route (/v1/models/, /upstream/): the path after the prefix */
  json_t *req;      /* a JSON route's body, an object (never NULL in its handler) */
  mp_part *parts;   /* a form route's parts (never NULL in its handler), n_parts of them */
  size_t n_parts;
  api_target target; /* the body's "model" (a form's "model" field); NONE on bodiless routes */
  req_obs obs;       /* the request's metrics record (its route's endpoint) */
} api_call;

/* An answer in another API's shape over the chat path (api_chat_serve): the same checks, routing,
 * scheduling and worker as /v1/chat/completions, only the worker's events written differently
 * (messages.c: Anthropic's Messages API; responses.c: OpenAI's Responses API; ollama.c: Ollama's
 * chat and generate). */
typedef struct api_dialect {
  /* A translator for one answer of model (the served model's name), streamed or whole; NULL when
   * out of memory. ud: the dialect's ud (below). */
  void *(*open)(const char *model, bool stream, void *ud);
  /* One worker event: streamed, the client's bytes appended to out; whole, collected. RELAY_END
   * after the answer's last event (done or error). */
  relay_rc (*event)(void *tr, const ipc_msg *m, sy_buf *out);
  /* The whole answer's body after RELAY_END (new reference), or NULL with *err. */
  json_t *(*reply)(void *tr, api_error *err);
  void (*close)(void *tr);
  /* the request only counts its prompt (the generate message gets "count_only": the worker
   * renders and tokenises it and answers done at once); no tokens are metered */
  bool count_only;
  /* handed to open: the request's own state, for a dialect made per request (responses.c keeps
   * its translation and what the store needs there); NULL for a static one */
  void *ud;
  /* a streamed answer's Content-Type; NULL: text/event-stream (ollama.c: application/x-ndjson) */
  const char *content_type;
  /* req is a /v1/completions body (a prompt as it is, no template), not a chat (ollama.c: a
   * generate with raw: true) */
  bool completion;
} api_dialect;

/* A count_only request's answer (a dialect that counts tokens: Anthropic's count_tokens, the
 * Responses API's input_tokens): the worker's done frame, or its error. Zeroed to start. */
typedef struct api_count {
  json_t *done; /* the done frame's header (owned) */
  api_error err;
} api_count;
/* One worker event into c: RELAY_END at done (kept) or error (kept in err), else RELAY_MORE. */
relay_rc api_count_event(api_count *c, const ipc_msg *m);
/* The prompt tokens counted, or -1 with *err (the worker's error, or none: the count ended
 * without a result). */
long long api_count_result(const api_count *c, api_error *err);
/* Free what c holds. */
void api_count_clear(api_count *c);

/* Serve req (a chat completions body, or completions' with dl->completion, borrowed: another
 * API's request translated; c->target is its model, resolved by api.c) as a chat, answering in
 * dl's shape: a router is decided as for a
 * chat, a pipeline or an external engine's model is refused (400 wrong_capability). Counts c->obs
 * as the chat endpoint does. */
void api_chat_serve(sy_daemon *d, http_req *r, api_call *c, const json_t *req,
                    const api_dialect *dl);

/* The families (c: the call; handlers with a metrics endpoint count c->obs when the reply is
 * decided, or the route table does after them: see api.c). */
/* chat.c: /v1/chat/completions (chat) and /v1/completions; a router's name is served here, a
 * voice pipeline's turn handed to virtual/pipeline.c */
void api_chat_handle(sy_daemon *d, http_req *r, api_call *c, bool chat);
/* responses.c: POST /v1/responses and /v1/responses/input_tokens (OpenAI's Responses API), GET
 * and DELETE /v1/responses/{id} (c->rest: the id) */
void api_responses_create(sy_daemon *d, http_req *r, api_call *c);
void api_responses_input_tokens(sy_daemon *d, http_req *r, api_call *c);
void api_responses_item(sy_daemon *d, http_req *r, api_call *c);
/* embeddings.c */
void api_embeddings_handle(sy_daemon *d, http_req *r, api_call *c);
void api_rerank_handle(sy_daemon *d, http_req *r, api_call *c);
/* transcribe.c: /v1/audio/transcriptions and /v1/audio/translations (a form route) */
void api_transcribe_handle(sy_daemon *d, http_req *r, api_call *c, bool translate);
/* speech.c: POST /v1/audio/speech, GET /v1/audio/voices */
void api_speech_handle(sy_daemon *d, http_req *r, api_call *c);
void api_voices_handle(sy_daemon *d, http_req *r);
/* GET /v1/realtime (realtime.c): OpenAI's Realtime API over WebSocket. */
void api_realtime_handle(sy_daemon *d, http_req *r, api_call *c);
/* messages.c: POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages API) */
void api_messages_handle(sy_daemon *d, http_req *r, api_call *c);
void api_count_tokens_handle(sy_daemon *d, http_req *r, api_call *c);
/* ollama.c: Ollama's API (POST /api/chat, /api/generate, /api/embed, /api/embeddings, /api/show;
 * GET /api/tags, /api/version; the rest of /api/ answered 501 or 404 in Ollama's shape), and
 * Ollama's fields added to GET /api/ps's models (ps: sched_ps's object) */
void api_ollama_chat(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_generate(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_embed(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_embeddings(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_show(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_tags(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_version(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_other(sy_daemon *d, http_req *r, api_call *c);
void api_ollama_ps_fields(sy_daemon *d, json_t *ps);
/* admin.c: GET /v1/models (id NULL: the list), /metrics, /api/events, /api/ps; POST /api/load
 * (load) and /api/unload */
void api_admin_models(sy_daemon *d, http_req *r, const char *id);
void api_admin_metrics(sy_daemon *d, http_req *r);
void api_admin_load(sy_daemon *d, http_req *r, api_call *c, bool load);
/* The 403 of an admin action (pull, delete, load, unload) asked without an admin key (e). */
void api_admin_refuse(api_error *e);
/* pull.c: POST /api/pull (a model fetched into the models folder, then reloaded in) */
void api_pull_handle(sy_daemon *d, http_req *r, api_call *c);
/* pull.c: DELETE /api/delete (a discovered model's files removed, then reloaded out) */
void api_delete_handle(sy_daemon *d, http_req *r, api_call *c);
void api_admin_events(sy_daemon *d, http_req *r);
void api_admin_ps(sy_daemon *d, http_req *r);

#endif
