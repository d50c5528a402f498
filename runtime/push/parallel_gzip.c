#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#include "runtime/push/parallel_gzip.h"

#define BLOCK_SIZE (1u << 20)
#define MAX_THREADS 64

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_WORKING, SLOT_DONE };

struct slot {
	enum slot_state state;
	unsigned char *in, *out;
	size_t in_size, out_size, out_capacity;
	bool failed;                  /* libdeflate could not compress it */
};

struct parallel_gzip {
	int level;
	gzip_sink sink;
	void *sink_arg;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t workers[MAX_THREADS];
	unsigned worker_count;
	bool stopping;
	struct slot *slots;
	size_t slot_count;
	uint64_t next_fill, next_write, next_work;   /* sequence numbers */
	struct slot *filling;
	bool failed;
};

static struct slot *slot_of(struct parallel_gzip *z, uint64_t sequence)
{
	return &z->slots[sequence % z->slot_count];
}

/* A member of its own: nothing of the block before it is needed. */
static void compress_slot(struct libdeflate_compressor *compressor, struct slot *s)
{
	s->out_size = libdeflate_gzip_compress(compressor, s->in, s->in_size, s->out,
	                                       s->out_capacity);
	s->failed = s->out_size == 0;
}

static void *work(void *arg)
{
	struct parallel_gzip *z = arg;
	/* One a thread: a compressor is not shared. */
	struct libdeflate_compressor *compressor = libdeflate_alloc_compressor(z->level);

	pthread_mutex_lock(&z->lock);
	for (;;) {
		while (!z->stopping && (z->next_work == z->next_fill ||
		                        slot_of(z, z->next_work)->state != SLOT_QUEUED))
			pthread_cond_wait(&z->changed, &z->lock);
		if (z->stopping)
			break;
		struct slot *s = slot_of(z, z->next_work++);

		s->state = SLOT_WORKING;
		pthread_mutex_unlock(&z->lock);
		if (compressor != NULL)
			compress_slot(compressor, s);
		else
			s->failed = true;

		pthread_mutex_lock(&z->lock);
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&z->changed);
	}
	pthread_mutex_unlock(&z->lock);
	libdeflate_free_compressor(compressor);
	return NULL;
}

static int put(struct parallel_gzip *z, const void *data, size_t size, capsula_error *err)
{
	if (z->sink(z->sink_arg, data, size) < 0) {
		z->failed = true;
		return fail(err, errno, errno == ENOSPC ? "free space there" : NULL, "layer: write");
	}
	return 0;
}

/* The oldest block, once compressed, goes out; its slot is free again. */
static int write_oldest(struct parallel_gzip *z, capsula_error *err)
{
	struct slot *s = slot_of(z, z->next_write);

	pthread_mutex_lock(&z->lock);
	while (s->state != SLOT_DONE)
		pthread_cond_wait(&z->changed, &z->lock);
	pthread_mutex_unlock(&z->lock);
	if (s->failed) {
		z->failed = true;
		return fail(err, ENOMEM, "free some memory", "layer: libdeflate could not compress a "
		            "block at level %d", z->level);
	}
	if (put(z, s->out, s->out_size, err) < 0)
		return -1;
	pthread_mutex_lock(&z->lock);
	s->state = SLOT_FREE;
	z->next_write++;
	pthread_mutex_unlock(&z->lock);
	return 0;
}

/* A slot to fill next, once the oldest is out if all are taken. */
static int start_block(struct parallel_gzip *z, capsula_error *err)
{
	struct slot *s;

	if (z->next_fill - z->next_write == z->slot_count && write_oldest(z, err) < 0)
		return -1;
	s = slot_of(z, z->next_fill);
	s->in_size = 0;
	s->failed = false;
	s->state = SLOT_FILLING;
	z->filling = s;
	return 0;
}

static void queue_block(struct parallel_gzip *z)
{
	pthread_mutex_lock(&z->lock);
	z->filling->state = SLOT_QUEUED;
	z->next_fill++;
	pthread_cond_broadcast(&z->changed);
	pthread_mutex_unlock(&z->lock);
}

int parallel_gzip_open(struct parallel_gzip **out, int level, unsigned threads, gzip_sink sink,
                       void *sink_arg, capsula_error *err)
{
	struct parallel_gzip *z = calloc(1, sizeof *z);

	*out = z;
	if (z == NULL)
		return fail(err, ENOMEM, NULL, "layer: gzip");
	pthread_mutex_init(&z->lock, NULL);
	pthread_cond_init(&z->changed, NULL);
	z->level = level > 0 && level <= GZIP_MAX_LEVEL ? level : GZIP_DEFAULT_LEVEL;
	z->sink = sink;
	z->sink_arg = sink_arg;
	threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
	z->slot_count = 2 * (size_t)threads;
	z->slots = calloc(z->slot_count, sizeof *z->slots);
	if (z->slots == NULL)
		return fail(err, ENOMEM, NULL, "layer: gzip");
	for (size_t i = 0; i < z->slot_count; i++) {
		z->slots[i].in = malloc(BLOCK_SIZE);
		z->slots[i].out_capacity = libdeflate_gzip_compress_bound(NULL, BLOCK_SIZE);
		z->slots[i].out = malloc(z->slots[i].out_capacity);
		if (z->slots[i].in == NULL || z->slots[i].out == NULL)
			return fail(err, ENOMEM, NULL, "layer: gzip");
	}
	for (; z->worker_count < threads; z->worker_count++) {
		int ret = pthread_create(&z->workers[z->worker_count], NULL, work, z);

		if (ret != 0)
			return fail(err, ret, NULL, "layer: gzip thread");
	}
	return start_block(z, err);
}

int parallel_gzip_write(struct parallel_gzip *z, const void *data, size_t size,
                        capsula_error *err)
{
	const unsigned char *at = data;

	if (z->failed)
		return fail(err, 0, NULL, "layer: gzip failed before");
	while (size > 0) {
		struct slot *s = z->filling;
		size_t n = BLOCK_SIZE - s->in_size < size ? BLOCK_SIZE - s->in_size : size;

		memcpy(s->in + s->in_size, at, n);
		s->in_size += n;
		at += n;
		size -= n;
		if (s->in_size == BLOCK_SIZE) {
			queue_block(z);
			if (start_block(z, err) < 0)
				return -1;
		}
	}
	return 0;
}

int parallel_gzip_finish(struct parallel_gzip *z, capsula_error *err)
{
	/* An empty last block still makes a member: an empty input is a valid
	 * gzip file too. */
	if (z->filling->in_size > 0 || z->next_fill == 0)
		queue_block(z);
	while (z->next_write < z->next_fill)
		if (write_oldest(z, err) < 0)
			return -1;
	return 0;
}

void parallel_gzip_free(struct parallel_gzip *z)
{
	if (z == NULL)
		return;
	if (z->worker_count > 0) {
		pthread_mutex_lock(&z->lock);
		z->stopping = true;
		pthread_cond_broadcast(&z->changed);
		pthread_mutex_unlock(&z->lock);
		for (unsigned i = 0; i < z->worker_count; i++)
			pthread_join(z->workers[i], NULL);
	}
	pthread_mutex_destroy(&z->lock);
	pthread_cond_destroy(&z->changed);
	if (z->slots != NULL) {
		for (size_t i = 0; i < z->slot_count; i++) {
			free(z->slots[i].in);
			free(z->slots[i].out);
		}
	}
	free(z->slots);
	free(z);
}
