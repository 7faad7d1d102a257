/* audio.c — STUB until branch `audio` lands: wav and pcm (s16le), linear resampling. */
#include "audio.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct sy_audio_enc {
  int wav, in_rate, out_rate, header_done;
  double pos; /* next output sample's position in input samples, relative to prev */
  float prev;
  int have_prev;
};
static void put16(sy_buf *b, int v) {
  unsigned char c[2] = {(unsigned char)(v & 255), (unsigned char)((v >> 8) & 255)};
  sy_buf_append(b, c, 2);
}
static void put32(sy_buf *b, uint32_t v) {
  unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
  sy_buf_append(b, c, 4);
}
static void wav_header(sy_buf *b, int rate, uint32_t data) {
  sy_buf_append(b, "RIFF", 4);
  put32(b, data == 0xFFFFFFFFu ? data : data + 36);
  sy_buf_append(b, "WAVEfmt ", 8);
  put32(b, 16);
  put16(b, 1);
  put16(b, 1);
  put32(b, (uint32_t)rate);
  put32(b, (uint32_t)rate * 2);
  put16(b, 2);
  put16(b, 16);
  sy_buf_append(b, "data", 4);
  put32(b, data);
}
static void s16(sy_buf *b, float x) {
  if (!(x == x)) x = 0;
  x = x > 1 ? 1 : x < -1 ? -1 : x;
  put16(b, (int)lrintf(x * 32767.0f));
}
sy_audio_enc *sy_audio_enc_new(const char *format, int in_rate, int out_rate, char *err, size_t err_len) {
  if (!format || (strcmp(format, "wav") && strcmp(format, "pcm")) || in_rate <= 0 || out_rate <= 0) {
    snprintf(err, err_len, "format '%s' is not supported (stub: wav, pcm)", format ? format : "");
    return NULL;
  }
  sy_audio_enc *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->wav = format[0] == 'w';
  e->in_rate = in_rate;
  e->out_rate = out_rate;
  return e;
}
int sy_audio_enc_feed(sy_audio_enc *e, const float *pcm, size_t n, sy_buf *out) {
  if (e->wav && !e->header_done) wav_header(out, e->out_rate, 0xFFFFFFFFu);
  e->header_done = 1;
  double step = (double)e->in_rate / e->out_rate;
  for (size_t i = 0; i < n; i++) {
    if (!e->have_prev) {
      e->prev = pcm[i];
      e->have_prev = 1;
      continue;
    }
    while (e->pos < 1.0) { /* between prev (0) and pcm[i] (1) */
      s16(out, (float)(e->prev + (pcm[i] - e->prev) * e->pos));
      e->pos += step;
    }
    e->pos -= 1.0;
    e->prev = pcm[i];
  }
  return 0;
}
int sy_audio_enc_finish(sy_audio_enc *e, sy_buf *out) {
  if (e->wav && !e->header_done) wav_header(out, e->out_rate, 0xFFFFFFFFu);
  e->header_done = 1;
  return 0;
}
void sy_audio_enc_free(sy_audio_enc *e) { free(e); }
int sy_audio_encode(const float *pcm, size_t n, int in_rate, const char *format, int out_rate, sy_buf *out,
                    char *err, size_t err_len) {
  sy_audio_enc *e = sy_audio_enc_new(format, in_rate, out_rate, err, err_len);
  if (!e) return -1;
  sy_buf body = {0};
  sy_audio_enc_feed(e, pcm, n, &body);
  if (e->wav) {
    wav_header(out, out_rate, (uint32_t)(body.len - 44));
    sy_buf_append(out, body.data + 44, body.len - 44);
  } else {
    sy_buf_append(out, body.data, body.len);
  }
  sy_buf_free(&body);
  sy_audio_enc_free(e);
  return 0;
}
const char *sy_audio_content_type(const char *format) {
  static const char *const t[][2] = {{"mp3", "audio/mpeg"}, {"opus", "audio/ogg"}, {"aac", "audio/aac"},
                                     {"flac", "audio/flac"}, {"wav", "audio/wav"}, {"pcm", "audio/pcm"}};
  for (size_t i = 0; i < 6; i++)
    if (format && strcmp(format, t[i][0]) == 0) return t[i][1];
  return NULL;
}
