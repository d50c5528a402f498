#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/convert/archive_reader.h"
#include "runtime/convert/layer_reader.h"

/* libarchive pulls the stored blob through here: hashed as it passes. */
static la_ssize_t read_blob(struct archive *a, void *client, const void **buffer)
{
	struct layer_reader *l = client;
	ssize_t got = blob_read(&l->blob, l->in, sizeof l->in, l->err);

	if (got < 0) {
		l->failed = true;
		archive_set_error(a, EIO, "%s", l->err->message);
		return -1;
	}
	sha256_update(&l->blob_hash, l->in, (size_t)got);
	l->blob_bytes += (uint64_t)got;
	*buffer = l->in;
	return got;
}

/* And the tar reader pulls the decompressed stream through here. */
static la_ssize_t read_decompressed(struct archive *a, void *client, const void **buffer)
{
	struct layer_reader *l = client;
	la_ssize_t got = archive_read_data(l->raw, l->out, sizeof l->out);

	if (got < 0) {
		if (!l->failed)
			archive_reader_fail(l->raw, l->err, l->name);
		l->failed = true;
		archive_set_error(a, EIO, "%s", l->err->message);
		return -1;
	}
	if (!l->skip_diff_id)
		sha256_update(&l->diff_hash, l->out, (size_t)got);
	l->diff_bytes += (uint64_t)got;
	*buffer = l->out;
	return got;
}

/* A blob that does not parse and does not match its digest was damaged or
 * tampered with: that says more than what the parser tripped on. */
static void blame_digest(struct layer_reader *l, capsula_error *err)
{
	capsula_error digest_err;
	ssize_t got;

	if (l->ref == NULL || l->ref->digest == NULL || (l->blob.fd < 0 && l->blob.outer == NULL))
		return;
	while ((got = blob_read(&l->blob, l->in, sizeof l->in, &digest_err)) > 0) {
		sha256_update(&l->blob_hash, l->in, (size_t)got);
		l->blob_bytes += (uint64_t)got;
	}
	if (got == 0 && digest_check(&l->blob_hash, l->ref->digest, l->ref->size, l->blob_bytes,
	                             l->name, &digest_err) < 0)
		*err = digest_err;
}

static int reader_fail(struct layer_reader *l, struct archive *a, capsula_error *err)
{
	/* A failure of ours inside a callback has its message already. */
	if (l->failed && err != l->err)
		*err = *l->err;
	if (!l->failed)
		archive_reader_fail(a, err, l->name);
	l->failed = true;
	blame_digest(l, err);
	return -1;
}

int layer_open(struct layer_reader *l, struct image_source *source, const struct layer_ref *ref,
               unsigned index, bool again, capsula_error *err)
{
	struct archive_entry *e;

	memset(l, 0, offsetof(struct layer_reader, in));
	l->ref = ref;
	l->again = again;
	l->skip_diff_id = again && ref->digest != NULL;
	l->err = err;
	l->blob.fd = -1;
	if (ref->member != NULL)
		snprintf(l->name, sizeof l->name, "layer %u (%s)", index + 1, ref->member);
	else
		snprintf(l->name, sizeof l->name, "%s", source->path);
	if (sha256_begin(&l->blob_hash) < 0 || sha256_begin(&l->diff_hash) < 0)
		return fail(err, errno, "install libssl3 (libcrypto)", "load libcrypto for SHA-256");
	if (blob_open(source, ref->member, &l->blob, err) < 0)
		return -1;
	l->raw = archive_reader_new(true);
	l->tar = archive_reader_new(false);
	if (l->raw == NULL || l->tar == NULL)
		return fail(err, ENOMEM, NULL, "%s", l->name);
	if (archive_read_open(l->raw, l, NULL, read_blob, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(l->raw, &e) != ARCHIVE_OK)
		return reader_fail(l, l->raw, err);
	if (archive_read_open(l->tar, l, NULL, read_decompressed, NULL) != ARCHIVE_OK)
		return reader_fail(l, l->tar, err);
	return 0;
}

int layer_open_directory(struct layer_reader *l, const char *path, capsula_error *err)
{
	memset(l, 0, offsetof(struct layer_reader, in));
	l->err = err;
	l->blob.fd = -1;
	l->directory = path;
	l->directory_len = strlen(path);
	l->own_ids_are_root = true;
	while (l->directory_len > 1 && path[l->directory_len - 1] == '/')
		l->directory_len--;
	snprintf(l->name, sizeof l->name, "%s", path);
	l->tar = archive_read_disk_new();
	l->disk_entry = archive_entry_new();
	if (l->tar == NULL || l->disk_entry == NULL)
		return fail(err, ENOMEM, NULL, "%s", path);
	/* Links stay links; ACLs and file flags mean nothing in an image. */
	if (archive_read_disk_set_symlink_physical(l->tar) != ARCHIVE_OK ||
	    archive_read_disk_set_behavior(l->tar, ARCHIVE_READDISK_NO_ACL |
	                                   ARCHIVE_READDISK_NO_FFLAGS) != ARCHIVE_OK ||
	    archive_read_disk_open(l->tar, path) != ARCHIVE_OK)
		return reader_fail(l, l->tar, err);
	return 0;
}

static uint32_t clamp_time(time_t t)
{
	return t < 0 ? 0 : t > (time_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* A directory source's names, relative to the directory. */
static const char *relative_name(struct layer_reader *l, const char *path)
{
	if (strncmp(path, l->directory, l->directory_len) != 0)
		return path;
	path += l->directory_len;
	while (*path == '/')
		path++;
	return path;
}

static int disk_next(struct layer_reader *l, struct archive_entry **e, capsula_error *err)
{
	int r = archive_read_next_header2(l->tar, l->disk_entry);

	if (r == ARCHIVE_EOF)
		return 0;
	/* A file or directory the builder cannot read would come out empty or
	 * missing: better no image than a wrong one. */
	if (r != ARCHIVE_OK) {
		const char *name = archive_entry_pathname(l->disk_entry);

		return fail(err, archive_errno(l->tar) > 0 ? archive_errno(l->tar) : 0,
		            "make it readable, or build from a copy without it", "cannot read %s",
		            name ? name : l->directory);
	}
	if (archive_entry_filetype(l->disk_entry) == AE_IFDIR &&
	    archive_read_disk_descend(l->tar) != ARCHIVE_OK)
		return reader_fail(l, l->tar, err);
	*e = l->disk_entry;
	return 1;
}

static int entry_xattrs(struct layer_reader *l, struct archive_entry *e, struct tree_entry *out,
                        capsula_error *err)
{
	const char *key;
	const void *value;
	size_t size;

	out->xattrs = l->xattrs;
	out->xattr_count = 0;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
		if (out->xattr_count == LAYER_MAX_XATTRS)
			return fail(err, 0, "the archive is damaged or hostile",
			            "%s has more than %u extended attributes", out->path, LAYER_MAX_XATTRS);
		l->xattrs[out->xattr_count].key = (char *)key;
		l->xattrs[out->xattr_count].value = (void *)value;
		l->xattrs[out->xattr_count].size = size;
		out->xattr_count++;
	}
	return 0;
}

/* The layer's owners as they are; a host directory's files of the user
 * who reads it are the image's root's (as they would be in a root
 * file system the user unpacked, or in the user's own namespace). */
static void entry_owner(const struct layer_reader *l, struct archive_entry *e,
                        struct tree_entry *out)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

	out->uid = uid < 0 || uid > UINT32_MAX - 1 ? 0 : (uint32_t)uid;
	out->gid = gid < 0 || gid > UINT32_MAX - 1 ? 0 : (uint32_t)gid;
	if (l->own_ids_are_root && out->uid == (uint32_t)getuid())
		out->uid = 0;
	if (l->own_ids_are_root && out->gid == (uint32_t)getgid())
		out->gid = 0;
}

/* What an entry keeps while the image is made, charged to the budget; and
 * the bounds any single entry must keep (Linux's own). */
static int charge_entry(struct layer_reader *l, const struct tree_entry *e, capsula_error *err)
{
	uint64_t bytes = BUDGET_ENTRY_BYTES + strlen(e->path);

	if (e->symlink != NULL && strlen(e->symlink) >= ENTRY_TARGET_MAX)
		return fail(err, ENAMETOOLONG, "the archive is damaged or hostile",
		            "%s: the link %.80s points to a name of %zu bytes", l->name, e->path,
		            strlen(e->symlink));
	bytes += e->symlink ? strlen(e->symlink) : 0;
	bytes += e->hardlink ? strlen(e->hardlink) : 0;
	for (size_t k = 0; k < e->xattr_count; k++) {
		if (e->xattrs[k].size > ENTRY_XATTR_MAX)
			return fail(err, 0, "the archive is damaged or hostile", "%s: %.80s has an "
			            "extended attribute of %zu bytes (Linux keeps at most %u)", l->name,
			            e->path, e->xattrs[k].size, ENTRY_XATTR_MAX);
		bytes += strlen(e->xattrs[k].key) + e->xattrs[k].size;
	}
	if (l->budget == NULL)
		return 0;
	if (l->budget->stop)
		return fail(err, 0, NULL, "%s: stopped", l->name);
	return l->again ? 0 : budget_charge(l->budget, 1, bytes, e->path, err);
}

static int next_entry(struct layer_reader *l, struct tree_entry *out, capsula_error *err);

#define LINK_BUCKETS 1024
struct disk_link {
	dev_t dev;
	ino_t ino;
	char *path;
	struct disk_link *next;
};

struct disk_links {
	struct disk_link *bucket[LINK_BUCKETS];
};

/* A file of a directory source met under a second name becomes a hard
 * link to the first, as tar and the kernel's overlayfs have it: one file
 * in the image, not two. */
static int disk_hardlink(struct layer_reader *l, struct archive_entry *e, struct tree_entry *out,
                         capsula_error *err)
{
	dev_t dev = archive_entry_dev(e);
	ino_t ino = (ino_t)archive_entry_ino64(e);
	size_t bucket = (size_t)((ino ^ dev) % LINK_BUCKETS);
	struct disk_link *link;

	if (l->links == NULL && (l->links = calloc(1, sizeof *l->links)) == NULL)
		return fail(err, ENOMEM, NULL, "%s", l->name);
	for (link = l->links->bucket[bucket]; link != NULL; link = link->next)
		if (link->dev == dev && link->ino == ino) {
			out->hardlink = link->path;
			out->size = 0;
			return 0;
		}
	link = malloc(sizeof *link);
	if (link == NULL || (link->path = strdup(out->path)) == NULL) {
		free(link);
		return fail(err, ENOMEM, NULL, "%s", l->name);
	}
	link->dev = dev;
	link->ino = ino;
	link->next = l->links->bucket[bucket];
	l->links->bucket[bucket] = link;
	return 0;
}

static void free_links(struct layer_reader *l)
{
	for (size_t i = 0; l->links != NULL && i < LINK_BUCKETS; i++)
		while (l->links->bucket[i] != NULL) {
			struct disk_link *next = l->links->bucket[i]->next;

			free(l->links->bucket[i]->path);
			free(l->links->bucket[i]);
			l->links->bucket[i] = next;
		}
	free(l->links);
	l->links = NULL;
}

/* 1 to leave the entry out, 0 to keep it as it is now. */
static int capture_entry(struct layer_reader *l, struct tree_entry *out)
{
	size_t kept = 0;

	/* What the step's emulated root recorded stays with the file (and
	 * comes up with it into later steps' uppers): the image is made of it. */
	for (size_t i = 0; i < out->xattr_count; i++) {
		const struct tree_xattr *x = &l->xattrs[i];

		if (strncmp(x->key, "user.overlay.", 13) != 0 ||
		    strcmp(x->key, "user.overlay.opaque") == 0)
			l->xattrs[kept++] = *x;
	}
	out->xattr_count = kept;
	if (l->capture_skip == NULL || !(S_ISDIR(out->mode) || (S_ISREG(out->mode) && out->size == 0)))
		return 0;
	for (size_t i = 0; i < l->capture_skip->count; i++)
		if (strcmp(out->path, l->capture_skip->items[i]) == 0)
			return 1;
	return 0;
}

int layer_next(struct layer_reader *l, struct tree_entry *out, capsula_error *err)
{
	int r;

	do
		r = next_entry(l, out, err);
	while (r > 0 && l->capture && capture_entry(l, out) > 0);
	return r;
}

static int next_entry(struct layer_reader *l, struct tree_entry *out, capsula_error *err)
{
	struct archive_entry *e;
	int r;

	if (l->directory != NULL) {
		r = disk_next(l, &e, err);
		if (r <= 0)
			return r;
	} else {
		r = archive_read_next_header(l->tar, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return reader_fail(l, l->tar, err);
	}
	memset(out, 0, sizeof *out);
	out->path = archive_entry_pathname(e);
	if (out->path == NULL)
		return fail(err, 0, "the archive is damaged", "%s: an entry without a name", l->name);
	if (l->directory != NULL)
		out->path = relative_name(l, out->path);
	out->entry = ++l->entry;
	out->mode = archive_entry_mode(e);
	entry_owner(l, e, out);
	out->mtime = clamp_time(archive_entry_mtime(e));
	out->rdev_major = archive_entry_rdevmajor(e);
	out->rdev_minor = archive_entry_rdevminor(e);
	out->size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ?
	            (uint64_t)archive_entry_size(e) : 0;
	out->symlink = archive_entry_symlink(e);
	out->hardlink = archive_entry_hardlink(e);
	if (archive_entry_filetype(e) == AE_IFLNK && out->symlink == NULL)
		return fail(err, 0, "the archive is damaged", "%s: %s is a link to nothing", l->name,
		            out->path);
	if (archive_entry_filetype(e) == 0 && out->hardlink == NULL)
		return fail(err, 0, "the archive is damaged", "%s: %s has no file type", l->name,
		            out->path);
	out->sparse = archive_entry_sparse_count(e) > 0;
	if (l->directory != NULL && archive_entry_filetype(e) == AE_IFREG &&
	    archive_entry_nlink(e) > 1 && disk_hardlink(l, e, out, err) < 0)
		return -1;
	if (entry_xattrs(l, e, out, err) < 0 || charge_entry(l, out, err) < 0)
		return -1;
	return 1;
}

int layer_data(struct layer_reader *l, const void **data, size_t *size, uint64_t *offset,
               capsula_error *err)
{
	la_int64_t at;
	int r = archive_read_data_block(l->tar, data, size, &at);

	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return reader_fail(l, l->tar, err);
	*offset = at < 0 ? 0 : (uint64_t)at;
	return 1;
}

int layer_finish(struct layer_reader *l, capsula_error *err)
{
	char what[200];
	la_ssize_t got = 0;

	if (l->directory != NULL || l->ref == NULL) {
		layer_close(l);
		return 0;
	}
	/* What the tar reader left (its end blocks, padding) counts too;
	 * when the blob's digest alone is checked, the rest need not even be
	 * decompressed. */
	while (!l->skip_diff_id && (got = archive_read_data(l->raw, l->out, sizeof l->out)) > 0) {
		sha256_update(&l->diff_hash, l->out, (size_t)got);
		l->diff_bytes += (uint64_t)got;
	}
	if (got < 0) {
		reader_fail(l, l->raw, err);
		layer_close(l);
		return -1;
	}
	while ((got = blob_read(&l->blob, l->in, sizeof l->in, err)) > 0) {
		sha256_update(&l->blob_hash, l->in, (size_t)got);
		l->blob_bytes += (uint64_t)got;
	}
	snprintf(what, sizeof what, "%s", l->name);
	if (got < 0 ||
	    digest_check(&l->blob_hash, l->ref->digest, l->ref->size, l->blob_bytes, what, err) < 0) {
		layer_close(l);
		return -1;
	}
	snprintf(what, sizeof what, "%s uncompressed", l->name);
	if (!l->skip_diff_id &&
	    digest_check(&l->diff_hash, l->ref->diff_id, -1, l->diff_bytes, what, err) < 0) {
		layer_close(l);
		return -1;
	}
	layer_close(l);
	return 0;
}

void layer_close(struct layer_reader *l)
{
	if (l->tar != NULL)
		archive_read_free(l->tar);
	if (l->raw != NULL)
		archive_read_free(l->raw);
	if (l->disk_entry != NULL)
		archive_entry_free(l->disk_entry);
	blob_close(&l->blob);
	free_links(l);
	l->tar = l->raw = NULL;
	l->disk_entry = NULL;
}
