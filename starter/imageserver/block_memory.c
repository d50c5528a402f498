#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "starter/imageserver/block_memory.h"

#define SLAB_SIZE ((size_t)2 << 20)

struct block_slab {
	struct block_slab *next;
	char *base;
	unsigned free_count;     /* all of them (per_slab): the slab is unused */
	unsigned free_index[];   /* a stack of the free buffers' numbers */
};

int block_memory_init(struct block_memory *m, size_t buffer_size)
{
	if (buffer_size == 0 || buffer_size > SLAB_SIZE) {
		errno = EINVAL;
		return -1;
	}
	*m = (struct block_memory){.buffer_size = buffer_size,
	                           .per_slab = (unsigned)(SLAB_SIZE / buffer_size)};
	return pthread_mutex_init(&m->lock, NULL) == 0 ? 0 : -1;
}

/* A slab aligned to its size, so that the kernel can map it with one huge
 * page: map twice the size and give back what lies outside. */
static char *map_aligned_slab(void)
{
	char *raw = mmap(NULL, 2 * SLAB_SIZE, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t misaligned, head;
	char *base;

	if (raw == MAP_FAILED)
		return NULL;
	misaligned = (size_t)((uintptr_t)raw & (SLAB_SIZE - 1));
	head = misaligned == 0 ? 0 : SLAB_SIZE - misaligned;
	base = raw + head;
	if (head > 0)
		munmap(raw, head);
	munmap(base + SLAB_SIZE, SLAB_SIZE - head);
	/* Without transparent huge pages this fails or does nothing: the slab
	 * is still a pool of buffers, faulted in page by page. */
	(void)madvise(base, SLAB_SIZE, MADV_HUGEPAGE);
	return base;
}

static struct block_slab *new_slab(struct block_memory *m)
{
	struct block_slab *slab = calloc(1, sizeof *slab + m->per_slab * sizeof slab->free_index[0]);

	if (slab == NULL)
		return NULL;
	slab->base = map_aligned_slab();
	if (slab->base == NULL) {
		free(slab);
		return NULL;
	}
	slab->free_count = m->per_slab;
	/* Handed out from the start of the slab, so a partly used slab's pages
	 * are the ones touched. */
	for (unsigned i = 0; i < m->per_slab; i++)
		slab->free_index[i] = m->per_slab - 1 - i;
	slab->next = m->slabs;
	m->slabs = slab;
	m->slab_count++;
	return slab;
}

void *block_memory_get(struct block_memory *m)
{
	struct block_slab *slab;
	void *buffer = NULL;

	pthread_mutex_lock(&m->lock);
	for (slab = m->slabs; slab != NULL && slab->free_count == 0; slab = slab->next)
		;
	if (slab == NULL)
		slab = new_slab(m);
	if (slab != NULL && slab->free_count > 0) {
		buffer = slab->base + (size_t)slab->free_index[--slab->free_count] * m->buffer_size;
	}
	pthread_mutex_unlock(&m->lock);
	if (buffer == NULL)
		errno = ENOMEM;
	return buffer;
}

void block_memory_put(struct block_memory *m, void *buffer)
{
	struct block_slab **link, *slab;

	if (buffer == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	for (link = &m->slabs; (slab = *link) != NULL; link = &slab->next)
		if ((char *)buffer >= slab->base && (char *)buffer < slab->base + SLAB_SIZE)
			break;
	if (slab != NULL) {
		slab->free_index[slab->free_count++] =
			(unsigned)(((char *)buffer - slab->base) / m->buffer_size);
		*link = slab->next;
		if (slab->free_count == m->per_slab && m->slab_count > 1) {
			m->slab_count--;
			munmap(slab->base, SLAB_SIZE);
			free(slab);
		} else {
			/* First in line: the buffer just handed back, whose pages
			 * are surely there, is the next one handed out. */
			slab->next = m->slabs;
			m->slabs = slab;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

void block_memory_destroy(struct block_memory *m)
{
	while (m->slabs != NULL) {
		struct block_slab *slab = m->slabs;

		m->slabs = slab->next;
		munmap(slab->base, SLAB_SIZE);
		free(slab);
	}
	m->slab_count = 0;
	pthread_mutex_destroy(&m->lock);
}
