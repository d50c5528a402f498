/* Microsecond timings of launch phases, printed with -v. */
#ifndef CAPSULA_TIMING_H
#define CAPSULA_TIMING_H

#include <stdint.h>

uint64_t timing_now_us(void);
/* Print "capsula: PHASE N us" when verbose, and return a new start time. */
uint64_t timing_report(int verbosity, const char *phase, uint64_t start_us);

#endif
