/* fuzz_realtime.c — libFuzzer target for src/daemon/parse/realtime_parse.c (built by `make
 * fuzz`): a client event of the Realtime API as a text message. Every event is parsed; a
 * session.update is applied to a fresh session of each kind and the session rendered back; an
 * item is taken apart; appended audio is decoded in every format and encoded back. The input is
 * copied to exactly its size, so reads past its end are caught. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/realtime_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1);
  if (!text) return 0;
  memcpy(text, data, size);
  rt_event ev;
  api_error e;
  if (rt_event_parse(text, size, 1 << 16, &ev, &e) == 0) {
    if (ev.type == RT_SESSION_UPDATE) {
      for (int k = 0; k < 2; k++) {
        rt_session s;
        rt_session_init(&s, k == 1);
        (void)rt_session_apply(&s, json_object_get(ev.obj, "session"), &e);
        json_decref(rt_session_json(&s, "sess", "m"));
        rt_session_free(&s);
      }
    } else if (ev.type == RT_ITEM_CREATE) {
      char *t = NULL;
      uint8_t *a = NULL;
      size_t n = 0;
      if (rt_item_content(json_object_get(ev.obj, "item"), &t, &a, &n, 1 << 16, &e) == 0) {
        free(t);
        free(a);
      }
    } else if (ev.type == RT_AUDIO_APPEND) {
      for (int f = RT_FMT_PCM16; f <= RT_FMT_ALAW; f++) {
        float *pcm = NULL;
        size_t n = 0, nb = 0;
        if (rt_audio_to_float((rt_fmt)f, ev.audio, ev.audio_len, &pcm, &n) == 0) {
          (void)rt_vad_level(pcm, n);
          free(rt_audio_from_float((rt_fmt)f, pcm, n, &nb));
        }
        free(pcm);
      }
    }
    rt_event_clear(&ev);
  } else {
    json_decref(rt_error_event(&e, ev.event_id));
  }
  free(text);
  return 0;
}
