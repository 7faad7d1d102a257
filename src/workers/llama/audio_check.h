/* audio_check.h — whether the pinned mtmd can encode a projector's audio. mtmd counts an audio
 * window's tokens with one formula (clip_n_output_tokens) and builds its graph with another; where
 * they differ, clip_encode aborts the whole process ("expected output 187 tokens, got 188") — a
 * real Ultravox GGUF (stack factor 8) does. The worker checks the projector at load and refuses
 * its audio with this reason instead of dying on the first request (docs/AUDIO.md).
 * Pure (engine.c reads the projector's keys); thread-safe; never aborts. */
#ifndef WK_AUDIO_CHECK_H
#define WK_AUDIO_CHECK_H

#include <stddef.h>

#define AUDIO_CHECK_WINDOW_FRAMES 3000 /* mel frames of one 30 s whisper window */

/* For a whisper-encoder projector of type proj (clip.projector_type: "ultravox", "voxtral", ...)
 * with stack factor stack (0: none): 0 when mtmd's count and graph agree (or proj is not one whose
 * graph stacks frames), else 1 with a one-line reason in why (which is then what a request with
 * audio is told). */
int audio_check_stack(const char *proj, long stack, char *why, size_t why_len);

#endif
