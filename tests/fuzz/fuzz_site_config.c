/* The administrator's capsula.conf. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/site_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size);
	struct capsula_config config;
	capsula_error err;

	if (text == NULL)
		return 0;
	config_defaults(&config);
	config_parse(text, "capsula.conf", &config, &err);
	config_free(&config);
	free(text);
	return 0;
}
