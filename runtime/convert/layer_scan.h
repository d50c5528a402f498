/* The first pass over a layered image: the headers of several layers read
 * at once, one thread each (decompressing and hashing them is most of the
 * pass), and handed over in layer order for the merge. */
#ifndef CAPSULA_LAYER_SCAN_H
#define CAPSULA_LAYER_SCAN_H

#include "common/error.h"
#include "runtime/convert/budget.h"
#include "runtime/convert/image_source.h"
#include "runtime/convert/image_tree.h"

/* One layer's entries, their strings owned, each layer's digests checked. */
struct layer_entries {
	struct tree_entry *items;
	size_t count, capacity;
};

struct scan_job;

/* Layers 0..count-1 of an image being scanned in the background. */
struct layer_scan {
	struct image_source *source;
	struct build_budget *budget;   /* charged by every reading thread */
	const struct image_description *image;
	struct scan_job *jobs;
	size_t count, started, merged;
	unsigned threads;
	int status;
	capsula_error err;
};

/* Start reading layers 0..count-1, up to threads at a time. */
int layer_scan_start(struct layer_scan *scan, struct image_source *source,
                     const struct image_description *image, size_t count, unsigned threads,
                     struct build_budget *budget, capsula_error *err);
/* Wait for each in order and call merge for it, on this thread; then or
 * on error, release everything. */
int layer_scan_finish(struct layer_scan *scan,
                      int (*merge)(unsigned index, const struct layer_entries *entries, void *arg),
                      void *arg, capsula_error *err);

/* Stop: tell the readers to stop, wait for them, keep nothing. */
void layer_scan_abort(struct layer_scan *scan);

/* Keep a copy of e (its strings too); *added is where it is kept. */
int layer_entries_add(struct layer_entries *list, const struct tree_entry *e,
                      struct tree_entry **added);
void layer_entries_free(struct layer_entries *list);

#endif
