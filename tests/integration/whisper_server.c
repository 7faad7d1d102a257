/* whisper_server.c — whisper.cpp's own whisper-server (deps/whisper-server.sh) as an external
 * engine on a daemon of its own: transcription relayed through the proxy. Skipped when --engines
 * does not hold it. (Its own feature because it runs between routers and pipelines.)
 * Must never happen: the server outliving its model, an upload not relayed whole.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

/* whisper.cpp's own whisper-server (deps/whisper-server.sh) as an external engine: transcription
 * through the proxy, dispatched by the multipart form's model field, answered by whisper-server
 * itself (its JSON and SRT), one process for both requests; unloaded on request. */
static char whisper_server[4200];

static void ext_whisper_body(void) {
  sy_buf wav = {0};
  it_make_wav(&wav, 3.0);
  resp r;
  it_post_form_at(&B, "/v1/audio/transcriptions", wav.data, wav.len,
                  (const char *const[]){"model", "wsrv", "response_format", "json", NULL}, &r);
  CHECK(r.status == 200 && json_is_string(json_object_get(r.json, "text")) &&
            strcmp(r.model_hdr, "wsrv") == 0,
        "json through the proxy: %ld '%s' %s", r.status, r.model_hdr, r.body.data);
  it_resp_clear(&r);
  long long pid = it_b_ps_pid("wsrv");
  CHECK(pid > 0, "whisper-server runs: pid %lld", pid);
  it_post_form_at(&B, "/v1/audio/transcriptions", wav.data, wav.len,
                  (const char *const[]){"model", "wsrv", "response_format", "srt", NULL}, &r);
  CHECK(r.status == 200 && !r.json && it_b_ps_pid("wsrv") == pid,
        "srt from the same process: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_form_at(&B, "/v1/audio/transcriptions", wav.data, wav.len,
                  (const char *const[]){"model", "nobody", NULL}, &r);
  CHECK(it_is_error(&r, 404, "model_not_found"), "an unknown model: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_http_do(&B, "POST", "/api/unload", "{\"model\":\"wsrv\"}", &r, NULL);
  CHECK(r.status == 200 && kill((pid_t)pid, 0) != 0, "unloaded: %ld, the process is gone",
        r.status);
  it_resp_clear(&r);
  sy_buf_free(&wav);
}

static void t_ext_whisper(void) {
  if (!whisper_server[0] && it_engines_dir)
    snprintf(whisper_server, sizeof whisper_server, "%s/bin/whisper-server", it_engines_dir);
  if (!whisper_server[0] || access(whisper_server, X_OK) != 0) {
    snprintf(it_cur_skip, sizeof it_cur_skip,
             "whisper-server not found (deps/whisper-server.sh; pass --engines DIR)");
    return;
  }
  char y[8192];
  snprintf(
      y, sizeof y,
      "log_level: warn\nbuiltin_voice: false\nmodels:\n"
      "  - name: wsrv\n    engine: external\n    external:\n"
      "      argv: [%s, -m, %s/tiny-whisper.bin, --host, 127.0.0.1, --port, '${PORT}', -t, '2',\n"
      "             --inference-path, /v1/audio/transcriptions]\n"
      "      health: {path: /health, status: 200, timeout: 120s}\n"
      "      routes: [/v1/audio/transcriptions]\n      stop_grace: 5s\n",
      whisper_server, it_models_dir);
  it_with_own_daemon("ext_whisper", y, ext_whisper_body);
}

static const it_test tests[] = {
    {"ext_whisper", t_ext_whisper, false},
};
const itest_table itest_whisper_server = {"whisper_server", tests, sizeof tests / sizeof *tests};
