/* audio_decode.c — an upload → mono float at the rate asked for (see audio.h, docs/AUDIO.md).
 *
 * The format is told from the first bytes, never from a name. Formats libsndfile reads are opened
 * through its virtual I/O over the upload (no temp file; MP3 through libmpg123's reader callbacks
 * the same way), read in blocks of BLOCK frames, averaged
 * down to mono and resampled block by block, so memory follows the audio actually decoded, never a
 * length a header claims. Rates, channel counts and the claimed length are checked before any
 * block is read; the decoded length is capped by max_seconds while reading (a header can lie). */
#include <math.h>
#include <mpg123.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vorbis/vorbisfile.h>

#include "media/audio.h"

#define BLOCK 4096
/* All channels together: a hostile file (64 channels at 768 kHz, compressed) must not keep a
 * request's thread busy for hours before the duration limit is reached. 4 h of 8 channels at
 * 48 kHz passes. */
#define MAX_SAMPLES_PER_SECOND 384000.0
#define FFMPEG_DECODE_TIMEOUT_S 120.0

enum kind { K_UNKNOWN, K_WAV, K_AIFF, K_AU, K_CAF, K_FLAC, K_OGG, K_MP3, K_M4A, K_WEBM, K_AAC };

static const char *kind_name[] = {"unknown", "WAV", "AIFF", "AU",   "CAF", "FLAC",
                                  "Ogg",     "MP3", "M4A",  "WebM", "AAC"};

static bool is_sndfile_kind(enum kind k) { return k >= K_WAV && k <= K_MP3; }

static enum kind sniff(const unsigned char *p, size_t n) {
  if (n >= 4) {
    if (!memcmp(p, "RIFF", 4) || !memcmp(p, "RIFX", 4) || !memcmp(p, "RF64", 4)) return K_WAV;
    if (!memcmp(p, "FORM", 4)) return K_AIFF;
    if (!memcmp(p, ".snd", 4)) return K_AU;
    if (!memcmp(p, "caff", 4)) return K_CAF;
    if (!memcmp(p, "fLaC", 4)) return K_FLAC;
    if (!memcmp(p, "OggS", 4)) return K_OGG;
    if (!memcmp(p, "\x1a\x45\xdf\xa3", 4)) return K_WEBM; /* EBML: WebM, Matroska */
    if (!memcmp(p, "ADIF", 4)) return K_AAC;
  }
  if (n >= 8 && !memcmp(p + 4, "ftyp", 4)) return K_M4A; /* ISO BMFF: M4A, MP4, 3GP */
  if (n >= 3 && !memcmp(p, "ID3", 3)) return K_MP3;
  if (n >= 2 && p[0] == 0xff && (p[1] & 0xe0) == 0xe0) {
    /* an MPEG audio frame header: layer bits 00 are reserved there, and mean ADTS (AAC) */
    return (p[1] & 0x06) == 0 ? K_AAC : K_MP3;
  }
  return K_UNKNOWN;
}

/* ---- libsndfile's virtual I/O over the upload ---------------------------------------------- */

typedef struct {
  const unsigned char *data;
  sf_count_t len, pos;
} memfile;

static sf_count_t mf_len(void *u) { return ((memfile *)u)->len; }

static sf_count_t mf_seek(sf_count_t off, int whence, void *u) {
  memfile *m = u;
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
  if ((off > 0 && base > INT64_MAX - off) || base + off < 0) return -1;
  m->pos = base + off; /* past the end is allowed; reads there return nothing */
  return m->pos;
}

static sf_count_t mf_read(void *dst, sf_count_t n, void *u) {
  memfile *m = u;
  if (n <= 0 || m->pos >= m->len) return 0;
  if (n > m->len - m->pos) n = m->len - m->pos;
  memcpy(dst, m->data + m->pos, (size_t)n);
  m->pos += n;
  return n;
}

static sf_count_t mf_write(const void *src, sf_count_t n, void *u) { return 0; }
static sf_count_t mf_tell(void *u) { return ((memfile *)u)->pos; }

/* libsndfile's major formats we accept: what it detects must be one of the kinds we sniffed for,
 * so its many exotic readers (PAF, SD2, HTK, ...) are never reached by an upload. */
static bool major_ok(int major, enum kind k) {
  switch (k) {
    case K_WAV:
      return major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX || major == SF_FORMAT_RF64;
    case K_AIFF:
      return major == SF_FORMAT_AIFF;
    case K_AU:
      return major == SF_FORMAT_AU;
    case K_CAF:
      return major == SF_FORMAT_CAF;
    case K_FLAC:
      return major == SF_FORMAT_FLAC;
    case K_OGG:
      return major == SF_FORMAT_OGG;
    default:
      return false;
  }
}

static float clean(float x) {
  if (!isfinite(x)) return 0.0f;
  return x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
}

/* Where decoded blocks go, whatever decoded them: averaged to mono, cleaned, resampled, counted
 * against the limits. */
typedef struct {
  sy_resampler rs;
  sy_fvec *out;
  int ch, rate;
  long long total, max_frames;
  bool work_limited; /* max_frames comes from MAX_SAMPLES_PER_SECOND, not max_seconds */
  double max_seconds;
  float mono[BLOCK];
} sink;

static int sink_init(sink *k, sy_fvec *out, int ch, int rate, int out_rate, double max_seconds,
                     const char *what, char *err, size_t err_len) {
  memset(k, 0, sizeof *k);
  k->out = out;
  if (ch < 1 || ch > SY_AUDIO_MAX_CHANNELS) {
    snprintf(err, err_len, "%s file with %d channels (1 to %d are accepted)", what, ch,
             SY_AUDIO_MAX_CHANNELS);
    return -1;
  }
  if (rate < 1 || rate > SY_AUDIO_MAX_RATE) {
    snprintf(err, err_len, "%s file at %d Hz (1 to %d Hz are accepted)", what, rate,
             SY_AUDIO_MAX_RATE);
    return -1;
  }
  k->ch = ch;
  k->rate = rate;
  k->max_seconds = max_seconds;
  double max_frames = max_seconds * rate, budget = max_seconds * MAX_SAMPLES_PER_SECOND / ch;
  k->work_limited = budget < max_frames;
  k->max_frames = (long long)(k->work_limited ? budget : max_frames) + 1;
  return sy_resampler_init(&k->rs, rate, out_rate, err, err_len);
}

/* n interleaved frames (n <= BLOCK). */
static int sink_put(sink *k, const float *f, size_t n, char *err, size_t err_len) {
  k->total += (long long)n;
  if (k->total > k->max_frames) {
    if (k->work_limited)
      snprintf(err, err_len, "%d channels at %d Hz for this long is over the decoding limit", k->ch,
               k->rate);
    else
      snprintf(err, err_len, "the audio is longer than the limit of %.0f s", k->max_seconds);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    float s = 0.0f;
    for (int c = 0; c < k->ch; c++) s += clean(f[i * (size_t)k->ch + (size_t)c]);
    k->mono[i] = s / (float)k->ch;
  }
  size_t from = k->out->n;
  if (sy_resampler_feed(&k->rs, n ? k->mono : NULL, n, k->out)) {
    snprintf(err, err_len, "out of memory while decoding");
    return -1;
  }
  /* the resampler rings a little past full scale: keep the promise of [-1, 1] */
  for (size_t i = from; i < k->out->n; i++) k->out->p[i] = clean(k->out->p[i]);
  return 0;
}

static int sink_end(sink *k, char *err, size_t err_len) {
  return sink_put(k, NULL, 0, err, err_len);
}

/* 1: libsndfile would not open it (the caller may try ffmpeg); 0 decoded; -1 error. */
static int decode_sndfile(const unsigned char *data, size_t len, enum kind k, int out_rate,
                          double max_seconds, sy_fvec *out, char *err, size_t err_len) {
  memfile m = {data, (sf_count_t)len, 0};
  SF_VIRTUAL_IO vio = {mf_len, mf_seek, mf_read, mf_write, mf_tell};
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &m);
  if (!sf) {
    snprintf(err, err_len, "not a valid %s file: %s", kind_name[k], sf_strerror(NULL));
    return 1;
  }
  int rc = -1;
  float *buf = NULL;
  sink *snk = NULL;
  int major = info.format & SF_FORMAT_TYPEMASK;
  if (!major_ok(major, k)) {
    snprintf(err, err_len, "the file starts like %s but is not one", kind_name[k]);
    goto done;
  }
  snk = malloc(sizeof *snk);
  if (!snk) {
    snprintf(err, err_len, "out of memory");
    goto done;
  }
  if (sink_init(snk, out, info.channels, info.samplerate, out_rate, max_seconds, kind_name[k], err,
                err_len))
    goto done;
  if (info.frames > 0 && info.frames < SF_COUNT_MAX &&
      (double)info.frames / info.samplerate > max_seconds) {
    snprintf(err, err_len, "the audio is %.0f s long, over the limit of %.0f s",
             (double)info.frames / info.samplerate, max_seconds);
    goto done;
  }
  buf = malloc((size_t)BLOCK * (size_t)info.channels * sizeof *buf);
  if (!buf) {
    snprintf(err, err_len, "out of memory");
    goto done;
  }
  for (;;) {
    sf_count_t got = sf_readf_float(sf, buf, BLOCK);
    if (got <= 0) break;
    if (got > BLOCK) got = BLOCK;
    if (sink_put(snk, buf, (size_t)got, err, err_len)) goto done;
  }
  if (sf_error(sf) != SF_ERR_NO_ERROR) {
    snprintf(err, err_len, "corrupt %s data: %s", kind_name[k], sf_strerror(sf));
    goto done;
  }
  if (snk->total == 0) {
    snprintf(err, err_len, "the %s file holds no audio samples", kind_name[k]);
    goto done;
  }
  /* A length that lossless formats state exactly and that the data falls short of: truncated.
   * Ogg's length comes from the last page, so it cannot tell. */
  if (k != K_OGG && info.frames > 0 && info.frames < SF_COUNT_MAX &&
      snk->total < info.frames - info.frames / 100) {
    snprintf(err, err_len, "truncated %s file: %lld of %lld frames", kind_name[k], snk->total,
             (long long)info.frames);
    goto done;
  }
  if (sink_end(snk, err, err_len)) goto done;
  rc = 0;
done:
  free(buf);
  if (snk) sy_resampler_free(&snk->rs);
  free(snk);
  sf_close(sf);
  return rc;
}

/* Whether an Ogg file may be Vorbis: a Vorbis identification packet anywhere in it. libsndfile
 * skips junk to find a first page, so looking at the first page only would let Vorbis through. */
static bool ogg_may_be_vorbis(const unsigned char *p, size_t n) {
  return memmem(p, n, "\x01vorbis", 7) != NULL;
}

/* Ogg/Vorbis goes to libvorbisfile (libsndfile 1.2.0's Vorbis reader leaks the vorbis_info of
 * every file whose headers it then rejects: 5.7 KiB per hostile upload, forever; found by the
 * unit tests' broken corpus and by tests/fuzz/fuzz_audio.c). */
static size_t ov_cb_read(void *dst, size_t size, size_t nmemb, void *u) {
  if (size == 0) return 0;
  sf_count_t want =
      (sf_count_t)(nmemb > (size_t)INT32_MAX / size ? (size_t)INT32_MAX / size : nmemb);
  return (size_t)mf_read(dst, want * (sf_count_t)size, u) / size;
}
static int ov_cb_seek(void *u, ogg_int64_t off, int whence) {
  return mf_seek(off, whence, u) < 0 ? -1 : 0;
}
static long ov_cb_tell(void *u) { return (long)mf_tell(u); }

static int decode_vorbis(const unsigned char *data, size_t len, int out_rate, double max_seconds,
                         sy_fvec *out, char *err, size_t err_len) {
  memfile m = {data, (sf_count_t)len, 0};
  ov_callbacks cb = {ov_cb_read, ov_cb_seek, NULL, ov_cb_tell};
  OggVorbis_File vf;
  int e = ov_open_callbacks(&m, &vf, NULL, 0, cb);
  if (e) {
    snprintf(err, err_len, "not a valid Ogg/Vorbis file (error %d)", e);
    return 1;
  }
  int rc = -1;
  float *buf = NULL;
  sink *snk = malloc(sizeof *snk);
  bool inited = false;
  vorbis_info *vi = ov_info(&vf, -1);
  if (!snk || !vi) {
    snprintf(err, err_len, snk ? "not a valid Ogg/Vorbis file" : "out of memory");
    goto done;
  }
  int ch = vi->channels;
  long rate = vi->rate;
  if (sink_init(snk, out, ch, rate > INT32_MAX ? 0 : (int)rate, out_rate, max_seconds, "Ogg/Vorbis",
                err, err_len))
    goto done;
  inited = true;
  ogg_int64_t claimed = ov_pcm_total(&vf, -1);
  if (claimed > 0 && (double)claimed / (double)rate > max_seconds) {
    snprintf(err, err_len, "the audio is %.0f s long, over the limit of %.0f s",
             (double)claimed / (double)rate, max_seconds);
    goto done;
  }
  buf = malloc((size_t)BLOCK * (size_t)ch * sizeof *buf);
  if (!buf) {
    snprintf(err, err_len, "out of memory");
    goto done;
  }
  for (int holes = 0;;) {
    float **pcm = NULL;
    int link = 0;
    long got = ov_read_float(&vf, &pcm, BLOCK, &link);
    if (got == 0) break;
    if (got == OV_HOLE && ++holes < 1000) continue; /* a gap in the data: skip it, as players do */
    if (got < 0) {
      snprintf(err, err_len, "corrupt Ogg/Vorbis data (error %ld)", got);
      goto done;
    }
    vorbis_info *li = ov_info(&vf, link);
    if (!li || li->channels != ch || li->rate != rate) {
      snprintf(err, err_len, "the Ogg/Vorbis stream changes its rate or channels midway");
      goto done;
    }
    if (got > BLOCK) got = BLOCK;
    for (long i = 0; i < got; i++)
      for (int c = 0; c < ch; c++) buf[(size_t)i * (size_t)ch + (size_t)c] = pcm[c][i];
    if (sink_put(snk, buf, (size_t)got, err, err_len)) goto done;
  }
  if (snk->total == 0) {
    snprintf(err, err_len, "the Ogg/Vorbis file holds no audio samples");
    goto done;
  }
  if (sink_end(snk, err, err_len)) goto done;
  rc = 0;
done:
  if (inited) sy_resampler_free(&snk->rs);
  free(snk);
  free(buf);
  ov_clear(&vf);
  return rc;
}

/* MP3 goes to libmpg123 itself (libsndfile's reader too): libsndfile stops reading at the length
 * it estimated when opening, and for a VBR file without a Xing header (an MP3 stream, say) that
 * estimate is the first frame's bitrate times the file size — often far too short. */
static ssize_t mp_read(void *u, void *dst, size_t n) {
  return (ssize_t)mf_read(dst, (sf_count_t)(n > INT64_MAX ? INT64_MAX : n), u);
}
static off_t mp_seek(void *u, off_t off, int whence) { return (off_t)mf_seek(off, whence, u); }

static int decode_mpg123(const unsigned char *data, size_t len, int out_rate, double max_seconds,
                         sy_fvec *out, char *err, size_t err_len) {
  int e = 0;
  mpg123_handle *mh = mpg123_new(NULL, &e);
  if (!mh) {
    snprintf(err, err_len, "mp3 decoder: %s", mpg123_plain_strerror(e));
    return -1;
  }
  memfile m = {data, (sf_count_t)len, 0};
  int rc = -1;
  sink *snk = NULL;
  bool started = false;
  float *buf = NULL;
  /* MPG123_FLAGS replaces the defaults: no AUTO_RESAMPLE; QUIET: never print to our stderr */
  mpg123_param(mh, MPG123_FLAGS,
               MPG123_FORCE_FLOAT | MPG123_GAPLESS | MPG123_QUIET | MPG123_NO_FRANKENSTEIN, 0);
  if (mpg123_replace_reader_handle(mh, mp_read, mp_seek, NULL) != MPG123_OK ||
      mpg123_open_handle(mh, &m) != MPG123_OK) {
    snprintf(err, err_len, "not a valid MP3 file: %s", mpg123_strerror(mh));
    rc = 1;
    goto done;
  }
  size_t cap = (size_t)BLOCK * 2 * sizeof(float); /* MPEG audio has 1 or 2 channels */
  buf = malloc(cap);
  snk = malloc(sizeof *snk);
  if (!buf || !snk) {
    snprintf(err, err_len, "out of memory");
    goto done;
  }
  long rate = 0;
  int ch = 0, enc = 0;
  for (int spins = 0;;) {
    size_t done = 0;
    int r = mpg123_read(mh, buf, cap, &done);
    if (r == MPG123_NEW_FORMAT) {
      long nrate;
      int nch, nenc;
      mpg123_getformat(mh, &nrate, &nch, &nenc);
      if (started && (nrate != rate || nch != ch)) {
        snprintf(err, err_len, "the MP3 stream changes from %ld Hz/%d ch to %ld Hz/%d ch", rate, ch,
                 nrate, nch);
        goto done;
      }
      if (nenc != MPG123_ENC_FLOAT_32 || nch < 1 || nch > 2) {
        snprintf(err, err_len, "mp3 decoder: unexpected output format");
        goto done;
      }
      if (!started &&
          sink_init(snk, out, nch, (int)nrate, out_rate, max_seconds, "MP3", err, err_len)) {
        sy_resampler_free(&snk->rs);
        goto done;
      }
      started = true;
      rate = nrate, ch = nch, enc = nenc;
      continue;
    }
    if (done > 0 && started) {
      spins = 0;
      size_t frames = done / (sizeof(float) * (size_t)ch);
      for (size_t i = 0; i < frames; i += BLOCK) /* a mono read holds 2 blocks */
        if (sink_put(snk, buf + i * (size_t)ch, frames - i < BLOCK ? frames - i : BLOCK, err,
                     err_len))
          goto done;
    } else if (r == MPG123_OK && ++spins > 100000) {
      snprintf(err, err_len, "mp3 decoder makes no progress");
      goto done;
    }
    if (r == MPG123_DONE) break;
    if (r != MPG123_OK) {
      snprintf(err, err_len, "corrupt MP3 data: %s", mpg123_strerror(mh));
      if (!started) rc = 1;
      goto done;
    }
  }
  (void)enc;
  if (!started || snk->total == 0) {
    snprintf(err, err_len, "the MP3 file holds no audio samples");
    goto done;
  }
  if (sink_end(snk, err, err_len)) goto done;
  rc = 0;
done:
  if (snk && started) sy_resampler_free(&snk->rs);
  free(snk);
  free(buf);
  mpg123_close(mh);
  mpg123_delete(mh);
  return rc;
}

static int decode_ffmpeg(const void *data, size_t len, int out_rate, double max_seconds,
                         sy_fvec *out, char *err, size_t err_len) {
  char rate[32], secs[32];
  snprintf(rate, sizeof rate, "%d", out_rate);
  snprintf(secs, sizeof secs, "%.3f", max_seconds + 1.0);
  /* -protocol_whitelist: a playlist or concat file cannot make ffmpeg open files or URLs */
  const char *argv[] = {"ffmpeg",   "-hide_banner",
                        "-nostdin", "-loglevel",
                        "error",    "-protocol_whitelist",
                        "pipe",     "-i",
                        "pipe:0",   "-map",
                        "0:a:0",    "-vn",
                        "-sn",      "-dn",
                        "-ac",      "1",
                        "-ar",      rate,
                        "-t",       secs,
                        "-f",       "f32le",
                        "-c:a",     "pcm_f32le",
                        "pipe:1",   NULL};
  /* -t stops at max_seconds + 1 s, so "too long" is seen here rather than after hours */
  size_t max_samples = (size_t)(max_seconds * out_rate) + 1;
  sy_buf raw = {0};
  int rc = sy_audio_ffmpeg_run(argv, data, len, &raw, (max_samples + (size_t)out_rate * 2) * 4,
                               FFMPEG_DECODE_TIMEOUT_S, err, err_len);
  if (rc == 0) {
    size_t n = raw.len / sizeof(float);
    if (n == 0) {
      snprintf(err, err_len, "ffmpeg decoded no audio samples");
      rc = -1;
    } else if (n > max_samples) {
      snprintf(err, err_len, "the audio is longer than the limit of %.0f s", max_seconds);
      rc = -1;
    } else {
      float blockf[BLOCK];
      for (size_t i = 0; i < n && rc == 0; i += BLOCK) {
        size_t m = n - i < BLOCK ? n - i : BLOCK;
        memcpy(blockf, raw.data + i * sizeof(float), m * sizeof(float));
        for (size_t j = 0; j < m; j++) blockf[j] = clean(blockf[j]);
        if (sy_fvec_append(out, blockf, m)) {
          snprintf(err, err_len, "out of memory while decoding");
          rc = -1;
        }
      }
    }
  }
  sy_buf_free(&raw);
  return rc;
}

int sy_audio_decode(const void *data, size_t len, int out_rate, const sy_audio_limits *lim,
                    sy_audio *out, bool *unsupported, char *err, size_t err_len) {
  bool unsup_dummy;
  if (!unsupported) unsupported = &unsup_dummy;
  *unsupported = false;
  memset(out, 0, sizeof *out);
  if (err_len) err[0] = '\0';
  size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : SY_AUDIO_DEFAULT_MAX_BYTES;
  double max_seconds =
      lim && lim->max_seconds > 0 ? lim->max_seconds : SY_AUDIO_DEFAULT_MAX_SECONDS;
  if (out_rate < 1 || out_rate > SY_AUDIO_MAX_RATE) {
    snprintf(err, err_len, "output rate %d Hz is out of range", out_rate);
    return -1;
  }
  if (!data || len == 0) {
    snprintf(err, err_len, "the audio file is empty");
    return -1;
  }
  if (len > max_bytes) {
    snprintf(err, err_len, "the audio file is %zu bytes, over the limit of %zu", len, max_bytes);
    return -1;
  }
  enum kind k = sniff(data, len);
  char path[4096];
  bool have_ffmpeg = sy_audio_ffmpeg_find(path, sizeof path);
  sy_fvec v = {.limit = (size_t)(max_seconds * out_rate) + (size_t)out_rate + BLOCK};
  int rc;
  if (is_sndfile_kind(k)) {
    if (k == K_MP3)
      rc = decode_mpg123(data, len, out_rate, max_seconds, &v, err, err_len);
    else if (k == K_OGG && ogg_may_be_vorbis(data, len))
      rc = decode_vorbis(data, len, out_rate, max_seconds, &v, err, err_len);
    else
      rc = decode_sndfile(data, len, k, out_rate, max_seconds, &v, err, err_len);
    if (rc == 1 && have_ffmpeg) {
      /* libsndfile refused it (an odd WAV codec, say): ffmpeg may know it; keep the first reason */
      char ferr[256];
      sy_fvec_free(&v);
      rc = decode_ffmpeg(data, len, out_rate, max_seconds, &v, ferr, sizeof ferr) ? -1 : 0;
    }
    if (rc == 1) rc = -1;
  } else if (have_ffmpeg) {
    rc = decode_ffmpeg(data, len, out_rate, max_seconds, &v, err, err_len);
    if (rc && k == K_UNKNOWN) {
      *unsupported = true;
      snprintf(err, err_len, "unrecognised audio format (ffmpeg could not read it either)");
    }
  } else {
    rc = -1;
    *unsupported = true;
    if (k == K_UNKNOWN)
      snprintf(err, err_len,
               "unrecognised audio format: WAV, FLAC, Ogg (Vorbis, Opus) and MP3 "
               "are read; install ffmpeg for M4A/WebM");
    else
      snprintf(err, err_len, "%s audio needs ffmpeg: install ffmpeg for M4A/WebM", kind_name[k]);
  }
  if (rc == 0 && v.n == 0) { /* a few frames at a high rate can resample to nothing */
    snprintf(err, err_len, "the audio is too short: no samples at %d Hz", out_rate);
    rc = -1;
  }
  if (rc) {
    sy_fvec_free(&v);
    return -1;
  }
  out->pcm = v.p;
  out->n = v.n;
  out->rate = out_rate;
  return 0;
}

void sy_audio_free(sy_audio *a) {
  if (!a) return;
  free(a->pcm);
  a->pcm = NULL;
  a->n = 0;
}
