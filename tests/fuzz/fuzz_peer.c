/* fuzz_peer.c — libFuzzer target for what a peer sends about itself (src/daemon/engines/
 * peer_offer.c): any bytes as a peer's GET /v1/models answer and GET /api/ps answer (the input
 * split at its first NUL byte; without one, no /api/ps), parsed with every filter the config can
 * ask for (all models, a list of names), then looked up by name as a request's "model" would be.
 * A peer's answer is outside input: refusals are fine; a crash, a sanitizer report, a leak or a
 * hang is a bug. Built and run by `make fuzz`; seeds in tests/fuzz/corpus/fuzz_peer/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engines/peer_offer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *body = (const char *)data;
  const char *nul = memchr(body, '\0', size);
  size_t mlen = nul ? (size_t)(nul - body) : size;
  const char *ps = nul ? nul + 1 : NULL;
  size_t plen = nul ? size - mlen - 1 : 0;
  static char *want[] = {"chat", "c", "pick"};
  for (int all = 0; all < 2; all++) {
    peer_offer o;
    char why[256];
    if (peer_offer_parse(body, mlen, ps, plen, "b", all, want, 3, &o, why, sizeof why) == 0) {
      (void)peer_offer_has(&o, "chat");
      (void)peer_offer_entry(&o, "c");
      (void)peer_offer_entry(&o, "pick");
    }
    peer_offer_clear(&o);
  }
  return 0;
}
