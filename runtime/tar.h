/* A reader of tar streams (ustar, pax and GNU long names) as docker, OCI
 * layers and rootfs tarballs use them. The stream is untrusted: names come
 * back as written and are checked by whoever applies them. */
#ifndef CAPSULA_TAR_H
#define CAPSULA_TAR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

struct tar_entry {
	char type;          /* '0' file, '1' hard link, '2' symlink, '3' char,
	                       '4' block, '5' directory, '6' fifo */
	char *path;
	char *link;         /* hard or symbolic link target */
	mode_t mode;        /* permission bits, setuid/setgid/sticky included */
	uint64_t size;      /* content bytes that follow (files only) */
	int64_t mtime;
};

struct tar_reader {
	int fd;
	const char *name;   /* for messages */
	uint64_t left;      /* content bytes of the current entry not yet read */
	uint64_t padding;   /* then this many bytes to the next header */
	struct tar_entry entry;
	char *long_path;    /* from a GNU 'L' or pax "path" record */
	char *long_link;
	bool pax_size_set;
	uint64_t pax_size;
};

void tar_open(struct tar_reader *r, int fd, const char *name);
/* The next entry: 1, 0 at the end of the archive, -1 with err set. Any
 * content of the previous entry not read is skipped. */
int tar_next(struct tar_reader *r, struct tar_entry **entry, capsula_error *err);
/* Up to size bytes of the current entry's content; 0 when it is all read. */
ssize_t tar_read(struct tar_reader *r, void *buf, size_t size, capsula_error *err);
void tar_close(struct tar_reader *r);

/* Parse one 512-byte header block (exposed for tests and fuzzing). Returns
 * 1 for a header, 0 for an all-zero block, -1 with why set. */
int tar_parse_header(const unsigned char block[512], struct tar_entry *entry,
                     char *why, size_t why_size);

#endif
