#include "config.h"

#include <stdlib.h>

#include "starter/imageserver/block_cache.h"

int block_cache_init(struct block_cache *cache, size_t capacity, block_releaser release,
                     void *release_context)
{
	*cache = (struct block_cache){.capacity = capacity, .release = release,
	                              .release_context = release_context, .bucket_count = 4096};
	/* An array of list heads: pointers are what it holds. */
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	cache->buckets = calloc(cache->bucket_count, sizeof *cache->buckets);
	if (cache->buckets == NULL)
		return -1;
	pthread_mutex_init(&cache->lock, NULL);
	pthread_cond_init(&cache->loaded, NULL);
	return 0;
}

static struct cached_block **bucket_of(struct block_cache *cache, uint64_t key)
{
	/* Block positions are multiples of nothing in particular; mix them. */
	uint64_t h = key * 0x9e3779b97f4a7c15ull;

	return &cache->buckets[(h >> 32) % cache->bucket_count];
}

static void unlink_hash(struct block_cache *cache, struct cached_block *block)
{
	struct cached_block **p = bucket_of(cache, block->key);

	while (*p != block)
		p = &(*p)->hash_next;
	*p = block->hash_next;
}

static void lru_remove(struct block_cache *cache, struct cached_block *block)
{
	if (block->lru_prev)
		block->lru_prev->lru_next = block->lru_next;
	else
		cache->lru_head = block->lru_next;
	if (block->lru_next)
		block->lru_next->lru_prev = block->lru_prev;
	else
		cache->lru_tail = block->lru_prev;
	block->lru_prev = block->lru_next = NULL;
}

static void lru_push(struct block_cache *cache, struct cached_block *block)
{
	block->lru_prev = NULL;
	block->lru_next = cache->lru_head;
	if (cache->lru_head)
		cache->lru_head->lru_prev = block;
	cache->lru_head = block;
	if (cache->lru_tail == NULL)
		cache->lru_tail = block;
}

static void free_block(struct block_cache *cache, struct cached_block *block)
{
	if (block->owner)
		cache->release(cache->release_context, block->owner);
	free(block);
}

/* Drop idle blocks, oldest first, until the cache fits; blocks in use stay. */
static void evict(struct block_cache *cache)
{
	while (cache->bytes > cache->capacity && cache->lru_tail) {
		struct cached_block *victim = cache->lru_tail;

		/* The LRU list holds only idle blocks, none of them freed (the
		 * analyzer cannot follow the reference counts). */
		/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
		lru_remove(cache, victim);
		unlink_hash(cache, victim);
		cache->bytes -= victim->size;
		free_block(cache, victim);
	}
}

static struct cached_block *find(struct block_cache *cache, uint64_t key)
{
	for (struct cached_block *b = *bucket_of(cache, key); b; b = b->hash_next)
		if (b->key == key)
			return b;
	return NULL;
}

static struct cached_block *wait_for(struct block_cache *cache, struct cached_block *block)
{
	if (block->refs++ == 0 && !block->loading)
		lru_remove(cache, block);
	while (block->loading)
		pthread_cond_wait(&cache->loaded, &cache->lock);
	if (block->failed) {
		if (--block->refs == 0)
			free_block(cache, block);
		pthread_mutex_unlock(&cache->lock);
		return NULL;
	}
	pthread_mutex_unlock(&cache->lock);
	return block;
}

struct cached_block *block_cache_get(struct block_cache *cache, uint64_t key,
                                     uint32_t header, block_loader load, void *context)
{
	struct cached_block *block;
	int status;

	pthread_mutex_lock(&cache->lock);
	block = find(cache, key);
	if (block)
		return wait_for(cache, block);
	block = calloc(1, sizeof *block);
	if (block == NULL) {
		pthread_mutex_unlock(&cache->lock);
		return NULL;
	}
	block->key = key;
	block->refs = 1;
	block->loading = true;
	block->hash_next = *bucket_of(cache, key);
	*bucket_of(cache, key) = block;
	pthread_mutex_unlock(&cache->lock);

	status = load(context, key, header, &block->data, &block->size, &block->owner);

	pthread_mutex_lock(&cache->lock);
	block->loading = false;
	if (status < 0) {
		/* Forget it, so that a later read tries again and gets its own EIO. */
		block->failed = true;
		unlink_hash(cache, block);
		block->refs--;
		pthread_cond_broadcast(&cache->loaded);
		if (block->refs == 0)
			free_block(cache, block);
		pthread_mutex_unlock(&cache->lock);
		return NULL;
	}
	cache->bytes += block->size;
	pthread_cond_broadcast(&cache->loaded);
	pthread_mutex_unlock(&cache->lock);
	return block;
}

void block_cache_put(struct block_cache *cache, struct cached_block *block)
{
	pthread_mutex_lock(&cache->lock);
	if (--block->refs == 0 && block->forgotten) {
		free_block(cache, block);
	} else if (block->refs == 0) {
		lru_push(cache, block);
		evict(cache);
	}
	pthread_mutex_unlock(&cache->lock);
}

void block_cache_forget(struct block_cache *cache, struct cached_block *block)
{
	pthread_mutex_lock(&cache->lock);
	if (!block->forgotten) {
		block->forgotten = true;
		unlink_hash(cache, block);
		cache->bytes -= block->size;
	}
	pthread_mutex_unlock(&cache->lock);
	block_cache_put(cache, block);
}

void block_cache_destroy(struct block_cache *cache)
{
	for (size_t i = 0; i < cache->bucket_count; i++) {
		struct cached_block *b = cache->buckets[i];

		while (b) {
			struct cached_block *next = b->hash_next;

			free_block(cache, b);
			b = next;
		}
	}
	free(cache->buckets);
	pthread_mutex_destroy(&cache->lock);
	pthread_cond_destroy(&cache->loaded);
}
