/* proj.c — the projector builder mmproj.c and tts_qwen3.c share (see proj.h). */
#include "proj.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llama.h"
#include "rng.h"

void mk_pb_header(struct gguf_context *g, const char *name, uint64_t seed, const char *what) {
  gguf_set_val_str(g, "general.architecture", "clip");
  gguf_set_val_str(g, "general.type", "mmproj");
  gguf_set_val_str(g, "general.name", name);
  char desc[200];
  snprintf(desc, sizeof desc, "random weights from switchyard mkmodel (seed %llu): %s",
           (unsigned long long)seed, what);
  gguf_set_val_str(g, "general.description", desc);
  gguf_set_val_u32(g, "general.file_type", (uint32_t)LLAMA_FTYPE_MOSTLY_F16);
}

/* Write the GGUF as part, sync it, rename it over out_path. 0, or -1 with err (part removed). */
static int pb_save(const struct gguf_context *g, const char *out_path, const char *part,
                   const char *what, uint64_t *n_bytes, char *err, size_t errlen) {
  if (!gguf_write_to_file(g, part, false)) {
    snprintf(err, errlen, "%s: cannot write %s", what, part);
    unlink(part);
    return -1;
  }
  int fd = open(part, O_RDONLY);
  off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
  if (fd < 0 || size < 0 || fsync(fd) != 0) {
    snprintf(err, errlen, "%s: cannot sync %s: %s", what, part, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(part);
    return -1;
  }
  close(fd);
  if (rename(part, out_path) != 0) {
    snprintf(err, errlen, "%s: cannot rename %s to %s: %s", what, part, out_path, strerror(errno));
    unlink(part);
    return -1;
  }
  if (n_bytes) *n_bytes = (uint64_t)size;
  return 0;
}

int mk_pb_write(const char *out_path, uint64_t stream_seed, const char *what,
                void (*tensors)(mk_pb *b, const void *arg),
                void (*keys)(struct gguf_context *g, const void *arg), const void *arg,
                uint64_t *n_bytes, char *err, size_t errlen) {
  char part[4096];
  if (snprintf(part, sizeof part, "%s.part", out_path) >= (int)sizeof part) {
    snprintf(err, errlen, "%s: output path too long", what);
    return -1;
  }
  mk_pb b = {0};
  b.seed = stream_seed;
  tensors(&b, arg); /* counting pass */
  struct ggml_init_params ip = {b.need + (size_t)(b.n_tensors + 16) * ggml_tensor_overhead(), NULL,
                                false};
  b.ctx = ggml_init(ip);
  b.g = gguf_init_empty();
  b.tmp_n = b.biggest;
  b.tmp = malloc((b.biggest ? b.biggest : 1) * sizeof(float));
  int rc = -1;
  if (!b.ctx || !b.g || !b.tmp) {
    snprintf(err, errlen, "%s: out of memory (%zu MiB)", what, b.need >> 20);
  } else {
    keys(b.g, arg);
    tensors(&b, arg);
    if (b.failed)
      snprintf(err, errlen, "%s: cannot build the tensors (out of memory, or a name too long)",
               what);
    else
      rc = pb_save(b.g, out_path, part, what, n_bytes, err, errlen);
  }
  free(b.tmp);
  if (b.g) gguf_free(b.g);
  if (b.ctx) ggml_free(b.ctx);
  return rc;
}

static void pb_tensor(mk_pb *b, enum ggml_type type, enum mk_pinit init, float std,
                      const int64_t ne[4], const char *fmt, va_list ap) {
  char name[GGML_MAX_NAME];
  if (vsnprintf(name, sizeof name, fmt, ap) >= (int)sizeof name) {
    b->failed = 1; /* ggml would cut the name short */
    return;
  }
  size_t n = (size_t)(ne[0] * ne[1] * ne[2] * ne[3]);
  if (!b->ctx) {
    b->need += ggml_row_size(type, ne[0]) * (size_t)(ne[1] * ne[2] * ne[3]) + 64;
    b->n_tensors++;
    if (n > b->biggest) b->biggest = n;
    return;
  }
  if (b->failed) return;
  int nd = ne[3] > 1 ? 4 : ne[2] > 1 ? 3 : ne[1] > 1 ? 2 : 1;
  struct ggml_tensor *t = ggml_new_tensor(b->ctx, type, nd, ne);
  if (!t || n > b->tmp_n) {
    b->failed = 1;
    return;
  }
  ggml_set_name(t, name);
  float *v = type == GGML_TYPE_F32 ? (float *)t->data : b->tmp;
  uint64_t st = b->seed ^ mk_rng_hash(name);
  for (size_t i = 0; i < n; i++)
    v[i] = init == MK_P_ONE     ? 1.0f
           : init == MK_P_ZERO  ? 0.0f
           : init == MK_P_CONST ? std
                                : mk_rng_normalish(&st) * std;
  if (type == GGML_TYPE_F16) ggml_fp32_to_fp16_row(v, (ggml_fp16_t *)t->data, (int64_t)n);
  gguf_add_tensor(b->g, t);
}

void mk_pb_tensor4(mk_pb *b, enum ggml_type type, enum mk_pinit init, float std, int64_t ne0,
                   int64_t ne1, int64_t ne2, int64_t ne3, const char *fmt, ...) {
  const int64_t ne[4] = {ne0, ne1, ne2, ne3};
  va_list ap;
  va_start(ap, fmt);
  pb_tensor(b, type, init, std, ne, fmt, ap);
  va_end(ap);
}

void mk_pb_tensor(mk_pb *b, enum ggml_type type, enum mk_pinit init, float std, int64_t ne0,
                  int64_t ne1, int64_t ne2, const char *fmt, ...) {
  const int64_t ne[4] = {ne0, ne1, ne2, 1};
  va_list ap;
  va_start(ap, fmt);
  pb_tensor(b, type, init, std, ne, fmt, ap);
  va_end(ap);
}

void mk_pb_mat(mk_pb *b, int64_t in, int64_t out, const char *fmt, ...) {
  const int64_t ne[4] = {in, out, 1, 1};
  va_list ap;
  va_start(ap, fmt);
  pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)in), ne, fmt, ap);
  va_end(ap);
}

void mk_pb_vec(mk_pb *b, enum mk_pinit init, int64_t n, const char *fmt, ...) {
  const int64_t ne[4] = {n, 1, 1, 1};
  va_list ap;
  va_start(ap, fmt);
  pb_tensor(b, GGML_TYPE_F32, init, 1.0f, ne, fmt, ap);
  va_end(ap);
}

/* The prefix of a weight + bias pair; empty (and the builder failed) when too long. */
static void pb_prefix(mk_pb *b, char *p, size_t cap, const char *fmt, va_list ap) {
  if (vsnprintf(p, cap, fmt, ap) >= (int)cap) {
    b->failed = 1;
    p[0] = '\0';
  }
}

void mk_pb_linear(mk_pb *b, int64_t in, int64_t out, const char *fmt, ...) {
  char p[GGML_MAX_NAME];
  va_list ap;
  va_start(ap, fmt);
  pb_prefix(b, p, sizeof p, fmt, ap);
  va_end(ap);
  mk_pb_mat(b, in, out, "%s.weight", p);
  mk_pb_vec(b, MK_P_ZERO, out, "%s.bias", p);
}

void mk_pb_norm(mk_pb *b, int64_t n, const char *fmt, ...) {
  char p[GGML_MAX_NAME];
  va_list ap;
  va_start(ap, fmt);
  pb_prefix(b, p, sizeof p, fmt, ap);
  va_end(ap);
  mk_pb_vec(b, MK_P_ONE, n, "%s.weight", p);
  mk_pb_vec(b, MK_P_ZERO, n, "%s.bias", p);
}

void mk_pb_conv(mk_pb *b, int64_t k, int64_t in, int64_t out, const char *fmt, ...) {
  char p[GGML_MAX_NAME];
  va_list ap;
  va_start(ap, fmt);
  pb_prefix(b, p, sizeof p, fmt, ap);
  va_end(ap);
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(k * in)), k, in, out,
               "%s.weight", p);
  mk_pb_vec(b, MK_P_ZERO, out, "%s.bias", p);
}

void mk_pb_encoder_block(mk_pb *b, const char *pfx, int il, int64_t E, int64_t FF, int k_bias) {
  static const char *const attn[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
  for (int k = 0; k < 4; k++) {
    if (k_bias || k != 1) mk_pb_linear(b, E, E, "%s.blk.%d.%s", pfx, il, attn[k]);
  }
  if (!k_bias) mk_pb_mat(b, E, E, "%s.blk.%d.attn_k.weight", pfx, il);
  mk_pb_norm(b, E, "%s.blk.%d.ln1", pfx, il);
  mk_pb_linear(b, E, FF, "%s.blk.%d.ffn_up", pfx, il);
  mk_pb_linear(b, FF, E, "%s.blk.%d.ffn_down", pfx, il);
  mk_pb_norm(b, E, "%s.blk.%d.ln2", pfx, il);
}

void mk_pb_whisper_encoder(mk_pb *b, int64_t E, int64_t n_mel, int n_layers, int64_t FF) {
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(3 * n_mel)), 3, n_mel, E,
               "a.conv1d.1.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_ZERO, 0, 1, E, 1, "a.conv1d.1.bias");
  mk_pb_tensor(b, GGML_TYPE_F16, MK_P_RANDOM, 1.0f / sqrtf((float)(3 * E)), 3, E, E,
               "a.conv1d.2.weight");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_ZERO, 0, 1, E, 1, "a.conv1d.2.bias");
  mk_pb_tensor(b, GGML_TYPE_F32, MK_P_RANDOM, 0.02f, E, MK_PB_WHISPER_POS, 1,
               "a.position_embd.weight");
  for (int il = 0; il < n_layers; il++) mk_pb_encoder_block(b, "a", il, E, FF, 0);
  mk_pb_norm(b, E, "a.post_ln");
}
