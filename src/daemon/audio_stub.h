/* audio_stub.h — TEMPORARY stand-in for branch audio's audio.h (same names and shapes), so the
 * transcription endpoints build and run before it lands: 16-bit PCM mono 16 kHz WAV only.
 * Delete this file and audio_stub.c when merging branch audio, and include "audio.h" instead. */
#ifndef SY_AUDIO_STUB_H
#define SY_AUDIO_STUB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sy_audio {
  float *pcm; /* mono, in [-1, 1] */
  size_t n;   /* samples */
  int rate;
} sy_audio;

typedef struct sy_audio_limits {
  size_t max_bytes;
  double max_seconds;
} sy_audio_limits;

int sy_audio_decode(const void *data, size_t len, int out_rate, const sy_audio_limits *lim, sy_audio *out,
                    bool *unsupported, char *err, size_t err_len);
void sy_audio_free(sy_audio *a);

#endif
