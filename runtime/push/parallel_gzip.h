/* gzip on several threads: the stream cut into 1 MiB blocks, each one
 * compressed by libdeflate on a thread into a gzip member of its own, the
 * members written in order. A gzip file is the concatenation of its members
 * (RFC 1952, 2.2): gzip, Go's and Python's readers, libarchive and zlib's
 * gunzip read it as one stream. libdeflate's level 4 takes about half of
 * zlib's level-2 time and gives a smaller layer; the same input and level
 * give the same bytes whatever the number of threads. */
#ifndef CAPSULA_PARALLEL_GZIP_H
#define CAPSULA_PARALLEL_GZIP_H

#include <stddef.h>

#include "common/error.h"

#define GZIP_DEFAULT_LEVEL 4
#define GZIP_MAX_LEVEL 12

/* Where the compressed bytes go, in order; 0, or -1 with errno. */
typedef int (*gzip_sink)(void *arg, const void *data, size_t size);

struct parallel_gzip;

int parallel_gzip_open(struct parallel_gzip **out, int level, unsigned threads, gzip_sink sink,
                       void *sink_arg, capsula_error *err);
int parallel_gzip_write(struct parallel_gzip *z, const void *data, size_t size,
                        capsula_error *err);
/* The last block. */
int parallel_gzip_finish(struct parallel_gzip *z, capsula_error *err);
void parallel_gzip_free(struct parallel_gzip *z);

#endif
