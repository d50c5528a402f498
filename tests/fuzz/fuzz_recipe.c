/* The recipe parsers: bytes as a Dockerfile, as a definition file (with a
 * build argument for its templates), and each Dockerfile word expanded. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/recipe/recipe.h"
#include "runtime/recipe/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expand_all(const struct recipe *r)
{
	struct strvec vars = {0};
	capsula_error err;

	strvec_push(&vars, "A=1");
	strvec_push(&vars, "EMPTY=");
	for (size_t i = 0; i < r->count; i++)
		for (size_t k = 0; k < r->stages[i].count; k++)
			for (size_t w = 0; w < r->stages[i].steps[k].args.count; w++) {
				char *out;

				if (words_expand(r->stages[i].steps[k].args.items[w], '\\', &vars, &out, "w",
				                 &err) == 0)
					free(out);
			}
	strvec_free(&vars);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strvec args = {0};
	struct recipe r;
	capsula_error err;

	if (dockerfile_parse((const char *)data, size, "Dockerfile", &r, &err) == 0)
		expand_all(&r);
	recipe_free(&r);
	strvec_push(&args, "V=1");
	deffile_parse((const char *)data, size, "app.def", &args, &r, &err);
	recipe_free(&r);
	strvec_free(&args);
	return 0;
}
