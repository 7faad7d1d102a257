/* base64.h — base64 for the daemon: strict decoding of what clients send, standard encoding of
 * what it sends back. Pure, unit-tested (tests/unit/test_image.c). */
#ifndef SY_BASE64_H
#define SY_BASE64_H

#include <stddef.h>

/* Strict base64, as data: URLs are read (standard alphabet, '=' padding optional, \r \n
 * skipped), at most max_out bytes ("... is larger than" error beyond). 0 and a malloc'd *out, or
 * -1 with err. Also used for input_audio's data. */
int sy_base64_decode(const char *in, size_t n, size_t max_out, unsigned char **out, size_t *out_len,
                     char *err, size_t err_len);
/* Standard base64 with '=' padding of n bytes: a malloc'd NUL-ended string, or NULL (out of
 * memory). */
char *sy_base64_encode(const void *in, size_t n);

#endif
