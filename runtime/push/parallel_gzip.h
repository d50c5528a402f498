/* gzip on several threads, as pigz makes it: the stream cut into 1 MiB
 * blocks, each deflated by zlib on its own (primed with the 32 KiB before
 * it, so the ratio stays that of one stream) and ended on a byte by a sync
 * flush, the blocks joined in order under one gzip header and trailer. Any
 * gzip reader reads it as one stream; the same input and level give the
 * same bytes whatever the number of threads. */
#ifndef CAPSULA_PARALLEL_GZIP_H
#define CAPSULA_PARALLEL_GZIP_H

#include <stddef.h>

#include "common/error.h"

/* Where the compressed bytes go, in order; 0, or -1 with errno. */
typedef int (*gzip_sink)(void *arg, const void *data, size_t size);

struct parallel_gzip;

int parallel_gzip_open(struct parallel_gzip **out, int level, unsigned threads, gzip_sink sink,
                       void *sink_arg, capsula_error *err);
int parallel_gzip_write(struct parallel_gzip *z, const void *data, size_t size,
                        capsula_error *err);
/* The last block and the trailer. */
int parallel_gzip_finish(struct parallel_gzip *z, capsula_error *err);
void parallel_gzip_free(struct parallel_gzip *z);

#endif
