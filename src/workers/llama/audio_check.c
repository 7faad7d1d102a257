/* audio_check.c — the projector check of audio_check.h. The two formulas are the pinned
 * llama.cpp's (tools/mtmd/clip.cpp clip_n_output_tokens, models/whisper-enc.cpp, clip.cpp
 * build_stack and build_vit's average pool): for one window of 3000 mel frames,
 *   count = ((3000 rounded up to the stack) / stack) / 2, halved again with an average pool;
 *   graph = 1500 rows (the stride-2 conv), halved by the average pool, then stacked with the
 *           last group padded: rounded up.
 * Ultravox stack 8: count 187, graph 188. Pure; must never abort. */
#include "audio_check.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int audio_check_stack(const char *proj, long stack, char *why, size_t why_len) {
  if (why_len) why[0] = '\0';
  if (!proj) return 0;
  /* the whisper-encoder projectors whose graph stacks frames (clip-model.h
   * audio_has_stack_frames, built by whisper-enc.cpp); voxtral also pools (audio_has_avgpool) */
  bool pool = strcmp(proj, "voxtral") == 0;
  if (strcmp(proj, "ultravox") != 0 && !pool) return 0;
  if (stack <= 1) return 0;
  long count = (AUDIO_CHECK_WINDOW_FRAMES + stack - 1) / stack / 2 / (pool ? 2 : 1);
  long rows = AUDIO_CHECK_WINDOW_FRAMES / 2 / (pool ? 2 : 1);
  long graph = (rows + stack - 1) / stack;
  if (count == graph) return 0;
  snprintf(why, why_len,
           "this model's audio projector (%s, stack factor %ld) cannot be encoded by the pinned "
           "llama.cpp: mtmd counts %ld tokens per 30 s window and its graph makes %ld, which "
           "aborts the process; audio input is refused for this model (text still works)",
           proj, stack, count, graph);
  return 1;
}
