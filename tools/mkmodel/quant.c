/* quant.c — per-tensor weight types of mkmodel's quantization mixes (see quant.h). The rules
 * follow what llama-quantize does for its Q4_K_M / Q5_K_M ftypes on dense models (read in
 * llama.cpp's src/llama-quant.cpp): the output matrix (or, when tied, the token embeddings) in
 * Q6_K, attn_v and ffn_down in Q6_K on the "more bits" layers, everything else in the base type.
 * Must stay pure: no files, no engine state. */
#include "quant.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llama.h"

int mk_mix_parse(const char *str, int *mix, enum ggml_type *base) {
  static const struct {
    const char *name;
    int mix;
    enum ggml_type base;
  } names[] = {
      {"q4_k_m", MK_MIX_Q4_K_M, GGML_TYPE_Q4_K},
      {"q5_k_m", MK_MIX_Q5_K_M, GGML_TYPE_Q5_K},
      {"q6_k", MK_MIX_NONE, GGML_TYPE_Q6_K},
      {"q5_k", MK_MIX_NONE, GGML_TYPE_Q5_K},
  };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcasecmp(names[i].name, str) == 0) {
      *mix = names[i].mix;
      *base = names[i].base;
      return 0;
    }
  }
  return -1;
}

/* llama-quantize's use_more_bits: the first and last eighth of the layers, and every third in
 * between, get the larger type. */
static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* The wanted type if rows of ne0 fit its block, else the nearest larger-block-compatible one
 * (k-quants need multiples of 256; q5_0 / q8_0 multiples of 32), as llama-quantize falls back. */
static enum ggml_type fit(enum ggml_type want, int64_t ne0) {
  if (ne0 % ggml_blck_size(want) == 0) return want;
  if (want == GGML_TYPE_Q6_K && ne0 % ggml_blck_size(GGML_TYPE_Q8_0) == 0) return GGML_TYPE_Q8_0;
  if ((want == GGML_TYPE_Q4_K || want == GGML_TYPE_Q5_K) &&
      ne0 % ggml_blck_size(GGML_TYPE_Q5_0) == 0)
    return want == GGML_TYPE_Q4_K ? GGML_TYPE_Q5_0 : GGML_TYPE_Q5_1;
  return GGML_TYPE_F16;
}

enum ggml_type mk_quant_matrix_type(const struct mk_spec *s, const char *suffix, int il,
                                    int64_t ne0) {
  if (s->mix == MK_MIX_NONE) {
    if (s->wtype == GGML_TYPE_Q6_K || s->wtype == GGML_TYPE_Q5_K) return fit(s->wtype, ne0);
    return mk_spec_matrix_type(s->wtype, ne0);
  }
  enum ggml_type t = s->wtype;
  if (strcmp(suffix, "output.weight") == 0 ||
      (s->tied && strcmp(suffix, "token_embd.weight") == 0)) {
    t = GGML_TYPE_Q6_K;
  } else if (il >= 0 &&
             (strcmp(suffix, "attn_v.weight") == 0 || strcmp(suffix, "ffn_down.weight") == 0) &&
             more_bits(il, s->n_layer)) {
    t = GGML_TYPE_Q6_K;
  } else if (s->arch == MK_ARCH_BERT && strncmp(suffix, "cls", 3) == 0) {
    t = GGML_TYPE_Q8_0; /* a reranker's small head: keep it precise */
  }
  return fit(t, ne0);
}

int32_t mk_quant_ftype(const struct mk_spec *s) {
  switch (s->mix) {
    case MK_MIX_Q4_K_M:
      return LLAMA_FTYPE_MOSTLY_Q4_K_M;
    case MK_MIX_Q5_K_M:
      return LLAMA_FTYPE_MOSTLY_Q5_K_M;
    default:
      break;
  }
  switch (s->wtype) {
    case GGML_TYPE_F32:
      return LLAMA_FTYPE_ALL_F32;
    case GGML_TYPE_F16:
      return LLAMA_FTYPE_MOSTLY_F16;
    case GGML_TYPE_Q8_0:
      return LLAMA_FTYPE_MOSTLY_Q8_0;
    case GGML_TYPE_Q4_0:
      return LLAMA_FTYPE_MOSTLY_Q4_0;
    case GGML_TYPE_Q4_K:
      return LLAMA_FTYPE_MOSTLY_Q4_K_S;
    case GGML_TYPE_Q5_K:
      return LLAMA_FTYPE_MOSTLY_Q5_K_S;
    case GGML_TYPE_Q6_K:
      return LLAMA_FTYPE_MOSTLY_Q6_K;
    default:
      return LLAMA_FTYPE_GUESSED;
  }
}

const char *mk_quant_name(const struct mk_spec *s) {
  switch (s->mix) {
    case MK_MIX_Q4_K_M:
      return "Q4_K_M";
    case MK_MIX_Q5_K_M:
      return "Q5_K_M";
    default:
      return ggml_type_name(s->wtype);
  }
}

/* ---- --fast: block pools ---- */

#define MK_POOL_CACHE 16
#define MK_POOL_MAX_THREADS 256

struct pool {
  enum ggml_type type;
  int64_t blck; /* elements per block */
  size_t bsize; /* bytes per block */
  float scale;
  char *blocks; /* MK_POOL_BLOCKS blocks */
};
static struct pool pools[MK_POOL_CACHE];
static int n_pools;

static uint64_t pool_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* the pool for (type, scale): made on first use from a stream that depends on seed and both */
static const struct pool *pool_get(enum ggml_type type, float scale, uint64_t seed) {
  for (int i = 0; i < n_pools; i++) {
    if (pools[i].type == type && pools[i].scale == scale) return &pools[i];
  }
  if (n_pools == MK_POOL_CACHE) return NULL;
  struct pool p = {type, ggml_blck_size(type), ggml_type_size(type), scale, NULL};
  /* quantize one "row" of MK_POOL_BLOCKS blocks: quantize_chunk wants whole rows */
  int64_t n = p.blck * MK_POOL_BLOCKS;
  float *f = malloc((size_t)n * sizeof(float));
  p.blocks = malloc(p.bsize * MK_POOL_BLOCKS);
  if (!f || !p.blocks) {
    free(f);
    free(p.blocks);
    return NULL;
  }
  uint32_t sbits;
  memcpy(&sbits, &scale, sizeof(sbits));
  uint64_t st = seed ^ ((uint64_t)type << 40) ^ sbits;
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = pool_next(&st); /* sum of four 16-bit uniforms: near-normal, bounded */
    int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                  (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48);
    f[i] = ((float)sum - 131070.0f) * (1.0f / 37837.22f) * scale;
  }
  ggml_quantize_chunk(type, f, p.blocks, 0, 1, n, NULL);
  free(f);
  pools[n_pools] = p;
  return &pools[n_pools++];
}

void mk_pool_free(void) {
  for (int i = 0; i < n_pools; i++) free(pools[i].blocks);
  n_pools = 0;
}

struct pool_job {
  const struct pool *p;
  int64_t nblk_row, nrows;
  size_t row_size;
  uint64_t tseed;
  char *dst;
  atomic_llong next;
};

#define MK_POOL_ROWS_PER_TAKE 64

static void *pool_worker(void *arg) {
  struct pool_job *j = arg;
  const struct pool *p = j->p;
  for (;;) {
    int64_t r0 = atomic_fetch_add(&j->next, MK_POOL_ROWS_PER_TAKE);
    if (r0 >= j->nrows) break;
    int64_t r1 = r0 + MK_POOL_ROWS_PER_TAKE < j->nrows ? r0 + MK_POOL_ROWS_PER_TAKE : j->nrows;
    for (int64_t r = r0; r < r1; r++) {
      uint64_t st = j->tseed ^ ((uint64_t)r * 0xd1b54a32d192ed03ULL + 1);
      char *row = j->dst + (size_t)r * j->row_size;
      uint64_t bits = 0;
      int left = 0;
      for (int64_t b = 0; b < j->nblk_row; b++) {
        if (left == 0) { /* 12 bits per pick: five picks per 64-bit draw */
          bits = pool_next(&st);
          left = 5;
        }
        size_t k = (size_t)(bits & (MK_POOL_BLOCKS - 1));
        bits >>= 12;
        left--;
        memcpy(row + (size_t)b * p->bsize, p->blocks + k * p->bsize, p->bsize);
      }
    }
  }
  return NULL;
}

int mk_pool_fill(enum ggml_type type, int64_t ne0, int64_t nrows, float scale, uint64_t seed,
                 uint64_t tensor_seed, char *dst, int threads) {
  const struct pool *p = pool_get(type, scale, seed);
  if (!p || ne0 % p->blck != 0) return -1;
  struct pool_job j = {p, ne0 / p->blck, nrows, ggml_row_size(type, ne0), tensor_seed, dst, 0};
  atomic_init(&j.next, 0);
  int64_t takes = (nrows + MK_POOL_ROWS_PER_TAKE - 1) / MK_POOL_ROWS_PER_TAKE;
  if (threads > takes) threads = (int)takes;
  if (threads > MK_POOL_MAX_THREADS) threads = MK_POOL_MAX_THREADS;
  pthread_t tid[MK_POOL_MAX_THREADS];
  int started = 0;
  for (int i = 1; i < threads; i++) {
    if (pthread_create(&tid[started], NULL, pool_worker, &j) != 0) break;
    started++;
  }
  pool_worker(&j);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  return 0;
}
