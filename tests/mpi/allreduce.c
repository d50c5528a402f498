/* MPI_Allreduce of a vector; every rank checks the result. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define COUNT 100000

int main(int argc, char **argv)
{
	int rank, size, bad = 0, any_bad = 0;
	double *in = malloc(COUNT * sizeof *in);
	double *out = malloc(COUNT * sizeof *out);

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (in == NULL || out == NULL)
		MPI_Abort(MPI_COMM_WORLD, 2);
	for (int i = 0; i < COUNT; i++)
		in[i] = rank + i;
	MPI_Allreduce(in, out, COUNT, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
	for (int i = 0; i < COUNT; i++)
		if (out[i] != (double)size * (size - 1) / 2 + (double)size * i)
			bad++;
	MPI_Reduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
	if (rank == 0)
		printf("allreduce %s size %d count %d\n", any_bad ? "WRONG" : "ok", size, COUNT);
	MPI_Finalize();
	free(in);
	free(out);
	return any_bad != 0;
}
