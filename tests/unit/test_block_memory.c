/* The decompressed blocks' memory: buffers apart from each other, a
 * buffer handed back serves the next one asked for, slabs left empty go
 * back to the kernel but the last, and threads share the pool. */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "starter/imageserver/block_memory.h"
#include "tests/unit/tap.h"

#define BLOCK (128u << 10)
#define THREADS 4
#define ROUNDS 2000

static void *churn(void *arg)
{
	struct block_memory *m = arg;
	unsigned char *mine[3];
	long wrong = 0;

	for (int round = 0; round < ROUNDS; round++) {
		unsigned char mark = (unsigned char)(uintptr_t)pthread_self() ^ (unsigned char)round;

		for (int i = 0; i < 3; i++) {
			mine[i] = block_memory_get(m);
			if (mine[i] == NULL)
				return (void *)1;
			memset(mine[i], mark + i, BLOCK);
		}
		for (int i = 0; i < 3; i++) {
			wrong += mine[i][0] != (unsigned char)(mark + i) ||
			         mine[i][BLOCK - 1] != (unsigned char)(mark + i);
			block_memory_put(m, mine[i]);
		}
	}
	return (void *)(intptr_t)(wrong != 0);
}

int main(void)
{
	struct block_memory m;
	unsigned char *buffers[40], *again;
	pthread_t threads[THREADS];
	bool apart = true;
	long failed = 0;

	ok(block_memory_init(&m, BLOCK) == 0, "a pool of 128 KiB buffers");
	ok(m.per_slab == 16, "16 to a 2 MiB slab (%u)", m.per_slab);
	for (int i = 0; i < 40; i++) {
		buffers[i] = block_memory_get(&m);
		if (buffers[i] == NULL) {
			apart = false;
			break;
		}
		memset(buffers[i], i, BLOCK);
	}
	for (int i = 0; i < 40 && apart; i++)
		apart = buffers[i][0] == i && buffers[i][BLOCK - 1] == i;
	ok(apart, "40 buffers, none overlapping another");
	ok(m.slab_count == 3, "in three slabs (%u)", m.slab_count);
	ok(((uintptr_t)buffers[0] & ((2u << 20) - 1)) == 0, "a slab starts on a 2 MiB boundary");
	block_memory_put(&m, buffers[5]);
	again = block_memory_get(&m);
	ok(again == buffers[5], "a buffer handed back serves the next one asked for");
	for (int i = 0; i < 40; i++)
		block_memory_put(&m, buffers[i]);
	ok(m.slab_count == 1, "the empty slabs go back to the kernel but one (%u left)",
	   m.slab_count);
	again = block_memory_get(&m);
	ok(again != NULL, "and it serves again");
	block_memory_put(&m, again);
	block_memory_destroy(&m);

	ok(block_memory_init(&m, 4u << 20) < 0, "a buffer larger than a slab is refused");
	ok(block_memory_init(&m, 1u << 20) == 0 && m.per_slab == 2, "1 MiB blocks: two to a slab");
	block_memory_destroy(&m);

	block_memory_init(&m, BLOCK);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, churn, &m);
	for (int i = 0; i < THREADS; i++) {
		void *result;

		pthread_join(threads[i], &result);
		failed += result != NULL;
	}
	ok(failed == 0, "%d threads getting and handing back buffers never share one", THREADS);
	ok(m.slab_count == 1, "and leave one slab (%u)", m.slab_count);
	block_memory_destroy(&m);
	return tap_done();
}
