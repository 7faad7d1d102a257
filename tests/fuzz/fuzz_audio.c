/* fuzz_audio.c — libFuzzer target: sy_audio_decode (src/daemon/media/audio.h) on arbitrary bytes.
 * Every input must end in audio that is bounded and clean, or an error with a one-line reason;
 * never a crash, a leak, undefined behaviour or unbounded memory. The first byte picks the output
 * rate, so the resampler's odd ratios are covered too. ffmpeg is kept out (a subprocess per input
 * would measure ffmpeg, not us). Seeds: tests/fuzz/seed_audio.c. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/audio.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  setenv("SWITCHYARD_FFMPEG", "/nonexistent/ffmpeg", 1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int rates[] = {16000, 16000, 16000, 16000, 8000, 22050, 44100, 48000};
  int rate = size ? rates[data[0] & 7] : 16000;
  sy_audio a;
  char err[256];
  bool unsupported = false;
  /* short enough that a file claiming hours of 768 kHz audio costs well under a second */
  sy_audio_limits lim = {.max_bytes = 1 << 20, .max_seconds = 30};
  if (sy_audio_decode(data, size, rate, &lim, &a, &unsupported, err, sizeof err) == 0) {
    if (a.n == 0 || a.rate != rate || a.n > (size_t)(31.0 * rate) + 8192) abort();
    for (size_t i = 0; i < a.n; i++)
      if (!(a.pcm[i] >= -1.0f && a.pcm[i] <= 1.0f)) abort();
    sy_audio_free(&a);
  } else {
    if (a.pcm || !err[0] || strchr(err, '\n')) abort();
  }
  return 0;
}
