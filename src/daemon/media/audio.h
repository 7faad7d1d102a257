/* audio.h — the daemon's audio codecs (docs/AUDIO.md). Every upload is decoded here, once, into
 * mono float at the rate a worker wants (16 kHz for whisper); speech output is encoded here from
 * float PCM. libsndfile (through its virtual I/O, over memory) reads and writes WAV, FLAC,
 * Ogg/Vorbis, Ogg/Opus and writes MP3; libmpg123 and libvorbisfile (the libraries under
 * libsndfile's own readers) read MP3 and Ogg/Vorbis; libsoxr resamples; the `ffmpeg` program, when
 * installed, handles what libsndfile cannot (M4A/AAC, WebM) as a subprocess. Every input is
 * hostile: sizes, rates, channel counts and durations are checked before anything is allocated from
 * them. Exports sy_audio_*, and the helpers sy_fvec_* (a growable float vector) and
 * sy_resampler_*; audio.c, audio_decode.c and audio_encode.c share this one header. */
#ifndef SY_AUDIO_H
#define SY_AUDIO_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SY_AUDIO_MAX_RATE 768000
#define SY_AUDIO_MAX_CHANNELS 64
#define SY_AUDIO_DEFAULT_MAX_BYTES ((size_t)25 << 20)
#define SY_AUDIO_DEFAULT_MAX_SECONDS (4.0 * 3600.0)

typedef struct sy_audio {
  float *pcm; /* mono, in [-1, 1] */
  size_t n;   /* samples */
  int rate;
} sy_audio;

typedef struct sy_audio_limits {
  size_t max_bytes;   /* the upload; 0 = SY_AUDIO_DEFAULT_MAX_BYTES (25 MiB) */
  double max_seconds; /* the decoded duration; 0 = SY_AUDIO_DEFAULT_MAX_SECONDS (4 h) */
} sy_audio_limits;

/* Decode an uploaded file, whatever its name says (the format is told from its content), into
 * mono float at out_rate (1..768000; e.g. 16000). WAV, AIFF, AU, CAF, FLAC and Ogg/Opus go through
 * libsndfile, MP3 through libmpg123, Ogg/Vorbis through libvorbisfile; M4A/AAC, WebM and whatever
 * libsndfile refuses go through `ffmpeg` when it is installed (SWITCHYARD_FFMPEG names the program,
 * else PATH is searched). lim may be NULL (defaults). Returns 0 (out filled; free with
 * sy_audio_free), or -1 with a one-line reason in err: the caller answers 400, or 415 when
 * *unsupported is set (a format this build cannot read; unsupported may be NULL). */
int sy_audio_decode(const void *data, size_t len, int out_rate, const sy_audio_limits *lim,
                    sy_audio *out, bool *unsupported, char *err, size_t err_len);
void sy_audio_free(sy_audio *a);

/* Encode mono float PCM at in_rate into format — "wav" (16-bit PCM), "flac", "mp3", "opus",
 * "ogg"/"vorbis", "pcm" (raw s16le, OpenAI's pcm), "aac" (ADTS, through ffmpeg when installed) —
 * resampled to out_rate (0 = in_rate; formats with a fixed set of rates take the nearest one:
 * opus 8/12/16/24/48 kHz, mp3 and aac the MPEG rates). Appends to *out. 0, or -1 with err. */
int sy_audio_encode(const float *pcm, size_t n, int in_rate, const char *format, int out_rate,
                    sy_buf *out, char *err, size_t err_len);

/* A streaming encoder: each feed appends the bytes that are ready so far. wav carries a streaming
 * header (sizes 0xFFFFFFFF, as OpenAI streams it); pcm is raw; mp3 is bare frames (no Xing
 * header, which could only be written at the end); opus/ogg are Ogg pages; flac's STREAMINFO
 * says "length unknown"; aac is encoded at finish. The rate a format ends up with is
 * sy_audio_enc_rate. feed/finish return 0, or -1 (sy_audio_enc_error says why). */
typedef struct sy_audio_enc sy_audio_enc;
sy_audio_enc *sy_audio_enc_new(const char *format, int in_rate, int out_rate, char *err,
                               size_t err_len);
int sy_audio_enc_feed(sy_audio_enc *e, const float *pcm, size_t n, sy_buf *out);
int sy_audio_enc_finish(sy_audio_enc *e, sy_buf *out);
int sy_audio_enc_rate(const sy_audio_enc *e);
const char *sy_audio_enc_error(const sy_audio_enc *e);
void sy_audio_enc_free(sy_audio_enc *e);

/* The Content-Type of an encoded format: audio/mpeg, audio/wav, audio/flac, audio/ogg (opus and
 * vorbis, in Ogg, as OpenAI), audio/aac, audio/pcm; NULL for a format sy_audio_encode refuses. */
const char *sy_audio_content_type(const char *format);
/* Whether format is one sy_audio_encode knows (aac: also needs ffmpeg at run time). */
bool sy_audio_format_known(const char *format);

/* ---- shared by audio_decode.c and audio_encode.c (audio.c) ---------------------------------- */

/* A growable float vector with a hard cap (in samples; 0 = none). */
typedef struct sy_fvec {
  float *p;
  size_t n, cap, limit;
} sy_fvec;
int sy_fvec_append(sy_fvec *v, const float *p, size_t n);
void sy_fvec_free(sy_fvec *v);

/* A streaming resampler (libsoxr, high quality); in == out rate copies. */
typedef struct sy_resampler {
  void *soxr;
  double ratio;
} sy_resampler;
int sy_resampler_init(sy_resampler *r, int in_rate, int out_rate, char *err, size_t err_len);
/* Append the output for n more input samples (n = 0 with pcm NULL: flush the tail) to out. */
int sy_resampler_feed(sy_resampler *r, const float *pcm, size_t n, sy_fvec *out);
void sy_resampler_free(sy_resampler *r);

/* The ffmpeg program to run (SWITCHYARD_FFMPEG, else "ffmpeg" on PATH) into path; false when
 * there is none. */
bool sy_audio_ffmpeg_find(char *path, size_t path_len);
/* Run ffmpeg (argv[0] is replaced by the found path; no shell) with in on its stdin, its stdout
 * appended to out (at most out_max bytes: more is an error), killed after timeout_s seconds.
 * 0, or -1 with err (the last line ffmpeg printed on stderr, when it failed). */
int sy_audio_ffmpeg_run(const char *const *argv, const void *in, size_t in_len, sy_buf *out,
                        size_t out_max, double timeout_s, char *err, size_t err_len);

#endif
