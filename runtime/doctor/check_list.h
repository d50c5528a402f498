/* The list every doctor check adds its finding to: what was found and,
 * when something is wrong, the one-line fix. */
#ifndef CAPSULA_CHECK_LIST_H
#define CAPSULA_CHECK_LIST_H

#include <stddef.h>

enum check_status { CHECK_OK, CHECK_INFO, CHECK_WARN, CHECK_FAIL };

struct check {
	const char *name;
	enum check_status status;
	char detail[512];
	char fix[256];
};

struct check_list {
	struct check *items;
	size_t count;
};

/* Add a check; fix may be NULL. */
void check_add(struct check_list *list, const char *name, enum check_status status,
               const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
