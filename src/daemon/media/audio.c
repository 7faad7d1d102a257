/* audio.c — what the decoder and the encoder share: float vectors, the libsoxr resampler, the
 * ffmpeg subprocess, and the format → Content-Type table. See audio.h. */
#include "media/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <soxr.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

extern char **environ;

/* ---- float vectors ------------------------------------------------------------------------- */

int sy_fvec_append(sy_fvec *v, const float *p, size_t n) {
  if (n == 0) return 0;
  if (n > SIZE_MAX / sizeof(float) / 2 - v->n) return -1;
  size_t need = v->n + n;
  if (v->limit && need > v->limit) return -1;
  if (need > v->cap) {
    size_t cap = v->cap ? v->cap : 4096;
    while (cap < need) cap *= 2;
    if (v->limit && cap > v->limit) cap = v->limit;
    float *np = realloc(v->p, cap * sizeof *np);
    if (!np) return -1;
    v->p = np;
    v->cap = cap;
  }
  memcpy(v->p + v->n, p, n * sizeof *p);
  v->n = need;
  return 0;
}

void sy_fvec_free(sy_fvec *v) {
  free(v->p);
  v->p = NULL;
  v->n = v->cap = 0;
}

/* ---- resampling ---------------------------------------------------------------------------- */

int sy_resampler_init(sy_resampler *r, int in_rate, int out_rate, char *err, size_t err_len) {
  r->soxr = NULL;
  r->ratio = 1.0;
  if (in_rate < 1 || in_rate > SY_AUDIO_MAX_RATE || out_rate < 1 || out_rate > SY_AUDIO_MAX_RATE) {
    snprintf(err, err_len, "sample rate out of range (%d -> %d Hz)", in_rate, out_rate);
    return -1;
  }
  if (in_rate == out_rate) return 0;
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* one thread: the daemon has many requests */
  soxr_error_t e = NULL;
  r->soxr = soxr_create(in_rate, out_rate, 1, &e, &io, &q, &rt);
  if (!r->soxr || e) {
    snprintf(err, err_len, "resampler: %s", e ? e : "cannot create");
    if (r->soxr) soxr_delete(r->soxr);
    r->soxr = NULL;
    return -1;
  }
  r->ratio = (double)out_rate / in_rate;
  return 0;
}

int sy_resampler_feed(sy_resampler *r, const float *pcm, size_t n, sy_fvec *out) {
  if (!r->soxr) return pcm ? sy_fvec_append(out, pcm, n) : 0;
  float tmp[4096];
  size_t olen = sizeof tmp / sizeof tmp[0];
  if (!pcm) {
    /* flush: soxr gives its tail in pieces until it has nothing more */
    for (int i = 0; i < 1 << 20; i++) {
      size_t odone = 0;
      if (soxr_process(r->soxr, NULL, 0, NULL, tmp, olen, &odone)) return -1;
      if (odone == 0) return 0;
      if (sy_fvec_append(out, tmp, odone)) return -1;
    }
    return -1;
  }
  while (n > 0) {
    /* feed at most what the output block can take, so every call consumes some input */
    size_t chunk = (size_t)((double)olen / r->ratio) / 2 + 1;
    if (chunk > n) chunk = n;
    size_t idone = 0, odone = 0;
    if (soxr_process(r->soxr, pcm, chunk, &idone, tmp, olen, &odone)) return -1;
    if (sy_fvec_append(out, tmp, odone)) return -1;
    if (idone == 0 && odone == 0) return -1; /* no progress: never loop forever */
    pcm += idone;
    n -= idone;
  }
  return 0;
}

void sy_resampler_free(sy_resampler *r) {
  if (r->soxr) soxr_delete(r->soxr);
  r->soxr = NULL;
}

/* ---- formats ------------------------------------------------------------------------------- */

static const struct {
  const char *name, *type;
} formats[] = {
    {"mp3", "audio/mpeg"}, {"wav", "audio/wav"},    {"flac", "audio/flac"}, {"opus", "audio/ogg"},
    {"ogg", "audio/ogg"},  {"vorbis", "audio/ogg"}, {"aac", "audio/aac"},   {"pcm", "audio/pcm"},
};

const char *sy_audio_content_type(const char *format) {
  if (!format) return NULL;
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcasecmp(format, formats[i].name) == 0) return formats[i].type;
  return NULL;
}

bool sy_audio_format_known(const char *format) { return sy_audio_content_type(format) != NULL; }

/* ---- ffmpeg -------------------------------------------------------------------------------- */

bool sy_audio_ffmpeg_find(char *path, size_t path_len) {
  const char *env = getenv("SWITCHYARD_FFMPEG");
  if (env && *env) {
    if (access(env, X_OK) != 0 || strlen(env) >= path_len) return false;
    snprintf(path, path_len, "%s", env);
    return true;
  }
  const char *p = getenv("PATH");
  if (!p || !*p) p = "/usr/local/bin:/usr/bin:/bin";
  while (*p) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    if (dl > 0 && dl + sizeof "/ffmpeg" <= path_len) {
      memcpy(path, p, dl);
      memcpy(path + dl, "/ffmpeg", sizeof "/ffmpeg");
      if (access(path, X_OK) == 0) return true;
    }
    if (!colon) break;
    p = colon + 1;
  }
  return false;
}

/* The last non-empty line of what ffmpeg wrote on stderr, for the error message. */
static void last_line(const char *s, size_t n, char *dst, size_t dst_len) {
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
  size_t start = n;
  while (start > 0 && s[start - 1] != '\n' && s[start - 1] != '\r') start--;
  size_t l = n - start;
  if (dst_len == 0) return;
  if (l >= dst_len) l = dst_len - 1;
  for (size_t i = 0; i < l; i++) {
    unsigned char c = (unsigned char)s[start + i];
    dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
  }
  dst[l] = '\0';
}

int sy_audio_ffmpeg_run(const char *const *argv, const void *in, size_t in_len, sy_buf *out,
                        size_t out_max, double timeout_s, char *err, size_t err_len) {
  char path[4096];
  if (!sy_audio_ffmpeg_find(path, sizeof path)) {
    snprintf(err, err_len, "ffmpeg is not installed");
    return -1;
  }
  /* stdin is a socket so that writing after ffmpeg quit is EPIPE (MSG_NOSIGNAL), not SIGPIPE */
  int sin[2] = {-1, -1}, sout[2] = {-1, -1}, serr[2] = {-1, -1};
  int rc = -1;
  pid_t pid = -1;
  posix_spawn_file_actions_t fa;
  bool fa_ok = false;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sin) || pipe2(sout, O_CLOEXEC) ||
      pipe2(serr, O_CLOEXEC)) {
    snprintf(err, err_len, "ffmpeg: %s", strerror(errno));
    goto done;
  }
  if (posix_spawn_file_actions_init(&fa)) goto done;
  fa_ok = true;
  posix_spawn_file_actions_adddup2(&fa, sin[1], 0);
  posix_spawn_file_actions_adddup2(&fa, sout[1], 1);
  posix_spawn_file_actions_adddup2(&fa, serr[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* no daemon socket leaks into ffmpeg */
  char *args[64];
  size_t na = 0;
  args[na++] = path;
  for (size_t i = 1; argv[i] && na < 63; i++) args[na++] = (char *)argv[i];
  args[na] = NULL;
  int se = posix_spawn(&pid, path, &fa, NULL, args, environ);
  if (se) {
    pid = -1;
    snprintf(err, err_len, "cannot run ffmpeg: %s", strerror(se));
    goto done;
  }
  close(sin[1]), sin[1] = -1;
  close(sout[1]), sout[1] = -1;
  close(serr[1]), serr[1] = -1;
  fcntl(sin[0], F_SETFL, O_NONBLOCK);
  fcntl(sout[0], F_SETFL, O_NONBLOCK);
  fcntl(serr[0], F_SETFL, O_NONBLOCK);
  if (in_len == 0) shutdown(sin[0], SHUT_WR);

  char ebuf[2048];
  size_t elen = 0, off = 0;
  bool over = false, timed_out = false;
  long long deadline = sy_mono_ms() + (long long)(timeout_s * 1000.0);
  size_t start_len = out->len;
  char chunk[65536];
  while (sout[0] >= 0 || serr[0] >= 0) {
    struct pollfd pf[3];
    int np = 0, iin = -1, iout = -1, ierr = -1;
    if (sin[0] >= 0 && off < in_len) iin = np, pf[np++] = (struct pollfd){sin[0], POLLOUT, 0};
    if (sout[0] >= 0) iout = np, pf[np++] = (struct pollfd){sout[0], POLLIN, 0};
    if (serr[0] >= 0) ierr = np, pf[np++] = (struct pollfd){serr[0], POLLIN, 0};
    long long now = sy_mono_ms();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    long long wait = deadline - now;
    int pr = poll(pf, (nfds_t)np, wait > 1000 ? 1000 : (int)wait);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    if (iin >= 0 && pf[iin].revents) {
      ssize_t w = send(sin[0], (const char *)in + off, in_len - off, MSG_NOSIGNAL);
      if (w > 0) off += (size_t)w;
      if (w < 0 && errno != EAGAIN && errno != EINTR) off = in_len; /* ffmpeg stopped reading */
      if (off >= in_len) close(sin[0]), sin[0] = -1;
    }
    if (iout >= 0 && pf[iout].revents) {
      ssize_t r = read(sout[0], chunk, sizeof chunk);
      if (r > 0) {
        if (out->len - start_len + (size_t)r > out_max || sy_buf_append(out, chunk, (size_t)r)) {
          over = true;
          break;
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(sout[0]), sout[0] = -1;
      }
    }
    if (ierr >= 0 && pf[ierr].revents) {
      ssize_t r = read(serr[0], chunk, sizeof chunk);
      if (r > 0) {
        /* keep the tail: the reason is on the last line */
        size_t n = (size_t)r > sizeof ebuf ? sizeof ebuf : (size_t)r;
        const char *src = chunk + (size_t)r - n;
        if (elen + n > sizeof ebuf) {
          size_t drop = elen + n - sizeof ebuf;
          memmove(ebuf, ebuf + drop, elen - drop);
          elen -= drop;
        }
        memcpy(ebuf + elen, src, n);
        elen += n;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(serr[0]), serr[0] = -1;
      }
    }
  }
  if (over || timed_out) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  pid = -1;
  if (over) {
    snprintf(err, err_len, "ffmpeg's output is over the limit of %zu bytes", out_max);
  } else if (timed_out) {
    snprintf(err, err_len, "ffmpeg took longer than %.0f s", timeout_s);
  } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char line[256];
    last_line(ebuf, elen, line, sizeof line);
    snprintf(err, err_len, "ffmpeg failed: %s", *line ? line : "no reason given");
  } else {
    rc = 0;
  }
  if (rc) out->len = start_len, out->data ? (void)(out->data[start_len] = '\0') : (void)0;
done:
  if (fa_ok) posix_spawn_file_actions_destroy(&fa);
  for (int i = 0; i < 2; i++) {
    if (sin[i] >= 0) close(sin[i]);
    if (sout[i] >= 0) close(sout[i]);
    if (serr[i] >= 0) close(serr[i]);
  }
  if (pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  return rc;
}
