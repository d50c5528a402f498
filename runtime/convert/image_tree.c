#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/convert/image_tree.h"

#define MAX_SYMLINK_HOPS 40
#define HINT_DAMAGED "the archive is damaged or hostile"

static size_t hash_name(const struct tree_node *parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static struct tree_node *lookup(const struct tree *t, const struct tree_node *parent,
                                const char *name, size_t len)
{
	struct tree_node *n = t->buckets[hash_name(parent, name, len) & (t->bucket_count - 1)];

	for (; n != NULL; n = n->hash_next)
		if (n->parent == parent && strncmp(n->name, name, len) == 0 && n->name[len] == '\0')
			return n;
	return NULL;
}

static int grow_buckets(struct tree *t)
{
	size_t count = t->bucket_count * 2;
	struct tree_node **buckets = calloc(count, sizeof(struct tree_node *));

	if (buckets == NULL)
		return -1;
	for (size_t i = 0; i < t->bucket_count; i++) {
		struct tree_node *n = t->buckets[i], *next;

		for (; n != NULL; n = next) {
			size_t b = hash_name(n->parent, n->name, strlen(n->name)) & (count - 1);

			next = n->hash_next;
			n->hash_next = buckets[b];
			buckets[b] = n;
		}
	}
	free(t->buckets);
	t->buckets = buckets;
	t->bucket_count = count;
	return 0;
}

static struct tree_inode *inode_new(struct tree *t, mode_t mode, uint32_t mtime)
{
	struct tree_inode *i = calloc(1, sizeof *i);

	if (i == NULL)
		return NULL;
	i->mode = mode;
	i->mtime = mtime;
	i->all_next = t->inodes;
	t->inodes = i;
	return i;
}

static void inode_release(struct tree_inode *i)
{
	for (size_t k = 0; k < i->xattr_count; k++) {
		free(i->xattrs[k].key);
		free(i->xattrs[k].value);
	}
	free(i->xattrs);
	i->xattrs = NULL;
	i->xattr_count = 0;
	free(i->target);
	i->target = NULL;
}

static struct tree_node *node_new(struct tree *t, struct tree_node *parent, const char *name,
                                  size_t len, struct tree_inode *inode)
{
	struct tree_node *n;
	size_t b;

	if (t->node_count >= t->bucket_count && grow_buckets(t) < 0)
		return NULL;
	n = calloc(1, sizeof *n);
	if (n == NULL || (n->name = strndup(name, len)) == NULL) {
		free(n);
		return NULL;
	}
	n->parent = parent;
	n->inode = inode;
	n->layer = n->touched = t->layer;
	inode->nlink++;
	b = hash_name(parent, name, len) & (t->bucket_count - 1);
	n->hash_next = t->buckets[b];
	t->buckets[b] = n;
	if (parent != NULL) {
		n->next = parent->children;
		if (parent->children != NULL)
			parent->children->prev = n;
		parent->children = n;
	}
	t->node_count++;
	return n;
}

/* Drop n and everything below it from the hash and free them. */
static void forget(struct tree *t, struct tree_node *n)
{
	struct tree_node *c, *next, **slot;

	for (c = n->children; c != NULL; c = next) {
		next = c->next;
		forget(t, c);
	}
	slot = &t->buckets[hash_name(n->parent, n->name, strlen(n->name)) & (t->bucket_count - 1)];
	while (*slot != n)
		slot = &(*slot)->hash_next;
	*slot = n->hash_next;
	if (--n->inode->nlink == 0)
		inode_release(n->inode);
	t->node_count--;
	free(n->name);
	free(n);
}

static void node_remove(struct tree *t, struct tree_node *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else if (n->parent != NULL)
		n->parent->children = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	forget(t, n);
}

int tree_init(struct tree *t, bool whiteouts, capsula_error *err)
{
	struct tree_inode *root;

	memset(t, 0, sizeof *t);
	t->whiteouts = whiteouts;
	t->bucket_count = 1024;
	t->buckets = calloc(t->bucket_count, sizeof(struct tree_node *));
	root = t->buckets ? inode_new(t, S_IFDIR | 0755, 0) : NULL;
	if (root == NULL || (t->root = node_new(t, NULL, "", 0, root)) == NULL)
		return fail(err, ENOMEM, NULL, "image tree");
	return 0;
}

void tree_free(struct tree *t)
{
	struct tree_inode *i, *next;

	if (t->root != NULL)
		node_remove(t, t->root);
	for (i = t->inodes; i != NULL; i = next) {
		next = i->all_next;
		inode_release(i);
		free(i->sqfs);
		free(i);
	}
	free(t->buckets);
	memset(t, 0, sizeof *t);
}

int tree_clean_path(const char *name, char *out, size_t size)
{
	size_t at = 0;

	while (*name != '\0') {
		const char *end = strchrnul(name, '/');
		size_t len = (size_t)(end - name);

		if (len == 2 && name[0] == '.' && name[1] == '.')
			return -1;
		if (len > 0 && !(len == 1 && name[0] == '.')) {
			if (at + len + 2 > size)
				return -1;
			if (at > 0)
				out[at++] = '/';
			memcpy(out + at, name, len);
			at += len;
		}
		name = *end == '/' ? end + 1 : end;
	}
	if (size == 0)
		return -1;
	out[at] = '\0';
	return 0;
}

/* A directory made because a layer holds something below it. */
static struct tree_node *implicit_dir(struct tree *t, struct tree_node *parent, const char *name,
                                      size_t len)
{
	struct tree_inode *i = inode_new(t, S_IFDIR | 0755, 0);

	return i == NULL ? NULL : node_new(t, parent, name, len, i);
}

/* The directory that path (relative to the root) names, symbolic links in
 * it followed inside the image as an extraction into a chroot would. With
 * create, missing or non-directory parts become directories. */
static int walk_dir(struct tree *t, const char *path, bool create, struct tree_node **out,
                    capsula_error *err)
{
	struct tree_node *dir = t->root;
	char *rest = strdup(path);
	size_t at = 0;
	int hops = 0;

	if (rest == NULL)
		return fail(err, ENOMEM, NULL, "image tree");
	while (rest[at] != '\0') {
		char *name = rest + at;
		size_t len = strcspn(name, "/");
		struct tree_node *n;

		at += len + (name[len] == '/');
		if (len == 0 || (len == 1 && name[0] == '.'))
			continue;
		if (len == 2 && name[0] == '.' && name[1] == '.') {
			if (dir->parent != NULL)
				dir = dir->parent;
			continue;
		}
		if (len > TREE_NAME_MAX) {
			fail(err, ENAMETOOLONG, HINT_DAMAGED, "name '%.*s...'", 40, name);
			free(rest);
			return -1;
		}
		n = lookup(t, dir, name, len);
		if (n != NULL && S_ISLNK(n->inode->mode)) {
			const char *target = n->inode->target;
			char *spliced;

			if (++hops > MAX_SYMLINK_HOPS) {
				free(rest);
				return fail(err, ELOOP, HINT_DAMAGED, "path %s", path);
			}
			if (asprintf(&spliced, "%s/%s", target, rest + at) < 0) {
				free(rest);
				return fail(err, ENOMEM, NULL, "image tree");
			}
			free(rest);
			rest = spliced;
			at = 0;
			if (target[0] == '/')
				dir = t->root;
			continue;
		}
		if (n != NULL && !S_ISDIR(n->inode->mode) && create) {
			node_remove(t, n);
			n = NULL;
		}
		if (n == NULL && create)
			n = implicit_dir(t, dir, name, len);
		if (n == NULL || !S_ISDIR(n->inode->mode)) {
			int missing = n == NULL && !create;

			free(rest);
			if (missing)
				return fail(err, ENOENT, HINT_DAMAGED, "path %s", path);
			return fail(err, n == NULL ? ENOMEM : ENOTDIR, NULL, "path %s", path);
		}
		if (create)
			n->touched = t->layer;
		dir = n;
	}
	free(rest);
	*out = dir;
	return 0;
}

/* Split a clean path into its directory and last name. */
static const char *split_last(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash == NULL)
		return NULL;
	*slash = '\0';
	return slash + 1;
}

/* .wh..wh..opq: what lower layers put under dir is hidden; what this
 * layer put there stays. */
static void make_opaque(struct tree *t, struct tree_node *dir)
{
	struct tree_node *c = dir->children, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		if (c->touched < t->layer)
			node_remove(t, c);
		else if (S_ISDIR(c->inode->mode))
			make_opaque(t, c);
	}
}

static int copy_xattrs(struct tree_inode *i, const struct tree_entry *e)
{
	if (e->xattr_count == 0)
		return 0;
	i->xattrs = calloc(e->xattr_count, sizeof *i->xattrs);
	if (i->xattrs == NULL)
		return -1;
	for (size_t k = 0; k < e->xattr_count; k++) {
		struct tree_xattr *x = &i->xattrs[k];

		x->key = strdup(e->xattrs[k].key);
		x->value = malloc(e->xattrs[k].size ? e->xattrs[k].size : 1);
		i->xattr_count++;
		if (x->key == NULL || x->value == NULL)
			return -1;
		memcpy(x->value, e->xattrs[k].value, e->xattrs[k].size);
		x->size = e->xattrs[k].size;
	}
	return 0;
}

static int set_metadata(const struct tree *t, struct tree_inode *i, const struct tree_entry *e)
{
	inode_release(i);
	i->mode = e->mode;
	i->uid = t->all_root ? 0 : e->uid;
	i->gid = t->all_root ? 0 : e->gid;
	i->mtime = e->mtime;
	i->rdev_major = e->rdev_major;
	i->rdev_minor = e->rdev_minor;
	if (e->symlink != NULL && (i->target = strdup(e->symlink)) == NULL)
		return -1;
	return copy_xattrs(i, e);
}

static int apply_whiteout(struct tree *t, struct tree_node *dir, const char *name)
{
	struct tree_node *n;

	if (strcmp(name, ".wh..wh..opq") == 0) {
		make_opaque(t, dir);
		return 0;
	}
	n = lookup(t, dir, name + 4, strlen(name + 4));
	/* A whiteout hides what lower layers made, not this layer's own. */
	if (n != NULL && n->layer < t->layer)
		node_remove(t, n);
	return 0;
}

static int apply_hardlink(struct tree *t, struct tree_node *dir, const char *name,
                          const struct tree_entry *e, capsula_error *err)
{
	char target[4096];
	struct tree_node *target_dir, *target_node, *existing;
	const char *target_name;

	if (tree_clean_path(e->hardlink, target, sizeof target) < 0 || target[0] == '\0')
		return fail(err, 0, HINT_DAMAGED, "hard link %s -> %s leaves the image", e->path,
		            e->hardlink);
	target_name = split_last(target);
	if (walk_dir(t, target_name ? target : "", false, &target_dir, err) < 0)
		return -1;
	if (target_name == NULL)
		target_name = target;
	target_node = lookup(t, target_dir, target_name, strlen(target_name));
	if (target_node == NULL || S_ISDIR(target_node->inode->mode))
		return fail(err, target_node ? EISDIR : ENOENT, HINT_DAMAGED,
		            "hard link %s -> %s", e->path, e->hardlink);
	existing = lookup(t, dir, name, strlen(name));
	if (existing == target_node)
		return 0;
	if (existing != NULL)
		node_remove(t, existing);
	if (node_new(t, dir, name, strlen(name), target_node->inode) == NULL)
		return fail(err, ENOMEM, NULL, "image tree");
	return 0;
}

int tree_apply(struct tree *t, const struct tree_entry *e, struct tree_inode **data_inode,
               capsula_error *err)
{
	char path[4096];
	const char *name;
	struct tree_node *dir, *existing;
	struct tree_inode *i;

	*data_inode = NULL;
	if (tree_clean_path(e->path, path, sizeof path) < 0)
		return fail(err, 0, HINT_DAMAGED, "member '%s' leaves the image", e->path);
	if (path[0] == '\0') {
		/* The root itself ("./"): only its metadata. */
		if (!S_ISDIR(e->mode))
			return fail(err, 0, HINT_DAMAGED, "the image root is not a directory");
		if (set_metadata(t, t->root->inode, e) < 0)
			return fail(err, ENOMEM, NULL, "image tree");
		return 0;
	}
	name = split_last(path);
	if (walk_dir(t, name ? path : "", true, &dir, err) < 0)
		return -1;
	if (name == NULL)
		name = path;
	if (strlen(name) > TREE_NAME_MAX)
		return fail(err, ENAMETOOLONG, HINT_DAMAGED, "name '%.40s...'", name);
	if (t->whiteouts && strncmp(name, ".wh.", 4) == 0)
		return apply_whiteout(t, dir, name);
	if (e->hardlink != NULL)
		return apply_hardlink(t, dir, name, e, err);
	existing = lookup(t, dir, name, strlen(name));
	if (existing != NULL && S_ISDIR(existing->inode->mode) && S_ISDIR(e->mode)) {
		/* Directories merge: the later entry's metadata, both contents. */
		existing->layer = existing->touched = t->layer;
		if (set_metadata(t, existing->inode, e) < 0)
			return fail(err, ENOMEM, NULL, "image tree");
		return 0;
	}
	if (existing != NULL)
		node_remove(t, existing);
	i = e->inode != NULL && S_ISREG(e->mode) ? e->inode : inode_new(t, e->mode, e->mtime);
	if (i == NULL || set_metadata(t, i, e) < 0 || node_new(t, dir, name, strlen(name), i) == NULL)
		return fail(err, ENOMEM, NULL, "image tree");
	if (S_ISREG(e->mode)) {
		i->size = e->size;
		i->layer = t->layer;
		i->entry = e->entry;
		i->sparse = e->sparse;
		*data_inode = i;
	}
	return 0;
}

struct tree_inode *tree_new_file_inode(struct tree *t)
{
	return inode_new(t, S_IFREG, 0);
}

bool tree_is_whiteout(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base != NULL ? base + 1 : path;
	return strncmp(base, ".wh.", 4) == 0;
}

int tree_add_file(struct tree *t, const char *path, mode_t mode, uint64_t size,
                  struct tree_inode **inode, capsula_error *err)
{
	struct tree_entry e = {.path = path, .mode = S_IFREG | mode, .size = size};

	if (tree_apply(t, &e, inode, err) < 0)
		return -1;
	if (*inode == NULL)
		return fail(err, EINVAL, NULL, "%s is not a plain file name", path);
	(*inode)->layer = (unsigned)-1;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct tree_node *const *)a)->name, (*(struct tree_node *const *)b)->name);
}

struct tree_node **tree_sorted_children(const struct tree_node *dir, size_t *count)
{
	struct tree_node **list;
	size_t n = 0;

	for (const struct tree_node *c = dir->children; c != NULL; c = c->next)
		n++;
	list = malloc((n ? n : 1) * sizeof(struct tree_node *));
	if (list == NULL)
		return NULL;
	n = 0;
	for (struct tree_node *c = dir->children; c != NULL; c = c->next)
		list[n++] = c;
	qsort(list, n, sizeof(struct tree_node *), by_name);
	*count = n;
	return list;
}

static int for_each_below(struct tree_node *dir, int (*fn)(struct tree_inode *, void *),
                          void *arg)
{
	for (struct tree_node *c = dir->children; c != NULL; c = c->next) {
		if (S_ISREG(c->inode->mode) && fn(c->inode, arg) < 0)
			return -1;
		if (S_ISDIR(c->inode->mode) && for_each_below(c, fn, arg) < 0)
			return -1;
	}
	return 0;
}

int tree_for_each_file(struct tree *t, int (*fn)(struct tree_inode *inode, void *arg), void *arg)
{
	return for_each_below(t->root, fn, arg);
}
