/* fuzz_gguf_header.c — libFuzzer target for src/daemon/config/gguf_header.c (built by `make fuzz`):
 * a GGUF file's header is outside input (a models folder, a pull). The input is the file's bytes,
 * read by ghdr_parse_info and ghdr_parse_template. Invariants are checked with abort(): counts are
 * never negative, the strings are terminated inside their fields, a template comes back only on
 * success, and it is never longer than the input. Seeds: the first 64 KiB of each test model
 * (tests/fuzz/seeds.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/gguf_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ghdr_info gi;
  char err[256], *tmpl;
  if (ghdr_parse_info(data, size, &gi, err, sizeof err) == 0) {
    if (gi.n_tensors < 0 || gi.n_kv < 0 || gi.context_length < 0 || gi.block_count < 0) abort();
    if (memchr(gi.arch, '\0', sizeof gi.arch) == NULL) abort();
    if (memchr(gi.name, '\0', sizeof gi.name) == NULL) abort();
  } else if (memchr(err, '\0', sizeof err) == NULL) {
    abort();
  }
  int rc = ghdr_parse_template(data, size, &tmpl, err, sizeof err);
  if (rc != 0 && tmpl) abort();
  if (tmpl && strlen(tmpl) > size) abort();
  free(tmpl);
  return 0;
}
