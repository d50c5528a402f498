/* A program's subcommands: capsula's and capsula-convert's tables. */
#ifndef CAPSULA_COMMAND_H
#define CAPSULA_COMMAND_H

#include <stddef.h>
#include <string.h>

struct command {
	const char *name;
	int (*main)(int argc, char **argv);
};

/* The entry called name, or NULL. */
static inline const struct command *command_find(const struct command *table, size_t count,
                                                 const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

#endif
