/* CDI spec files: bytes as JSON and as YAML (libyaml's events made into a
 * tree, aliases included), and as a device name. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/cdi_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char kind[256], name[256], *text;
	capsula_error err;
	json_t *spec;

	if (cdi_spec_parse((const char *)data, size, "spec.json", &spec, &err) == 0)
		json_decref(spec);
	if (cdi_spec_parse((const char *)data, size, "spec.yaml", &spec, &err) == 0)
		json_decref(spec);
	text = strndup((const char *)data, size);
	if (text != NULL)
		cdi_device_name(text, kind, sizeof kind, name, sizeof name, &err);
	free(text);
	return 0;
}
