/* seed_audio.c — writes fuzz_audio's seed corpus into the folder given: small files of every
 * format the decoder reads (made by sy_audio_encode, so no tool beyond this tree is needed), mono
 * at a few rates, plus a stereo WAV and a few bare magic numbers. Run by tests/fuzz/seeds.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/audio.h"

static int put(const char *dir, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) {
    perror(path);
    if (f) fclose(f);
    return -1;
  }
  return fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  static const char *fmts[] = {"wav", "flac", "mp3", "opus", "ogg"};
  static const int rates[] = {8000, 16000, 44100};
  float x[8000];
  int rc = 0;
  for (size_t r = 0; r < 3; r++) {
    size_t n = (size_t)rates[r] / 10; /* 0.1 s: small seeds fuzz faster */
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * (float)sin(2 * 3.14159265 * 440 * i / rates[r]);
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++) {
      sy_buf b = {0};
      char err[256], name[64];
      if (sy_audio_encode(x, n, rates[r], fmts[k], 0, &b, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", fmts[k], err);
        rc = 1;
        continue;
      }
      snprintf(name, sizeof name, "%d.%s", rates[r], fmts[k]);
      rc |= put(argv[1], name, b.data, b.len) != 0;
      sy_buf_free(&b);
    }
  }
  /* a stereo 16-bit WAV, written by hand */
  unsigned char w[44 + 400] = "RIFF\0\0\0\0WAVEfmt ";
  unsigned int v;
  v = 36 + 400, memcpy(w + 4, &v, 4);
  v = 16, memcpy(w + 16, &v, 4);
  w[20] = 1, w[22] = 2;
  v = 16000, memcpy(w + 24, &v, 4);
  v = 64000, memcpy(w + 28, &v, 4);
  w[32] = 4, w[34] = 16;
  memcpy(w + 36, "data", 4);
  v = 400, memcpy(w + 40, &v, 4);
  for (int i = 0; i < 200; i++) w[44 + 2 * i + 1] = (unsigned char)(i * 7);
  rc |= put(argv[1], "stereo.wav", w, sizeof w) != 0;
  rc |= put(argv[1], "magic.m4a",
            "\0\0\0\x18"
            "ftypM4A ",
            12) != 0;
  rc |= put(argv[1], "magic.webm", "\x1a\x45\xdf\xa3", 4) != 0;
  return rc;
}
