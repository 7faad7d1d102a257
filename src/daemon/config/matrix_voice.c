/* matrix_voice.c — the model matrix's voices: a speech model's `voices:` map (a name per
 * reference clip, with its language) into the model's voice_* vectors.
 *
 * This file must never accept more than MATRIX_MAX_VOICES voices, a voice name twice, or a clip
 * that is not a regular file it could open (the path is resolved here, once, relative to the
 * config, so the worker never sees a relative path). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/matrix_int.h"

/* voices: {NAME: {audio: PATH, language?, text?}}: reference clips of a speech model whose
 * projector clones voices (docs/TTS.md); language goes to the worker (Qwen3-TTS speaks in it,
 * Pocket-TTS ignores it), text is accepted for pipelines that use it (none yet). */
int mx_load_voices(loader *l, const yaml_node_t *n, const char *path, matrix_model *mm) {
  static const char *const vkeys[] = {"audio", "language", "text"};
  char p[160];
  snprintf(p, sizeof p, "%s.voices", path);
  if (mx_want_kind(l, n, p, YAML_MAPPING_NODE)) return -1;
  size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  if (np > MATRIX_MAX_VOICES) return mx_at(l, n, "%s: at most %d voices", p, MATRIX_MAX_VOICES);
  mm->voice_names = calloc(np + 1, sizeof *mm->voice_names);
  mm->voice_audio = calloc(np + 1, sizeof *mm->voice_audio);
  mm->voice_lang = calloc(np + 1, sizeof *mm->voice_lang);
  if (!mm->voice_names || !mm->voice_audio || !mm->voice_lang) return mx_oom(l);
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = mx_node(l, pr->key), *val = mx_node(l, pr->value);
    const char *name, *audio;
    yaml_node_t *vv[3];
    char vp[320], joined[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (!k || !val || mx_want_str(l, k, p, &name)) return -1;
    if (!mx_name_ok(name))
      return mx_at(l, k, "%s: '%s' is not a valid voice name (no spaces)", p, name);
    for (size_t i = 0; i < mm->n_voices; i++)
      if (!strcmp(mm->voice_names[i], name))
        return mx_at(l, k, "%s: voice '%s' is listed twice", p, name);
    snprintf(vp, sizeof vp, "%s.%s", p, name);
    if (mx_want_map(l, val, vp, vkeys, 3, vv)) return -1;
    if (!vv[0]) return mx_at(l, val, "%s: missing required key 'audio'", vp);
    const char *lang = NULL;
    for (int i = 1; i < 3; i++) {
      const char *sv;
      if (vv[i] && mx_want_str(l, vv[i], vp, &sv)) return -1;
      if (vv[i] && i == 1) lang = sv;
    }
    if (lang &&
        (!*lang || strlen(lang) > 32 ||
         strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != strlen(lang)))
      return mx_at(l, vv[1], "%s.language: '%s' is not a language (en, de, english, ...)", vp,
                   lang);
    if (mx_want_str(l, vv[0], vp, &audio)) return -1;
    if (!*audio || mx_join_path(joined, sizeof joined, l->dir, audio))
      return mx_at(l, vv[0], "%s.audio: '%s' is not a usable path", vp, audio);
    errno = 0;
    if (!realpath(joined, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
      return mx_at(l, vv[0], "%s.audio: cannot open '%s': %s", vp, joined,
                   errno ? strerror(errno) : "not a file");
    if (!(mm->voice_names[mm->n_voices] = strdup(name)) ||
        !(mm->voice_audio[mm->n_voices] = strdup(real)) ||
        (lang && !(mm->voice_lang[mm->n_voices] = strdup(lang))))
      return mx_oom(l);
    mm->n_voices++;
  }
  return 0;
}
