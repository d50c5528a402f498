/* Decompressors for libsquashfuse's readers that keep their zstd or gzip
 * context from block to block, lent to whichever thread decompresses
 * (common/decompressor.c says why not one per thread). libsquashfuse makes
 * a new one for every block it reads (ZSTD_decompress, uncompress): for an 8 KiB
 * metadata block that is most of the work (five path lookups in the test
 * image: 150 us against 55 us), for a 128 KiB zstd data block about a third
 * (220 us against 155 us). Gzip blocks are inflated by libdeflate. */
#ifndef CAPSULA_DECOMPRESSOR_H
#define CAPSULA_DECOMPRESSOR_H

#include <squashfuse/squashfuse.h>
#include <squashfuse/decompress.h>

/* The decompressor for a squashfs compression id: one of these for zstd
 * and gzip, libsquashfuse's own for the others; NULL when there is none. */
sqfs_decompressor decompressor_for(int compression);

/* Have fs, just initialised by sqfs_init, decompress with it. */
void decompressor_install(sqfs *fs);

#endif
