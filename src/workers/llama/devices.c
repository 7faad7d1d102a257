/* devices.c — `switchyard-llama --list-devices [--rpc host:port,...]`: the compute devices this
 * engine build sees, with their memory, as one JSON line on stdout, through ggml's backend device
 * API (so it works for every backend: CPU, CUDA, Vulkan, HIP, Metal, and the RPC servers the
 * matrix names, with the memory each server reports). The daemon runs it at start and on reload
 * as a probe.
 * Never loads a model; never prints anything else on stdout. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "llama.h"
#include "worker.h"

static void devices_quiet(enum ggml_log_level level, const char *text, void *ud) {
  (void)level;
  (void)text;
  (void)ud;
}

/* Add each server of the comma-separated list that answers; the others go to unreachable as
 * {"endpoint", "error"}. */
static void devices_add_rpc(const char *rpc, json_t *unreachable) {
  char ep[SY_ENDPOINT_MAX + 1], err[512];
  for (const char *p = rpc; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    snprintf(ep, sizeof ep, "%.*s", (int)(len < sizeof ep ? len : sizeof ep - 1), p);
    const char *one[1] = {ep};
    if (len >= sizeof ep || sy_endpoint_parse(ep, NULL, 0, NULL, err, sizeof err) != 0 ||
        rpc_add_servers(one, 1, err, sizeof err) != 0)
      json_array_append_new(unreachable, json_pack("{s:s, s:s}", "endpoint", ep, "error",
                                                   len >= sizeof ep ? "too long" : err));
    p += len + (end ? 1 : 0);
  }
}

int devices_print(const char *rpc) {
  llama_log_set(devices_quiet,
                NULL); /* stdout carries the JSON only; no engine chatter on stderr */
  llama_backend_init();
  json_t *unreachable = json_array();
  if (rpc) devices_add_rpc(rpc, unreachable);
  json_t *arr = json_array();
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t d = ggml_backend_dev_get(i);
    size_t free_b = 0, total_b = 0;
    ggml_backend_dev_memory(d, &free_b, &total_b);
    enum ggml_backend_dev_type t = ggml_backend_dev_type(d);
    const char *type = t == GGML_BACKEND_DEVICE_TYPE_CPU    ? "cpu"
                       : t == GGML_BACKEND_DEVICE_TYPE_GPU  ? "gpu"
                       : t == GGML_BACKEND_DEVICE_TYPE_IGPU ? "igpu"
                                                            : "other";
    const char *name = ggml_backend_dev_name(d), *desc = ggml_backend_dev_description(d);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name ? name : "?", "description",
                          desc ? desc : "", "type", type, "free", (json_int_t)free_b, "total",
                          (json_int_t)total_b);
    if (o && ggml_backend_dev_backend_reg(d) == ggml_backend_rpc_reg() && desc) {
      int on_server = 0; /* its index among the server's devices (RPC<k>[host:port] in ggml) */
      for (size_t k = 0; k < i; k++) {
        const char *dk = ggml_backend_dev_description(ggml_backend_dev_get(k));
        if (ggml_backend_dev_backend_reg(ggml_backend_dev_get(k)) == ggml_backend_rpc_reg() && dk &&
            strcmp(dk, desc) == 0)
          on_server++;
      }
      json_object_set_new(o, "endpoint", json_string(desc));
      json_object_set_new(o, "rpc_device", json_integer(on_server));
    }
    json_array_append_new(arr, o);
  }
  json_t *doc = json_pack("{s:o, s:o}", "devices", arr, "rpc_unreachable", unreachable);
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  int rc = s ? 0 : 1;
  if (s) printf("%s\n", s);
  free(s);
  llama_backend_free();
  return rc;
}
