#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "common/timing.h"

uint64_t timing_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t timing_report(bool enabled, const char *phase, uint64_t start_us)
{
	uint64_t now = timing_now_us();

	if (enabled)
		fprintf(stderr, "capsula: %-24s %8" PRIu64 " us\n", phase, now - start_us);
	return now;
}
