/* fuzz_gguf_header.c — libFuzzer target for src/daemon/config/gguf_header.c (built by
 * `make fuzz`): the bounded GGUF header reader the daemon runs on every model and projector file
 * it is given or discovers (hostile files). Input: the file's bytes. Invariants are checked with
 * abort(): every string ghdr_info holds is NUL-terminated inside its buffer, and a header that
 * parsed has counts that are not negative. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/gguf_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ghdr_info gi;
  char err[256] = "";
  int rc = ghdr_parse_info(data, size, &gi, err, sizeof err);
  if (!memchr(err, '\0', sizeof err)) abort();
  if (rc != 0) return 0;
  if (!memchr(gi.arch, '\0', sizeof gi.arch) || !memchr(gi.name, '\0', sizeof gi.name) ||
      !memchr(gi.projector_type, '\0', sizeof gi.projector_type))
    abort();
  if (gi.n_tensors < 0 || gi.n_kv < 0) abort();
  return 0;
}
