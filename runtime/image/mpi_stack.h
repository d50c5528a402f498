/* The MPI and fabric stack a root file system carries: Open MPI, PMIx,
 * libfabric and rdma-core versions and the verbs providers. The same
 * detection looks at the host (doctor) and into an image (inspect,
 * doctor --image), through a file reader for each. */
#ifndef CAPSULA_MPI_STACK_H
#define CAPSULA_MPI_STACK_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "common/strvec.h"
#include "runtime/image/file_access.h"


#define STACK_VERSION_SIZE 48

struct mpi_stack {
	char openmpi[STACK_VERSION_SIZE];   /* "" when not found */
	char pmix[STACK_VERSION_SIZE];
	char libfabric[STACK_VERSION_SIZE];
	char rdma_core[STACK_VERSION_SIZE];
	struct strvec verbs_providers;      /* "mlx5", "efa", ... */
};

void mpi_stack_detect(const struct file_access *files, struct mpi_stack *stack);
void mpi_stack_free(struct mpi_stack *stack);
json_t *mpi_stack_json(const struct mpi_stack *stack);

/* The upstream version of package in a dpkg status file ("4.1.4" of
 * "4.1.4-3+b1", epoch dropped), or -1 when it is not installed. */
int dpkg_version(const char *status, const char *package, char *out, size_t size);

#endif
