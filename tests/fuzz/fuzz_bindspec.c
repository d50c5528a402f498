/* -B specifications. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/bindspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = strndup((const char *)data, size);
	struct bind_list list = {0};
	capsula_error err;

	if (spec == NULL)
		return 0;
	bindspec_parse(spec, &list, &err);
	bind_list_free(&list);
	free(spec);
	return 0;
}
