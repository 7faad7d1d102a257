/* fill.c — deterministic random tensor data for mkmodel (see fill.h). Generates F32 rows chunk by
 * chunk and converts them with ggml_quantize_chunk, so quantized weights are written directly.
 * Must never keep a whole F32 copy of a tensor and never touch files. */
#include "fill.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "quant.h"
#include "rng.h"

#define MK_MAX_THREADS 256
#define MK_CHUNK_ELEMS (1 << 16) /* F32 values generated per chunk (256 KiB) */

static uint64_t mix64(uint64_t x) {
  uint64_t s = x;
  return mk_rng_next(&s);
}

struct fill_job {
  enum ggml_type type;
  enum mk_init init;
  int64_t ne0, nrows, rows_per_chunk;
  size_t row_size;
  char *dst;
  float scale;
  uint64_t seed;
  atomic_llong next_chunk;
  atomic_int failed;
};

static void fill_rows(const struct fill_job *j, float *buf, int64_t row0, int64_t nrows) {
  for (int64_t r = 0; r < nrows; r++) {
    float *row = buf + r * j->ne0;
    switch (j->init) {
      case MK_INIT_ONE:
        for (int64_t i = 0; i < j->ne0; i++) row[i] = 1.0f;
        break;
      case MK_INIT_ZERO:
        memset(row, 0, (size_t)j->ne0 * sizeof(float));
        break;
      case MK_INIT_NEG_ONE:
        for (int64_t i = 0; i < j->ne0; i++) row[i] = -1.0f;
        break;
      case MK_INIT_MATRIX:
      case MK_INIT_RANDOM:
      default: {
        uint64_t st = mix64(j->seed ^ ((uint64_t)(row0 + r) * 0xd1b54a32d192ed03ULL + 1));
        for (int64_t i = 0; i < j->ne0; i++) row[i] = mk_rng_normalish(&st) * j->scale;
      } break;
    }
  }
  ggml_quantize_chunk(j->type, buf, j->dst + (size_t)row0 * j->row_size, 0, nrows, j->ne0, NULL);
}

static void *fill_worker(void *arg) {
  struct fill_job *j = arg;
  float *buf = malloc((size_t)j->rows_per_chunk * (size_t)j->ne0 * sizeof(float));
  if (!buf) {
    atomic_store(&j->failed, 1);
    return NULL;
  }
  int64_t n_chunks = (j->nrows + j->rows_per_chunk - 1) / j->rows_per_chunk;
  for (;;) {
    int64_t c = atomic_fetch_add(&j->next_chunk, 1);
    if (c >= n_chunks) break;
    int64_t row0 = c * j->rows_per_chunk;
    int64_t n = j->nrows - row0 < j->rows_per_chunk ? j->nrows - row0 : j->rows_per_chunk;
    fill_rows(j, buf, row0, n);
  }
  free(buf);
  return NULL;
}

/* Run the job on up to `threads` threads (the calling one included). */
static void run_job(struct fill_job *j, int threads) {
  int64_t n_chunks = (j->nrows + j->rows_per_chunk - 1) / j->rows_per_chunk;
  if (threads > n_chunks) threads = (int)n_chunks;
  if (threads > MK_MAX_THREADS) threads = MK_MAX_THREADS;
  pthread_t tid[MK_MAX_THREADS];
  int started = 0;
  for (int i = 1; i < threads; i++) {
    if (pthread_create(&tid[started], NULL, fill_worker, j) != 0) break; /* fewer threads is fine */
    started++;
  }
  fill_worker(j);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
}

/* Remember t for writing; 0, or -1 when out of memory. Names repeat only for tensors llama.cpp
 * shares between layers, which are never kept, but check anyway. */
static int keep(struct mk_fill *f, struct ggml_tensor *t) {
  for (int i = 0; i < f->n_kept; i++) {
    if (strcmp(f->kept[i]->name, t->name) == 0) return 0;
  }
  if (f->n_kept == f->cap_kept) {
    int cap = f->cap_kept ? 2 * f->cap_kept : 64;
    struct ggml_tensor **k = realloc(f->kept, (size_t)cap * sizeof(*k));
    if (!k) return -1;
    f->kept = k;
    f->cap_kept = cap;
  }
  f->kept[f->n_kept++] = t;
  return 0;
}

void mk_fill_deinit(struct mk_fill *f) {
  free(f->kept);
  f->kept = NULL;
  f->n_kept = f->cap_kept = 0;
}

void mk_fill_tensor(struct ggml_tensor *t, void *userdata) {
  struct mk_fill *f = userdata;
  const struct mk_tensor_desc *d = mk_spec_find_tensor(f->spec, t->name);
  size_t nbytes = ggml_nbytes(t);
  if (!d) {
    /* created by llama.cpp's loader (optional bias, scale, a tied model's output...) but absent
     * from real checkpoints: not written; zeroed so the in-memory model is deterministic */
    ggml_backend_tensor_memset(t, 0, 0, nbytes);
    f->n_zeroed++;
    return;
  }
  if (!ggml_is_contiguous(t) || t->ne[0] % ggml_blck_size(t->type) != 0 || keep(f, t) != 0) {
    f->failed = 1;
    return;
  }

  struct fill_job j;
  memset(&j, 0, sizeof(j));
  j.type = t->type;
  j.init = d->init;
  j.ne0 = t->ne[0];
  j.nrows = ggml_nrows(t);
  j.rows_per_chunk = j.ne0 >= MK_CHUNK_ELEMS ? 1 : MK_CHUNK_ELEMS / j.ne0;
  j.row_size = ggml_row_size(t->type, j.ne0);
  j.scale = 1.0f / sqrtf((float)j.ne0);
  j.seed = mix64(f->spec->seed) ^ mk_rng_hash(t->name);
  atomic_init(&j.next_chunk, 0);
  atomic_init(&j.failed, 0);

  int host = t->buffer == NULL || ggml_backend_buffer_is_host(t->buffer);
  char *staging = NULL;
  if (host) {
    j.dst = t->data;
  } else {
    staging = malloc(nbytes);
    if (!staging) {
      f->failed = 1;
      return;
    }
    j.dst = staging;
  }
  int nthreads = f->threads > 0 ? f->threads : 1;
  if (f->fast && (d->init == MK_INIT_MATRIX || d->init == MK_INIT_RANDOM)) {
    if (mk_pool_fill(j.type, j.ne0, j.nrows, j.scale, f->spec->seed, j.seed, j.dst, nthreads) != 0)
      f->failed = 1;
  } else {
    run_job(&j, nthreads);
  }
  if (atomic_load(&j.failed)) f->failed = 1;
  if (staging) {
    ggml_backend_tensor_set(t, staging, 0, nbytes);
    free(staging);
  }
  /* rows that do not fit the requested type's block (a mix's larger types are not fallbacks) */
  if (d->init == MK_INIT_MATRIX && t->ne[0] % ggml_blck_size(f->spec->wtype) != 0) f->n_fallback++;
  f->n_tensors++;
  f->n_bytes += nbytes;
}
