/* Ping-pong between ranks 0 and 1: latency and bandwidth for sizes from 0
 * bytes to a maximum (default 4 MiB), one line per size. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* count round trips of bytes between ranks 0 and 1 */
static void exchange(int rank, char *buf, long bytes, int count)
{
	for (int i = 0; i < count; i++) {
		if (rank == 0) {
			MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
			MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
		}
	}
}

int main(int argc, char **argv)
{
	long max_size = argc > 1 ? atol(argv[1]) : 4L << 20;
	int rank, size;
	char *buf;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (size < 2) {
		if (rank == 0)
			fprintf(stderr, "pingpong needs 2 ranks\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	buf = malloc((size_t)max_size > 0 ? (size_t)max_size : 1);
	if (buf == NULL)
		MPI_Abort(MPI_COMM_WORLD, 2);
	memset(buf, rank, (size_t)max_size);
	if (rank == 0)
		printf("%12s %10s %14s %12s\n", "bytes", "iters", "latency_us", "MB_per_s");
	for (long bytes = 0; bytes <= max_size; bytes = bytes ? bytes * 2 : 1) {
		int iters = bytes < 65536 ? 1000 : bytes < (1 << 20) ? 200 : 50;
		double start;

		if (rank < 2) {
			exchange(rank, buf, bytes, 10);  /* warm-up */
			start = MPI_Wtime();
			exchange(rank, buf, bytes, iters);
			if (rank == 0) {
				double half_rtt = (MPI_Wtime() - start) / iters / 2;

				printf("%12ld %10d %14.2f %12.1f\n", bytes, iters, half_rtt * 1e6,
				       bytes / half_rtt / 1e6);
				fflush(stdout);
			}
		}
		if (bytes == max_size)
			break;
	}
	if (rank == 0)
		printf("pingpong done\n");
	free(buf);
	MPI_Finalize();
	return 0;
}
