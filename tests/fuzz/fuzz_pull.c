/* fuzz_pull.c — libFuzzer target for src/daemon/pull/pull_ref.c (built by `make fuzz`).
 * Input: a selector byte, then text. 0: a hub's file list (pull_hf_list_parse), then a quant pick
 * over what it kept with the tag "Q4_K_M"; 1: a registry manifest (pull_manifest_parse); 2: a
 * model reference (pull_ref_parse); 3: a file name (pull_safe_name, pull_split_of,
 * pull_is_mmproj). Invariants are checked with abort(): whatever is accepted has a digest of
 * exactly 64 lowercase hex digits or none, a safe name has no '/', no leading '.', and ends in
 * ".gguf". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pull/pull_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_file(const pull_file *f) {
  size_t n = strlen(f->sha256);
  if (n != 0 && n != 64) abort();
  for (size_t i = 0; i < n; i++)
    if (!((f->sha256[i] >= '0' && f->sha256[i] <= '9') ||
          (f->sha256[i] >= 'a' && f->sha256[i] <= 'f')))
      abort();
  if (f->size < 0 || f->size > PULL_MAX_FILE_BYTES) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int sel = data[0] & 3;
  size_t len = size - 1;
  char *s = malloc(len + 1);
  if (!s) return 0;
  memcpy(s, data + 1, len);
  s[len] = '\0';
  char err[256];
  if (sel == 0) {
    static pull_file files[64];
    size_t n = 0, pick[PULL_MAX_PICK];
    if (pull_hf_list_parse(s, len, files, 64, &n, err, sizeof err) == 0) {
      if (n > 64) abort();
      for (size_t i = 0; i < n; i++) check_file(&files[i]);
      int k = pull_hf_pick(files, n, "Q4_K_M", pick, err, sizeof err);
      for (int i = 0; i < k; i++)
        if (pick[i] >= n) abort();
    }
  } else if (sel == 1) {
    pull_file f[2];
    size_t n = 0;
    if (pull_manifest_parse(s, len, f, &n, err, sizeof err) == 0)
      for (size_t i = 0; i < n; i++) {
        check_file(&f[i]);
        if (!pull_digest_ok(f[i].path)) abort();
      }
  } else if (sel == 2) {
    pull_ref r;
    if (pull_ref_parse(s, &r, err, sizeof err) == 0 &&
        (strstr(r.org, "..") || strstr(r.repo, "..")))
      abort();
  } else {
    char out[PULL_MAX_NAME + 1];
    if (pull_safe_name(s, out, sizeof out) == 0) {
      size_t n = strlen(out);
      if (strchr(out, '/') || out[0] == '.' || n < 6 || strcasecmp(out + n - 5, ".gguf") != 0)
        abort();
    }
    int idx, cnt;
    size_t sl;
    if (pull_split_of(s, &idx, &cnt, &sl) && (idx < 1 || idx > cnt)) abort();
    (void)pull_is_mmproj(s);
  }
  free(s);
  return 0;
}
