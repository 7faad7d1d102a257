/* pull.c — `switchyard pull` through POST /api/pull against a loopback test server of our own (a
 * libmicrohttpd daemon in this process) that speaks enough of a Hugging Face-style hub (a repo's
 * file list with LFS sha256 oids, /resolve/ answered by a redirect to a storage URL with
 * x-linked-etag, Range requests answered 206) and of an Ollama-style registry (manifests, blobs).
 * It serves files tests/models.sh made with mkmodel. Cases: a clean pull (progress lines, the
 * file installed byte for byte, the model in /v1/models without a restart), a transfer dropped
 * mid-file and resumed with Range, a wrong checksum refused with nothing installed, a 404 and a
 * 401 with clear errors, a split model, a vision model with its mmproj, two pulls of one file at
 * once (one download), a pull larger than the disk refused before downloading, a registry pull,
 * and a manifest whose digest is a path traversal refused. */
#include <microhttpd.h>
#include <openssl/evp.h>

#include "harness.h"

/* ---- the test server ---- */

typedef struct srv_file {
  const char *repo; /* "t/plain" (hub) or "library/tiny" (registry) */
  const char *path; /* hub: path in the repo; registry: "" (the model layer) */
  sy_buf *data;
  char sha[65];     /* the real sha256 */
  bool wrong_sha;   /* the list claims another one */
  bool flaky;       /* the first transfer is dropped halfway */
  bool slow;        /* sent in small paced chunks */
  long long claim;  /* a size to claim instead of the real one (0: the real one) */
  int gets, ranged; /* storage GETs, those with a Range header */
} srv_file;

static struct {
  struct MHD_Daemon *mhd;
  int port;
  pthread_mutex_t mu;
  sy_buf bert, mmproj;
  srv_file files[32];
  size_t n;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sha_hex(const sy_buf *b, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(b->data, b->len, md, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static srv_file *add(const char *repo, const char *path, sy_buf *data) {
  if (S.n == sizeof S.files / sizeof S.files[0]) abort(); /* a test table too large */
  srv_file *f = &S.files[S.n++];
  memset(f, 0, sizeof *f);
  f->repo = repo;
  f->path = path;
  f->data = data;
  sha_hex(data, f->sha);
  return f;
}

typedef struct body_ctx {
  srv_file *f;
  size_t off, len, drop_at; /* drop_at: 0 = never */
} body_ctx;

static ssize_t body_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  body_ctx *b = cls;
  if (b->drop_at && pos >= b->drop_at) return MHD_CONTENT_READER_END_WITH_ERROR;
  if (pos >= b->len) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t k = b->len - pos < max ? b->len - pos : max;
  if (b->f->slow && k > 16384) k = 16384;
  if (b->f->slow) usleep(1000);
  memcpy(buf, b->f->data->data + b->off + pos, k);
  return (ssize_t)k;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned st, const char *ct,
                                  const char *text) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", ct);
  enum MHD_Result rc = MHD_queue_response(c, st, r);
  MHD_destroy_response(r);
  return rc;
}

static srv_file *find(const char *repo, size_t rl, const char *path) {
  for (size_t i = 0; i < S.n; i++)
    if (strlen(S.files[i].repo) == rl && !strncmp(S.files[i].repo, repo, rl) &&
        !strcmp(S.files[i].path, path))
      return &S.files[i];
  return NULL;
}

/* GET /storage/<index>: the bytes, honouring "Range: bytes=N-". */
static enum MHD_Result serve_storage(struct MHD_Connection *c, srv_file *f) {
  const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
  size_t off = 0;
  pthread_mutex_lock(&S.mu);
  f->gets++;
  if (range) f->ranged++;
  bool drop = f->flaky && f->gets == 1;
  pthread_mutex_unlock(&S.mu);
  if (range && sscanf(range, "bytes=%zu-", &off) != 1) off = 0;
  if (off >= f->data->len && range) return reply_text(c, 416, "text/plain", "range");
  body_ctx *b = calloc(1, sizeof *b);
  b->f = f;
  b->off = off;
  b->len = f->data->len - off;
  b->drop_at = drop ? b->len / 2 : 0;
  struct MHD_Response *r = MHD_create_response_from_callback(b->len, 32768, body_cb, b, free);
  char cr[128], etag[80];
  snprintf(etag, sizeof etag, "\"%s\"", f->sha);
  MHD_add_response_header(r, "ETag", etag);
  unsigned st = 200;
  if (range) {
    snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", off, f->data->len - 1, f->data->len);
    MHD_add_response_header(r, "Content-Range", cr);
    st = 206;
  }
  enum MHD_Result rc = MHD_queue_response(c, st, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_size, void **con_cls) {
  (void)cls, (void)version, (void)upload_data, (void)upload_size, (void)con_cls;
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return reply_text(c, 405, "text/plain", "method");
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!strncmp(url, "/storage/", 9)) {
    size_t i = (size_t)atoi(url + 9);
    return i < S.n ? serve_storage(c, &S.files[i]) : reply_text(c, 404, "text/plain", "no");
  }
  if (strstr(url, "/t/gated") && (!auth || strcmp(auth, "Bearer let-me-in") != 0))
    return reply_text(c, 401, "application/json", "{\"error\":\"Access to this repo is gated\"}");
  const char *tree = "/tree/main";
  if (!strncmp(url, "/api/models/", 12) && strstr(url, tree)) {
    const char *repo = url + 12;
    size_t rl = (size_t)(strstr(url, tree) - repo);
    json_t *a = json_array();
    json_array_append_new(
        a, json_pack("{s:s, s:s, s:i}", "type", "file", "path", "README.md", "size", 10));
    for (size_t i = 0; i < S.n; i++) {
      srv_file *f = &S.files[i];
      if (strlen(f->repo) != rl || strncmp(f->repo, repo, rl) != 0) continue;
      long long size = f->claim ? f->claim : (long long)f->data->len;
      const char *oid = f->wrong_sha
                            ? "0000000000000000000000000000000000000000000000000000000000000000"
                            : f->sha;
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:I, s:{s:s, s:I}}", "type", "file", "path", f->path, "size",
                       (json_int_t)size, "lfs", "oid", oid, "size", (json_int_t)size));
    }
    bool any = json_array_size(a) > 1;
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    enum MHD_Result rc = any ? reply_text(c, 200, "application/json", s)
                             : reply_text(c, 404, "application/json", "{\"error\":\"no repo\"}");
    free(s);
    return rc;
  }
  const char *res = strstr(url, "/resolve/main/");
  if (res) { /* the hub's download URL: a redirect to storage */
    srv_file *f = find(url + 1, (size_t)(res - url - 1), res + 14);
    if (!f) return reply_text(c, 404, "text/plain", "Entry not found");
    char loc[128];
    snprintf(loc, sizeof loc, "http://127.0.0.1:%d/storage/%zu", S.port, (size_t)(f - S.files));
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Location", loc);
    MHD_add_response_header(r, "x-linked-etag", f->sha);
    enum MHD_Result rc = MHD_queue_response(c, 302, r);
    MHD_destroy_response(r);
    return rc;
  }
  if (!strncmp(url, "/v2/", 4)) { /* the registry */
    char ns[64], name[64], kind[16], last[128];
    if (sscanf(url, "/v2/%63[^/]/%63[^/]/%15[^/]/%127s", ns, name, kind, last) != 4)
      return reply_text(c, 404, "text/plain", "no");
    char repo[130];
    snprintf(repo, sizeof repo, "%s/%s", ns, name);
    if (!strcmp(name, "evil"))
      return reply_text(c, 200, "application/json",
                        "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/"
                        "vnd.ollama.image.model\",\"digest\":\"sha256:../../../../tmp/evil\","
                        "\"size\":4}]}");
    srv_file *f = find(repo, strlen(repo), "");
    if (!f)
      return reply_text(c, 404, "application/json", "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}");
    if (!strcmp(kind, "manifests")) {
      char m[512];
      snprintf(m, sizeof m,
               "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/"
               "vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":%zu},{\"mediaType\":"
               "\"application/vnd.ollama.image.license\",\"digest\":\"x\",\"size\":1}]}",
               f->sha, f->data->len);
      return reply_text(c, 200, "application/vnd.docker.distribution.manifest.v2+json", m);
    }
    return serve_storage(c, f);
  }
  return reply_text(c, 404, "text/plain", "no");
}

/* Start the server once (the files read from the models folder); false when it cannot. */
static bool srv_start(void) {
  if (S.mhd) return true;
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/tiny-bert.gguf", it_models_dir);
  if (!it_read_whole(p, &S.bert)) return false;
  snprintf(p, sizeof p, "%s/tiny-vlm-mmproj.gguf", it_models_dir);
  if (!it_read_whole(p, &S.mmproj)) return false;
  add("t/plain", "plain-Q4_K_M.gguf", &S.bert);
  add("t/plain", "plain-Q8_0.gguf", &S.mmproj);
  add("t/flaky", "flaky-Q4_K_M.gguf", &S.bert)->flaky = true;
  add("t/bad", "bad-Q4_K_M.gguf", &S.bert)->wrong_sha = true;
  add("t/gated", "gated-Q4_K_M.gguf", &S.bert);
  add("t/twice", "twice-Q4_K_M.gguf", &S.bert)->slow = true;
  add("t/huge", "huge-Q4_K_M.gguf", &S.bert)->claim = 1LL << 40;
  add("t/vlm", "vlm-Q4_K_M.gguf", &S.bert);
  add("t/vlm", "mmproj-F16.gguf", &S.mmproj);
  add("library/tiny", "", &S.bert);
  add("t/cli", "cli-Q4_K_M.gguf", &S.bert);
  add("t/tty", "tty-Q4_K_M.gguf", &S.bert)->slow = true;
  /* a split model: the two halves of one file (discovery reads the first part's header) */
  static sy_buf half[2];
  if (!half[0].len) {
    size_t h = S.bert.len / 2;
    sy_buf_append(&half[0], S.bert.data, h);
    sy_buf_append(&half[1], S.bert.data + h, S.bert.len - h);
  }
  add("t/split", "Q4_K_M/split-Q4_K_M-00001-of-00002.gguf", &half[0]);
  add("t/split", "Q4_K_M/split-Q4_K_M-00002-of-00002.gguf", &half[1]);
  S.mhd = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0, NULL,
      NULL, srv_handler, NULL, MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
  if (!S.mhd) return false;
  S.port = MHD_get_daemon_info(S.mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
  return true;
}

/* ---- the daemon under test: B, on an empty models folder, pointed at the server ---- */

static char pulled[PATH_MAX];

static void with_pull_daemon(const char *name, void (*body)(void)) {
  if (!srv_start()) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "tiny-bert.gguf/tiny-vlm-mmproj.gguf not made");
    return;
  }
  snprintf(pulled, sizeof pulled, "%s/pulled-%s", it_tmpdir, name);
  mkdir(pulled, 0755);
  char url[64], yaml[PATH_MAX + 64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", S.port);
  setenv("SWITCHYARD_HF_ENDPOINT", url, 1);
  setenv("SWITCHYARD_REGISTRY", url, 1);
  setenv("SWITCHYARD_HF_TOKEN", "not-the-right-one", 1);
  snprintf(yaml, sizeof yaml, "models_dir: %s\n", pulled);
  it_with_own_daemon(name, yaml, body);
}

/* POST /api/pull {model: ref} to B, streamed: the NDJSON lines (new reference). */
static json_t *pull_lines(const char *ref, long *status) {
  resp r;
  json_t *body = json_pack("{s:s}", "model", ref);
  it_post_json_at(&B, "/api/pull", body, &r);
  *status = r.status;
  json_t *lines = json_array();
  const char *s = r.body.data ? r.body.data : "";
  while (*s) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    json_t *j = json_loadb(s, n, 0, NULL);
    json_array_append_new(lines, j ? j : json_string("<not JSON>"));
    s += n + (nl ? 1 : 0);
  }
  it_resp_clear(&r);
  return lines;
}

static const char *last_field(const json_t *lines, const char *key) {
  return json_string_value(json_object_get(json_array_get(lines, json_array_size(lines) - 1), key));
}

/* a streamed pull of ref ends in "success" */
static bool pull_ok(const char *ref) {
  long st;
  json_t *l = pull_lines(ref, &st);
  const char *ok = last_field(l, "status");
  bool yes = st == 200 && ok && !strcmp(ok, "success");
  json_decref(l);
  return yes;
}

/* path under the models folder holds exactly data */
static bool same_file(const char *name, const sy_buf *data) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s", pulled, name);
  sy_buf b = {0};
  bool ok = it_read_whole(p, &b) && b.len == data->len && !memcmp(b.data, data->data, b.len);
  sy_buf_free(&b);
  return ok;
}

static bool exists(const char *name) {
  char p[PATH_MAX * 2];
  snprintf(p, sizeof p, "%s/%s", pulled, name);
  struct stat st;
  return stat(p, &st) == 0;
}

/* how many entries the models folder holds */
static int n_entries(void) {
  DIR *d = opendir(pulled);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static bool listed(const char *model) {
  resp r;
  it_http_do(&B, "GET", "/v1/models", NULL, &r, NULL);
  bool found = false;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r.json, "data"), i, m) found |=
      !strcmp(json_string_value(json_object_get(m, "id")) ?: "", model);
  it_resp_clear(&r);
  return found;
}

/* model's capabilities in GET /v1/models/<model> include cap */
static bool has_cap(const char *model, const char *cap) {
  resp r;
  char path[256];
  snprintf(path, sizeof path, "/v1/models/%s", model);
  it_http_do(&B, "GET", path, NULL, &r, NULL);
  bool found = false;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(r.json, "capabilities"), i, c) found |=
      !strcmp(json_string_value(c) ?: "", cap);
  it_resp_clear(&r);
  return found;
}

static srv_file *file_of(const char *path) {
  for (size_t i = 0; i < S.n; i++)
    if (!strcmp(S.files[i].path, path)) return &S.files[i];
  return NULL;
}

/* ---- the tests ---- */

static void b_clean(void) {
  long st;
  json_t *l = pull_lines("hf.co/t/plain:Q4_K_M", &st);
  CHECK(st == 200, "status %ld", st);
  const char *ok = last_field(l, "status");
  CHECK(ok && !strcmp(ok, "success"), "last line: %s",
        json_dumps(json_array_get(l, json_array_size(l) - 1), 0));
  CHECK(!strcmp(json_string_value(json_object_get(json_array_get(l, 0), "status")),
                "pulling manifest"),
        "first line");
  bool progress = false;
  size_t i;
  json_t *e;
  json_array_foreach(l, i, e) {
    json_t *t = json_object_get(e, "total"), *c = json_object_get(e, "completed");
    const char *dg = json_string_value(json_object_get(e, "digest"));
    if (json_is_integer(t) && json_integer_value(t) == (json_int_t)S.bert.len &&
        json_is_integer(c) && json_integer_value(c) == json_integer_value(t) && dg &&
        !strcmp(dg + 7, file_of("plain-Q4_K_M.gguf")->sha))
      progress = true;
  }
  json_decref(l);
  CHECK(progress, "a progress line with digest, total and completed");
  CHECK(same_file("plain-Q4_K_M.gguf", &S.bert), "the file installed byte for byte");
  CHECK(n_entries() == 1, "only the model file in the folder (no .partial): %d", n_entries());
  CHECK(listed("plain-Q4_K_M"), "the model is in /v1/models without a restart");
  /* again: already there, nothing downloaded */
  int gets = file_of("plain-Q4_K_M.gguf")->gets;
  CHECK(pull_ok("hf.co/t/plain:Q4_K_M"), "second pull");
  CHECK(file_of("plain-Q4_K_M.gguf")->gets == gets, "no second download");
}
static void t_clean(void) { with_pull_daemon("pull_clean", b_clean); }

static void b_resume(void) {
  CHECK(pull_ok("hf.co/t/flaky"), "pulled after a dropped transfer");
  srv_file *f = file_of("flaky-Q4_K_M.gguf");
  CHECK(f->gets == 2 && f->ranged == 1, "resumed with Range: %d GETs, %d ranged", f->gets,
        f->ranged);
  CHECK(same_file("flaky-Q4_K_M.gguf", &S.bert), "the resumed file is whole");
}
static void t_resume(void) { with_pull_daemon("pull_resume", b_resume); }

static void b_bad(void) {
  long st;
  json_t *l = pull_lines("hf.co/t/bad:Q4_K_M", &st);
  const char *err = last_field(l, "error");
  bool said = err && strstr(err, "checksum mismatch");
  json_decref(l);
  CHECK(said, "a checksum error");
  CHECK(n_entries() == 0, "nothing installed, no partial file kept: %d entries", n_entries());
}
static void t_bad(void) { with_pull_daemon("pull_bad_checksum", b_bad); }

static void b_errors(void) {
  resp r;
  it_post_json_at(&B, "/api/pull",
                  json_pack("{s:s, s:b}", "model", "hf.co/t/nothere:Q4_K_M", "stream", 0), &r);
  const char *e = it_jstr(r.json, "error");
  bool nf = r.status == 404 && e && strstr(e, "not found");
  it_resp_clear(&r);
  CHECK(nf, "404 not found");
  it_post_json_at(&B, "/api/pull",
                  json_pack("{s:s, s:b}", "model", "hf.co/t/plain:Q3_K_S", "stream", 0), &r);
  nf = r.status == 404 && it_jstr(r.json, "error") && strstr(it_jstr(r.json, "error"), "Q3_K_S");
  it_resp_clear(&r);
  CHECK(nf, "an unknown quant tag: 404 naming it");
  it_post_json_at(&B, "/api/pull", json_pack("{s:s, s:b}", "model", "hf.co/t/gated", "stream", 0),
                  &r);
  e = it_jstr(r.json, "error");
  bool un = r.status == 401 && e && strstr(e, "unauthorized") && strstr(e, "HF_TOKEN");
  it_resp_clear(&r);
  CHECK(un, "401 that says to set HF_TOKEN");
  it_post_json_at(&B, "/api/pull",
                  json_pack("{s:s, s:b}", "model", "hf.co/t/../../etc", "stream", 0), &r);
  bool bad = r.status == 400;
  it_resp_clear(&r);
  CHECK(bad, "a traversal in the reference: 400");
  it_post_json_at(&B, "/api/pull", json_pack("{s:s, s:b}", "model", "evil", "stream", 0), &r);
  e = it_jstr(r.json, "error");
  bad = r.status == 502 && e && strstr(e, "malformed digest");
  it_resp_clear(&r);
  CHECK(bad, "a manifest digest with a path in it: refused");
  CHECK(n_entries() == 0, "nothing written: %d entries", n_entries());
  struct stat sst;
  CHECK(stat("/tmp/evil", &sst) != 0, "nothing written outside");
}
static void t_errors(void) { with_pull_daemon("pull_errors", b_errors); }

static void b_split_vlm(void) {
  CHECK(pull_ok("hf.co/t/split:Q4_K_M"), "split pull");
  CHECK(exists("split-Q4_K_M-00001-of-00002.gguf") && exists("split-Q4_K_M-00002-of-00002.gguf"),
        "both parts");
  CHECK(listed("split-Q4_K_M"), "the split model listed once by its name");
  CHECK(pull_ok("hf.co/t/vlm:Q4_K_M"), "vision pull");
  CHECK(same_file("vlm-Q4_K_M.gguf", &S.bert), "the model");
  CHECK(same_file("mmproj-vlm-Q4_K_M.gguf", &S.mmproj), "its projector, named after it");
  CHECK(listed("vlm-Q4_K_M"), "listed");
  CHECK(has_cap("vlm-Q4_K_M", "vision"), "its projector attached: the model takes images");
  CHECK(!has_cap("split-Q4_K_M", "vision"), "no projector, no vision");
  CHECK(pull_ok("tiny"), "registry pull");
  /* DELETE /api/delete: a split model's parts, a vision model's projector; then 404 */
  resp r;
  const char *ct[] = {"Content-Type: application/json", NULL};
  it_http_do(&B, "DELETE", "/api/delete", "{\"model\":\"split-Q4_K_M\"}", &r, ct);
  long st = r.status;
  it_resp_clear(&r);
  CHECK(st == 200, "delete: %ld", st);
  CHECK(!exists("split-Q4_K_M-00001-of-00002.gguf") && !exists("split-Q4_K_M-00002-of-00002.gguf"),
        "both parts removed");
  CHECK(!listed("split-Q4_K_M"), "no longer listed");
  it_http_do(&B, "DELETE", "/api/delete", "{\"model\":\"vlm-Q4_K_M:latest\"}", &r, ct);
  st = r.status;
  it_resp_clear(&r);
  CHECK(st == 200 && !exists("vlm-Q4_K_M.gguf") && !exists("mmproj-vlm-Q4_K_M.gguf"),
        "the model and its projector removed: %ld", st);
  it_http_do(&B, "DELETE", "/api/delete", "{\"model\":\"vlm-Q4_K_M\"}", &r, ct);
  st = r.status;
  it_resp_clear(&r);
  CHECK(st == 404, "deleted twice: %ld", st);
  it_http_do(&B, "DELETE", "/api/delete", "{\"model\":\"speak\"}", &r, ct);
  st = r.status;
  it_resp_clear(&r);
  CHECK(st == 400, "a model of the config (the built-in voice) is not deleted: %ld", st);
  CHECK(listed("tiny"), "the others stay");
  CHECK(same_file("tiny.gguf", &S.bert), "the registry's blob, verified by its digest");
  CHECK(listed("tiny"), "listed");
}
static void t_split_vlm(void) { with_pull_daemon("pull_split_vlm", b_split_vlm); }

typedef struct bg_pull {
  long status;
  char last[256];
} bg_pull;

static void *bg_pull_fn(void *arg) {
  bg_pull *b = arg;
  resp r;
  it_post_json_at(&B, "/api/pull", json_pack("{s:s, s:b}", "model", "hf.co/t/twice", "stream", 0),
                  &r);
  b->status = r.status;
  snprintf(b->last, sizeof b->last, "%s", r.body.data ? r.body.data : "");
  it_resp_clear(&r);
  return NULL;
}

static void b_twice(void) {
  bg_pull a = {0}, b = {0};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, bg_pull_fn, &a);
  pthread_create(&tb, NULL, bg_pull_fn, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK(a.status == 200 && b.status == 200, "both pulls succeed: %s / %s", a.last, b.last);
  CHECK(file_of("twice-Q4_K_M.gguf")->gets == 1, "one download: %d",
        file_of("twice-Q4_K_M.gguf")->gets);
  CHECK(same_file("twice-Q4_K_M.gguf", &S.bert), "the file");
}
static void t_twice(void) { with_pull_daemon("pull_twice", b_twice); }

static void b_disk(void) {
  resp r;
  it_post_json_at(&B, "/api/pull", json_pack("{s:s, s:b}", "model", "hf.co/t/huge", "stream", 0),
                  &r);
  const char *e = it_jstr(r.json, "error");
  bool full = r.status == 507 && e && strstr(e, "disk space");
  it_resp_clear(&r);
  CHECK(full, "refused for the disk space");
  CHECK(file_of("huge-Q4_K_M.gguf")->gets == 0, "before downloading");
  CHECK(n_entries() == 0, "nothing written");
}
static void t_disk(void) { with_pull_daemon("pull_disk", b_disk); }

/* `switchyard pull` (the CLI) against B, its stderr captured (not a terminal: plain lines);
 * the exit status. */
static int run_cli(const char *ref, sy_buf *out, bool tty) {
  char cmd[PATH_MAX * 3], log[PATH_MAX];
  snprintf(log, sizeof log, "%s/cli-pull.txt", it_tmpdir);
  if (tty) /* script(1) gives it a pseudo-terminal */
    snprintf(cmd, sizeof cmd,
             "SWITCHYARD_HOST=127.0.0.1:%d script -qec \"'%s' pull '%s'\" /dev/null >'%s' 2>&1",
             B.port, it_daemon_bin, ref, log);
  else
    snprintf(cmd, sizeof cmd, "SWITCHYARD_HOST=127.0.0.1:%d '%s' pull '%s' >'%s' 2>&1", B.port,
             it_daemon_bin, ref, log);
  int st = system(cmd);
  it_read_whole(log, out);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void b_cli(void) {
  sy_buf out = {0};
  int st = run_cli("hf.co/t/cli", &out, false);
  bool shown =
      out.data && strstr(out.data, "pulling cli-Q4_K_M.gguf: 100%") && strstr(out.data, "success");
  sy_buf_free(&out);
  CHECK(st == 0 && shown, "exit %d, plain progress lines and success", st);
  CHECK(same_file("cli-Q4_K_M.gguf", &S.bert), "the file");
  CHECK(listed("cli-Q4_K_M"), "listed");
  st = run_cli("hf.co/t/nothere", &out, false);
  bool said = out.data && strstr(out.data, "not found");
  sy_buf_free(&out);
  CHECK(st == 1 && said, "a 404: exit %d, its words", st);
  /* switchyard rm (DELETE /api/delete) */
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd, "SWITCHYARD_HOST=127.0.0.1:%d '%s' rm cli-Q4_K_M >/dev/null 2>&1",
           B.port, it_daemon_bin);
  st = system(cmd);
  CHECK(
      WIFEXITED(st) && WEXITSTATUS(st) == 0 && !exists("cli-Q4_K_M.gguf") && !listed("cli-Q4_K_M"),
      "switchyard rm: exit %d, the file gone, no longer listed", st);
  st = system(cmd);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "rm again: exit %d (not found)", st);
  if (system("command -v script >/dev/null 2>&1") != 0) return; /* no script(1): no terminal */
  st = run_cli("hf.co/t/tty", &out, true);                      /* slow enough for a bar */
  bool bar = out.data && strstr(out.data, "\r") && strstr(out.data, "100% [#########") &&
             strstr(out.data, "success");
  sy_buf_free(&out);
  CHECK(st == 0 && bar, "on a terminal: a progress bar redrawn in place (exit %d)", st);
}
static void t_cli(void) { with_pull_daemon("pull_cli", b_cli); }

/* pull's hub and registry from the config's pull section, with no environment to say them */
static void b_config(void) {
  CHECK(pull_ok("hf.co/t/vlm:Q4_K_M"), "the hub the config names");
  CHECK(pull_ok("tiny"), "the registry the config names");
  CHECK(listed("vlm-Q4_K_M") && listed("tiny"), "both listed");
}
static void t_config(void) {
  if (!srv_start()) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "tiny-bert.gguf/tiny-vlm-mmproj.gguf not made");
    return;
  }
  snprintf(pulled, sizeof pulled, "%s/pulled-config", it_tmpdir);
  mkdir(pulled, 0755);
  static const char *const vars[] = {"SWITCHYARD_HF_ENDPOINT", "HF_ENDPOINT", "SWITCHYARD_REGISTRY",
                                     "SWITCHYARD_HF_TOKEN", "HF_TOKEN"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
  char yaml[PATH_MAX + 256];
  snprintf(yaml, sizeof yaml,
           "models_dir: %s\npull: {hf_endpoint: 'http://127.0.0.1:%d', registry: "
           "'http://127.0.0.1:%d', hf_token: not-the-right-one}\n",
           pulled, S.port, S.port);
  it_with_own_daemon("pull_config", yaml, b_config);
}

static const it_test tests[] = {
    {"pull_cli", t_cli, false},
    {"pull_config", t_config, false},
    {"pull_clean", t_clean, false},
    {"pull_resume", t_resume, false},
    {"pull_bad_checksum", t_bad, false},
    {"pull_errors", t_errors, false},
    {"pull_split_vlm", t_split_vlm, false},
    {"pull_twice", t_twice, false},
    {"pull_disk", t_disk, false},
};

const itest_table itest_pull = {"pull", tests, sizeof tests / sizeof *tests};
