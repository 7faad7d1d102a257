/* toolcall_detect.c — pick the tool-call format and reasoning markers from a chat template's
 * source text (see toolcall.h). The template shows the model's own format where it renders past
 * assistant tool calls or instructs the model, so a few distinctive strings decide it. Order
 * matters: Qwen3-Coder templates also contain <tool_call>, Hermes templates mention
 * "parameters", Mistral templates may mention [THINK] in a system prompt. */
#include <string.h>

#include "toolcall.h"

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

static const char *detect_tools(const char *t) {
  if (has(t, "<function=") && has(t, "<parameter=")) return "qwen3_coder";
  /* GLM 4.x also wraps calls in <tool_call> but with <arg_key>/<arg_value> pairs: not ours */
  if (has(t, "<tool_call>") && !has(t, "<arg_key>")) return "hermes";
  if (has(t, "[TOOL_CALLS]")) return "mistral";
  if (has(t, "<|python_tag|>")) return "llama3";
  /* Llama 3.2 has no python tag but asks for {"name": ..., "parameters": ...} as ipython */
  if (has(t, "ipython") && has(t, "\"parameters\"")) return "llama3";
  return "none";
}

int sy_chat_format_detect(const char *tmpl, sy_chat_format *out) {
  out->tools = "none";
  out->think_open = NULL;
  out->think_close = NULL;
  if (!tmpl) return 0;
  out->tools = detect_tools(tmpl);
  if (has(tmpl, "<think>") || has(tmpl, "</think>")) {
    out->think_open = "<think>";
    out->think_close = "</think>";
  } else if (has(tmpl, "[THINK]") && has(tmpl, "[/THINK]")) {
    out->think_open = "[THINK]";
    out->think_close = "[/THINK]";
  }
  return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool sy_chat_prompt_thinking_open(const sy_chat_format *f, const char *prompt) {
  if (!f || !f->think_open || !f->think_open[0] || !prompt) return false;
  size_t n = strlen(prompt), m = strlen(f->think_open);
  while (n > 0 && is_space(prompt[n - 1])) n--;
  return n >= m && memcmp(prompt + n - m, f->think_open, m) == 0;
}
