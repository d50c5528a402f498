#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

bool timing_source_date(uint32_t *seconds)
{
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	char *end;
	unsigned long long t;

	if (epoch == NULL || epoch[0] < '0' || epoch[0] > '9')
		return false;
	t = strtoull(epoch, &end, 10);
	if (*end != '\0' || t > UINT32_MAX)
		return false;
	*seconds = (uint32_t)t;
	return true;
}
