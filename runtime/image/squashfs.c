#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/little_endian.h"
#include "runtime/image/squashfs.h"

const char *squashfs_compression_name(uint16_t id)
{
	static const char *const names[] = {
		[1] = "gzip", [2] = "lzma", [3] = "lzo", [4] = "xz", [5] = "lz4", [6] = "zstd",
	};

	if (id < sizeof names / sizeof names[0] && names[id] != NULL)
		return names[id];
	return NULL;
}

int squashfs_check(const unsigned char *buf, size_t len, uint64_t available,
                   struct squashfs_info *info, char *why, size_t why_size)
{
	/* Offsets of the tables that must lie inside the image. */
	static const size_t table_offsets[] = {48, 64, 72};
	uint16_t block_log;

	if (len == 0) {
		snprintf(why, why_size, "the file is empty");
		return -1;
	}
	if (len < 4 || memcmp(buf, "hsqs", 4) != 0) {
		snprintf(why, why_size, "not a squashfs image (no 'hsqs' magic)");
		return -1;
	}
	if (len < SQUASHFS_SUPERBLOCK_SIZE) {
		snprintf(why, why_size, "truncated: %zu bytes, shorter than a squashfs superblock", len);
		return -1;
	}
	info->inodes = le32(buf + 4);
	info->block_size = le32(buf + 12);
	info->compression = le16(buf + 20);
	block_log = le16(buf + 22);
	info->major = le16(buf + 28);
	info->minor = le16(buf + 30);
	info->bytes_used = le64(buf + 40);

	if (info->major != 4 || info->minor != 0) {
		snprintf(why, why_size, "squashfs version %u.%u, only 4.0 is supported",
		         info->major, info->minor);
		return -1;
	}
	if (block_log < 12 || block_log > 20 || info->block_size != 1u << block_log) {
		snprintf(why, why_size, "corrupt superblock (block size %" PRIu32 ", log %u)",
		         info->block_size, block_log);
		return -1;
	}
	if (squashfs_compression_name(info->compression) == NULL) {
		snprintf(why, why_size, "unknown compression id %u", info->compression);
		return -1;
	}
	if (info->inodes == 0 || info->bytes_used < SQUASHFS_SUPERBLOCK_SIZE) {
		snprintf(why, why_size, "corrupt superblock (%" PRIu32 " inodes, %" PRIu64 " bytes)",
		         info->inodes, info->bytes_used);
		return -1;
	}
	if (info->bytes_used > available) {
		snprintf(why, why_size, "truncated: %" PRIu64 " of %" PRIu64 " bytes present",
		         available, info->bytes_used);
		return -1;
	}
	for (size_t i = 0; i < sizeof table_offsets / sizeof table_offsets[0]; i++) {
		if (le64(buf + table_offsets[i]) >= info->bytes_used) {
			snprintf(why, why_size, "corrupt superblock (a table lies past the end)");
			return -1;
		}
	}
	return 0;
}
