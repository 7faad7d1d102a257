/* pull_ref.h — the pure part of `switchyard pull` (prefix pull_): what a model reference means,
 * which of a hub repo's files a quantisation tag picks, what a registry manifest names, and the
 * checks every string from a server passes before it is used (digests to their exact format, file
 * names to one safe path component, sizes bounded). No I/O, no allocation but jansson's while
 * parsing; everything here is unit-tested (tests/unit/test_pull_ref.c) and fuzzed
 * (tests/fuzz/fuzz_pull.c). Thread-safe: no state. */
#ifndef SY_PULL_REF_H
#define SY_PULL_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PULL_MAX_FILES 4096     /* entries of a repo's file list looked at */
#define PULL_MAX_PICK 64        /* files one pull may fetch (a split model's parts + mmproj) */
#define PULL_MAX_NAME 200       /* a file name in the models folder */
#define PULL_MAX_PATH 512       /* a file's path inside a hub repo */
#define PULL_MAX_LIST (8 << 20) /* bytes of a file list or manifest accepted */
#define PULL_MAX_FILE_BYTES (1LL << 41) /* 2 TiB: larger sizes from a server are refused */

typedef enum { PULL_HF_QUANT, PULL_HF_FILE, PULL_REGISTRY } pull_kind;

typedef struct pull_ref {
  pull_kind kind;
  char org[97], repo[97];       /* hub: org/repo; registry: namespace/name */
  char tag[65];                 /* hub quant tag ("Q4_K_M"), or the registry tag ("latest") */
  char file[PULL_MAX_PATH + 1]; /* PULL_HF_FILE: the file's path in the repo */
} pull_ref;

/* One file to fetch. */
typedef struct pull_file {
  char path[PULL_MAX_PATH + 1]; /* hub: path in the repo; registry: the layer's digest */
  char sha256[65];              /* lowercase hex, "" when the server gave none */
  long long size;               /* -1 when unknown */
  bool mmproj;
} pull_file;

/* Parse s: "hf.co/ORG/REPO[:QUANT]" (also "huggingface.co/..."), "hf.co/ORG/REPO/PATH.gguf",
 * or a registry's "[NAMESPACE/]NAME[:TAG]" (namespace "library", tag "latest" by default). A hub
 * reference without a quant tag means Q4_K_M (as Ollama and llama.cpp's -hf do). 0, or -1 with a
 * message in err. */
int pull_ref_parse(const char *s, pull_ref *out, char *err, size_t errlen);

/* "sha256:" followed by exactly 64 lowercase hex digits. */
bool pull_digest_ok(const char *s);
/* exactly 64 hex digits (either case), e.g. an ETag's or an LFS oid's */
bool pull_hex64_ok(const char *s, size_t len);

/* The last component of path as a file name safe to create in the models folder: letters,
 * digits, '.', '-', '_' and '+' only (others become '_'), no leading '.', ends in ".gguf", at most
 * PULL_MAX_NAME bytes. A path with "..", a backslash, a control byte or an empty component is
 * refused (-1), never repaired. 0 on success. */
int pull_safe_name(const char *path, char *out, size_t cap);

/* A split GGUF's part: "STEM-00002-of-00005.gguf" → index 2, count 5, stem_len = strlen(STEM).
 * false when the name is not a part (or the numbers are 0, or index > count). */
bool pull_split_of(const char *name, int *index, int *count, size_t *stem_len);

/* Whether a file name (any path's last component) is a multimodal projector ("mmproj"). */
bool pull_is_mmproj(const char *path);

/* A hub's file list (GET /api/models/ORG/REPO/tree/main?recursive=true: a JSON array of
 * {"type":"file","path","size","lfs":{"oid","size"}}) into files (at most max; *n set). Entries
 * that are not .gguf files are skipped; a bad path, size or oid skips the entry too. 0, or -1 with
 * err when the body is not such an array. */
int pull_hf_list_parse(const char *body, size_t len, pull_file *files, size_t max, size_t *n,
                       char *err, size_t errlen);

/* The files quant picks among files: the one model file whose name carries the tag (a whole split
 * group when the model is split: every part 1..N present), plus the repo's projector when it has
 * one (an F16 one preferred). Indexes into pick (at most PULL_MAX_PICK), the model's first.
 * Returns the count, or -1 with err (no match, ambiguous, incomplete split). */
int pull_hf_pick(const pull_file *files, size_t n, const char *quant, size_t *pick, char *err,
                 size_t errlen);

/* A registry manifest (Docker distribution v2 as Ollama's registry serves it: {"layers":
 * [{"mediaType","digest","size"}]}) into its model layer (files[0]) and projector layer, if any
 * (files[1]); *n set. Every digest is checked with pull_digest_ok. 0, or -1 with err. */
int pull_manifest_parse(const char *body, size_t len, pull_file files[2], size_t *n, char *err,
                        size_t errlen);

#endif
