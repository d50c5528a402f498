/* Writing into a build step's container, from inside it: every path is
 * resolved in the container's root (openat2 RESOLVE_IN_ROOT, no magic
 * links), so a link in the image can never lead a copy out of it, and
 * owners are given as the user namespace allows: for real under the full
 * map, else recorded as fake_root.h's attribute for the step's layer. */
#ifndef CAPSULA_COPIER_H
#define CAPSULA_COPIER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/recipe/sources.h"

struct copy_owner {
	uid_t uid;
	gid_t gid;
	bool has_chown;       /* --chown: else ADD keeps an archive's owners */
	bool has_chmod;       /* --chmod */
	mode_t chmod;
};

/* The container's root, for what follows (-1 on failure). */
int copier_open_root(capsula_error *err);

/* mkdir -p path (absolute, in the root), new directories root's 0755. */
int copier_make_dirs(int root_fd, const char *path, capsula_error *err);

/* Copy source (relative to src_fd; a directory's contents, a file itself)
 * to dest: into it when into_dir, else as it. */
int copier_copy(int root_fd, int src_fd, const char *source, const char *dest, bool into_dir,
                const struct copy_owner *owner, const struct ignore_rules *rules,
                capsula_error *err);

/* A whole file with content (mode, root's), parents made. */
int copier_write(int root_fd, const char *path, const char *content, size_t length, mode_t mode,
                 capsula_error *err);

/* The same, owned by uid:gid (COPY --chown of a here-document). */
int copier_write_owned(int root_fd, const char *path, const char *content, size_t length,
                       mode_t mode, uid_t uid, gid_t gid, capsula_error *err);

/* Unpack the tar archive at fd (any compression libarchive reads) into
 * dest, every member below it. */
int copier_extract(int root_fd, int archive_fd, const char *dest, const struct copy_owner *owner,
                   const char *shown, capsula_error *err);

/* Is path (in the root) a directory? */
bool copier_is_dir(int root_fd, const char *path);

/* The uid and gid for "USER[:GROUP]" (names looked up in the container's
 * /etc/passwd and /etc/group, numbers as they are). */
int copier_resolve_owner(const char *spec, uid_t *uid, gid_t *gid, capsula_error *err);

#endif
