/* Decompressed data blocks of the image, shared by every FUSE worker thread.
 * The kernel asks for ranges that straddle squashfs blocks and, for mapped
 * executables, for small pieces in no order; without a cache each piece
 * costs a whole block's decompression. One loader per block: a thread that
 * wants a block another thread is decompressing waits for it. */
#ifndef CAPSULA_BLOCK_CACHE_H
#define CAPSULA_BLOCK_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cached_block {
	uint64_t key;          /* the block's position in the image */
	void *data;
	size_t size;
	void *owner;           /* what block_cache_load returned, for release */
	unsigned refs;
	bool loading;
	bool failed;
	bool forgotten;        /* out of the cache, freed with its last reference */
	struct cached_block *hash_next;
	struct cached_block *lru_prev, *lru_next;  /* idle blocks, newest first */
};

/* Decompress the block at key; fill data/size and an owner handle that
 * release frees. Returns 0 or -1. Called without the cache lock. */
typedef int (*block_loader)(void *context, uint64_t key, uint32_t header,
                            void **data, size_t *size, void **owner);
typedef void (*block_releaser)(void *context, void *owner);

struct block_cache {
	pthread_mutex_t lock;
	pthread_cond_t loaded;
	struct cached_block **buckets;
	size_t bucket_count;
	struct cached_block *lru_head, *lru_tail;
	size_t bytes, capacity;
	block_releaser release;
	void *release_context;
};

/* release(release_context, owner) frees a block's data. */
int block_cache_init(struct block_cache *cache, size_t capacity, block_releaser release,
                     void *release_context);
void block_cache_destroy(struct block_cache *cache);

/* A referenced block, loaded through load(context, ...) when absent, or NULL
 * when loading failed. Hand it back with block_cache_put. */
struct cached_block *block_cache_get(struct block_cache *cache, uint64_t key,
                                     uint32_t header, block_loader load, void *context);
void block_cache_put(struct block_cache *cache, struct cached_block *block);

/* Hand back a block no one is expected to ask for again (its data is in
 * the kernel's page cache now): it leaves the cache, and its memory goes
 * to the next block loaded instead of waiting for eviction. */
void block_cache_forget(struct block_cache *cache, struct cached_block *block);

#endif
