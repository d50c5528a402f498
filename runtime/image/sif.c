#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/little_endian.h"
#include "runtime/image/sif.h"

#define MAGIC_OFFSET 32
#define DESCRIPTOR_TOTAL_OFFSET 88
#define DESCRIPTOR_OFFSET_OFFSET 96

#define DATA_PARTITION 0x4004
#define FS_SQUASHFS 1
#define FS_ENCRYPTED_SQUASHFS 5
#define PART_SYSTEM 1
#define PART_PRIMARY_SYSTEM 2

/* Offsets inside a descriptor. */
#define D_TYPE 0
#define D_USED 4
#define D_FILE_OFFSET 17
#define D_FILE_LENGTH 25
#define D_EXTRA 201

bool sif_is_sif(const unsigned char *head, size_t length)
{
	return length >= MAGIC_OFFSET + 10 && memcmp(head + MAGIC_OFFSET, "SIF_MAGIC\0", 10) == 0;
}

size_t sif_table_size(const unsigned char *header, size_t length, char *why, size_t why_size)
{
	uint64_t total, offset;

	if (length < SIF_HEADER_SIZE || !sif_is_sif(header, length)) {
		snprintf(why, why_size, "SIF header too short or without SIF_MAGIC");
		return 0;
	}
	total = le64(header + DESCRIPTOR_TOTAL_OFFSET);
	offset = le64(header + DESCRIPTOR_OFFSET_OFFSET);
	if (total == 0 || total > SIF_MAX_DESCRIPTORS) {
		snprintf(why, why_size, "SIF header claims %llu descriptors", (unsigned long long)total);
		return 0;
	}
	if (offset < SIF_HEADER_SIZE || offset > (1u << 20)) {
		snprintf(why, why_size, "SIF descriptors at a bad offset (%llu)",
		         (unsigned long long)offset);
		return 0;
	}
	return (size_t)(offset + total * SIF_DESCRIPTOR_SIZE);
}

int sif_find_squashfs(const unsigned char *table, size_t length, uint64_t file_size,
                      struct sif_partition *out, char *why, size_t why_size)
{
	size_t needed = sif_table_size(table, length, why, why_size);
	uint64_t total, first;
	bool found = false, encrypted = false;

	if (needed == 0)
		return -1;
	if (length < needed) {
		snprintf(why, why_size, "SIF descriptors cut short");
		return -1;
	}
	total = le64(table + DESCRIPTOR_TOTAL_OFFSET);
	first = le64(table + DESCRIPTOR_OFFSET_OFFSET);
	for (uint64_t i = 0; i < total; i++) {
		const unsigned char *d = table + first + i * SIF_DESCRIPTOR_SIZE;
		uint32_t fstype = le32(d + D_EXTRA), parttype = le32(d + D_EXTRA + 4);
		uint64_t offset = le64(d + D_FILE_OFFSET), size = le64(d + D_FILE_LENGTH);

		if (!d[D_USED] || le32(d + D_TYPE) != DATA_PARTITION)
			continue;
		if (parttype != PART_PRIMARY_SYSTEM && parttype != PART_SYSTEM)
			continue;
		if (fstype == FS_ENCRYPTED_SQUASHFS)
			encrypted = true;
		if (fstype != FS_SQUASHFS)
			continue;
		if (offset > file_size || size > file_size - offset) {
			snprintf(why, why_size, "SIF partition lies past the end of the file");
			return -1;
		}
		/* The primary system partition wins over any other system one. */
		if (!found || parttype == PART_PRIMARY_SYSTEM) {
			out->offset = offset;
			out->size = size;
			found = true;
			if (parttype == PART_PRIMARY_SYSTEM)
				break;
		}
	}
	if (!found) {
		snprintf(why, why_size, encrypted ? "the SIF partition is encrypted, which capsula "
		         "cannot read" : "no squashfs system partition in the SIF file");
		return -1;
	}
	return 0;
}
