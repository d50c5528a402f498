/* exec|run|shell docker://REF: the image a pull of REF left in the cache,
 * pulled first (by capsula-convert, once per node for all the ranks that
 * ask at the same time) when it is not there. A tag is resolved once:
 * `capsula pull REF` again takes its newer image. */
#ifndef CAPSULA_PULLED_IMAGE_H
#define CAPSULA_PULLED_IMAGE_H

#include <stddef.h>

#include "common/error.h"

/* The cached image of ref, opened read-only and checked against the
 * cache's record of it; path receives its name for messages. */
int pulled_image_open(const char *ref, char *path, size_t size, capsula_error *err);

#endif
