/* api.h — the api wing's public face (main.c, tests): the HTTP handler behind every endpoint and
 * the chat endpoints' worker-error mapping. Nothing outside src/daemon/api/ includes an api/
 * header (main.c and tests aside): tests/layers.sh checks it. */
#ifndef SY_API_H
#define SY_API_H

#include <jansson.h>

#include "daemon.h"
#include "http/api_error.h"
#include "http/http.h"

/* The HTTP handler for every endpoint (api.c); ud is the sy_daemon. */
void api_handle(void *ud, http_req *r);

/* The body of an error reply on path (http_params.error_body): Anthropic's shape
 * (api_error_anthropic_json) under /v1/messages, Ollama's ({"error": "<message>"}) on Ollama's
 * paths (ollama_xlate.h: ollama_path), OpenAI's (api_error_json) elsewhere. New reference. */
json_t *api_error_body(const char *path, const api_error *e);

/* A worker's error frame (hdr, borrowed) as the /v1 chat, completions, embeddings and rerank
 * endpoints answer it: api_error_from_worker (api_error.h), with param "messages" for
 * context_length_exceeded. Pure, unit-tested. */
void api_worker_error(const json_t *hdr, api_error *e);
/* Fold one OpenAI tool-call delta array tc into calls (OpenAI's message shape: [{id, type,
 * function: {name, arguments}}]): a delta with an id starts a call, later ones append to its
 * arguments. For answers collected whole (chat) and Ollama's calls. */
void api_fold_tool_calls(json_t *calls, const json_t *tc);

#endif
