#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/decompressor.h"
#include "starter/imageserver/block_decoder.h"

struct block_decoder {
	int fd;
	uint64_t offset;
	size_t block_size;
	sqfs_decompressor decompress;
	struct block_memory *memory;
	unsigned char *input;  /* block_size bytes: no block is stored larger */
};

struct block_decoder *block_decoder_new(int fd, uint64_t offset, size_t block_size,
                                        int compression, struct block_memory *memory)
{
	struct block_decoder *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	d->fd = fd;
	d->offset = offset;
	d->block_size = block_size;
	d->memory = memory;
	d->decompress = decompressor_for(compression);
	d->input = malloc(block_size);
	if (d->input == NULL || d->decompress == NULL) {
		block_decoder_free(d);
		return NULL;
	}
	return d;
}

void block_decoder_free(struct block_decoder *d)
{
	if (d == NULL)
		return;
	free(d->input);
	free(d);
}

static int read_stored(const struct block_decoder *d, uint64_t position, size_t length)
{
	size_t got = 0;

	while (got < length) {
		ssize_t n = pread(d->fd, d->input + got, length - got,
		                  (off_t)(d->offset + position + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;  /* the image ends inside the block */
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

int block_decoder_read(struct block_decoder *d, uint64_t position, uint32_t header,
                       void **data, size_t *size)
{
	uint32_t stored;
	bool compressed;
	size_t made;
	void *out;

	sqfs_data_header(header, &compressed, &stored);
	if (!compressed || stored == 0 || stored > d->block_size) {
		errno = EIO;  /* only compressed blocks come here, none larger */
		return -1;
	}
	if (read_stored(d, position, stored) < 0)
		return -1;
	out = block_memory_get(d->memory);
	if (out == NULL)
		return -1;
	made = d->block_size;
	if (d->decompress(d->input, stored, out, &made) != SQFS_OK || made == 0) {
		block_memory_put(d->memory, out);
		errno = EIO;
		return -1;
	}
	*data = out;
	*size = made;
	return 0;
}
