/* Microsecond timings of launch phases, printed with -v. */
#ifndef CAPSULA_TIMING_H
#define CAPSULA_TIMING_H

#include <stdbool.h>
#include <stdint.h>

uint64_t timing_now_us(void);
/* Print "capsula: PHASE N us" when enabled, and return a new start time. */
uint64_t timing_report(bool enabled, const char *phase, uint64_t start_us);
/* SOURCE_DATE_EPOCH (reproducible builds' convention), when it is set to
 * seconds that squashfs and tar can keep. */
bool timing_source_date(uint32_t *seconds);

#endif
