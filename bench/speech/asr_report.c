/* asr_report.c — the helper of bench/speech_asr.sh (`make bench-speech-asr`), two modes:
 *
 *   bench-asr --make-audio OUT SECONDS [JFK.wav]
 *     writes OUT, a 16 kHz mono 16-bit WAV of SECONDS: JFK.wav (16 kHz mono PCM16) repeated to the
 *     length when that file exists, else a speech-like signal (voiced syllables with a wandering
 *     pitch and pauses, a fixed seed: the same bytes every time).
 *
 *   bench-asr --report OUT RUNS SECONDS MODEL THREADS LOAD0 LOAD1 FA OMP TEMP "TIMES_S" "TIMES_W"
 *     reads OUT/speech-{switchyard,server}-<run>.json (the answers), writes OUT/speech.json (raw
 *     times, settings, whether the texts match without white space) and prints the markdown table.
 *
 * Both reproduce, byte for byte, what the script's earlier inline Python wrote (its wave module's
 * header, random.Random(1) for the noise, json.dump(indent=1) with repr floats and ASCII escapes),
 * so results stay comparable with the ones already in docs/PERFORMANCE.md. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RATE 16000
#define MAX_SECONDS 100000.0       /* keeps the RIFF sizes inside 32 bits */
#define MAX_JFK_BYTES (256u << 20) /* the source WAV's data chunk */
#define MAX_CHUNKS 64              /* chunks skipped before "data" */
#define MAX_RUNS 10000
#define TEXT_KEEP 500 /* code points of the first answer kept in speech.json */

static int fail(const char *fmt, const char *a) {
  fprintf(stderr, "bench-asr: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  return 1;
}

static bool parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s) return false;
  while (*end == ' ' || *end == '\t' || *end == '\n') end++;
  if (*end || errno == ERANGE) return false;
  *out = v;
  return true;
}

/* ---- --make-audio ---------------------------------------------------------------------- */

/* MT19937 seeded like CPython's random.seed(1) (init_by_array with the key {1}), and its
 * random(): 53 bits from two draws. */
typedef struct mt {
  uint32_t s[624];
  int i;
} mt;

static void mt_init(mt *m, uint32_t seed) {
  m->s[0] = seed;
  for (int i = 1; i < 624; i++)
    m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + (uint32_t)i;
  m->i = 624;
}

static void mt_init_key1(mt *m, uint32_t key) {
  mt_init(m, 19650218u);
  uint32_t *s = m->s;
  int i = 1;
  for (int k = 624; k; k--) { /* key length 1: j stays 0 */
    s[i] = (s[i] ^ ((s[i - 1] ^ (s[i - 1] >> 30)) * 1664525u)) + key;
    if (++i >= 624) {
      s[0] = s[623];
      i = 1;
    }
  }
  for (int k = 623; k; k--) {
    s[i] = (s[i] ^ ((s[i - 1] ^ (s[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
    if (++i >= 624) {
      s[0] = s[623];
      i = 1;
    }
  }
  s[0] = 0x80000000u;
}

static uint32_t mt_next(mt *m) {
  if (m->i >= 624) {
    for (int k = 0; k < 624; k++) {
      uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
      m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    m->i = 0;
  }
  uint32_t y = m->s[m->i++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

static double mt_random(mt *m) {
  uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
  return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

static void put16(unsigned char *p, unsigned v) {
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
}
static void put32(unsigned char *p, uint32_t v) {
  put16(p, v & 0xffff);
  put16(p + 2, v >> 16);
}
static uint32_t get32(const unsigned char *p) {
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}
static unsigned get16(const unsigned char *p) { return p[0] | p[1] << 8; }

/* The data chunk of a 16 kHz mono PCM16 RIFF/WAVE file (the checks Python's wave module made,
 * which the script asserted on); *len bytes, a whole number of samples. */
static unsigned char *wav_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail("%s: cannot open", path);
    return NULL;
  }
  unsigned char h[12], c[8], fmt[16];
  bool have_fmt = false;
  unsigned char *data = NULL;
  if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) {
    fail("%s: not a RIFF/WAVE file", path);
    goto out;
  }
  for (int n = 0; n < MAX_CHUNKS; n++) {
    if (fread(c, 1, 8, f) != 8) {
      fail("%s: no data chunk", path);
      goto out;
    }
    uint32_t size = get32(c + 4);
    if (!memcmp(c, "fmt ", 4)) {
      if (size < 16 || fread(fmt, 1, 16, f) != 16) {
        fail("%s: short fmt chunk", path);
        goto out;
      }
      unsigned tag = get16(fmt), ch = get16(fmt + 2), bits = get16(fmt + 14);
      if (tag != 1) {
        fail("%s: not PCM", path);
        goto out;
      }
      if (ch != 1 || get32(fmt + 4) != RATE || (bits + 7) / 8 != 2) {
        fail("%s: not 16 kHz mono 16-bit", path);
        goto out;
      }
      have_fmt = true;
      size -= 16;
    } else if (!memcmp(c, "data", 4)) {
      if (!have_fmt) {
        fail("%s: data chunk before fmt", path);
        goto out;
      }
      if (size > MAX_JFK_BYTES) {
        fail("%s: data chunk too large", path);
        goto out;
      }
      size &= ~1u;
      data = malloc(size ? size : 1);
      if (!data) {
        fail("%s: out of memory", path);
        goto out;
      }
      *len = fread(data, 1, size, f) & ~(size_t)1; /* a cut file: what is there, whole samples */
      goto out;
    }
    /* skip the rest of this chunk and its pad byte */
    if (fseek(f, (long)size + (long)(size & 1), SEEK_CUR)) {
      fail("%s: bad chunk", path);
      goto out;
    }
  }
  fail("%s: too many chunks before data", path);
out:
  fclose(f);
  return data;
}

static int make_audio(const char *path, const char *secs, const char *jfk) {
  double seconds;
  if (!parse_double(secs, &seconds) || !(seconds >= 0 && seconds <= MAX_SECONDS))
    return fail("bad SECONDS '%s' (0 .. 100000)", secs);
  uint32_t n = (uint32_t)(seconds * RATE);
  struct stat st;
  bool real = jfk && *jfk && stat(jfk, &st) == 0;
  unsigned char *src = NULL;
  size_t srclen = 0;
  if (real) {
    src = wav_read(jfk, &srclen);
    if (!src) return 1;
    if (srclen == 0 && n > 0) {
      free(src);
      return fail("%s: no samples", jfk);
    }
  }
  FILE *o = fopen(path, "wb");
  if (!o) {
    free(src);
    return fail("%s: cannot create", path);
  }
  unsigned char h[44];
  uint32_t bytes = 2 * n;
  memcpy(h, "RIFF", 4);
  put32(h + 4, 36 + bytes);
  memcpy(h + 8, "WAVEfmt ", 8);
  put32(h + 16, 16);
  put16(h + 20, 1);
  put16(h + 22, 1);
  put32(h + 24, RATE);
  put32(h + 28, RATE * 2);
  put16(h + 32, 2);
  put16(h + 34, 16);
  memcpy(h + 36, "data", 4);
  put32(h + 40, bytes);
  bool ok = fwrite(h, 1, 44, o) == 44;
  if (real) {
    for (uint32_t left = bytes; ok && left > 0;) {
      size_t k = left < srclen ? left : srclen;
      ok = fwrite(src, 1, k, o) == k;
      left -= (uint32_t)k;
    }
  } else {
    /* the same arithmetic, in the same order, as the Python it replaces (bit-exact doubles) */
    mt m;
    mt_init_key1(&m, 1);
    double ph = 0.0;
    unsigned char buf[4096];
    size_t nb = 0;
    for (uint32_t i = 0; ok && i < n; i++) {
      double t = (double)i / 16000;
      double syl = fmod(t * 4, 1);
      double env = fmod(t, 2) > 1.6 ? 0 : pow(sin(M_PI * syl), 2);
      double f0 = 120 + 30 * sin(2 * M_PI * 0.3 * t);
      ph += 2 * M_PI * f0 / 16000;
      double sum = 0.0;
      for (int k = 1; k < 12; k++) sum += sin((double)k * ph) / (double)k;
      double v = sum * env * 0.2 + (-0.01 + (0.01 - -0.01) * mt_random(&m));
      double c = v > 1 ? 1 : v < -1 ? -1 : v;
      int s = (int)(c * 32767);
      put16(buf + nb, (unsigned)s & 0xffff);
      nb += 2;
      if (nb == sizeof buf || i + 1 == n) {
        ok = fwrite(buf, 1, nb, o) == nb;
        nb = 0;
      }
    }
  }
  free(src);
  if (fclose(o) != 0) ok = false;
  if (!ok) return fail("%s: write failed", path);
  if (real)
    fprintf(stderr, "bench: %s: jfk.wav repeated to %g s\n", path, seconds);
  else
    fprintf(stderr, "bench: %s: synthetic speech-like signal, %g s\n", path, seconds);
  return 0;
}

/* ---- --report -------------------------------------------------------------------------- */

/* Next code point of UTF-8 s[*i..len); a byte that starts no valid sequence comes back as
 * 0xDC00 + byte (Python's surrogateescape, how it saw command-line bytes). */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i) {
  unsigned char b = s[*i];
  int need = b < 0x80             ? 0
             : (b & 0xe0) == 0xc0 ? 1
             : (b & 0xf0) == 0xe0 ? 2
             : (b & 0xf8) == 0xf0 ? 3
                                  : -1;
  uint32_t cp = need == 0 ? b : need == 1 ? (b & 0x1fu) : need == 2 ? (b & 0x0fu) : (b & 0x07u);
  if (need > 0) {
    bool good = true;
    for (int k = 1; k <= need; k++) {
      if (*i + (size_t)k >= len || (s[*i + k] & 0xc0) != 0x80) {
        good = false;
        break;
      }
      cp = cp << 6 | (s[*i + k] & 0x3fu);
    }
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    if (good && cp >= min[need] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) {
      *i += (size_t)need + 1;
      return cp;
    }
  }
  (*i)++;
  return need == 0 ? b : 0xdc00u + b;
}

/* Python's str.isspace(), what str.split() splits on */
static bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

typedef struct buf {
  char *p;
  size_t n;
} buf;

/* the answer's "text" without white space; false (message printed) when it cannot be read */
static bool answer_text(const char *dir, const char *who, int run, buf *out, json_t **keep) {
  char path[4096];
  snprintf(path, sizeof path, "%s/speech-%s-%d.json", dir, who, run);
  json_error_t e;
  json_t *j = json_load_file(path, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
  json_t *t = json_is_object(j) ? json_object_get(j, "text") : NULL;
  if (!json_is_string(t)) {
    json_decref(j);
    fail("%s: no \"text\" string in a JSON object", path);
    return false;
  }
  const unsigned char *s = (const unsigned char *)json_string_value(t);
  size_t len = json_string_length(t);
  out->p = malloc(len + 1);
  out->n = 0;
  if (!out->p) {
    json_decref(j);
    fail("%s: out of memory", path);
    return false;
  }
  for (size_t i = 0; i < len;) {
    size_t at = i;
    if (!py_space(utf8_next(s, len, &i))) {
      memcpy(out->p + out->n, s + at, i - at);
      out->n += i - at;
    }
  }
  if (keep)
    *keep = j;
  else
    json_decref(j);
  return true;
}

/* a JSON string as json.dump writes it (ensure_ascii): at most max code points of s */
static void py_json_str(FILE *f, const char *str, size_t len, size_t max) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', f);
  size_t count = 0;
  for (size_t i = 0; i < len && count < max; count++) {
    uint32_t c = utf8_next(s, len, &i);
    switch (c) {
      case '"':
        fputs("\\\"", f);
        break;
      case '\\':
        fputs("\\\\", f);
        break;
      case '\n':
        fputs("\\n", f);
        break;
      case '\r':
        fputs("\\r", f);
        break;
      case '\t':
        fputs("\\t", f);
        break;
      case '\b':
        fputs("\\b", f);
        break;
      case '\f':
        fputs("\\f", f);
        break;
      default:
        if (c >= 0x20 && c <= 0x7e)
          fputc((int)c, f);
        else if (c < 0x10000)
          fprintf(f, "\\u%04x", c);
        else
          fprintf(f, "\\u%04x\\u%04x", 0xd800 + ((c - 0x10000) >> 10),
                  0xdc00 + ((c - 0x10000) & 0x3ff));
    }
  }
  fputc('"', f);
}

/* repr(float) as json.dump writes it: the shortest digits that read back, fixed notation for
 * decimal exponents -4 .. 15, else d.ddde+XX */
static void py_json_real(FILE *f, double v) {
  if (isnan(v)) {
    fputs("NaN", f);
    return;
  }
  if (isinf(v)) {
    fputs(v > 0 ? "Infinity" : "-Infinity", f);
    return;
  }
  char e[40];
  for (int p = 0; p < 17; p++) {
    snprintf(e, sizeof e, "%.*e", p, v);
    if (strtod(e, NULL) == v) break;
  }
  /* e: [-]d[.ddd]e[+-]XX -> sign, digits, decimal exponent */
  char digits[24];
  size_t nd = 0;
  const char *q = e;
  bool neg = *q == '-';
  if (neg) q++;
  for (; *q && *q != 'e'; q++)
    if (*q != '.') digits[nd++] = *q;
  int x = atoi(q + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = 0;
  if (neg) fputc('-', f);
  int decpt = x + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      fputs("0.", f);
      for (int k = decpt; k < 0; k++) fputc('0', f);
      fputs(digits, f);
    } else if ((size_t)decpt >= nd) {
      fputs(digits, f);
      for (size_t k = nd; k < (size_t)decpt; k++) fputc('0', f);
      fputs(".0", f);
    } else {
      fprintf(f, "%.*s.%s", decpt, digits, digits + decpt);
    }
  } else {
    fputc(digits[0], f);
    if (nd > 1) fprintf(f, ".%s", digits + 1);
    fprintf(f, "e%c%02d", x < 0 ? '-' : '+', abs(x));
  }
}

static void py_json_list(FILE *f, const char *key, const double *v, int n) {
  fprintf(f, "\n \"%s\": [", key);
  for (int i = 0; i < n; i++) {
    fputs(i ? ",\n  " : "\n  ", f);
    py_json_real(f, v[i]);
  }
  fputs(n ? "\n ]," : "],", f);
}

/* the times in a space-separated list; false when one does not read as a number */
static int parse_times(const char *s, double *v, int max) {
  int n = 0;
  char tok[128];
  for (const char *p = s;;) {
    while (*p && strchr(" \t\n\r\v\f", *p)) p++;
    if (!*p) return n;
    size_t k = strcspn(p, " \t\n\r\v\f");
    if (k >= sizeof tok || n >= max) return -1;
    memcpy(tok, p, k);
    tok[k] = 0;
    if (!parse_double(tok, &v[n++])) return -1;
    p += k;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double *s = malloc(sizeof *s * (size_t)n);
  if (!s) return NAN;
  memcpy(s, v, sizeof *s * (size_t)n);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  free(s);
  return m;
}

static double vmin(const double *v, int n) {
  double m = v[0];
  for (int i = 1; i < n; i++)
    if (v[i] < m) m = v[i];
  return m;
}
static double vmax(const double *v, int n) {
  double m = v[0];
  for (int i = 1; i < n; i++)
    if (v[i] > m) m = v[i];
  return m;
}

static int report(char **a) {
  const char *out = a[0], *runs_s = a[1], *secs_s = a[2], *model = a[3], *threads_s = a[4];
  const char *load0 = a[5], *load1 = a[6], *fa = a[7], *omp = a[8], *temp_s = a[9];
  double seconds, temp;
  char *end;
  long runs = strtol(runs_s, &end, 10), threads;
  if (end == runs_s || *end || runs < 1 || runs > MAX_RUNS) return fail("bad RUNS '%s'", runs_s);
  if (!parse_double(secs_s, &seconds) || seconds == 0) return fail("bad SECONDS '%s'", secs_s);
  threads = strtol(threads_s, &end, 10);
  if (end == threads_s || *end) return fail("bad THREADS '%s'", threads_s);
  if (!parse_double(temp_s, &temp)) return fail("bad TEMP '%s'", temp_s);
  static double ts[MAX_RUNS], tw[MAX_RUNS];
  int ns = parse_times(a[10], ts, MAX_RUNS), nw = parse_times(a[11], tw, MAX_RUNS);
  if (ns < 1) return fail("bad switchyard times '%s'", a[10]);
  if (nw < 1) return fail("bad whisper-server times '%s'", a[11]);

  bool same = true;
  for (int i = 1; i <= runs && same; i++) {
    buf x, y;
    if (!answer_text(out, "switchyard", i, &x, NULL)) return 1;
    if (!answer_text(out, "server", i, &y, NULL)) {
      free(x.p);
      return 1;
    }
    same = x.n == y.n && !memcmp(x.p, y.p, x.n);
    free(x.p);
    free(y.p);
  }
  buf first;
  json_t *doc = NULL;
  if (!answer_text(out, "switchyard", 1, &first, &doc)) return 1;
  free(first.p);
  json_t *text = json_object_get(doc, "text");
  double ms = median(ts, ns), mw = median(tw, nw);
  if (mw == 0) {
    json_decref(doc);
    return fail("whisper-server's median time is 0%s", "");
  }

  char path[4096];
  snprintf(path, sizeof path, "%s/speech.json", out);
  FILE *f = fopen(path, "w");
  if (!f) {
    json_decref(doc);
    return fail("%s: cannot create", path);
  }
  fputc('{', f);
  py_json_list(f, "switchyard_s", ts, ns);
  py_json_list(f, "whisper_server_s", tw, nw);
  fputs("\n \"audio_s\": ", f);
  py_json_real(f, seconds);
  fputs(",\n \"model\": ", f);
  py_json_str(f, model, strlen(model), SIZE_MAX);
  fprintf(f, ",\n \"threads\": %ld", threads);
  fputs(",\n \"load_before\": ", f);
  py_json_str(f, load0, strlen(load0), SIZE_MAX);
  fputs(",\n \"load_after\": ", f);
  py_json_str(f, load1, strlen(load1), SIZE_MAX);
  fprintf(f, ",\n \"texts_equal\": %s", same ? "true" : "false");
  fputs(",\n \"omp_wait_policy\": ", f);
  py_json_str(f, omp, strlen(omp), SIZE_MAX);
  fputs(",\n \"temperature\": ", f);
  py_json_real(f, temp);
  fputs(",\n \"text\": ", f);
  py_json_str(f, json_string_value(text), json_string_length(text), TEXT_KEEP);
  fputs("\n}", f);
  json_decref(doc);
  if (fclose(f) != 0) return fail("%s: write failed", path);

  printf(
      "model %s, %g s of audio, %s threads, median of %s runs; load average %s before, %s after; "
      "OMP_WAIT_POLICY %s; temperature %s%s; whisper-server flash attention %s; same text from "
      "both: %s\n\n",
      model, seconds, threads_s, runs_s, load0, load1, omp, temp_s,
      temp == 0 ? " with the fallback ladder" : ", no fallback",
      strcmp(fa, "1") ? "off (-nfa)" : "on", same ? "yes" : "NO");
  printf("| metric | switchyard | whisper-server | ratio |\n");
  printf("|---|---|---|---|\n");
  printf("| wall time per request, median, s | %.2f | %.2f | %.3f |\n", ms, mw, ms / mw);
  printf("| real-time factor (median wall / audio) | %.4f | %.4f | %.3f |\n", ms / seconds,
         mw / seconds, ms / mw);
  printf("| wall time, min .. max, s | %.2f .. %.2f | %.2f .. %.2f | |\n", vmin(ts, ns),
         vmax(ts, ns), vmin(tw, nw), vmax(tw, nw));
  return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 4 && argc <= 5 && !strcmp(argv[1], "--make-audio"))
    return make_audio(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
  if (argc == 14 && !strcmp(argv[1], "--report")) return report(argv + 2);
  fprintf(stderr,
          "usage: bench-asr --make-audio OUT SECONDS [JFK.wav]\n"
          "       bench-asr --report OUT RUNS SECONDS MODEL THREADS LOAD0 LOAD1 FA OMP TEMP "
          "\"TIMES_S\" \"TIMES_W\"\n");
  return 2;
}
