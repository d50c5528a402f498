/* An archive file as a byte stream: read directly, or through the
 * decompressor its first bytes call for (gzip, zstd, xz, bzip2). */
#ifndef CAPSULA_STREAM_H
#define CAPSULA_STREAM_H

#include <sys/types.h>

#include "common/error.h"

struct stream {
	int fd;
	pid_t decompressor;   /* 0 when reading the file itself */
	const char *tool;
	char *path;
};

/* The compression named by the first bytes of a file: "gzip", "zstd",
 * "xz", "bzip2", or NULL for none of them. */
const char *stream_compression(const unsigned char *head, size_t size);

int stream_open(const char *path, struct stream *s, capsula_error *err);
/* Drain and reap the decompressor; fails if it did. */
int stream_close(struct stream *s, capsula_error *err);

#endif
