/* footprint.c — see footprint.h. */
#include "sched/footprint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"

extern char **environ;

#define MIB (1024LL * 1024LL)
#define PROBE_TIMEOUT_MS 120000
#define PROBE_MAX_OUTPUT (64 * 1024)
/* What a worker process holds before any model memory: the program, the C/C++ runtimes, thread
 * stacks, the engine's globals. Measured here as the resident set of a worker serving a 3 MiB
 * model (17 MiB); the probe does not count it. GPU backends add their own per-process context on
 * the device (hundreds of MiB on CUDA), to be measured with the GPU work. */
#define PROCESS_OVERHEAD (16 * MIB)

int footprint_parse_probe(const char *text, footprint_est *out) {
  memset(out, 0, sizeof *out);
  int lines = 0;
  const char *p = text;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char line[FOOTPRINT_DEV_NAME + 128], name[FOOTPRINT_DEV_NAME];
    long long a, b, c;
    if (len < sizeof line) {
      memcpy(line, p, len);
      line[len] = '\0';
      int used = 0;
      if (sscanf(line, "%287s %lld %lld %lld %n", name, &a, &b, &c, &used) == 4 &&
          line[used] == '\0' && a >= 0 && b >= 0 && c >= 0 && a < (1LL << 30) && b < (1LL << 30) &&
          c < (1LL << 30)) {
        out->model_bytes += a * MIB;
        out->context_bytes += b * MIB;
        out->compute_bytes += c * MIB;
        size_t dl = strlen(out->devices);
        snprintf(out->devices + dl, sizeof out->devices - dl, "%s%s", dl ? "," : "", name);
        if (out->n_dev < (int)(sizeof out->dev / sizeof out->dev[0]) &&
            strlen(name) < sizeof out->dev[0].name) {
          snprintf(out->dev[out->n_dev].name, sizeof out->dev[0].name, "%s", name);
          out->dev[out->n_dev++].bytes = (a + b + c) * MIB;
        }
        lines++;
      }
    }
    p += len + (eol ? 1 : 0);
  }
  out->total_bytes = out->model_bytes + out->context_bytes + out->compute_bytes + PROCESS_OVERHEAD;
  out->from_probe = lines > 0;
  return lines > 0 ? 0 : -1;
}

static long long mono_ms(void) { return sy_mono_ms(); }

/* Run argv, collect stdout (bounded), give up after a timeout. 0 when it exited 0. */
static int run_capture(char *const argv[], sy_buf *out, char *err, size_t errlen) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  if (rc != 0) {
    close(pfd[0]);
    snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
    return -1;
  }
  long long deadline = mono_ms() + PROBE_TIMEOUT_MS;
  bool timed_out = false;
  for (;;) {
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    long long left = deadline - mono_ms();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[4096];
    ssize_t r = read(pfd[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (out->len + (size_t)r <= PROBE_MAX_OUTPUT) sy_buf_append(out, buf, (size_t)r);
  }
  close(pfd[0]);
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    snprintf(err, errlen, "%s did not answer within %d s", argv[0], PROBE_TIMEOUT_MS / 1000);
    return -1;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    snprintf(err, errlen, "%s failed (status %d)", argv[0],
             WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return -1;
  }
  return 0;
}

/* Without the probe: the weights (the file), plus a generous allowance for KV and compute. */
static void fallback(const matrix_model *m, footprint_est *out) {
  memset(out, 0, sizeof *out);
  out->model_bytes = m->file_bytes > 0 ? m->file_bytes : 0;
  out->compute_bytes = out->model_bytes / 10 + 256 * MIB;
  out->total_bytes = out->model_bytes + out->compute_bytes + PROCESS_OVERHEAD;
  snprintf(out->devices, sizeof out->devices, "unknown");
}

/* The projector lives where the text layers do: on the first GPU the probe named when layers are
 * offloaded, else in RAM (the rest of total_bytes, which the scheduler puts on the host). */
long long footprint_mmproj_margin(const char *projector_type) {
  static const struct {
    const char *type;
    long long margin;
  } margins[] = {
      {"qwen2vl_merger", FOOTPRINT_MMPROJ_MARGIN_QWEN25VL},
      {"qwen2.5vl_merger", FOOTPRINT_MMPROJ_MARGIN_QWEN25VL},
      {"qwen3vl_merger", FOOTPRINT_MMPROJ_MARGIN_QWEN3VL},
  };
  for (size_t i = 0; projector_type && i < sizeof margins / sizeof margins[0]; i++)
    if (!strcmp(projector_type, margins[i].type)) return margins[i].margin;
  return FOOTPRINT_MMPROJ_MARGIN;
}

static void add_mmproj(const matrix_model *m, footprint_est *out) {
  if (!m->mmproj) return;
  out->mmproj_bytes =
      (m->mmproj_bytes > 0 ? m->mmproj_bytes : 0) + footprint_mmproj_margin(m->mmproj_type);
  out->total_bytes += out->mmproj_bytes;
  for (int i = 0; m->gpu_layers != 0 && i < out->n_dev; i++)
    if (strcmp(out->dev[i].name, "Host") != 0 && strcmp(out->dev[i].name, "CPU") != 0) {
      out->dev[i].bytes += out->mmproj_bytes;
      break;
    }
}

static int estimate(const char *tool, const matrix_model *m, footprint_est *out, char *err,
                    size_t errlen);

/* The weights are at least the file. llama-fit-params does not count the weights the CPU backend
 * repacks for its faster kernels (Q4_0, Q4_K, IQ4_NL, ... in the CPU_REPACK buffer: a copy made at
 * load, on top of the mapped file): for a Qwen2.5-7B-shaped Q4_K_M file of 4466 MiB it reports
 * 1483 MiB of Host weights, and the worker measured 7489 MiB resident. What is missing from the
 * probe's weights goes to Host, the pool that copy lives in. */
void footprint_weights_floor(footprint_est *e, long long file_bytes) {
  if (!e->from_probe || file_bytes <= e->model_bytes) return;
  long long add = file_bytes - e->model_bytes;
  e->model_bytes += add;
  e->total_bytes += add;
  for (int d = 0; d < e->n_dev; d++)
    if (strcmp(e->dev[d].name, "Host") == 0 || strcmp(e->dev[d].name, "CPU") == 0) {
      e->dev[d].bytes += add;
      return;
    }
  if (e->n_dev < (int)(sizeof e->dev / sizeof e->dev[0])) {
    snprintf(e->dev[e->n_dev].name, sizeof e->dev[0].name, "Host");
    e->dev[e->n_dev++].bytes = add;
  }
}

static bool is_host(const char *name) { return !strcmp(name, "Host") || !strcmp(name, "CPU"); }

long long footprint_cpu_moe_bytes(long long expert_bytes, int expert_layers, int cpu_moe) {
  if (cpu_moe == 0 || expert_bytes <= 0) return 0;
  if (cpu_moe == MATRIX_CPU_MOE_ALL || expert_layers <= 0 || cpu_moe >= expert_layers)
    return expert_bytes;
  if (cpu_moe < 0) return 0;
  return expert_bytes * cpu_moe / expert_layers; /* at most the file size x 65536 */
}

void footprint_experts_on_host(footprint_est *e, long long host_bytes) {
  long long host = 0;
  int h = -1;
  for (int d = 0; d < e->n_dev; d++)
    if (is_host(e->dev[d].name)) {
      host += e->dev[d].bytes;
      if (h < 0) h = d;
    }
  long long want = host_bytes - host;
  if (want <= 0) return;
  long long moved = 0;
  for (int d = 0; d < e->n_dev && moved < want; d++) {
    if (is_host(e->dev[d].name)) continue;
    long long take = e->dev[d].bytes < want - moved ? e->dev[d].bytes : want - moved;
    e->dev[d].bytes -= take;
    moved += take;
  }
  if (moved == 0) return; /* nothing on a GPU: it is all counted on the host already */
  if (h < 0) {
    if (e->n_dev >= (int)(sizeof e->dev / sizeof e->dev[0])) return; /* cannot happen: a GPU */
    h = e->n_dev++;
    snprintf(e->dev[h].name, sizeof e->dev[0].name, "Host");
    e->dev[h].bytes = 0;
  }
  e->dev[h].bytes += moved;
}

int footprint_estimate(const char *tool, const matrix_model *m, footprint_est *out, char *err,
                       size_t errlen) {
  int rc = estimate(tool, m, out, err, errlen);
  if (rc == 0) footprint_weights_floor(out, m->file_bytes);
  if (rc == 0 && m->cpu_moe)
    footprint_experts_on_host(
        out, footprint_cpu_moe_bytes(m->expert_bytes, m->expert_layers, m->cpu_moe));
  add_mmproj(m, out);
  return rc;
}

static int estimate(const char *tool, const matrix_model *m, footprint_est *out, char *err,
                    size_t errlen) {
  if (!tool || access(tool, X_OK) != 0) {
    fallback(m, out);
    snprintf(err, errlen, "the estimator %s is not there", tool ? tool : "(none)");
    return -1;
  }
  bool embed =
      (m->caps & (MATRIX_CAP_EMBED | MATRIX_CAP_RERANK)) != 0; /* rerank: an embedding context */
  long long cells = (long long)m->context * m->parallel;
  /* the worker's context: n_ctx = context × parallel; embedding runs a whole input per ubatch */
  int batch = m->batch, ubatch = embed ? (m->batch > m->context ? m->batch : m->context)
                                       : (m->batch < 512 ? m->batch : 512);
  if (embed) batch = ubatch;
  char c[32], np[16], b[16], ub[16], ngl[16], ncmoe[16];
  snprintf(c, sizeof c, "%lld", cells);
  snprintf(np, sizeof np, "%d", m->parallel);
  snprintf(b, sizeof b, "%d", batch);
  snprintf(ub, sizeof ub, "%d", ubatch);
  snprintf(ngl, sizeof ngl, "%d", m->gpu_layers < 0 ? 999 : m->gpu_layers);
  snprintf(ncmoe, sizeof ncmoe, "%d", m->cpu_moe > 0 ? m->cpu_moe : 0);
  char *argv[] = {(char *)tool, "-m", m->file,       "-c", c,    "-np", np,   "-b", b,   "-ub", ub,
                  "-ngl",       ngl,  "--fit-print", "on", NULL, NULL,  NULL, NULL, NULL};
  int k = 15;
  /* experts kept on the CPU: the probe places them as the worker will (llama-server's flags) */
  if (m->cpu_moe == MATRIX_CPU_MOE_ALL) {
    argv[k++] = "--cpu-moe";
  } else if (m->cpu_moe > 0) {
    argv[k++] = "--n-cpu-moe";
    argv[k++] = ncmoe;
  }
  sy_buf rpc = {0}, text = {0};
  if (m->n_rpc) { /* the model's RPC servers, as the worker adds them (devices RPC0, RPC1, ...) */
    for (size_t i = 0; i < m->n_rpc; i++) {
      if (i) sy_buf_append(&rpc, ",", 1);
      sy_buf_append(&rpc, m->rpc[i], strlen(m->rpc[i]));
    }
    argv[k++] = "--rpc";
    argv[k++] = rpc.data;
  }
  int rc = -1;
  if (m->n_rpc && !rpc.data)
    snprintf(err, errlen, "out of memory");
  else
    rc = run_capture(argv, &text, err, errlen);
  sy_buf_free(&rpc);
  if (rc == 0 && footprint_parse_probe(text.data ? text.data : "", out) == 0) {
    sy_buf_free(&text);
    return 0;
  }
  if (rc == 0) snprintf(err, errlen, "%s printed no estimate", tool);
  sy_buf_free(&text);
  fallback(m, out);
  return -1;
}

json_t *footprint_devices(const char *worker_exe, const char *rpc, char *err, size_t errlen) {
  char *argv[] = {(char *)worker_exe, "--list-devices", rpc ? "--rpc" : NULL, (char *)rpc, NULL};
  sy_buf text = {0};
  json_t *j = NULL;
  if (run_capture(argv, &text, err, errlen) == 0 && text.data) {
    j = json_loads(text.data, 0, NULL);
    if (!json_is_array(json_object_get(j, "devices"))) {
      json_decref(j);
      j = NULL;
      snprintf(err, errlen, "%s --list-devices printed no device list", worker_exe);
    }
  }
  sy_buf_free(&text);
  return j;
}

/* The value of "Key:" in a /proc file, in kB, or -1. */
static long long proc_kb(const char *path, const char *key) {
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  char line[256];
  size_t kl = strlen(key);
  long long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtoll(line + kl + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

long long footprint_rss_bytes(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  long long kb = proc_kb(path, "VmRSS");
  return kb < 0 ? -1 : kb * 1024;
}

long long footprint_mem_available(void) {
  long long kb = proc_kb("/proc/meminfo", "MemAvailable");
  return kb < 0 ? -1 : kb * 1024;
}

long long footprint_live_budget(long long configured, long long available, long long ours,
                                long long reserve) {
  if (available < 0) return configured;
  long long live = available + (ours > 0 ? ours : 0) - (reserve > 0 ? reserve : 0);
  if (live < 0) live = 0;
  return live < configured ? live : configured;
}

long long footprint_mem_total(void) {
  long long kb = proc_kb("/proc/meminfo", "MemTotal");
  return kb < 0 ? -1 : kb * 1024;
}

int footprint_whisper_estimate(const char *path, long long file_bytes, footprint_est *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  int32_t h[14];
  size_t got = fread(h, sizeof h[0], 14, f);
  fclose(f);
  /* magic; n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
   * n_text_state, n_text_head, n_text_layer, n_mels, ftype; the filters' n_mel, n_fft */
  if (got != 14 || h[0] != 0x67676d6c || h[12] != h[10] || h[13] != 201) return -1;
  const long long vocab = h[1], actx = h[2], astate = h[3], ahead = h[4], tctx = h[6],
                  tstate = h[7], thead = h[8], tlayer = h[9], mels = h[10];
  /* whisper's released shapes are far inside these; a header outside them is not trusted */
  if (vocab < 1 || vocab > 1 << 20 || actx < 1 || actx > 1 << 14 || astate < 1 ||
      astate > 1 << 14 || ahead < 1 || ahead > 256 || h[5] < 1 || h[5] > 256 || tctx < 1 ||
      tctx > 1 << 14 || tstate < 1 || tstate > 1 << 14 || thead < 1 || thead > 256 || tlayer < 1 ||
      tlayer > 256 || mels < 1 || mels > 1024)
    return -1;
  const long long pa = (actx + 255) / 256 * 256, pt = (tctx + 255) / 256 * 256;
  memset(out, 0, sizeof *out);
  out->model_bytes = file_bytes;
  out->context_bytes = 2 * tlayer * pt * tstate * 2   /* kv self */
                       + 2 * tlayer * pa * tstate * 2 /* kv cross */
                       + 2 * pa * astate * 2;         /* kv pad */
  long long conv = (mels + 2 * astate) * 2 * actx * 4 * 13 / 10;
  long long encode = (ahead * actx * actx * 4 + 4 * actx * astate * 4) * 21 / 20;
  long long cross = 3 * actx * tstate * 4;
  long long decode = vocab * tctx * 4 + thead * tctx * pt * 4;
  out->compute_bytes = conv + encode + cross + decode;
  out->total_bytes = out->model_bytes + out->context_bytes + out->compute_bytes + (16LL << 20);
  snprintf(out->devices, sizeof out->devices, "(whisper header)");
  return 0;
}
