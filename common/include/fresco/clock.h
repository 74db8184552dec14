/* Clocks: wall time in ns since the epoch (metric timestamps) and a
 * monotonic clock (deadlines, latencies). */
#ifndef FRESCO_CLOCK_H
#define FRESCO_CLOCK_H

#include <stdint.h>

int64_t fr_now_ns(void);
int64_t fr_mono_ns(void);
int64_t fr_mono_ms(void);

#endif
