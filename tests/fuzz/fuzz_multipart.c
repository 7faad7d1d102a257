/* fuzz_multipart.c — libFuzzer target for src/daemon/http/multipart.c (built by `make fuzz`).
 * Input: a Content-Type line (up to the first '\n'), then the body. The boundary comes from the
 * line when mp_boundary accepts it, else "xyz". Every part's bytes are read back, so ASan sees a
 * part that points outside the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
  char ct[257] = "", boundary[MP_MAX_BOUNDARY + 1];
  size_t off = 0;
  if (nl) {
    memcpy(ct, data, (size_t)(nl - data));
    ct[nl - data] = '\0';
    off = (size_t)(nl - data) + 1;
  }
  if (mp_boundary(ct, boundary, sizeof boundary) != 0) strcpy(boundary, "xyz");
  /* a copy of exactly the body's size: reads past its end are caught */
  size_t len = size - off;
  char *body = malloc(len ? len : 1);
  if (!body) return 0;
  memcpy(body, data + off, len);
  static mp_part parts[MP_MAX_PARTS];
  size_t n = 0;
  char err[256];
  if (mp_parse(body, len, boundary, parts, MP_MAX_PARTS, &n, err, sizeof err) == 0) {
    volatile unsigned sum = 0;
    (void)sum;
    for (size_t i = 0; i < n; i++) {
      for (size_t k = 0; k < parts[i].len; k++) sum += (unsigned char)parts[i].data[k];
      sum += (unsigned)strlen(parts[i].name) + (unsigned)strlen(parts[i].filename) +
             (unsigned)strlen(parts[i].content_type);
    }
    (void)mp_find(parts, n, "file");
  } else {
    (void)strlen(err);
  }
  free(body);
  return 0;
}
