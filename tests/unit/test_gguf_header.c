/* test_gguf_header.c — unit tests of config/gguf_header.c: real files (the shared third-party tiny
 * llama, and the llama.cpp vocabulary GGUFs when SWITCHYARD_VOCAB_DIR points at them), headers
 * built here, every truncation of a valid header, hostile lengths, counts and nesting, and 10k
 * random byte flips (run under ASan by `make test`). Must never depend on the network or write
 * outside mkdtemp. */
#include "config/gguf_header.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

/* ---- a GGUF header builder ------------------------------------------------------------------ */

enum { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 };

typedef struct gb {
  unsigned char *b;
  size_t len, cap;
} gb;

static void gb_bytes(gb *g, const void *p, size_t n) {
  if (g->len + n > g->cap) {
    g->cap = (g->len + n) * 2 + 64;
    g->b = realloc(g->b, g->cap);
    assert_non_null(g->b);
  }
  memcpy(g->b + g->len, p, n);
  g->len += n;
}
static void gb_u32(gb *g, uint32_t v) {
  unsigned char b[4] = {v, v >> 8, v >> 16, v >> 24};
  gb_bytes(g, b, 4);
}
static void gb_u64(gb *g, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  gb_bytes(g, b, 8);
}
static void gb_str(gb *g, const char *s) {
  gb_u64(g, strlen(s));
  gb_bytes(g, s, strlen(s));
}
static void gb_head(gb *g, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  gb_bytes(g, "GGUF", 4);
  gb_u32(g, version);
  gb_u64(g, n_tensors);
  gb_u64(g, n_kv);
}
static void kv_str(gb *g, const char *k, const char *v) {
  gb_str(g, k);
  gb_u32(g, STR);
  gb_str(g, v);
}
static void kv_u32(gb *g, const char *k, uint32_t v) {
  gb_str(g, k);
  gb_u32(g, U32);
  gb_u32(g, v);
}

/* A header with every value type, the interesting keys out of order (the arch's keys before
 * general.architecture), a string array and nested arrays. n_kv must match what is written. */
static void build_full(gb *g, size_t n_tokens, size_t template_len) {
  gb_head(g, 3, 7, 21);
  kv_u32(g, "qwen2.context_length", 32768);    /* 1 */
  kv_str(g, "general.name", "Synthetic Qwen"); /* 2 */
  kv_str(g, "general.architecture", "qwen2");  /* 3 */
  kv_u32(g, "llama.context_length", 99);       /* 4: another arch's, ignored */
  gb_str(g, "qwen2.embedding_length");
  gb_u32(g, U64);
  gb_u64(g, 896); /* 5 */
  gb_str(g, "qwen2.block_count");
  gb_u32(g, I32);
  gb_u32(g, 24); /* 6 */
  gb_str(g, "qwen2.pooling_type");
  gb_u32(g, U8);
  gb_bytes(g, "\x02", 1);             /* 7 */
  kv_u32(g, "general.file_type", 15); /* 8 */
  gb_str(g, "t.i8");
  gb_u32(g, I8);
  gb_bytes(g, "\xff", 1); /* 9 */
  gb_str(g, "t.u16");
  gb_u32(g, U16);
  gb_bytes(g, "\x01\x02", 2); /* 10 */
  gb_str(g, "t.i16");
  gb_u32(g, I16);
  gb_bytes(g, "\xfe\xff", 2); /* 11 */
  gb_str(g, "t.f32");
  gb_u32(g, F32);
  gb_u32(g, 0x3f800000); /* 12 */
  gb_str(g, "t.bool");
  gb_u32(g, BOOL);
  gb_bytes(g, "\x01", 1); /* 13 */
  gb_str(g, "t.i64");
  gb_u32(g, I64);
  gb_u64(g, (uint64_t)-5); /* 14 */
  gb_str(g, "t.f64");
  gb_u32(g, F64);
  gb_u64(g, 0x3ff0000000000000ull); /* 15 */
  /* 16: tokens, an array of strings */
  gb_str(g, "tokenizer.ggml.tokens");
  gb_u32(g, ARR);
  gb_u32(g, STR);
  gb_u64(g, n_tokens);
  for (size_t i = 0; i < n_tokens; i++) {
    char t[32];
    snprintf(t, sizeof t, "tok%zu", i);
    gb_str(g, t);
  }
  /* 17: scores, an array of floats */
  gb_str(g, "tokenizer.ggml.scores");
  gb_u32(g, ARR);
  gb_u32(g, F32);
  gb_u64(g, 3);
  for (int i = 0; i < 3; i++) gb_u32(g, 0);
  /* 18: an array of arrays of arrays (three levels, the most allowed) */
  gb_str(g, "t.nested");
  gb_u32(g, ARR);
  gb_u32(g, ARR);
  gb_u64(g, 2);
  for (int i = 0; i < 2; i++) {
    gb_u32(g, ARR);
    gb_u64(g, 1);
    gb_u32(g, U16);
    gb_u64(g, 2);
    gb_bytes(g, "\1\0\2\0", 4);
  }
  /* 19: the chat template */
  gb_str(g, "tokenizer.chat_template");
  gb_u32(g, STR);
  gb_u64(g, template_len);
  for (size_t i = 0; i < template_len; i++) gb_bytes(g, "x", 1);
  /* 20: an empty array of strings, 21: a long key, never interesting */
  gb_str(g, "t.empty");
  gb_u32(g, ARR);
  gb_u32(g, STR);
  gb_u64(g, 0);
  char longkey[600];
  memset(longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  kv_u32(g, longkey, 1);
}

static void check_full(const ghdr_info *gi, bool with_template) {
  assert_int_equal(gi->version, 3);
  assert_int_equal(gi->n_tensors, 7);
  assert_int_equal(gi->n_kv, 21);
  assert_string_equal(gi->arch, "qwen2");
  assert_string_equal(gi->name, "Synthetic Qwen");
  assert_int_equal(gi->context_length, 32768);
  assert_int_equal(gi->embedding_length, 896);
  assert_int_equal(gi->block_count, 24);
  assert_int_equal(gi->pooling_type, 2);
  assert_int_equal(gi->file_type, 15);
  assert_int_equal(gi->has_chat_template, with_template);
  assert_false(gi->is_mmproj);
  assert_false(gi->is_adapter);
}

static int parse(const gb *g, ghdr_info *gi, char *err, size_t errlen) {
  /* a copy of exactly len bytes, so ASan sees any read past the end */
  unsigned char *copy = malloc(g->len ? g->len : 1);
  assert_non_null(copy);
  if (g->len) memcpy(copy, g->b, g->len);
  int rc = ghdr_parse_info(copy, g->len, gi, err, errlen);
  free(copy);
  return rc;
}

static void expect_fail(const gb *g, const char *reason_part) {
  ghdr_info gi;
  char err[256] = "";
  assert_int_equal(parse(g, &gi, err, sizeof err), -1);
  if (!strstr(err, reason_part)) fail_msg("error '%s' lacks '%s'", err, reason_part);
}

/* ---- files ----------------------------------------------------------------------------------- */

static const char *testdata_dir(void) {
  const char *d = getenv("SWITCHYARD_TESTDATA");
  return d && *d ? d : "../shared/testdata";
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_real_tiny_llama(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/llama-2-tiny-random.gguf", testdata_dir());
  if (access(path, R_OK) != 0) {
    print_message("SKIP: %s not found (set SWITCHYARD_TESTDATA to the shared testdata folder)\n",
                  path);
    skip();
  }
  ghdr_info gi;
  char err[256] = "";
  if (ghdr_read_info(path, &gi, err, sizeof err) != 0) fail_msg("%s: %s", path, err);
  assert_int_equal(gi.version, 3);
  assert_int_equal(gi.n_tensors, 12);
  assert_int_equal(gi.n_kv, 18);
  assert_string_equal(gi.arch, "llama");
  assert_string_equal(gi.name, "LLaMA v2");
  assert_int_equal(gi.context_length, 4096);
  assert_int_equal(gi.embedding_length, 8);
  assert_int_equal(gi.block_count, 1);
  assert_int_equal(gi.pooling_type, -1);
  assert_int_equal(gi.file_type, 1);
  assert_false(gi.has_chat_template);
  assert_false(gi.is_mmproj);

  /* the same bytes through the memory path give the same answer */
  size_t len = 0;
  unsigned char *b = slurp(path, &len);
  assert_non_null(b);
  ghdr_info gm;
  assert_int_equal(ghdr_parse_info(b, len, &gm, err, sizeof err), 0);
  assert_memory_equal(&gi, &gm, sizeof gi);
  /* the header ends at 723709 (of the 32000-token vocabulary); any cut before fails */
  assert_int_equal(ghdr_parse_info(b, 723708, &gm, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  assert_int_equal(ghdr_parse_info(b, 723709, &gm, err, sizeof err), 0);
  free(b);
}

static void test_vocab_files(void **state) {
  (void)state;
  const char *dir = getenv("SWITCHYARD_VOCAB_DIR");
  if (!dir || !*dir) {
    print_message(
        "SKIP: SWITCHYARD_VOCAB_DIR unset (llama.cpp's models/ folder of ggml-vocab-*.gguf)\n");
    skip();
  }
  DIR *d = opendir(dir);
  if (!d) fail_msg("SWITCHYARD_VOCAB_DIR=%s: cannot open", dir);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (strncmp(de->d_name, "ggml-vocab-", 11) != 0 || l < 5 || strcmp(de->d_name + l - 5, ".gguf"))
      continue;
    char path[4096], err[256] = "";
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    ghdr_info gi;
    if (ghdr_read_info(path, &gi, err, sizeof err) != 0) fail_msg("%s: %s", path, err);
    assert_true(gi.arch[0] != '\0');
    assert_true(gi.context_length > 0);
    assert_true(gi.block_count > 0);
    if (!strcmp(de->d_name, "ggml-vocab-qwen2.gguf")) {
      assert_string_equal(gi.arch, "qwen2");
      assert_int_equal(gi.context_length, 32768);
      assert_true(gi.has_chat_template);
    }
    if (!strcmp(de->d_name, "ggml-vocab-bert-bge.gguf")) {
      assert_string_equal(gi.arch, "bert");
      assert_int_equal(gi.embedding_length, 384);
      assert_false(gi.has_chat_template);
    }
    if (!strcmp(de->d_name, "ggml-vocab-nomic-bert-moe.gguf")) assert_int_equal(gi.pooling_type, 1);
    if (!strcmp(de->d_name, "ggml-vocab-aquila.gguf")) assert_int_equal(gi.version, 2);
    n++;
  }
  closedir(d);
  print_message("read %d vocabulary GGUFs from %s\n", n, dir);
  assert_true(n > 0);
}

static void test_minimal(void **state) {
  (void)state;
  gb g = {0};
  gb_head(&g, 3, 0, 0);
  ghdr_info gi;
  char err[256] = "";
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_int_equal(gi.version, 3);
  assert_int_equal(gi.n_kv, 0);
  assert_string_equal(gi.arch, "");
  assert_int_equal(gi.context_length, 0);
  assert_int_equal(gi.pooling_type, -1);
  assert_int_equal(gi.file_type, -1);
  free(g.b);

  /* version 2 reads the same way */
  g = (gb){0};
  gb_head(&g, 2, 1, 1);
  kv_str(&g, "general.architecture", "llama");
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_int_equal(gi.version, 2);
  assert_string_equal(gi.arch, "llama");
  free(g.b);
}

static void test_full_header(void **state) {
  (void)state;
  gb g = {0};
  build_full(&g, 5, 10);
  ghdr_info gi;
  char err[256] = "";
  if (parse(&g, &gi, err, sizeof err)) fail_msg("%s", err);
  check_full(&gi, true);
  free(g.b);
  g = (gb){0};
  build_full(&g, 0, 0); /* an empty template is no template */
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  check_full(&gi, false);
  free(g.b);
}

static void test_every_truncation_fails(void **state) {
  (void)state;
  gb g = {0};
  build_full(&g, 3, 40);
  ghdr_info gi;
  char err[256];
  for (size_t n = 0; n < g.len; n++) {
    unsigned char *cut = malloc(n ? n : 1);
    memcpy(cut, g.b, n);
    err[0] = '\0';
    int rc = ghdr_parse_info(cut, n, &gi, err, sizeof err);
    free(cut);
    if (rc != -1) fail_msg("a header cut at %zu of %zu bytes was accepted", n, g.len);
    if (!strstr(err, "truncated") && !strstr(err, "too short") &&
        !strstr(err, "larger than the rest"))
      fail_msg("cut at %zu: unexpected reason '%s'", n, err);
  }
  free(g.b);
}

static void test_bad_magic_and_version(void **state) {
  (void)state;
  gb g = {0};
  gb_bytes(&g, "GGUG", 4);
  gb_u32(&g, 3);
  gb_u64(&g, 0);
  gb_u64(&g, 0);
  expect_fail(&g, "not a GGUF file: bad magic");
  g.len = 0;
  gb_bytes(&g, "GG", 2);
  expect_fail(&g, "too short");
  g.len = 0;
  gb_head(&g, 1, 0, 0);
  expect_fail(&g, "version 1 is not supported");
  g.len = 0;
  gb_head(&g, 4, 0, 0);
  expect_fail(&g, "unsupported GGUF version 4");
  g.len = 0;
  gb_head(&g, 0x03000000u, 0, 0);
  expect_fail(&g, "big-endian");
  free(g.b);
  ghdr_info gi;
  char err[64];
  assert_int_equal(ghdr_parse_info(NULL, 0, &gi, err, sizeof err), -1);
  /* a tiny err buffer is cut, never overrun; a NULL one is fine */
  char tiny[8];
  assert_int_equal(ghdr_parse_info((const unsigned char *)"XXXXXXXXXXXXXXXXXXXXXXXX", 24, &gi, tiny,
                                   sizeof tiny),
                   -1);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
  assert_int_equal(ghdr_parse_info((const unsigned char *)"XXXX", 4, &gi, NULL, 0), -1);
}

static void test_absurd_counts_and_lengths(void **state) {
  (void)state;
  gb g = {0};
  gb_head(&g, 3, 0, (1u << 20) + 1);
  expect_fail(&g, "key/value count 1048577 is absurd");
  g.len = 0;
  gb_head(&g, 3, 0, UINT64_MAX);
  expect_fail(&g, "is absurd");
  g.len = 0;
  gb_head(&g, 3, UINT64_MAX, 0);
  expect_fail(&g, "tensor count");

  /* a key longer than the limit, and one longer than the file */
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_u64(&g, UINT64_MAX);
  expect_fail(&g, "key length 18446744073709551615 exceeds the 67108864-byte limit");
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_u64(&g, 1000);
  gb_bytes(&g, "abc", 3);
  expect_fail(&g, "truncated: key of 1000 bytes");

  /* a string value of 64 MiB + 1 */
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_str(&g, "general.name");
  gb_u32(&g, STR);
  gb_u64(&g, (64u << 20) + 1);
  expect_fail(&g, "string length 67108865 exceeds");

  /* array counts the file cannot hold, of fixed-size and of string elements */
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_str(&g, "a");
  gb_u32(&g, ARR);
  gb_u32(&g, U64);
  gb_u64(&g, UINT64_MAX / 4);
  expect_fail(&g, "larger than the rest of the file");
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_str(&g, "tokenizer.ggml.tokens");
  gb_u32(&g, ARR);
  gb_u32(&g, STR);
  gb_u64(&g, 150000);
  gb_str(&g, "tok");
  expect_fail(&g, "array of 150000 string elements is larger than the rest of the file");

  /* unknown types */
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_str(&g, "a");
  gb_u32(&g, 13);
  expect_fail(&g, "unknown value type 13");
  g.len = 0;
  gb_head(&g, 3, 0, 1);
  gb_str(&g, "a");
  gb_u32(&g, ARR);
  gb_u32(&g, 0xffffffffu);
  gb_u64(&g, 0);
  expect_fail(&g, "unknown array element type 4294967295");
  free(g.b);
}

static void test_deep_nesting(void **state) {
  (void)state;
  for (int levels = 1; levels <= 6; levels++) {
    gb g = {0};
    gb_head(&g, 3, 0, 1);
    gb_str(&g, "deep");
    gb_u32(&g, ARR);
    for (int i = 1; i < levels; i++) {
      gb_u32(&g, ARR);
      gb_u64(&g, 1);
    }
    gb_u32(&g, U8);
    gb_u64(&g, 1);
    gb_bytes(&g, "\x07", 1);
    ghdr_info gi;
    char err[256] = "";
    int rc = parse(&g, &gi, err, sizeof err);
    if (levels <= 3)
      assert_int_equal(rc, 0);
    else if (rc != -1 || !strstr(err, "nested deeper than 3"))
      fail_msg("%d levels: rc %d '%s'", levels, rc, err);
    free(g.b);
  }
}

static void test_odd_values(void **state) {
  (void)state;
  gb g = {0};
  gb_head(&g, 3, 1, 6);
  kv_str(&g, "general.type", "mmproj");
  char arch[100];
  memset(arch, 'a', 99);
  arch[99] = '\0';
  kv_str(&g, "general.architecture", arch); /* cut to 63 bytes */
  gb_str(&g, "general.name");               /* a NUL inside a key: matches nothing */
  g.b[g.len - 5] = '\0';
  gb_u32(&g, STR);
  gb_str(&g, "nope");
  gb_str(&g, ".context_length"); /* no prefix: ignored */
  gb_u32(&g, U32);
  gb_u32(&g, 5);
  gb_str(&g, "x.pooling_type"); /* a float where an int is expected: ignored */
  gb_u32(&g, F32);
  gb_u32(&g, 0);
  gb_str(&g, "general.file_type");
  gb_u32(&g, U64);
  gb_u64(&g, UINT64_MAX); /* clamped */
  ghdr_info gi;
  char err[256] = "";
  if (parse(&g, &gi, err, sizeof err)) fail_msg("%s", err);
  assert_true(gi.is_mmproj);
  assert_int_equal(strlen(gi.arch), 63);
  assert_string_equal(gi.name, "");
  assert_int_equal(gi.context_length, 0);
  assert_int_equal(gi.pooling_type, -1);
  assert_int_equal(gi.file_type, 2147483647);
  free(g.b);

  g = (gb){0};
  gb_head(&g, 3, 1, 2);
  kv_str(&g, "general.type", "adapter");
  kv_str(&g, "general.architecture", "clip");
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_true(gi.is_adapter);
  assert_true(gi.is_mmproj);
  assert_int_equal(gi.has_vision_encoder, -1); /* absent */
  assert_int_equal(gi.has_audio_encoder, -1);
  free(g.b);

  /* which encoders a projector has: bools (any integer type is read) */
  g = (gb){0};
  gb_head(&g, 3, 1, 2);
  gb_str(&g, "clip.has_vision_encoder");
  gb_u32(&g, BOOL);
  gb_bytes(&g, "\0", 1);
  gb_str(&g, "clip.has_audio_encoder");
  gb_u32(&g, BOOL);
  gb_bytes(&g, "\1", 1);
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_true(gi.is_mmproj);
  assert_int_equal(gi.has_vision_encoder, 0);
  assert_int_equal(gi.has_audio_encoder, 1);
  assert_string_equal(gi.projector_type, ""); /* absent */
  free(g.b);

  /* the projector's type (either key), cut to 31 bytes */
  g = (gb){0};
  gb_head(&g, 3, 1, 1);
  kv_str(&g, "clip.projector_type", "qwen2.5vl_merger");
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_true(gi.is_mmproj);
  assert_string_equal(gi.projector_type, "qwen2.5vl_merger");
  free(g.b);
  g = (gb){0};
  gb_head(&g, 3, 1, 1);
  kv_str(&g, "clip.vision.projector_type", "a-projector-type-longer-than-31-bytes");
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_string_equal(gi.projector_type, "a-projector-type-longer-than-31");
  free(g.b);
}

/* Write buf to dir/name; returns the path in out. */
static void write_file(const char *dir, const char *name, const void *buf, size_t len, char *out,
                       size_t cap) {
  snprintf(out, cap, "%s/%s", dir, name);
  FILE *f = fopen(out, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, len, f), len);
  fclose(f);
}

static void test_file_reader(void **state) {
  (void)state;
  char dir[] = "/tmp/sy-gguf-XXXXXX";
  assert_non_null(mkdtemp(dir));
  /* big enough that the 64 KiB window refills (100k tokens) and skips past it (a 300 KB template)
   */
  gb g = {0};
  build_full(&g, 100000, 300000);
  char path[512], err[256] = "";
  write_file(dir, "big.gguf", g.b, g.len, path, sizeof path);
  ghdr_info gf, gm;
  if (ghdr_read_info(path, &gf, err, sizeof err)) fail_msg("%s", err);
  check_full(&gf, true);
  assert_int_equal(parse(&g, &gm, err, sizeof err), 0);
  assert_memory_equal(&gf, &gm, sizeof gf);
  unlink(path);

  /* truncated files, at a few points across window boundaries */
  size_t cuts[] = {3, 30, 65535, 65536, 65537, 200000, g.len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    write_file(dir, "cut.gguf", g.b, cuts[i], path, sizeof path);
    assert_int_equal(ghdr_read_info(path, &gf, err, sizeof err), -1);
    unlink(path);
  }
  free(g.b);

  /* not files */
  assert_int_equal(ghdr_read_info(dir, &gf, err, sizeof err), -1);
  assert_string_equal(err, "not a regular file");
  snprintf(path, sizeof path, "%s/none.gguf", dir);
  assert_int_equal(ghdr_read_info(path, &gf, err, sizeof err), -1);
  assert_string_equal(err, "cannot open: No such file or directory");
  snprintf(path, sizeof path, "%s/fifo.gguf", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  assert_int_equal(ghdr_read_info(path, &gf, err, sizeof err), -1); /* and does not hang */
  assert_string_equal(err, "not a regular file");
  unlink(path);
  assert_int_equal(rmdir(dir), 0);
}

/* A fixed-seed generator, the same on every libc. */
static uint64_t rng_state;
static uint32_t rng(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33);
}

static void test_random_flips(void **state) {
  (void)state;
  gb g = {0};
  build_full(&g, 20, 30);
  unsigned char *buf = malloc(g.len);
  assert_non_null(buf);
  rng_state = 20240601;
  int ok = 0;
  for (int iter = 0; iter < 10000; iter++) {
    memcpy(buf, g.b, g.len);
    int flips = 1 + (int)(rng() % 4);
    for (int f = 0; f < flips; f++) {
      size_t at = rng() % g.len;
      switch (rng() % 3) {
        case 0:
          buf[at] ^= (unsigned char)(1u << (rng() % 8));
          break;
        case 1:
          buf[at] = (unsigned char)rng();
          break;
        default:
          buf[at] = (rng() & 1) ? 0xff : 0x00;
          break;
      }
    }
    size_t len = g.len - (rng() % 4 == 0 ? rng() % g.len : 0);
    ghdr_info gi;
    char err[256];
    err[0] = '\0';
    int rc = ghdr_parse_info(buf, len, &gi, err, sizeof err);
    if (rc == 0) {
      ok++;
      assert_true(strlen(gi.arch) < sizeof gi.arch);
      assert_true(strlen(gi.name) < sizeof gi.name);
    } else {
      assert_int_equal(rc, -1);
      assert_true(err[0] != '\0');
    }
  }
  print_message("10000 mutated headers: %d still parse, the rest fail cleanly\n", ok);
  free(buf);
  free(g.b);
}

/* A header of a MoE model with its tensor infos: name, dims, type, offset. */
static void build_moe(gb *g, const uint64_t *offs, size_t data_len) {
  static const char *const names[] = {"token_embd.weight",        "blk.0.ffn_gate_exps.weight",
                                      "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight",
                                      "blk.1.attn_q.weight",      "blk.1.ffn_gate_up_exps.weight"};
  gb_head(g, 3, 6, 3);
  kv_str(g, "general.architecture", "qwen3moe");
  kv_u32(g, "qwen3moe.expert_count", 4);
  kv_u32(g, "qwen3moe.block_count", 2);
  for (size_t i = 0; i < 6; i++) {
    gb_str(g, names[i]);
    gb_u32(g, 2);
    gb_u64(g, 64);
    gb_u64(g, 8);
    gb_u32(g, 1);
    gb_u64(g, offs[i]);
  }
  while (g->len % 32) gb_bytes(g, "", 1); /* the data starts aligned */
  for (size_t i = 0; i < data_len; i++) gb_bytes(g, "x", 1);
}

/* The experts' bytes: the gaps between the offsets of the expert tensors' infos, the last up to
 * the end of the file; a table it cannot follow leaves them unknown and still reads the header. */
static void test_expert_bytes(void **state) {
  (void)state;
  const uint64_t offs[] = {0, 1000, 1500, 2000, 2600, 3000};
  gb g = {0};
  build_moe(&g, offs, 3700);
  ghdr_info gi;
  char err[256] = "";
  if (parse(&g, &gi, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(gi.expert_count, 4);
  assert_int_equal(gi.expert_bytes, 500 + 500 + 600 + 700);
  assert_int_equal(gi.expert_layers, 2);
  free(g.b);

  const uint64_t unordered[] = {0, 1000, 900, 2000, 2600, 3000};
  g = (gb){0};
  build_moe(&g, unordered, 3700);
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_int_equal(gi.expert_bytes, -1);
  assert_int_equal(gi.expert_count, 4);
  free(g.b);

  g = (gb){0};
  build_moe(&g, offs, 100); /* the data ends before the last tensor starts */
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_int_equal(gi.expert_bytes, -1);
  free(g.b);

  /* a dense model: no experts, 0 bytes */
  g = (gb){0};
  gb_head(&g, 3, 1, 1);
  kv_str(&g, "general.architecture", "llama");
  gb_str(&g, "blk.0.ffn_up.weight");
  gb_u32(&g, 1);
  gb_u64(&g, 8);
  gb_u32(&g, 0);
  gb_u64(&g, 0);
  while (g.len % 32) gb_bytes(&g, "", 1);
  gb_bytes(&g, "12345678901234567890123456789012", 32);
  assert_int_equal(parse(&g, &gi, err, sizeof err), 0);
  assert_int_equal(gi.expert_bytes, 0);
  assert_int_equal(gi.expert_count, 0);
  free(g.b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_tiny_llama),
      cmocka_unit_test(test_vocab_files),
      cmocka_unit_test(test_minimal),
      cmocka_unit_test(test_full_header),
      cmocka_unit_test(test_every_truncation_fails),
      cmocka_unit_test(test_bad_magic_and_version),
      cmocka_unit_test(test_absurd_counts_and_lengths),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_odd_values),
      cmocka_unit_test(test_file_reader),
      cmocka_unit_test(test_expert_bytes),
      cmocka_unit_test(test_random_flips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
