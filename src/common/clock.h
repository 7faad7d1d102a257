/* clock.h — the two clocks the code needs: a monotonic millisecond count for intervals, and an
 * absolute CLOCK_REALTIME deadline for pthread_cond_timedwait (which waits on the realtime clock
 * with default condition attributes). */
#ifndef SY_CLOCK_H
#define SY_CLOCK_H

#include <time.h>

/* Milliseconds on the monotonic clock. */
long long sy_mono_ms(void);
/* Seconds on the monotonic clock, to the nanosecond (for timings finer than a millisecond). */
double sy_mono_s(void);
/* The realtime instant ms milliseconds from now (ms < 0 counts as 0). */
struct timespec sy_deadline(long long ms);

#endif
