#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <squashfuse/squashfuse.h>
#include <squashfuse/decompress.h>
#include <squashfuse/squashfs_fs.h>

#include "starter/imageserver/block_decoder.h"

struct block_decoder {
	int fd;
	uint64_t offset;
	size_t block_size;
	int compression;
	ZSTD_DCtx *zstd;
	z_stream zlib;
	bool zlib_ready;
	sqfs_decompressor other;
	unsigned char *input;  /* block_size bytes: no block is stored larger */
};

struct block_decoder *block_decoder_new(int fd, uint64_t offset, size_t block_size,
                                        int compression)
{
	struct block_decoder *d = calloc(1, sizeof *d);
	bool ready;

	if (d == NULL)
		return NULL;
	d->fd = fd;
	d->offset = offset;
	d->block_size = block_size;
	d->compression = compression;
	d->input = malloc(block_size);
	if (compression == ZSTD_COMPRESSION) {
		d->zstd = ZSTD_createDCtx();
		ready = d->zstd != NULL;
	} else if (compression == ZLIB_COMPRESSION) {
		d->zlib_ready = inflateInit(&d->zlib) == Z_OK;
		ready = d->zlib_ready;
	} else {
		d->other = sqfs_decompressor_get(compression);
		ready = d->other != NULL;
	}
	if (d->input == NULL || !ready) {
		block_decoder_free(d);
		return NULL;
	}
	return d;
}

void block_decoder_free(struct block_decoder *d)
{
	if (d == NULL)
		return;
	ZSTD_freeDCtx(d->zstd);
	if (d->zlib_ready)
		inflateEnd(&d->zlib);
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

/* Decompress length bytes of d->input into out; the size made, or -1. */
static long decompress(struct block_decoder *d, size_t length, void *out)
{
	size_t made = d->block_size;

	if (d->zstd != NULL) {
		made = ZSTD_decompressDCtx(d->zstd, out, d->block_size, d->input, length);
		return ZSTD_isError(made) ? -1 : (long)made;
	}
	if (d->zlib_ready) {
		if (inflateReset(&d->zlib) != Z_OK)
			return -1;
		d->zlib.next_in = d->input;
		d->zlib.avail_in = (uInt)length;
		d->zlib.next_out = out;
		d->zlib.avail_out = (uInt)d->block_size;
		if (inflate(&d->zlib, Z_FINISH) != Z_STREAM_END)
			return -1;
		return (long)d->zlib.total_out;
	}
	if (d->other(d->input, length, out, &made) != SQFS_OK)
		return -1;
	return (long)made;
}

int block_decoder_read(struct block_decoder *d, uint64_t position, uint32_t header,
                       void **data, size_t *size)
{
	uint32_t stored;
	bool compressed;
	void *out;
	long made;

	sqfs_data_header(header, &compressed, &stored);
	if (!compressed || stored == 0 || stored > d->block_size) {
		errno = EIO;  /* only compressed blocks come here, none larger */
		return -1;
	}
	if (read_stored(d, position, stored) < 0)
		return -1;
	out = malloc(d->block_size);
	if (out == NULL)
		return -1;
	made = decompress(d, stored, out);
	if (made <= 0) {
		free(out);
		errno = EIO;
		return -1;
	}
	*data = out;
	*size = (size_t)made;
	return 0;
}
