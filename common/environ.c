#include "config.h"

#include <string.h>

#include "common/environ.h"

const char *env_get_name(char **env, const char *name, size_t name_length)
{
	for (char **e = env; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, name_length) == 0 && (*e)[name_length] == '=')
			return *e + name_length + 1;
	return NULL;
}

const char *env_get(char **env, const char *name)
{
	return env_get_name(env, name, strlen(name));
}
