/* What capsula reads of an image before mounting it: a SIF header and its
 * descriptors, then the squashfs superblock where they point. */
#include "config.h"

#include <stdint.h>

#include "runtime/image/sif.h"
#include "runtime/image/squashfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sif_partition part = {0, size};
	struct squashfs_info info;
	char why[160];

	if (sif_is_sif(data, size) && sif_find_squashfs(data, size, size, &part, why, sizeof why) < 0)
		return 0;
	if (part.offset <= size)
		squashfs_check(data + part.offset, size - part.offset, part.size, &info, why,
		               sizeof why);
	return 0;
}
