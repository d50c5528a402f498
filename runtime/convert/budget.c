#include "config.h"

#include <stdio.h>

#include "runtime/convert/budget.h"

void budget_init(struct build_budget *b, uint64_t max_entries, uint64_t max_bytes,
                 const char *config_path)
{
	b->max_entries = max_entries ? max_entries : DEFAULT_MAX_IMAGE_ENTRIES;
	b->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_IMAGE_BYTES;
	b->entries = b->bytes = 0;
	b->config_path = config_path;
	b->stop = 0;
}

int budget_charge(struct build_budget *b, uint64_t entries, uint64_t bytes, const char *what,
                  capsula_error *err)
{
	uint64_t now_entries = __atomic_add_fetch(&b->entries, entries, __ATOMIC_RELAXED);
	uint64_t now_bytes = __atomic_add_fetch(&b->bytes, bytes, __ATOMIC_RELAXED);
	char hint[600];

	if (now_entries <= b->max_entries && now_bytes <= b->max_bytes)
		return 0;
	b->stop = 1;
	snprintf(hint, sizeof hint, "build it where the administrator allows more (%s: %s)",
	         b->config_path, now_entries > b->max_entries ? "max image entries" :
	         "max image memory");
	if (now_entries > b->max_entries)
		return fail(err, 0, hint, "the image has more than %llu entries (at %s)",
		            (unsigned long long)b->max_entries, what);
	return fail(err, 0, hint, "the image's metadata needs more than %llu MiB of memory "
	            "(at %s)", (unsigned long long)(b->max_bytes >> 20), what);
}
