/* What a registry sends as a signature's payload, checked against a digest;
 * and the site's image policy lines, matched against a reference. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/image_policy.h"
#include "runtime/pull/signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char digest[] =
	"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[300], *text = strndup((const char *)data, size);
	struct image_policy_rule rule;
	struct strvec lines = {0};

	signature_payload_check((const char *)data, size, digest, why, sizeof why);
	if (text == NULL)
		return 0;
	if (image_policy_parse(text, &rule, why, sizeof why) == 0) {
		image_policy_prefix_match(rule.prefix, "reg.example:5000", "a/b/c");
		image_policy_rule_free(&rule);
	}
	image_policy_prefix_match(text, "reg", "a/b");
	if (strvec_push(&lines, text) == 0 &&
	    image_policy_find(&lines, "reg", "a/b", &rule, why, sizeof why) == 1)
		image_policy_rule_free(&rule);
	strvec_free(&lines);
	free(text);
	return 0;
}
