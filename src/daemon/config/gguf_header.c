/* gguf_header.c — a bounded reader of GGUF headers (v2 and v3, little-endian): magic, version,
 * counts and the key/value section, from which it keeps the handful of facts ghdr_info holds; then
 * the tensor infos, only to add up the experts' bytes (best effort: a table it cannot follow
 * leaves them unknown and never fails the read). The data is never read.
 *
 * The input is hostile. This file must never crash, never allocate more than one fixed-size read
 * window (and, for ghdr_read_template, the template: at most GHDR_MAX_TEMPLATE; scan_experts'
 * 8 KiB layer bitmap), never trust a length or count before checking it against the bytes that
 * remain and a fixed limit, and never take time beyond linear in the header's size. Values nobody
 * asked for (tokenizer vocabularies of 150k strings, merges, scores) are skipped, not stored.
 *
 * One code path serves files and memory: a small reader (struct ghdr_rd) hands out bytes from a
 * window that is either the whole buffer or a 64 KiB stdio-fed block of the file; skipping past
 * the window only moves an offset, and the next read seeks.
 *
 * Exports ghdr_* (GGUF header), not gguf_*: gguf_* is ggml's namespace (its own gguf.h), which
 * this file must stay out of even though the daemon links no ggml. */
#include "config/gguf_header.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits on what a header may claim. Real files: ~30 keys, vocabularies up to ~260k strings,
 * chat templates of tens of KiB; these leave a wide margin and still bound time and memory. */
#define GHDR_MAX_STRING (64ull << 20) /* bytes in one string (key or value) */
#define GHDR_MAX_KV (1ll << 20)       /* key/value pairs */
#define GHDR_MAX_TENSORS (1ll << 24)  /* tensor count claimed in the header */
#define GHDR_MAX_DEPTH 3              /* array nesting: an array of arrays of arrays */
#define GHDR_MAX_ELEMS (1ull << 28)   /* array elements visited one by one, in total */
#define GHDR_WINDOW (64u << 10)       /* file read window */
#define GHDR_KEY_MAX 256              /* longer keys are never interesting: skipped unread */
#define GHDR_MAX_TEMPLATE (1u << 20)  /* a chat template kept by ghdr_read_template */
#define GHDR_TNAME_MAX 128            /* tensor names kept (longer ones are cut: still matched) */
#define GHDR_MAX_DIMS 4               /* GGML_MAX_DIMS */
#define GHDR_MAX_LAYERS 65536         /* layer numbers counted for expert_layers */
#define GHDR_DEFAULT_ALIGN 32         /* GGUF_DEFAULT_ALIGNMENT */

enum {
  T_UINT8 = 0,
  T_INT8,
  T_UINT16,
  T_INT16,
  T_UINT32,
  T_INT32,
  T_FLOAT32,
  T_BOOL,
  T_STRING,
  T_ARRAY,
  T_UINT64,
  T_INT64,
  T_FLOAT64,
  T_COUNT
};

static const char *const type_names[T_COUNT] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                "int32",  "float32", "bool",   "string", "array",
                                                "uint64", "int64",   "float64"};

/* Bytes of one value of a fixed-size type; 0 for string and array. */
static size_t type_size(unsigned t) {
  switch (t) {
    case T_UINT8:
    case T_INT8:
    case T_BOOL:
      return 1;
    case T_UINT16:
    case T_INT16:
      return 2;
    case T_UINT32:
    case T_INT32:
    case T_FLOAT32:
      return 4;
    case T_UINT64:
    case T_INT64:
    case T_FLOAT64:
      return 8;
    default:
      return 0;
  }
}

/* ---- the reader ---------------------------------------------------------------------------- */

typedef struct ghdr_rd {
  FILE *f;                  /* NULL: memory mode, the window is the whole buffer */
  const unsigned char *win; /* window: bytes [win_off, win_off + win_len) of the input */
  unsigned long long win_off;
  size_t win_len;
  unsigned long long off;  /* logical position */
  unsigned long long size; /* input size */
  unsigned long long fpos; /* where the FILE's position is */
  unsigned char *store;    /* file mode: the window's storage (GHDR_WINDOW bytes) */
} ghdr_rd;

static unsigned long long rd_left(const ghdr_rd *r) { return r->size - r->off; }

/* Copy n bytes at the position into dst and advance. -1 when the input ends first or on I/O
 * error; *io tells which. */
static int rd_read(ghdr_rd *r, void *dst, size_t n, int *io) {
  unsigned char *d = dst;
  *io = 0;
  if ((unsigned long long)n > rd_left(r)) return -1;
  while (n > 0) {
    if (r->off >= r->win_off && r->off < r->win_off + r->win_len) {
      size_t at = (size_t)(r->off - r->win_off);
      size_t k = r->win_len - at;
      if (k > n) k = n;
      memcpy(d, r->win + at, k);
      d += k, n -= k, r->off += k;
      continue;
    }
    if (!r->f) return -1; /* memory mode: unreachable, the window is the whole buffer */
    if (r->fpos != r->off) {
      if (r->off > (unsigned long long)INT64_MAX || fseeko(r->f, (off_t)r->off, SEEK_SET) != 0) {
        *io = 1;
        return -1;
      }
      r->fpos = r->off;
    }
    unsigned long long want = rd_left(r);
    if (want > GHDR_WINDOW) want = GHDR_WINDOW;
    size_t got = fread(r->store, 1, (size_t)want, r->f);
    r->fpos += got;
    if (got == 0) { /* the file shrank under us, or a read error */
      *io = 1;
      return -1;
    }
    r->win = r->store;
    r->win_off = r->off;
    r->win_len = got;
  }
  return 0;
}

/* Advance n bytes without reading them; -1 when fewer remain. */
static int rd_skip(ghdr_rd *r, unsigned long long n) {
  if (n > rd_left(r)) return -1;
  r->off += n;
  return 0;
}

/* ---- the parser ---------------------------------------------------------------------------- */

enum { F_CTX, F_EMBD, F_BLOCKS, F_POOL, F_EXPERTS, F_N };
static const char *const arch_suffix[F_N] = {".context_length", ".embedding_length", ".block_count",
                                             ".pooling_type", ".expert_count"};
#define CAND_MAX 8

/* "<arch>.context_length" and friends may come before general.architecture, so integer values of
 * keys with these suffixes are kept, by prefix, and matched against the architecture at the end. */
typedef struct cand {
  char prefix[64];
  long long v;
} cand;

typedef struct ghdr_parser {
  ghdr_rd r;
  ghdr_info *out;
  char *err;
  size_t errlen;
  unsigned long long elems; /* array elements visited one by one */
  long long kv;             /* index of the pair being read, for messages */
  char key[GHDR_KEY_MAX];   /* its key ("" when too long to be interesting) */
  cand cands[F_N][CAND_MAX];
  int n_cands[F_N];
  char **tmpl; /* ghdr_read_template: where the chat template goes; NULL: skip it */
  unsigned long long alignment; /* general.alignment (0: absent) */
} ghdr_parser;

__attribute__((format(printf, 2, 3))) static int fail(ghdr_parser *p, const char *fmt, ...) {
  if (!p->err || p->errlen == 0) return -1;
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (p->kv >= 0)
    snprintf(p->err, p->errlen, "%s (key/value %lld%s%s%s, offset %llu)", what, p->kv,
             p->key[0] ? " '" : "", p->key, p->key[0] ? "'" : "", p->r.off);
  else
    snprintf(p->err, p->errlen, "%s (offset %llu)", what, p->r.off);
  return -1;
}

static int read_bytes(ghdr_parser *p, void *dst, size_t n, const char *what) {
  int io;
  if (rd_read(&p->r, dst, n, &io) == 0) return 0;
  return io ? fail(p, "read error in %s", what) : fail(p, "truncated: file ends in %s", what);
}

static int skip_bytes(ghdr_parser *p, unsigned long long n, const char *what) {
  if (rd_skip(&p->r, n) == 0) return 0;
  return fail(p, "truncated: %s runs %llu bytes past the end of the file", what,
              n - rd_left(&p->r));
}

static int read_u32(ghdr_parser *p, uint32_t *v, const char *what) {
  unsigned char b[4];
  if (read_bytes(p, b, 4, what)) return -1;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return 0;
}

static int read_u64(ghdr_parser *p, uint64_t *v, const char *what) {
  unsigned char b[8];
  if (read_bytes(p, b, 8, what)) return -1;
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--) x = x << 8 | b[i];
  *v = x;
  return 0;
}

/* Read a string's length and check it against the limit and the bytes left. */
static int read_strlen(ghdr_parser *p, uint64_t *len, const char *what) {
  if (read_u64(p, len, what)) return -1;
  if (*len > GHDR_MAX_STRING)
    return fail(p, "%s length %llu exceeds the %llu-byte limit", what, (unsigned long long)*len,
                GHDR_MAX_STRING);
  if (*len > rd_left(&p->r))
    return fail(p, "truncated: %s of %llu bytes runs past the end of the file", what,
                (unsigned long long)*len);
  return 0;
}

/* Read a string value into buf (NUL-terminated, cut to cap - 1 bytes; the rest is skipped).
 * *full_len gets its length in the file. */
static int read_str(ghdr_parser *p, char *buf, size_t cap, uint64_t *full_len) {
  uint64_t len;
  if (read_strlen(p, &len, "string")) return -1;
  size_t keep = len < cap ? (size_t)len : cap - 1;
  if (read_bytes(p, buf, keep, "string")) return -1;
  buf[keep] = '\0';
  *full_len = len;
  return skip_bytes(p, len - keep, "string");
}

/* Skip one value of type t; depth counts enclosing arrays. */
static int skip_value(ghdr_parser *p, uint32_t t, int depth) {
  if (t >= T_COUNT) return fail(p, "unknown value type %u", t);
  size_t sz = type_size(t);
  if (sz) return skip_bytes(p, sz, type_names[t]);
  uint64_t len;
  if (t == T_STRING) {
    if (read_strlen(p, &len, "string")) return -1;
    return skip_bytes(p, len, "string");
  }
  /* an array: element type, count, elements */
  if (depth >= GHDR_MAX_DEPTH)
    return fail(p, "arrays nested deeper than %d levels", GHDR_MAX_DEPTH);
  uint32_t et;
  uint64_t n;
  if (read_u32(p, &et, "array type") || read_u64(p, &n, "array length")) return -1;
  if (et >= T_COUNT) return fail(p, "unknown array element type %u", et);
  size_t esz = type_size(et);
  /* Every element takes at least min bytes, so a count above left / min cannot be true; checking
   * it first also keeps n * esz from overflowing and the loops below from running long. */
  size_t min = esz ? esz : et == T_STRING ? 8 : 12;
  if (n > rd_left(&p->r) / min)
    return fail(p, "array of %llu %s elements is larger than the rest of the file",
                (unsigned long long)n, type_names[et]);
  if (esz) return skip_bytes(p, n * esz, "array");
  if (n > GHDR_MAX_ELEMS - p->elems)
    return fail(p, "more than %llu array elements in the header", GHDR_MAX_ELEMS);
  p->elems += n;
  for (uint64_t i = 0; i < n; i++)
    if (skip_value(p, et, depth + 1)) return -1;
  return 0;
}

/* Read an integer value of any integer type (bool too) into *v, clamped to long long. Returns 1
 * if t is an integer type and was read, 0 if t is not (nothing read), -1 on error. */
static int read_int(ghdr_parser *p, uint32_t t, long long *v) {
  size_t sz = type_size(t);
  if (!sz || t == T_FLOAT32 || t == T_FLOAT64) return 0;
  unsigned char b[8];
  if (read_bytes(p, b, sz, type_names[t])) return -1;
  uint64_t u = 0;
  for (size_t i = sz; i-- > 0;) u = u << 8 | b[i];
  bool is_signed = t == T_INT8 || t == T_INT16 || t == T_INT32 || t == T_INT64;
  if (is_signed && sz < 8 && (u >> (sz * 8 - 1)) & 1) u |= ~0ull << (sz * 8); /* sign-extend */
  if (is_signed)
    *v = u <= (uint64_t)INT64_MAX ? (long long)u : -(long long)(~u) - 1;
  else
    *v = u > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)u;
  return 1;
}

static bool ends_with(const char *s, size_t n, const char *suf, size_t *prefix_len) {
  size_t k = strlen(suf);
  if (n < k || memcmp(s + n - k, suf, k) != 0) return false;
  *prefix_len = n - k;
  return true;
}

/* Read the value of the current pair (type t), keeping it if the key is one ghdr_info holds. */
static int read_value(ghdr_parser *p, uint32_t t) {
  ghdr_info *o = p->out;
  const char *k = p->key;
  size_t kn = strlen(k);
  if (kn >= 5 && memcmp(k, "clip.", 5) == 0) o->is_mmproj = true;
  if (t == T_STRING) {
    uint64_t len;
    char tmp[16];
    if (!strcmp(k, "general.architecture")) return read_str(p, o->arch, sizeof o->arch, &len);
    if (!strcmp(k, "general.name")) return read_str(p, o->name, sizeof o->name, &len);
    if (!strcmp(k, "clip.projector_type") || !strcmp(k, "clip.vision.projector_type"))
      return read_str(p, o->projector_type, sizeof o->projector_type, &len);
    if (!strcmp(k, "general.type")) {
      if (read_str(p, tmp, sizeof tmp, &len)) return -1;
      if (len == 6 && !strcmp(tmp, "mmproj")) o->is_mmproj = true;
      if (len == 7 && !strcmp(tmp, "adapter")) o->is_adapter = true;
      return 0;
    }
    if (!strcmp(k, "tokenizer.chat_template")) {
      if (read_strlen(p, &len, "string")) return -1;
      o->has_chat_template = len > 0;
      if (!p->tmpl || *p->tmpl || len > GHDR_MAX_TEMPLATE) return skip_bytes(p, len, "string");
      char *text = malloc((size_t)len + 1);
      if (!text) return fail(p, "out of memory");
      if (read_bytes(p, text, (size_t)len, "string")) {
        free(text);
        return -1;
      }
      text[len] = '\0';
      *p->tmpl = text;
      return 0;
    }
    return skip_value(p, t, 0);
  }
  if (t == T_ARRAY || t >= T_COUNT) return skip_value(p, t, 0);
  long long v;
  int r = read_int(p, t, &v);
  if (r < 0) return -1;
  if (r == 0) return skip_value(p, t, 0); /* a float */
  if (!strcmp(k, "clip.has_vision_encoder") || !strcmp(k, "clip.has_audio_encoder")) {
    *(k[9] == 'v' ? &o->has_vision_encoder : &o->has_audio_encoder) = v != 0;
    return 0;
  }
  if (!strcmp(k, "general.alignment")) {
    p->alignment = v > 0 && v <= (1 << 20) ? (unsigned long long)v : 0;
    return 0;
  }
  if (!strcmp(k, "general.file_type")) {
    o->file_type = v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
    return 0;
  }
  if (t == T_BOOL && !strcmp(k, "clip.has_gen_audio_encoder")) {
    o->gen_audio = v != 0;
    return 0;
  }
  for (int f = 0; f < F_N; f++) {
    size_t pl;
    if (!ends_with(k, kn, arch_suffix[f], &pl) || pl == 0 || pl >= sizeof p->cands[f][0].prefix)
      continue;
    if (p->n_cands[f] < CAND_MAX) {
      cand *c = &p->cands[f][p->n_cands[f]++];
      memcpy(c->prefix, k, pl);
      c->prefix[pl] = '\0';
      c->v = v;
    }
  }
  return 0;
}

static void info_init(ghdr_info *o) {
  memset(o, 0, sizeof *o);
  o->pooling_type = -1;
  o->file_type = -1;
  o->has_vision_encoder = -1;
  o->has_audio_encoder = -1;
  o->expert_bytes = -1;
}

/* An expert tensor's name ("blk.N.ffn_up_exps.weight", ".ffn_gate_up_chexps.", ...): its layer N
 * (>= 0), else -1. */
static long expert_layer(const char *name) {
  static const char *const kinds[] = {"up", "down", "gate", "gate_up"};
  if (strncmp(name, "blk.", 4) != 0) return -1;
  char *end = NULL;
  long il = strtol(name + 4, &end, 10);
  if (end == name + 4 || il < 0 || strncmp(end, ".ffn_", 5) != 0) return -1;
  const char *rest = end + 5;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    size_t n = strlen(kinds[i]);
    if (strncmp(rest, kinds[i], n) != 0) continue;
    if (!strncmp(rest + n, "_exps.", 6) || !strncmp(rest + n, "_chexps.", 8)) return il;
  }
  return -1;
}

/* The tensor infos (name, n_dims, dims, type, offset each): the experts' bytes are the gaps
 * between consecutive offsets (the writer lays tensors out in table order), the last one's up to
 * the end of the file. Anything it cannot follow (offsets out of order or past the end, a cut
 * table) leaves expert_bytes at -1; errors here never fail the read. */
static void scan_experts(ghdr_parser *p) {
  ghdr_info *o = p->out;
  char *saved_err = p->err;
  p->err = NULL; /* fail() writes nothing: a give-up here is not an error */
  unsigned char *seen = calloc(GHDR_MAX_LAYERS / 8, 1);
  long long sum = 0;
  int layers = 0;
  unsigned long long prev_off = 0;
  long prev_layer = -1;
  bool ok = seen != NULL;
  for (long long i = 0; ok && i < o->n_tensors; i++) {
    char name[GHDR_TNAME_MAX];
    uint64_t len, off, dim;
    uint32_t nd, type;
    if (read_str(p, name, sizeof name, &len) || read_u32(p, &nd, "n_dims") || nd > GHDR_MAX_DIMS) {
      ok = false;
      break;
    }
    for (uint32_t d = 0; ok && d < nd; d++) ok = read_u64(p, &dim, "dim") == 0;
    if (!ok || read_u32(p, &type, "type") || read_u64(p, &off, "offset") ||
        (i > 0 && off < prev_off)) {
      ok = false;
      break;
    }
    if (prev_layer >= 0) sum += (long long)(off - prev_off);
    prev_off = off;
    prev_layer = expert_layer(name);
    if (prev_layer >= 0 && prev_layer < GHDR_MAX_LAYERS &&
        !(seen[prev_layer / 8] & (1u << (prev_layer % 8)))) {
      seen[prev_layer / 8] |= (unsigned char)(1u << (prev_layer % 8));
      layers++;
    }
  }
  if (ok && o->n_tensors > 0) {
    unsigned long long align = p->alignment ? p->alignment : GHDR_DEFAULT_ALIGN;
    unsigned long long data = (p->r.off + align - 1) / align * align;
    if (data > p->r.size || prev_off > p->r.size - data)
      ok = false;
    else if (prev_layer >= 0)
      sum += (long long)(p->r.size - data - prev_off);
  }
  if (ok) {
    o->expert_bytes = o->n_tensors > 0 ? sum : 0;
    o->expert_layers = layers;
  }
  free(seen);
  p->err = saved_err;
}

static int parse(ghdr_parser *p) {
  ghdr_info *o = p->out;
  p->kv = -1;

  unsigned char magic[4];
  if (p->r.size < 4) return fail(p, "not a GGUF file: %llu bytes, too short", p->r.size);
  if (read_bytes(p, magic, 4, "magic")) return -1;
  if (memcmp(magic, "GGUF", 4) != 0) return fail(p, "not a GGUF file: bad magic");
  uint32_t ver;
  if (read_u32(p, &ver, "version")) return -1;
  if (ver == 0x02000000u || ver == 0x03000000u) return fail(p, "big-endian GGUF is not supported");
  if (ver == 1) return fail(p, "GGUF version 1 is not supported (only 2 and 3)");
  if (ver != 2 && ver != 3) return fail(p, "unsupported GGUF version %u (only 2 and 3)", ver);
  o->version = ver;
  uint64_t nt, nkv;
  if (read_u64(p, &nt, "tensor count") || read_u64(p, &nkv, "key/value count")) return -1;
  if (nt > (uint64_t)GHDR_MAX_TENSORS)
    return fail(p, "tensor count %llu is absurd (limit %lld)", (unsigned long long)nt,
                GHDR_MAX_TENSORS);
  if (nkv > (uint64_t)GHDR_MAX_KV)
    return fail(p, "key/value count %llu is absurd (limit %lld)", (unsigned long long)nkv,
                GHDR_MAX_KV);
  o->n_tensors = (long long)nt;
  o->n_kv = (long long)nkv;

  for (p->kv = 0; p->kv < o->n_kv; p->kv++) {
    p->key[0] = '\0';
    uint64_t klen;
    if (read_strlen(p, &klen, "key")) return -1;
    if (klen < sizeof p->key) {
      if (read_bytes(p, p->key, (size_t)klen, "key")) return -1;
      p->key[klen] = '\0';
      if (strlen(p->key) != klen) p->key[0] = '\0'; /* a NUL inside: matches nothing */
    } else if (skip_bytes(p, klen, "key")) {
      return -1;
    }
    uint32_t t;
    if (read_u32(p, &t, "value type")) return -1;
    if (t >= T_COUNT) return fail(p, "unknown value type %u", t);
    if (read_value(p, t)) return -1;
  }
  p->kv = -1;
  if (!strcmp(o->arch, "clip")) o->is_mmproj = true;

  long long *dst[F_N] = {&o->context_length, &o->embedding_length, &o->block_count, NULL,
                         &o->expert_count};
  for (int f = 0; f < F_N; f++)
    for (int i = 0; i < p->n_cands[f]; i++) {
      if (strcmp(p->cands[f][i].prefix, o->arch) != 0) continue;
      long long v = p->cands[f][i].v;
      if (dst[f])
        *dst[f] = v < 0 ? 0 : v;
      else
        o->pooling_type = v < 0 || v > INT_MAX ? -1 : (int)v;
      break;
    }
  scan_experts(p);
  return 0;
}

/* Parse buf (memory mode); the template into *tmpl when tmpl is not NULL. */
static int parse_mem(const unsigned char *buf, size_t len, ghdr_info *out, char **tmpl, char *err,
                     size_t errlen) {
  info_init(out);
  ghdr_parser *p = calloc(1, sizeof *p);
  if (!p) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return -1;
  }
  p->r.win = buf;
  p->r.win_len = buf ? len : 0;
  p->r.size = buf ? len : 0;
  p->out = out;
  p->err = err;
  p->errlen = errlen;
  p->tmpl = tmpl;
  int rc = parse(p);
  free(p);
  return rc;
}

/* Parse the file at path; the template into *tmpl when tmpl is not NULL. */
static int parse_file(const char *path, ghdr_info *out, char **tmpl, char *err, size_t errlen) {
  info_init(out);
  /* O_NONBLOCK so a FIFO planted in a models folder cannot hang the open; only regular files
   * are read. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (err && errlen) snprintf(err, errlen, "cannot open: %s", strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (err && errlen) snprintf(err, errlen, "not a regular file");
    close(fd);
    return -1;
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    if (err && errlen) snprintf(err, errlen, "cannot open: %s", strerror(errno));
    close(fd);
    return -1;
  }
  ghdr_parser *p = calloc(1, sizeof *p);
  unsigned char *store = malloc(GHDR_WINDOW);
  int rc = -1;
  if (!p || !store) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
    goto out;
  }
  p->r.f = f;
  p->r.store = store;
  p->r.win = store;
  p->r.size = (unsigned long long)st.st_size;
  p->out = out;
  p->err = err;
  p->errlen = errlen;
  p->tmpl = tmpl;
  rc = parse(p);
out:
  free(store);
  free(p);
  fclose(f);
  return rc;
}

int ghdr_parse_info(const unsigned char *buf, size_t len, ghdr_info *out, char *err,
                    size_t errlen) {
  return parse_mem(buf, len, out, NULL, err, errlen);
}

int ghdr_read_info(const char *path, ghdr_info *out, char *err, size_t errlen) {
  return parse_file(path, out, NULL, err, errlen);
}

/* The template taken from a parse: kept on success, freed on failure. */
static int template_of(int rc, char **tmpl) {
  if (rc != 0) {
    free(*tmpl);
    *tmpl = NULL;
  }
  return rc;
}

int ghdr_read_template(const char *path, char **tmpl, char *err, size_t errlen) {
  ghdr_info gi;
  *tmpl = NULL;
  return template_of(parse_file(path, &gi, tmpl, err, errlen), tmpl);
}

int ghdr_parse_template(const unsigned char *buf, size_t len, char **tmpl, char *err,
                        size_t errlen) {
  ghdr_info gi;
  *tmpl = NULL;
  return template_of(parse_mem(buf, len, &gi, tmpl, err, errlen), tmpl);
}
