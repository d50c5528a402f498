#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

/* libsquashfuse's headers choose the FUSE API version: they come first. */
#include "starter/imageserver/image_ops.h"

#include <fuse3/fuse_lowlevel.h>

/* A year: "forever" for the kernel, without overflowing its arithmetic. */
#define FOREVER (365.0 * 24 * 3600)

struct request_context {
	struct image_fs *ifs;
	sqfs *fs;
};

static int request_begin(fuse_req_t req, struct request_context *rc)
{
	rc->ifs = fuse_req_userdata(req);
	rc->fs = image_fs_reader(rc->ifs);
	if (rc->fs == NULL) {
		fuse_reply_err(req, ENOMEM);
		return -1;
	}
	return 0;
}

static int inode_of(fuse_req_t req, struct request_context *rc, fuse_ino_t ino,
                    sqfs_inode *inode)
{
	if (sqfs_inode_get(rc->fs, inode, image_fs_inode_id(rc->ifs, ino)) != SQFS_OK) {
		fuse_reply_err(req, EIO);
		return -1;
	}
	return 0;
}

static bool building(const struct request_context *rc)
{
	return __atomic_load_n(&rc->ifs->building, __ATOMIC_ACQUIRE);
}

/* While the container is built, a directory that its mode closes to
 * others (the image's owners are not mapped: the holder is another user to
 * them) is answered open and uncached; any other is answered as it is, once
 * and for good, sparing the kernel a round trip at every later look. */
static bool answered_open(const struct request_context *rc, mode_t image_mode)
{
	return S_ISDIR(image_mode) && (image_mode & 05) != 05 && building(rc);
}

/* How long the kernel may keep what we answer about an inode of this mode. */
static double cache_time(const struct request_context *rc, mode_t image_mode)
{
	return answered_open(rc, image_mode) ? 0 : FOREVER;
}

static int inode_stat(struct request_context *rc, sqfs_inode *inode, fuse_ino_t ino,
                      struct stat *st)
{
	sqfs_id_t id;

	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_mode = inode->base.mode;
	if (answered_open(rc, inode->base.mode))
		st->st_mode |= 0555;
	st->st_nlink = (nlink_t)inode->nlink;
	st->st_mtime = st->st_ctime = st->st_atime = (time_t)inode->base.mtime;
	st->st_blksize = (blksize_t)rc->ifs->block_size;
	if (sqfs_id_get(rc->fs, inode->base.uid, &id) != SQFS_OK)
		return -1;
	st->st_uid = image_fs_owner(rc->ifs, id, rc->ifs->inner_uid);
	if (sqfs_id_get(rc->fs, inode->base.guid, &id) != SQFS_OK)
		return -1;
	st->st_gid = image_fs_owner(rc->ifs, id, rc->ifs->inner_gid);
	if (S_ISREG(st->st_mode))
		st->st_size = (off_t)inode->xtra.reg.file_size;
	else if (S_ISLNK(st->st_mode))
		st->st_size = (off_t)inode->xtra.symlink_size;
	else if (S_ISDIR(st->st_mode))
		st->st_size = inode->xtra.dir.dir_size;
	else if (S_ISBLK(st->st_mode) || S_ISCHR(st->st_mode))
		st->st_rdev = makedev((unsigned)inode->xtra.dev.major,
		                      (unsigned)inode->xtra.dev.minor);
	st->st_blocks = (st->st_size + 511) / 512;
	return 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Nothing in the image changes behind the kernel's back. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
}

static int entry_of(struct request_context *rc, sqfs_dir_entry *dentry,
                    struct fuse_entry_param *entry)
{
	sqfs_inode inode;

	memset(entry, 0, sizeof *entry);
	entry->ino = image_fs_ino(rc->ifs, sqfs_dentry_inode(dentry));
	if (sqfs_inode_get(rc->fs, &inode, sqfs_dentry_inode(dentry)) != SQFS_OK)
		return -1;
	entry->attr_timeout = entry->entry_timeout = cache_time(rc, inode.base.mode);
	return inode_stat(rc, &inode, entry->ino, &entry->attr);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct request_context rc;
	struct fuse_entry_param entry;
	sqfs_inode dir;
	sqfs_name name_buffer;
	sqfs_dir_entry dentry;
	bool found;

	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, parent, &dir) < 0)
		return;
	if (!S_ISDIR(dir.base.mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	sqfs_dentry_init(&dentry, name_buffer);
	if (sqfs_dir_lookup(rc.fs, &dir, name, strlen(name), &dentry, &found) != SQFS_OK) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (!found) {
		/* Inode 0 with a timeout: the kernel remembers the miss, which
		 * is what library and module searches along paths hit most. */
		memset(&entry, 0, sizeof entry);
		entry.entry_timeout = FOREVER;
		fuse_reply_entry(req, &entry);
		return;
	}
	if (entry_of(&rc, &dentry, &entry) < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_entry(req, &entry);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct request_context rc;
	sqfs_inode inode;
	struct stat st;

	(void)fi;
	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, ino, &inode) < 0)
		return;
	if (inode_stat(&rc, &inode, ino, &st) < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_attr(req, &st, cache_time(&rc, inode.base.mode));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct request_context rc;
	sqfs_inode inode;
	char target[4096];
	size_t size = sizeof target;

	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, ino, &inode) < 0)
		return;
	if (!S_ISLNK(inode.base.mode))
		fuse_reply_err(req, EINVAL);
	else if (inode.xtra.symlink_size >= sizeof target ||
	         sqfs_readlink(rc.fs, &inode, target, &size) != SQFS_OK)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_readlink(req, target);
}

/* Open and opendir only tell the kernel to keep what it has read: reads
 * name the inode, which is all they need. (Declining open altogether saves
 * a round trip per file but, measured, makes every exec from the image
 * three times slower: the kernel then drops the pages at each open.) */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                    struct fuse_file_info *fi)
{
	struct request_context rc;
	sqfs_inode inode;
	size_t max_spans;
	struct block_span *spans;
	struct fuse_bufvec *data;
	long count;

	(void)fi;
	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, ino, &inode) < 0)
		return;
	max_spans = size / rc.ifs->block_size + 2;
	spans = malloc(max_spans * sizeof *spans);
	data = malloc(sizeof *data + max_spans * sizeof data->buf[0]);
	if (spans == NULL || data == NULL) {
		free(spans);
		free(data);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	count = image_fs_spans(rc.ifs, rc.fs, &inode, (uint64_t)offset, size, spans, max_spans);
	if (count < 0) {
		fuse_reply_err(req, EIO);
	} else {
		/* Cached blocks go to the kernel as they are; uncompressed data
		 * is spliced from the image file, never copied through here. */
		*data = (struct fuse_bufvec){.count = (size_t)count};
		for (long i = 0; i < count; i++) {
			struct fuse_buf *buf = &data->buf[i];

			*buf = (struct fuse_buf){.size = spans[i].length};
			if (spans[i].data) {
				buf->mem = (void *)spans[i].data;
			} else {
				buf->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
				buf->fd = rc.ifs->fd;
				buf->pos = (off_t)spans[i].image_position;
			}
		}
		if (count == 0)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_data(req, data, FUSE_BUF_SPLICE_MOVE);
		image_fs_release(rc.ifs, spans, (size_t)count);
	}
	free(data);
	free(spans);
}

static void list_directory(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                           bool plus)
{
	struct request_context rc;
	sqfs_inode dir;
	sqfs_dir cursor;
	sqfs_name name_buffer;
	sqfs_dir_entry dentry;
	sqfs_err status = SQFS_OK;
	size_t used = 0;
	char *buffer;

	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, ino, &dir) < 0)
		return;
	if (!S_ISDIR(dir.base.mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buffer = malloc(size);
	if (buffer == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (sqfs_dir_open(rc.fs, &dir, &cursor, offset) != SQFS_OK) {
		free(buffer);
		fuse_reply_err(req, EIO);
		return;
	}
	sqfs_dentry_init(&dentry, name_buffer);
	while (sqfs_dir_next(rc.fs, &cursor, &dentry, &status)) {
		off_t next = sqfs_dentry_next_offset(&dentry);
		size_t needed;

		if (plus) {
			struct fuse_entry_param entry;

			if (entry_of(&rc, &dentry, &entry) < 0) {
				status = SQFS_ERR;
				break;
			}
			needed = fuse_add_direntry_plus(req, buffer + used, size - used,
			                                sqfs_dentry_name(&dentry), &entry, next);
		} else {
			struct stat st = {
				.st_ino = image_fs_ino(rc.ifs, sqfs_dentry_inode(&dentry)),
				.st_mode = sqfs_dentry_mode(&dentry),
			};
			needed = fuse_add_direntry(req, buffer + used, size - used,
			                           sqfs_dentry_name(&dentry), &st, next);
		}
		if (needed > size - used)
			break;
		used += needed;
	}
	if (status != SQFS_OK)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_buf(req, buffer, used);
	free(buffer);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                       struct fuse_file_info *fi)
{
	(void)fi;
	list_directory(req, ino, size, offset, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                           struct fuse_file_info *fi)
{
	(void)fi;
	list_directory(req, ino, size, offset, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct request_context rc;
	struct statvfs st = {0};

	(void)ino;
	if (request_begin(req, &rc) < 0)
		return;
	st.f_bsize = st.f_frsize = rc.ifs->block_size;
	st.f_blocks = (rc.fs->sb.bytes_used + rc.ifs->block_size - 1) / rc.ifs->block_size;
	st.f_files = rc.fs->sb.inodes;
	st.f_namemax = SQUASHFS_NAME_LEN;
	fuse_reply_statfs(req, &st);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct request_context rc;
	sqfs_inode inode;
	size_t real = size;
	char *value;

	if (request_begin(req, &rc) < 0)
		return;
	if (!rc.ifs->has_xattrs) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (inode_of(req, &rc, ino, &inode) < 0)
		return;
	value = malloc(size ? size : 1);
	if (value == NULL)
		fuse_reply_err(req, ENOMEM);
	else if (sqfs_xattr_lookup(rc.fs, &inode, name, value, &real) != SQFS_OK)
		fuse_reply_err(req, EIO);
	else if (real == 0)
		fuse_reply_err(req, ENODATA);
	else if (size == 0)
		fuse_reply_xattr(req, real);
	else if (size < real)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, real);
	free(value);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct request_context rc;
	sqfs_inode inode;
	sqfs_xattr xattr;
	char *names = NULL;
	size_t used = 0;

	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, ino, &inode) < 0)
		return;
	if (size && (names = malloc(size)) == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (sqfs_xattr_open(rc.fs, &inode, &xattr) != SQFS_OK)
		goto io_error;
	while (xattr.remain) {
		size_t length;

		if (sqfs_xattr_read(&xattr) != SQFS_OK)
			goto io_error;
		length = sqfs_xattr_name_size(&xattr) + 1;
		if (names && used + length <= size) {
			if (sqfs_xattr_name(&xattr, names + used, true) != SQFS_OK)
				goto io_error;
			names[used + length - 1] = '\0';
		}
		used += length;
	}
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (used > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, used);
	free(names);
	return;
io_error:
	free(names);
	fuse_reply_err(req, EIO);
}

const struct fuse_lowlevel_ops image_operations = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.open = op_open,
	.read = op_read,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
};
