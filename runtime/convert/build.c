#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/convert/budget.h"
#include "runtime/convert/build.h"
#include "runtime/convert/image_source.h"
#include "runtime/convert/image_tree.h"
#include "runtime/convert/layer_reader.h"
#include "runtime/convert/layer_scan.h"
#include "runtime/convert/output_file.h"
#include "runtime/convert/squashfs_layers.h"
#include "runtime/convert/squashfs_writer.h"
#include "runtime/config/site_config.h"
#include "runtime/image/image_config.h"

/* The regular files whose data one layer provides, in the layer's order. */
struct layer_files {
	struct tree_inode **items;
	size_t count, capacity;
};

struct build {
	const struct build_options *opts;
	struct image_source source;
	struct image_description image;
	struct tree tree;
	struct squashfs_writer *writer;
	struct layer_reader *reader;
	struct layer_files *files;    /* per layer */
	capsula_error *err;
	struct output_file out;       /* the image, whole or not at all */
	struct build_budget budget;   /* what the conversion may take */
	bool terminal;                /* progress on a terminal */
	bool lines;                   /* a line per layer */
	uint64_t layer_bytes;
	struct timespec layer_start, last_shown;
};

static volatile sig_atomic_t stop_signal;
/* The build in progress: a stop request reaches its layer readers too. */
static struct build_budget *volatile stopping_budget;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
	if (stopping_budget != NULL)
		stopping_budget->stop = 1;
}

static void catch_stop_signals(bool on)
{
	static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa = {.sa_handler = on ? on_stop_signal : SIG_DFL};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		sigaction(signals[i], &sa, NULL);
}

static int check_interrupted(capsula_error *err)
{
	if (stop_signal == 0)
		return 0;
	return fail_status(err, 128 + stop_signal, 0, "nothing was written",
	                   "build interrupted by signal %d", (int)stop_signal);
}

/* ---------------------------------------------------------------- progress */

static double seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void progress_start(struct build *b)
{
	b->layer_bytes = 0;
	clock_gettime(CLOCK_MONOTONIC, &b->layer_start);
	b->last_shown = b->layer_start;
}

static void progress_show(struct build *b, const char *step, bool done)
{
	double elapsed = seconds_since(&b->layer_start);
	double mib = (double)b->layer_bytes / 1048576.0;

	if (b->terminal && (done || seconds_since(&b->last_shown) >= 0.2)) {
		fprintf(stderr, "\rcapsula: %s: %.1f MiB, %.1f MiB/s\033[K%s", step, mib,
		        elapsed > 0 ? mib / elapsed : 0.0, done ? "\n" : "");
		clock_gettime(CLOCK_MONOTONIC, &b->last_shown);
	} else if (b->lines && done) {
		fprintf(stderr, "capsula: %s: %.1f MiB in %.1f s\n", step, mib, elapsed);
	}
}

static unsigned processors(void)
{
	cpu_set_t set;

	/* The processors this process may use (a job's share), not the node's. */
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	return 1;
}

static int open_writer(struct build *b, capsula_error *err)
{
	struct squashfs_writer_options o = {
		.compression = b->opts->compression,
		.level = b->opts->level,
		.block_size = b->opts->block_size,
		.workers = b->opts->workers ? b->opts->workers : processors(),
		.name = b->out.shown,
		.reuse_blocks = b->opts->level == 0,
	};

	return squashfs_writer_open(&b->writer, b->out.fd, &o, err);
}

/* ---------------------------------------------------------------- data */

/* A file with holes: its data at the offsets the archive gives, and its
 * block list charged (4 bytes for every block, holes too, is what squashfs
 * keeps: a file declaring an exabyte is refused here, at once). */
static int copy_sparse_data(struct build *b, struct layer_reader *l, struct tree_inode *inode,
                            const char *step, capsula_error *err)
{
	uint64_t blocks = inode->size / b->opts->block_size + 1, at = 0, offset;
	char what[96];
	const void *data;
	size_t size;
	int r;

	snprintf(what, sizeof what, "a file of %llu bytes with holes, %llu blocks",
	         (unsigned long long)inode->size, (unsigned long long)blocks);
	if (budget_charge(&b->budget, 0, blocks * sizeof(uint32_t), what, err) < 0 ||
	    squashfs_writer_begin_sparse(b->writer, inode, err) < 0)
		return -1;
	while ((r = layer_data(l, &data, &size, &offset, err)) > 0) {
		if (offset < at || offset > inode->size || size > inode->size - offset)
			return fail(err, 0, "the archive is damaged", "%s: file data out of order or "
			            "beyond the file's size", l->name);
		if (squashfs_writer_sparse_data(b->writer, offset, data, size, err) < 0 ||
		    check_interrupted(err) < 0)
			return -1;
		at = offset + size;
		b->layer_bytes += size;
		progress_show(b, step, false);
	}
	if (r < 0)
		return -1;
	return squashfs_writer_end_sparse(b->writer, err);
}

static int copy_data(struct build *b, struct layer_reader *l, struct tree_inode *inode,
                     const char *step, capsula_error *err)
{
	const void *data;
	size_t size;
	uint64_t offset, at = 0;
	int r;

	if (inode->sparse)
		return copy_sparse_data(b, l, inode, step, err);
	if (squashfs_writer_begin_file(b->writer, inode, err) < 0)
		return -1;
	while ((r = layer_data(l, &data, &size, &offset, err)) > 0) {
		/* A jump forward is a hole of a sparse file. */
		if (offset < at)
			return fail(err, 0, "the archive is damaged", "%s: file data out of order",
			            l->name);
		if (squashfs_writer_append_zeros(b->writer, offset - at, err) < 0 ||
		    squashfs_writer_append(b->writer, data, size, err) < 0 || check_interrupted(err) < 0)
			return -1;
		at = offset + size;
		b->layer_bytes += size;
		progress_show(b, step, false);
	}
	if (r < 0 || (at < inode->size &&
	              squashfs_writer_append_zeros(b->writer, inode->size - at, err) < 0))
		return -1;
	return squashfs_writer_end_file(b->writer, err);
}

/* The end of a pass over a layer: on success, its progress line and its
 * digests; either way its reader closed. */
static int close_layer_pass(struct build *b, const char *step, bool ok, capsula_error *err)
{
	if (!ok) {
		layer_close(b->reader);
		return -1;
	}
	progress_show(b, step, true);
	return layer_finish(b->reader, err);
}

/* The start of a pass over layer index: its reader, and its name for the
 * progress line. */
static int open_layer_pass(struct build *b, unsigned index, bool again, char *step, size_t size,
                           capsula_error *err)
{
	snprintf(step, size, "layer %u of %zu", index + 1, b->image.layer_count);
	progress_start(b);
	if (layer_open(b->reader, &b->source, &b->image.layers[index], index, again, err) < 0)
		return close_layer_pass(b, step, false, err);
	b->reader->budget = &b->budget;
	return 0;
}

/* One pass over a source that cannot override itself (a directory, a
 * tarball): each file's data goes straight into the image. */
static int convert_in_one_pass(struct build *b, struct layer_reader *l, capsula_error *err)
{
	struct tree_entry e;
	int r;

	progress_start(b);
	while ((r = layer_next(l, &e, err)) > 0) {
		struct tree_inode *data_inode;

		if (tree_apply(&b->tree, &e, &data_inode, err) < 0 || check_interrupted(err) < 0 ||
		    (data_inode != NULL && copy_data(b, l, data_inode, l->name, err) < 0)) {
			r = -1;
			break;
		}
	}
	return close_layer_pass(b, l->name, r >= 0, err);
}

/* ---------------------------------------------------------------- layers */

/* Pass 1: every layer's entries merged into the tree in order, no data
 * read yet, each layer's digests checked (runtime/convert/layer_scan.c). */
static int merge_layer(unsigned index, const struct layer_entries *entries, void *arg)
{
	struct build *b = arg;
	capsula_error *err = b->err;

	b->tree.layer = index;
	for (size_t i = 0; i < entries->count; i++) {
		struct tree_inode *data_inode;

		if (tree_apply(&b->tree, &entries->items[i], &data_inode, err) < 0 ||
		    check_interrupted(err) < 0)
			return -1;
	}
	return 0;
}

static int schedule_file(struct tree_inode *inode, void *arg)
{
	struct build *b = arg;
	struct layer_files *f;

	if (inode->scheduled || inode->data_written || inode->layer >= b->image.layer_count)
		return 0;
	inode->scheduled = true;
	f = &b->files[inode->layer];
	if (f->count == f->capacity) {
		size_t capacity = f->capacity ? 2 * f->capacity : 256;
		struct tree_inode **items = realloc(f->items, capacity * sizeof(struct tree_inode *));

		if (items == NULL)
			return -1;
		f->items = items;
		f->capacity = capacity;
	}
	f->items[f->count++] = inode;
	return 0;
}

static int by_entry(const void *a, const void *b)
{
	uint64_t x = (*(struct tree_inode *const *)a)->entry, y = (*(struct tree_inode *const *)b)->entry;

	return x < y ? -1 : x > y;
}

/* Which entry of which layer holds the data of each file left in the tree. */
static int schedule_data(struct build *b, capsula_error *err)
{
	b->files = calloc(b->image.layer_count ? b->image.layer_count : 1, sizeof *b->files);
	if (b->files == NULL || tree_for_each_file(&b->tree, schedule_file, b) < 0)
		return fail(err, ENOMEM, NULL, "image tree");
	for (size_t i = 0; i < b->image.layer_count; i++)
		if (b->files[i].count > 1)
			qsort(b->files[i].items, b->files[i].count, sizeof(struct tree_inode *), by_entry);
	return 0;
}

/* Pass 2: the data of the files that survived, layer by layer. */
static int copy_layer_data(struct build *b, unsigned index, capsula_error *err)
{
	struct layer_reader *l = b->reader;
	const struct layer_files *f = &b->files[index];
	struct tree_entry e;
	char step[64];
	size_t next = 0;
	int r = 0;

	if (open_layer_pass(b, index, true, step, sizeof step, err) < 0)
		return -1;
	while (next < f->count && (r = layer_next(l, &e, err)) > 0) {
		if (e.entry == f->items[next]->entry &&
		    copy_data(b, l, f->items[next++], step, err) < 0) {
			r = -1;
			break;
		}
	}
	if (r >= 0 && next < f->count)
		r = fail(err, 0, "the layer changed while it was read", "%s ended early", l->name);
	return close_layer_pass(b, step, r >= 0, err);
}

/* The top layer's files cannot be hidden by a later one: their data goes
 * into the image at once, while the layers below are scanned. */
static int stream_top_layer(struct build *b, unsigned index, struct layer_entries *entries,
                            capsula_error *err)
{
	struct layer_reader *l = b->reader;
	struct tree_entry e, *kept;
	char step[64];
	int r;

	if (open_layer_pass(b, index, false, step, sizeof step, err) < 0)
		return -1;
	while ((r = layer_next(l, &e, err)) > 0) {
		if (layer_entries_add(entries, &e, &kept) < 0) {
			r = fail(err, ENOMEM, "build on a machine with more memory", "%s", l->name);
			break;
		}
		if (!S_ISREG(e.mode) || e.hardlink != NULL || tree_is_whiteout(e.path))
			continue;
		kept->inode = tree_new_file_inode(&b->tree);
		if (kept->inode == NULL) {
			r = fail(err, ENOMEM, NULL, "%s", l->name);
			break;
		}
		kept->inode->size = e.size;
		kept->inode->sparse = e.sparse;
		if (copy_data(b, l, kept->inode, step, err) < 0 || check_interrupted(err) < 0) {
			r = -1;
			break;
		}
	}
	return close_layer_pass(b, step, r >= 0, err);
}

/* Pass 1 scans the lower layers while the top one streams in; pass 2
 * reads again only the lower layers that still hold a file of the image. */
static int convert_layers(struct build *b, capsula_error *err)
{
	unsigned top = (unsigned)b->image.layer_count - 1;
	struct layer_entries top_entries = {0};
	struct layer_scan scan;
	int ret = -1;

	b->err = err;
	if (layer_scan_start(&scan, &b->source, &b->image, top,
	                     b->opts->workers ? b->opts->workers : processors(), &b->budget,
	                     err) < 0)
		return -1;
	if (stream_top_layer(b, top, &top_entries, err) < 0) {
		layer_scan_abort(&scan);
		goto out;
	}
	if (layer_scan_finish(&scan, merge_layer, b, err) < 0 ||
	    merge_layer(top, &top_entries, b) < 0 || schedule_data(b, err) < 0)
		goto out;
	for (unsigned i = 0; i < top; i++)
		if (b->files[i].count > 0 && copy_layer_data(b, i, err) < 0)
			goto out;
	ret = 0;
out:
	layer_entries_free(&top_entries);
	return ret;
}

/* Squashfs layers (a recipe's): merged, then each file's data read from
 * the layer that holds it. */
struct layer_copy {
	struct build *b;
	struct squashfs_layer_set *set;
	capsula_error *err;
};

static int copy_layer_file(struct tree_inode *inode, void *arg)
{
	struct layer_copy *c = arg;

	if (inode->data_written || inode->layer >= c->b->opts->layer_count)
		return 0;
	return squashfs_layers_copy(c->set, inode, c->b->writer, c->err) < 0 ||
	       check_interrupted(c->err) < 0 ? -1 : 0;
}

static int convert_squashfs_layers(struct build *b, capsula_error *err)
{
	struct squashfs_layer_set *set;
	struct layer_copy copy = {.b = b, .err = err};
	int ret;

	ret = squashfs_layers_open(&set, b->opts->layers, b->opts->layer_count, err);
	if (ret == 0)
		ret = squashfs_layers_merge(set, &b->tree, &b->budget, err);
	copy.set = set;
	if (ret == 0)
		ret = squashfs_layers_take_fragments(set, &b->tree, b->writer, err);
	if (ret == 0)
		ret = tree_for_each_file(&b->tree, copy_layer_file, &copy);
	squashfs_layers_close(set);
	return ret;
}

static int convert_source(struct build *b, capsula_error *err)
{
	struct layer_reader *l = b->reader;

	switch (b->source.kind) {
	case SOURCE_DIRECTORY:
		if (layer_open_directory(l, b->source.path, err) < 0) {
			layer_close(l);
			return -1;
		}
		l->budget = &b->budget;
		l->capture = b->opts->capture_upper;
		l->capture_skip = b->opts->capture_skip;
		return convert_in_one_pass(b, l, err);
	case SOURCE_TARBALL:
		if (layer_open(l, &b->source, &b->image.layers[0], 0, false, err) < 0) {
			layer_close(l);
			return -1;
		}
		l->budget = &b->budget;
		return convert_in_one_pass(b, l, err);
	default:
		return convert_layers(b, err);
	}
}

static int add_metadata_file(struct build *b, const char *path, const char *text,
                             capsula_error *err)
{
	struct tree_inode *inode;
	int ret = tree_add_file(&b->tree, path, 0644, strlen(text), &inode, err);

	if (ret == 0)
		ret = squashfs_writer_begin_file(b->writer, inode, err);
	if (ret == 0)
		ret = squashfs_writer_append(b->writer, text, strlen(text), err);
	if (ret == 0)
		ret = squashfs_writer_end_file(b->writer, err);
	return ret;
}

/* The image's run settings, where capsula's launcher reads them, and the
 * recipe it was built from, for capsula inspect. */
static int add_run_config(struct build *b, capsula_error *err)
{
	json_t *document;
	char *text;
	int ret;

	if (b->opts->recipe_text != NULL &&
	    add_metadata_file(b, IMAGE_RECIPE_PATH, b->opts->recipe_text, err) < 0)
		return -1;
	if (!b->image.has_config && b->opts->config == NULL)
		return 0;
	document = image_config_to_json(b->opts->config ? b->opts->config : &b->image.config);
	text = document ? json_dumps(document, JSON_INDENT(2)) : NULL;
	json_decref(document);
	if (text == NULL)
		return fail(err, ENOMEM, NULL, "image config");
	ret = add_metadata_file(b, IMAGE_CONFIG_PATH, text, err);
	free(text);
	return ret;
}

static void warn_skipped_xattrs(const struct build *b)
{
	const char *first;
	unsigned n = squashfs_writer_skipped_xattrs(b->writer, &first);

	if (n > 0)
		fprintf(stderr, "capsula: warning: left out %u extended attribute%s (first: %s): "
		        "squashfs keeps only user., trusted. and security. ones\n", n,
		        n == 1 ? "" : "s", first);
}

static void release(struct build *b)
{
	if (b->files != NULL)
		for (size_t i = 0; i < b->image.layer_count; i++)
			free(b->files[i].items);
	free(b->files);
	/* The writer's threads may still hold the tree's inodes: it goes first. */
	squashfs_writer_free(b->writer);
	tree_free(&b->tree);
	free(b->reader);
	image_description_free(&b->image);
	source_close(&b->source);
	output_close(&b->out);
}

/* The site's bounds on a conversion. */
static int set_budget(struct build *b, capsula_error *err)
{
	struct capsula_config config;

	if (config_load(CAPSULA_CONFIG_FILE, &config, err) < 0)
		return -1;
	budget_init(&b->budget, config.max_image_entries, config.max_image_bytes,
	            CAPSULA_CONFIG_FILE);
	config_free(&config);
	return 0;
}

int build_image(const struct build_options *opts, capsula_error *err)
{
	struct build b = {.opts = opts, .out = {.fd = -1, .dir_fd = -1}, .source.dir_fd = -1};
	int ret = -1;

	b.terminal = !opts->quiet && isatty(STDERR_FILENO);
	b.lines = !opts->quiet && !b.terminal;
	if (set_budget(&b, err) < 0)
		return -1;
	stopping_budget = &b.budget;
	catch_stop_signals(true);
	b.reader = malloc(sizeof *b.reader);
	if (b.reader == NULL) {
		fail(err, ENOMEM, NULL, "build");
		goto out;
	}
	if (output_open(&b.out, opts->output_dir_fd, opts->output, opts->output_shown, opts->force,
	                err) < 0)
		goto out;
	if (opts->layer_count > 0) {
		if (tree_init(&b.tree, true, err) < 0)
			goto out;
	} else if ((opts->source_dir_fd >= 0 ?
	            source_open_directory(opts->source_dir_fd, opts->source, &b.source, err) :
	            source_open(opts->source, opts->tag, &b.source, err)) < 0 ||
	           (b.source.manifest = opts->manifest,
	            source_describe(&b.source, &b.image, err)) < 0 ||
	           tree_init(&b.tree, b.image.layer_count > 0 && b.source.kind != SOURCE_TARBALL,
	                     err) < 0) {
		goto out;
	}
	b.tree.all_root = opts->all_root;
	/* Per layer, not per file, when not on a terminal. */
	b.lines = b.lines && b.image.layer_count > 0 && b.source.kind != SOURCE_TARBALL;
	if (output_begin(&b.out, err) < 0 || open_writer(&b, err) < 0 ||
	    (opts->layer_count > 0 ? convert_squashfs_layers(&b, err) : convert_source(&b, err)) < 0 ||
	    check_interrupted(err) < 0 ||
	    add_run_config(&b, err) < 0 ||
	    squashfs_writer_finish(b.writer, &b.tree, err) < 0 || check_interrupted(err) < 0 ||
	    output_commit(&b.out, err) < 0)
		goto out;
	warn_skipped_xattrs(&b);
	if (b.terminal)
		fprintf(stderr, "capsula: wrote %s\n", b.out.shown);
	ret = 0;
out:
	release(&b);
	catch_stop_signals(false);
	stopping_budget = NULL;
	return ret;
}
