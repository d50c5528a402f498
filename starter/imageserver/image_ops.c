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

/* A part of the image that does not decode: EIO, after the ranks are told
 * (once) why their read failed. */
static void reply_damaged(fuse_req_t req, const struct request_context *rc, const char *what)
{
	damage_report_tell(&rc->ifs->damage, what);
	fuse_reply_err(req, EIO);
}

static int inode_of(fuse_req_t req, struct request_context *rc, fuse_ino_t ino,
                    sqfs_inode *inode)
{
	if (sqfs_inode_get(rc->fs, inode, image_fs_inode_id(rc->ifs, ino)) != SQFS_OK) {
		reply_damaged(req, rc, "an inode");
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
	/* The image's root is the container's: whatever its mode, the user
	 * must be able to enter it, as any root capsula made before. */
	if (answered_open(rc, inode->base.mode) || ino == FUSE_ROOT_ID)
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

static void mount_point_entry(const struct request_context *rc, const struct mount_point *mp,
                              struct fuse_entry_param *entry)
{
	memset(entry, 0, sizeof *entry);
	entry->ino = mp->ino;
	entry->attr_timeout = entry->entry_timeout = FOREVER;
	entry->attr.st_ino = (ino_t)mp->ino;
	entry->attr.st_mode = mp->dir ? S_IFDIR | 0755 : S_IFREG | 0644;
	entry->attr.st_nlink = mp->dir ? 2 : 1;
	/* As the holder would own one it made itself. */
	entry->attr.st_uid = rc->ifs->inner_uid;
	entry->attr.st_gid = rc->ifs->inner_gid;
	entry->attr.st_blksize = (blksize_t)rc->ifs->block_size;
}

/* The mount point found by a lookup, or (mp NULL) a miss. */
static void reply_mount_point(fuse_req_t req, const struct request_context *rc,
                              const struct mount_point *mp)
{
	struct fuse_entry_param entry;

	if (mp != NULL) {
		mount_point_entry(rc, mp, &entry);
	} else {
		/* Inode 0 with a timeout: the kernel remembers the miss, which
		 * is what library and module searches along paths hit most. */
		memset(&entry, 0, sizeof entry);
		entry.entry_timeout = FOREVER;
	}
	fuse_reply_entry(req, &entry);
}

/* For an inode number of the mount points: the entry (NULL, having
 * replied, when there is none). */
static const struct mount_point *mount_point_or_reply(fuse_req_t req,
                                                      const struct request_context *rc,
                                                      fuse_ino_t ino)
{
	const struct mount_point *mp = mount_points_get(&rc->ifs->mount_points, ino);

	if (mp == NULL)
		fuse_reply_err(req, ESTALE);
	return mp;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct request_context rc;
	struct fuse_entry_param entry;
	sqfs_inode dir;
	sqfs_name name_buffer;
	sqfs_dir_entry dentry;
	bool found;

	if (request_begin(req, &rc) < 0)
		return;
	if (mount_point_ino(parent)) {
		reply_mount_point(req, &rc, mount_points_find(&rc.ifs->mount_points, parent, name));
		return;
	}
	if (inode_of(req, &rc, parent, &dir) < 0)
		return;
	if (!S_ISDIR(dir.base.mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	sqfs_dentry_init(&dentry, name_buffer);
	if (sqfs_dir_lookup(rc.fs, &dir, name, strlen(name), &dentry, &found) != SQFS_OK) {
		reply_damaged(req, &rc, "a directory");
		return;
	}
	if (!found) {
		reply_mount_point(req, &rc, mount_points_find(&rc.ifs->mount_points, parent, name));
		return;
	}
	if (entry_of(&rc, &dentry, &entry) < 0)
		reply_damaged(req, &rc, "an inode");
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
	if (request_begin(req, &rc) < 0)
		return;
	if (mount_point_ino(ino)) {
		const struct mount_point *mp = mount_point_or_reply(req, &rc, ino);
		struct fuse_entry_param entry;

		if (mp != NULL) {
			mount_point_entry(&rc, mp, &entry);
			fuse_reply_attr(req, &entry.attr, FOREVER);
		}
		return;
	}
	if (inode_of(req, &rc, ino, &inode) < 0)
		return;
	if (inode_stat(&rc, &inode, ino, &st) < 0)
		reply_damaged(req, &rc, "an inode");
	else
		/* The root is answered the same before and after the build. */
		fuse_reply_attr(req, &st, ino == FUSE_ROOT_ID ? FOREVER :
		                cache_time(&rc, inode.base.mode));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct request_context rc;
	sqfs_inode inode;
	char target[4096];
	size_t size = sizeof target;

	if (mount_point_ino(ino)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (request_begin(req, &rc) < 0 || inode_of(req, &rc, ino, &inode) < 0)
		return;
	if (!S_ISLNK(inode.base.mode))
		fuse_reply_err(req, EINVAL);
	else if (inode.xtra.symlink_size >= sizeof target ||
	         sqfs_readlink(rc.fs, &inode, target, &size) != SQFS_OK)
		reply_damaged(req, &rc, "a symbolic link");
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
	if (mount_point_ino(ino)) {
		fuse_reply_buf(req, NULL, 0);  /* an empty file */
		return;
	}
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
		reply_damaged(req, &rc, "a block of file data");
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

/* Directory offsets past the image's own entries: the mount points added
 * in the directory, listed after them. */
#define MOUNT_POINT_OFFSET ((off_t)1 << 40)

struct listing {
	fuse_req_t req;
	char *buffer;
	size_t size, used;
	bool plus;
	bool full;
};

static bool list_entry(struct listing *l, const char *name, const struct fuse_entry_param *entry,
                       off_t next)
{
	size_t room = l->size - l->used;
	size_t needed = l->plus ?
		fuse_add_direntry_plus(l->req, l->buffer + l->used, room, name, entry, next) :
		fuse_add_direntry(l->req, l->buffer + l->used, room, name, &entry->attr, next);

	if (needed > room) {
		l->full = true;
		return false;
	}
	l->used += needed;
	return true;
}

static int list_image_entries(struct listing *l, struct request_context *rc, sqfs_inode *dir,
                              off_t offset)
{
	sqfs_dir cursor;
	sqfs_name name_buffer;
	sqfs_dir_entry dentry;
	sqfs_err status = SQFS_OK;

	if (sqfs_dir_open(rc->fs, dir, &cursor, offset) != SQFS_OK)
		return -1;
	sqfs_dentry_init(&dentry, name_buffer);
	while (sqfs_dir_next(rc->fs, &cursor, &dentry, &status)) {
		struct fuse_entry_param entry = {0};

		if (l->plus) {
			if (entry_of(rc, &dentry, &entry) < 0)
				return -1;
		} else {
			entry.attr.st_ino = image_fs_ino(rc->ifs, sqfs_dentry_inode(&dentry));
			entry.attr.st_mode = sqfs_dentry_mode(&dentry);
		}
		if (!list_entry(l, sqfs_dentry_name(&dentry), &entry, sqfs_dentry_next_offset(&dentry)))
			return 0;
	}
	return status == SQFS_OK ? 0 : -1;
}

static void list_mount_points(struct listing *l, const struct request_context *rc,
                              fuse_ino_t dir, size_t from)
{
	const struct mount_point *mp;

	while (!l->full && (mp = mount_points_next_child(&rc->ifs->mount_points, dir, &from))) {
		struct fuse_entry_param entry;

		mount_point_entry(rc, mp, &entry);
		list_entry(l, mp->name, &entry, MOUNT_POINT_OFFSET + (off_t)from);
	}
}

static void list_directory(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                           bool plus)
{
	struct listing l = {.req = req, .size = size, .plus = plus};
	struct request_context rc;
	bool in_image = !mount_point_ino(ino);
	sqfs_inode dir;

	if (request_begin(req, &rc) < 0)
		return;
	if (in_image) {
		if (inode_of(req, &rc, ino, &dir) < 0)
			return;
		if (!S_ISDIR(dir.base.mode)) {
			fuse_reply_err(req, ENOTDIR);
			return;
		}
	} else {
		const struct mount_point *mp = mount_point_or_reply(req, &rc, ino);

		if (mp == NULL)
			return;
		if (!mp->dir) {
			fuse_reply_err(req, ENOTDIR);
			return;
		}
	}
	l.buffer = malloc(size);
	if (l.buffer == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (in_image && offset < MOUNT_POINT_OFFSET && list_image_entries(&l, &rc, &dir, offset) < 0) {
		free(l.buffer);
		reply_damaged(req, &rc, "a directory");
		return;
	}
	list_mount_points(&l, &rc, ino,
	                  offset < MOUNT_POINT_OFFSET ? 0 : (size_t)(offset - MOUNT_POINT_OFFSET));
	fuse_reply_buf(req, l.buffer, l.used);
	free(l.buffer);
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
	if (mount_point_ino(ino)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (inode_of(req, &rc, ino, &inode) < 0)
		return;
	value = malloc(size ? size : 1);
	if (value == NULL)
		fuse_reply_err(req, ENOMEM);
	else if (sqfs_xattr_lookup(rc.fs, &inode, name, value, &real) != SQFS_OK)
		reply_damaged(req, &rc, "extended attributes");
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

	if (mount_point_ino(ino)) {  /* no attributes */
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
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
	reply_damaged(req, &rc, "extended attributes");
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
