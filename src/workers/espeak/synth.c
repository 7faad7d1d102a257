/* synth.c — espeak-ng behind switchyard-espeak: start-up, the voice list and how a requested
 * voice is found in it, sentence splitting, and the synthesis a forked child runs. Input is the
 * client's text: bounded (ES_MAX_TEXT), plain text only (no SSML, no embedded commands). */
#include <ctype.h>
#include <espeak-ng/speak_lib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "espeak.h"
#include "log.h"

#define ES_BUF_MS 200 /* audio per synth callback */

/* OpenAI's voice names, so a client written for OpenAI gets a voice: each picks an espeak voice
 * and variant. The choice is arbitrary but fixed (documented in docs/API.md). */
static const char *const openai_voices[][2] = {
    {"alloy", "en-us"},    {"ash", "en-us+m3"},     {"ballad", "en-gb+m2"}, {"coral", "en-us+f2"},
    {"echo", "en-us+m1"},  {"fable", "en-gb"},      {"onyx", "en-us+m7"},   {"nova", "en-us+f3"},
    {"sage", "en-gb+f4"},  {"shimmer", "en-us+f5"}, {"verse", "en-us+m2"},  {"marin", "en-us+f1"},
    {"cedar", "en-us+m4"},
};
#define N_OPENAI (sizeof openai_voices / sizeof *openai_voices)

int es_init(const char *data_dir, char *err, size_t errlen) {
  int rate =
      espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ES_BUF_MS, data_dir, espeakINITIALIZE_DONT_EXIT);
  if (rate <= 0) {
    snprintf(err, errlen, "espeak-ng could not start (data in %s)",
             data_dir ? data_dir : "its default path");
    return -1;
  }
  return rate;
}

void es_term(void) { espeak_Terminate(); }

/* The languages of a voice: (priority byte, NUL-terminated name) pairs, ended by a 0 byte. */
static const char *lang_next(const char **p) {
  if (!*p || !**p) return NULL;
  const char *name = *p + 1;
  *p = name + strlen(name) + 1;
  return name;
}

static bool usable(const espeak_VOICE *v) {
  /* mbrola voices need the mbrola program and its databases, which we do not ship */
  return v->name && v->identifier && strncmp(v->identifier, "mb/", 3) != 0;
}

json_t *es_voices_json(void) {
  const espeak_VOICE **vs = espeak_ListVoices(NULL);
  json_t *out = json_array();
  if (!out) return NULL;
  for (size_t i = 0; vs && vs[i]; i++) {
    const espeak_VOICE *v = vs[i];
    if (!usable(v)) continue;
    json_t *langs = json_array();
    const char *p = v->languages, *l, *first = NULL;
    while ((l = lang_next(&p)) != NULL) {
      if (!first) first = l;
      json_array_append_new(langs, json_string(l));
    }
    const char *g = v->gender == 1 ? "male" : v->gender == 2 ? "female" : "";
    json_array_append_new(
        out, json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", first ? first : v->identifier, "name",
                       v->name, "identifier", v->identifier, "languages", langs, "gender", g));
  }
  for (size_t i = 0; i < N_OPENAI; i++)
    json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:[s], s:s}", "id", openai_voices[i][0],
                                         "name", openai_voices[i][0], "identifier",
                                         openai_voices[i][1], "languages", "en", "gender", ""));
  return out;
}

/* A variant name from espeak-ng-data/voices/!v: letters, digits, '_' and '-' only. */
static bool variant_exists(const char *var) {
  if (!*var || strlen(var) > 40) return false;
  for (const char *c = var; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') return false;
  const char *data = NULL;
  espeak_Info(&data);
  if (!data) return false;
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof path, "%s/voices/!v/%s", data, var);
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int es_resolve_voice(const char *want, char *out, size_t outlen) {
  if (!want || !*want) want = "en-us";
  if (strlen(want) > 100) return -1;
  for (size_t i = 0; i < N_OPENAI; i++)
    if (strcasecmp(want, openai_voices[i][0]) == 0) want = openai_voices[i][1];
  char base[128], var[64] = "";
  snprintf(base, sizeof base, "%s", want);
  char *plus = strchr(base, '+');
  if (plus) {
    snprintf(var, sizeof var, "%s", plus + 1);
    *plus = '\0';
    if (!variant_exists(var)) return -1;
  }
  const espeak_VOICE **vs = espeak_ListVoices(NULL);
  const espeak_VOICE *hit = NULL;
  /* the first language of a voice, then its name, then its identifier, then any language */
  for (int pass = 0; pass < 4 && !hit; pass++) {
    for (size_t i = 0; vs && vs[i] && !hit; i++) {
      const espeak_VOICE *v = vs[i];
      if (!usable(v)) continue;
      const char *p = v->languages, *l;
      if (pass == 0) {
        l = lang_next(&p);
        if (l && strcasecmp(l, base) == 0) hit = v;
      } else if (pass == 1) {
        if (strcasecmp(v->name, base) == 0) hit = v;
      } else if (pass == 2) {
        if (strcmp(v->identifier, base) == 0) hit = v;
      } else {
        while (!hit && (l = lang_next(&p)) != NULL)
          if (strcasecmp(l, base) == 0) hit = v;
      }
    }
  }
  if (!hit) return -1;
  int n = snprintf(out, outlen, "%s%s%s", hit->identifier, *var ? "+" : "", var);
  return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int es_rate_for_speed(double speed) {
  if (!(speed > 0)) speed = 1.0;
  double r = round(ES_RATE_NORMAL * speed);
  return r < ES_RATE_MIN ? ES_RATE_MIN : r > ES_RATE_MAX ? ES_RATE_MAX : (int)r;
}

/* A sentence end at s[i] (i < len): returns its length in bytes (1 for ".!?", 3 for the CJK
 * full stops), or 0. ASCII ends count only before a space, a closing quote/bracket or the end. */
static size_t sentence_end_at(const char *s, size_t len, size_t i) {
  unsigned char c = (unsigned char)s[i];
  if (c == '.' || c == '!' || c == '?') {
    size_t j = i + 1;
    while (j < len && (s[j] == '"' || s[j] == '\'' || s[j] == ')' || s[j] == ']')) j++;
    return j == len || isspace((unsigned char)s[j]) ? j - i : 0;
  }
  if (i + 2 < len && c == 0xE3 && (unsigned char)s[i + 1] == 0x80 &&
      (unsigned char)s[i + 2] == 0x82)
    return 3; /* 。 */
  if (i + 2 < len && c == 0xEF && (unsigned char)s[i + 1] == 0xBC &&
      ((unsigned char)s[i + 2] == 0x81 || (unsigned char)s[i + 2] == 0x9F))
    return 3;                                                 /* ！ ？ */
  if (c == '\n' && i + 1 < len && s[i + 1] == '\n') return 2; /* a paragraph */
  return 0;
}

size_t es_next_piece(const char *s, size_t len, size_t max) {
  if (len == 0) return 0;
  if (max < 8) max = 8;
  size_t lim = len < max ? len : max;
  for (size_t i = 0; i < lim; i++) {
    size_t e = sentence_end_at(s, len, i);
    if (e) {
      size_t j = i + e;
      while (j < len && isspace((unsigned char)s[j])) j++;
      return j;
    }
  }
  if (len <= max) return len;
  /* no sentence end within max: cut after the last space (or comma), else on a UTF-8 boundary */
  for (size_t i = max; i > max / 2; i--)
    if (isspace((unsigned char)s[i - 1]) || s[i - 1] == ',') return i;
  size_t i = max;
  while (i > 1 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
  return i;
}

/* ---- the child ---- */

typedef struct child_ctx {
  wio_out out; /* the pipe to the parent */
  wio_id id;
  int rate;
  long long samples;
  bool failed;
  float *f;
  size_t f_cap;
} child_ctx;

static child_ctx *child; /* espeak's callback has no user pointer for audio; one job per child */

static int on_audio(short *wav, int n, espeak_EVENT *events) {
  (void)events;
  child_ctx *c = child;
  if (!c || c->failed) return 1;
  if (!wav || n <= 0) return 0;
  if ((size_t)n > c->f_cap) {
    float *nf = realloc(c->f, (size_t)n * sizeof *nf);
    if (!nf) {
      c->failed = true;
      return 1;
    }
    c->f = nf;
    c->f_cap = (size_t)n;
  }
  for (int i = 0; i < n; i++) c->f[i] = (float)wav[i] / 32768.0f;
  if (wio_sendf(&c->out, "audio", c->id, c->f, (size_t)n * sizeof(float), "{s:i}", "rate",
                c->rate) != 0) {
    c->failed = true; /* the parent is gone (or cancelled us): stop */
    return 1;
  }
  c->samples += n;
  return 0;
}

int es_child_run(int out_fd, const es_job *j, int sample_rate) {
  static child_ctx c;
  memset(&c, 0, sizeof c);
  wio_out_init(&c.out, out_fd);
  c.id = j->id;
  c.rate = sample_rate;
  child = &c;
  int status = 0;
  if (espeak_SetVoiceByName(j->voice) != EE_OK) {
    wio_error(&c.out, c.id, 400, "invalid_voice", "espeak-ng could not load the voice '%.160s'",
              j->voice);
    goto out;
  }
  espeak_SetParameter(espeakRATE, j->rate, 0);
  espeak_SetSynthCallback(on_audio);
  char *piece = malloc(j->len + 1);
  if (!piece) {
    wio_error(&c.out, c.id, 500, "out_of_memory", "out of memory");
    status = 1;
    goto out;
  }
  /* sentence by sentence: the first one's audio leaves before the rest is synthesised (espeak also
   * calls back every ES_BUF_MS of audio within a sentence) */
  for (size_t at = 0; at < j->len && !c.failed;) {
    size_t n = es_next_piece(j->text + at, j->len - at, 400);
    memcpy(piece, j->text + at, n);
    piece[n] = '\0';
    at += n;
    espeak_ERROR e = espeak_Synth(piece, n + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
    if (e != EE_OK) {
      wio_error(&c.out, c.id, 500, "synthesis_failed", "espeak-ng refused the text");
      c.failed = true;
      status = 1;
      break;
    }
  }
  free(piece);
  if (!c.failed) {
    if (wio_done(&c.out, c.id, "{s:I, s:i, s:s}", "samples", (json_int_t)c.samples, "rate", c.rate,
                 "finish_reason", "stop") != 0)
      status = 1;
  }
out:
  free(c.f);
  child = NULL;
  wio_out_deinit(&c.out);
  return status;
}
