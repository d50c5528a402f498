/* The fragment blocks of a squashfs image as it stores them, one line each:
 * the stored size and a hash of the stored bytes, for the build tests to
 * tell which of a layer's blocks an image took as they were.
 *   fragment-blocks IMAGE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqfs/block.h>
#include <sqfs/compressor.h>
#include <sqfs/frag_table.h>
#include <sqfs/io.h>
#include <sqfs/super.h>

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n-- > 0)
		h = (h ^ *p++) * 1099511628211ull;
	return h;
}

int main(int argc, char **argv)
{
	sqfs_compressor_config_t cfg;
	sqfs_compressor_t *cmp = NULL;
	sqfs_frag_table_t *table;
	sqfs_super_t super;
	sqfs_file_t *file;
	unsigned char *block;

	if (argc != 2) {
		fprintf(stderr, "usage: fragment-blocks IMAGE\n");
		return 2;
	}
	file = sqfs_open_file(argv[1], SQFS_FILE_OPEN_READ_ONLY);
	table = sqfs_frag_table_create(0);
	if (file == NULL || table == NULL || sqfs_super_read(&super, file) != 0 ||
	    sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)super.compression_id,
	                                super.block_size, SQFS_COMP_FLAG_UNCOMPRESS) != 0 ||
	    sqfs_compressor_create(&cfg, &cmp) != 0 ||
	    sqfs_frag_table_read(table, file, &super, cmp) != 0 ||
	    (block = malloc(super.block_size)) == NULL) {
		fprintf(stderr, "fragment-blocks: cannot read the fragment table of %s\n", argv[1]);
		return 1;
	}
	for (sqfs_u32 i = 0; i < super.fragment_entry_count; i++) {
		sqfs_fragment_t where;
		sqfs_u32 size;

		if (sqfs_frag_table_lookup(table, i, &where) != 0 ||
		    (size = SQFS_ON_DISK_BLOCK_SIZE(where.size)) > super.block_size ||
		    file->read_at(file, where.start_offset, block, size) != 0) {
			fprintf(stderr, "fragment-blocks: fragment block %u of %s\n", i, argv[1]);
			return 1;
		}
		printf("%u %016llx\n", (unsigned)size, (unsigned long long)fnv1a(block, size));
	}
	free(block);
	sqfs_destroy(table);
	sqfs_destroy(cmp);
	sqfs_destroy(file);
	return 0;
}
