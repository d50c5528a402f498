/* Image configs as capsula reads them (through jansson) and writes them
 * back into an image. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "runtime/image/image_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_config config;
	char why[160];

	if (image_config_parse((const char *)data, size, &config, why, sizeof why) == 0) {
		json_t *document = image_config_to_json(&config);

		free(json_dumps(document, JSON_INDENT(2)));
		json_decref(document);
		image_config_free(&config);
	}
	return 0;
}
