/* The image server's cache of decompressed blocks: hits, eviction of idle
 * blocks only, one loader per block with the other threads waiting for it,
 * failed loads retried, blocks forgotten once pushed to the kernel, and
 * many threads at once (CI runs this under ThreadSanitizer too). */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starter/imageserver/block_cache.h"
#include "tests/unit/tap.h"

#define BLOCK_SIZE 256

static atomic_int loads, releases;

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int waiting;    /* threads that asked for the gated block */
	bool open;
};

struct loader_context {
	struct gate *gate;   /* hold the load until the gate opens; NULL: never */
	bool fail;
};

static int load(void *context, uint64_t key, uint32_t header, void **data, size_t *size,
                void **owner)
{
	struct loader_context *lc = context;
	unsigned char *bytes;

	(void)header;
	if (lc != NULL && lc->gate != NULL) {
		pthread_mutex_lock(&lc->gate->lock);
		while (!lc->gate->open)
			pthread_cond_wait(&lc->gate->changed, &lc->gate->lock);
		pthread_mutex_unlock(&lc->gate->lock);
	}
	atomic_fetch_add(&loads, 1);
	if (lc != NULL && lc->fail)
		return -1;
	bytes = malloc(BLOCK_SIZE);
	if (bytes == NULL)
		return -1;
	memset(bytes, (int)(key & 0xff), BLOCK_SIZE);
	*data = bytes;
	*size = BLOCK_SIZE;
	*owner = bytes;
	return 0;
}

static void release(void *context, void *owner)
{
	(void)context;
	atomic_fetch_add(&releases, 1);
	free(owner);
}

static bool holds(const struct cached_block *b, uint64_t key)
{
	const unsigned char *bytes = b->data;

	for (size_t i = 0; i < b->size; i++)
		if (bytes[i] != (unsigned char)(key & 0xff))
			return false;
	return b->size == BLOCK_SIZE;
}

struct waiter {
	struct block_cache *cache;
	struct loader_context *lc;
	uint64_t key;
	struct cached_block *got;
};

static void *get_gated(void *arg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->lc->gate->lock);
	w->lc->gate->waiting++;
	pthread_cond_broadcast(&w->lc->gate->changed);
	pthread_mutex_unlock(&w->lc->gate->lock);
	w->got = block_cache_get(w->cache, w->key, 0, load, w->lc);
	return NULL;
}

/* Start n threads asking for key while its load is held; let it finish. */
static void gated_gets(struct block_cache *cache, struct loader_context *lc, uint64_t key,
                       struct waiter *w, pthread_t *threads, int n)
{
	for (int i = 0; i < n; i++) {
		w[i] = (struct waiter){.cache = cache, .lc = lc, .key = key};
		pthread_create(&threads[i], NULL, get_gated, &w[i]);
	}
	pthread_mutex_lock(&lc->gate->lock);
	while (lc->gate->waiting < n)
		pthread_cond_wait(&lc->gate->changed, &lc->gate->lock);
	pthread_mutex_unlock(&lc->gate->lock);
	usleep(20000);  /* let them all reach the cache */
	pthread_mutex_lock(&lc->gate->lock);
	lc->gate->open = true;
	pthread_cond_broadcast(&lc->gate->changed);
	pthread_mutex_unlock(&lc->gate->lock);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
}

#define STRESS_THREADS 8
#define STRESS_GETS 20000
#define STRESS_KEYS 64

static void *stress(void *arg)
{
	struct block_cache *cache = arg;
	unsigned seed = (unsigned)(uintptr_t)pthread_self();
	long wrong = 0;

	for (int i = 0; i < STRESS_GETS; i++) {
		uint64_t key = (uint64_t)(rand_r(&seed) % STRESS_KEYS) * 4096;
		struct cached_block *b = block_cache_get(cache, key, 0, load, NULL);

		if (b == NULL || !holds(b, key))
			wrong++;
		if (b != NULL && i % 7 == 0)
			block_cache_forget(cache, b);
		else if (b != NULL)
			block_cache_put(cache, b);
	}
	return (void *)wrong;
}

int main(void)
{
	struct block_cache cache;
	struct cached_block *a, *b, *held;
	size_t before;
	struct loader_context failing = {.fail = true};
	struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
	struct loader_context gated = {.gate = &gate};
	struct waiter w[6];
	pthread_t threads[STRESS_THREADS];
	long wrong = 0;
	bool same = true;

	/* Hits and misses. */
	ok(block_cache_init(&cache, 3 * BLOCK_SIZE, release, NULL) == 0, "a cache of three blocks");
	a = block_cache_get(&cache, 4096, 0, load, NULL);
	ok(a != NULL && holds(a, 4096) && loads == 1, "a miss loads the block");
	b = block_cache_get(&cache, 4096, 0, load, NULL);
	ok(b == a && loads == 1, "a second get of it is a hit: no second load");
	block_cache_put(&cache, a);
	block_cache_put(&cache, b);

	/* Eviction: idle blocks, oldest first; a block in use is never evicted. */
	held = block_cache_get(&cache, 8192, 0, load, NULL);
	for (uint64_t key = 1; key <= 4; key++)
		block_cache_put(&cache, block_cache_get(&cache, key * 100000, 0, load, NULL));
	ok(holds(held, 8192), "a block in use keeps its data while others come and go");
	ok(cache.bytes <= 3 * BLOCK_SIZE, "idle blocks are evicted down to the capacity (%zu bytes)",
	   cache.bytes);
	loads = 0;
	a = block_cache_get(&cache, 4096, 0, load, NULL);
	ok(a != NULL && loads == 1, "the oldest idle block was evicted: it loads again");
	block_cache_put(&cache, a);
	loads = 0;
	a = block_cache_get(&cache, 4 * 100000, 0, load, NULL);
	ok(a != NULL && loads == 0, "the newest idle block stayed");
	block_cache_put(&cache, a);
	block_cache_put(&cache, held);

	/* One loader, however many threads want the block meanwhile. */
	loads = 0;
	gated_gets(&cache, &gated, 777 * 4096, w, threads, 6);
	for (int i = 0; i < 6; i++)
		same = same && w[i].got != NULL && w[i].got == w[0].got;
	ok(loads == 1, "six threads asking for a block being loaded: one load (%d)", (int)loads);
	ok(same && holds(w[0].got, 777 * 4096), "and all six get it");
	for (int i = 0; i < 6; i++)
		block_cache_put(&cache, w[i].got);

	/* A failed load fails everyone waiting, and is tried again later. */
	loads = 0;
	gate.open = false;
	gate.waiting = 0;
	failing.gate = &gate;
	gated_gets(&cache, &failing, 999 * 4096, w, threads, 4);
	same = true;
	for (int i = 0; i < 4; i++)
		same = same && w[i].got == NULL;
	ok(same && loads == 1, "a failed load gives every waiter NULL, after one try");
	a = block_cache_get(&cache, 999 * 4096, 0, load, NULL);
	ok(a != NULL && loads == 2 && holds(a, 999 * 4096), "the next get loads it again");
	block_cache_put(&cache, a);

	/* Forgotten (pushed to the kernel): out of the cache at once, freed
	 * with the last reference, loaded again if asked for. */
	loads = releases = 0;
	a = block_cache_get(&cache, 55 * 4096, 0, load, NULL);
	b = block_cache_get(&cache, 55 * 4096, 0, load, NULL);
	before = cache.bytes;
	block_cache_forget(&cache, a);
	ok(cache.bytes == before - BLOCK_SIZE, "a forgotten block leaves the cache's size at once");
	ok(releases == 0 && holds(b, 55 * 4096), "another reference to it still reads its data");
	block_cache_put(&cache, b);
	ok(releases == 1, "the last reference frees it (%d releases)", (int)releases);
	a = block_cache_get(&cache, 55 * 4096, 0, load, NULL);
	ok(a != NULL && loads == 2 && holds(a, 55 * 4096), "asked for again, it loads again");
	block_cache_forget(&cache, a);
	ok(releases == 2, "forgotten with no other reference, it is freed at once");
	block_cache_destroy(&cache);

	/* Many threads, few keys, a small cache: every block read is right. */
	loads = releases = 0;
	ok(block_cache_init(&cache, 16 * BLOCK_SIZE, release, NULL) == 0, "a cache of 16 blocks");
	for (int i = 0; i < STRESS_THREADS; i++)
		pthread_create(&threads[i], NULL, stress, &cache);
	for (int i = 0; i < STRESS_THREADS; i++) {
		void *result;

		pthread_join(threads[i], &result);
		wrong += (long)result;
	}
	ok(wrong == 0, "%d threads x %d gets over %d keys, one in 7 forgotten: every block holds "
	   "its own data", STRESS_THREADS, STRESS_GETS, STRESS_KEYS);
	ok(cache.bytes <= 16 * BLOCK_SIZE, "and the cache stays within its capacity");
	block_cache_destroy(&cache);
	ok(loads == releases, "every loaded block is released exactly once (%d loads)", (int)loads);
	return tap_done();
}
