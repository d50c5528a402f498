/* Memory for decompressed blocks. A new holder has no warm memory: every
 * page a block is decompressed into is a fault, and on a small virtual
 * machine 128 KiB of 4 KiB faults cost 0.4-0.5 ms, more than inflating the
 * block. Buffers are cut from 2 MiB slabs the kernel may back with one
 * huge page each (one fault for 16 blocks of 128 KiB; 5.3 ms against
 * 0.27 ms per 2 MiB measured), and a freed buffer goes to the next block
 * loaded while its pages are still there. A slab left empty is returned
 * to the kernel, but for the last one, so an idle holder keeps at most
 * 2 MiB it does not use. */
#ifndef CAPSULA_BLOCK_MEMORY_H
#define CAPSULA_BLOCK_MEMORY_H

#include <pthread.h>
#include <stddef.h>

struct block_slab;

struct block_memory {
	pthread_mutex_t lock;
	size_t buffer_size;      /* the image's block size */
	unsigned per_slab;       /* buffers in a slab */
	struct block_slab *slabs;
	unsigned slab_count;
};

/* A pool of buffers of buffer_size bytes (at most the slab size, 2 MiB). */
int block_memory_init(struct block_memory *m, size_t buffer_size);
void block_memory_destroy(struct block_memory *m);

/* A buffer of buffer_size bytes, or NULL with errno set. */
void *block_memory_get(struct block_memory *m);
/* Hand a buffer of block_memory_get back. */
void block_memory_put(struct block_memory *m, void *buffer);

#endif
