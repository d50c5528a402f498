#ifndef CAPSULA_PATHS_H
#define CAPSULA_PATHS_H

#include <stdbool.h>

/* True when path is dir itself or lies below it ("/a/b" is under "/a",
 * "/ab" is not). Both must be absolute and free of "//" and "/./". */
bool path_is_under(const char *path, const char *dir);

/* True for the image's own system directories, which a bind of the host's
 * current directory must never cover. */
bool path_is_system(const char *path);

#endif
