/* An image's dpkg status database, as inspect and doctor read it. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/image/mpi_stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *status = strndup((const char *)data, size);
	char version[STACK_VERSION_SIZE];

	if (status == NULL)
		return 0;
	dpkg_version(status, "libopenmpi3", version, sizeof version);
	dpkg_version(status, "rdma-core", version, sizeof version);
	free(status);
	return 0;
}
