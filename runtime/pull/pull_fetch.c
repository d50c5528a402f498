#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/timing.h"
#include "runtime/pull/pull_fetch.h"

#define REDRAW_NS 200000000L
#define MIB (1024.0 * 1024.0)

struct fetch {
	struct registry *r;
	const struct image_cache *cache;
	struct fetch_blob *blobs;
	size_t count;
	size_t next;                 /* the next blob to take */
	unsigned running;            /* workers not yet finished */
	pthread_mutex_t lock;        /* guards next, running, failed, err and output */
	volatile int cancel;         /* a worker failed: the others stop */
	bool failed;
	bool terminal, lines;
	unsigned drawn;              /* lines of the last drawing */
	capsula_error err;
};

static double rate_mib(uint64_t bytes, uint64_t start_us, uint64_t end_us)
{
	double seconds = (double)(end_us - start_us) / 1e6;

	return seconds > 0 ? (double)bytes / MIB / seconds : 0;
}

static void print_line(struct fetch *f, const struct fetch_blob *b)
{
	if (!f->lines)
		return;
	if (b->state == FETCH_CACHED)
		fprintf(stderr, "capsula: %s %.19s: in the cache\n", b->label, b->digest);
	else if (b->size < (1 << 20))
		fprintf(stderr, "capsula: %s %.19s: %.1f KiB\n", b->label, b->digest,
		        (double)b->size / 1024);
	else
		fprintf(stderr, "capsula: %s %.19s: %.1f MiB in %.1f s (%.1f MiB/s)\n", b->label,
		        b->digest, (double)b->size / MIB, (double)(b->end_us - b->start_us) / 1e6,
		        rate_mib((uint64_t)b->size, b->start_us, b->end_us));
}

static int fetch_one(struct fetch *f, struct registry_connection *c, struct fetch_blob *b,
                     capsula_error *err)
{
	char final[CACHE_NAME_MAX], partial[CACHE_NAME_MAX], lock_name[96];
	struct stat st;
	int lock, ret;

	cache_blob_name(b->digest, final, sizeof final);
	b->start_us = timing_now_us();
	if (fstatat(f->cache->fd, final, &st, AT_SYMLINK_NOFOLLOW) == 0)
		goto cached;
	/* Another process may be fetching it: wait, then use what it got. */
	snprintf(lock_name, sizeof lock_name, "blob-%s", b->digest + 7);
	lock = cache_lock(f->cache, lock_name, err);
	if (lock < 0)
		return -1;
	if (fstatat(f->cache->fd, final, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		cache_unlock(lock);
		goto cached;
	}
	snprintf(partial, sizeof partial, "partial/%s", b->digest + 7);
	b->state = FETCH_ACTIVE;
	ret = registry_fetch_blob(c, b->digest, b->size, f->cache->fd, partial, final, &b->done,
	                          err);
	if (ret < 0) {
		cache_unlock(lock);
		return -1;
	}
	cache_unlock_remove(f->cache, lock_name, lock);
	b->end_us = timing_now_us();
	b->state = FETCH_DONE;
	return 0;
cached:
	b->done = (uint64_t)b->size;
	b->end_us = timing_now_us();
	b->state = FETCH_CACHED;
	return 0;
}

static void *worker(void *data)
{
	struct fetch *f = data;
	struct registry_connection c;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	int failed = registry_connect(&c, f->r, &err) < 0;

	c.cancel = &f->cancel;
	while (!failed) {
		struct fetch_blob *b;

		pthread_mutex_lock(&f->lock);
		b = f->cancel || f->next == f->count ? NULL : &f->blobs[f->next++];
		pthread_mutex_unlock(&f->lock);
		if (b == NULL)
			break;
		failed = fetch_one(f, &c, b, &err) < 0;
		pthread_mutex_lock(&f->lock);
		if (!failed)
			print_line(f, b);
		pthread_mutex_unlock(&f->lock);
	}
	registry_disconnect(&c);
	pthread_mutex_lock(&f->lock);
	if (failed && !f->failed) {
		f->failed = true;
		f->err = err;
		f->cancel = 1;
	}
	f->running--;
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void draw_bar(char *bar, size_t width, uint64_t done, int64_t total)
{
	size_t filled = total > 0 ? (size_t)((double)done / (double)total * (double)width) : width;

	for (size_t i = 0; i < width; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[width] = '\0';
}

/* Each blob's bar and a total, redrawn in place. */
static void draw(struct fetch *f, uint64_t start_us)
{
	uint64_t now = timing_now_us(), total_done = 0;
	int64_t total = 0;
	char bar[31];

	if (f->drawn > 0)
		fprintf(stderr, "\033[%uA", f->drawn);
	for (size_t i = 0; i < f->count; i++) {
		const struct fetch_blob *b = &f->blobs[i];
		uint64_t done = __atomic_load_n(&b->done, __ATOMIC_RELAXED);
		uint64_t end = b->state >= FETCH_DONE ? b->end_us : now;

		draw_bar(bar, sizeof bar - 1, done, b->size);
		fprintf(stderr, "\r%-11s %.19s [%s] %8.1f/%.1f MiB %7.1f MiB/s%s\033[K\n", b->label,
		        b->digest, bar, (double)done / MIB, (double)b->size / MIB,
		        b->state == FETCH_WAITING || b->state == FETCH_CACHED ? 0.0 :
		        rate_mib(done, b->start_us, end), b->state == FETCH_CACHED ? " cached" : "");
		total_done += done;
		total += b->size;
	}
	draw_bar(bar, sizeof bar - 1, total_done, total);
	fprintf(stderr, "\r%-11s %19s [%s] %8.1f/%.1f MiB %7.1f MiB/s\033[K\n", "total", "", bar,
	        (double)total_done / MIB, (double)total / MIB, rate_mib(total_done, start_us, now));
	f->drawn = (unsigned)f->count + 1;
}

static void wait_for_workers(struct fetch *f, uint64_t start_us)
{
	const struct timespec pause = {0, REDRAW_NS};

	for (;;) {
		unsigned running;

		pthread_mutex_lock(&f->lock);
		running = f->running;
		if (f->terminal)
			draw(f, start_us);
		pthread_mutex_unlock(&f->lock);
		if (running == 0)
			return;
		nanosleep(&pause, NULL);
	}
}

int fetch_blobs(struct registry *r, const struct image_cache *cache, struct fetch_blob *blobs,
                size_t count, unsigned parallel, bool quiet, capsula_error *err)
{
	struct fetch f = {.r = r, .cache = cache, .blobs = blobs, .count = count};
	pthread_t threads[64];
	unsigned started = 0;
	uint64_t start_us = timing_now_us();

	f.terminal = !quiet && isatty(STDERR_FILENO);
	f.lines = !quiet && !f.terminal;
	pthread_mutex_init(&f.lock, NULL);
	if (parallel > count)
		parallel = (unsigned)count;
	if (parallel > sizeof threads / sizeof threads[0])
		parallel = sizeof threads / sizeof threads[0];
	f.running = parallel;
	for (; started < parallel; started++) {
		int e = pthread_create(&threads[started], NULL, worker, &f);

		if (e != 0) {
			pthread_mutex_lock(&f.lock);
			f.running -= parallel - started;
			if (!f.failed)
				fail(&f.err, e, NULL, "start a thread to fetch blobs");
			f.failed = true;
			f.cancel = 1;
			pthread_mutex_unlock(&f.lock);
			break;
		}
	}
	wait_for_workers(&f, start_us);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&f.lock);
	if (f.failed) {
		*err = f.err;
		return -1;
	}
	return 0;
}
