/* footprint.h — how much memory a model will take, before loading it (an estimate) and while it
 * runs (a measurement).
 *
 * Estimate: llama.cpp's own `llama-fit-params` tool, run as a short-lived probe (it simulates the
 * load with no_alloc and prints per-device MiB for weights, KV cache and compute buffers). Running
 * the engine's tool keeps the daemon free of engine code (the per-device breakdown is C++ only),
 * and it knows every architecture the engine knows. If the probe fails, a rough fallback from the
 * file size is used and says so. Measurement: the worker's resident set (VmRSS) from /proc.
 * Never trusts the probe's output beyond its fixed line format; never waits for it forever. */
#ifndef SY_FOOTPRINT_H
#define SY_FOOTPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "config/matrix.h"
#include "endpoint.h"

/* Added to an mmproj's file size for its compute buffer (image encoding) and preprocessing: the
 * projector's own probe is C++ only (mtmd_get_memory_usage). Generous for LLaVA/Qwen-VL-sized
 * encoders at their default image sizes; the measurement corrects it after the first load. */
#define FOOTPRINT_MMPROJ_MARGIN (256LL * 1024 * 1024)
/* Qwen-VL projectors need more: mtmd sizes their compute buffer by a warm-up encode of 46x46
 * merged patches (8464 patches) whatever the widths. Measured (docs/MODELS.md): Qwen2.5-VL-7B's
 * 705 MiB (its window-attention mask alone is 8464^2 floats), Qwen3-VL-8B's 372 MiB. Qwen2-VL's
 * (not measured: the same warm-up, a wider FFN, no mask) counts as Qwen2.5-VL's. */
#define FOOTPRINT_MMPROJ_MARGIN_QWEN25VL (768LL * 1024 * 1024)
#define FOOTPRINT_MMPROJ_MARGIN_QWEN3VL (448LL * 1024 * 1024)

/* The margin added to a projector of this clip.projector_type (NULL or "": unknown). Pure. */
long long footprint_mmproj_margin(const char *projector_type);

/* Bytes of a device's name: "Host", "CUDA0", or an RPC server's device, "RPC<k>[host:port]"
 * (ggml's own name for its buffers there; endpoint.h bounds the endpoint). */
#define FOOTPRINT_DEV_NAME (SY_ENDPOINT_MAX + 32)

typedef struct footprint_est {
  long long model_bytes;   /* weights, all devices */
  long long context_bytes; /* KV cache */
  long long compute_bytes; /* compute buffers */
  long long mmproj_bytes;  /* the projector: its file + footprint_mmproj_margin (the probe
                              does not count it) */
  long long total_bytes;   /* the sum, plus the worker process's own overhead */
  bool from_probe;         /* false: the file-size fallback */
  char devices[128];       /* what the probe named, e.g. "Host" or "CUDA0,Host" */
  struct {
    char name[FOOTPRINT_DEV_NAME]; /* the probe's device name: "Host", "CUDA0", "Vulkan0", "RPC0"
                                      (the model's first RPC device: the scheduler renames it to
                                      its pool's name, "RPC0[host:port]"), ... */
    long long bytes; /* weights + KV cache + compute buffers there (no process overhead) */
  } dev[8];
  int n_dev;
} footprint_est;

/* Estimate model m's footprint with its matrix settings (context × parallel cells, batch, GPU
 * layers, experts kept on the CPU: --cpu-moe / --n-cpu-moe; its RPC servers: the probe reaches
 * them and names their devices RPC0, RPC1, ... in the order of m->rpc) by running `tool` (a path
 * to llama-fit-params; NULL or missing = fallback). Always fills *out; returns 0 when the probe
 * answered, -1 (reason in err) when the fallback was used. */
int footprint_estimate(const char *tool, const matrix_model *m, footprint_est *out, char *err,
                       size_t errlen);

/* A whisper.cpp model's footprint from its file's header (magic, 11 hyper-parameters, then the mel
 * filters' n_mel and n_fft 201): the weights (the file), the self-attention, cross-attention and
 * padding KV caches as whisper_init_state sizes them (F16, contexts padded to 256), and its four
 * compute buffers (conv, encode, cross, decode) from the shapes that dominate them (the encoder's
 * attention scores, the decoder's logits for a whole text context), plus the process. Sized for the
 * worker as it loads (no flash attention). Fills *out and returns 0, or -1 when the file is not a
 * readable whisper header (Parakeet's, or hostile numbers): the caller falls back to the file size.
 */
int footprint_whisper_estimate(const char *path, long long file_bytes, footprint_est *out);

/* Raise a probe's weights to at least the model file's size (the part it missed counted on Host):
 * the CPU backend's repacked weights are not in the probe's numbers. */
void footprint_weights_floor(footprint_est *e, long long file_bytes);

/* The expert bytes a model keeps in host RAM with cpu_moe (matrix.h): all of expert_bytes for
 * MATRIX_CPU_MOE_ALL, the first N of expert_layers layers' share for N > 0 (the layers' experts
 * are the same size), 0 without cpu_moe or when the size is unknown (expert_bytes < 0). Pure. */
long long footprint_cpu_moe_bytes(long long expert_bytes, int expert_layers, int cpu_moe);

/* Put at least host_bytes of e on the host: when the devices named "Host"/"CPU" hold less, the
 * difference moves there from the GPU devices (first named first; none goes below 0). The total
 * is unchanged. The probe run with --cpu-moe already counts the experts on the host, so this
 * only corrects an estimate that did not (an older remembered one, a probe that ignored it). */
void footprint_experts_on_host(footprint_est *e, long long host_bytes);

/* Parse the probe's stdout ("NAME MODEL_MiB CONTEXT_MiB COMPUTE_MiB" per line). 0 or -1. */
int footprint_parse_probe(const char *text, footprint_est *out);

/* The devices the engine build sees: runs `worker_exe --list-devices` and returns its
 * {"devices":[{"name","description","type","free","total"}]} (new reference), or NULL. With rpc
 * ("host:port,host:port", or NULL for none) the servers' devices too, each with "endpoint" and
 * "rpc_device" (its index there), and "rpc_unreachable": [{"endpoint","error"}]. */
json_t *footprint_devices(const char *worker_exe, const char *rpc, char *err, size_t errlen);

/* Resident memory of a process in bytes (VmRSS), or -1 if it is gone. */
long long footprint_rss_bytes(pid_t pid);
/* MemTotal of this machine in bytes, or -1. */
long long footprint_mem_total(void);
/* MemAvailable (free + reclaimable page cache) in bytes, or -1. */
long long footprint_mem_available(void);

/* The budget models may use right now: the configured one, but never more than what is really
 * there: what is available now plus what our own workers hold, minus the reserve (memory used by
 * other programs is thus subtracted live). available < 0 (unknown) leaves configured as is. Pure.
 */
long long footprint_live_budget(long long configured, long long available, long long ours,
                                long long reserve);

#endif
