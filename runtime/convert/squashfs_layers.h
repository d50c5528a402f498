/* Squashfs images as the layers of an image being made (a recipe's base
 * and its steps' layers), read with libsquashfs: each layer's tree merged
 * in order, overlayfs's own whiteouts (a character device 0:0) and opaque
 * directories (user.overlay.opaque) applied as the kernel applied them
 * while the steps ran, then each surviving file's data read from the
 * layer that holds it. Owners, modes, times, links, devices and extended
 * attributes come as the layers have them; overlayfs's and capsula's
 * private attributes do not. */
#ifndef CAPSULA_SQUASHFS_LAYERS_H
#define CAPSULA_SQUASHFS_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/convert/budget.h"
#include "runtime/convert/image_tree.h"
#include "runtime/convert/squashfs_writer.h"

/* One layer: a squashfs image, at offset in its file (a SIF's partition). */
struct squashfs_layer {
	const char *path;
	uint64_t offset;
};

struct squashfs_layer_set;

int squashfs_layers_open(struct squashfs_layer_set **out, const struct squashfs_layer *layers,
                         size_t count, capsula_error *err);
/* Apply every layer's entries to t (layers numbered from 0, bottom first). */
int squashfs_layers_merge(struct squashfs_layer_set *set, struct tree *t,
                          struct build_budget *budget, capsula_error *err);
/* Before any file's data: the layers' fragment blocks (small files and
 * the tails of larger ones, packed) that t keeps at least half of, copied
 * into w as they are stored when w takes the layer's blocks; the files
 * in them then point there instead of being packed and compressed again.
 * Blocks of which less is kept are left, not to carry dead bytes. */
int squashfs_layers_take_fragments(struct squashfs_layer_set *set, struct tree *t,
                                   struct squashfs_writer *w, capsula_error *err);
/* The data of a regular file the merge left in t, into w. */
int squashfs_layers_copy(struct squashfs_layer_set *set, struct tree_inode *inode,
                         struct squashfs_writer *w, capsula_error *err);
/* The same data, given to sink in pieces (holes as zeros). */
typedef int (*squashfs_data_sink)(void *arg, const void *data, size_t size, capsula_error *err);
int squashfs_layers_read(struct squashfs_layer_set *set, const struct tree_inode *inode,
                         squashfs_data_sink sink, void *arg, capsula_error *err);
void squashfs_layers_close(struct squashfs_layer_set *set);

/* capsula verify: every table, inode, directory, extended attribute and
 * file's data of one image decoded (squashfs keeps no checksums: bytes
 * stored uncompressed can change unseen). 0 when all of it decodes; else
 * -1 with the first damage, "IMAGE is damaged: WHAT", and hint. */
#define EXIT_IMAGE_DAMAGED 1
struct squashfs_verify_counts {
	uint64_t files, directories, others, bytes;
};
int squashfs_image_verify(const struct squashfs_layer *image, const char *hint,
                          struct squashfs_verify_counts *counts, capsula_error *err);

#endif
