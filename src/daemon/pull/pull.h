/* pull.h — `switchyard pull`'s downloader: a model reference (pull_ref.h) → files fetched with
 * libcurl into the models folder, each through a ".partial" file resumed with HTTP Range,
 * verified by its sha256 (the hub's LFS oid, the registry's digest; OpenSSL's libcrypto) and
 * renamed into place atomically. Two pulls of the same file in one process download it once (the
 * second waits for the first). Thread-safe; pull_run blocks for the whole download.
 *
 * Usage:
 *   pull_params p;
 *   pull_params_default(&p);          // endpoints, token and limit from the environment
 *   p.models_dir = "models";
 *   pull_result res;
 *   if (pull_run(&p, "hf.co/org/repo:Q4_K_M", &res) != 0) fprintf(stderr, "%s\n", res.error);
 */
#ifndef SY_PULL_H
#define SY_PULL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "pull/pull_ref.h"

/* Progress: status (Ollama's words: "pulling manifest", "pulling NAME", "verifying sha256
 * digest", "success"); for a file, its digest ("sha256:<hex>", or NULL), total and completed
 * bytes (-1 when unknown). Called on pull_run's thread. */
typedef void (*pull_progress_fn)(void *ud, const char *status, const char *digest, long long total,
                                 long long completed);

typedef struct pull_params {
  const char *models_dir;  /* where models go (must exist); nothing is written elsewhere */
  const char *hf_endpoint; /* a Hugging Face-style hub, default https://huggingface.co */
  const char *hf_token;    /* sent as Authorization: Bearer to the hub (not to redirects) */
  const char *registry;    /* an Ollama-style registry, default https://registry.ollama.ai */
  long long max_bytes;     /* a pull larger than this is refused before downloading; 0 = none */
  long long reserve_bytes; /* disk space that must stay free after the pull (default 64 MiB) */
  int attempts;            /* tries per file after a broken transfer, resuming (default 4) */
  pull_progress_fn progress;
  void *ud;
  const atomic_bool *cancel; /* set to stop (the partial file is kept); NULL: never */
} pull_params;

typedef struct pull_result {
  char model[PULL_MAX_NAME + 1]; /* the model's name as discovery will see it */
  int status;                    /* an HTTP status for the error: 400, 401, 404, 502, 507, 500 */
  char error[512];
} pull_result;

/* The defaults, over them the config's values (hf_endpoint, hf_token, registry: NULL for none;
 * max_bytes: 0 for none; borrowed, they must outlive p), over those the environment:
 * SWITCHYARD_HF_ENDPOINT or HF_ENDPOINT, SWITCHYARD_HF_TOKEN or HF_TOKEN, SWITCHYARD_REGISTRY,
 * SWITCHYARD_PULL_MAX_BYTES. */
void pull_params_default(pull_params *p, const char *hf_endpoint, const char *hf_token,
                         const char *registry, long long max_bytes);

/* Fetch ref into p->models_dir. 0 on success (res->model set), -1 with res->status and
 * res->error. Needs curl_global_init done. */
int pull_run(const pull_params *p, const char *ref, pull_result *res);

#endif
