/* mkwhisper — write a random-weight whisper.cpp model in its legacy ggml format, for tests that
 * must run without downloaded models. whisper.cpp loads it as a real multilingual model ("tiny":
 * 4 encoder and 4 decoder layers, "base": 6 and 6; 1500 audio and 448 text positions, 80 mel
 * bins, the multilingual vocabulary size 51865 so language detection and translation run), and
 * transcribes with it: the text is gibberish from a synthetic vocabulary, but every code path
 * (mel, encoder, language detection, decoding, timestamps, segments) runs for real.
 *
 *   mkwhisper -o OUT.bin [--seed N] [--preset tiny|base] [--width N] [--heads N] [--layers N]
 *             [--mels 80|128] [--large-v3]
 *
 * --width is the model width (n_audio_state = n_text_state; default 64, the real tiny is 384),
 * --heads the attention heads (default 1; tiny has 6) and --layers the encoder and the decoder
 * layers each (default 4); narrow is much faster to run on a CPU. --preset sets all three to a
 * real model's shape (tiny: 384/6/4, base: 512/8/6; options after it override), for benchmarks
 * whose compute must match the real model's. --mels sets the mel bins (80; large-v3 has 128);
 * --large-v3 is whisper large-v3's shape (width 1280, 20 heads, 32 + 32 layers, 128 mels, ~3 GiB
 * f16), for memory checks on a GPU (scripts/gpu-check.sh).
 * The layout mirrors whisper.cpp's whisper_model_load: magic, 11 int32 hyper-parameters, the mel
 * filter bank (n_mel × n_fft float32), the vocabulary (count, then length-prefixed strings), then
 * each tensor as n_dims, name length, type, dims (innermost first), name, data. Matrices and
 * convolution kernels are f16 (ftype 1), the rest f32. Little-endian hosts only. */
#include <limits.h>
#include <stdbool.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argnum.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mkwhisper writes host-order numbers; whisper.cpp files are little endian"
#endif

enum { N_VOCAB = 51865, N_FILE_VOCAB = 50257, AUDIO_CTX = 1500, TEXT_CTX = 448, N_FFT = 201 };
enum { T_F32 = 0, T_F16 = 1 };

static uint64_t rng_state;

static uint64_t rng_next(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}

static float rng_uniform(void) { return (float)((rng_next() >> 11) * (1.0 / 9007199254740992.0)); }

/* roughly normal (sum of four uniforms), scaled to the given deviation */
static float rng_normal(float sd) {
  float s = rng_uniform() + rng_uniform() + rng_uniform() + rng_uniform() - 2.0f;
  return s * sd * 1.7320508f;
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) { /* subnormal half, or zero */
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++; /* may carry into the exponent: still right */
  return (uint16_t)(sign | h);
}

static FILE *out;
static int width = 64, heads = 1, layers = 4, mels = 80;

static void put_i32(int32_t v) { fwrite(&v, 4, 1, out); }

enum fill { F_RANDOM, F_ONES, F_ZEROS };

static void tensor(const char *name, int type, enum fill fill, int n_dims, int ne0, int ne1,
                   int ne2) {
  int ne[3] = {ne0, ne1, ne2};
  size_t n = 1;
  put_i32(n_dims);
  put_i32((int32_t)strlen(name));
  put_i32(type);
  for (int i = 0; i < n_dims; i++) {
    put_i32(ne[i]);
    n *= (size_t)ne[i];
  }
  fwrite(name, 1, strlen(name), out);
  float sd = 1.0f / sqrtf((float)ne0); /* keeps activations in range through the layers */
  for (size_t i = 0; i < n; i++) {
    float v = fill == F_ONES ? 1.0f : fill == F_ZEROS ? 0.0f : rng_normal(sd);
    if (type == T_F16) {
      uint16_t h = f32_to_f16(v);
      fwrite(&h, 2, 1, out);
    } else {
      fwrite(&v, 4, 1, out);
    }
  }
}

/* the weights of one transformer block: self attention (and cross attention in the decoder) */
static void block(const char *sys, int i, bool cross) {
  char n[128];
  int w = width;
#define T(suffix, type, fill, nd, a, b) \
  (snprintf(n, sizeof n, "%s.blocks.%d.%s", sys, i, suffix), tensor(n, type, fill, nd, a, b, 1))
  T("mlp_ln.weight", T_F32, F_ONES, 1, w, 1);
  T("mlp_ln.bias", T_F32, F_ZEROS, 1, w, 1);
  T("mlp.0.weight", T_F16, F_RANDOM, 2, w, 4 * w);
  T("mlp.0.bias", T_F32, F_ZEROS, 1, 4 * w, 1);
  T("mlp.2.weight", T_F16, F_RANDOM, 2, 4 * w, w);
  T("mlp.2.bias", T_F32, F_ZEROS, 1, w, 1);
  const char *attn[2] = {"attn", "cross_attn"};
  for (int k = 0; k < (cross ? 2 : 1); k++) {
    char s[64];
    snprintf(s, sizeof s, "%s_ln.weight", attn[k]);
    T(s, T_F32, F_ONES, 1, w, 1);
    snprintf(s, sizeof s, "%s_ln.bias", attn[k]);
    T(s, T_F32, F_ZEROS, 1, w, 1);
    static const char *const parts[] = {"query.weight", "query.bias", "key.weight", "value.weight",
                                        "value.bias",   "out.weight", "out.bias"};
    for (int p = 0; p < 7; p++) {
      snprintf(s, sizeof s, "%s.%s", attn[k], parts[p]);
      bool bias = strstr(parts[p], "bias") != NULL;
      if (bias)
        T(s, T_F32, F_ZEROS, 1, w, 1);
      else
        T(s, T_F16, F_RANDOM, 2, w, w);
    }
  }
#undef T
}

/* token text: bytes-like single characters first, then pseudo-words (most with a leading space,
 * as BPE word starts have) */
static void vocab(void) {
  static const char *const syl[] = {"ka",  "lo", "mi",  "ren", "tas", "vo", "dun", "pel",
                                    "sha", "ti", "gor", "ne",  "bri", "os", "fa",  "lum"};
  put_i32(N_FILE_VOCAB);
  for (int id = 0; id < N_FILE_VOCAB; id++) {
    char t[32];
    int n = 0;
    if (id ==
        220) { /* GPT-2's lone space: whisper.cpp suppresses it by its text, so it must exist */
      t[n++] = ' ';
    } else if (id < 256) {
      t[n++] = (char)(33 + id % 94);
    } else {
      unsigned h = (unsigned)id * 2654435761u;
      if (id % 5) t[n++] = ' ';
      for (int s = 0; s < 1 + (int)(h >> 30) % 3; s++) {
        const char *y = syl[(h >> (4 * s)) & 15];
        size_t l = strlen(y);
        memcpy(t + n, y, l);
        n += (int)l;
      }
    }
    put_i32(n);
    fwrite(t, 1, (size_t)n, out);
  }
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: mkwhisper -o OUT.bin [--seed N] [--preset tiny|base] [--width N] [--heads N] "
      "[--layers N]\n"
      "                 [--mels 80|128] [--large-v3]\n"
      "  a random-weight multilingual whisper.cpp model (default width 64, 1 head, 4+4 layers)\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"out", required_argument, 0, 'o'},
                                       {"seed", required_argument, 0, 's'},
                                       {"width", required_argument, 0, 'w'},
                                       {"heads", required_argument, 0, 'h'},
                                       {"layers", required_argument, 0, 'l'},
                                       {"mels", required_argument, 0, 'm'},
                                       {"large-v3", no_argument, 0, 'L'},
                                       {"preset", required_argument, 0, 'p'},
                                       {0, 0, 0, 0}};
  const char *path = NULL;
  unsigned long long seed = 1;
  int c;
  long arg = 0;
  while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
    bool num = c == 's' || c == 'w' || c == 'h' || c == 'l' || c == 'm';
    if (num && sy_parse_long(optarg, 0, c == 's' ? LONG_MAX : 65536, &arg) != 0) {
      fprintf(stderr, "mkwhisper: --%s needs a whole number, not '%s'\n",
              c == 's'   ? "seed"
              : c == 'w' ? "width"
              : c == 'h' ? "heads"
              : c == 'l' ? "layers"
                         : "mels",
              optarg);
      return 2;
    }
    if (c == 'o')
      path = optarg;
    else if (c == 's')
      seed = (unsigned long long)arg;
    else if (c == 'w')
      width = (int)arg;
    else if (c == 'h')
      heads = (int)arg;
    else if (c == 'l')
      layers = (int)arg;
    else if (c == 'm')
      mels = (int)arg;
    else if (c == 'L')
      width = 1280, heads = 20, layers = 32, mels = 128;
    else if (c == 'p' && strcmp(optarg, "tiny") == 0)
      width = 384, heads = 6, layers = 4;
    else if (c == 'p' && strcmp(optarg, "base") == 0)
      width = 512, heads = 8, layers = 6;
    else {
      usage();
      return 2;
    }
  }
  if (!path || width < 8 || width > 4096 || heads < 1 || width % heads || layers < 1 ||
      layers > 64 || (mels != 80 && mels != 128)) {
    usage();
    return 2;
  }
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
  out = fopen(path, "wb");
  if (!out) {
    fprintf(stderr, "mkwhisper: %s: %s\n", path, strerror(errno));
    return 1;
  }
  put_i32(0x67676d6c);
  int32_t hp[11] = {N_VOCAB, AUDIO_CTX, width,  heads, layers, TEXT_CTX,
                    width,   heads,     layers, mels,  1 /* f16 */};
  for (int i = 0; i < 11; i++) put_i32(hp[i]);
  put_i32(mels);
  put_i32(N_FFT);
  for (int m = 0; m < mels; m++) /* triangular filters spread over the bins, as a mel bank is */
    for (int k = 0; k < N_FFT; k++) {
      float centre = 1.0f + (float)m * (N_FFT - 2) / mels, d = fabsf((float)k - centre);
      float v = d < 2.0f ? (2.0f - d) * 0.01f : 0.0f;
      fwrite(&v, 4, 1, out);
    }
  vocab();
  int w = width;
  tensor("encoder.positional_embedding", T_F32, F_RANDOM, 2, w, AUDIO_CTX, 1);
  tensor("encoder.conv1.weight", T_F16, F_RANDOM, 3, 3, mels, w);
  tensor("encoder.conv1.bias", T_F32, F_ZEROS, 2, 1, w, 1);
  tensor("encoder.conv2.weight", T_F16, F_RANDOM, 3, 3, w, w);
  tensor("encoder.conv2.bias", T_F32, F_ZEROS, 2, 1, w, 1);
  tensor("encoder.ln_post.weight", T_F32, F_ONES, 1, w, 1, 1);
  tensor("encoder.ln_post.bias", T_F32, F_ZEROS, 1, w, 1, 1);
  for (int i = 0; i < layers; i++) block("encoder", i, false);
  tensor("decoder.positional_embedding", T_F32, F_RANDOM, 2, w, TEXT_CTX, 1);
  tensor("decoder.token_embedding.weight", T_F16, F_RANDOM, 2, w, N_VOCAB, 1);
  tensor("decoder.ln.weight", T_F32, F_ONES, 1, w, 1, 1);
  tensor("decoder.ln.bias", T_F32, F_ZEROS, 1, w, 1, 1);
  for (int i = 0; i < layers; i++) block("decoder", i, true);
  if (fclose(out) != 0) {
    fprintf(stderr, "mkwhisper: %s: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}
