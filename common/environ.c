#include "config.h"

#include <string.h>

#include "common/environ.h"

const char *env_get(char **env, const char *name)
{
	size_t len = strlen(name);

	for (char **e = env; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}
