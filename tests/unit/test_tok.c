/* test_tok.c — unit tests of src/workers/llama/tok.c: tokenising a long text in pieces gives
 * exactly llama_tokenize's tokens for the whole text. Every vocabulary the engine ships
 * ($SWITCHYARD_VOCAB_DIR/ggml-vocab-*.gguf, loaded vocabulary-only) tokenises a few hundred
 * seeded random texts made of its own special tokens, parts of the cut token, words in several
 * scripts and runs of whitespace, cut into pieces of 1..64 bytes (so every occurrence of the cut
 * token is a cut), with and without add_special; the pieces' tokens must equal the whole text's.
 * At least the BPE vocabularies of Qwen and Llama 3 must allow cutting (else the test proves
 * nothing). */
#include "../../src/workers/llama/tok.h" /* a worker module: no -I for it */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#define TEXTS_PER_VOCAB 300
#define MAX_SPECIALS 512

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) { /* xorshift64*, seeded: the same texts on every machine */
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 33) % n;
}

static void quiet(enum ggml_log_level level, const char *text, void *ud) {
  (void)level, (void)text, (void)ud;
}

/* A random text from v's special tokens (specials[0..ns)), the cut token's text and its parts,
 * words and whitespace, into buf (at most cap - 1 bytes). */
static size_t make_text(const struct llama_vocab *v, const llama_token *specials, int ns,
                        const tok_cut *c, char *buf, size_t cap) {
  static const char *const words[] = {
      "hello",     " world", "Hello", "日本語", "émigré", "🙂",     "123", " 4567", "x",  "user",
      "assistant", "<|",     "|>",    "<",      ">",      "def f():", "\t",  "'s",    "::", "ß"};
  static const char *const spaces[] = {" ", "\n", "\n\n", "  ", "\r\n", " \n "};
  size_t n = 0, want = 64 + rnd(1500);
  while (n < want) {
    char seg[256];
    int k = rnd(10);
    if (k < 3 && c->len)
      snprintf(seg, sizeof seg, "%s", c->text);
    else if (k == 3 && c->len) /* a part of the cut token */
      snprintf(seg, sizeof seg, "%.*s", (int)(1 + rnd((uint32_t)c->len)), c->text);
    else if (k == 4 && ns)
      snprintf(seg, sizeof seg, "%s", llama_vocab_get_text(v, specials[rnd((uint32_t)ns)]));
    else if (k < 7)
      snprintf(seg, sizeof seg, "%s", words[rnd(sizeof words / sizeof *words)]);
    else
      snprintf(seg, sizeof seg, "%s", spaces[rnd(sizeof spaces / sizeof *spaces)]);
    size_t l = strlen(seg);
    if (n + l >= cap) break;
    memcpy(buf + n, seg, l);
    n += l;
  }
  buf[n] = '\0';
  return n;
}

static void test_pieces_equal_whole(void **st) {
  (void)st;
  const char *dir = getenv("SWITCHYARD_VOCAB_DIR");
  if (!dir) {
    print_message("SWITCHYARD_VOCAB_DIR is not set (tests/run.sh sets it)\n");
    fail();
  }
  llama_log_set(quiet, NULL);
  llama_backend_init();
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  int n_vocabs = 0, n_cut = 0;
  bool qwen = false, llama3 = false;
  static char text[4096];
  while ((de = readdir(d))) {
    if (strncmp(de->d_name, "ggml-vocab-", 11) != 0 || !strstr(de->d_name, ".gguf")) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *m = llama_model_load_from_file(path, mp);
    if (!m) continue; /* a vocabulary this engine cannot load: not ours to test */
    const struct llama_vocab *v = llama_model_get_vocab(m);
    n_vocabs++;
    tok_cut whole, cut;
    tok_cut_init(&cut, v, TOK_PIECE_BYTES);
    whole = cut;
    whole.len = 0; /* never cut */
    if (cut.len) {
      n_cut++;
      qwen |= strstr(de->d_name, "qwen2") != NULL;
      llama3 |= strstr(de->d_name, "llama-bpe") != NULL;
    }
    llama_token specials[MAX_SPECIALS];
    int ns = 0;
    for (llama_token i = 0; i < llama_vocab_n_tokens(v) && ns < MAX_SPECIALS; i++)
      if (llama_vocab_get_attr(v, i) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED))
        specials[ns++] = i;
    for (int t = 0; t < TEXTS_PER_VOCAB; t++) {
      size_t len = make_text(v, specials, ns, &cut, text, sizeof text);
      bool add = rnd(2);
      cut.piece_bytes = 1 + rnd(64);
      llama_token *a = NULL, *b = NULL;
      int32_t na = 0, nb = 0;
      assert_int_equal(tok_text(v, &whole, text, len, add, true, &a, &na), 0);
      assert_int_equal(tok_text(v, &cut, text, len, add, true, &b, &nb), 0);
      if (na != nb || memcmp(a, b, (size_t)na * sizeof *a) != 0) {
        print_message(
            "%s, text %d (pieces of %zu bytes, add_special %d): %d tokens whole, %d in "
            "pieces\n%s\n",
            de->d_name, t, cut.piece_bytes, add, na, nb, text);
        fail();
      }
      free(a);
      free(b);
    }
    llama_model_free(m);
  }
  closedir(d);
  print_message("%d vocabularies, %d allow cutting\n", n_vocabs, n_cut);
  assert_true(n_vocabs >= 4);
  assert_true(qwen && llama3);
  llama_backend_free();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pieces_equal_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
