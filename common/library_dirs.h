/* Where a root file system keeps this machine's shared libraries: the
 * dynamic loader's default directories on Debian (multiarch) and on RPM
 * distributions, in the loader's order. The prefetcher looks for a
 * command's libraries there, inspect and doctor for MPI's and verbs'. */
#ifndef CAPSULA_LIBRARY_DIRS_H
#define CAPSULA_LIBRARY_DIRS_H

/* NULL at the end. */
extern const char *const library_dirs[];

#endif
