/* cpu_share.c — the busy CPU workers' thread shares (cpu_share.h). A pure function plus the core
 * count; it must never allocate, read a clock, or hand a worker 0 threads. */
#include "sched/cpu_share.h"

#include <sched.h>
#include <unistd.h>

void cpu_share_plan(int ncpu, const int *want, size_t n, int *out) {
  if (n == 0) return;
  if (ncpu < 1) ncpu = 1;
  size_t m = n > CPU_SHARE_MAX_WORKERS ? CPU_SHARE_MAX_WORKERS : n;
  long long sum = 0;
  for (size_t i = 0; i < n; i++) {
    int w = want[i] < 1 ? 1 : want[i];
    out[i] = w;
    if (i < m) sum += w;
  }
  for (size_t i = m; i < n; i++) out[i] = 1;    /* past the bound: the floor */
  if (sum + (long long)(n - m) <= ncpu) return; /* they all fit */
  long long left = (long long)ncpu - (long long)n;
  for (size_t i = 0; i < n; i++) out[i] = 1;
  /* deal the rest one core at a time, in index order, to those still below their want */
  while (left > 0) {
    int given = 0;
    for (size_t i = 0; i < m && left > 0; i++) {
      int w = want[i] < 1 ? 1 : want[i];
      if (out[i] < w) {
        out[i]++;
        left--;
        given = 1;
      }
    }
    if (!given) break;
  }
}

int cpu_share_cores(void) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}
