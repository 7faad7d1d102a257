/* espeak.h — switchyard-espeak: the built-in CPU voice (espeak-ng) as a worker process.
 *
 * espeak-ng keeps its synthesis state in globals (pitch flutter, wave phase, sample counters) that
 * carry from one utterance to the next, and it cannot be re-initialised in one process. So the
 * worker loads espeak once and forks a child per request: every child starts from the same
 * untouched state, which makes the samples a pure function of (text, voice, speed), and a cancel
 * is a kill. The child writes its frames to a pipe; the parent relays them to the daemon.
 *
 * espeak-ng is GPL-3.0-or-later; it is linked into this program only, never the daemon
 * (docs/DEPENDENCIES.md). */
#ifndef SY_ESPEAK_H
#define SY_ESPEAK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wio.h"

#define ES_MAX_TEXT (64u << 10) /* bytes of input per request; the daemon allows far less */
#define ES_RATE_NORMAL 175      /* espeak's words per minute at speed 1.0 */
#define ES_RATE_MIN 80
#define ES_RATE_MAX 700 /* above 450 espeak-ng speeds up with libsonic */

typedef struct es_job {
  wio_id id;
  char *text; /* UTF-8, NUL-terminated, no NUL inside */
  size_t len;
  char voice[160]; /* resolved: an espeak voice identifier, optionally "+variant" */
  int rate;        /* words per minute */
} es_job;

/* Initialise espeak-ng (synchronous output) with data under data_dir (NULL: the built-in path).
 * Returns the sample rate (Hz) or -1 with err filled. */
int es_init(const char *data_dir, char *err, size_t errlen);
void es_term(void);

/* The voices as JSON: [{id, name, identifier, languages, gender}] plus the OpenAI names, each with
 * the espeak voice it stands for. New reference or NULL. */
json_t *es_voices_json(void);

/* Resolve a requested voice (an espeak name, identifier or language code, optionally "+variant",
 * or an OpenAI voice name; empty = "en-us") into out. 0, or -1 when there is no such voice. */
int es_resolve_voice(const char *want, char *out, size_t outlen);

/* espeak's rate for an OpenAI speed (0.25..4.0), clamped to what espeak can do. */
int es_rate_for_speed(double speed);

/* Length of the next piece of s[0..len) to synthesise: up to and including a sentence end (and
 * the spaces after it), or at most max bytes cut at a space or a UTF-8 boundary. Never 0 when
 * len > 0. */
size_t es_next_piece(const char *s, size_t len, size_t max);

/* In the child: synthesise job j sentence by sentence, writing "audio" frames (float32 mono PCM
 * chunks as espeak's callback delivers them) and then "done" (or "error") to out_fd. Returns the
 * process exit status; never returns to the parent's loop. */
int es_child_run(int out_fd, const es_job *j, int sample_rate);

#endif
