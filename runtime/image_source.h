/* Where capsula build takes an image from: a directory, a rootfs tarball,
 * a `docker save` archive or an OCI image layout (directory or archive).
 * For the layered kinds, the layer archives in order and the config. */
#ifndef CAPSULA_IMAGE_SOURCE_H
#define CAPSULA_IMAGE_SOURCE_H

#include "common/error.h"
#include "runtime/image_config.h"
#include "runtime/strvec.h"

enum source_kind {
	SOURCE_DIRECTORY,
	SOURCE_TARBALL,
	SOURCE_DOCKER_ARCHIVE,
	SOURCE_OCI_LAYOUT,
	SOURCE_OCI_ARCHIVE,
};

const char *source_kind_name(enum source_kind kind);

/* Look at SOURCE and say which kind it is. */
int source_detect(const char *source, enum source_kind *kind, capsula_error *err);

/* In an unpacked docker archive or OCI layout at dir: the layer paths,
 * bottom first, and the image config. */
int source_read_layers(const char *dir, enum source_kind kind, struct strvec *layers,
                       struct image_config *config, capsula_error *err);

/* Read a whole small file (at most max bytes). */
int read_small_file(const char *path, size_t max, char **data, size_t *length,
                    capsula_error *err);

#endif
