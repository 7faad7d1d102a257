/* audio_encode.c — mono float PCM → an audio file, at once or as a stream (see audio.h).
 *
 * wav and pcm are written here (a 44-byte header and s16le samples); flac, mp3, opus and vorbis go
 * through libsndfile's virtual I/O into memory; aac through ffmpeg. One-shot encoding is the
 * streaming encoder fed once, except that libsndfile may then seek back at the end to fill in
 * what it only knows then (FLAC's STREAMINFO, MP3's Xing header). A stream cannot take back what
 * it sent, so there the memory file forgets what was handed out and drops late writes into it. */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "media/audio.h"

#define BLOCK 4096
#define FFMPEG_ENCODE_TIMEOUT_S 300.0

enum fmt { F_WAV, F_PCM, F_FLAC, F_MP3, F_OPUS, F_VORBIS, F_AAC };

/* A writable in-memory file. Bytes before base were handed out already (streaming) and are gone;
 * data holds [base, base + len). */
typedef struct {
  unsigned char *data;
  sf_count_t base, len, cap, pos;
} wfile;

struct sy_audio_enc {
  enum fmt fmt;
  bool streaming, failed, finished;
  int out_rate;
  sy_resampler rs;
  sy_fvec tmp; /* resampled block */
  sy_fvec all; /* aac: everything, encoded at finish */
  SNDFILE *sf;
  wfile wf;
  SF_VIRTUAL_IO vio;
  sf_count_t skip; /* streaming mp3: the end of the Xing placeholder frame, never sent */
  bool header_sent;
  size_t data_bytes; /* wav: sample bytes so far */
  char err[256];
};

/* ---- the memory file ------------------------------------------------------------------------ */

static sf_count_t wf_len(void *u) {
  wfile *w = u;
  return w->base + w->len;
}

static sf_count_t wf_seek(sf_count_t off, int whence, void *u) {
  wfile *w = u;
  sf_count_t end = w->base + w->len;
  sf_count_t b = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? w->pos : end;
  if (b + off < 0 || b + off > end) return -1;
  w->pos = b + off;
  return w->pos;
}

static sf_count_t wf_read(void *dst, sf_count_t n, void *u) {
  wfile *w = u;
  if (n <= 0 || w->pos < w->base || w->pos >= w->base + w->len) return 0;
  sf_count_t at = w->pos - w->base;
  if (n > w->len - at) n = w->len - at;
  memcpy(dst, w->data + at, (size_t)n);
  w->pos += n;
  return n;
}

static sf_count_t wf_write(const void *src, sf_count_t n, void *u) {
  wfile *w = u;
  if (n <= 0) return 0;
  const unsigned char *s = src;
  sf_count_t done = n;
  if (w->pos < w->base) { /* streamed out already: drop that part */
    sf_count_t drop = w->base - w->pos < n ? w->base - w->pos : n;
    s += drop, n -= drop, w->pos += drop;
  }
  sf_count_t at = w->pos - w->base;
  if (at + n > w->cap) {
    sf_count_t cap = w->cap ? w->cap : 65536;
    while (cap < at + n) cap *= 2;
    unsigned char *d = realloc(w->data, (size_t)cap);
    if (!d) return 0;
    w->data = d;
    w->cap = cap;
  }
  if (n) memcpy(w->data + at, s, (size_t)n);
  if (at + n > w->len) w->len = at + n;
  w->pos += n;
  return done;
}

static sf_count_t wf_tell(void *u) { return ((wfile *)u)->pos; }

/* The length of the MPEG audio frame at p (0 when it is not a frame header). */
static size_t mpeg_frame_len(const unsigned char *p) {
  static const int br1[16] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0};
  static const int br2[16] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0};
  static const int sr[4] = {44100, 48000, 32000, 0};
  if (p[0] != 0xff || (p[1] & 0xe0) != 0xe0 || (p[1] & 0x06) != 0x02) return 0; /* layer III */
  int ver = (p[1] >> 3) & 3; /* 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5 */
  int bi = p[2] >> 4, si = (p[2] >> 2) & 3, pad = (p[2] >> 1) & 1;
  if (ver == 1 || !sr[si] || bi == 0 || bi == 15) return 0;
  int rate = sr[si] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
  int kbps = ver == 3 ? br1[bi] : br2[bi];
  return (size_t)((ver == 3 ? 144 : 72) * kbps * 1000 / rate + pad);
}

/* Hand out what the memory file holds that can no longer change (streaming only). */
static int wf_emit(sy_audio_enc *e, sy_buf *out) {
  wfile *w = &e->wf;
  if (e->fmt == F_MP3 && e->skip < 0) {
    /* The first frame is libsndfile's Xing placeholder, filled in only at the end: a stream
     * leaves it out and is bare frames, as an MP3 stream on the web is. */
    if (w->base + w->len < 4) return 0;
    size_t fl = w->base == 0 ? mpeg_frame_len(w->data) : 0;
    e->skip = (sf_count_t)fl;
  }
  sf_count_t from = w->base, to = w->base + w->len;
  if (e->fmt == F_MP3 && from < e->skip) from = e->skip < to ? e->skip : to;
  if (to > from && sy_buf_append(out, w->data + (from - w->base), (size_t)(to - from))) return -1;
  w->base = to;
  w->len = 0;
  return 0;
}

/* ---- formats --------------------------------------------------------------------------------- */

static int parse_fmt(const char *s, enum fmt *f) {
  static const struct {
    const char *name;
    enum fmt f;
  } t[] = {{"wav", F_WAV},   {"pcm", F_PCM},    {"flac", F_FLAC},     {"mp3", F_MP3},
           {"opus", F_OPUS}, {"ogg", F_VORBIS}, {"vorbis", F_VORBIS}, {"aac", F_AAC}};
  if (!s) return -1;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcasecmp(s, t[i].name) == 0) return *f = t[i].f, 0;
  return -1;
}

static int nearest(int want, const int *allowed, size_t n) {
  int best = allowed[0];
  for (size_t i = 1; i < n; i++)
    if (abs(allowed[i] - want) < abs(best - want)) best = allowed[i];
  return best;
}

static int pick_rate(enum fmt f, int rate) {
  static const int opus[] = {8000, 12000, 16000, 24000, 48000};
  static const int mp3[] = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};
  static const int aac[] = {8000,  11025, 12000, 16000, 22050, 24000,
                            32000, 44100, 48000, 64000, 88200, 96000};
  switch (f) {
    case F_OPUS:
      return nearest(rate, opus, sizeof opus / sizeof *opus);
    case F_MP3:
      return nearest(rate, mp3, sizeof mp3 / sizeof *mp3);
    case F_AAC:
      return nearest(rate, aac, sizeof aac / sizeof *aac);
    case F_FLAC:
      return rate > 655350 ? 655350 : rate;
    default:
      return rate;
  }
}

static void put_le(unsigned char *p, uint32_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void wav_header(unsigned char h[44], int rate, uint32_t data_bytes) {
  memcpy(h, "RIFF", 4);
  put_le(h + 4, data_bytes == UINT32_MAX ? UINT32_MAX : data_bytes + 36, 4);
  memcpy(h + 8, "WAVEfmt ", 8);
  put_le(h + 16, 16, 4);
  put_le(h + 20, 1, 2); /* PCM */
  put_le(h + 22, 1, 2); /* mono */
  put_le(h + 24, (uint32_t)rate, 4);
  put_le(h + 28, (uint32_t)rate * 2, 4);
  put_le(h + 32, 2, 2);
  put_le(h + 34, 16, 2);
  memcpy(h + 36, "data", 4);
  put_le(h + 40, data_bytes, 4);
}

static sy_audio_enc *enc_new(const char *format, int in_rate, int out_rate, bool streaming,
                             char *err, size_t err_len) {
  enum fmt f;
  if (parse_fmt(format, &f)) {
    snprintf(err, err_len, "unknown audio format '%.32s' (wav, flac, mp3, opus, ogg, aac, pcm)",
             format ? format : "");
    return NULL;
  }
  if (in_rate < 1 || in_rate > SY_AUDIO_MAX_RATE || out_rate < 0 || out_rate > SY_AUDIO_MAX_RATE) {
    snprintf(err, err_len, "sample rate out of range (%d -> %d Hz)", in_rate, out_rate);
    return NULL;
  }
  char path[4096];
  if (f == F_AAC && !sy_audio_ffmpeg_find(path, sizeof path)) {
    snprintf(err, err_len, "aac output needs ffmpeg, which is not installed");
    return NULL;
  }
  sy_audio_enc *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  e->fmt = f;
  e->streaming = streaming;
  e->out_rate = pick_rate(f, out_rate ? out_rate : in_rate);
  e->skip = -1;
  if (sy_resampler_init(&e->rs, in_rate, e->out_rate, err, err_len)) {
    free(e);
    return NULL;
  }
  if (f == F_FLAC || f == F_MP3 || f == F_OPUS || f == F_VORBIS) {
    SF_INFO info = {.samplerate = e->out_rate, .channels = 1};
    info.format = f == F_FLAC   ? SF_FORMAT_FLAC | SF_FORMAT_PCM_16
                  : f == F_MP3  ? SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III
                  : f == F_OPUS ? SF_FORMAT_OGG | SF_FORMAT_OPUS
                                : SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    e->vio = (SF_VIRTUAL_IO){wf_len, wf_seek, wf_read, wf_write, wf_tell};
    e->sf = sf_open_virtual(&e->vio, SFM_WRITE, &info, &e->wf);
    if (!e->sf) {
      snprintf(err, err_len, "cannot encode %s at %d Hz: %s", format, e->out_rate,
               sf_strerror(NULL));
      sy_audio_enc_free(e);
      return NULL;
    }
    sf_command(e->sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
    if (streaming && (f == F_OPUS || f == F_VORBIS)) {
      double ms = 100.0; /* a page every 100 ms: the listener hears it soon */
      sf_command(e->sf, SFC_SET_OGG_PAGE_LATENCY_MS, &ms, sizeof ms);
    }
  }
  return e;
}

sy_audio_enc *sy_audio_enc_new(const char *format, int in_rate, int out_rate, char *err,
                               size_t err_len) {
  return enc_new(format, in_rate, out_rate, true, err, err_len);
}

int sy_audio_enc_rate(const sy_audio_enc *e) { return e->out_rate; }
const char *sy_audio_enc_error(const sy_audio_enc *e) { return e->err; }

static int fail(sy_audio_enc *e, const char *why) {
  if (!e->failed) snprintf(e->err, sizeof e->err, "%s", why);
  e->failed = true;
  return -1;
}

static int put_s16(sy_audio_enc *e, const float *p, size_t n, sy_buf *out) {
  unsigned char b[2 * BLOCK];
  while (n > 0) {
    size_t m = n < BLOCK ? n : BLOCK;
    for (size_t i = 0; i < m; i++) {
      long v = lrintf(p[i] * 32767.0f); /* p is clean: in [-1, 1] */
      put_le(b + 2 * i, (uint32_t)(uint16_t)(int16_t)v, 2);
    }
    if (sy_buf_append(out, b, 2 * m)) return -1;
    e->data_bytes += 2 * m;
    p += m, n -= m;
  }
  return 0;
}

/* Write resampled samples (e->tmp) to the format. */
static int sink(sy_audio_enc *e, sy_buf *out) {
  const float *p = e->tmp.p;
  size_t n = e->tmp.n;
  int rc = 0;
  switch (e->fmt) {
    case F_WAV:
      if (!e->header_sent && e->streaming) {
        unsigned char h[44];
        wav_header(h, e->out_rate, UINT32_MAX);
        if (sy_buf_append(out, h, sizeof h)) rc = -1;
        e->header_sent = true;
      }
      if (!rc && e->streaming)
        rc = put_s16(e, p, n, out);
      else if (!rc)
        rc = sy_fvec_append(&e->all, p, n); /* header needs the length */
      break;
    case F_PCM:
      rc = put_s16(e, p, n, out);
      break;
    case F_AAC:
      rc = sy_fvec_append(&e->all, p, n);
      break;
    default:
      if (n && sf_write_float(e->sf, p, (sf_count_t)n) != (sf_count_t)n) {
        snprintf(e->err, sizeof e->err, "encoder: %s", sf_strerror(e->sf));
        e->failed = true;
        return -1;
      }
      if (e->streaming) rc = wf_emit(e, out);
  }
  e->tmp.n = 0;
  return rc ? fail(e, "out of memory while encoding") : 0;
}

int sy_audio_enc_feed(sy_audio_enc *e, const float *pcm, size_t n, sy_buf *out) {
  if (e->failed) return -1;
  if (e->finished) return fail(e, "the encoder was finished already");
  if (!pcm && n) return fail(e, "no samples given");
  float clean[BLOCK];
  while (n > 0) {
    size_t m = n < BLOCK ? n : BLOCK;
    for (size_t i = 0; i < m; i++) {
      float x = pcm[i];
      clean[i] = !isfinite(x) ? 0.0f : x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
    }
    if (sy_resampler_feed(&e->rs, clean, m, &e->tmp)) return fail(e, "resampler failed");
    /* soxr's output can overshoot [-1, 1] a little (ringing); clip before integer formats */
    for (size_t i = 0; i < e->tmp.n; i++)
      e->tmp.p[i] = e->tmp.p[i] > 1.0f ? 1.0f : e->tmp.p[i] < -1.0f ? -1.0f : e->tmp.p[i];
    if (sink(e, out)) return -1;
    pcm += m, n -= m;
  }
  return 0;
}

static int finish_aac(sy_audio_enc *e, sy_buf *out) {
  char rate[32];
  snprintf(rate, sizeof rate, "%d", e->out_rate);
  const char *argv[] = {"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f",
                        "f32le",  "-ar",          rate,       "-ac",       "1",     "-i",
                        "pipe:0", "-c:a",         "aac",      "-b:a",      "128k",  "-f",
                        "adts",   "pipe:1",       NULL};
  size_t in_bytes = e->all.n * sizeof(float);
  return sy_audio_ffmpeg_run(argv, e->all.p, in_bytes, out, in_bytes + (1 << 20),
                             FFMPEG_ENCODE_TIMEOUT_S, e->err, sizeof e->err)
             ? (e->failed = true, -1)
             : 0;
}

int sy_audio_enc_finish(sy_audio_enc *e, sy_buf *out) {
  if (e->failed) return -1;
  if (e->finished) return fail(e, "the encoder was finished already");
  e->finished = true;
  if (sy_resampler_feed(&e->rs, NULL, 0, &e->tmp)) return fail(e, "resampler failed");
  for (size_t i = 0; i < e->tmp.n; i++)
    e->tmp.p[i] = e->tmp.p[i] > 1.0f ? 1.0f : e->tmp.p[i] < -1.0f ? -1.0f : e->tmp.p[i];
  if (sink(e, out)) return -1;
  switch (e->fmt) {
    case F_WAV:
      if (!e->streaming) {
        if (e->all.n > (UINT32_MAX - 64) / 2) return fail(e, "too long for a WAV file");
        unsigned char h[44];
        wav_header(h, e->out_rate, (uint32_t)(e->all.n * 2));
        if (sy_buf_append(out, h, sizeof h) || put_s16(e, e->all.p, e->all.n, out))
          return fail(e, "out of memory while encoding");
      } else if (!e->header_sent) {
        unsigned char h[44];
        wav_header(h, e->out_rate, UINT32_MAX);
        if (sy_buf_append(out, h, sizeof h)) return fail(e, "out of memory while encoding");
        e->header_sent = true;
      }
      return 0;
    case F_PCM:
      return 0;
    case F_AAC:
      return finish_aac(e, out);
    default: {
      int rc = sf_close(e->sf);
      e->sf = NULL;
      if (rc) {
        snprintf(e->err, sizeof e->err, "encoder: %s", sf_error_number(rc));
        e->failed = true;
        return -1;
      }
      if (e->streaming) return wf_emit(e, out) ? fail(e, "out of memory while encoding") : 0;
      if (e->wf.len && sy_buf_append(out, e->wf.data, (size_t)e->wf.len))
        return fail(e, "out of memory while encoding");
      return 0;
    }
  }
}

void sy_audio_enc_free(sy_audio_enc *e) {
  if (!e) return;
  if (e->sf) sf_close(e->sf);
  free(e->wf.data);
  sy_resampler_free(&e->rs);
  sy_fvec_free(&e->tmp);
  sy_fvec_free(&e->all);
  free(e);
}

int sy_audio_encode(const float *pcm, size_t n, int in_rate, const char *format, int out_rate,
                    sy_buf *out, char *err, size_t err_len) {
  sy_audio_enc *e = enc_new(format, in_rate, out_rate, false, err, err_len);
  if (!e) return -1;
  size_t start = out->len;
  int rc = sy_audio_enc_feed(e, pcm, n, out);
  if (rc == 0) rc = sy_audio_enc_finish(e, out);
  if (rc) {
    snprintf(err, err_len, "%s", e->err);
    out->len = start; /* nothing half-written stays behind */
    if (out->data) out->data[start] = '\0';
  }
  sy_audio_enc_free(e);
  return rc;
}
