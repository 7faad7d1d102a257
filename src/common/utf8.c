/* utf8.c — UTF-8 repair and unfinished-tail detection (see utf8.h). Must never read past the
 * given length nor emit a byte sequence that is not valid UTF-8. */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 sequence a lead byte announces (1..4), or 0 for a byte that cannot start
 * one (a continuation byte, 0xC0/0xC1, 0xF5..0xFF). */
static int utf8_seq_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

/* Whether c may follow the lead byte `lead` as its first continuation byte (excludes overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF). */
static int utf8_second_ok(unsigned char lead, unsigned char c) {
  if ((c & 0xC0) != 0x80) return 0;
  if (lead == 0xE0) return c >= 0xA0;
  if (lead == 0xED) return c <= 0x9F;
  if (lead == 0xF0) return c >= 0x90;
  if (lead == 0xF4) return c <= 0x8F;
  return 1;
}

/* Number of bytes of s[0..n) that form a valid sequence starting at s[0]: its full length when
 * complete and valid, -k when the first k bytes are a valid but unfinished prefix that runs into
 * the end of the buffer, 0 when s[0] starts no valid sequence. */
static int utf8_valid_at(const unsigned char *s, size_t n) {
  int len = utf8_seq_len(s[0]);
  if (len <= 1) return len;
  for (int k = 1; k < len; k++) {
    if ((size_t)k >= n) return -k;
    if (k == 1 ? !utf8_second_ok(s[0], s[1]) : (s[k] & 0xC0) != 0x80) return 0;
  }
  return len;
}

size_t sy_utf8_incomplete_tail(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  /* The unfinished sequence, if any, starts within the last 3 bytes. */
  for (size_t back = 1; back <= 3 && back <= n; back++) {
    size_t at = n - back;
    if ((u[at] & 0xC0) == 0x80) continue; /* continuation byte: look further back */
    int v = utf8_valid_at(u + at, back);
    return v < 0 ? back : 0;
  }
  return 0;
}

char *sy_utf8_repair(const char *s, size_t n, size_t *out_len) {
  const unsigned char *u = (const unsigned char *)s;
  /* Worst case: every byte becomes the 3-byte U+FFFD. */
  char *out = malloc(n * 3 + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    int v = utf8_valid_at(u + i, n - i);
    if (v > 0) {
      memcpy(out + o, s + i, (size_t)v);
      o += (size_t)v;
      i += (size_t)v;
    } else {
      out[o++] = (char)0xEF;
      out[o++] = (char)0xBF;
      out[o++] = (char)0xBD;
      i++;
    }
  }
  out[o] = '\0';
  if (out_len) *out_len = o;
  return out;
}
