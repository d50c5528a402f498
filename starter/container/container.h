/* The container of one holder: its namespaces, built once per node. */
#ifndef CAPSULA_CONTAINER_H
#define CAPSULA_CONTAINER_H

#include "common/error.h"
#include "common/plan.h"
#include "starter/container/identity.h"
#include "starter/imageserver/image_fs.h"
#include "starter/imageserver/prefetch.h"

struct container {
	int userns_fd;
	int mntns_fd;
	struct image_fs *served;  /* the image's server, for its counters */
	struct prefetch *prefetch;  /* to stop before the process exits */
};

/* Build the container in this (single-threaded) process: afterwards the
 * process is inside it and serves the image from a thread. */
int container_build(const struct capsula_plan *plan, const struct identity *id,
                    struct container *c, capsula_error *err);

#endif
