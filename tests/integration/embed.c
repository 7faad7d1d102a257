/* embed.c — /v1/embeddings and /v1/rerank on the main daemon: vector shapes and L2 norms, batched
 * inputs, rerank scores per document and the model's own rerank template.
 * Must never happen: a vector that is not unit length, a score missing or out of order, a request
 * for the wrong capability answered as if it were right.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static void t_embeddings(void) {
  resp r;
  it_post_json("/v1/embeddings", json_pack("{s:s, s:s}", "model", "embed", "input", "hello world"),
               &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(it_jstr(r.json, "object"), "list") == 0, "object");
  json_t *v = json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "embedding");
  size_t dim;
  double n = it_norm_of(v, &dim);
  CHECK(dim >= 8, "dim %zu", dim);
  CHECK(fabs(n - 1.0) < 1e-3, "norm %f", n);
  CHECK(it_jnum(r.json, "usage.prompt_tokens") >= 2, "prompt tokens");
  json_t *single = json_deep_copy(v);
  it_resp_clear(&r);

  it_post_json("/v1/embeddings",
               json_pack("{s:s, s:[s,s,s]}", "model", "embed", "input", "first text", "hello world",
                         "third"),
               &r);
  CHECK(r.status == 200, "batch status %ld %s", r.status, r.body.data);
  json_t *data = json_object_get(r.json, "data");
  CHECK(json_array_size(data) == 3, "3 items");
  for (size_t i = 0; i < 3; i++) {
    size_t di;
    CHECK(it_jnum(json_array_get(data, i), "index") == (long long)i, "index order");
    CHECK(
        fabs(it_norm_of(json_object_get(json_array_get(data, i), "embedding"), &di) - 1.0) < 1e-3 &&
            di == dim,
        "item %zu", i);
  }
  json_t *again = json_object_get(json_array_get(data, 1), "embedding");
  double maxdiff = 0;
  for (size_t k = 0; k < dim; k++)
    maxdiff = fmax(maxdiff, fabs(json_number_value(json_array_get(again, k)) -
                                 json_number_value(json_array_get(single, k))));
  CHECK(maxdiff < 1e-4, "same text in a batch embeds the same (max diff %g)", maxdiff);
  it_resp_clear(&r);

  it_post_json("/v1/embeddings",
               json_pack("{s:s, s:s, s:s}", "model", "embed", "input", "hello world",
                         "encoding_format", "base64"),
               &r);
  CHECK(r.status == 200, "base64 status %ld", r.status);
  const char *b64 = it_jstr(r.json, "data.0.embedding");
  CHECK(b64 && strlen(b64) == (dim * 4 + 2) / 3 * 4, "base64 length");
  /* decode and compare */
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char *raw = calloc(dim * 4 + 3, 1);
  size_t o = 0;
  for (size_t i = 0; b64[i] && b64[i + 1] && b64[i + 2] && b64[i + 3]; i += 4) {
    unsigned v4 = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char *pos = strchr(tbl, b64[i + k]);
      if (b64[i + k] == '=') pad++;
      v4 = v4 << 6 | (pos && b64[i + k] != '=' ? (unsigned)(pos - tbl) : 0);
    }
    raw[o++] = (unsigned char)(v4 >> 16);
    if (pad < 2) raw[o++] = (unsigned char)(v4 >> 8);
    if (pad < 1) raw[o++] = (unsigned char)v4;
  }
  float f0;
  memcpy(&f0, raw, 4);
  double d0 = json_number_value(json_array_get(single, 0));
  free(raw);
  json_decref(single);
  CHECK(o == dim * 4, "decoded %zu bytes", o);
  CHECK(fabs(f0 - d0) < 1e-6, "base64 value %f vs float %f", f0, d0);
  it_resp_clear(&r);
}

/* Scores of a rerank answer by document index (NAN where absent); checks the shape on the way. */
static bool rerank_scores(const json_t *j, size_t n_docs, size_t want, double *scores, char *why,
                          size_t wlen) {
  json_t *res = json_object_get(j, "results");
  for (size_t i = 0; i < n_docs; i++) scores[i] = NAN;
  if (json_array_size(res) != want)
    return snprintf(why, wlen, "%zu results", json_array_size(res)), false;
  double prev = INFINITY;
  size_t k;
  json_t *h;
  json_array_foreach(res, k, h) {
    long long idx = it_jnum(h, "index");
    json_t *sc = json_object_get(h, "relevance_score");
    if (idx < 0 || (size_t)idx >= n_docs || !isnan(scores[idx]))
      return snprintf(why, wlen, "results[%zu].index %lld", k, idx), false;
    if (!json_is_number(sc) || !isfinite(json_number_value(sc)))
      return snprintf(why, wlen, "results[%zu].relevance_score", k), false;
    scores[idx] = json_number_value(sc);
    if (scores[idx] > prev) return snprintf(why, wlen, "not sorted at %zu", k), false;
    prev = scores[idx];
  }
  return true;
}

static void t_rerank(void) {
  resp r;
  char why[128] = "";
  double s1[4], s2[4], s3[4];
  const char *docs[] = {"A fox is a small wild canine.", "Databases store rows in pages.", "",
                        "Foxes eat mice."};
  json_t *body =
      json_pack("{s:s, s:s, s:[s, {s:s}, s, s]}", "model", "rerank", "query", "what is a fox?",
                "documents", docs[0], "text", docs[1], docs[2], docs[3]);
  char *b = json_dumps(body, JSON_COMPACT);
  it_post("/v1/rerank", b, &r);
  CHECK(r.status == 200, "status %ld %s", r.status, r.body.data);
  CHECK(strcmp(it_jstr(r.json, "object"), "list") == 0 &&
            strcmp(it_jstr(r.json, "model"), "rerank") == 0,
        "%s", r.body.data);
  CHECK(rerank_scores(r.json, 4, 4, s1, why, sizeof why), "%s: %s", why, r.body.data);
  CHECK(!it_jpath(r.json, "results.0.document"), "no documents unless asked");
  long long pt = it_jnum(r.json, "usage.prompt_tokens");
  CHECK(pt >= 4 * 3 && pt == it_jnum(r.json, "usage.total_tokens"), "usage %s", r.body.data);
  CHECK(s1[0] != s1[1] || s1[1] != s1[3], "different documents score differently: %s", r.body.data);
  it_resp_clear(&r);
  it_post("/rerank", b, &r); /* the alias; the same request scores the same */
  CHECK(r.status == 200 && rerank_scores(r.json, 4, 4, s2, why, sizeof why), "alias: %ld %s %s",
        r.status, why, r.body.data);
  for (int i = 0; i < 4; i++)
    CHECK(s1[i] == s2[i], "deterministic: document %d %g vs %g", i, s1[i], s2[i]);
  it_resp_clear(&r);
  free(b);
  json_decref(body);

  /* a document alone scores as it did packed with the others */
  it_post_json("/v1/rerank",
               json_pack("{s:s, s:s, s:[s]}", "model", "rerank", "query", "what is a fox?",
                         "documents", docs[3]),
               &r);
  CHECK(r.status == 200 && rerank_scores(r.json, 1, 1, s3, why, sizeof why), "alone: %s %s", why,
        r.body.data);
  CHECK(fabs(s3[0] - s1[3]) < 1e-5, "alone %g vs packed %g", s3[0], s1[3]);
  it_resp_clear(&r);

  /* top_n and return_documents */
  it_post_json(
      "/v1/rerank",
      json_pack("{s:s, s:s, s:[s,s,s,s], s:i, s:b}", "model", "rerank", "query", "what is a fox?",
                "documents", docs[0], docs[1], docs[2], docs[3], "top_n", 2, "return_documents", 1),
      &r);
  CHECK(r.status == 200 && rerank_scores(r.json, 4, 2, s3, why, sizeof why), "top_n: %s %s", why,
        r.body.data);
  for (int k = 0; k < 2; k++) {
    char p[64];
    snprintf(p, sizeof p, "results.%d.index", k);
    long long idx = it_jnum(r.json, p);
    snprintf(p, sizeof p, "results.%d.document.text", k);
    CHECK(it_jstr(r.json, p) && strcmp(it_jstr(r.json, p), docs[idx]) == 0,
          "document %d echoed: %s", k, r.body.data);
    CHECK(s3[idx] == s1[idx], "top_n scores as before");
  }
  it_resp_clear(&r);

  /* TEI's shape: "texts" in, a bare array of {index, score, text} out */
  it_post_json("/v1/rerank",
               json_pack("{s:s, s:s, s:[s,s], s:b}", "model", "rerank", "query", "what is a fox?",
                         "texts", docs[0], docs[1], "return_text", 1),
               &r);
  CHECK(r.status == 200 && json_array_size(r.json) == 2, "tei: %ld %s", r.status, r.body.data);
  CHECK(json_is_number(it_jpath(r.json, "0.score")) && it_jstr(r.json, "0.text"), "tei item: %s",
        r.body.data);
  CHECK(
      fabs(json_number_value(it_jpath(r.json, "0.score")) - s1[it_jnum(r.json, "0.index")]) < 1e-5,
      "tei score");
  it_resp_clear(&r);

  /* errors */
  static const struct {
    const char *body;
    long status;
    const char *code;
  } bad[] = {
      {"{\"model\":\"rerank\",\"documents\":[\"a\"]}", 400, "missing_required_parameter"},
      {"{\"model\":\"rerank\",\"query\":\"\",\"documents\":[\"a\"]}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":7,\"documents\":[\"a\"]}", 400, "invalid_type"},
      {"{\"model\":\"rerank\",\"query\":\"q\"}", 400, "missing_required_parameter"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[]}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":\"a\"}", 400, "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[1]}", 400, "invalid_type"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[{\"txt\":\"a\"}]}", 400,
       "invalid_type"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":0}", 400,
       "invalid_value"},
      {"{\"model\":\"rerank\",\"query\":\"q\",\"documents\":[\"a\"],\"return_documents\":1}", 400,
       "invalid_type"},
      {"{\"model\":\"chat\",\"query\":\"q\",\"documents\":[\"a\"]}", 400, "wrong_capability"},
      {"{\"model\":\"embed\",\"query\":\"q\",\"documents\":[\"a\"]}", 400, "wrong_capability"},
      {"{\"model\":\"no-such-model\",\"query\":\"q\",\"documents\":[\"a\"]}", 404,
       "model_not_found"},
      {"{\"model\":\"rerank\",\"input\":\"a\"}", 400,
       "wrong_capability"}, /* sent to /v1/embeddings */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    bool emb = strstr(bad[i].body, "\"input\"") != NULL;
    it_post(emb ? "/v1/embeddings" : "/v1/rerank", bad[i].body, &r);
    CHECK(it_is_error(&r, bad[i].status, bad[i].code), "%s: %ld %s", bad[i].body, r.status,
          r.body.data);
    it_resp_clear(&r);
  }
  sy_buf big = {0};
  for (int i = 0; i < 300; i++) sy_buf_puts(&big, "fox ");
  it_post_json("/v1/rerank",
               json_pack("{s:s, s:s, s:[s,s]}", "model", "rerank", "query", "q", "documents",
                         "short", big.data),
               &r);
  sy_buf_free(&big);
  CHECK(it_is_error(&r, 400, "context_length_exceeded") &&
            strstr(it_jstr(r.json, "error.message"), "128") &&
            strstr(it_jstr(r.json, "error.message"), "documents[1]"),
        "too long: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  /* the model's own pair template (tokenizer.chat_template.rerank
   * "[CLS]{query}[SEP]{document}[SEP]"): one token more per pair than llama-server's BERT layout
   * "[CLS] q [SEP] d"; a "{document}" in the query stays text (one-pass substitution) */
  long long plain = -1, tmpl = -1;
  for (int k = 0; k < 2; k++) {
    it_post_json(
        "/v1/rerank",
        json_pack("{s:s, s:s, s:[s,s]}", "model", k ? "rerank-tmpl" : "rerank", "query",
                  "what is {document}?", "documents", "one two three four five six seven", "eight"),
        &r);
    CHECK(r.status == 200 && rerank_scores(r.json, 2, 2, s3, why, sizeof why), "template %d: %s %s",
          k, why, r.body.data);
    *(k ? &tmpl : &plain) = it_jnum(r.json, "usage.prompt_tokens");
    it_resp_clear(&r);
  }
  CHECK(plain > 0 && tmpl == plain + 2, "prompt tokens: %lld with the template, %lld without", tmpl,
        plain);

  it_get("/v1/models/rerank", &r);
  CHECK(r.status == 200 && it_jstr(r.json, "capabilities.0") &&
            strcmp(it_jstr(r.json, "capabilities.0"), "rerank") == 0,
        "capabilities: %s", r.body.data);
  it_resp_clear(&r);
  it_get("/metrics", &r);
  CHECK(
      r.body.data &&
          strstr(r.body.data,
                 "switchyard_requests_total{model=\"rerank\",endpoint=\"rerank\",status=\"200\"}"),
      "metrics count rerank requests");
  it_resp_clear(&r);
}

static const it_test tests[] = {
    {"embeddings", t_embeddings, false},
    {"rerank", t_rerank, false},
};
const itest_table itest_embed = {"embed", tests, sizeof tests / sizeof *tests};
