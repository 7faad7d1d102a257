/* devices.c — `switchyard-llama --list-devices`: the compute devices this engine build sees, with
 * their memory, as one JSON line on stdout, through ggml's backend device API (so it works for
 * every backend: CPU, CUDA, Vulkan, HIP, Metal). The daemon runs it once at start as a probe.
 * Never loads a model; never prints anything else on stdout. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml-backend.h"
#include "llama.h"
#include "worker.h"

static void devices_quiet(enum ggml_log_level level, const char *text, void *ud) {
  (void)level;
  (void)text;
  (void)ud;
}

int devices_print(void) {
  llama_log_set(devices_quiet,
                NULL); /* stdout carries the JSON only; no engine chatter on stderr */
  llama_backend_init();
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
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name ? name : "?",
                                         "description", desc ? desc : "", "type", type, "free",
                                         (json_int_t)free_b, "total", (json_int_t)total_b));
  }
  json_t *doc = json_pack("{s:o}", "devices", arr);
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  int rc = s ? 0 : 1;
  if (s) printf("%s\n", s);
  free(s);
  llama_backend_free();
  return rc;
}
