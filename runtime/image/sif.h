/* The Singularity Image Format container as its specification lays it out:
 * a 128-byte global header, then descriptors of 585 bytes, one of which
 * names the squashfs partition capsula runs. All fields little-endian. */
#ifndef CAPSULA_SIF_H
#define CAPSULA_SIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIF_HEADER_SIZE 128
#define SIF_DESCRIPTOR_SIZE 585
#define SIF_MAX_DESCRIPTORS 4096

struct sif_partition {
	uint64_t offset;
	uint64_t size;
};

/* Does the file start like a SIF? */
bool sif_is_sif(const unsigned char *head, size_t length);

/* How many bytes from the start of the file hold the header and all
 * descriptors (what sif_find_squashfs needs), or 0 with why set. */
size_t sif_table_size(const unsigned char *header, size_t length, char *why, size_t why_size);

/* Find the primary system squashfs partition in table (the first
 * sif_table_size bytes) of a file of file_size bytes. */
int sif_find_squashfs(const unsigned char *table, size_t length, uint64_t file_size,
                      struct sif_partition *out, char *why, size_t why_size);

#endif
