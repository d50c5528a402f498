/* The squashfs superblock: enough to tell a usable image from anything else
 * before any namespace or mount exists. */
#ifndef CAPSULA_SQUASHFS_H
#define CAPSULA_SQUASHFS_H

#include <stddef.h>
#include <stdint.h>

#define SQUASHFS_SUPERBLOCK_SIZE 96

struct squashfs_info {
	uint32_t inodes;
	uint32_t block_size;
	uint16_t compression;
	uint16_t major;
	uint16_t minor;
	uint64_t bytes_used;
};

/* Check a superblock read from the start of the image (len bytes; fewer
 * than SQUASHFS_SUPERBLOCK_SIZE means the file is too short), where
 * available is how many bytes the file holds from that start. On failure,
 * returns -1 and writes a short reason into why. */
int squashfs_check(const unsigned char *buf, size_t len, uint64_t available,
                   struct squashfs_info *info, char *why, size_t why_size);

const char *squashfs_compression_name(uint16_t id);

#endif
