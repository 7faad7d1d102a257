/* gbnf.h — a small builder for GBNF grammars (llama.cpp's grammar format).
 *
 * Rules are named from hints ("root-address-city"); a hint that is taken gets a number appended.
 * Adding a rule whose body equals an existing rule's returns that rule instead, so repeated
 * structures cost one rule. Every rule and the whole text are bounded: past a bound the builder
 * refuses (returns NULL / -1) and stays refused, so callers check once at the end. */
#ifndef SY_GBNF_H
#define SY_GBNF_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct sy_gbnf_map {
  size_t *slot; /* rule index + 1, 0 = empty */
  size_t cap;   /* power of two */
} sy_gbnf_map;

typedef struct sy_gbnf {
  struct sy_gbnf_rule {
    char *name;
    char *body; /* NULL while reserved */
  } * rules;
  size_t n, cap;
  size_t bytes; /* rendered size so far */
  size_t max_rules, max_bytes;
  int full; /* a bound was hit or memory ran out */
  sy_gbnf_map by_name, by_body;
} sy_gbnf;

void sy_gbnf_init(sy_gbnf *g, size_t max_rules, size_t max_bytes);
void sy_gbnf_free(sy_gbnf *g);
/* Add "name ::= body"; returns the rule's name (owned by g), NULL when full. */
const char *sy_gbnf_add(sy_gbnf *g, const char *hint, const char *body);
/* The name of the rule with this body, or NULL. */
const char *sy_gbnf_find(const sy_gbnf *g, const char *body);
/* Take a name now, define it later (recursive rules). */
const char *sy_gbnf_reserve(sy_gbnf *g, const char *hint);
int sy_gbnf_define(sy_gbnf *g, const char *name, const char *body);
/* The grammar text, one rule a line, in the order rules were made; reserved rules never
 * defined make it fail. Returns malloc'd text or NULL. */
char *sy_gbnf_render(const sy_gbnf *g);

/* Append s (n bytes, UTF-8) as a quoted GBNF literal. */
int sy_gbnf_lit(sy_buf *b, const char *s, size_t n);
/* Append one code point as it appears inside a [...] class. */
int sy_gbnf_class_cp(sy_buf *b, uint32_t cp);

#endif
