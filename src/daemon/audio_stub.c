/* audio_stub.c — TEMPORARY (see audio_stub.h): RIFF/WAVE, PCM 16-bit, mono, 16 kHz only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_stub.h"

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

int sy_audio_decode(const void *data, size_t len, int out_rate, const sy_audio_limits *lim, sy_audio *out,
                    bool *unsupported, char *err, size_t err_len) {
  const unsigned char *b = data;
  memset(out, 0, sizeof *out);
  if (unsupported) *unsupported = false;
  if (len < 12 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0) {
    if (unsupported) *unsupported = true;
    snprintf(err, err_len, "unsupported audio format (this build reads 16-bit PCM WAV only)");
    return -1;
  }
  size_t pos = 12;
  bool fmt_ok = false;
  while (pos + 8 <= len) {
    uint32_t sz = le32(b + pos + 4);
    const unsigned char *c = b + pos + 8;
    if (sz > len - pos - 8) sz = (uint32_t)(len - pos - 8);
    if (memcmp(b + pos, "fmt ", 4) == 0) {
      if (sz < 16) break;
      if (le16(c) != 1 || le16(c + 2) != 1 || le32(c + 4) != (uint32_t)out_rate || le16(c + 14) != 16) {
        if (unsupported) *unsupported = true;
        snprintf(err, err_len, "unsupported WAV layout (this build reads mono 16-bit PCM at %d Hz only)", out_rate);
        return -1;
      }
      fmt_ok = true;
    } else if (memcmp(b + pos, "data", 4) == 0 && fmt_ok) {
      size_t n = sz / 2;
      if (n == 0) break;
      out->pcm = malloc(n * sizeof(float));
      if (!out->pcm) {
        snprintf(err, err_len, "out of memory");
        return -1;
      }
      for (size_t i = 0; i < n; i++) out->pcm[i] = (float)(int16_t)le16(c + 2 * i) / 32768.0f;
      out->n = n;
      out->rate = out_rate;
      return 0;
    }
    pos += 8 + (size_t)sz + (sz & 1);
  }
  snprintf(err, err_len, "the WAV file is corrupt or has no audio");
  return -1;
}

void sy_audio_free(sy_audio *a) {
  free(a->pcm);
  a->pcm = NULL;
  a->n = 0;
}
