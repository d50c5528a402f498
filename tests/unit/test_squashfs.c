#include "config.h"

#include <stdint.h>

#include "runtime/image/squashfs.h"
#include "tests/unit/tap.h"

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* A plausible superblock of a 1 MiB zstd image with 128 KiB blocks. */
static void make_superblock(unsigned char *sb)
{
	memset(sb, 0, SQUASHFS_SUPERBLOCK_SIZE);
	memcpy(sb, "hsqs", 4);
	put32(sb + 4, 42);         /* inodes */
	put32(sb + 12, 131072);    /* block size */
	put16(sb + 20, 6);         /* zstd */
	put16(sb + 22, 17);        /* block log */
	put16(sb + 28, 4);
	put16(sb + 30, 0);
	put64(sb + 40, 1 << 20);   /* bytes used */
	put64(sb + 48, 1000);      /* id table */
	put64(sb + 64, 96);        /* inode table */
	put64(sb + 72, 500);       /* directory table */
}

static int check(const unsigned char *sb, size_t len, uint64_t available, char *why)
{
	struct squashfs_info info;

	return squashfs_check(sb, len, available, &info, why, 160);
}

int main(void)
{
	unsigned char sb[SQUASHFS_SUPERBLOCK_SIZE];
	struct squashfs_info info;
	char why[160];

	make_superblock(sb);
	ok(squashfs_check(sb, sizeof sb, 1 << 20, &info, why, sizeof why) == 0, "a valid superblock passes");
	ok(info.block_size == 131072 && info.inodes == 42 && info.bytes_used == 1 << 20,
	   "fields are read little-endian");
	is_str(squashfs_compression_name(info.compression), "zstd", "compression named");

	ok(check(sb, 0, 0, why) < 0 && strstr(why, "empty"), "an empty file is named empty");
	ok(check((const unsigned char *)"#!/bin/sh\n", 10, 10, why) < 0 && strstr(why, "not a squashfs"),
	   "a script is not a squashfs image");
	ok(check(sb, 50, 50, why) < 0 && strstr(why, "truncated"), "a cut superblock is truncated");
	ok(check(sb, sizeof sb, 4096, why) < 0 && strstr(why, "4096 of 1048576"),
	   "a cut image says how much is there (%s)", why);

	make_superblock(sb);
	put16(sb + 28, 3);
	ok(check(sb, sizeof sb, 1 << 20, why) < 0 && strstr(why, "version 3.0"), "squashfs 3 is refused");

	make_superblock(sb);
	put16(sb + 22, 16);
	ok(check(sb, sizeof sb, 1 << 20, why) < 0 && strstr(why, "block size"),
	   "block size and log must agree");

	make_superblock(sb);
	put16(sb + 20, 9);
	ok(check(sb, sizeof sb, 1 << 20, why) < 0 && strstr(why, "compression id 9"),
	   "unknown compression is refused");

	make_superblock(sb);
	put64(sb + 64, (uint64_t)1 << 40);
	ok(check(sb, sizeof sb, 1 << 20, why) < 0 && strstr(why, "past the end"),
	   "a table beyond the image is corruption");

	make_superblock(sb);
	put32(sb + 4, 0);
	ok(check(sb, sizeof sb, 1 << 20, why) < 0 && strstr(why, "corrupt"), "zero inodes is corruption");

	ok(squashfs_compression_name(0) == NULL && squashfs_compression_name(1) != NULL,
	   "compression ids 1..6 are named, 0 is not");
	return tap_done();
}
