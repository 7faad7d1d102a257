/* test_audio.c — unit tests for src/daemon/media/audio.h, the daemon's audio codecs.
 *
 * Covers: a round trip for every output format (a 440 Hz sine, 1 s at 24 kHz, encoded, decoded at
 * 16 kHz: the duration within 2 % and 440 Hz dominant over 220/880 Hz by a Goertzel filter and by
 * zero crossings), stereo files of each format written directly with libsndfile (downmix by
 * averaging), the streaming encoder fed in 10 chunks (same length as one-shot; wav and pcm
 * byte-identical), the rates a format forces (opus, mp3), the content types, the limits (bytes,
 * seconds), the ffmpeg subprocess through stand-in scripts (output, failure, output cap) and its
 * absence (415 with "install ffmpeg for M4A/WebM"), a broken corpus (every prefix of small files,
 * seeded byte flips, empty, garbage, hostile WAV headers, one format dressed as another, the inputs
 * fuzzing found in tests/fuzz/corpus/fuzz_audio/), and real
 * speech (jfk.wav / jfk.mp3 from SWITCHYARD_TESTDATA, skipped when absent).
 */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/audio.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#define PI 3.14159265358979323846

static char ffmpeg_dir[256];

/* ---- helpers --------------------------------------------------------------------------------- */

static float *sine(size_t n, int rate, double f, float amp) {
  float *p = malloc(n * sizeof *p);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = amp * (float)sin(2 * PI * f * (double)i / rate);
  return p;
}

/* Power of x at frequency f (Goertzel), over the middle 80 % (codecs' edges are ramps). */
static double goertzel(const float *x, size_t n, int rate, double f) {
  size_t a = n / 10, b = n - n / 10;
  double w = 2 * PI * f / rate, c = 2 * cos(w), s1 = 0, s2 = 0;
  for (size_t i = a; i < b; i++) {
    double s0 = x[i] + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / ((double)(b - a) * (b - a));
}

/* The frequency zero crossings say (middle 80 %, with a little hysteresis against codec noise). */
static double crossing_freq(const float *x, size_t n, int rate) {
  size_t a = n / 10, b = n - n / 10, count = 0;
  int sign = 0;
  for (size_t i = a; i < b; i++) {
    int s = x[i] > 0.02f ? 1 : x[i] < -0.02f ? -1 : 0;
    if (s && sign && s != sign) count++;
    if (s) sign = s;
  }
  return (double)count / 2.0 / ((double)(b - a) / rate);
}

static double rms(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return n ? sqrt(s / (double)n) : 0;
}

static void check_tone(const sy_audio *a, double seconds, const char *what) {
  double dur = (double)a->n / a->rate;
  double g440 = goertzel(a->pcm, a->n, a->rate, 440), g220 = goertzel(a->pcm, a->n, a->rate, 220),
         g880 = goertzel(a->pcm, a->n, a->rate, 880);
  double zf = crossing_freq(a->pcm, a->n, a->rate);
  if (fabs(dur - seconds) > 0.02 * seconds || g440 < 100 * g220 || g440 < 100 * g880 ||
      fabs(zf - 440) > 440 * 0.03)
    fail_msg("%s: %.4f s (want %.3f), goertzel 440/220/880 %.3g/%.3g/%.3g, crossings say %.1f Hz",
             what, dur, seconds, g440, g220, g880, zf);
}

static sy_buf encode_ok(const float *pcm, size_t n, int rate, const char *fmt, int out_rate) {
  sy_buf b = {0};
  char err[256];
  if (sy_audio_encode(pcm, n, rate, fmt, out_rate, &b, err, sizeof err))
    fail_msg("encode %s: %s", fmt, err);
  assert_true(b.len > 0);
  return b;
}

static sy_audio decode_ok(const void *p, size_t n, int rate, const char *what) {
  sy_audio a;
  char err[256];
  bool unsup = true;
  if (sy_audio_decode(p, n, rate, NULL, &a, &unsup, err, sizeof err))
    fail_msg("decode %s: %s", what, err);
  assert_false(unsup);
  assert_int_equal(a.rate, rate);
  return a;
}

static bool have_ffmpeg(void) {
  char path[4096];
  return sy_audio_ffmpeg_find(path, sizeof path);
}

/* ---- writing arbitrary files with libsndfile (stereo variants) --------------------------------
 */

typedef struct {
  unsigned char *d;
  sf_count_t len, pos, cap;
} tfile;
static sf_count_t t_len(void *u) { return ((tfile *)u)->len; }
static sf_count_t t_seek(sf_count_t o, int wh, void *u) {
  tfile *t = u;
  t->pos = (wh == SEEK_SET ? 0 : wh == SEEK_CUR ? t->pos : t->len) + o;
  return t->pos;
}
static sf_count_t t_read(void *p, sf_count_t n, void *u) {
  tfile *t = u;
  if (t->pos >= t->len) return 0;
  if (n > t->len - t->pos) n = t->len - t->pos;
  memcpy(p, t->d + t->pos, (size_t)n);
  t->pos += n;
  return n;
}
static sf_count_t t_write(const void *p, sf_count_t n, void *u) {
  tfile *t = u;
  if (t->pos + n > t->cap) {
    t->cap = (t->pos + n) * 2;
    t->d = realloc(t->d, (size_t)t->cap);
  }
  memcpy(t->d + t->pos, p, (size_t)n);
  t->pos += n;
  if (t->pos > t->len) t->len = t->pos;
  return n;
}
static sf_count_t t_tell(void *u) { return ((tfile *)u)->pos; }

/* Interleaved frames written as format (libsndfile's SF_FORMAT_*). */
static tfile sf_write_mem(int format, int rate, int ch, const float *frames, size_t n) {
  tfile t = {0};
  SF_VIRTUAL_IO vio = {t_len, t_seek, t_read, t_write, t_tell};
  SF_INFO info = {.samplerate = rate, .channels = ch, .format = format};
  SNDFILE *sf = sf_open_virtual(&vio, SFM_WRITE, &info, &t);
  if (!sf) fail_msg("sf_open_virtual(0x%x): %s", format, sf_strerror(NULL));
  assert_int_equal(sf_writef_float(sf, frames, (sf_count_t)n), (sf_count_t)n);
  assert_int_equal(sf_close(sf), 0);
  return t;
}

/* ---- round trips ------------------------------------------------------------------------------
 */

static const char *lossy_or_not[] = {"wav", "flac", "mp3", "opus", "ogg", "vorbis"};

static void test_round_trip(void **state) {
  (void)state;
  size_t n = 24000;
  float *x = sine(n, 24000, 440, 0.5f);
  for (size_t i = 0; i < sizeof lossy_or_not / sizeof *lossy_or_not; i++) {
    const char *f = lossy_or_not[i];
    sy_buf b = encode_ok(x, n, 24000, f, 0);
    sy_audio a = decode_ok(b.data, b.len, 16000, f);
    check_tone(&a, 1.0, f);
    /* lossless ones keep the level too */
    if (!strcmp(f, "wav") || !strcmp(f, "flac"))
      assert_true(fabs(rms(a.pcm, a.n) - 0.5 / sqrt(2)) < 0.01);
    sy_audio_free(&a);
    sy_buf_free(&b);
  }
  /* pcm has no header to be told by: check it as s16le */
  sy_buf b = encode_ok(x, n, 24000, "pcm", 16000);
  assert_true(labs((long)b.len - 32000) <= 2);
  size_t m = b.len / 2;
  float *y = malloc(m * sizeof *y);
  for (size_t i = 0; i < m; i++) {
    int16_t v;
    memcpy(&v, b.data + 2 * i, 2);
    y[i] = v / 32768.0f;
  }
  sy_audio a = {y, m, 16000};
  check_tone(&a, 1.0, "pcm");
  sy_audio_free(&a);
  sy_buf_free(&b);
  /* wav is exact at the same rate: 16-bit rounding only */
  b = encode_ok(x, n, 24000, "wav", 0);
  a = decode_ok(b.data, b.len, 24000, "wav same rate");
  assert_int_equal(a.n, n);
  for (size_t i = 0; i < n; i++) assert_true(fabsf(a.pcm[i] - x[i]) < 1.0f / 16384);
  sy_audio_free(&a);
  sy_buf_free(&b);
  free(x);
}

static void test_round_trip_aac(void **state) {
  (void)state;
  if (!have_ffmpeg()) skip();
  size_t n = 24000;
  float *x = sine(n, 24000, 440, 0.5f);
  sy_buf b = encode_ok(x, n, 24000, "aac", 0);
  sy_audio a = decode_ok(b.data, b.len, 16000, "aac");
  /* ADTS has no edit list: a decoder also returns the encoder's 1024 priming samples and the
   * padding to a whole 1024-sample frame (25 frames at 24 kHz here, 1.067 s) */
  check_tone(&a, (double)((n + 1024 + 1023) / 1024 * 1024) / 24000, "aac");
  sy_audio_free(&a);
  sy_buf_free(&b);
  free(x);
}

static void test_stereo_files(void **state) {
  (void)state;
  static const struct {
    int format, rate;
    const char *what;
  } t[] = {
      {SF_FORMAT_WAV | SF_FORMAT_PCM_16, 24000, "wav s16"},
      {SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, "wav float"},
      {SF_FORMAT_WAVEX | SF_FORMAT_PCM_24, 48000, "wavex s24"},
      {SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 22050, "aiff"},
      {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 24000, "flac"},
      {SF_FORMAT_OGG | SF_FORMAT_VORBIS, 24000, "vorbis"},
      {SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, "opus"},
      {SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 24000, "mp3"},
  };
  for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
    int rate = t[k].rate;
    size_t n = (size_t)rate;
    float *st = malloc(2 * n * sizeof *st);
    for (size_t i = 0; i < n; i++) {
      float s = (float)sin(2 * PI * 440 * (double)i / rate);
      st[2 * i] = 0.6f * s;     /* left */
      st[2 * i + 1] = 0.2f * s; /* right: the average is 0.4 s */
    }
    tfile f = sf_write_mem(t[k].format, rate, 2, st, n);
    sy_audio a = decode_ok(f.d, (size_t)f.len, 16000, t[k].what);
    check_tone(&a, 1.0, t[k].what);
    double r = rms(a.pcm + a.n / 10, a.n - a.n / 5);
    if (fabs(r - 0.4 / sqrt(2)) > 0.4 / sqrt(2) * 0.1)
      fail_msg("%s: rms %.4f, want %.4f (channels averaged)", t[k].what, r, 0.4 / sqrt(2));
    sy_audio_free(&a);
    free(f.d);
    free(st);
  }
  /* opposite channels cancel: the downmix is an average, not a pick */
  size_t n = 16000;
  float *st = malloc(2 * n * sizeof *st);
  for (size_t i = 0; i < n; i++) st[2 * i] = -(st[2 * i + 1] = 0.5f * (float)sin(0.1 * i));
  tfile f = sf_write_mem(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, st, n);
  sy_audio a = decode_ok(f.d, (size_t)f.len, 16000, "cancelling stereo");
  assert_true(rms(a.pcm, a.n) < 1e-6);
  sy_audio_free(&a);
  free(f.d);
  free(st);
}

/* ---- streaming --------------------------------------------------------------------------------
 */

static sy_buf stream_chunks(const float *x, size_t n, int rate, const char *fmt, int out_rate,
                            int chunks) {
  char err[256];
  sy_audio_enc *e = sy_audio_enc_new(fmt, rate, out_rate, err, sizeof err);
  if (!e) fail_msg("enc_new %s: %s", fmt, err);
  sy_buf b = {0};
  size_t step = n / (size_t)chunks + 1;
  for (size_t i = 0; i < n; i += step) {
    size_t m = n - i < step ? n - i : step;
    if (sy_audio_enc_feed(e, x + i, m, &b)) fail_msg("feed %s: %s", fmt, sy_audio_enc_error(e));
  }
  if (sy_audio_enc_finish(e, &b)) fail_msg("finish %s: %s", fmt, sy_audio_enc_error(e));
  assert_int_equal(sy_audio_enc_feed(e, x, 1, &b), -1); /* finished is finished */
  sy_audio_enc_free(e);
  return b;
}

static void test_streaming(void **state) {
  (void)state;
  size_t n = 24000;
  float *x = sine(n, 24000, 440, 0.5f);
  /* wav and pcm: the same samples, byte for byte (wav's header says "streaming": sizes ~0) */
  for (int same = 0; same < 2; same++) {
    int out_rate = same ? 0 : 16000;
    sy_buf one = encode_ok(x, n, 24000, "wav", out_rate);
    sy_buf str = stream_chunks(x, n, 24000, "wav", out_rate, 10);
    assert_int_equal(one.len, str.len);
    assert_memory_equal(one.data + 44, str.data + 44, one.len - 44);
    assert_memory_equal(str.data + 4, "\xff\xff\xff\xff", 4);
    assert_memory_equal(str.data + 40, "\xff\xff\xff\xff", 4);
    sy_audio a = decode_ok(str.data, str.len, 16000, "streamed wav");
    check_tone(&a, 1.0, "streamed wav");
    sy_audio_free(&a);
    sy_buf_free(&one);
    sy_buf_free(&str);
    one = encode_ok(x, n, 24000, "pcm", out_rate);
    str = stream_chunks(x, n, 24000, "pcm", out_rate, 10);
    assert_int_equal(one.len, str.len);
    assert_memory_equal(one.data, str.data, one.len);
    sy_buf_free(&one);
    sy_buf_free(&str);
  }
  /* the others: the stream decodes to the one-shot's length (mp3: bare frames, so lame's delay
   * and padding are not trimmed without the Xing header: a frame or two more) */
  const char *fmts[] = {"flac", "mp3", "opus", "ogg"};
  for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
    sy_buf one = encode_ok(x, n, 24000, fmts[i], 0);
    sy_buf str = stream_chunks(x, n, 24000, fmts[i], 0, 10);
    sy_audio a = decode_ok(one.data, one.len, 16000, fmts[i]);
    sy_audio b = decode_ok(str.data, str.len, 16000, fmts[i]);
    double tol = !strcmp(fmts[i], "mp3") ? 0.1 * 16000 : 0.005 * 16000;
    if (fabs((double)a.n - (double)b.n) > tol)
      fail_msg("%s: one-shot %zu samples, streamed %zu", fmts[i], a.n, b.n);
    check_tone(&b, (double)b.n / 16000, fmts[i]);
    sy_audio_free(&a);
    sy_audio_free(&b);
    sy_buf_free(&one);
    sy_buf_free(&str);
  }
  /* streamed mp3 starts with a real audio frame, not the empty Xing placeholder */
  sy_buf str = stream_chunks(x, n, 24000, "mp3", 0, 10);
  assert_true(str.len > 4 && (unsigned char)str.data[0] == 0xff);
  assert_null(memmem(str.data, str.len < 200 ? str.len : 200, "Xing", 4));
  assert_null(memmem(str.data, str.len < 200 ? str.len : 200, "Info", 4));
  sy_buf_free(&str);
  /* an empty stream is still a file */
  str = stream_chunks(x, 0, 24000, "wav", 0, 1);
  assert_int_equal(str.len, 44);
  sy_buf_free(&str);
  free(x);
}

static void test_rates_and_types(void **state) {
  (void)state;
  char err[256];
  sy_audio_enc *e = sy_audio_enc_new("opus", 22050, 0, err, sizeof err);
  assert_non_null(e);
  assert_int_equal(sy_audio_enc_rate(e), 24000);
  sy_audio_enc_free(e);
  e = sy_audio_enc_new("opus", 44100, 0, err, sizeof err);
  assert_int_equal(sy_audio_enc_rate(e), 48000);
  sy_audio_enc_free(e);
  e = sy_audio_enc_new("mp3", 23500, 0, err, sizeof err);
  assert_int_equal(sy_audio_enc_rate(e), 24000);
  sy_audio_enc_free(e);
  e = sy_audio_enc_new("wav", 23000, 0, err, sizeof err);
  assert_int_equal(sy_audio_enc_rate(e), 23000);
  sy_audio_enc_free(e);
  assert_null(sy_audio_enc_new("xyz", 24000, 0, err, sizeof err));
  assert_non_null(strstr(err, "unknown audio format"));
  assert_null(sy_audio_enc_new("wav", 0, 0, err, sizeof err));
  assert_null(sy_audio_enc_new("wav", 24000, 10000000, err, sizeof err));
  assert_null(sy_audio_enc_new(NULL, 24000, 0, err, sizeof err));
  sy_buf b = {0};
  assert_int_equal(sy_audio_encode(NULL, 5, 24000, "wav", 0, &b, err, sizeof err), -1);
  assert_int_equal(b.len, 0);
  /* non-finite and loud input is clipped, never undefined */
  float wild[] = {NAN, INFINITY, -INFINITY, 5.0f, -5.0f, 0.5f};
  assert_int_equal(sy_audio_encode(wild, 6, 16000, "pcm", 0, &b, err, sizeof err), 0);
  int16_t v[6];
  memcpy(v, b.data, sizeof v);
  assert_int_equal(v[0], 0);
  assert_int_equal(v[3], 32767);
  assert_int_equal(v[4], -32767);
  sy_buf_free(&b);

  assert_string_equal(sy_audio_content_type("mp3"), "audio/mpeg");
  assert_string_equal(sy_audio_content_type("wav"), "audio/wav");
  assert_string_equal(sy_audio_content_type("flac"), "audio/flac");
  assert_string_equal(sy_audio_content_type("opus"), "audio/ogg");
  assert_string_equal(sy_audio_content_type("ogg"), "audio/ogg");
  assert_string_equal(sy_audio_content_type("aac"), "audio/aac");
  assert_string_equal(sy_audio_content_type("pcm"), "audio/pcm");
  assert_null(sy_audio_content_type("mp4"));
  assert_null(sy_audio_content_type(NULL));
  assert_true(sy_audio_format_known("FLAC"));
}

static void test_limits(void **state) {
  (void)state;
  size_t n = 32000;
  float *x = sine(n, 16000, 440, 0.5f);
  const char *fmts[] = {"wav", "flac", "mp3", "ogg"};
  for (size_t i = 0; i < 4; i++) {
    sy_buf b = encode_ok(x, n, 16000, fmts[i], 0);
    sy_audio a;
    char err[256];
    bool unsup = true;
    sy_audio_limits lim = {.max_seconds = 1.5};
    assert_int_equal(sy_audio_decode(b.data, b.len, 16000, &lim, &a, &unsup, err, sizeof err), -1);
    assert_false(unsup);
    assert_non_null(strstr(err, "limit"));
    assert_null(a.pcm);
    lim = (sy_audio_limits){.max_bytes = b.len - 1};
    assert_int_equal(sy_audio_decode(b.data, b.len, 16000, &lim, &a, &unsup, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit"));
    lim = (sy_audio_limits){.max_bytes = b.len, .max_seconds = 2.5};
    assert_int_equal(sy_audio_decode(b.data, b.len, 16000, &lim, &a, &unsup, err, sizeof err), 0);
    sy_audio_free(&a);
    assert_int_equal(sy_audio_decode(b.data, b.len, 0, NULL, &a, &unsup, err, sizeof err), -1);
    assert_int_equal(sy_audio_decode(b.data, b.len, 800000, NULL, &a, &unsup, err, sizeof err), -1);
    sy_buf_free(&b);
  }
  free(x);
}

/* ---- the ffmpeg path --------------------------------------------------------------------------
 */

static void write_script(const char *name, const char *body, char *path, size_t path_len) {
  snprintf(path, path_len, "%s/%s", ffmpeg_dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "#!/bin/sh\n%s\n", body);
  fclose(f);
  chmod(path, 0755);
}

static const unsigned char m4a_head[] = {0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'M', '4', 'A', ' '};

static void test_ffmpeg_absent(void **state) {
  (void)state;
  char *saved = getenv("SWITCHYARD_FFMPEG") ? strdup(getenv("SWITCHYARD_FFMPEG")) : NULL;
  setenv("SWITCHYARD_FFMPEG", "/nonexistent/ffmpeg", 1);
  unsigned char buf[64] = {0};
  memcpy(buf, m4a_head, sizeof m4a_head);
  sy_audio a;
  char err[256];
  bool unsup = false;
  assert_int_equal(sy_audio_decode(buf, sizeof buf, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  assert_true(unsup);
  assert_non_null(strstr(err, "install ffmpeg for M4A/WebM"));
  unsigned char webm[16] = {0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3};
  unsup = false;
  assert_int_equal(sy_audio_decode(webm, sizeof webm, 16000, NULL, &a, &unsup, err, sizeof err),
                   -1);
  assert_true(unsup);
  assert_non_null(strstr(err, "install ffmpeg for M4A/WebM"));
  unsup = false;
  assert_int_equal(sy_audio_decode("hello, world", 12, 16000, NULL, &a, &unsup, err, sizeof err),
                   -1);
  assert_true(unsup);
  sy_buf b = {0};
  float x[4] = {0};
  assert_int_equal(sy_audio_encode(x, 4, 16000, "aac", 0, &b, err, sizeof err), -1);
  assert_non_null(strstr(err, "ffmpeg"));
  if (saved)
    setenv("SWITCHYARD_FFMPEG", saved, 1), free(saved);
  else
    unsetenv("SWITCHYARD_FFMPEG");
}

static void test_ffmpeg_subprocess(void **state) {
  (void)state;
  char *saved = getenv("SWITCHYARD_FFMPEG") ? strdup(getenv("SWITCHYARD_FFMPEG")) : NULL;
  char path[512];
  sy_audio a;
  char err[256];
  bool unsup = true;
  /* a stand-in that echoes its stdin: the upload's bytes come back as f32le */
  write_script("cat-ffmpeg", "exec cat", path, sizeof path);
  setenv("SWITCHYARD_FFMPEG", path, 1);
  size_t n = 300000; /* bigger than a pipe's buffer both ways */
  float *in = malloc(n * sizeof *in);
  for (size_t i = 0; i < n; i++) in[i] = (float)sin(0.01 * i);
  memcpy(in, m4a_head, sizeof m4a_head); /* the first floats are odd; they are cleaned */
  assert_int_equal(sy_audio_decode(in, n * 4, 16000, NULL, &a, &unsup, err, sizeof err), 0);
  assert_int_equal(a.n, n);
  for (size_t i = 0; i < n; i++) assert_true(a.pcm[i] >= -1.0f && a.pcm[i] <= 1.0f);
  assert_true(a.pcm[n - 1] == in[n - 1]);
  sy_audio_free(&a);
  /* it fails: its last stderr line is the reason; unknown content is then a 415 */
  write_script("fail-ffmpeg",
               "cat >/dev/null; echo 'noise' >&2; echo 'pipe:0: Invalid data' >&2; "
               "exit 1",
               path, sizeof path);
  setenv("SWITCHYARD_FFMPEG", path, 1);
  assert_int_equal(sy_audio_decode(in, 4096, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  assert_false(unsup);
  assert_non_null(strstr(err, "pipe:0: Invalid data"));
  assert_int_equal(sy_audio_decode("garbage!", 8, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  assert_true(unsup);
  /* it quits without reading: no SIGPIPE, a clean error */
  write_script("quit-ffmpeg", "exit 3", path, sizeof path);
  setenv("SWITCHYARD_FFMPEG", path, 1);
  assert_int_equal(sy_audio_decode(in, n * 4, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  /* it never stops talking: the output cap ends it */
  write_script("loud-ffmpeg", "exec cat /dev/zero", path, sizeof path);
  setenv("SWITCHYARD_FFMPEG", path, 1);
  sy_audio_limits lim = {.max_seconds = 2};
  assert_int_equal(sy_audio_decode(in, 4096, 16000, &lim, &a, &unsup, err, sizeof err), -1);
  assert_non_null(strstr(err, "limit"));
  /* aac through the stand-in: whatever it prints is the file */
  write_script("cat-ffmpeg", "exec cat", path, sizeof path);
  setenv("SWITCHYARD_FFMPEG", path, 1);
  sy_buf b = {0};
  assert_int_equal(sy_audio_encode(in + 100, 1000, 16000, "aac", 0, &b, err, sizeof err), 0);
  assert_int_equal(b.len, 4000);
  sy_buf_free(&b);
  free(in);
  if (saved)
    setenv("SWITCHYARD_FFMPEG", saved, 1), free(saved);
  else
    unsetenv("SWITCHYARD_FFMPEG");
}

/* ---- the broken corpus ------------------------------------------------------------------------
 */

static uint64_t rng = 0x5eed;
static uint32_t next_rand(void) {
  rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(rng >> 33);
}

/* Decode and demand sanity: an error with a reason, or audio that is bounded and clean. */
static int try_decode(const void *p, size_t n, size_t max_samples) {
  sy_audio a;
  char err[256] = "";
  bool unsup = false;
  sy_audio_limits lim = {.max_seconds = 60};
  int rc = sy_audio_decode(p, n, 16000, &lim, &a, &unsup, err, sizeof err);
  if (rc) {
    assert_null(a.pcm);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    return rc;
  }
  assert_true(a.n > 0);
  if (max_samples && a.n > max_samples) fail_msg("%zu samples from a broken file", a.n);
  for (size_t i = 0; i < a.n; i++) assert_true(a.pcm[i] >= -1.0f && a.pcm[i] <= 1.0f);
  sy_audio_free(&a);
  return 0;
}

static void test_broken_corpus(void **state) {
  (void)state;
  setenv("SWITCHYARD_FFMPEG", "/nonexistent/ffmpeg", 1); /* libsndfile's side here */
  size_t n = 1600;
  float *x = sine(n, 8000, 440, 0.5f);
  const char *fmts[] = {"wav", "flac", "mp3", "opus", "ogg"};
  for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
    sy_buf b = encode_ok(x, n, 8000, fmts[i], 0);
    int errors = 0;
    /* every prefix (a sample of them past 2 KiB) */
    for (size_t len = 0; len < b.len; len += len < 2048 ? 1 : 1 + next_rand() % 64)
      errors += try_decode(b.data, len, 16000) != 0;
    assert_true(errors > 0);
    /* seeded byte flips */
    unsigned char *m = malloc(b.len);
    for (int k = 0; k < 400; k++) {
      memcpy(m, b.data, b.len);
      int flips = 1 + (int)(next_rand() % 8);
      for (int f = 0; f < flips; f++) {
        size_t at = next_rand() % (k < 200 ? (b.len < 128 ? b.len : 128) : b.len); /* headers */
        m[at] = (unsigned char)next_rand();
      }
      try_decode(m, b.len, 0);
    }
    free(m);
    sy_buf_free(&b);
  }
  free(x);
  /* empty, garbage, magic followed by garbage */
  sy_audio a;
  char err[256];
  bool unsup = false;
  assert_int_equal(sy_audio_decode("", 0, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  assert_false(unsup);
  assert_int_equal(sy_audio_decode(NULL, 0, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  unsigned char g[4096];
  const char *magic[] = {"",     "RIFF", "RF64", "FORM",     ".snd",     "caff",
                         "fLaC", "OggS", "ID3",  "\xff\xfb", "\xff\xf1", "RIFF\x10\0\0\0WAVEfmt "};
  for (size_t k = 0; k < sizeof magic / sizeof *magic; k++)
    for (int r = 0; r < 50; r++) {
      for (size_t i = 0; i < sizeof g; i++) g[i] = (unsigned char)next_rand();
      memcpy(g, magic[k], strlen(magic[k]));
      try_decode(g, 1 + next_rand() % sizeof g, 0);
    }
  unsetenv("SWITCHYARD_FFMPEG");
}

/* A 16-bit PCM WAV header with the given fields, then data_len bytes of a tone. */
static size_t wav_file(unsigned char *p, uint16_t ch, uint32_t rate, uint32_t data_claim,
                       size_t data_len) {
  memcpy(p, "RIFF", 4);
  uint32_t riff = (uint32_t)(36 + data_len);
  memcpy(p + 4, &riff, 4);
  memcpy(p + 8, "WAVEfmt ", 8);
  uint32_t fmt_len = 16, byte_rate = rate * 2u * ch;
  uint16_t pcm = 1, align = (uint16_t)(2 * ch), bits = 16;
  memcpy(p + 16, &fmt_len, 4);
  memcpy(p + 20, &pcm, 2);
  memcpy(p + 22, &ch, 2);
  memcpy(p + 24, &rate, 4);
  memcpy(p + 28, &byte_rate, 4);
  memcpy(p + 32, &align, 2);
  memcpy(p + 34, &bits, 2);
  memcpy(p + 36, "data", 4);
  memcpy(p + 40, &data_claim, 4);
  for (size_t i = 0; i < data_len / 2; i++) {
    int16_t v = (int16_t)(8000 * sin(2 * PI * 440 * (double)i / 16000));
    memcpy(p + 44 + 2 * i, &v, 2);
  }
  return 44 + data_len;
}

static void test_hostile_headers(void **state) {
  (void)state;
  size_t cap = 44 + 64000;
  unsigned char *p = malloc(cap);
  sy_audio a;
  char err[256];
  bool unsup;
  /* the good one first, so the ones below fail for the reason they should */
  size_t len = wav_file(p, 1, 16000, 32000, 32000);
  a = decode_ok(p, len, 16000, "handmade wav");
  assert_int_equal(a.n, 16000);
  sy_audio_free(&a);
  len = wav_file(p, 0, 16000, 32000, 32000);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  len = wav_file(p, 1, 10000000, 32000, 32000);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  len = wav_file(p, 1, 0, 32000, 32000);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  len = wav_file(p, 65, 16000, 32000, 32000);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  len = wav_file(p, 1000, 16000, 32000, 32000);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  /* 2^31 frames claimed, 1 s there: never 2^31 of anything; what is there, or an error */
  len = wav_file(p, 1, 16000, 0xFFFFFFFEu, 32000);
  if (sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err) == 0) {
    assert_int_equal(a.n, 16000);
    sy_audio_free(&a);
  }
  /* the same claim with max_seconds below 2^31 frames' length and a RIFF size to match */
  len = wav_file(p, 1, 16000, 0x7FFFFFFEu, 32000);
  uint32_t big = 0x7FFFFFFEu + 36;
  memcpy(p + 4, &big, 4);
  if (sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err) == 0) {
    assert_int_equal(a.n, 16000);
    sy_audio_free(&a);
  }
  /* two frames at 768 kHz are no sample at all at 16 kHz: an error, not empty audio (fuzzing) */
  len = wav_file(p, 1, 768000, 4, 4);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  assert_non_null(strstr(err, "too short"));
  /* zero frames */
  len = wav_file(p, 1, 16000, 0, 0);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  assert_non_null(strstr(err, "no audio"));
  /* 768 kHz, 64 channels is allowed, but a long one is over the work limit */
  len = wav_file(p, 64, 768000, 64000, 64000);
  a = decode_ok(p, len, 16000, "64 channels at 768 kHz");
  sy_audio_free(&a);
  /* one format dressed as another: WAV's header, MP3's body; FLAC's magic, WAV's body */
  float *x = sine(8000, 16000, 440, 0.5f);
  sy_buf mp3 = encode_ok(x, 8000, 16000, "mp3", 0);
  unsigned char *mix = malloc(44 + mp3.len);
  wav_file(mix, 1, 16000, (uint32_t)mp3.len, 0);
  uint16_t three = 3; /* "float", with a 16-bit sample size: inconsistent */
  memcpy(mix + 20, &three, 2);
  memcpy(mix + 44, mp3.data, mp3.len);
  try_decode(mix, 44 + mp3.len, 16000);
  free(mix);
  len = wav_file(p, 1, 16000, 32000, 32000);
  memcpy(p, "fLaC", 4);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  memcpy(p, "OggS", 4);
  assert_int_equal(sy_audio_decode(p, len, 16000, NULL, &a, &unsup, err, sizeof err), -1);
  /* a WAV file cut in its data is decoded as far as it goes, or refused; never more */
  sy_buf w = encode_ok(x, 8000, 16000, "flac", 0);
  assert_int_equal(try_decode(w.data, w.len / 2, 8000), -1); /* FLAC knows its length */
  sy_buf_free(&w);
  sy_buf_free(&mp3);
  free(x);
  free(p);
}

/* The inputs tests/fuzz/fuzz_audio.c found bugs with (run from the repository root). */
static void test_fuzz_findings(void **state) {
  (void)state;
  const char *files[] = {"short-wav-resamples-to-nothing", "ogg-junk-then-vorbis-leak"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[512];
    snprintf(path, sizeof path, "tests/fuzz/corpus/fuzz_audio/%s", files[i]);
    FILE *f = fopen(path, "rb");
    if (!f) skip();
    unsigned char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    try_decode(buf, n, 0);
  }
}

/* ---- real speech ------------------------------------------------------------------------------
 */

static int read_file(const char *path, sy_buf *b) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  char chunk[65536];
  size_t r;
  while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) sy_buf_append(b, chunk, r);
  fclose(f);
  return 0;
}

/* Phone and browser uploads through the real ffmpeg (skipped without it): a 1 s 440 Hz tone that
 * ffmpeg itself writes as M4A (AAC in MP4, whose edit list trims the priming) and as WebM (Opus),
 * read back by sy_audio_decode: the right length and pitch. */
static void test_ffmpeg_formats(void **state) {
  (void)state;
  char ff[1024];
  if (!sy_audio_ffmpeg_find(ff, sizeof ff)) skip();
  static const char *const kinds[][2] = {{"m4a", "aac"}, {"webm", "libopus"}};
  for (size_t k = 0; k < 2; k++) {
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "/tmp/sy-tone-%d.%s", (int)getpid(), kinds[k][0]);
    snprintf(cmd, sizeof cmd,
             "'%s' -nostdin -loglevel error -y -f lavfi -i "
             "sine=frequency=440:duration=1:sample_rate=48000 "
             "-c:a %s '%s'",
             ff, kinds[k][1], path);
    if (system(cmd) != 0) fail_msg("ffmpeg could not write %s", path);
    sy_buf b = {0};
    assert_int_equal(read_file(path, &b), 0);
    unlink(path);
    sy_audio a = decode_ok(b.data, b.len, 16000, kinds[k][0]);
    check_tone(&a, 1.0, kinds[k][0]);
    sy_audio_free(&a);
    sy_buf_free(&b);
  }
}

static void test_jfk(void **state) {
  (void)state;
  const char *dir = getenv("SWITCHYARD_TESTDATA");
  if (!dir || !*dir) dir = "../shared/testdata";
  char pw[1024], pm[1024];
  snprintf(pw, sizeof pw, "%s/jfk.wav", dir);
  snprintf(pm, sizeof pm, "%s/jfk.mp3", dir);
  sy_buf w = {0}, m = {0};
  if (read_file(pw, &w) || read_file(pm, &m)) {
    sy_buf_free(&w);
    sy_buf_free(&m);
    skip();
  }
  sy_audio a = decode_ok(w.data, w.len, 16000, "jfk.wav");
  sy_audio b = decode_ok(m.data, m.len, 16000, "jfk.mp3");
  double da = (double)a.n / 16000, db = (double)b.n / 16000;
  double ra = rms(a.pcm, a.n), rb = rms(b.pcm, b.n);
  if (fabs(da - 11.0) > 0.1 || fabs(db - 11.0) > 0.1 || fabs(ra - rb) > 0.2 * ra || ra < 0.01)
    fail_msg("jfk: wav %.3f s rms %.4f, mp3 %.3f s rms %.4f", da, ra, db, rb);
  sy_audio_free(&a);
  sy_audio_free(&b);
  sy_buf_free(&w);
  sy_buf_free(&m);
}

static int setup(void **state) {
  (void)state;
  snprintf(ffmpeg_dir, sizeof ffmpeg_dir, "/tmp/sy-audio-test-XXXXXX");
  return mkdtemp(ffmpeg_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  const char *names[] = {"cat-ffmpeg", "fail-ffmpeg", "quit-ffmpeg", "loud-ffmpeg"};
  char p[512];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(p, sizeof p, "%s/%s", ffmpeg_dir, names[i]);
    unlink(p);
  }
  rmdir(ffmpeg_dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_round_trip_aac),
      cmocka_unit_test(test_ffmpeg_formats),
      cmocka_unit_test(test_stereo_files),
      cmocka_unit_test(test_streaming),
      cmocka_unit_test(test_rates_and_types),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_ffmpeg_absent),
      cmocka_unit_test(test_ffmpeg_subprocess),
      cmocka_unit_test(test_broken_corpus),
      cmocka_unit_test(test_hostile_headers),
      cmocka_unit_test(test_fuzz_findings),
      cmocka_unit_test(test_jfk),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
