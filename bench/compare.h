/* compare.h — `bench --compare`, the markdown table of `make bench` (see compare.c). */
#ifndef SY_BENCH_COMPARE_H
#define SY_BENCH_COMPARE_H

int bench_compare(int argc, char **argv);

#endif
