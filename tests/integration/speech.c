/* speech.c — text to speech with the built-in `speak` model (espeak-ng, no file) on the main
 * daemon: WAV, raw PCM and SSE carrying the same samples, mp3/opus/flac/aac that decode back,
 * errors, a client that hangs up (synthesis cancelled), and builtin_voice: false.
 * Must never happen: a malformed WAV, formats that disagree on the samples, synthesis that runs
 * on after the client left.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

static json_t *speech_body(const char *input, const char *format) {
  return json_pack("{s:s, s:s, s:s}", "model", "speak", "input", input, "response_format", format);
}

static const char speech_text[] = "Hello from Switchyard. This is the built-in voice.";

/* A long multi-sentence input (many synth callbacks, several sentences). */
static const char *speech_long(void) {
  static char buf[3000];
  if (!buf[0]) {
    size_t p = 0;
    for (int i = 0; i < 30 && p + 80 < sizeof buf; i++)
      p += (size_t)snprintf(buf + p, sizeof buf - p,
                            "This is sentence number %d of a longer text. ", i + 1);
  }
  return buf;
}

static void t_speech_wav(void) {
  it_speech_resp r;
  it_speech_post(&D, speech_body(speech_text, "wav"), &r);
  CHECK(r.status == 200, "status %ld: %.300s", r.status, r.body.data ? r.body.data : "");
  CHECK(strcmp(r.ctype, "audio/wav") == 0, "content type %s", r.ctype);
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool ok = it_wav_parse(&r.body, &data, &n, why, sizeof why);
  size_t nz = 0;
  for (size_t i = 0; ok && i + 1 < n; i += 2) nz += data[i] || data[i + 1];
  sy_buf_free(&r.body);
  CHECK(ok, "a WAV: %s", why);
  CHECK(n > 24000 && n % 2 == 0, "%zu bytes of 16-bit samples (more than half a second)", n);
  CHECK(nz > n / 8, "not silence: %zu non-zero samples of %zu", nz, n / 2);
  /* the same request twice: the same bytes (espeak runs in a fresh child each time) */
  it_speech_resp a, b;
  it_speech_post(&D, speech_body(speech_long(), "wav"), &a);
  it_speech_post(&D, speech_body(speech_long(), "wav"), &b);
  bool same = a.status == 200 && b.status == 200 && a.body.len == b.body.len && a.body.len > 44 &&
              memcmp(a.body.data, b.body.data, a.body.len) == 0;
  size_t la = a.body.len, lb = b.body.len;
  sy_buf_free(&a.body);
  sy_buf_free(&b.body);
  CHECK(same, "deterministic: %ld/%ld, %zu vs %zu bytes", a.status, b.status, la, lb);
}

/* pcm: raw s16le at 24 kHz; the same samples as the WAV's data, and as the SSE events' audio; the
 * done event counts them. Streams: chunked, many SSE deltas for a long text. */
static void t_speech_pcm_sse(void) {
  it_speech_resp p, w, s;
  it_speech_post(&D, speech_body(speech_long(), "pcm"), &p);
  it_speech_post(&D, speech_body(speech_long(), "wav"), &w);
  json_t *sb = speech_body(speech_long(), "pcm");
  json_object_set_new(sb, "stream_format", json_string("sse"));
  it_speech_post(&D, sb, &s);
  const unsigned char *data = NULL;
  size_t n = 0;
  char why[160] = "";
  bool wav_ok = w.status == 200 && it_wav_parse(&w.body, &data, &n, why, sizeof why);
  bool same_wav = wav_ok && n == p.body.len && memcmp(data, p.body.data, n) == 0;
  sy_buf audio = {0};
  bool done = false, wf = false;
  json_t *ev = it_sse_events(&s.body, &done, &wf);
  size_t deltas = 0, i;
  json_t *e;
  const json_t *last = NULL;
  bool bad_b64 = false;
  json_array_foreach(ev, i, e) {
    const char *t = it_jstr(e, "type");
    if (t && strcmp(t, "speech.audio.delta") == 0) {
      deltas++;
      const char *b = it_jstr(e, "audio");
      size_t bl = b ? strlen(b) : 0;
      static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      unsigned acc = 0;
      int bits = 0;
      for (size_t k = 0; k < bl && b[k] != '='; k++) {
        const char *q = strchr(al, b[k]);
        if (!q || !b[k]) {
          bad_b64 = true;
          break;
        }
        acc = (acc << 6) | (unsigned)(q - al);
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          char c = (char)((acc >> bits) & 0xFF);
          sy_buf_append(&audio, &c, 1);
        }
      }
    }
    last = e;
  }
  char last_type[64] = "";
  snprintf(last_type, sizeof last_type, "%s",
           last && it_jstr(last, "type") ? it_jstr(last, "type") : "(none)");
  long long in_tok = last ? it_jnum(last, "usage.input_tokens") : -1,
            samples = last ? it_jnum(last, "samples") : -1;
  bool same_sse =
      audio.len == p.body.len && audio.len && memcmp(audio.data, p.body.data, audio.len) == 0;
  size_t plen = p.body.len, alen = audio.len;
  bool chunked = p.chunked;
  int writes = p.writes;
  double t_first = p.t_first, t_total = p.t_total;
  const char *pct = strcmp(p.ctype, "audio/pcm") == 0 ? NULL : "pcm content type";
  json_decref(ev);
  sy_buf_free(&audio);
  sy_buf_free(&p.body);
  sy_buf_free(&w.body);
  sy_buf_free(&s.body);
  CHECK(p.status == 200 && s.status == 200, "status pcm %ld, sse %ld", p.status, s.status);
  CHECK(!pct, "%s", pct);
  CHECK(plen % 2 == 0 && plen > 48000, "pcm: %zu bytes", plen);
  CHECK(wav_ok, "wav: %s", why);
  CHECK(same_wav, "pcm = the WAV's data (%zu vs %zu bytes)", plen, n);
  CHECK(wf && !bad_b64, "SSE well formed, base64 audio");
  CHECK(deltas > 3, "the long text streams as many deltas: %zu", deltas);
  CHECK(strcmp(last_type, "speech.audio.done") == 0, "ends with speech.audio.done: %s", last_type);
  CHECK(in_tok == (long long)strlen(speech_long()), "usage.input_tokens %lld (characters)", in_tok);
  CHECK(same_sse, "the SSE audio is the pcm body (%zu vs %zu bytes)", alen, plen);
  CHECK(samples >= 0 && samples == (long long)plen / 2, "pcm length %zu = 2 x %lld samples", plen,
        samples);
  CHECK(chunked && writes > 1, "chunked (%d), in %d pieces", chunked, writes);
  CHECK(t_first < t_total, "the first byte came before the last (%.3f < %.3f s)", t_first, t_total);
}

/* mp3, opus, flac, aac: their magic bytes, and they decode (the audio module) to about as many
 * samples as the WAV holds, not silence. aac needs ffmpeg: without it, a 400 unsupported_format. */
static void t_speech_formats(void) {
  static const struct {
    const char *fmt, *ctype;
  } f[] = {
      {"mp3", "audio/mpeg"}, {"opus", "audio/ogg"}, {"flac", "audio/flac"}, {"aac", "audio/aac"}};
  it_speech_resp w;
  it_speech_post(&D, speech_body(speech_text, "wav"), &w);
  size_t wav_samples = w.body.len > 44 ? (w.body.len - 44) / 2 : 0;
  sy_buf_free(&w.body);
  CHECK(w.status == 200 && wav_samples > 12000, "wav: %ld", w.status);
  char ff[512];
  bool have_ffmpeg = sy_audio_ffmpeg_find(ff, sizeof ff);
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
    it_speech_resp r;
    it_speech_post(&D, speech_body(speech_text, f[i].fmt), &r);
    const unsigned char *b = (const unsigned char *)(r.body.data ? r.body.data : "");
    size_t n = r.body.len;
    long st = r.status;
    if (!strcmp(f[i].fmt, "aac") && !have_ffmpeg) {
      bool refused = st == 400 && r.body.data && strstr(r.body.data, "unsupported_format");
      sy_buf_free(&r.body);
      CHECK(refused, "aac without ffmpeg: %ld", st);
      continue;
    }
    bool magic =
        !strcmp(f[i].fmt, "mp3")
            ? n > 3 && (!memcmp(b, "ID3", 3) || (b[0] == 0xFF && (b[1] & 0xE0) == 0xE0))
        : !strcmp(f[i].fmt, "opus")
            ? n > 36 && !memcmp(b, "OggS", 4) && memmem(b, n < 200 ? n : 200, "OpusHead", 8)
        : !strcmp(f[i].fmt, "flac") ? n > 4 && !memcmp(b, "fLaC", 4)
                                    : n > 2 && b[0] == 0xFF && (b[1] & 0xF6) == 0xF0; /* ADTS */
    char ct[64], err[256] = "";
    snprintf(ct, sizeof ct, "%s", r.ctype);
    sy_audio a = {0};
    bool unsup = false;
    int drc = st == 200 ? sy_audio_decode(b, n, 24000, NULL, &a, &unsup, err, sizeof err) : -1;
    double energy = 0;
    for (size_t k = 0; k < a.n; k++) energy += (double)a.pcm[k] * a.pcm[k];
    size_t got = a.n;
    sy_audio_free(&a);
    sy_buf_free(&r.body);
    CHECK(st == 200, "%s: status %ld", f[i].fmt, st);
    CHECK(magic && n > 1000, "%s: magic bytes, %zu bytes", f[i].fmt, n);
    CHECK(strcmp(ct, f[i].ctype) == 0, "%s: content type %s", f[i].fmt, ct);
    CHECK(drc == 0 || unsup, "%s: decodes: %s", f[i].fmt, err);
    if (drc != 0) continue; /* a format this build reads only through ffmpeg */
    CHECK(got > wav_samples * 9 / 10 && got < wav_samples * 11 / 10 + 4800,
          "%s: %zu samples, the WAV %zu", f[i].fmt, got, wav_samples);
    CHECK(energy / (double)got > 1e-5, "%s: not silence (mean square %g)", f[i].fmt,
          energy / (double)got);
  }
}

static void t_speech_errors(void) {
  resp r;
  it_post_json("/v1/audio/speech", json_pack("{s:s}", "model", "speak"), &r);
  CHECK(it_is_error(&r, 400, "missing_required_parameter") &&
            !strcmp(it_jstr(r.json, "error.param"), "input"),
        "missing input: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  char *big = malloc(4098);
  memset(big, 'a', 4097);
  big[4097] = '\0';
  it_post_json("/v1/audio/speech", speech_body(big, "wav"), &r);
  free(big);
  CHECK(it_is_error(&r, 400, "string_above_max_length"), "4097 characters: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/audio/speech", speech_body("hi", "ogg"), &r);
  CHECK(it_is_error(&r, 400, "invalid_value") &&
            !strcmp(it_jstr(r.json, "error.param"), "response_format"),
        "unknown format: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/audio/speech", json_pack("{s:s, s:s}", "model", "chat", "input", "hi"), &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "a chat model: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json(
      "/v1/audio/speech",
      json_pack("{s:s, s:s, s:s}", "model", "speak", "input", "hi", "voice", "no-such-voice"), &r);
  CHECK(it_is_error(&r, 400, "invalid_voice"), "unknown voice: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/audio/speech",
               json_pack("{s:s, s:s, s:f}", "model", "speak", "input", "hi", "speed", 5.0), &r);
  CHECK(it_is_error(&r, 400, "invalid_value"), "speed 5: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions",
               json_pack("{s:s, s:[{s:s, s:s}]}", "model", "speak", "messages", "role", "user",
                         "content", "hi"),
               &r);
  CHECK(it_is_error(&r, 400, "wrong_capability"), "chat with the voice: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  /* voices: OpenAI's names and espeak's languages, for the speak model */
  it_get("/v1/audio/voices", &r);
  bool en = false, alloy = false;
  size_t i, k;
  json_t *m, *v;
  json_array_foreach(json_object_get(r.json, "data"), i, m) {
    if (!it_jstr(m, "model") || strcmp(it_jstr(m, "model"), "speak") != 0) continue;
    json_array_foreach(json_object_get(m, "voices"), k, v) {
      en |= it_jstr(v, "id") && !strcmp(it_jstr(v, "id"), "en-us");
      alloy |= it_jstr(v, "id") && !strcmp(it_jstr(v, "id"), "alloy");
    }
  }
  CHECK(r.status == 200 && en && alloy, "voices: %ld %.300s", r.status, r.body.data);
  it_resp_clear(&r);
  /* every listed voice id speaks: a few of them, with a variant and a speed */
  const char *ok_voices[] = {"en-gb", "alloy", "en-us+f3", "de", "English (Great Britain)"};
  for (size_t q = 0; q < sizeof ok_voices / sizeof *ok_voices; q++) {
    it_speech_resp s;
    json_t *b = speech_body("Hello.", "pcm");
    json_object_set_new(b, "voice", json_string(ok_voices[q]));
    json_object_set_new(b, "speed", json_real(1.5));
    it_speech_post(&D, b, &s);
    size_t n = s.body.len;
    sy_buf_free(&s.body);
    CHECK(s.status == 200 && n > 1000, "voice %s: %ld, %zu bytes", ok_voices[q], s.status, n);
  }
}

/* A client that hangs up mid-stream cancels the synthesis (counted in /api/ps stats.cancelled);
 * the voice serves the next request at once. */
static size_t speech_hangup(char *p, size_t sz, size_t n, void *ud) {
  (void)p, (void)sz, (void)n, (void)ud;
  return 0; /* take nothing of the first piece: curl aborts the transfer */
}

static void t_speech_disconnect(void) {
  resp r;
  it_get("/api/ps", &r);
  long long before = it_jnum(r.json, "stats.cancelled");
  it_resp_clear(&r);
  char *s = json_dumps(speech_body(speech_long(), "pcm"), JSON_COMPACT);
  CURL *c = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "%s/v1/audio/speech", D.base);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, speech_hangup);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode cc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  free(s);
  CHECK(cc == CURLE_WRITE_ERROR, "the client hung up after the first piece (%d)", (int)cc);
  long long after = before;
  for (int i = 0; i < 500 && after <= before; i++) { /* the daemon notices on its next write */
    it_get("/api/ps", &r);
    after = it_jnum(r.json, "stats.cancelled");
    it_resp_clear(&r);
    if (after <= before) usleep(10000);
  }
  CHECK(after == before + 1, "stats.cancelled %lld -> %lld", before, after);
  it_speech_resp p;
  it_speech_post(&D, speech_body(speech_text, "pcm"), &p);
  size_t n = p.body.len;
  sy_buf_free(&p.body);
  CHECK(p.status == 200 && n > 1000, "the next request: %ld, %zu bytes", p.status, n);
}

static void speech_off_body(void) {
  resp r;
  it_http_do(&B, "GET", "/v1/models", NULL, &r, NULL);
  bool has = r.body.data && strstr(r.body.data, "\"speak\"");
  it_resp_clear(&r);
  CHECK(!has, "builtin_voice: false lists no speak model");
  char *s = json_dumps(speech_body("hi", "wav"), JSON_COMPACT);
  it_http_do(&B, "POST", "/v1/audio/speech", s, &r, NULL);
  free(s);
  CHECK(it_is_error(&r, 404, "model_not_found"), "speak is unknown: %ld", r.status);
  it_resp_clear(&r);
}

static void t_speech_builtin_off(void) {
  it_with_own_daemon("speech_off", "log_level: warn\nbuiltin_voice: false\n", speech_off_body);
}

static const it_test tests[] = {
    {"speech_wav", t_speech_wav, false},
    {"speech_pcm_sse", t_speech_pcm_sse, false},
    {"speech_formats", t_speech_formats, false},
    {"speech_errors", t_speech_errors, false},
    {"speech_disconnect", t_speech_disconnect, false},
    {"speech_builtin_off", t_speech_builtin_off, false},
};
const itest_table itest_speech = {"speech", tests, sizeof tests / sizeof *tests};
