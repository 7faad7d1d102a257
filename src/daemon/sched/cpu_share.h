/* cpu_share.h — how many threads each busy CPU worker may use, so that together they never ask
 * for more cores than the machine has. A decision as a pure function (no I/O, no clock, no
 * globals), like plan.h; sched.c applies it when a worker becomes busy or idle and tells the
 * workers whose share changed (op "threads", docs/PROTOCOL.md).
 *
 * Why: ggml's CPU backend runs every op of a graph between barriers. With more threads than cores,
 * a thread waits at each barrier for one that is not running, so two workers of 2 threads on 2
 * cores each ran several times slower than one alone (docs/PERFORMANCE.md, "OpenMP wait
 * policy"); with their shares (1 + 1) no barrier waits on a descheduled thread and the workers'
 * threads may spin briefly at barriers, which a worker alone needs for its full speed.
 *
 * Thread safety: pure; any thread. */
#ifndef SY_CPU_SHARE_H
#define SY_CPU_SHARE_H

#include <stddef.h>

/* Busy workers one plan takes at most (more are given 1 thread each by the caller). */
#define CPU_SHARE_MAX_WORKERS 256

/* Fill out[0..n) with each busy worker's threads, given the cores (ncpu >= 1) and what each wants
 * (want[i] >= 1: its configured threads). Rules:
 *   - when the wants fit (their sum <= ncpu), each gets what it wants;
 *   - otherwise every worker gets at least 1 and at most what it wants, the cores are dealt out one
 *     at a time in index order to those below their want, and the total is max(ncpu, n): no core
 *     idle while a worker wants more, and never more threads than cores unless there are more
 *     workers than cores (then 1 each);
 *   - shares of workers that did not reach their want differ by at most 1.
 * Bad arguments (ncpu < 1, want[i] < 1, n > CPU_SHARE_MAX_WORKERS) are treated as 1 / clamped;
 * out must hold n ints. */
void cpu_share_plan(int ncpu, const int *want, size_t n, int *out);

/* The cores this process may run on (its affinity mask; the online count if that fails; >= 1). */
int cpu_share_cores(void);

#endif
