/* fuzz_embed.c — libFuzzer target for /v1/embeddings' request parsing (parse/api_parse.c
 * api_parse_embed: input, encoding_format, dimensions, the instruction extension, keep_alive):
 * any bytes as the body, parsed as the daemon parses it (api_parse_body), its model resolved in a
 * fixed matrix, and for an accepted body with dimensions the cut of a 64-wide unit vector
 * (api_embed_truncate) as the reply path does it. A body is hostile input: refusals are fine; a
 * crash, a sanitizer report, a leak or a hang is a bug. Built and run by `make fuzz`; seeds in
 * tests/fuzz/corpus/fuzz_embed/. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "parse/api_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FE_DIM 64 /* the fixed model's width */

static matrix_model models[] = {
    {.name = "E", .caps = MATRIX_CAP_EMBED, .context = 64, .parallel = 1},
    {.name = "c", .caps = MATRIX_CAP_CHAT, .context = 64, .parallel = 1},
};
static matrix mx = {.models = models, .n_models = 2, .max_body_bytes = 1 << 20};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  api_error err = {0};
  json_t *req = api_parse_body((const char *)data, size, &err);
  if (!req) return 0;
  api_target t;
  api_resolve(&mx, req, &t);
  api_embed e;
  if (api_parse_embed(&mx, &t, req, &e, &err) == 0) {
    if (e.dimensions > 0 && e.dimensions <= FE_DIM) {
      float v[FE_DIM];
      for (int i = 0; i < FE_DIM; i++) v[i] = 0.125f; /* norm 1 */
      api_embed_truncate(v, (size_t)e.dimensions);
    }
    api_embed_clear(&e);
  }
  json_decref(req);
  return 0;
}
