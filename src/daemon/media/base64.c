/* base64.c — base64 both ways (base64.h): strict decoding of what clients send (data: URLs,
 * input_audio data, a speech request's reference clip) and encoding of what the daemon sends
 * (audio in a voice turn's SSE, embeddings as base64). Moved out of image.c, its first user.
 * The input is hostile: at most max_out bytes are produced, anything outside the alphabet is
 * refused. Exports sy_base64_*. */
#include "media/base64.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The error messages here hold no client bytes (a character is shown as 0x%02x), so unlike
 * image.c's set_err nothing needs cleaning. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t err_len,
                                                          const char *fmt, ...) {
  if (!err || !err_len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
}

/* Strict RFC 4648 base64 (standard alphabet): '=' padding optional but only at the end, line
 * breaks (\r, \n) skipped, anything else refused; at most max_out bytes are produced. */
static const unsigned char b64_tab[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64, 64, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

int sy_base64_decode(const char *in, size_t n, size_t max_out, unsigned char **out, size_t *out_len,
                     char *err, size_t err_len) {
  const unsigned char *s = (const unsigned char *)in;
  size_t cap = n / 4 * 3 + 3;
  if (cap > max_out) cap = max_out;
  unsigned char *o = malloc(cap ? cap : 1);
  if (!o) {
    set_err(err, err_len, "out of memory");
    return -1;
  }
  size_t len = 0, i = 0, pad = 0;
  uint32_t acc = 0;
  int nacc = 0;
  while (i < n) {
    /* Fast path: four plain characters on a quad boundary. */
    if (nacc == 0 && n - i >= 4 && len + 3 <= cap) {
      unsigned a = b64_tab[s[i]], b = b64_tab[s[i + 1]], c = b64_tab[s[i + 2]],
               d = b64_tab[s[i + 3]];
      if ((a | b | c | d) < 64) {
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        o[len] = (unsigned char)(v >> 16);
        o[len + 1] = (unsigned char)(v >> 8);
        o[len + 2] = (unsigned char)v;
        len += 3;
        i += 4;
        continue;
      }
    }
    unsigned char ch = s[i];
    unsigned v = b64_tab[ch];
    if (v < 64) {
      if (pad) goto bad_pad;
      acc = acc << 6 | v;
      if (++nacc == 4) {
        if (len + 3 > cap) goto too_big;
        o[len++] = (unsigned char)(acc >> 16);
        o[len++] = (unsigned char)(acc >> 8);
        o[len++] = (unsigned char)acc;
        acc = 0;
        nacc = 0;
      }
    } else if (ch == '=') {
      if (nacc < 2 || ++pad + (size_t)nacc > 4) goto bad_pad;
    } else if (ch != '\n' && ch != '\r') {
      free(o);
      set_err(err, err_len, "invalid base64: character 0x%02x at offset %zu", ch, i);
      return -1;
    }
    i++;
  }
  if (pad && pad + (size_t)nacc != 4) goto bad_pad;
  if (nacc == 1) goto bad_pad;
  if (nacc >= 2) {
    size_t k = (size_t)nacc - 1; /* 2 chars → 1 byte, 3 → 2 */
    /* the unused low bits must be zero (a canonical encoding) */
    if (acc & ((1u << (nacc == 2 ? 4 : 2)) - 1)) goto bad_pad;
    acc <<= 6 * (4 - nacc);
    if (len + k > cap) goto too_big;
    o[len++] = (unsigned char)(acc >> 16);
    if (k == 2) o[len++] = (unsigned char)(acc >> 8);
  }
  *out = o;
  *out_len = len;
  return 0;
bad_pad:
  free(o);
  set_err(err, err_len, "invalid base64: bad length or padding");
  return -1;
too_big:
  free(o);
  set_err(err, err_len, "image file is larger than %zu bytes", max_out);
  return -1;
}

char *sy_base64_encode(const void *in, size_t n) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = in;
  char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
  if (!out) return NULL;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    *o++ = t[v >> 18], *o++ = t[(v >> 12) & 63], *o++ = t[(v >> 6) & 63], *o++ = t[v & 63];
  }
  if (i < n) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
    *o++ = t[v >> 18], *o++ = t[(v >> 12) & 63];
    *o++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return out;
}
