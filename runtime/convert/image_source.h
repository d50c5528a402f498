/* Where capsula build takes an image from: a directory, a rootfs tarball,
 * a `docker save` archive or an OCI image layout (directory or archive).
 * Nothing is unpacked: the container's own members (manifest.json,
 * index.json, blobs) are read in place, never through a symbolic link,
 * and every blob is checked against its digest and size. */
#ifndef CAPSULA_IMAGE_SOURCE_H
#define CAPSULA_IMAGE_SOURCE_H

#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/sha256.h"
#include "common/strvec.h"
#include "runtime/image/image_config.h"

enum source_kind {
	SOURCE_DIRECTORY,
	SOURCE_TARBALL,
	SOURCE_DOCKER_ARCHIVE,
	SOURCE_OCI_LAYOUT,
	SOURCE_OCI_ARCHIVE,
};

struct image_source {
	enum source_kind kind;
	char *path;
	char *tag;               /* which image of several; NULL: the only one */
	const char *manifest;    /* a layout's image by manifest digest, not by index.json */
	int dir_fd;              /* an OCI layout's directory, else -1 */
	struct strvec members;   /* an archive's regular members, sorted */
};

/* One layer to apply, and what it must hash to. */
struct layer_ref {
	char *member;            /* in the archive or layout; NULL: the whole source */
	char *digest;            /* "sha256:HEX" of the blob as stored, or NULL */
	int64_t size;            /* of the blob as stored, or -1 */
	char *diff_id;           /* "sha256:HEX" of the uncompressed tar, or NULL */
};

struct image_description {
	struct layer_ref *layers;
	size_t layer_count;
	struct image_config config;
	int has_config;
};

const char *source_kind_name(enum source_kind kind);

/* Look at SOURCE ("PATH" or "LAYOUT:TAG") and say what it is; tag (from
 * --tag) may be NULL. */
int source_open(const char *source, const char *tag, struct image_source *s,
                capsula_error *err);
/* A directory already open (and checked) as dir_fd, named name. */
int source_open_directory(int dir_fd, const char *name, struct image_source *s,
                          capsula_error *err);
void source_close(struct image_source *s);

/* The layers and config of the chosen image, each manifest and config
 * verified. A tarball is one layer; a directory has none. */
int source_describe(struct image_source *s, struct image_description *d, capsula_error *err);
void image_description_free(struct image_description *d);

/* A member's bytes, read in place. */
struct blob {
	int fd;                  /* a layout's file or the tarball, else -1 */
	struct archive *outer;   /* an archive positioned at the member, else NULL */
	const char *name;
};

int blob_open(struct image_source *s, const char *member, struct blob *b, capsula_error *err);
ssize_t blob_read(struct blob *b, void *buf, size_t size, capsula_error *err);
void blob_close(struct blob *b);

/* "sha256:HEX" of what was hashed, against expected (NULL: nothing to
 * check). what names the blob in the message. */
int digest_check(struct sha256 *h, const char *expected, int64_t expected_size,
                 uint64_t size, const char *what, capsula_error *err);

#endif
