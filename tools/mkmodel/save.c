/* save.c — write mkmodel's output GGUF (see save.h). Streams tensor data straight from the
 * model's buffers; must never leave a partial output file behind. */
#include "save.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml-backend.h"
#include "llama.h"
#include "quant.h"

#define MK_SLICE (4u << 20) /* bytes per fwrite / staging copy */

static int write_zeros(FILE *f, size_t n) {
  static const char zeros[64];
  while (n > 0) {
    size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
    if (fwrite(zeros, 1, k, f) != k) return -1;
    n -= k;
  }
  return 0;
}

/* Write a tensor's bytes: straight from host memory, else through a staging slice. */
static int write_tensor(FILE *f, const struct ggml_tensor *t, char *stage) {
  size_t n = ggml_nbytes(t);
  int host = t->buffer == NULL || ggml_backend_buffer_is_host(t->buffer);
  for (size_t off = 0; off < n; off += MK_SLICE) {
    size_t k = n - off < MK_SLICE ? n - off : MK_SLICE;
    const char *src = (const char *)t->data + off;
    if (!host) {
      ggml_backend_tensor_get(t, stage, off, k);
      src = stage;
    }
    if (fwrite(src, 1, k, f) != k) return -1;
  }
  return 0;
}

static int expected_tensors(const struct mk_spec *s) {
  size_t n = 0;
  const struct mk_tensor_desc *table = mk_arch_tensors(s->arch, &n);
  int expected = 0;
  for (size_t i = 0; i < n; i++) {
    if (!mk_spec_keeps(s, &table[i])) continue;
    if (table[i].per_layer == MK_GLOBAL) {
      expected++;
      continue;
    }
    for (int il = 0; il < s->n_layer; il++) expected += mk_spec_layer_has(s, &table[i], il);
  }
  return expected;
}

int mk_save(const char *out_path, const struct mk_spec *s, const struct gguf_context *kv,
            const char *chat_template, struct ggml_tensor *const *tensors, int n_tensors,
            struct mk_save_info *info, char *err, size_t errlen) {
  int rc = -1;
  struct gguf_context *g = NULL;
  FILE *out = NULL;
  char *head = NULL, *stage = NULL;
  char part[4096];
  memset(info, 0, sizeof(*info));

  if (snprintf(part, sizeof(part), "%s.part", out_path) >= (int)sizeof(part)) {
    snprintf(err, errlen, "output path too long");
    return -1;
  }
  int expected = expected_tensors(s);
  if (n_tensors != expected) {
    snprintf(err, errlen, "llama.cpp created %d of the %d tensors a %s checkpoint has", n_tensors,
             expected, mk_arch_name(s->arch));
    return -1;
  }

  g = gguf_init_empty();
  gguf_set_kv(g, kv);
  if (chat_template) gguf_set_val_str(g, "tokenizer.chat_template", chat_template);
  gguf_set_val_u32(g, "general.file_type", (uint32_t)mk_quant_ftype(s));
  if (ggml_is_quantized(s->wtype))
    gguf_set_val_u32(g, "general.quantization_version", GGML_QNT_VERSION);
  char desc[256];
  snprintf(desc, sizeof(desc),
           "random weights from switchyard mkmodel (seed %llu): real structure and tokenizer, "
           "meaningless output",
           (unsigned long long)s->seed);
  gguf_set_val_str(g, "general.description", desc);
  for (int i = 0; i < n_tensors; i++) {
    gguf_add_tensor(g, tensors[i]);
    info->n_tensors++;
    info->n_params += (uint64_t)ggml_nelements(tensors[i]);
  }

  size_t head_size = gguf_get_meta_size(g);
  head = malloc(head_size);
  stage = malloc(MK_SLICE);
  out = fopen(part, "wb");
  if (!head || !stage || !out) {
    snprintf(err, errlen, "cannot write %s: %s", part, out ? "out of memory" : strerror(errno));
    goto err;
  }
  gguf_get_meta_data(g, head);
  if (fwrite(head, 1, head_size, out) != head_size) goto io_err;
  uint64_t written = 0; /* bytes of the data section so far */
  for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
    uint64_t off = gguf_get_tensor_offset(g, i);
    if (off < written) {
      snprintf(err, errlen, "overlapping tensor %s", gguf_get_tensor_name(g, i));
      goto err;
    }
    if (write_zeros(out, (size_t)(off - written)) != 0) goto io_err;
    if (write_tensor(out, tensors[i], stage) != 0) goto io_err;
    written = off + gguf_get_tensor_size(g, i);
  }
  size_t align = gguf_get_alignment(g);
  if (write_zeros(out, (size_t)((align - written % align) % align)) != 0) goto io_err;
  if (fflush(out) != 0 || fsync(fileno(out)) != 0) goto io_err;
  info->n_bytes = (uint64_t)ftello(out);
  FILE *closing = out;
  out = NULL;
  if (fclose(closing) != 0) goto io_err;
  if (rename(part, out_path) != 0) {
    snprintf(err, errlen, "cannot rename %s to %s: %s", part, out_path, strerror(errno));
    goto err;
  }
  rc = 0;
  goto done;

io_err:
  snprintf(err, errlen, "cannot write %s: %s", part, strerror(errno));
err:
  if (out) fclose(out);
  unlink(part);
done:
  free(head);
  free(stage);
  if (g) gguf_free(g);
  return rc;
}
