#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqfs/block.h>
#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir_reader.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/super.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_reader.h>

#include "runtime/convert/squashfs_layers.h"

#define HINT_LAYER "the layer is damaged; build again without the cache (--no-cache)"
#define COPY_CHUNK (128u << 10)
#define OVERLAY_OPAQUE "user.overlay.opaque"
#define NOT_TAKEN UINT32_MAX

/* A layer's image through its descriptor, from its offset on. */
struct offset_file {
	sqfs_file_t base;
	int fd;
	uint64_t offset, size;
};

struct layer {
	const char *path;
	const char *hint;            /* what to do about a damaged one */
	struct offset_file file;
	sqfs_super_t super;
	sqfs_compressor_t *cmp;
	sqfs_id_table_t *ids;
	sqfs_dir_reader_t *dirs;
	sqfs_data_reader_t *data;
	sqfs_xattr_reader_t *xattrs;
	sqfs_tree_node_t *root;
	/* Per fragment block of the layer: its number in the image being
	 * written when it went there whole, else NOT_TAKEN (NULL: none did). */
	sqfs_u32 *fragments_taken;
};

/* A file written from its layer's blocks as stored, kept by size to find
 * a later one holding the same bytes before it is written again. */
#define STORED_BUCKETS 1024
struct stored_file {
	struct tree_inode *inode;
	struct stored_file *next;
};

struct squashfs_layer_set {
	struct layer *layers;
	size_t count;
	struct stored_file *stored[STORED_BUCKETS];
};

static int file_read_at(sqfs_file_t *base, sqfs_u64 offset, void *buffer, size_t size)
{
	struct offset_file *f = (struct offset_file *)base;

	if (offset + size > f->size)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	while (size > 0) {
		ssize_t got = pread(f->fd, buffer, size, (off_t)(f->offset + offset));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return SQFS_ERROR_IO;
		buffer = (char *)buffer + got;
		offset += (sqfs_u64)got;
		size -= (size_t)got;
	}
	return 0;
}

static int file_write_at(sqfs_file_t *base, sqfs_u64 offset, const void *buffer, size_t size)
{
	(void)base;
	(void)offset;
	(void)buffer;
	(void)size;
	return SQFS_ERROR_IO;  /* layers are only read */
}

static sqfs_u64 file_get_size(const sqfs_file_t *base)
{
	return ((const struct offset_file *)base)->size;
}

static int file_truncate(sqfs_file_t *base, sqfs_u64 size)
{
	(void)base;
	(void)size;
	return SQFS_ERROR_IO;
}

static void file_destroy(sqfs_object_t *base)
{
	(void)base;  /* embedded in the layer, which closes the descriptor */
}

static int layer_fail(const struct layer *l, int code, const char *what, capsula_error *err)
{
	if (code == SQFS_ERROR_ALLOC)
		return fail(err, ENOMEM, NULL, "layer %s: %s", l->path, what);
	if (l->hint != NULL)
		return fail_status(err, EXIT_IMAGE_DAMAGED, 0, l->hint,
		                   "%s is damaged: %s (libsquashfs error %d)", l->path, what, code);
	return fail(err, 0, HINT_LAYER, "layer %s: %s (libsquashfs error %d)", l->path, what, code);
}

static int layer_open(struct layer *l, const struct squashfs_layer *spec, capsula_error *err)
{
	sqfs_compressor_config_t cfg;
	struct stat st;
	int ret;

	l->path = spec->path;
	l->file.fd = open(spec->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (l->file.fd < 0 || fstat(l->file.fd, &st) < 0)
		return fail(err, errno, NULL, "layer %s", spec->path);
	if ((uint64_t)st.st_size < spec->offset)
		return fail(err, 0, HINT_LAYER, "layer %s is shorter than its offset", spec->path);
	l->file.offset = spec->offset;
	l->file.size = (uint64_t)st.st_size - spec->offset;
	l->file.base.base.destroy = file_destroy;
	l->file.base.read_at = file_read_at;
	l->file.base.write_at = file_write_at;
	l->file.base.get_size = file_get_size;
	l->file.base.truncate = file_truncate;
	ret = sqfs_super_read(&l->super, &l->file.base);
	if (ret != 0)
		return layer_fail(l, ret, "superblock", err);
	ret = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)l->super.compression_id,
	                                  l->super.block_size, SQFS_COMP_FLAG_UNCOMPRESS);
	if (ret == 0)
		ret = sqfs_compressor_create(&cfg, &l->cmp);
	if (ret == 0 && (l->super.flags & SQFS_FLAG_COMPRESSOR_OPTIONS))
		ret = l->cmp->read_options(l->cmp, &l->file.base) < 0 ? SQFS_ERROR_CORRUPTED : 0;
	if (ret != 0)
		return layer_fail(l, ret, "compressor", err);
	l->ids = sqfs_id_table_create(0);
	l->dirs = sqfs_dir_reader_create(&l->super, l->cmp, &l->file.base, 0);
	l->data = sqfs_data_reader_create(&l->file.base, l->super.block_size, l->cmp, 0);
	l->xattrs = sqfs_xattr_reader_create(0);
	if (l->ids == NULL || l->dirs == NULL || l->data == NULL || l->xattrs == NULL)
		return fail(err, ENOMEM, NULL, "layer %s", l->path);
	ret = sqfs_id_table_read(l->ids, &l->file.base, &l->super, l->cmp);
	if (ret == 0)
		ret = sqfs_data_reader_load_fragment_table(l->data, &l->super);
	if (ret == 0 && !(l->super.flags & SQFS_FLAG_NO_XATTRS))
		ret = sqfs_xattr_reader_load(l->xattrs, &l->super, &l->file.base, l->cmp);
	if (ret == 0)
		ret = sqfs_dir_reader_get_full_hierarchy(l->dirs, l->ids, NULL, 0, &l->root);
	if (ret != 0)
		return layer_fail(l, ret, "tables", err);
	return 0;
}

int squashfs_layers_open(struct squashfs_layer_set **out, const struct squashfs_layer *layers,
                         size_t count, capsula_error *err)
{
	struct squashfs_layer_set *set = calloc(1, sizeof *set);

	*out = set;
	if (set == NULL || (set->layers = calloc(count ? count : 1, sizeof *set->layers)) == NULL)
		return fail(err, ENOMEM, NULL, "layers");
	for (size_t i = 0; i < count; i++) {
		set->layers[i].file.fd = -1;
		set->count = i + 1;
		if (layer_open(&set->layers[i], &layers[i], err) < 0)
			return -1;
	}
	return 0;
}

static void layer_close(struct layer *l)
{
	if (l->root != NULL)
		sqfs_dir_tree_destroy(l->root);
	sqfs_destroy(l->xattrs);
	sqfs_destroy(l->data);
	sqfs_destroy(l->dirs);
	sqfs_destroy(l->ids);
	sqfs_destroy(l->cmp);
	free(l->fragments_taken);
	if (l->file.fd >= 0)
		close(l->file.fd);
}

void squashfs_layers_close(struct squashfs_layer_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++)
		layer_close(&set->layers[i]);
	for (size_t i = 0; i < STORED_BUCKETS; i++)
		while (set->stored[i] != NULL) {
			struct stored_file *next = set->stored[i]->next;

			free(set->stored[i]);
			set->stored[i] = next;
		}
	free(set->layers);
	free(set);
}

/* ---------------------------------------------------------------- the merge */

/* Names of hard-linked inodes seen in the layer being merged. */
struct link_name {
	sqfs_u32 number;
	char *path;
};

struct link_names {
	struct link_name *items;
	size_t count;
};

/* The name the inode was first seen under, or NULL (and it is noted). */
static const char *first_name(struct link_names *links, sqfs_u32 number, const char *path,
                              bool *failed)
{
	struct link_name *grown;

	for (size_t i = 0; i < links->count; i++)
		if (links->items[i].number == number)
			return links->items[i].path;
	grown = realloc(links->items, (links->count + 1) * sizeof *grown);
	if (grown == NULL) {
		*failed = true;
		return NULL;
	}
	links->items = grown;
	grown[links->count].number = number;
	grown[links->count].path = strdup(path);
	*failed = grown[links->count].path == NULL;
	links->count += !*failed;
	return NULL;
}

struct merge {
	struct layer *layer;
	struct tree *tree;
	struct build_budget *budget;
	struct link_names links;
	capsula_error *err;
	struct tree_xattr xattrs[64];
	size_t xattr_count;
	bool opaque;
	/* What a build step's emulated root recorded (fake_root.h). */
	bool has_owner, has_device;
	uint32_t uid, gid;
	mode_t device_type;
	uint32_t major, minor;
};

/* user.capsula.owner "UID:GID", user.capsula.device "c MAJOR MINOR". */
static void take_recorded(struct merge *m, const char *key, const void *value, size_t size)
{
	char text[64];
	unsigned long long uid, gid, major, minor;
	char type;

	snprintf(text, sizeof text, "%.*s", (int)(size < sizeof text ? size : sizeof text - 1),
	         (const char *)value);
	if (strcmp(key, "user.capsula.owner") == 0 && sscanf(text, "%llu:%llu", &uid, &gid) == 2 &&
	    uid < UINT32_MAX && gid < UINT32_MAX) {
		m->has_owner = true;
		m->uid = (uint32_t)uid;
		m->gid = (uint32_t)gid;
	} else if (strcmp(key, "user.capsula.device") == 0 &&
	           sscanf(text, "%c %llu %llu", &type, &major, &minor) == 3 &&
	           (type == 'c' || type == 'b') && major < (1u << 12) && minor < (1u << 20)) {
		m->has_device = true;
		m->device_type = type == 'c' ? S_IFCHR : S_IFBLK;
		m->major = (uint32_t)major;
		m->minor = (uint32_t)minor;
	}
}

static void free_xattrs(struct merge *m)
{
	for (size_t i = 0; i < m->xattr_count; i++) {
		free(m->xattrs[i].key);
		free(m->xattrs[i].value);
	}
	m->xattr_count = 0;
	m->opaque = m->has_owner = m->has_device = false;
}

/* Each of the inode's extended attributes, read and handed to take (when
 * not NULL, which returns 0 or a libsquashfs error); 0, or that error. */
typedef int (*xattr_taker)(void *arg, const char *name, const sqfs_xattr_value_t *value);

static int walk_xattrs(struct layer *l, const sqfs_inode_generic_t *inode, xattr_taker take,
                       void *arg)
{
	sqfs_xattr_id_t desc;
	sqfs_u32 index;
	int ret;

	if (sqfs_inode_get_xattr_index(inode, &index) != 0 || index == 0xFFFFFFFF)
		return 0;
	ret = sqfs_xattr_reader_get_desc(l->xattrs, index, &desc);
	if (ret == 0)
		ret = sqfs_xattr_reader_seek_kv(l->xattrs, &desc);
	for (sqfs_u32 i = 0; ret == 0 && i < desc.count; i++) {
		sqfs_xattr_entry_t *key = NULL;
		sqfs_xattr_value_t *value = NULL;

		ret = sqfs_xattr_reader_read_key(l->xattrs, &key);
		if (ret == 0)
			ret = sqfs_xattr_reader_read_value(l->xattrs, key, &value);
		if (ret == 0 && take != NULL)
			ret = take(arg, (const char *)key->key, value);
		free(key);
		free(value);
	}
	return ret;
}

/* One attribute for the merge: overlayfs's opaque mark taken out as such,
 * its other private ones and capsula's left out. */
static int take_xattr(void *arg, const char *name, const sqfs_xattr_value_t *value)
{
	struct merge *m = arg;

	if (strcmp(name, OVERLAY_OPAQUE) == 0) {
		m->opaque = value->size == 1 && value->value[0] == 'y';
	} else if (strncmp(name, "user.capsula.", 13) == 0) {
		take_recorded(m, name, value->value, value->size);
	} else if (strncmp(name, "user.overlay.", 13) != 0 &&
	           m->xattr_count < sizeof m->xattrs / sizeof m->xattrs[0]) {
		char *copy = strdup(name);
		unsigned char *bytes = malloc(value->size ? value->size : 1);

		if (copy == NULL || bytes == NULL) {
			free(copy);
			free(bytes);
			return SQFS_ERROR_ALLOC;
		}
		/* Freed by free_xattrs() once the entry is merged. */
		/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
		memcpy(bytes, value->value, value->size);
		m->xattrs[m->xattr_count].key = copy;
		m->xattrs[m->xattr_count].value = (void *)bytes;
		m->xattrs[m->xattr_count].size = value->size;
		m->xattr_count++;
		/* NOLINTEND(clang-analyzer-unix.Malloc) */
	}
	return 0;
}

/* The inode's attributes, as take_xattr keeps them. */
static int read_xattrs(struct merge *m, const sqfs_inode_generic_t *inode)
{
	int ret;

	free_xattrs(m);
	ret = walk_xattrs(m->layer, inode, take_xattr, m);
	if (ret != 0)
		return layer_fail(m->layer, ret, "extended attributes", m->err);
	return 0;
}

static uint32_t devno_of(const sqfs_inode_generic_t *inode)
{
	return inode->base.type == SQFS_INODE_EXT_CDEV || inode->base.type == SQFS_INODE_EXT_BDEV ?
	       inode->data.dev_ext.devno : inode->data.dev.devno;
}

/* A file whose block list has holes. */
static bool has_holes(const sqfs_inode_generic_t *inode)
{
	size_t blocks = sqfs_inode_get_file_block_count(inode);

	for (size_t i = 0; i < blocks; i++)
		if (SQFS_IS_SPARSE_BLOCK(inode->extra[i]))
			return true;
	return false;
}

static int apply(struct merge *m, const char *path, mode_t mode, const sqfs_tree_node_t *node,
                 const char *hardlink)
{
	const sqfs_inode_generic_t *inode = node->inode;
	struct tree_entry e = {
		.path = path, .mode = mode, .uid = node->uid, .gid = node->gid,
		.mtime = inode->base.mod_time, .xattrs = m->xattrs, .xattr_count = m->xattr_count,
		.hardlink = hardlink, .entry = (uint64_t)(uintptr_t)node,
	};
	struct tree_inode *data_inode;
	char target[4097];
	uint64_t size = 0;

	if (S_ISLNK(mode)) {
		size_t n = inode->data.slink.target_size < sizeof target - 1 ?
		           inode->data.slink.target_size : sizeof target - 1;

		memcpy(target, inode->extra, n);
		target[n] = '\0';
		e.symlink = target;
	} else if (S_ISCHR(mode) || S_ISBLK(mode)) {
		uint32_t devno = devno_of(inode);

		e.rdev_major = (devno & 0xfff00) >> 8;
		e.rdev_minor = (devno & 0xff) | ((devno >> 12) & 0xfff00);
	} else if (S_ISREG(mode) && hardlink == NULL) {
		sqfs_inode_get_file_size(inode, &size);
		e.size = size;
		e.sparse = has_holes(inode);
	}
	if (m->has_owner) {
		e.uid = m->uid;
		e.gid = m->gid;
	}
	if (m->has_device && S_ISREG(mode) && size == 0) {
		e.mode = m->device_type | (mode & 07777);
		e.rdev_major = m->major;
		e.rdev_minor = m->minor;
		e.size = 0;
	}
	if (m->budget != NULL && budget_charge(m->budget, 1, BUDGET_ENTRY_BYTES + strlen(path),
	                                       path, m->err) < 0)
		return -1;
	return tree_apply(m->tree, &e, &data_inode, m->err);
}

static int merge_below(struct merge *m, const sqfs_tree_node_t *dir, const char *prefix)
{
	for (const sqfs_tree_node_t *n = dir->children; n != NULL; n = n->next) {
		const sqfs_inode_generic_t *inode = n->inode;
		mode_t mode = inode->base.mode;
		const char *hardlink = NULL;
		char *path;
		bool failed = false;
		int ret;

		if (asprintf(&path, "%s%s%s", prefix, prefix[0] ? "/" : "", (const char *)n->name) < 0)
			return fail(m->err, ENOMEM, NULL, "layer %s", m->layer->path);
		/* overlayfs's whiteout: a character device 0:0. */
		if (S_ISCHR(mode) && devno_of(inode) == 0) {
			char *whiteout;

			ret = asprintf(&whiteout, "%s%s.wh.%s", prefix, prefix[0] ? "/" : "",
			               (const char *)n->name) < 0 ? -1 : 0;
			if (ret == 0) {
				struct tree_entry e = {.path = whiteout, .mode = S_IFREG | 0600};
				struct tree_inode *ignored;

				ret = tree_apply(m->tree, &e, &ignored, m->err);
				free(whiteout);
			} else {
				fail(m->err, ENOMEM, NULL, "layer %s", m->layer->path);
			}
			free(path);
			if (ret < 0)
				return -1;
			continue;
		}
		if (inode->base.type == SQFS_INODE_EXT_FILE && inode->data.file_ext.nlink > 1)
			hardlink = first_name(&m->links, inode->base.inode_number, path, &failed);
		ret = failed ? fail(m->err, ENOMEM, NULL, "layer %s", m->layer->path) :
		      read_xattrs(m, inode);
		if (ret == 0)
			ret = apply(m, path, mode, n, hardlink);
		/* overlayfs's opaque directory: what lower layers had there is gone. */
		if (ret == 0 && S_ISDIR(mode) && m->opaque) {
			char *marker;

			if (asprintf(&marker, "%s/.wh..wh..opq", path) < 0) {
				ret = fail(m->err, ENOMEM, NULL, "layer %s", m->layer->path);
			} else {
				struct tree_entry e = {.path = marker, .mode = S_IFREG | 0600};
				struct tree_inode *ignored;

				free_xattrs(m);
				ret = tree_apply(m->tree, &e, &ignored, m->err);
				free(marker);
			}
		}
		free_xattrs(m);
		if (ret == 0 && S_ISDIR(mode))
			ret = merge_below(m, n, path);
		free(path);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int squashfs_layers_merge(struct squashfs_layer_set *set, struct tree *t,
                          struct build_budget *budget, capsula_error *err)
{
	for (size_t i = 0; i < set->count; i++) {
		struct merge m = {.layer = &set->layers[i], .tree = t, .budget = budget, .err = err};
		int ret;

		t->layer = (unsigned)i;
		ret = read_xattrs(&m, m.layer->root->inode);
		if (ret == 0) {
			/* The root's own metadata: its mode, owner and attributes. */
			struct tree_entry e = {
				.path = "", .mode = m.layer->root->inode->base.mode,
				.uid = m.layer->root->uid, .gid = m.layer->root->gid,
				.mtime = m.layer->root->inode->base.mod_time,
				.xattrs = m.xattrs, .xattr_count = m.xattr_count,
			};
			struct tree_inode *ignored;

			ret = tree_apply(t, &e, &ignored, err);
		}
		free_xattrs(&m);
		if (ret == 0)
			ret = merge_below(&m, m.layer->root, "");
		for (size_t k = 0; k < m.links.count; k++)
			free(m.links.items[k].path);
		free(m.links.items);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- fragments */

/* A file's inode in the layer that holds its data: a squashfs layer's
 * entry number is its node's address. */
static const sqfs_inode_generic_t *source_inode(const struct tree_inode *inode)
{
	/* NOLINTNEXTLINE(performance-no-int-to-ptr) */
	return ((const sqfs_tree_node_t *)(uintptr_t)inode->entry)->inode;
}

/* Where the piece of a layer's file that lies in a fragment block is: its
 * block, offset and length; false when it has none. */
static bool fragment_piece(const struct layer *l, const sqfs_inode_generic_t *inode,
                           sqfs_u32 *index, sqfs_u32 *offset, uint64_t *length)
{
	sqfs_u64 size = 0;

	if ((inode->base.type != SQFS_INODE_FILE && inode->base.type != SQFS_INODE_EXT_FILE) ||
	    sqfs_inode_get_frag_location(inode, index, offset) != 0 || *index == 0xFFFFFFFF ||
	    *index >= l->super.fragment_entry_count || sqfs_inode_get_file_size(inode, &size) != 0)
		return false;
	*length = size % l->super.block_size;
	return *length > 0;
}

/* Hard links are one file: each counted once, by its inode number. */
static bool first_sight(unsigned char *seen, const struct layer *l, sqfs_u32 number)
{
	bool first;

	if (number > l->super.inode_count)
		return true;
	first = !(seen[number / 8] & (1u << (number % 8)));
	seen[number / 8] |= (unsigned char)(1u << (number % 8));
	return first;
}

/* The bytes of each fragment block that the layer's files use. */
static void count_pieces(const struct layer *l, const sqfs_tree_node_t *node, uint64_t *used,
                         unsigned char *seen)
{
	for (; node != NULL; node = node->next) {
		sqfs_u32 index, offset;
		uint64_t length;

		if (node->children != NULL)
			count_pieces(l, node->children, used, seen);
		if (fragment_piece(l, node->inode, &index, &offset, &length) &&
		    first_sight(seen, l, node->inode->base.inode_number))
			used[index] += length;
	}
}

struct kept_pieces {
	struct squashfs_layer_set *set;
	uint64_t **kept;            /* per layer and fragment block: bytes the image keeps */
	unsigned char **seen;
};

static int count_kept(struct tree_inode *inode, void *arg)
{
	struct kept_pieces *k = arg;
	struct layer *l;
	const sqfs_inode_generic_t *source;
	sqfs_u32 index, offset;
	uint64_t length;

	if (inode->data_written || inode->layer >= k->set->count || k->kept[inode->layer] == NULL)
		return 0;
	l = &k->set->layers[inode->layer];
	source = source_inode(inode);
	if (fragment_piece(l, source, &index, &offset, &length) &&
	    first_sight(k->seen[inode->layer], l, source->base.inode_number))
		k->kept[inode->layer][index] += length;
	return 0;
}

/* Copy the layer's fragment blocks that the image keeps at least half of. */
static int take_fragments(struct layer *l, const uint64_t *kept, struct squashfs_writer *w,
                          capsula_error *err)
{
	size_t count = l->super.fragment_entry_count;
	uint64_t *used = calloc(count, sizeof *used);
	unsigned char *seen = calloc(l->super.inode_count / 8 + 1, 1);
	unsigned char *block = malloc(l->super.block_size);
	sqfs_frag_table_t *table = sqfs_frag_table_create(0);
	int ret = -1;

	l->fragments_taken = malloc(count * sizeof *l->fragments_taken);
	if (used == NULL || seen == NULL || block == NULL || table == NULL ||
	    l->fragments_taken == NULL) {
		fail(err, ENOMEM, NULL, "layer %s", l->path);
		goto out;
	}
	count_pieces(l, l->root, used, seen);
	ret = sqfs_frag_table_read(table, &l->file.base, &l->super, l->cmp);
	if (ret != 0) {
		ret = layer_fail(l, ret, "fragment table", err);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		sqfs_fragment_t where;
		sqfs_u32 size;

		l->fragments_taken[i] = NOT_TAKEN;
		if (kept[i] == 0 || kept[i] * 2 < used[i])
			continue;
		ret = sqfs_frag_table_lookup(table, (sqfs_u32)i, &where);
		if (ret == 0) {
			size = SQFS_ON_DISK_BLOCK_SIZE(where.size);
			ret = size == 0 || size > l->super.block_size ? SQFS_ERROR_CORRUPTED :
			      l->file.base.read_at(&l->file.base, where.start_offset, block, size);
		}
		if (ret != 0) {
			ret = layer_fail(l, ret, "fragment block", err);
			goto out;
		}
		if (squashfs_writer_stored_fragment(w, where.size, block, &l->fragments_taken[i],
		                                    err) < 0) {
			ret = -1;
			goto out;
		}
	}
	ret = 0;
out:
	sqfs_destroy(table);
	free(block);
	free(seen);
	free(used);
	return ret;
}

int squashfs_layers_take_fragments(struct squashfs_layer_set *set, struct tree *t,
                                   struct squashfs_writer *w, capsula_error *err)
{
	uint64_t **kept = calloc(set->count + 1, sizeof *kept);
	unsigned char **seen = calloc(set->count + 1, sizeof *seen);
	struct kept_pieces k = {.set = set, .kept = kept, .seen = seen};
	int ret = 0;

	if (kept == NULL || seen == NULL) {
		free(kept);
		free(seen);
		return fail(err, ENOMEM, NULL, "layers");
	}
	for (size_t i = 0; i < set->count; i++) {
		struct layer *l = &set->layers[i];

		if (l->super.fragment_entry_count == 0 ||
		    !squashfs_writer_takes_blocks(w, l->super.compression_id, l->super.block_size))
			continue;
		kept[i] = calloc(l->super.fragment_entry_count, sizeof *kept[i]);
		seen[i] = calloc(l->super.inode_count / 8 + 1, 1);
		if (kept[i] == NULL || seen[i] == NULL)
			ret = fail(err, ENOMEM, NULL, "layer %s", l->path);
	}
	if (ret == 0)
		ret = tree_for_each_file(t, count_kept, &k);
	for (size_t i = 0; i < set->count && ret == 0; i++)
		if (kept[i] != NULL)
			ret = take_fragments(&set->layers[i], kept[i], w, err);
	for (size_t i = 0; i < set->count; i++) {
		free(kept[i]);
		free(seen[i]);
	}
	free(kept);
	free(seen);
	return ret;
}

/* ---------------------------------------------------------------- data */

static int copy_with_holes(struct layer *l, const sqfs_inode_generic_t *inode,
                           struct tree_inode *target, struct squashfs_writer *w,
                           capsula_error *err)
{
	size_t blocks = sqfs_inode_get_file_block_count(inode);
	uint64_t block_size = l->super.block_size, size = target->size;
	unsigned char *buf = malloc(l->super.block_size);

	if (buf == NULL)
		return fail(err, ENOMEM, NULL, "layer %s", l->path);
	if (squashfs_writer_begin_sparse(w, target, err) < 0) {
		free(buf);
		return -1;
	}
	for (uint64_t at = 0, i = 0; at < size; at += block_size, i++) {
		size_t n = size - at < block_size ? (size_t)(size - at) : (size_t)block_size;
		sqfs_s32 got;

		if (i < blocks && SQFS_IS_SPARSE_BLOCK(inode->extra[i]))
			continue;
		got = sqfs_data_reader_read(l->data, inode, at, buf, (sqfs_u32)n);
		if (got < 0 || (size_t)got != n) {
			free(buf);
			return layer_fail(l, got < 0 ? got : SQFS_ERROR_CORRUPTED, "file data", err);
		}
		if (squashfs_writer_sparse_data(w, at, buf, n, err) < 0) {
			free(buf);
			return -1;
		}
	}
	free(buf);
	return squashfs_writer_end_sparse(w, err);
}

/* A file whose layer was compressed as the output is: its full blocks go
 * as the layer stores them, without being uncompressed and compressed
 * again; the tail (a fragment in the layer) points into the layer's
 * fragment block when the image took that whole (tail_block), and is
 * compressed anew otherwise. Called once no earlier copy was found. */
static int copy_stored(struct layer *l, const sqfs_inode_generic_t *inode,
                       struct tree_inode *target, sqfs_u32 tail_block, sqfs_u32 tail_offset,
                       struct squashfs_writer *w, capsula_error *err)
{
	size_t blocks = sqfs_inode_get_file_block_count(inode);
	uint64_t block_size = l->super.block_size, at, tail = (uint64_t)blocks * block_size;
	unsigned char *buf = malloc(l->super.block_size);
	int ret = -1;

	if (buf == NULL)
		return fail(err, ENOMEM, NULL, "layer %s", l->path);
	if (squashfs_writer_begin_sparse(w, target, err) < 0)
		goto out;
	squashfs_writer_sparse_unique(w);
	sqfs_inode_get_file_block_start(inode, &at);
	for (size_t i = 0; i < blocks; i++) {
		sqfs_u32 word = inode->extra[i], size = SQFS_ON_DISK_BLOCK_SIZE(word);
		int got;

		if (size == 0)
			continue;  /* a hole stays one */
		if (size > block_size) {
			layer_fail(l, SQFS_ERROR_CORRUPTED, "file data", err);
			goto out;
		}
		got = l->file.base.read_at(&l->file.base, at, buf, size);
		if (got != 0) {
			layer_fail(l, got, "file data", err);
			goto out;
		}
		if (squashfs_writer_sparse_stored(w, i, word, buf, err) < 0)
			goto out;
		at += size;
	}
	if (tail < target->size && tail_block != NOT_TAKEN) {
		squashfs_writer_sparse_fragment(w, tail_block, tail_offset);
	} else if (tail < target->size) {
		sqfs_u32 n = (sqfs_u32)(target->size - tail);
		sqfs_s32 got = sqfs_data_reader_read(l->data, inode, tail, buf, n);

		if (got < 0 || (sqfs_u32)got != n) {
			layer_fail(l, got < 0 ? got : SQFS_ERROR_CORRUPTED, "file data", err);
			goto out;
		}
		if (squashfs_writer_sparse_data(w, tail, buf, n, err) < 0)
			goto out;
	}
	ret = squashfs_writer_end_sparse(w, err);
out:
	free(buf);
	return ret;
}

/* ---------------------------------------------------------------- copies */

/* A file a step copied from a lower layer (cp, or overlayfs copying it up
 * to change its owner or mode) is stored again in the step's layer. The
 * image keeps it once: found before it is written, by its size, its block
 * list and then its bytes, rather than written whole and compared after
 * (the block writer's way, which is then left out for these files). */

static size_t stored_bucket(uint64_t size)
{
	return (size_t)((size ^ (size >> 17)) % STORED_BUCKETS);
}

static bool same_block_list(const sqfs_inode_generic_t *a, const sqfs_inode_generic_t *b)
{
	size_t blocks = sqfs_inode_get_file_block_count(a);
	sqfs_u32 a_index, a_offset, b_index, b_offset;

	sqfs_inode_get_frag_location(a, &a_index, &a_offset);
	sqfs_inode_get_frag_location(b, &b_index, &b_offset);
	return blocks == sqfs_inode_get_file_block_count(b) &&
	       (a_index == 0xFFFFFFFF) == (b_index == 0xFFFFFFFF) &&
	       memcmp(a->extra, b->extra, blocks * sizeof a->extra[0]) == 0;
}

/* Whether two files of the same size and block list hold the same bytes:
 * their stored blocks compared as stored, their tails as data. */
static int same_bytes(struct squashfs_layer_set *set, const struct tree_inode *a,
                      const struct tree_inode *b, bool *same, capsula_error *err)
{
	struct layer *la = &set->layers[a->layer], *lb = &set->layers[b->layer];
	const sqfs_inode_generic_t *ia = source_inode(a), *ib = source_inode(b);
	size_t blocks = sqfs_inode_get_file_block_count(ia);
	uint64_t block_size = la->super.block_size, tail = (uint64_t)blocks * block_size;
	unsigned char *pa = malloc(block_size), *pb = malloc(block_size);
	sqfs_u64 at_a, at_b;
	int ret = 0;

	*same = pa != NULL && pb != NULL;
	if (!*same) {
		free(pa);
		free(pb);
		return fail(err, ENOMEM, NULL, "layer %s", la->path);
	}
	sqfs_inode_get_file_block_start(ia, &at_a);
	sqfs_inode_get_file_block_start(ib, &at_b);
	for (size_t i = 0; i < blocks && *same && ret == 0; i++) {
		sqfs_u32 size = SQFS_ON_DISK_BLOCK_SIZE(ia->extra[i]);

		if (size > block_size)
			ret = layer_fail(la, SQFS_ERROR_CORRUPTED, "file data", err);
		else if (size > 0 && (la->file.base.read_at(&la->file.base, at_a, pa, size) != 0 ||
		                      lb->file.base.read_at(&lb->file.base, at_b, pb, size) != 0))
			ret = layer_fail(la, SQFS_ERROR_IO, "file data", err);
		else
			*same = memcmp(pa, pb, size) == 0;
		at_a += size;
		at_b += size;
	}
	if (ret == 0 && *same && tail < a->size) {
		sqfs_u32 n = (sqfs_u32)(a->size - tail);

		if (sqfs_data_reader_read(la->data, ia, tail, pa, n) != (sqfs_s32)n ||
		    sqfs_data_reader_read(lb->data, ib, tail, pb, n) != (sqfs_s32)n)
			ret = layer_fail(la, SQFS_ERROR_CORRUPTED, "file data", err);
		else
			*same = memcmp(pa, pb, n) == 0;
	}
	free(pa);
	free(pb);
	return ret;
}

/* An earlier file written as stored that holds the same bytes, or NULL. */
static int find_stored_copy(struct squashfs_layer_set *set, const struct tree_inode *target,
                            struct tree_inode **earlier, capsula_error *err)
{
	*earlier = NULL;
	for (struct stored_file *f = set->stored[stored_bucket(target->size)]; f; f = f->next) {
		bool same = false;

		if (f->inode->size != target->size ||
		    !same_block_list(source_inode(f->inode), source_inode(target)))
			continue;
		if (same_bytes(set, f->inode, target, &same, err) < 0)
			return -1;
		if (same) {
			*earlier = f->inode;
			return 0;
		}
	}
	return 0;
}

static int remember_stored(struct squashfs_layer_set *set, struct tree_inode *inode,
                           capsula_error *err)
{
	struct stored_file *f = malloc(sizeof *f);
	size_t bucket = stored_bucket(inode->size);

	if (f == NULL)
		return fail(err, ENOMEM, NULL, "file data");
	*f = (struct stored_file){.inode = inode, .next = set->stored[bucket]};
	set->stored[bucket] = f;
	return 0;
}

static int copy_stored_once(struct squashfs_layer_set *set, struct layer *l,
                            struct tree_inode *target, sqfs_u32 tail_block, sqfs_u32 tail_offset,
                            struct squashfs_writer *w, capsula_error *err)
{
	struct tree_inode *earlier;

	if (find_stored_copy(set, target, &earlier, err) < 0)
		return -1;
	if (earlier != NULL)
		return squashfs_writer_same_data(w, target, earlier, err);
	if (copy_stored(l, source_inode(target), target, tail_block, tail_offset, w, err) < 0)
		return -1;
	return remember_stored(set, target, err);
}

int squashfs_layers_read(struct squashfs_layer_set *set, const struct tree_inode *inode,
                         squashfs_data_sink sink, void *arg, capsula_error *err)
{
	struct layer *l = &set->layers[inode->layer];
	const sqfs_inode_generic_t *source = source_inode(inode);
	static __thread unsigned char buf[COPY_CHUNK];

	for (uint64_t at = 0; at < inode->size;) {
		uint64_t left = inode->size - at;
		sqfs_s32 got = sqfs_data_reader_read(l->data, source, at, buf,
		                                     left < COPY_CHUNK ? (sqfs_u32)left : COPY_CHUNK);

		if (got <= 0)
			return layer_fail(l, got < 0 ? got : SQFS_ERROR_CORRUPTED, "file data", err);
		if (sink(arg, buf, (size_t)got, err) < 0)
			return -1;
		at += (uint64_t)got;
	}
	return 0;
}

static int append_to_writer(void *writer, const void *data, size_t size, capsula_error *err)
{
	return squashfs_writer_append(writer, data, size, err);
}

int squashfs_layers_copy(struct squashfs_layer_set *set, struct tree_inode *target,
                         struct squashfs_writer *w, capsula_error *err)
{
	struct layer *l = &set->layers[target->layer];
	const sqfs_inode_generic_t *source = source_inode(target);
	sqfs_u32 taken = NOT_TAKEN, index, offset = 0;
	uint64_t length;

	if (l->fragments_taken != NULL && fragment_piece(l, source, &index, &offset, &length))
		taken = l->fragments_taken[index];
	if (target->size >= l->super.block_size &&
	    squashfs_writer_takes_blocks(w, l->super.compression_id, l->super.block_size))
		return copy_stored_once(set, l, target, taken, offset, w, err);
	if (target->sparse)
		return copy_with_holes(l, source, target, w, err);
	if (taken != NOT_TAKEN && target->size < l->super.block_size)
		return squashfs_writer_fragment_file(w, target, taken, offset, err);
	if (squashfs_writer_begin_file(w, target, err) < 0 ||
	    squashfs_layers_read(set, target, append_to_writer, w, err) < 0)
		return -1;
	return squashfs_writer_end_file(w, err);
}

/* ---------------------------------------------------------------- verify */

struct verify {
	struct layer *layer;
	struct squashfs_verify_counts *counts;
	unsigned char *buffer;
	char what[PATH_MAX + 96];
	capsula_error *err;
};

static const char *path_of(const sqfs_tree_node_t *node, char *out, size_t size)
{
	char *path = NULL;

	if (sqfs_tree_node_get_path(node, &path) != 0 || path == NULL)
		snprintf(out, size, "inode %u", (unsigned)node->inode->base.inode_number);
	else
		snprintf(out, size, "%s", path);
	sqfs_free(path);
	return out;
}

static int verify_xattrs(struct verify *v, const sqfs_tree_node_t *node)
{
	char path[PATH_MAX];
	int ret = walk_xattrs(v->layer, node->inode, NULL, NULL);

	if (ret == 0)
		return 0;
	snprintf(v->what, sizeof v->what, "%s: extended attributes",
	         path_of(node, path, sizeof path));
	return layer_fail(v->layer, ret, v->what, v->err);
}

static int verify_data(struct verify *v, const sqfs_tree_node_t *node)
{
	struct layer *l = v->layer;
	sqfs_u64 size = 0;
	char path[PATH_MAX];

	sqfs_inode_get_file_size(node->inode, &size);
	for (sqfs_u64 at = 0; at < size; at += COPY_CHUNK) {
		sqfs_u32 n = size - at < COPY_CHUNK ? (sqfs_u32)(size - at) : COPY_CHUNK;
		sqfs_s32 got = sqfs_data_reader_read(l->data, node->inode, at, v->buffer, n);

		if (got < 0 || (sqfs_u32)got != n) {
			snprintf(v->what, sizeof v->what, "%s: the data at byte %llu cannot be read",
			         path_of(node, path, sizeof path), (unsigned long long)at);
			return layer_fail(l, got < 0 ? got : SQFS_ERROR_CORRUPTED, v->what, v->err);
		}
		v->counts->bytes += n;
	}
	v->counts->files++;
	return 0;
}

static int verify_below(struct verify *v, const sqfs_tree_node_t *dir)
{
	for (const sqfs_tree_node_t *n = dir->children; n != NULL; n = n->next) {
		int type = n->inode->base.type;

		if (verify_xattrs(v, n) < 0)
			return -1;
		if (type == SQFS_INODE_FILE || type == SQFS_INODE_EXT_FILE) {
			if (verify_data(v, n) < 0)
				return -1;
		} else if (type == SQFS_INODE_DIR || type == SQFS_INODE_EXT_DIR) {
			v->counts->directories++;
			if (verify_below(v, n) < 0)
				return -1;
		} else {
			v->counts->others++;
		}
	}
	return 0;
}

int squashfs_image_verify(const struct squashfs_layer *image, const char *hint,
                          struct squashfs_verify_counts *counts, capsula_error *err)
{
	struct layer l = {.hint = hint, .file.fd = -1};
	struct verify v = {.layer = &l, .counts = counts, .err = err};
	int ret = -1;

	memset(counts, 0, sizeof *counts);
	if (layer_open(&l, image, err) < 0)
		goto out;
	/* Every byte the superblock says the image has must be there. */
	if (l.super.bytes_used > l.file.size) {
		ret = fail_status(err, EXIT_IMAGE_DAMAGED, 0, hint,
		                  "%s is damaged: it ends at byte %llu, before its %llu bytes",
		           image->path, (unsigned long long)l.file.size,
		           (unsigned long long)l.super.bytes_used);
		goto out;
	}
	v.buffer = malloc(COPY_CHUNK);
	if (v.buffer == NULL) {
		ret = fail(err, ENOMEM, NULL, "verify %s", image->path);
		goto out;
	}
	counts->directories = 1;
	if (verify_xattrs(&v, l.root) == 0 && verify_below(&v, l.root) == 0)
		ret = 0;
out:
	free(v.buffer);
	layer_close(&l);
	return ret;
}
