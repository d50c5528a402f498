/* -B/--bind SRC[:DST[:ro|rw]][,SRC[:DST[:ro|rw]]...] */
#ifndef CAPSULA_BINDSPEC_H
#define CAPSULA_BINDSPEC_H

#include "common/error.h"
#include "common/plan.h"

struct bind_list {
	struct capsula_bind *items;
	size_t count;
};

/* Parse one -B argument (possibly a comma list) and append its binds.
 * Paths are taken as written: SRC may be relative, DST must be absolute. */
int bindspec_parse(const char *spec, struct bind_list *out, capsula_error *err);

int bind_list_add(struct bind_list *list, const char *source,
                  const char *destination, unsigned flags);
void bind_list_free(struct bind_list *list);

#endif
