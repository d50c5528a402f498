/* Directories nobody else can swap: reached from / one component at a time,
 * every directory on the way belonging to a trusted owner and closed to
 * writes by anyone else unless it is sticky, so that no other user can
 * rename, replace or plant anything between capsula's check and its use.
 * What is below is then reached only from the descriptor, never by the
 * path's name again. */
#ifndef CAPSULA_TRUSTED_DIR_H
#define CAPSULA_TRUSTED_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/error.h"

#define TRUSTED_OWNERS_MAX 3

/* Who may own the directories on the way (root is always one). */
struct trusted_owners {
	uid_t uid[TRUSTED_OWNERS_MAX];
	size_t count;
};

/* root and uid. */
struct trusted_owners trusted_root_and(uid_t uid);

/* Why st (of name) cannot be trusted, or NULL when it can: an owner not in
 * owners, or write access for group or others without the sticky bit. */
const char *trusted_dir_problem(const struct stat *st, const struct trusted_owners *owners,
                                char *why, size_t size);

/* Open the directory path (absolute) as O_PATH|O_DIRECTORY, checking every
 * directory from / down to it; symbolic links on the way are followed (a
 * trusted directory's links were made by its owners). With create, missing
 * directories are made 0700 (they are the caller's). Messages say what and
 * shown_as (the path when NULL): "cache directory DIR: ..."; hint says what
 * to do. */
int trusted_dir_open(const char *path, const struct trusted_owners *owners, bool create,
                     const char *what, const char *shown_as, const char *hint,
                     capsula_error *err);

#endif
