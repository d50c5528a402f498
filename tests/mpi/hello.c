/* Each rank reports who and where it is, and the namespaces it runs in, so
 * a test can see which ranks share a container. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

static void namespace_of(const char *name, char *out, size_t size)
{
	char path[64];
	ssize_t len;

	snprintf(path, sizeof path, "/proc/self/ns/%s", name);
	len = readlink(path, out, size - 1);
	out[len < 0 ? 0 : len] = '\0';
}

int main(int argc, char **argv)
{
	char host[MPI_MAX_PROCESSOR_NAME];
	char version[MPI_MAX_LIBRARY_VERSION_STRING];
	char mnt[64], user[64], net[64];
	int rank, size, len;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Get_processor_name(host, &len);
	MPI_Get_library_version(version, &len);
	namespace_of("mnt", mnt, sizeof mnt);
	namespace_of("user", user, sizeof user);
	namespace_of("net", net, sizeof net);
	printf("hello rank %d of %d on %s pid %d uid %d mnt %s user %s net %s\n",
	       rank, size, host, (int)getpid(), (int)getuid(), mnt, user, net);
	if (rank == 0)
		printf("library %.40s\n", version);
	MPI_Finalize();
	return 0;
}
