/* matrix_pipeline.c — the model matrix's pipelines (docs/CONFIG.md "pipelines"): named virtual
 * models whose steps are other models — transcribe_clean (speech to text, then a chat model
 * cleans the transcript) and voice (speech to text, chat, text to speech). Parsed after the
 * models; their step names are checked in mx_pipelines_check, after discovery, since a step may
 * name a discovered model or the built-in voice (the error then still points at the step's
 * file:line:col, kept in pipe_marks).
 *
 * This file must never accept a step that names no model or one without the capability its role
 * needs, a key the pipeline's kind does not use, or more than PIPE_MAX pipelines. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/matrix_int.h"

enum {
  P_NAME,
  P_KIND,
  P_ASR,
  P_LLM,
  P_TTS,
  P_VOICE,
  P_INSTRUCTION,
  P_MAX_TOKENS,
  P_TEMPERATURE,
  P_SENTENCE_CHARS,
  P_N
};
static const char *const pipe_keys[P_N] = {
    "name",  "kind",        "asr",        "llm",         "tts",
    "voice", "instruction", "max_tokens", "temperature", "sentence_chars"};
#define PIPE_MAX 256
#define PIPE_MAX_INSTRUCTION 16384

/* Positions of a pipeline's name and its three steps (0: none). */
typedef struct pipe_marks {
  size_t line[4], col[4]; /* [0] name, [1] asr, [2] llm, [3] tts */
} pipe_marks;

const char *matrix_pipeline_kind_name(enum matrix_pipeline_kind k) {
  return k == MATRIX_PIPE_VOICE ? "voice" : "transcribe_clean";
}

void mx_pipeline_clear(matrix_pipeline *p) {
  free(p->name);
  free(p->asr);
  free(p->llm);
  free(p->tts);
  free(p->voice);
  free(p->instruction);
  free(p->source);
  memset(p, 0, sizeof *p);
}

const matrix_pipeline *matrix_find_pipeline(const matrix *m, const char *name) {
  if (!m || !name) return NULL;
  for (size_t i = 0; i < m->n_pipelines; i++)
    if (!strcmp(m->pipelines[i].name, name)) return &m->pipelines[i];
  return NULL;
}

static void mark(pipe_marks *mk, int i, const yaml_node_t *n) {
  mk->line[i] = n->start_mark.line + 1;
  mk->col[i] = n->start_mark.column + 1;
}

static int load_pipeline(loader *l, const yaml_node_t *n, size_t idx) {
  char path[64], p[128], g[64];
  snprintf(path, sizeof path, "pipelines[%zu]", idx);
  yaml_node_t *v[P_N];
  if (mx_want_map(l, n, path, pipe_keys, P_N, v)) return -1;
  matrix_pipeline mp = {.max_tokens = UNSET, .temperature = NAN};
  pipe_marks mk = {0};
  const char *s;
  if (!v[P_NAME]) goto missing_name;
  snprintf(p, sizeof p, "%s.name", path);
  if (mx_want_str(l, v[P_NAME], p, &s) || mx_check_name(l, v[P_NAME], p, s, NULL)) goto fail;
  const matrix_pipeline *other = matrix_find_pipeline(l->m, s);
  if (other) {
    mx_at(l, v[P_NAME], "%s: '%s' is already used by pipeline '%s' (%s)", p, s, other->name,
          other->source);
    goto fail;
  }
  if (!(mp.name = strdup(s))) goto oom;
  mark(&mk, 0, v[P_NAME]);
  if (!v[P_KIND]) {
    mx_at(l, n, "%s: missing required key 'kind' (transcribe_clean or voice)", path);
    goto fail;
  }
  snprintf(p, sizeof p, "%s.kind", path);
  if (mx_want_str(l, v[P_KIND], p, &s)) goto fail;
  if (!strcmp(s, "voice"))
    mp.kind = MATRIX_PIPE_VOICE;
  else if (strcmp(s, "transcribe_clean") != 0) {
    mx_at(l, v[P_KIND], "%s: unknown kind '%s' (known: transcribe_clean, voice)", p, s);
    goto fail;
  }
  bool voice = mp.kind == MATRIX_PIPE_VOICE;
  char **steps[3] = {&mp.asr, &mp.llm, &mp.tts};
  for (int i = 0; i < 3; i++) {
    yaml_node_t *sv = v[P_ASR + i];
    bool required = i == 1 || (i == 0 && !voice) || (i == 2 && voice);
    if (!sv && required) {
      mx_at(l, n, "%s: a %s pipeline needs the step '%s'", path,
            voice ? "voice" : "transcribe_clean", pipe_keys[P_ASR + i]);
      goto fail;
    }
    if (!sv) continue;
    snprintf(p, sizeof p, "%s.%s", path, pipe_keys[P_ASR + i]);
    if (i == 2 && !voice) {
      mx_at(l, sv, "%s: only a voice pipeline has a tts step", p);
      goto fail;
    }
    if (mx_want_str_dup(l, sv, p, steps[i])) goto fail;
    mark(&mk, 1 + i, sv);
  }
  if (v[P_VOICE]) {
    snprintf(p, sizeof p, "%s.voice", path);
    if (!voice) {
      mx_at(l, v[P_VOICE], "%s: only a voice pipeline has a voice", p);
      goto fail;
    }
    if (mx_want_str_dup(l, v[P_VOICE], p, &mp.voice)) goto fail;
    if (strlen(mp.voice) > 100) {
      mx_at(l, v[P_VOICE], "%s: longer than 100 characters", p);
      goto fail;
    }
  }
  if (v[P_INSTRUCTION]) {
    snprintf(p, sizeof p, "%s.instruction", path);
    if (mx_want_str_dup(l, v[P_INSTRUCTION], p, &mp.instruction)) goto fail;
    if (strlen(mp.instruction) > PIPE_MAX_INSTRUCTION) {
      mx_at(l, v[P_INSTRUCTION], "%s: longer than %d bytes", p, PIPE_MAX_INSTRUCTION);
      goto fail;
    }
  }
  snprintf(p, sizeof p, "%s.max_tokens", path);
  if (v[P_MAX_TOKENS] && mx_want_int(l, v[P_MAX_TOKENS], p, 1, 32768, &mp.max_tokens)) goto fail;
  if (mp.max_tokens == UNSET) mp.max_tokens = voice ? 512 : 1024;
  mp.temperature = voice ? -1 : 0;
  if (v[P_TEMPERATURE]) {
    snprintf(p, sizeof p, "%s.temperature", path);
    char *end = NULL;
    const char *t = v[P_TEMPERATURE]->type == YAML_SCALAR_NODE ? mx_sval(v[P_TEMPERATURE]) : NULL;
    double d = t && *t ? strtod(t, &end) : NAN;
    if (!t || !*t || *end || !(d >= 0 && d <= 2)) {
      mx_at(l, v[P_TEMPERATURE], "%s: expected a number from 0 to 2, got %s", p,
            mx_got(v[P_TEMPERATURE], g, sizeof g));
      goto fail;
    }
    mp.temperature = d;
  }
  mp.sentence_chars = 200;
  if (v[P_SENTENCE_CHARS]) {
    snprintf(p, sizeof p, "%s.sentence_chars", path);
    if (!voice) {
      mx_at(l, v[P_SENTENCE_CHARS], "%s: only a voice pipeline cuts sentences", p);
      goto fail;
    }
    if (mx_want_int(l, v[P_SENTENCE_CHARS], p, 8, 4000, &mp.sentence_chars)) goto fail;
  }
  char src[PATH_MAX + 32];
  snprintf(src, sizeof src, "%s:%zu", l->file, n->start_mark.line + 1);
  if (!(mp.source = strdup(src))) goto oom;
  if (l->m->n_pipelines >= PIPE_MAX) {
    mx_at(l, n, "%s: more than %d pipelines", path, PIPE_MAX);
    goto fail;
  }
  matrix_pipeline *np = realloc(l->m->pipelines, (l->m->n_pipelines + 1) * sizeof *np);
  pipe_marks *nm = realloc(l->pipe_marks, (l->m->n_pipelines + 1) * sizeof *nm);
  if (np) l->m->pipelines = np;
  if (nm) l->pipe_marks = nm;
  if (!np || !nm) goto oom;
  nm[l->m->n_pipelines] = mk;
  np[l->m->n_pipelines++] = mp;
  return 0;
missing_name:
  mx_at(l, n, "%s: missing required key 'name'", path);
  goto fail;
oom:
  mx_oom(l);
fail:
  mx_pipeline_clear(&mp);
  return -1;
}

int mx_load_pipelines(loader *l, const yaml_node_t *n) {
  if (mx_is_null(n)) return 0;
  if (mx_want_kind(l, n, "pipelines", YAML_SEQUENCE_NODE)) return -1;
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++, i++) {
    yaml_node_t *e = mx_node(l, *it);
    if (!e || load_pipeline(l, e, i)) return -1;
  }
  return 0;
}

/* The steps against the whole matrix (configured, discovered and built-in models): each names a
 * model with the capability its role needs, and no model took a pipeline's name. */
int mx_pipelines_check(loader *l) {
  static const unsigned need[3] = {MATRIX_CAP_TRANSCRIBE, MATRIX_CAP_CHAT, MATRIX_CAP_SPEECH};
  static const char *const what[3] = {"transcribe", "chat", "speak"};
  const matrix *m = l->m;
  for (size_t i = 0; i < m->n_pipelines; i++) {
    const matrix_pipeline *pp = &m->pipelines[i];
    const pipe_marks *mk = &l->pipe_marks[i];
    const matrix_model *o = matrix_find(m, pp->name);
    bool builtin = m->builtin_voice && !matrix_find(m, MATRIX_BUILTIN_VOICE);
    if (o || (builtin && !strcmp(pp->name, MATRIX_BUILTIN_VOICE))) {
      mx_set_err(l->err, l->errlen,
                 "%s:%zu:%zu: pipelines[%zu].name: '%s' is already used by model '%s' (%s)",
                 l->file, mk->line[0], mk->col[0], i, pp->name, o ? o->name : MATRIX_BUILTIN_VOICE,
                 o ? o->source : "(built-in)");
      return -1;
    }
    const char *steps[3] = {pp->asr, pp->llm, pp->tts};
    for (int k = 0; k < 3; k++) {
      if (!steps[k]) continue;
      const matrix_model *sm = matrix_find(m, steps[k]);
      if (!sm && k == 2 && builtin && !strcmp(steps[k], MATRIX_BUILTIN_VOICE))
        continue; /* added later */
      char caps[128];
      if (!sm) {
        mx_set_err(l->err, l->errlen, "%s:%zu:%zu: pipelines[%zu].%s: no model is named '%s'",
                   l->file, mk->line[1 + k], mk->col[1 + k], i, pipe_keys[P_ASR + k], steps[k]);
        return -1;
      }
      if (!(sm->caps & need[k])) {
        mx_set_err(l->err, l->errlen,
                   "%s:%zu:%zu: pipelines[%zu].%s: model '%s' cannot %s (its capabilities: %s)",
                   l->file, mk->line[1 + k], mk->col[1 + k], i, pipe_keys[P_ASR + k], steps[k],
                   what[k], matrix_caps_str(sm->caps, caps, sizeof caps));
        return -1;
      }
    }
  }
  return 0;
}
