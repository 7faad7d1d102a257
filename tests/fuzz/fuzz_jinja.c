/* fuzz_jinja.c — libFuzzer target for the Jinja interpreter (src/chat/jinja_*.c): any bytes as a
 * chat template, parsed, then rendered against a fixed realistic conversation with small limits.
 * A template from a GGUF is hostile input: parse errors, render errors and limits are fine; a
 * crash, a sanitizer report, a leak or a hang is a bug. Built and run by `make fuzz`. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "jinja.h"

static json_t *context(void) {
  static const char *ctx =
      "{\"messages\":[{\"role\":\"system\",\"content\":\"be "
      "brief\"},{\"role\":\"user\",\"content\":\"hi\"},"
      "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
      "\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},{\"role\":\"tool\",\"tool_call_"
      "id\":\"c1\","
      "\"content\":\"42\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
      "\"parameters\":"
      "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}}}],\"add_generation_"
      "prompt\":true,"
      "\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"enable_thinking\":true}";
  return json_loads(ctx, 0, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static json_t *ctx;
  if (!ctx) ctx = context();
  char err[256];
  jinja_tmpl *t = jinja_parse((const char *)data, size, err, sizeof err);
  if (!t) return 0;
  jinja_limits lim = {
      .max_depth = 64, .max_output = 1 << 20, .max_steps = 200000, .max_memory = 64u << 20};
  char *out = NULL;
  size_t len = 0;
  if (jinja_render(t, ctx, &lim, &out, &len, err, sizeof err) == 0) free(out);
  jinja_free(t);
  return 0;
}
