/* audio.h — STUB until branch `audio` lands (wav and pcm only); deleted by the merge. */
#ifndef SY_AUDIO_H
#define SY_AUDIO_H
#include <stddef.h>
#include "buf.h"
typedef struct sy_audio_enc sy_audio_enc;
int sy_audio_encode(const float *pcm, size_t n, int in_rate, const char *format, int out_rate, sy_buf *out,
                    char *err, size_t err_len);
sy_audio_enc *sy_audio_enc_new(const char *format, int in_rate, int out_rate, char *err, size_t err_len);
int sy_audio_enc_feed(sy_audio_enc *e, const float *pcm, size_t n, sy_buf *out);
int sy_audio_enc_finish(sy_audio_enc *e, sy_buf *out);
void sy_audio_enc_free(sy_audio_enc *e);
const char *sy_audio_content_type(const char *format);
#endif
