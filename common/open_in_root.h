/* Opening a path inside a directory tree as if that tree were "/": ".."
 * and absolute symlinks stop at its top, magic links are refused. Used
 * both for the container's root and for an image being built. */
#ifndef CAPSULA_OPEN_IN_ROOT_H
#define CAPSULA_OPEN_IN_ROOT_H

/* path may start with '/' and may be "" (the root itself); O_CLOEXEC is
 * added to flags. Returns the fd, or -1 with errno set. */
int open_in_root(int root_fd, const char *path, int flags);

/* The same, failing with ELOOP where the path goes through a symlink; with
 * O_PATH | O_NOFOLLOW a symlink as the last component is itself opened. */
int open_in_root_no_symlinks(int root_fd, const char *path, int flags);

#endif
