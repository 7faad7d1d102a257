/* fuzz_endpoint.c — libFuzzer target for src/common/endpoint.c (built by `make fuzz`): RPC server
 * endpoints from the matrix (`rpc:`) and the load message, and addresses `switchyard rpc-server`
 * checks. Input: text (cut at the first NUL). Invariants, checked with abort(): an accepted
 * endpoint's host is 1..253 characters of letters, digits, '.' and '-', its port 1..65535, and
 * host ":" port prints back to the input exactly (ggml reads the same endpoint we checked); an
 * address's scope is one of the four values. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  char host[SY_ENDPOINT_HOST_MAX + 1], err[256], back[SY_ENDPOINT_MAX + 8];
  int port = 0;
  if (sy_endpoint_parse(s, host, sizeof host, &port, err, sizeof err) == 0) {
    size_t hl = strlen(host);
    if (hl < 1 || hl > SY_ENDPOINT_HOST_MAX || port < 1 || port > 65535) abort();
    for (size_t i = 0; i < hl; i++)
      if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
            (host[i] >= '0' && host[i] <= '9') || host[i] == '.' || host[i] == '-'))
        abort();
    snprintf(back, sizeof back, "%s:%d", host, port);
    if (strcmp(back, s) != 0) abort();
  }
  enum sy_addr_scope sc = sy_addr_scope_numeric(s);
  if (sc != SY_ADDR_INVALID && sc != SY_ADDR_LOOPBACK && sc != SY_ADDR_PRIVATE &&
      sc != SY_ADDR_PUBLIC)
    abort();
  free(s);
  return 0;
}
