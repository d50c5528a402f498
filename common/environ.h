/* Reading NAME=VALUE vectors: the host's environment in runtime/, the
 * command's (plan->envp) in starter/. */
#ifndef CAPSULA_ENVIRON_H
#define CAPSULA_ENVIRON_H

#include <stddef.h>

/* Where the command is looked for when its environment has no PATH. */
#define FALLBACK_SEARCH_PATH "/usr/bin:/bin"

/* The value of NAME in a NULL-terminated environment (which may itself be
 * NULL), or NULL. */
const char *env_get(char **env, const char *name);
/* The same for the name's first name_length characters (NAME of a
 * "NAME=VALUE" entry). */
const char *env_get_name(char **env, const char *name, size_t name_length);

#endif
