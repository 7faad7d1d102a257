/* jinja.h — a bounded Jinja interpreter for Hugging Face chat templates.
 *
 * Renders byte-identically to llama.cpp's own engine (common/jinja/), including its quirks
 * (lstrip_blocks/trim_blocks always on, None prints as nothing, `x|string` of a float via JSON,
 * Python-style repr of lists/dicts, `tojson` separators and key order...).
 *
 * Every template and context is hostile: recursion depth, output size, total work and memory are
 * bounded; a template that exceeds a bound gets an error, never a crash or a hang. */
#ifndef SY_JINJA_H
#define SY_JINJA_H

#include <jansson.h>
#include <stddef.h>

typedef struct jinja_tmpl jinja_tmpl;

/* 0 in any field = its default (see jinja_limits_default). */
typedef struct {
  int max_depth;     /* nested evaluation frames (macro calls, nested expressions, blocks) */
  size_t max_output; /* bytes of the rendered text and of any one string made on the way */
  long max_steps;    /* evaluation steps, loop iterations, list items and string bytes / 16 */
  size_t max_memory; /* bytes the render may allocate in total */
} jinja_limits;

#define JINJA_DEFAULT_MAX_DEPTH 400
#define JINJA_DEFAULT_MAX_OUTPUT (32u << 20)
#define JINJA_DEFAULT_MAX_STEPS 10000000L
#define JINJA_DEFAULT_MAX_MEMORY (256u << 20)

/* Parse a template. NULL and a message naming line:col in err on failure. */
jinja_tmpl *jinja_parse(const char *src, size_t len, char *err, size_t err_len);

/* The two source patches llama.cpp's common_chat_templates_init applies before it builds a
 * template (gpt-oss's analysis/final channel check and Mistral's empty-assistant guard become
 * `{%- if false %}`). Returns a malloc'd NUL-terminated copy (length in *out_len), NULL on OOM. */
char *jinja_llama_patch(const char *src, size_t len, size_t *out_len);

/* Render with a context object (messages, tools, add_generation_prompt, bos_token, ...): its keys
 * become global variables. As llama.cpp's common_chat_template_direct_apply does, a boolean
 * `preserve_reasoning` also sets preserve_thinking (= it) and clear_thinking,
 * truncate_history_thinking, drop_thinking (= not it), and a string `reasoning_effort` also sets
 * reasoning_strength. Returns 0 and a malloc'd NUL-terminated string in *out (length in
 * *out_len), or -1 and a one-line message in err. strftime_now() uses the current local time, or
 * the unix time in the environment variable SY_JINJA_NOW when it is set. */
int jinja_render(const jinja_tmpl *t, const json_t *context, const jinja_limits *lim, char **out,
                 size_t *out_len, char *err, size_t err_len);

void jinja_free(jinja_tmpl *t);

#endif
