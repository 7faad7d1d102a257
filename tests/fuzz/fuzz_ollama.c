/* fuzz_ollama.c — libFuzzer target for Ollama's request parsing (src/daemon/api/ollama_xlate.c,
 * then parse/api_parse.c on what it translates): any bytes as the body of /api/chat,
 * /api/generate, /api/embed or /api/embeddings (the first byte picks which), parsed as the daemon
 * parses it (api_parse_body), its model looked up by Ollama's naming rule in a fixed matrix, the
 * translated body validated as the /v1 endpoints validate theirs, and for an accepted chat a few
 * worker events run through the answer translator, streamed and whole. A body is hostile input:
 * refusals are fine; a crash, a sanitizer report, a leak or a hang is a bug. Built and run by
 * `make fuzz`; seeds in tests/fuzz/corpus/fuzz_ollama/. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/ollama_xlate.h"
#include "parse/api_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *aliases[] = {"m:7b"};
static matrix_model models[] = {
    {.name = "m",
     .aliases = aliases,
     .n_aliases = 1,
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION | MATRIX_CAP_VISION,
     .context = 64,
     .parallel = 1},
    {.name = "E", .caps = MATRIX_CAP_EMBED, .context = 64, .parallel = 1},
};
static matrix mx = {.models = models, .n_models = 2, .max_body_bytes = 1 << 20};

/* A few worker events through the translator (the answer of an accepted request). */
static void answer(bool chat, bool stream) {
  static const char *const evs[][2] = {
      {"delta", "{\"text\":\"a\",\"logprobs\":[{\"token\":\"a\",\"logprob\":-1}]}"},
      {"delta", "{\"delta\":{\"reasoning_content\":\"r\"}}"},
      {"delta",
       "{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"type\":\"function\","
       "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}"},
      {"delta", "{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}"},
      {"done", "{\"finish_reason\":\"stop\",\"prompt_tokens\":3,\"completion_tokens\":2}"}};
  ollama_tr_params p = {.model = "m", .chat = chat, .stream = stream, .t0 = 1, .load_s = 0};
  ollama_tr *t = ollama_tr_new(&p);
  if (!t) return;
  sy_buf out = {0};
  for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) {
    json_t *h = json_loads(evs[i][1], 0, NULL);
    ollama_tr_event(t, evs[i][0], h, 2, &out);
    json_decref(h);
  }
  api_error e;
  json_decref(ollama_tr_reply(t, &e));
  sy_buf_free(&out);
  ollama_tr_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int kind = data[0] % 4; /* chat, generate, embed, embeddings */
  api_error err = {0};
  json_t *req = api_parse_body((const char *)data + 1, size - 1, &err);
  if (!req) return 0;
  api_target t;
  if (kind < 2) {
    ollama_gen g;
    if (ollama_parse_gen(req, kind == 0, &g, &err) == 0) {
      const char *own = ollama_match(&mx, g.model);
      json_t *q = json_pack("{s:s}", "model", own ? own : g.model);
      api_resolve(&mx, NULL, q, &t);
      json_decref(q);
      api_gen ag;
      if (!g.load_only && api_parse_generate(&mx, &t, g.body, g.chat, &ag, &err) == 0) {
        api_gen_clear(&ag);
        answer(kind == 0, g.stream);
      }
      ollama_gen_clear(&g);
    }
  } else {
    ollama_embed oe;
    if (ollama_parse_embed(req, kind == 3, &oe, &err) == 0) {
      const char *own = ollama_match(&mx, oe.model);
      json_t *q = json_pack("{s:s}", "model", own ? own : oe.model);
      api_resolve(&mx, NULL, q, &t);
      json_decref(q);
      api_embed ae;
      if (!oe.load_only && api_parse_embed(&mx, &t, oe.body, &ae, &err) == 0) api_embed_clear(&ae);
      ollama_embed_clear(&oe);
    }
  }
  json_decref(req);
  return 0;
}
