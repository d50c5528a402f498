/* The whole conversion: archive bytes in (a rootfs tarball, a docker save
 * archive or an OCI archive, compressed or not), a squashfs image out. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/convert/build.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Under $TMPDIR, which tests/fuzz/run points into its own output. */
static char dir[4096], input[4200], output[4200];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct build_options opts = {
		.output = output, .output_dir_fd = -1, .source = input, .source_dir_fd = -1,
		.compression = "gzip", .block_size = 4096, .workers = 1, .force = true, .quiet = true,
	};
	capsula_error err;
	FILE *f;

	if (dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof dir, "%s/capsula-fuzz-convert-XXXXXX", tmp ? tmp : "/tmp");
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(input, sizeof input, "%s/input", dir);
		snprintf(output, sizeof output, "%s/image.sqfs", dir);
	}
	f = fopen(input, "w");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	build_image(&opts, &err);
	unlink(output);
	return 0;
}
