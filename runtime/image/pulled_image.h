/* exec|run|shell|inspect docker://REF: the image a pull of REF left in the
 * cache, pulled first (by capsula-convert, once per node for all the ranks
 * that ask at the same time) when it is not there. A tag is resolved once:
 * `capsula pull REF` again takes its newer image. */
#ifndef CAPSULA_PULLED_IMAGE_H
#define CAPSULA_PULLED_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* How the registry is reached, as capsula pull's options say it. */
struct pull_access {
	const char *tls_ca;        /* --tls-ca FILE, or NULL ($CAPSULA_TLS_CA reaches the pull) */
	bool insecure;             /* --insecure: plain HTTP */
	bool shown;                /* this process says that it pulls, with progress on a
	                            * terminal (one rank of a job, not all) */
};

/* The cached image of ref, opened read-only and checked against the
 * cache's record of it; path receives its name for messages. */
int pulled_image_open(const char *ref, const struct pull_access *access, char *path,
                      size_t size, capsula_error *err);

#endif
