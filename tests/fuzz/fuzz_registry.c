/* What a registry or a user's files hand to capsula pull: WWW-Authenticate
 * challenges, image references, platforms and auth files. The first byte
 * picks the parser. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/image/image_ref.h"
#include "runtime/pull/registry_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct challenge challenge;
	struct credentials credentials;
	struct image_ref ref;
	struct platform platform;
	capsula_error err;
	char text[700];
	char *input;

	if (size < 1)
		return 0;
	input = strndup((const char *)data + 1, size - 1);
	if (input == NULL)
		return 0;
	switch (data[0] % 4) {
	case 0:
		challenge_parse(input, &challenge);
		break;
	case 1:
		if (image_ref_parse(input, &ref, &err) == 0)
			image_ref_format(&ref, text, sizeof text);
		break;
	case 2:
		if (platform_parse(input, &platform, &err) == 0)
			platform_format(&platform, text, sizeof text);
		break;
	default:
		image_ref_parse("quay.io/team/app", &ref, &err);
		credentials_from_text(input, "auth.json", &ref, &credentials, &err);
		credentials_clear(&credentials);
	}
	free(input);
	return 0;
}
