/* gpumem.c — see gpumem.h. Declares the few NVML entry points it calls (their C ABI is stable and
 * documented: nvmlInit_v2, nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetMemoryInfo,
 * nvmlDeviceGetComputeRunningProcesses_v3) rather than needing the CUDA headers at build time. */
#include "sched/gpumem.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef void *nvml_device;
typedef struct nvml_memory {
  unsigned long long total, free, used;
} nvml_memory;
typedef struct nvml_process { /* nvmlProcessInfo_t (v2 layout, used by the _v3 call) */
  unsigned int pid;
  unsigned long long used_gpu_memory;
  unsigned int gpu_instance_id, compute_instance_id;
} nvml_process;

static struct {
  int (*init)(void);
  int (*handle)(unsigned int, nvml_device *);
  int (*memory)(nvml_device, nvml_memory *);
  int (*procs)(nvml_device, unsigned int *, nvml_process *);
  bool ok;
} nv;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void nv_open(void) {
  void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
  *(void **)&nv.init = dlsym(h, "nvmlInit_v2");
  *(void **)&nv.handle = dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
  *(void **)&nv.memory = dlsym(h, "nvmlDeviceGetMemoryInfo");
  *(void **)&nv.procs = dlsym(h, "nvmlDeviceGetComputeRunningProcesses_v3");
  if (!nv.init || !nv.handle || !nv.memory || nv.init() != 0) {
    LOG_W("NVML is there but did not start: GPU memory is read once at start only");
    dlclose(h);
    memset(&nv, 0, sizeof nv);
    return;
  }
  nv.ok = true; /* the library stays open for the life of the process */
  LOG_I("NVML: live GPU memory per device and per worker process");
}

bool gpumem_available(void) {
  pthread_once(&once, nv_open);
  return nv.ok;
}

int gpumem_index_of(const char *name) {
  if (!name || strncmp(name, "CUDA", 4) != 0 || !name[4]) return -1;
  char *end = NULL;
  long i = strtol(name + 4, &end, 10);
  return *end == '\0' && i >= 0 && i < 64 ? (int)i : -1;
}

int gpumem_info(int index, long long *free_bytes, long long *total_bytes) {
  nvml_device d;
  nvml_memory m;
  if (index < 0 || !gpumem_available() || nv.handle((unsigned)index, &d) != 0 ||
      nv.memory(d, &m) != 0)
    return -1;
  *free_bytes = (long long)m.free;
  *total_bytes = (long long)m.total;
  return 0;
}

long long gpumem_process_bytes(int index, pid_t pid) {
  nvml_device d;
  if (index < 0 || !gpumem_available() || !nv.procs || nv.handle((unsigned)index, &d) != 0)
    return -1;
  nvml_process procs[64];
  unsigned int n = 64;
  if (nv.procs(d, &n, procs) != 0) return -1; /* also when more than 64 run: unknown */
  for (unsigned int i = 0; i < n && i < 64; i++)
    if (procs[i].pid == (unsigned)pid)
      return procs[i].used_gpu_memory == ~0ULL ? -1 : (long long)procs[i].used_gpu_memory;
  return 0;
}
