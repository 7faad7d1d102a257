/* mixed.h — `bench mixed`, the multi-model swap workload (see mixed.c). */
#ifndef SY_BENCH_MIXED_H
#define SY_BENCH_MIXED_H

int bench_mixed(int argc, char **argv);

#endif
