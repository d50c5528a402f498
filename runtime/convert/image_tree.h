/* The merged file tree of an image being built, kept as metadata in memory
 * while file data streams straight into the squashfs image: layers applied
 * in order with OCI semantics (a later entry replaces an earlier one wholly,
 * .wh.NAME and .wh..wh..opq whiteouts hide what lower layers made, hard
 * links share one inode). Names are kept byte for byte. */
#ifndef CAPSULA_IMAGE_TREE_H
#define CAPSULA_IMAGE_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

struct sqfs_inode_generic_t;

/* Longest name squashfs stores. */
#define TREE_NAME_MAX 256
/* Longest symbolic link target and extended attribute Linux keeps. */
#define ENTRY_TARGET_MAX 4096
#define ENTRY_XATTR_MAX 65536

struct tree_xattr {
	char *key;
	void *value;
	size_t size;
};

/* One file, however many names it has. Never freed before the tree is:
 * the squashfs writer keeps pointers into regular files' ones while their
 * blocks are compressed. */
struct tree_inode {
	mode_t mode;              /* type and permission bits */
	uint32_t uid, gid;        /* its owner in the image */
	uint32_t mtime;
	uint32_t rdev_major, rdev_minor;
	uint32_t nlink;           /* names in the tree */
	uint64_t size;            /* regular files */
	char *target;             /* symbolic links */
	struct tree_xattr *xattrs;
	size_t xattr_count;
	unsigned layer;           /* regular files: where the data is: layer */
	uint64_t entry;           /* and entry number in it */
	bool sparse;              /* its data has holes */
	bool data_written;
	bool scheduled;            /* the build has planned reading its data */
	bool table_written;
	struct sqfs_inode_generic_t *sqfs;   /* the squashfs writer's inode */
	uint32_t number;          /* squashfs inode number; 0 until numbered */
	uint64_t ref;             /* where the writer put it */
	struct tree_inode *all_next;
};

/* One name in a directory. */
struct tree_node {
	char *name;
	struct tree_node *parent;
	struct tree_node *children, *prev, *next;   /* children unsorted */
	struct tree_node *hash_next;
	struct tree_inode *inode;
	unsigned layer;           /* the layer that made this entry */
	unsigned touched;         /* the last layer that made anything at or below */
};

struct tree {
	struct tree_node *root;
	struct tree_node **buckets;
	size_t bucket_count, node_count;
	struct tree_inode *inodes;   /* every inode ever made */
	bool whiteouts;              /* image layers: .wh. names are whiteouts */
	bool all_root;               /* every file root's, whatever its layer says */
	unsigned layer;              /* the layer being applied */
};

/* What an archive entry says, translated by the caller. */
struct tree_entry {
	const char *path;         /* as in the archive */
	mode_t mode;              /* type and permission bits */
	uint32_t uid, gid;        /* its owner, as the archive says */
	uint32_t mtime;
	uint32_t rdev_major, rdev_minor;
	uint64_t size;
	const char *symlink;      /* symbolic links: the target */
	const char *hardlink;     /* hard links: the path linked to */
	const struct tree_xattr *xattrs;
	size_t xattr_count;
	uint64_t entry;           /* number of the entry in its archive */
	bool sparse;              /* a regular file with holes */
	struct tree_inode *inode; /* a regular file whose data is already written */
};

int tree_init(struct tree *t, bool whiteouts, capsula_error *err);
void tree_free(struct tree *t);

/* Apply one entry of the current layer. Returns the inode now at the path
 * when it is a regular file that needs data from this entry, NULL with 0
 * for anything else (directories, links, whiteouts), -1 on error. */
int tree_apply(struct tree *t, const struct tree_entry *e, struct tree_inode **data_inode,
               capsula_error *err);

/* An inode for a regular file whose data is written before its entry is
 * applied (tree_entry.inode). */
struct tree_inode *tree_new_file_inode(struct tree *t);

/* Whether a layer entry's name is a whiteout. */
bool tree_is_whiteout(const char *path);

/* Add a file made by capsula itself (the image's run configuration). */
int tree_add_file(struct tree *t, const char *path, mode_t mode, uint64_t size,
                  struct tree_inode **inode, capsula_error *err);

/* Split a member name into a clean relative path: no leading '/' or "./",
 * no "." or empty parts. Returns -1 for a ".." part. "" is the root. */
int tree_clean_path(const char *name, char *out, size_t size);

/* Children of a directory sorted by name, as squashfs lists them; the
 * caller frees the array. */
struct tree_node **tree_sorted_children(const struct tree_node *dir, size_t *count);

/* Call fn for every name of a regular file in the tree (a file with
 * several names: once for each). */
int tree_for_each_file(struct tree *t, int (*fn)(struct tree_inode *inode, void *arg),
                       void *arg);

#endif
