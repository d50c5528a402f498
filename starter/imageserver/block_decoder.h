/* Reading one data block of the image and decompressing it into a buffer
 * of the block memory, for the block cache: the decompressor keeps its
 * context from block to block (common/decompressor.c). */
#ifndef CAPSULA_BLOCK_DECODER_H
#define CAPSULA_BLOCK_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "starter/imageserver/block_memory.h"

struct block_decoder;

/* A decoder for blocks of up to block_size bytes in the image file fd,
 * whose squashfs starts at offset, compressed as the superblock's id
 * says, into buffers of memory (of block_size bytes); NULL when out of
 * memory or the compression is unknown. One per thread: it keeps a buffer
 * for the stored bytes. */
struct block_decoder *block_decoder_new(int fd, uint64_t offset, size_t block_size,
                                        int compression, struct block_memory *memory);
void block_decoder_free(struct block_decoder *d);

/* Read the block at position (in the squashfs) stored as header says, and
 * decompress it into a buffer of the decoder's memory (block_memory_put it
 * back). Returns 0, or -1 when the image cannot be read or the block does
 * not decode. */
int block_decoder_read(struct block_decoder *d, uint64_t position, uint32_t header,
                       void **data, size_t *size);

#endif
