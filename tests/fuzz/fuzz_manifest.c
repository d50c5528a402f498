/* docker save manifest.json and OCI index.json, read from a directory as
 * capsula build reads them (the blobs they name mostly do not exist). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/image_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Under $TMPDIR, which tests/fuzz/run points into its own output. */
static char dir[4096];

static void write_file(const char *name, const uint8_t *data, size_t size)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct strvec layers = {0};
	struct image_config config;
	capsula_error err;

	if (!ready) {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof dir, "%s/capsula-fuzz-manifest-XXXXXX", tmp ? tmp : "/tmp");
		if (mkdtemp(dir) == NULL)
			abort();
		ready = 1;
	}
	/* The same text as a manifest, as an index, and as a config blob. */
	write_file("manifest.json", data, size);
	write_file("index.json", data, size);
	write_file("config.json", data, size);
	if (source_read_layers(dir, SOURCE_DOCKER_ARCHIVE, &layers, &config, &err) == 0)
		image_config_free(&config);
	strvec_free(&layers);
	if (source_read_layers(dir, SOURCE_OCI_LAYOUT, &layers, &config, &err) == 0)
		image_config_free(&config);
	strvec_free(&layers);
	return 0;
}
