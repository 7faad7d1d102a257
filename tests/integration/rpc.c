/* rpc.c — one model split across machines through ggml's RPC backend (matrix key `rpc:`), on this
 * one machine over loopback: `switchyard rpc-server` (ggml-rpc-server, next to the daemon) on a
 * free loopback port plays the other box. Cases: the same model file unsplit and split (its last
 * layer and the output on the RPC server, the rest here) give the same tokens with greedy decoding
 * (both halves run ggml's CPU kernels on F16 weights with the same batch shapes, so the same code
 * paths; `deterministic: true` is left off because it pads a lone generating row on an all-CPU
 * float model, another kernel path, and not when layers are offloaded); the
 * server's device is a memory pool of its own in /api/ps (its free memory as the server reports
 * it) and the split model's estimate is counted there; the server killed mid-request gives a 502
 * rpc_unavailable, the daemon stays up (and serves its other model), once the server is back the
 * next request reloads the model and is served, and a load while the server is down is refused
 * with a 502 rpc_unavailable naming it; a remote pool whose budget is smaller than the model's
 * share there refuses it (507, naming the pool). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"

static struct {
  pid_t pid;
  int port;
  char ep[32]; /* "127.0.0.1:PORT" */
} R = {.pid = -1};

/* A free loopback port (bound and released: nothing else on this machine takes test ports). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

static void rpc_kill(void) {
  if (R.pid <= 0) return;
  kill(R.pid, SIGKILL);
  waitpid(R.pid, NULL, 0);
  R.pid = -1;
}

/* `switchyard rpc-server --port R.port` (one thread) in the background; true once it listens. The
 * wait is bounded and on a condition: the port accepting a connection (the server says nothing
 * on a pipe before it listens), checked every 10 ms while the child lives. */
static bool rpc_start(void) {
  char port_s[16];
  snprintf(port_s, sizeof port_s, "%d", R.port);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int nfd =
        open(it_daemon_log ? it_daemon_log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (nfd >= 0) {
      dup2(nfd, 1);
      dup2(nfd, 2);
    }
    execl(it_daemon_bin, it_daemon_bin, "rpc-server", "--port", port_s, "--threads", "1",
          (char *)NULL);
    _exit(127);
  }
  R.pid = pid;
  for (int tries = 0; tries < 3000; tries++) { /* 30 s at most */
    if (port_open(R.port)) return true;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      R.pid = -1;
      return false;
    }
    poll(NULL, 0, 10);
  }
  rpc_kill();
  return false;
}

/* A greedy chat's answer on B: its text and completion tokens. */
static long greedy(const char *model, sy_buf *text, long long *tokens) {
  json_t *q = it_long_chat_body(model, "Tell me about the sea and the ships on it", 24, false);
  json_object_set_new(q, "temperature", json_real(0.0));
  resp r;
  it_b_chat(q, &r);
  long st = r.status;
  const char *c = it_jstr(r.json, "choices.0.message.content");
  if (c) sy_buf_append(text, c, strlen(c));
  *tokens = it_jnum(r.json, "usage.completion_tokens");
  it_resp_clear(&r);
  return st;
}

/* The split model: context and the layers it sends away (gpu_layers 2 of tiny-qwen2's 2 + the
 * output: layer 1 and the output head on the server, the embeddings and layer 0 here). */
static void rpc_yaml(char *yaml, size_t cap, int context) {
  snprintf(yaml, cap,
           "log_level: warn\nscheduling: {swap_guard: 0}\nmodels:\n"
           "  - {name: local, file: %s/tiny-qwen2.gguf, context: %d, parallel: 1}\n"
           "  - {name: split, file: %s/tiny-qwen2.gguf, context: %d, parallel: 1, "
           "gpu_layers: 2, rpc: ['%s']}\n",
           it_models_dir, context, it_models_dir, context, R.ep);
}

static void split_body(void) {
  sy_buf a = {0}, b = {0};
  long long ta = -1, tb = -1;
  long sa = greedy("local", &a, &ta), sb = greedy("split", &b, &tb);
  bool same = a.data && b.data && strcmp(a.data, b.data) == 0;
  char msg[512];
  snprintf(msg, sizeof msg, "local %ld '%.100s' (%lld tokens), split %ld '%.100s' (%lld tokens)",
           sa, a.data ? a.data : "", ta, sb, b.data ? b.data : "", tb);
  sy_buf_free(&a);
  sy_buf_free(&b);
  CHECK(sa == 200 && sb == 200, "%s", msg);
  CHECK(ta == 24 && tb == 24, "%s", msg);
  CHECK(same, "greedy tokens differ across the split: %s", msg);
  /* the server's device is a pool of its own, and the split model is counted there */
  resp r;
  it_http_do(&B, "GET", "/api/ps", NULL, &r, NULL);
  char dev[64];
  snprintf(dev, sizeof dev, "RPC0[%s]", R.ep);
  const json_t *pool = NULL, *p;
  size_t i;
  json_array_foreach(it_jpath(r.json, "memory.pools"), i,
                     p) if (it_str_is(it_jstr(p, "device"), dev)) pool = p;
  bool ok = pool && it_str_is(it_jstr(pool, "rpc"), R.ep) && it_jnum(pool, "budget") > 0 &&
            it_jnum(pool, "used") > 0;
  const json_t *m, *d, *on_rpc = NULL;
  json_array_foreach(json_object_get(r.json, "models"), i, m) {
    if (!it_str_is(it_jstr(m, "name"), "split")) continue;
    size_t k;
    json_array_foreach(json_object_get(m, "devices"), k,
                       d) if (it_str_is(it_jstr(d, "device"), dev)) on_rpc = d;
  }
  bool counted = on_rpc && it_jnum(on_rpc, "estimated") > 0;
  char *body = r.body.data ? strdup(r.body.data) : NULL;
  it_resp_clear(&r);
  CHECK(ok, "no pool %s with a budget and the split model's use: %.1500s", dev, body ? body : "");
  CHECK(counted, "the split model has no estimate on %s: %.1500s", dev, body ? body : "");
  free(body);
}

static void t_split_greedy(void) {
  R.port = free_port();
  snprintf(R.ep, sizeof R.ep, "127.0.0.1:%d", R.port);
  CHECK(R.port > 0 && rpc_start(), "switchyard rpc-server did not start on port %d", R.port);
  char yaml[2048];
  rpc_yaml(yaml, sizeof yaml, 512);
  it_with_own_daemon("rpc_split", yaml, split_body);
  rpc_kill();
}

static void lost_body(void) {
  resp r;
  json_t *warm = it_chat_body("split", "warm up", 2, false);
  it_b_chat(warm, &r);
  CHECK(r.status == 200, "warm-up %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_bg_req b; /* still running when the server is killed */
  it_bg_chat(&b, &B, it_long_chat_body("split", "Take your time", 1900, false));
  bool busy = it_wait_inflight(&B, "split", NULL);
  rpc_kill();
  it_bg_join(&b);
  CHECK(busy, "the long request never showed as in flight");
  CHECK(it_is_error(&b.r, 502, "rpc_unavailable"), "in-flight request: %ld %s", b.r.status,
        b.r.body.data);
  CHECK(strstr(b.r.body.data, "RPC"), "the error names the RPC server: %s", b.r.body.data);
  it_resp_clear(&b.r);
  it_http_do(&B, "GET", "/health", NULL, &r, NULL);
  CHECK(r.status == 200, "daemon still up: %ld", r.status);
  it_resp_clear(&r);
  /* the unsplit model is served all along */
  it_b_chat(it_chat_body("local", "still here?", 2, false), &r);
  CHECK(r.status == 200, "local model while the server is down: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* the server is back: the next request loads the model again and is served */
  CHECK(rpc_start(), "switchyard rpc-server did not restart on port %d", R.port);
  it_b_chat(it_chat_body("split", "after the loss", 4, false), &r);
  CHECK(r.status == 200, "the next request reloads the model: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* unloaded, then the server gone: the load is refused with the reason (no crash, no hang) */
  it_http_do(&B, "POST", "/api/unload", "{\"model\":\"split\"}", &r, NULL);
  CHECK(r.status == 200, "unload %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  rpc_kill();
  it_b_chat(it_chat_body("split", "anyone there?", 2, false), &r);
  CHECK(it_is_error(&r, 502, "rpc_unavailable"), "load with the server down: %ld %s", r.status,
        r.body.data);
  CHECK(strstr(r.body.data, R.ep) && strstr(r.body.data, "not reachable"), "the error names %s: %s",
        R.ep, r.body.data);
  it_resp_clear(&r);
}

static void t_server_lost(void) {
  R.port = free_port();
  snprintf(R.ep, sizeof R.ep, "127.0.0.1:%d", R.port);
  CHECK(R.port > 0 && rpc_start(), "switchyard rpc-server did not start on port %d", R.port);
  char yaml[2048];
  rpc_yaml(yaml, sizeof yaml, 2048);
  it_with_own_daemon("rpc_lost", yaml, lost_body);
  rpc_kill();
}

static void admission_body(void) {
  resp r;
  it_b_chat(it_chat_body("split", "too big for the remote pool", 2, false), &r);
  char dev[64];
  snprintf(dev, sizeof dev, "on RPC0[%s]", R.ep);
  CHECK(it_is_error(&r, 507, "model_too_large") && strstr(r.body.data, dev),
        "a model too large for the RPC server's pool: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_b_chat(it_chat_body("local", "fits here", 2, false), &r);
  CHECK(r.status == 200, "the unsplit model: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
}

/* Admission holds in the remote pool: its budget set below what the split model puts there
 * (memory.devices by the pool's name) refuses the model at once, naming the pool. */
static void t_pool_admission(void) {
  R.port = free_port();
  snprintf(R.ep, sizeof R.ep, "127.0.0.1:%d", R.port);
  CHECK(R.port > 0 && rpc_start(), "switchyard rpc-server did not start on port %d", R.port);
  char yaml[2048], models[1024];
  rpc_yaml(models, sizeof models, 512);
  snprintf(yaml, sizeof yaml, "memory: {devices: {'RPC0[%s]': 8MiB}}\n%s", R.ep, models);
  it_with_own_daemon("rpc_admission", yaml, admission_body);
  rpc_kill();
}

/* The verb refuses a public address before it runs anything, and says why. */
static void t_public_refused(void) {
  char cmd[PATH_MAX + 128];
  snprintf(cmd, sizeof cmd, "'%s' rpc-server --host 0.0.0.0 --port 1 2>&1", it_daemon_bin);
  FILE *f = popen(cmd, "r");
  CHECK(f != NULL, "popen");
  char out[2048] = "";
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  int st = pclose(f);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit status %d: %s", st, out);
  CHECK(strstr(out, "--allow-public") && strstr(out, "no authentication"), "message: %s", out);
}

static const it_test tests[] = {
    {"rpc_split_greedy", t_split_greedy, false},
    {"rpc_server_lost", t_server_lost, false},
    {"rpc_pool_admission", t_pool_admission, false},
    {"rpc_public_refused", t_public_refused, false},
};
const itest_table itest_rpc = {"rpc", tests, sizeof tests / sizeof tests[0]};
