#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "runtime/image/image_config.h"
#include "runtime/push/parallel_gzip.h"
#include "runtime/push/layer_tar.h"

#define HINT_SPACE "free space there, or push with CAPSULA_CACHEDIR on another file system"

struct layer_writer {
	struct squashfs_layer_set *set;
	struct archive *tar;          /* the tar stream, written into packed */
	struct archive *packed;       /* zstd: only compresses (raw format) */
	struct parallel_gzip *gzip;   /* gzip: on every thread */
	int fd;
	const struct layer_watcher *watcher;
	struct sha256 tar_hash, packed_hash;
	uint64_t size, entries;
	int write_errno;
	char **first_names;           /* of files with several names, by inode number */
	uint32_t linked;
	capsula_error *err;
};

static int archive_failure(struct archive *a, const char *what, capsula_error *err)
{
	const char *why = archive_error_string(a);

	return fail(err, archive_errno(a) > 0 ? archive_errno(a) : 0, NULL, "layer: %s: %s", what,
	            why ? why : "libarchive failed");
}

static int write_out(void *data, const void *buffer, size_t length)
{
	struct layer_writer *w = data;

	for (size_t done = 0; done < length;) {
		ssize_t n = write(w->fd, (const char *)buffer + done, length - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			w->write_errno = errno;
			return -1;
		}
		done += (size_t)n;
	}
	sha256_update(&w->packed_hash, buffer, length);
	w->size += length;
	if (w->watcher != NULL)
		w->watcher->grew(w->watcher->arg, w->size);
	return 0;
}

static la_ssize_t to_file(struct archive *a, void *data, const void *buffer, size_t length)
{
	(void)a;
	return write_out(data, buffer, length) < 0 ? -1 : (la_ssize_t)length;
}

static la_ssize_t to_compressor(struct archive *a, void *data, const void *buffer, size_t length)
{
	struct layer_writer *w = data;

	(void)a;
	sha256_update(&w->tar_hash, buffer, length);
	if (w->gzip != NULL)
		return parallel_gzip_write(w->gzip, buffer, length, w->err) < 0 ? -1 :
		       (la_ssize_t)length;
	return archive_write_data(w->packed, buffer, length) < 0 ? -1 : (la_ssize_t)length;
}

static int open_compressor(struct layer_writer *w, const struct layer_tar_options *opts,
                           capsula_error *err)
{
	struct archive_entry *stream = archive_entry_new();
	char value[32];
	int ret;

	if (strcmp(opts->compression, "gzip") == 0) {
		archive_entry_free(stream);
		return parallel_gzip_open(&w->gzip, opts->level, opts->threads, write_out, w, err);
	}
	w->packed = archive_write_new();
	if (w->packed == NULL || stream == NULL) {
		archive_entry_free(stream);
		return fail(err, ENOMEM, NULL, "layer");
	}
	ret = archive_write_set_format_raw(w->packed);
	if (ret == ARCHIVE_OK)
		ret = archive_write_add_filter_zstd(w->packed);
	if (ret == ARCHIVE_OK && opts->level > 0) {
		snprintf(value, sizeof value, "%d", opts->level);
		ret = archive_write_set_filter_option(w->packed, NULL, "compression-level", value);
	}
	if (ret == ARCHIVE_OK && opts->threads > 1) {
		snprintf(value, sizeof value, "%u", opts->threads);
		ret = archive_write_set_filter_option(w->packed, "zstd", "threads", value);
	}
	/* A compressed stream is not padded to tar's blocks. */
	if (ret == ARCHIVE_OK)
		ret = archive_write_set_bytes_per_block(w->packed, 0);
	if (ret == ARCHIVE_OK)
		ret = archive_write_open(w->packed, w, NULL, to_file, NULL);
	archive_entry_set_pathname(stream, "layer.tar");
	archive_entry_set_filetype(stream, AE_IFREG);
	if (ret == ARCHIVE_OK)
		ret = archive_write_header(w->packed, stream);
	archive_entry_free(stream);
	return ret == ARCHIVE_OK ? 0 : archive_failure(w->packed, opts->compression, err);
}

static int open_tar(struct layer_writer *w, capsula_error *err)
{
	int ret;

	w->tar = archive_write_new();
	if (w->tar == NULL)
		return fail(err, ENOMEM, NULL, "layer");
	ret = archive_write_set_format_pax_restricted(w->tar);
	if (ret == ARCHIVE_OK)
		ret = archive_write_open(w->tar, w, NULL, to_compressor, NULL);
	return ret == ARCHIVE_OK ? 0 : archive_failure(w->tar, "tar", err);
}

static int data_to_tar(void *data, const void *buffer, size_t length, capsula_error *err)
{
	struct layer_writer *w = data;

	if (archive_write_data(w->tar, buffer, length) < 0)
		return archive_failure(w->tar, "file data", err);
	return 0;
}

/* A second name of a file already written becomes a hard link to the first. */
static int link_or_remember(struct layer_writer *w, struct tree_inode *inode, const char *path,
                            struct archive_entry *e, bool *linked, capsula_error *err)
{
	*linked = false;
	if (inode->nlink < 2 || S_ISDIR(inode->mode))
		return 0;
	if (inode->number != 0) {
		archive_entry_set_hardlink(e, w->first_names[inode->number - 1]);
		archive_entry_set_size(e, 0);
		*linked = true;
		return 0;
	}
	char **grown = realloc(w->first_names, (w->linked + 1) * sizeof *grown);

	if (grown == NULL)
		return fail(err, ENOMEM, NULL, "layer: %s", path);
	w->first_names = grown;
	if ((w->first_names[w->linked] = strdup(path)) == NULL)
		return fail(err, ENOMEM, NULL, "layer: %s", path);
	inode->number = ++w->linked;
	return 0;
}

static void describe(struct archive_entry *e, const struct tree_inode *inode, const char *path)
{
	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, inode->mode);
	archive_entry_set_uid(e, inode->uid);
	archive_entry_set_gid(e, inode->gid);
	archive_entry_set_mtime(e, inode->mtime, 0);
	if (S_ISREG(inode->mode))
		archive_entry_set_size(e, (la_int64_t)inode->size);
	if (S_ISLNK(inode->mode))
		archive_entry_set_symlink(e, inode->target);
	if (S_ISCHR(inode->mode) || S_ISBLK(inode->mode)) {
		archive_entry_set_rdevmajor(e, inode->rdev_major);
		archive_entry_set_rdevminor(e, inode->rdev_minor);
	}
	for (size_t i = 0; i < inode->xattr_count; i++)
		archive_entry_xattr_add_entry(e, inode->xattrs[i].key, inode->xattrs[i].value,
		                              inode->xattrs[i].size);
}

static int write_entry(struct layer_writer *w, const struct tree_node *node, const char *path,
                       capsula_error *err)
{
	struct tree_inode *inode = node->inode;
	struct archive_entry *e;
	bool linked;
	int ret = 0;

	/* tar has no sockets; a socket in an image is a leftover of its build. */
	if (S_ISSOCK(inode->mode))
		return 0;
	if ((e = archive_entry_new()) == NULL)
		return fail(err, ENOMEM, NULL, "layer: %s", path);
	describe(e, inode, path);
	if (link_or_remember(w, inode, path, e, &linked, err) < 0)
		ret = -1;
	else if (archive_write_header(w->tar, e) != ARCHIVE_OK)
		ret = archive_failure(w->tar, path, err);
	else if (S_ISREG(inode->mode) && !linked && inode->size > 0)
		ret = squashfs_layers_read(w->set, inode, data_to_tar, w, err);
	archive_entry_free(e);
	w->entries++;
	return ret;
}

static int write_below(struct layer_writer *w, const struct tree_node *dir, const char *prefix,
                       capsula_error *err)
{
	size_t count;
	struct tree_node **children = tree_sorted_children(dir, &count);
	int ret = 0;

	if (children == NULL)
		return dir->children != NULL ? fail(err, ENOMEM, NULL, "layer: %s", prefix) : 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		const struct tree_node *child = children[i];
		char *path;

		if (prefix[0] == '\0' && strcmp(child->name, IMAGE_METADATA_DIR + 1) == 0)
			continue;
		if (asprintf(&path, "%s%s%s", prefix, prefix[0] ? "/" : "", child->name) < 0) {
			ret = fail(err, ENOMEM, NULL, "layer: %s", prefix);
			break;
		}
		ret = write_entry(w, child, path, err);
		if (ret == 0 && S_ISDIR(child->inode->mode))
			ret = write_below(w, child, path, err);
		free(path);
	}
	free(children);
	return ret;
}

/* A close fails for the file's write (said as it is) or for libarchive's reason. */
static int close_failure(const struct layer_writer *w, struct archive *a, const char *what,
                         capsula_error *err)
{
	if (w->write_errno != 0)
		return fail(err, w->write_errno, w->write_errno == ENOSPC ? HINT_SPACE : NULL,
		            "layer: write");
	return archive_failure(a, what, err);
}

static int finish(struct layer_writer *w, struct layer_blob *blob, capsula_error *err)
{
	if (archive_write_close(w->tar) != ARCHIVE_OK)
		return close_failure(w, w->tar, "tar", err);
	if (w->gzip != NULL && parallel_gzip_finish(w->gzip, err) < 0)
		return -1;
	if (w->packed != NULL && archive_write_close(w->packed) != ARCHIVE_OK)
		return close_failure(w, w->packed, "compress", err);
	if (sha256_end_digest(&w->tar_hash, blob->diff_id) < 0 ||
	    sha256_end_digest(&w->packed_hash, blob->digest) < 0)
		return fail(err, 0, "install libssl3", "layer: hash");
	blob->size = w->size;
	blob->entries = w->entries;
	return 0;
}

int layer_tar_write(struct squashfs_layer_set *set, struct tree *t, int fd,
                    const struct layer_tar_options *opts, const struct layer_watcher *watcher,
                    struct layer_blob *blob, capsula_error *err)
{
	struct layer_writer w = {.set = set, .fd = fd, .watcher = watcher, .err = err};
	int ret = -1;

	if (sha256_begin(&w.tar_hash) < 0 || sha256_begin(&w.packed_hash) < 0)
		return fail(err, errno, "install libssl3", "layer: hash");
	if (open_compressor(&w, opts, err) == 0 && open_tar(&w, err) == 0 &&
	    write_below(&w, t->root, "", err) == 0)
		ret = finish(&w, blob, err);
	if (w.tar != NULL)
		archive_write_free(w.tar);
	if (w.packed != NULL)
		archive_write_free(w.packed);
	parallel_gzip_free(w.gzip);
	for (uint32_t i = 0; i < w.linked; i++)
		free(w.first_names[i]);
	free(w.first_names);
	return ret;
}

const char *layer_media_type(const char *compression)
{
	return strcmp(compression, "zstd") == 0 ? "application/vnd.oci.image.layer.v1.tar+zstd" :
	       "application/vnd.oci.image.layer.v1.tar+gzip";
}
