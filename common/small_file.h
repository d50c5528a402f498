/* Reading a whole small file (a configuration, a record) into memory. */
#ifndef CAPSULA_SMALL_FILE_H
#define CAPSULA_SMALL_FILE_H

#include <stddef.h>

#include "common/error.h"

/* At most max bytes of the regular file at path, NUL-terminated. */
int read_small_file(const char *path, size_t max, char **data, size_t *length,
                    capsula_error *err);

/* The same below dir_fd, not through a symbolic link. */
int read_small_at(int dir_fd, const char *name, size_t max, char **data, size_t *length,
                  capsula_error *err);

/* The same from fd, which it closes; path names it in messages. */
int read_small_fd(int fd, const char *path, size_t max, char **data, size_t *length,
                  capsula_error *err);

#endif
