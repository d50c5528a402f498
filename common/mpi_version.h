/* Which Open MPI a library file belongs to: Open MPI's libopen-pal carries
 * its release as a "vX.Y.Z" string. Used to warn when the host's launcher
 * and the image's library differ in major version. */
#ifndef CAPSULA_MPI_VERSION_H
#define CAPSULA_MPI_VERSION_H

#include <stddef.h>
#include <sys/types.h>

/* Look for "\0vX.Y.Z\0" in buf; copy "X.Y.Z" to out. */
int mpi_version_find(const char *buf, size_t len, char *out, size_t size);

/* The version string of the Open MPI library at path ("4.1.4"), or -1. */
int mpi_version_of_library(const char *path, char *out, size_t size);

/* Where distributions put Open MPI's libopen-pal (glob patterns, NULL
 * at the end), for the container's check and for inspect and doctor. */
extern const char *const openmpi_library_patterns[];

/* The Open MPI version of the image mounted at "/" (call inside it). */
int mpi_version_of_image(char *out, size_t size);

/* The Open MPI version of the launcher that started pid (mpirun, orted...),
 * found among its ancestors' mapped libraries. */
int mpi_version_of_launcher(pid_t pid, char *out, size_t size);

/* Do two versions differ in their major number? */
int mpi_versions_clash(const char *a, const char *b);

#endif
