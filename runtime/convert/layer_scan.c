#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/convert/layer_reader.h"
#include "runtime/convert/layer_scan.h"

struct scan_job {
	struct image_source *source;
	struct build_budget *budget;
	const struct layer_ref *ref;
	unsigned index;
	struct layer_entries entries;
	capsula_error err;
	int status;
	pthread_t thread;
};

void layer_entries_free(struct layer_entries *list)
{
	for (size_t i = 0; i < list->count; i++) {
		struct tree_entry *e = &list->items[i];

		free((char *)e->path);
		free((char *)e->symlink);
		free((char *)e->hardlink);
		for (size_t k = 0; k < e->xattr_count; k++) {
			free(e->xattrs[k].key);
			free(e->xattrs[k].value);
		}
		free((struct tree_xattr *)e->xattrs);
	}
	free(list->items);
	memset(list, 0, sizeof *list);
}

static char *copy_string(const char *s, bool *failed)
{
	char *copy;

	if (s == NULL)
		return NULL;
	copy = strdup(s);
	*failed = *failed || copy == NULL;
	return copy;
}

int layer_entries_add(struct layer_entries *list, const struct tree_entry *e,
                      struct tree_entry **added)
{
	struct tree_entry *copy;
	struct tree_xattr *xattrs = NULL;
	bool failed = false;

	if (list->count == list->capacity) {
		size_t capacity = list->capacity ? 2 * list->capacity : 1024;
		struct tree_entry *items = realloc(list->items, capacity * sizeof *items);

		if (items == NULL)
			return -1;
		list->items = items;
		list->capacity = capacity;
	}
	if (e->xattr_count > 0 && (xattrs = calloc(e->xattr_count, sizeof *xattrs)) == NULL)
		return -1;
	copy = &list->items[list->count++];
	*copy = *e;
	if (added != NULL)
		*added = copy;
	copy->xattrs = xattrs;
	copy->path = copy_string(e->path, &failed);
	copy->symlink = copy_string(e->symlink, &failed);
	copy->hardlink = copy_string(e->hardlink, &failed);
	for (size_t k = 0; k < e->xattr_count && !failed; k++) {
		xattrs[k].key = copy_string(e->xattrs[k].key, &failed);
		xattrs[k].value = malloc(e->xattrs[k].size ? e->xattrs[k].size : 1);
		xattrs[k].size = e->xattrs[k].size;
		if (xattrs[k].value == NULL)
			failed = true;
		else
			memcpy(xattrs[k].value, e->xattrs[k].value, e->xattrs[k].size);
	}
	return failed ? -1 : 0;
}

static void *scan_layer(void *arg)
{
	struct scan_job *job = arg;
	struct layer_reader *l = malloc(sizeof *l);
	struct tree_entry e;
	int r;

	job->status = -1;
	if (l == NULL) {
		fail(&job->err, ENOMEM, NULL, "layer %u", job->index + 1);
		return NULL;
	}
	if (layer_open(l, job->source, job->ref, job->index, false, &job->err) < 0)
		goto out;
	l->budget = job->budget;
	while ((r = layer_next(l, &e, &job->err)) > 0)
		if (layer_entries_add(&job->entries, &e, NULL) < 0) {
			fail(&job->err, ENOMEM, "build on a machine with more memory", "%s", l->name);
			goto out;
		}
	if (r == 0)
		job->status = layer_finish(l, &job->err);
out:
	layer_close(l);
	free(l);
	return NULL;
}

/* Keep up to threads layers being read ahead of the merge. */
static int start_more(struct layer_scan *scan, capsula_error *err)
{
	while (scan->started < scan->count && scan->started < scan->merged + scan->threads) {
		struct scan_job *job = &scan->jobs[scan->started];

		job->source = scan->source;
		job->budget = scan->budget;
		job->ref = &scan->image->layers[scan->started];
		job->index = (unsigned)scan->started;
		errno = pthread_create(&job->thread, NULL, scan_layer, job);
		if (errno != 0)
			return fail(err, errno, NULL, "start a thread for layer %zu", scan->started + 1);
		scan->started++;
	}
	return 0;
}

int layer_scan_start(struct layer_scan *scan, struct image_source *source,
                     const struct image_description *image, size_t count, unsigned threads,
                     struct build_budget *budget, capsula_error *err)
{
	memset(scan, 0, sizeof *scan);
	scan->source = source;
	scan->budget = budget;
	scan->image = image;
	scan->count = count;
	scan->threads = threads ? threads : 1;
	scan->jobs = calloc(count ? count : 1, sizeof *scan->jobs);
	if (scan->jobs == NULL)
		return fail(err, ENOMEM, NULL, "layers");
	scan->status = start_more(scan, &scan->err);
	return 0;
}

int layer_scan_finish(struct layer_scan *scan,
                      int (*merge)(unsigned index, const struct layer_entries *entries, void *arg),
                      void *arg, capsula_error *err)
{
	int ret = scan->status;

	if (ret < 0)
		*err = scan->err;
	while (scan->merged < scan->started) {
		struct scan_job *job = &scan->jobs[scan->merged];

		pthread_join(job->thread, NULL);
		if (ret == 0 && job->status < 0) {
			*err = job->err;
			ret = -1;
		}
		if (ret == 0)
			ret = merge(job->index, &job->entries, arg);
		if (ret < 0)
			scan->budget->stop = 1;  /* the layers still being read are of no use */
		layer_entries_free(&job->entries);
		scan->merged++;
		if (ret == 0)
			ret = start_more(scan, err);
	}
	free(scan->jobs);
	scan->jobs = NULL;
	return ret;
}

void layer_scan_abort(struct layer_scan *scan)
{
	scan->budget->stop = 1;
	while (scan->merged < scan->started) {
		pthread_join(scan->jobs[scan->merged].thread, NULL);
		layer_entries_free(&scan->jobs[scan->merged].entries);
		scan->merged++;
	}
	free(scan->jobs);
	scan->jobs = NULL;
}
