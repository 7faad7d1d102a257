/* json_schema.h — JSON Schema → GBNF grammars for llama.cpp's grammar sampler, for OpenAI's
 * response_format (json_object, json_schema) and for forcing tool calls (tool_choice "required"
 * or a named function). The supported subset is in docs/GRAMMAR.md.
 *
 * Every grammar's start rule is "root". Schemas are client input: depth, rule count, grammar size
 * and work are bounded, and anything we cannot honour is an error message, never a looser grammar
 * (the few documented relaxations aside). */
#ifndef SY_JSON_SCHEMA_H
#define SY_JSON_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* schema: an object or boolean true. Writes a complete grammar into *out (malloc'd).
 * Returns 0, or -1 with a message in err for an unsupported, invalid or hostile schema. */
int sy_schema_to_gbnf(const json_t *schema, char **out, char *err, size_t err_len);

/* The grammar for any JSON object (response_format json_object). Static; do not free. */
const char *sy_gbnf_json_object(void);

/* A grammar that forces one tool call (or, with parallel, one or more) in a model family's format.
 *   tools:     the OpenAI `tools` array ({"type": "function", "function": {name, parameters}})
 *   only_name: NULL for tool_choice "required" (any tool), else the one forced function
 *   format:    "hermes"      <tool_call>\n{"name": "N", "arguments": {...}}\n</tool_call>
 *              "llama3"      {"name": "N", "parameters": {...}}
 *              "mistral"     [TOOL_CALLS][{"name": "N", "arguments": {...}}]
 *              "qwen3_coder" <tool_call>\n<function=N>\n<parameter=P>\nVALUE\n</parameter>\n
 *                            </function>\n</tool_call>
 * Arguments are constrained by each function's `parameters` schema. Returns 0 or -1 with err. */
int sy_gbnf_tool_calls(const json_t *tools, const char *only_name, const char *format,
                       bool parallel, char **out, char *err, size_t err_len);

#endif
