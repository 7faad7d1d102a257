/* fuzz_gguf.c — libFuzzer target for src/daemon/config/gguf_header.c (built by `make fuzz`): the
 * whole input is a GGUF file's bytes, read by ghdr_parse_info (the key/value section and the
 * tensor infos the experts' size comes from). Invariants are checked with abort(): a header that
 * reads has counts within the file's size, no negative expert bytes but the -1 of "unknown", and
 * never more expert bytes than the file. No seed corpus: libFuzzer's comparison tracing finds
 * the magic and the structure from nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config/gguf_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ghdr_info gi;
  char err[256];
  if (ghdr_parse_info(data, size, &gi, err, sizeof err) != 0) return 0;
  if (gi.n_tensors < 0 || gi.n_kv < 0 || gi.expert_count < 0 || gi.expert_layers < 0) abort();
  if (gi.expert_bytes < -1 || gi.expert_bytes > (long long)size) abort();
  return 0;
}
