/* exec/run/shell/instance start options: NUL-separated arguments, the
 * first byte choosing the subcommand. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/plan/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const subcommands[] = {"exec", "run", "shell", "start"};
	char *text, *argv[66];
	struct exec_options opts;
	capsula_error err;
	int argc = 1;

	if (size == 0)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	argv[0] = (char *)subcommands[data[0] % 4];
	for (char *s = text; s < text + size - 1 && argc < 64; s += strlen(s) + 1)
		argv[argc++] = s;
	argv[argc] = NULL;
	exec_options_parse(argc, argv, &opts, &err);
	exec_options_free(&opts);
	free(text);
	return 0;
}
