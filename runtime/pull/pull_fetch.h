/* Fetching an image's blobs into the cache: several at once, each by one
 * process only (a lock per blob), with progress on a terminal and a line
 * per blob elsewhere. */
#ifndef CAPSULA_PULL_FETCH_H
#define CAPSULA_PULL_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/image/image_cache.h"
#include "runtime/pull/registry.h"

struct fetch_blob {
	char digest[72];
	int64_t size;
	char label[32];          /* "config", "layer 2/5" */
	uint64_t done;           /* bytes so far, updated as they arrive */
	int state;               /* FETCH_WAITING .. FETCH_CACHED */
	uint64_t start_us, end_us;
};

enum { FETCH_WAITING, FETCH_ACTIVE, FETCH_DONE, FETCH_CACHED };

int fetch_blobs(struct registry *r, const struct image_cache *cache, struct fetch_blob *blobs,
                size_t count, unsigned parallel, bool quiet, capsula_error *err);

#endif
