/* What one conversion may take: entries and the memory their metadata
 * keeps while the image is made (names, link targets, extended attributes,
 * the block lists of files). A small archive of headers (300,000 empty
 * files in 2.8 MB of tar.gz) or one file declaring an exabyte of holes must
 * be refused in one line, not exhaust the login node. The site sets the
 * bounds (max image entries, max image memory); the threads that read
 * layers charge the same budget, and stop once it is spent or the build is
 * stopped. */
#ifndef CAPSULA_BUDGET_H
#define CAPSULA_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* What an entry keeps besides its strings: tree node, inode, list slot. */
#define BUDGET_ENTRY_BYTES 440

struct build_budget {
	uint64_t max_entries, max_bytes;
	uint64_t entries, bytes;          /* charged so far (atomically) */
	const char *config_path;          /* where the limits are set, for messages */
	volatile int stop;                /* set: every reader stops at its next entry */
};

/* The defaults, or the site's (max_entries 0: the defaults). */
void budget_init(struct build_budget *b, uint64_t max_entries, uint64_t max_bytes,
                 const char *config_path);

/* Charge entries and bytes for what (an entry's name, for messages). */
int budget_charge(struct build_budget *b, uint64_t entries, uint64_t bytes, const char *what,
                  capsula_error *err);

#define DEFAULT_MAX_IMAGE_ENTRIES 4000000ULL
#define DEFAULT_MAX_IMAGE_BYTES (2ULL << 30)

#endif
