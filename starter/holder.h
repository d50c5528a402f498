/* The per-node holder: a small detached process that owns a container's
 * namespaces, serves its image, hands the namespaces to each rank that
 * connects, and leaves once the last rank is gone. */
#ifndef CAPSULA_HOLDER_H
#define CAPSULA_HOLDER_H

#include "common/error.h"
#include "common/plan.h"

/* Start a holder for plan under key. Returns 1 once it is ready to accept
 * ranks (with the image's Open MPI version in image_mpi, "" if none), 0 if
 * it found another holder already owning key; -1 with the holder's own
 * error otherwise. */
int holder_spawn(const struct capsula_plan *plan, const char *key, char *image_mpi,
                 size_t image_mpi_size, capsula_error *err);

#endif
