/* gpumem.h — live GPU memory from the driver, where the platform tells: NVIDIA's NVML
 * (libnvidia-ml.so.1, opened at run time with dlopen, so the daemon neither links nor needs it;
 * absent = "unknown", and the budget falls back to the device probe's numbers at start).
 * Index i is the i-th NVIDIA GPU in PCI bus order, which is CUDA's order (CUDA0, CUDA1, ...) when
 * CUDA_DEVICE_ORDER=PCI_BUS_ID; the daemon sets that for its workers unless the user did.
 * Thread safety: every function may be called from any thread. */
#ifndef SY_GPUMEM_H
#define SY_GPUMEM_H

#include <stdbool.h>
#include <sys/types.h>

/* Whether NVML answered (initialised once, on first use). */
bool gpumem_available(void);
/* Free and total bytes of GPU index now. 0, or -1 when unknown. */
int gpumem_info(int index, long long *free_bytes, long long *total_bytes);
/* Bytes process pid holds on GPU index (its CUDA context and allocations), 0 when none, -1 when
 * unknown. */
long long gpumem_process_bytes(int index, pid_t pid);
/* The NVML index of a ggml device name ("CUDA3" → 3), or -1 for other backends. Pure. */
int gpumem_index_of(const char *device_name);

#endif
