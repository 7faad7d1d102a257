/* bench_realtime.c — `make bench-realtime`'s client (bench/realtime.sh): turns of OpenAI's Realtime
 * API against a daemon's /v1/realtime, one session per turn: a speech clip (any format the daemon
 * decodes; resampled to 24 kHz pcm16) streamed as input_audio_buffer.append events in 40 ms chunks
 * as fast as the socket takes them, then silence, so the server VAD ends the turn; timed from the
 * client's side (speech_stopped received → the first response.output_audio.delta received) and
 * the server's stages (response.done's metadata.switchyard_timings: stt, first llm token, first tts
 * audio, first audio, all from the end of speech). Prints every turn and the medians.
 * Uses the daemon's own WebSocket code (src/daemon/ws/) as the client side.
 * Usage: bench-realtime --port N --model NAME --wav FILE [--runs N] [--silence-ms N]
 * Must never wait without a bound: every session has the idle timeout, and a turn is abandoned
 * after BENCH_TURN_S. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "media/audio.h"
#include "media/base64.h"
#include "ws/ws.h"
#include "ws/ws_handshake.h"

#define BENCH_TURN_S 120
#define BENCH_MAX_RUNS 100
#define CHUNK_MS 40

typedef struct turn {
  const float *pcm;
  size_t n;
  int silence_ms;
  double t_stopped, t_audio;
  json_t *timings;
  bool done, sent;
  const char *status;
} turn;

static void send_json(ws_conn *c, json_t *ev) {
  char *s = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  if (s) ws_send(c, true, s, strlen(s));
  free(s);
}

static void stream(ws_conn *c, const float *pcm, size_t n) {
  size_t step = 24000 * CHUNK_MS / 1000;
  for (size_t off = 0; off < n; off += step) {
    size_t k = n - off < step ? n - off : step;
    unsigned char *b = malloc(2 * k);
    if (!b) return;
    for (size_t i = 0; i < k; i++) {
      float f = pcm[off + i] > 1 ? 1 : pcm[off + i] < -1 ? -1 : pcm[off + i];
      short v = (short)(f * 32767);
      b[2 * i] = (unsigned char)(v & 0xff);
      b[2 * i + 1] = (unsigned char)((v >> 8) & 0xff);
    }
    char *b64 = sy_base64_encode(b, 2 * k);
    free(b);
    if (b64)
      send_json(c, json_pack("{s:s, s:s}", "type", "input_audio_buffer.append", "audio", b64));
    free(b64);
  }
}

static void on_msg(void *ud, ws_conn *c, bool text, const uint8_t *d, size_t len) {
  turn *t = ud;
  json_t *ev = text ? json_loadb((const char *)d, len, 0, NULL) : NULL;
  const char *type = json_string_value(json_object_get(ev, "type"));
  if (!type) {
    json_decref(ev);
    return;
  }
  if (!strcmp(type, "session.created") && !t->sent) {
    t->sent = true;
    send_json(c, json_pack("{s:s, s:{s:{s:{s:{s:s, s:i}}}}}", "type", "session.update", "session",
                           "audio", "input", "turn_detection", "type", "server_vad",
                           "silence_duration_ms", t->silence_ms));
    float *sil = calloc(24000 * 2, sizeof *sil); /* 2 s: the VAD ends the turn */
    stream(c, t->pcm, t->n);
    if (sil) stream(c, sil, 24000 * 2);
    free(sil);
  } else if (!strcmp(type, "input_audio_buffer.speech_stopped")) {
    t->t_stopped = sy_mono_s(); /* the last one: jfk.wav's phrases may make several */
  } else if (!strcmp(type, "response.output_audio.delta") && !t->t_audio) {
    t->t_audio = sy_mono_s();
  } else if (!strcmp(type, "response.done")) {
    json_t *r = json_object_get(ev, "response");
    t->timings = json_incref(json_object_get(json_object_get(r, "metadata"), "switchyard_timings"));
    const char *st = json_string_value(json_object_get(r, "status"));
    t->status = strdup(st ? st : "?");
    t->done = true;
    ws_close(c, WS_CLOSE_NORMAL, "done");
  } else if (!strcmp(type, "error")) {
    fprintf(stderr, "bench-realtime: error event: %s\n",
            json_string_value(json_object_get(json_object_get(ev, "error"), "message")));
  }
  json_decref(ev);
}

/* One session, one turn. 0 or -1. */
static int run_turn(int port, const char *model, turn *t) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char key[WS_KEY_LEN + 1], acc[WS_ACCEPT_LEN + 1], req[1024], head[WS_MAX_RESPONSE_HEAD];
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || ws_new_key(key) ||
      ws_accept_for(key, acc))
    return -1;
  int n = snprintf(req, sizeof req,
                   "GET /v1/realtime?model=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: "
                   "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   model, port, key);
  if (write(fd, req, (size_t)n) != n) return close(fd), -1;
  size_t got = 0;
  long end = 0;
  int status = 0;
  bool ok = false;
  char proto[8];
  while (end == 0 && got < sizeof head) {
    ssize_t k = read(fd, head + got, sizeof head - got);
    if (k <= 0) return close(fd), -1;
    got += (size_t)k;
    end = ws_response_parse(head, got, acc, &status, &ok, proto, sizeof proto);
  }
  if (end <= 0 || !ok) {
    fprintf(stderr, "bench-realtime: the upgrade was refused (%d)\n", status);
    return close(fd), -1;
  }
  ws_limits lim = {.max_message_bytes = 64u << 20, .idle_timeout_s = BENCH_TURN_S};
  ws_conn *c = ws_conn_new(fd, true, head + end, got - (size_t)end, &lim);
  ws_handler h = {.on_message = on_msg, .extra_fd = -1};
  ws_run(c, &h, t, -1);
  ws_conn_free(c);
  close(fd);
  return t->done ? 0 : -1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  int port = 0, runs = 5, silence = 500;
  const char *model = "talk", *wav = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port"))
      port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--runs"))
      runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--model"))
      model = argv[i + 1];
    else if (!strcmp(argv[i], "--wav"))
      wav = argv[i + 1];
    else if (!strcmp(argv[i], "--silence-ms"))
      silence = atoi(argv[i + 1]);
  }
  if (port <= 0 || !wav || runs < 1 || runs > BENCH_MAX_RUNS) {
    fprintf(stderr, "usage: bench-realtime --port N --model NAME --wav FILE [--runs 1..%d]\n",
            BENCH_MAX_RUNS);
    return 2;
  }
  FILE *f = fopen(wav, "rb");
  if (!f) return perror(wav), 1;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *data = malloc((size_t)len);
  if (!data || fread(data, 1, (size_t)len, f) != (size_t)len) return fclose(f), 1;
  fclose(f);
  sy_audio au;
  char err[256];
  if (sy_audio_decode(data, (size_t)len, 24000, NULL, &au, NULL, err, sizeof err) != 0)
    return fprintf(stderr, "bench-realtime: %s: %s\n", wav, err), 1;
  free(data);
  double client[BENCH_MAX_RUNS], stt[BENCH_MAX_RUNS], tok[BENCH_MAX_RUNS], tts[BENCH_MAX_RUNS],
      first[BENCH_MAX_RUNS];
  int n = 0;
  printf(
      "turn  status     client_ms  stt_ms  llm_first_token_ms  tts_first_audio_ms  "
      "first_audio_ms\n");
  for (int i = 0; i < runs; i++) {
    turn t = {.pcm = au.pcm, .n = au.n, .silence_ms = silence};
    if (run_turn(port, model, &t) != 0 || !t.t_audio) {
      printf("%4d  failed\n", i + 1);
      json_decref(t.timings);
      free((char *)t.status);
      continue;
    }
    json_t *tm = t.timings;
    client[n] = (t.t_audio - t.t_stopped) * 1000;
    stt[n] = json_number_value(json_object_get(tm, "stt_ms"));
    tok[n] = json_number_value(json_object_get(tm, "llm_first_token_ms"));
    tts[n] = json_number_value(json_object_get(tm, "tts_first_audio_ms"));
    first[n] = json_number_value(json_object_get(tm, "first_audio_ms"));
    printf("%4d  %-9s  %9.1f  %6.1f  %18.1f  %18.1f  %14.1f\n", i + 1, t.status, client[n], stt[n],
           tok[n], tts[n], first[n]);
    n++;
    json_decref(tm);
    free((char *)t.status);
  }
  if (n)
    printf(
        "median of %d turns: client %.1f ms; server: stt %.1f, llm first token %.1f, tts first "
        "audio %.1f, first audio %.1f ms (from the end of speech)\n",
        n, median(client, n), median(stt, n), median(tok, n), median(tts, n), median(first, n));
  sy_audio_free(&au);
  return n == runs ? 0 : 1;
}
