/* Reading a root file system that may be the host's or an image's. */
#ifndef CAPSULA_FILE_ACCESS_H
#define CAPSULA_FILE_ACCESS_H

#include <stddef.h>

#include "common/strvec.h"

struct file_access {
	/* Whole file of at most max bytes, NUL-terminated; -1 when absent. */
	int (*read)(void *context, const char *path, size_t max, char **data, size_t *length);
	/* Sorted names in a directory; -1 when absent. */
	int (*list)(void *context, const char *dir, struct strvec *names);
	void *context;
};

/* The host's own files. */
extern const struct file_access host_files;

#endif
