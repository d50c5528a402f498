/* The files a COPY or ADD takes: paths below a source directory (the build
 * context, an exported stage), with wildcards, .dockerignore's rules, and
 * never a step outside: no "..", absolute paths are the directory's own,
 * a symbolic link is taken as the link itself. Walked the same way to hash
 * them for the cache (on the host) and to copy them (in the container). */
#ifndef CAPSULA_SOURCES_H
#define CAPSULA_SOURCES_H

#include <stdbool.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/strvec.h"

/* .dockerignore: patterns, "!" ones re-including, the last match deciding. */
struct ignore_rules {
	struct strvec patterns;   /* cleaned, without a leading '/' */
	bool *negated;
};

int ignore_rules_read(int context_fd, struct ignore_rules *rules, capsula_error *err);
void ignore_rules_free(struct ignore_rules *rules);
/* Is path (relative to the context) left out? */
bool ignore_rules_match(const struct ignore_rules *rules, const char *path);

/* One file met by a walk: its path relative to the source directory, its
 * path relative to the COPY's destination, what it is, and (regular files,
 * directories, links) a descriptor of its parent and its name there. */
struct source_file {
	const char *path;
	const char *dest_rel;
	struct stat st;
	int parent_fd;
	const char *name;
};

/* Called for each file; a directory before what it holds, and again after
 * (last set) so that its times can be set once it is filled. */
typedef int (*source_visit)(const struct source_file *f, bool last, void *arg,
                            capsula_error *err);

/* The paths a COPY source names (wildcards expanded, sorted), relative
 * to dir_fd; none is an error naming the source. */
int sources_expand(int dir_fd, const char *source, const struct ignore_rules *rules,
                   struct strvec *paths, capsula_error *err);

/* Walk path (relative to dir_fd) and, for a directory, everything below
 * it that the rules keep. A directory's own entry has dest_rel "" (its
 * contents go into the destination itself). */
int sources_walk(int dir_fd, const char *path, const struct ignore_rules *rules,
                 source_visit visit, void *arg, capsula_error *err);

#endif
