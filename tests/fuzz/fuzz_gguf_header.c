/* fuzz_gguf_header.c — libFuzzer target for src/daemon/config/gguf_header.c (built by
 * `make fuzz`): the bounded GGUF header reader the daemon runs on every model and projector file
 * it is given, discovers or pulls (hostile files). Input: the file's bytes, read by
 * ghdr_parse_info and ghdr_parse_template. Invariants are checked with abort(): every string
 * ghdr_info holds is NUL-terminated inside its buffer, a header that parsed has counts that are
 * not negative, a template comes back only on success and is never longer than the input. Seeds:
 * tests/fuzz/corpus/fuzz_gguf_header/ and the first 64 KiB of each test model
 * (tests/fuzz/seeds.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/gguf_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ghdr_info gi;
  char err[256] = "", *tmpl;
  int rc = ghdr_parse_info(data, size, &gi, err, sizeof err);
  if (!memchr(err, '\0', sizeof err)) abort();
  if (rc == 0) {
    if (!memchr(gi.arch, '\0', sizeof gi.arch) || !memchr(gi.name, '\0', sizeof gi.name) ||
        !memchr(gi.projector_type, '\0', sizeof gi.projector_type))
      abort();
    if (gi.n_tensors < 0 || gi.n_kv < 0 || gi.context_length < 0 || gi.block_count < 0) abort();
  }
  rc = ghdr_parse_template(data, size, &tmpl, err, sizeof err);
  if (rc != 0 && tmpl) abort();
  if (tmpl && strlen(tmpl) > size) abort();
  free(tmpl);
  return 0;
}
