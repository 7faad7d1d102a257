/* check.c — runs the grammars from src/chat/json_schema.c through llama.cpp's own grammar
 * sampler: each case's document is tokenized with a real vocabulary (vocab-only GGUF), fed one
 * token at a time (apply on a one-candidate array: a -inf logit means the grammar refuses the
 * token; else accept), and at the end the EOS token must be allowed. A grammar llama.cpp cannot
 * parse is reported (llama_sampler_init_grammar returns NULL), not a crash.
 *
 *   build/bin/grammar-check $ENGINES/share/vocab/ggml-vocab-qwen2.gguf [-v]
 *   build/bin/grammar-check VOCAB --schemas FILE   (one schema a line: each must either be
 *                                                   refused with a message or give a grammar
 *                                                   llama.cpp accepts; for fuzzing)
 * Prints one line per failure and a summary; exits 1 on any failure. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_schema.h"
#include "llama.h"

static int verbose;
static int quiet; /* while feeding llama.cpp a grammar meant to be refused */

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
  (void)user;
  if (verbose || ((level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_CONT) && !quiet)) {
    fputs(text, stderr);
  }
}

enum verdict { REJECTED = 0, ACCEPTED = 1, BAD_GRAMMAR = -1 };

/* Feed doc to a fresh grammar sampler; where (when rejected) is the byte offset of the token
 * that was refused, or strlen(doc) when the grammar could not end there. */
static enum verdict run_doc(const struct llama_vocab *vocab, const char *grammar, const char *doc,
                            size_t *where) {
  struct llama_sampler *smpl = llama_sampler_init_grammar(vocab, grammar, "root");
  if (!smpl) return BAD_GRAMMAR;
  int n = (int)strlen(doc);
  int cap = n + 16;
  llama_token *toks = malloc((size_t)cap * sizeof *toks);
  int nt = llama_tokenize(vocab, doc, n, toks, cap, false, true);
  enum verdict v = ACCEPTED;
  size_t off = 0;
  for (int i = 0; i < nt && v == ACCEPTED; i++) {
    llama_token_data cand = {toks[i], 0.0f, 0.0f};
    llama_token_data_array arr = {&cand, 1, -1, false};
    llama_sampler_apply(smpl, &arr);
    if (isinf(cand.logit) && cand.logit < 0) {
      v = REJECTED;
      break;
    }
    llama_sampler_accept(smpl, toks[i]);
    char piece[256];
    int pn = llama_token_to_piece(vocab, toks[i], piece, sizeof piece, 0, true);
    off += pn > 0 ? (size_t)pn : 0;
  }
  if (v == ACCEPTED) {
    llama_token_data cand = {llama_vocab_eos(vocab), 0.0f, 0.0f};
    llama_token_data_array arr = {&cand, 1, -1, false};
    llama_sampler_apply(smpl, &arr);
    if (isinf(cand.logit) && cand.logit < 0) v = REJECTED;
  }
  *where = off;
  free(toks);
  llama_sampler_free(smpl);
  return v;
}

typedef struct scase {
  const char *schema; /* JSON text; NULL: the json_object grammar */
  const char *doc;
  bool accept;
} scase;

static const scase SCHEMA_CASES[] = {
    /* json_object mode */
    {NULL, "{\"a\": [1, 2.5, -3e2, true, null, \"x\"]}", true},
    {NULL, "{}", true},
    {NULL, "{\n  \"a\": {\"b\": {}}\n}", true},
    {NULL, "[1, 2]", false},
    {NULL, "\"str\"", false},
    {NULL, "{\"a\": 01}", false},
    {NULL, "{\"a\": 1,}", false},
    {NULL, "{\"a\": 1", false},
/* required and optional properties */
#define PERSON                                                                                     \
  "{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\"}, \"age\": {\"type\": " \
  "\"integer\"}, \"email\": {\"type\": \"string\"}}, \"required\": [\"name\"]}"
    {PERSON, "{\"name\": \"Ann\"}", true},
    {PERSON, "{\"name\": \"Ann\", \"age\": 31}", true},
    {PERSON, "{\"name\": \"Ann\", \"email\": \"a@b.c\"}", true},
    {PERSON, "{\"name\": \"Ann\", \"age\": 31, \"email\": \"a@b.c\"}", true},
    {PERSON, "{\n  \"name\": \"Ann\",\n  \"age\": 31\n}", true},
    {PERSON, "{\"age\": 31}", false},
    {PERSON, "{\"name\": \"Ann\", \"email\": \"a@b.c\", \"age\": 31}", false}, /* order */
    {PERSON, "{\"name\": \"Ann\", \"zip\": 1}", false},
    {PERSON, "{\"name\": 5}", false},
    {PERSON, "{\"name\": \"Ann\", \"age\": 3.5}", false},
    {PERSON, "{\"name\": \"Ann\"} trailing", false},
#define OPTONLY                                                                                \
  "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": " \
  "\"boolean\"}}}"
    {OPTONLY, "{}", true},
    {OPTONLY, "{\"b\": true}", true},
    {OPTONLY, "{\"a\": 1, \"b\": false}", true},
    {OPTONLY, "{, \"b\": true}", false},
    {OPTONLY, "{\"a\": 1 \"b\": true}", false},
/* additionalProperties */
#define ADDL                                                                                 \
  "{\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}}, \"required\": " \
  "[\"id\"], \"additionalProperties\": {\"type\": \"string\"}}"
    {ADDL, "{\"id\": 1, \"x\": \"y\", \"idx\": \"z\"}", true},
    {ADDL, "{\"id\": 1, \"x\": 2}", false},
    {ADDL, "{\"id\": 1, \"id\": \"dup\"}", false},
    {"{\"type\": \"object\", \"additionalProperties\": false}", "{}", true},
    {"{\"type\": \"object\", \"additionalProperties\": false}", "{\"a\": 1}", false},
/* enums and const */
#define COLOR "{\"enum\": [\"red\", \"green\", 3, null]}"
    {COLOR, "\"red\"", true},
    {COLOR, "3", true},
    {COLOR, "null", true},
    {COLOR, "\"blue\"", false},
    {COLOR, "\"re\"", false},
    {"{\"const\": {\"k\": [1, \"two\"]}}", "{\"k\":[1,\"two\"]}", true},
    {"{\"const\": {\"k\": [1, \"two\"]}}", "{\"k\":[1,\"three\"]}", false},
/* nested arrays, bounds */
#define MATRIX                                                                                 \
  "{\"type\": \"array\", \"items\": {\"type\": \"array\", \"items\": {\"type\": \"number\"}, " \
  "\"minItems\": 2, \"maxItems\": 3}, \"minItems\": 1}"
    {MATRIX, "[[1, 2], [3.5, -4, 5e3]]", true},
    {MATRIX, "[[1,2]]", true},
    {MATRIX, "[]", false},
    {MATRIX, "[[1]]", false},
    {MATRIX, "[[1, 2, 3, 4]]", false},
    {MATRIX, "[[1, \"2\"]]", false},
    {"{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
     "[\"a\", 1]", true},
    {"{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
     "[1, \"a\"]", false},
    /* strings */
    {"{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 4}", "\"abc\"", true},
    {"{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 4}", "\"a\"", false},
    {"{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 4}", "\"abcde\"", false},
    {"{\"type\": \"string\"}", "\"tab\\tquote\\\" \\u00e9 é\"", true},
    {"{\"type\": \"string\"}", "\"raw\nnewline\"", false},
    {"{\"type\": \"string\", \"format\": \"date\"}", "\"2024-02-29\"", true},
    {"{\"type\": \"string\", \"format\": \"date\"}", "\"2024-13-01\"", false},
    {"{\"type\": \"string\", \"format\": \"time\"}", "\"23:59:59Z\"", true},
    {"{\"type\": \"string\", \"format\": \"time\"}", "\"24:00:00Z\"", false},
    {"{\"type\": \"string\", \"format\": \"date-time\"}", "\"2024-01-02T03:04:05.123+02:00\"",
     true},
    {"{\"type\": \"string\", \"format\": \"date-time\"}", "\"2024-01-02 03:04:05\"", false},
    {"{\"type\": \"string\", \"format\": \"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"",
     true},
    {"{\"type\": \"string\", \"format\": \"uuid\"}", "\"123e4567-e89b-12d3-a456-42661417400\"",
     false},
    {"{\"type\": \"string\", \"format\": \"email\"}", "\"anything\"", true},
    /* patterns */
    {"{\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-\\\\d{3,4}$\"}", "\"AB-1234\"", true},
    {"{\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-\\\\d{3,4}$\"}", "\"AB-12\"", false},
    {"{\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-\\\\d{3,4}$\"}", "\"ab-123\"", false},
    {"{\"type\": \"string\", \"pattern\": \"^(cat|dog)s?$\"}", "\"dogs\"", true},
    {"{\"type\": \"string\", \"pattern\": \"^(cat|dog)s?$\"}", "\"cow\"", false},
    {"{\"type\": \"string\", \"pattern\": \"ab+c\"}", "\"xxabbbcyy\"", true},
    {"{\"type\": \"string\", \"pattern\": \"ab+c\"}", "\"xxacyy\"", false},
    {"{\"type\": \"string\", \"pattern\": \"^[^a-c]+$\"}", "\"xyz\\\"q\"", true},
    {"{\"type\": \"string\", \"pattern\": \"^[^a-c]+$\"}", "\"xbz\"", false},
    {"{\"type\": \"string\", \"pattern\": \"^a.c$\"}", "\"a-c\"", true},
    /* numbers and integers */
    {"{\"type\": \"integer\"}", "-42", true},
    {"{\"type\": \"integer\"}", "4.2", false},
    {"{\"type\": \"integer\"}", "042", false},
    {"{\"type\": \"number\"}", "-0.5e-3", true},
    {"{\"type\": \"number\"}", ".5", false},
    {"{\"type\": \"number\", \"minimum\": 0}", "-1", false},
    {"{\"type\": \"number\", \"minimum\": 0}", "1.5", true},
#define RANGE "{\"type\": \"integer\", \"minimum\": -15, \"maximum\": 1234}"
    {RANGE, "-15", true},
    {RANGE, "-16", false},
    {RANGE, "0", true},
    {RANGE, "999", true},
    {RANGE, "1234", true},
    {RANGE, "1235", false},
    {RANGE, "2000", false},
    {RANGE, "-0", false},
    {"{\"type\": \"integer\", \"minimum\": 10}", "10", true},
    {"{\"type\": \"integer\", \"minimum\": 10}", "9", false},
    {"{\"type\": \"integer\", \"minimum\": 10}", "123456789", true},
    {"{\"type\": \"integer\", \"exclusiveMaximum\": 0}", "-7", true},
    {"{\"type\": \"integer\", \"exclusiveMaximum\": 0}", "0", false},
/* anyOf, type arrays, nullable */
#define ANY "{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"string\", \"maxLength\": 3}]}"
    {ANY, "12", true},
    {ANY, "\"abc\"", true},
    {ANY, "\"abcd\"", false},
    {ANY, "true", false},
    {"{\"type\": [\"string\", \"null\"]}", "null", true},
    {"{\"type\": [\"string\", \"null\"]}", "1", false},
    {"{\"type\": \"integer\", \"nullable\": true}", "null", true},
/* allOf */
#define ALLOF                                                                                \
  "{\"allOf\": [{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}, "   \
  "\"required\": [\"a\"]}, {\"properties\": {\"b\": {\"type\": \"string\"}}, \"required\": " \
  "[\"b\"]}]}"
    {ALLOF, "{\"a\": 1, \"b\": \"x\"}", true},
    {ALLOF, "{\"a\": 1}", false},
/* $ref, recursion */
#define TREE                                                                                   \
  "{\"$ref\": \"#/$defs/node\", \"$defs\": {\"node\": {\"type\": \"object\", \"properties\": " \
  "{\"v\": {\"type\": \"integer\"}, \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": "    \
  "\"#/$defs/node\"}}}, \"required\": [\"v\"]}}}"
    {TREE, "{\"v\": 1, \"kids\": [{\"v\": 2}, {\"v\": 3, \"kids\": [{\"v\": 4}]}]}", true},
    {TREE, "{\"v\": 1, \"kids\": [{\"w\": 2}]}", false},
#define DEFS                                                                           \
  "{\"type\": \"object\", \"properties\": {\"p\": {\"$ref\": \"#/definitions/pt\"}}, " \
  "\"required\": [\"p\"], \"definitions\": {\"pt\": {\"type\": \"array\", \"items\": " \
  "{\"type\": \"integer\"}, \"minItems\": 2, \"maxItems\": 2}}}"
    {DEFS, "{\"p\": [1, 2]}", true},
    {DEFS, "{\"p\": [1]}", false},
    /* boolean schema */
    {"true", "[{\"any\": \"thing\"}]", true},
    {"{}", "\"x\"", true},
};

typedef struct tcase {
  const char *format;
  const char *only; /* NULL: any tool */
  bool parallel;
  const char *doc;
  bool accept;
} tcase;

static const char TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": "
    "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": "
    "{\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", "
    "\"minimum\": 1, \"maximum\": 7}}, \"required\": [\"city\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"now\"}}]";

static const tcase TOOL_CASES[] = {
    {"hermes", NULL, false,
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
     "\"c\"}}\n</tool_call>",
     true},
    {"hermes", NULL, false, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>",
     true},
    {"hermes", "now", false,
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\"}}\n</tool_call>",
     false},
    {"hermes", NULL, false,
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\"}}\n</tool_call>",
     false},
    {"hermes", NULL, false,
     "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\", \"days\": 9}}\n"
     "</tool_call>",
     false},
    {"hermes", NULL, false, "Sure! <tool_call>", false},
    {"hermes", NULL, false,
     "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": "
     "\"now\", \"arguments\": {}}\n</tool_call>",
     false},
    {"hermes", NULL, true,
     "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": "
     "\"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 3}}\n</tool_call>",
     true},
    {"llama3", NULL, false, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}",
     true},
    {"llama3", NULL, false, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}",
     false},
    {"llama3", NULL, false, "{\"name\": \"nope\", \"parameters\": {}}", false},
    {"mistral", NULL, false,
     "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\", \"unit\": "
     "\"f\"}}]",
     true},
    {"mistral", NULL, false,
     "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}, \"id\": \"a1b2c3d4e\"}]", true},
    {"mistral", NULL, false,
     "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}, {\"name\": \"now\", \"arguments\": "
     "{}}]",
     false},
    {"mistral", NULL, true,
     "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}, {\"name\": \"now\", \"arguments\": "
     "{}}]",
     true},
    {"mistral", NULL, false, "[TOOL_CALLS]{\"name\": \"now\", \"arguments\": {}}", false},
    {"qwen3_coder", NULL, false,
     "<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n<parameter="
     "days>\n3\n</parameter>\n</function>\n</tool_call>",
     true},
    {"qwen3_coder", NULL, false,
     "<tool_call>\n<function=get_weather>\n<parameter=city>\na < b </param\nline 2\n</parameter>\n"
     "<parameter=unit>\nc\n</parameter>\n</function>\n</tool_call>",
     true},
    {"qwen3_coder", NULL, false,
     "<tool_call>\n<function=get_weather>\n<parameter=unit>\nc\n</parameter>\n</function>\n"
     "</tool_call>",
     false},
    {"qwen3_coder", NULL, false,
     "<tool_call>\n<function=get_weather>\n<parameter=city>\nX\n</parameter>\n<parameter=days>\n"
     "eight\n</parameter>\n</function>\n</tool_call>",
     false},
    {"qwen3_coder", "now", false, "<tool_call>\n<function=now>\n</function>\n</tool_call>", true},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s VOCAB.gguf [-v]\n", argv[0]);
    return 2;
  }
  verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
  llama_log_set(quiet_log, NULL);
  llama_backend_init();
  struct llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  struct llama_model *model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    fprintf(stderr, "cannot load vocabulary %s\n", argv[1]);
    return 2;
  }
  const struct llama_vocab *vocab = llama_model_get_vocab(model);
  int pass = 0, failed = 0;

  if (argc > 3 && strcmp(argv[2], "--schemas") == 0) {
    FILE *f = fopen(argv[3], "r");
    char *line = NULL;
    size_t cap = 0;
    int refused = 0;
    size_t where;
    while (f && getline(&line, &cap, f) > 0) {
      json_t *s = json_loads(line, JSON_DECODE_ANY, NULL);
      char *g = NULL, err[256] = "";
      if (!s) continue;
      if (sy_schema_to_gbnf(s, &g, err, sizeof err) != 0) {
        refused++;
      } else if (run_doc(vocab, g, "", &where) == BAD_GRAMMAR) {
        printf("FAIL: llama.cpp refused the grammar of %s%s\n", line, g);
        failed++;
      } else {
        pass++;
      }
      free(g);
      json_decref(s);
    }
    free(line);
    if (f) fclose(f);
    printf("grammar-check --schemas: %d grammars accepted, %d schemas refused, %d failed\n", pass,
           refused, failed);
    llama_model_free(model);
    return failed || !f ? 1 : 0;
  }

  /* a broken grammar is reported, not fatal */
  size_t where;
  printf("a broken grammar must be refused (llama.cpp prints its parse error):\n");
  fflush(stdout);
  quiet = 1;
  enum verdict bad = run_doc(vocab, "root ::= (", "x", &where);
  quiet = 0;
  if (bad != BAD_GRAMMAR) {
    printf("FAIL: a broken grammar was not refused by llama_sampler_init_grammar\n");
    failed++;
  } else {
    pass++;
  }

  for (size_t i = 0; i < sizeof SCHEMA_CASES / sizeof SCHEMA_CASES[0]; i++) {
    const scase *c = &SCHEMA_CASES[i];
    char *g = NULL;
    char err[256] = "";
    if (c->schema) {
      json_error_t je;
      json_t *s = json_loads(c->schema, JSON_DECODE_ANY, &je);
      if (!s || sy_schema_to_gbnf(s, &g, err, sizeof err) != 0) {
        printf("FAIL schema %zu: %s\n  schema: %s\n", i, s ? err : je.text, c->schema);
        json_decref(s);
        failed++;
        continue;
      }
      json_decref(s);
    } else {
      g = strdup(sy_gbnf_json_object());
    }
    enum verdict v = run_doc(vocab, g, c->doc, &where);
    if (v == (c->accept ? ACCEPTED : REJECTED)) {
      pass++;
    } else {
      failed++;
      printf("FAIL schema %zu: %s, expected %s\n  schema: %s\n  doc:    %s\n", i,
             v == BAD_GRAMMAR ? "llama.cpp refused the grammar"
             : v == ACCEPTED  ? "accepted"
                              : "rejected",
             c->accept ? "accept" : "reject", c->schema ? c->schema : "(json_object)", c->doc);
      if (v == REJECTED) printf("  refused at byte %zu\n", where);
      if (verbose || v == BAD_GRAMMAR) printf("%s\n", g);
    }
    free(g);
  }

  json_t *tools = json_loads(TOOLS, 0, NULL);
  for (size_t i = 0; i < sizeof TOOL_CASES / sizeof TOOL_CASES[0]; i++) {
    const tcase *c = &TOOL_CASES[i];
    char *g = NULL;
    char err[256] = "";
    if (sy_gbnf_tool_calls(tools, c->only, c->format, c->parallel, &g, err, sizeof err) != 0) {
      printf("FAIL tools %zu (%s): %s\n", i, c->format, err);
      failed++;
      continue;
    }
    enum verdict v = run_doc(vocab, g, c->doc, &where);
    if (v == (c->accept ? ACCEPTED : REJECTED)) {
      pass++;
    } else {
      failed++;
      printf("FAIL tools %zu (%s%s): %s, expected %s\n  doc: %s\n", i, c->format,
             c->parallel ? ", parallel" : "",
             v == BAD_GRAMMAR ? "llama.cpp refused the grammar"
             : v == ACCEPTED  ? "accepted"
                              : "rejected",
             c->accept ? "accept" : "reject", c->doc);
      if (v == REJECTED) printf("  refused at byte %zu\n", where);
      if (verbose || v == BAD_GRAMMAR) printf("%s\n", g);
    }
    free(g);
  }
  json_decref(tools);
  llama_model_free(model);
  llama_backend_free();
  printf("grammar-check: %d passed, %d failed\n", pass, failed);
  return failed ? 1 : 0;
}
