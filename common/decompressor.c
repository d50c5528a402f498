#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include <squashfuse/squashfs_fs.h>

#include "common/decompressor.h"

struct contexts {
	ZSTD_DCtx *zstd;
	z_stream zlib;
	bool zlib_ready;
};

static pthread_key_t contexts_key;
static pthread_once_t contexts_once = PTHREAD_ONCE_INIT;
static bool contexts_keyed;

static void free_contexts(void *arg)
{
	struct contexts *c = arg;

	ZSTD_freeDCtx(c->zstd);
	if (c->zlib_ready)
		inflateEnd(&c->zlib);
	free(c);
}

static void make_key(void)
{
	contexts_keyed = pthread_key_create(&contexts_key, free_contexts) == 0;
}

/* This thread's contexts, made on first use; NULL when out of memory. */
static struct contexts *thread_contexts(void)
{
	struct contexts *c;

	pthread_once(&contexts_once, make_key);
	if (!contexts_keyed)
		return NULL;
	c = pthread_getspecific(contexts_key);
	if (c == NULL) {
		c = calloc(1, sizeof *c);
		if (c != NULL && pthread_setspecific(contexts_key, c) != 0) {
			free(c);
			c = NULL;
		}
	}
	return c;
}

static sqfs_err zstd_kept(void *in, size_t insz, void *out, size_t *outsz)
{
	struct contexts *c = thread_contexts();
	size_t made;

	if (c == NULL || (c->zstd == NULL && (c->zstd = ZSTD_createDCtx()) == NULL))
		return SQFS_ERR;
	made = ZSTD_decompressDCtx(c->zstd, out, *outsz, in, insz);
	if (ZSTD_isError(made))
		return SQFS_ERR;
	*outsz = made;
	return SQFS_OK;
}

static sqfs_err zlib_kept(void *in, size_t insz, void *out, size_t *outsz)
{
	struct contexts *c = thread_contexts();

	if (c == NULL)
		return SQFS_ERR;
	if (!c->zlib_ready) {
		if (inflateInit(&c->zlib) != Z_OK)
			return SQFS_ERR;
		c->zlib_ready = true;
	} else if (inflateReset(&c->zlib) != Z_OK) {
		return SQFS_ERR;
	}
	c->zlib.next_in = in;
	c->zlib.avail_in = (uInt)insz;
	c->zlib.next_out = out;
	c->zlib.avail_out = (uInt)*outsz;
	if (inflate(&c->zlib, Z_FINISH) != Z_STREAM_END)
		return SQFS_ERR;
	*outsz = c->zlib.total_out;
	return SQFS_OK;
}

sqfs_decompressor decompressor_for(int compression)
{
	if (compression == ZSTD_COMPRESSION)
		return zstd_kept;
	if (compression == ZLIB_COMPRESSION)
		return zlib_kept;
	return sqfs_decompressor_get(compression);
}

void decompressor_install(sqfs *fs)
{
	sqfs_decompressor kept = decompressor_for(fs->sb.compression);

	if (kept != NULL)
		fs->decompressor = kept;
}
