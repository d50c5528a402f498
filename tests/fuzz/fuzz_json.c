/* JSON as image configs, manifests and indexes hold it, the image config
 * reader on top, and the writer on what was read. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "runtime/image_config.h"
#include "runtime/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json document;
	struct image_config config;
	char why[160];
	FILE *sink;

	if (json_parse((const char *)data, size, &document, why, sizeof why) < 0)
		return 0;
	if (image_config_from_json(&document, &config, why, sizeof why) == 0) {
		sink = fopen("/dev/null", "w");
		if (sink != NULL) {
			image_config_write(&config, sink);
			fclose(sink);
		}
		image_config_free(&config);
	}
	json_free(&document);
	return 0;
}
