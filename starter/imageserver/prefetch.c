#include "config.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/environ.h"
#include "common/library_dirs.h"
#include "common/open_in_root.h"
/* libsquashfuse's headers choose the FUSE API version: they come first. */
#include "starter/imageserver/prefetch.h"

#include <fuse3/fuse_lowlevel.h>

#define MAX_FILES 32
#define MAX_RANGES 128

struct range {
	size_t file;  /* in p->files */
	uint64_t offset, length;
	bool first;   /* one block an exec reads first, taken before the rest */
};

/* A file to warm, and where the kernel knows it: pushing a block into the
 * kernel's page cache needs the inode there (looked up through the mount,
 * held open meanwhile) and its number. */
struct wanted_file {
	sqfs_inode inode;
	char *path;
	int fd;
	uint64_t nodeid;  /* 0: not looked up yet */
	bool lookup_failed;
};

struct prefetch {
	struct image_fs *ifs;
	sqfs *fs;
	struct range ranges[MAX_RANGES];  /* file pieces to decompress */
	size_t range_count;
	/* Each ELF file's loaded part, moved to ranges once every file's
	 * first blocks are there. */
	struct range rest[MAX_FILES];
	size_t rest_count;
	pthread_mutex_t lock;             /* guards the cursor and budget */
	size_t next_range;
	uint64_t next_offset;
	bool helper;                      /* a second thread shares the work */
	struct wanted_file files[MAX_FILES];  /* found, each once, to read in order */
	size_t file_count;
	int mount_fd;                     /* the image mount's root, or -1 */
	size_t budget;                    /* bytes of blocks it may still pull in */
	char *command;
	char *search_path;
	bool accounts;                    /* the holder will read passwd and group */
	bool eager;                       /* --hold: nobody waits, the ranks come later */
	pthread_t thread;
	bool stopping;                    /* set by prefetch_stop */
};

static bool stopping(struct prefetch *p)
{
	return __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE);
}

/* Queue the file at path, once. Returns its index in p->files, or -1 when
 * the image has no such file or the list is full. */
static long want(struct prefetch *p, const char *path)
{
	sqfs_inode inode;
	char *copy;

	if (image_fs_resolve(p->ifs, p->fs, path, &inode) < 0 || !S_ISREG(inode.base.mode))
		return -1;
	for (size_t i = 0; i < p->file_count; i++)
		if (p->files[i].inode.base.inode_number == inode.base.inode_number)
			return (long)i;
	if (p->file_count == MAX_FILES || (copy = strdup(path)) == NULL)
		return -1;
	p->files[p->file_count] = (struct wanted_file){.inode = inode, .path = copy, .fd = -1};
	return (long)p->file_count++;
}

/* Whole blocks of the file: the kernel's page cache takes only whole
 * pages, and a block is what is decompressed anyway. */
static struct range block_range(struct prefetch *p, size_t file, uint64_t offset,
                                uint64_t length)
{
	uint64_t size = p->files[file].inode.xtra.reg.file_size;
	uint64_t start = offset / p->ifs->block_size * p->ifs->block_size;
	uint64_t end = offset + length;

	end = (end + p->ifs->block_size - 1) / p->ifs->block_size * p->ifs->block_size;
	if (end > size)
		end = size;
	return (struct range){file, start, end - start, false};
}

static void want_range(struct prefetch *p, size_t file, uint64_t offset, uint64_t length)
{
	if (length == 0 || offset >= p->files[file].inode.xtra.reg.file_size ||
	    p->range_count == MAX_RANGES)
		return;
	p->ranges[p->range_count++] = block_range(p, file, offset, length);
}

static bool is_first_block(const struct prefetch *p, size_t file, uint64_t block_start)
{
	for (size_t i = 0; i < p->range_count; i++)
		if (p->ranges[i].first && p->ranges[i].file == file &&
		    p->ranges[i].offset == block_start)
			return true;
	return false;
}

/* The block at offset, once, ahead of every file's loaded part. */
static void want_first_block(struct prefetch *p, size_t file, uint64_t offset)
{
	struct range block;

	if (offset >= p->files[file].inode.xtra.reg.file_size || p->range_count == MAX_RANGES)
		return;
	block = block_range(p, file, offset, 1);
	block.first = true;
	if (!is_first_block(p, file, block.offset))
		p->ranges[p->range_count++] = block;
}

/* A file's loaded part, queued once every file's first blocks are. */
static void want_rest(struct prefetch *p, size_t file, uint64_t offset, uint64_t length)
{
	if (length == 0 || offset >= p->files[file].inode.xtra.reg.file_size ||
	    p->rest_count == MAX_FILES)
		return;
	p->rest[p->rest_count++] = block_range(p, file, offset, length);
}

static void queue_rest(struct prefetch *p)
{
	for (size_t i = 0; i < p->rest_count && p->range_count < MAX_RANGES; i++)
		p->ranges[p->range_count++] = p->rest[i];
}

/* The next piece of the ranges, up to the end of its image block, or false
 * when all are taken or the budget is spent. */
static bool take_piece(struct prefetch *p, struct range *piece)
{
	bool taken = false;

	pthread_mutex_lock(&p->lock);
	while (p->next_range < p->range_count && p->budget > 0 && !stopping(p)) {
		struct range *r = &p->ranges[p->next_range];
		uint64_t length;

		if (p->next_offset >= r->length) {
			p->next_range++;
			p->next_offset = 0;
			continue;
		}
		/* Pieces end at block boundaries, so that no two share a block. */
		length = p->ifs->block_size - (r->offset + p->next_offset) % p->ifs->block_size;
		if (length > r->length - p->next_offset)
			length = r->length - p->next_offset;
		if (!r->first && is_first_block(p, r->file, r->offset + p->next_offset)) {
			p->next_offset += length;  /* pushed already */
			continue;
		}
		*piece = (struct range){r->file, r->offset + p->next_offset, length, false};
		p->next_offset += length;
		p->budget -= length < p->budget ? length : p->budget;
		taken = true;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return taken;
}

/* The kernel's number for a wanted file, looking it up through the mount
 * the first time; 0 when it cannot be had. Two threads may both look: the
 * second finds the kernel's cached entry. */
static uint64_t kernel_inode(struct prefetch *p, struct wanted_file *file)
{
	uint64_t nodeid = __atomic_load_n(&file->nodeid, __ATOMIC_ACQUIRE);
	struct stat st;
	int fd;

	if (nodeid != 0 || p->mount_fd < 0 || stopping(p) ||
	    __atomic_load_n(&file->lookup_failed, __ATOMIC_RELAXED))
		return nodeid;
	fd = open_in_root(p->mount_fd, file->path, O_PATH);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		__atomic_store_n(&file->lookup_failed, true, __ATOMIC_RELAXED);
		return 0;
	}
	/* The first open holds the inode; a racing second one is let go. */
	if (__atomic_compare_exchange_n(&file->fd, &(int){-1}, fd, false, __ATOMIC_ACQ_REL,
	                                __ATOMIC_ACQUIRE))
		__atomic_store_n(&file->nodeid, (uint64_t)st.st_ino, __ATOMIC_RELEASE);
	else
		close(fd);
	return (uint64_t)st.st_ino;
}

/* Hand decompressed data to the kernel's page cache, so that the command's
 * page faults find it there instead of each asking the image server: on a
 * small virtual machine every such round trip costs about 0.1 ms. Blocks
 * stored uncompressed are left to the kernel, which splices them itself.
 * True when all of it was pushed. */
static bool push_to_kernel(struct prefetch *p, struct range *piece, struct block_span *spans,
                           long count)
{
	uint64_t nodeid = kernel_inode(p, &p->files[piece->file]);
	uint64_t offset = piece->offset;

	if (nodeid == 0)
		return false;
	for (long i = 0; i < count; i++) {
		struct fuse_bufvec data = FUSE_BUFVEC_INIT(spans[i].length);

		if (spans[i].data == NULL)
			return false;
		data.buf[0].mem = (void *)spans[i].data;
		if (fuse_lowlevel_notify_store(p->ifs->session, nodeid, (off_t)offset, &data,
		                               FUSE_BUF_NO_SPLICE) != 0)
			return false;
		offset += spans[i].length;
	}
	return true;
}

/* Decompress pieces into the block cache until none is left; run by the
 * prefetch thread and a helper, so both processors share the work. */
static void *warm_pieces(void *arg)
{
	struct prefetch *p = arg;
	sqfs *fs = image_fs_reader(p->ifs);
	struct block_span spans[4];
	struct range piece;

	prctl(PR_SET_NAME, "capsula-warmup", 0, 0, 0);
	while (fs != NULL && take_piece(p, &piece)) {
		long n = image_fs_spans(p->ifs, fs, &p->files[piece.file].inode, piece.offset,
		                        piece.length, spans, sizeof spans / sizeof spans[0]);

		/* Pushed, a block need not stay: its memory serves the next. */
		if (n > 0 && push_to_kernel(p, &piece, spans, n))
			image_fs_release_pushed(p->ifs, spans, (size_t)n);
		else if (n > 0)
			image_fs_release(p->ifs, spans, (size_t)n);
	}
	return NULL;
}

/* The file offset of a virtual address, through the PT_LOAD that maps it. */
static int64_t file_offset(const Elf64_Phdr *ph, size_t count, uint64_t vaddr)
{
	for (size_t i = 0; i < count; i++)
		if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr &&
		    vaddr < ph[i].p_vaddr + ph[i].p_filesz)
			return (int64_t)(vaddr - ph[i].p_vaddr + ph[i].p_offset);
	return -1;
}

static void want_library(struct prefetch *p, const char *name)
{
	for (size_t i = 0; library_dirs[i] != NULL; i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof path, "%s/%s", library_dirs[i], name);
		if (want(p, path) >= 0)
			return;
	}
}

static void want_needed(struct prefetch *p, sqfs_inode *inode, const Elf64_Phdr *ph,
                        size_t count, const Elf64_Phdr *dynamic)
{
	Elf64_Dyn entries[256];
	size_t n = dynamic->p_filesz / sizeof entries[0];
	uint64_t strtab = 0;
	int64_t strtab_offset;

	if (n > 256)
		n = 256;
	if (image_fs_pread(p->ifs, p->fs, inode, dynamic->p_offset, entries,
	                   n * sizeof entries[0]) != (long)(n * sizeof entries[0]))
		return;
	for (size_t i = 0; i < n && entries[i].d_tag != DT_NULL; i++)
		if (entries[i].d_tag == DT_STRTAB)
			strtab = entries[i].d_un.d_ptr;
	strtab_offset = file_offset(ph, count, strtab);
	if (strtab_offset < 0)
		return;
	for (size_t i = 0; i < n && entries[i].d_tag != DT_NULL; i++) {
		char name[256];
		long got;

		if (entries[i].d_tag != DT_NEEDED)
			continue;
		got = image_fs_pread(p->ifs, p->fs, inode,
		                     (uint64_t)strtab_offset + entries[i].d_un.d_val,
		                     name, sizeof name - 1);
		if (got <= 0)
			continue;
		name[got] = '\0';
		if (strlen(name) < (size_t)got && strchr(name, '/') == NULL)
			want_library(p, name);
	}
}

static void read_elf(struct prefetch *p, size_t file, const Elf64_Ehdr *header)
{
	sqfs_inode *inode = &p->files[file].inode;
	uint64_t start = UINT64_MAX, end = 0;
	Elf64_Phdr ph[64];
	size_t count = header->e_phnum;
	int64_t entry;

	if (header->e_phentsize != sizeof ph[0] || count > 64)
		return;
	if (image_fs_pread(p->ifs, p->fs, inode, header->e_phoff, ph, count * sizeof ph[0]) !=
	    (long)(count * sizeof ph[0]))
		return;
	for (size_t i = 0; i < count; i++) {
		char interpreter[PATH_MAX];
		size_t length = ph[i].p_filesz < sizeof interpreter ? ph[i].p_filesz : 0;

		if (ph[i].p_type == PT_INTERP && length > 1 &&
		    image_fs_pread(p->ifs, p->fs, inode, ph[i].p_offset, interpreter, length) ==
		    (long)length) {
			interpreter[length - 1] = '\0';
			want(p, interpreter);
		}
	}
	for (size_t i = 0; i < count; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			want_needed(p, inode, ph, count, &ph[i]);
	/* What an exec touches first: the headers, the entry point, and the
	 * writable data the loader and the C library's start-up relocate and
	 * initialise. Each one block, before any file's whole loaded part. */
	want_first_block(p, file, 0);
	entry = file_offset(ph, count, header->e_entry);
	if (entry >= 0)
		want_first_block(p, file, (uint64_t)entry);
	for (size_t i = 0; i < count; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_W) && ph[i].p_filesz > 0) {
			want_first_block(p, file, ph[i].p_offset);
			want_first_block(p, file, ph[i].p_offset + ph[i].p_filesz - 1);
		}
	/* One range over all the loaded segments: widened to whole blocks,
	 * ranges of their own would share blocks, each pushed twice. */
	for (size_t i = 0; i < count; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_filesz > 0) {
			uint64_t segment_end = ph[i].p_offset + ph[i].p_filesz;

			start = ph[i].p_offset < start ? ph[i].p_offset : start;
			end = segment_end > end ? segment_end : end;
		}
	if (end > start)
		want_rest(p, file, start, end - start);
}

static void read_script(struct prefetch *p, const char *start, size_t length)
{
	char line[PATH_MAX];
	size_t n = length < sizeof line - 1 ? length : sizeof line - 1;

	memcpy(line, start, n);
	line[n] = '\0';
	line[strcspn(line, " \t\n")] = '\0';
	if (line[0] == '/')
		want(p, line);
}

static void read_file(struct prefetch *p, size_t file)
{
	sqfs_inode *inode = &p->files[file].inode;
	union {
		Elf64_Ehdr elf;
		char bytes[256];
	} head;
	long got;

	got = image_fs_pread(p->ifs, p->fs, inode, 0, &head, sizeof head);
	if (got >= (long)sizeof head.elf && memcmp(head.elf.e_ident, ELFMAG, SELFMAG) == 0 &&
	    head.elf.e_ident[EI_CLASS] == ELFCLASS64)
		read_elf(p, file, &head.elf);
	else if (got > 2 && head.bytes[0] == '#' && head.bytes[1] == '!')
		read_script(p, head.bytes + 2 + strspn(head.bytes + 2, " \t"),
		            (size_t)got - 2 - strspn(head.bytes + 2, " \t"));
}

/* Look path up through the mount, as the rank's exec will when it
 * searches the command's PATH: the image server's answer to a miss never
 * expires, so the exec then passes that directory without asking it. */
static void remember_miss(struct prefetch *p, const char *path)
{
	int fd;

	if (p->mount_fd < 0 || stopping(p))
		return;
	fd = open_in_root(p->mount_fd, path, O_PATH);
	if (fd >= 0)
		close(fd);
}

static void want_command(struct prefetch *p)
{
	char *dirs = p->search_path;

	if (strchr(p->command, '/')) {
		if (p->command[0] == '/')
			want(p, p->command);
		return;
	}
	for (char *dir = strtok(dirs, ":"); dir; dir = strtok(NULL, ":")) {
		char path[PATH_MAX];

		snprintf(path, sizeof path, "%s/%s", dir, p->command);
		if (dir[0] != '/')
			continue;
		if (want(p, path) >= 0)
			return;
		remember_miss(p, path);
	}
}

/* Work only where the launch leaves a processor idle: while the holder
 * builds the root it waits on the image server often, and on a node with
 * few processors the prefetch must not delay either of them. Best effort:
 * without it the prefetch merely competes. The helper inherits it. */
static void run_when_idle(void)
{
	struct sched_param none = {.sched_priority = 0};

	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &none);
}

/* The image's account files, read by the holder to add the user: whole,
 * and first, since they are needed first. */
static void want_accounts(struct prefetch *p)
{
	static const char *const paths[] = {"/etc/passwd", "/etc/group"};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		long file = want(p, paths[i]);

		if (file >= 0)
			want_range(p, (size_t)file, 0, p->files[file].inode.xtra.reg.file_size);
	}
}

/* The descriptors held for pushing: a holder may live for hours. */
static void close_descriptors(struct prefetch *p)
{
	for (size_t i = 0; i < p->file_count; i++)
		if (p->files[i].fd >= 0) {
			close(p->files[i].fd);
			p->files[i].fd = -1;
		}
	if (p->mount_fd >= 0)
		close(p->mount_fd);
	p->mount_fd = -1;
}

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;

	prctl(PR_SET_NAME, "capsula-warmup", 0, 0, 0);
	/* A held container's ranks come after it is ready: warming is then
	 * the best use of the time, not something to keep out of the way. */
	if (!p->eager)
		run_when_idle();
	p->fs = image_fs_reader(p->ifs);
	if (p->fs != NULL) {
		pthread_t helper;
		bool helping;

		if (p->accounts)
			want_accounts(p);
		want_command(p);
		for (size_t next = 0; next < p->file_count; next++)
			read_file(p, next);
		queue_rest(p);
		helping = p->helper && pthread_create(&helper, NULL, warm_pieces, p) == 0;
		warm_pieces(p);
		if (helping)
			pthread_join(helper, NULL);
	}
	close_descriptors(p);
	return NULL;
}

static void prefetch_free(struct prefetch *p)
{
	close_descriptors(p);
	for (size_t i = 0; i < p->file_count; i++)
		free(p->files[i].path);
	pthread_mutex_destroy(&p->lock);
	free(p->command);
	free(p->search_path);
	free(p);
}

struct prefetch *prefetch_start(struct image_fs *ifs, const struct capsula_plan *plan,
                                const char *mountpoint)
{
	const char *search_path = env_get(plan->envp, "PATH");
	struct prefetch *p;

	if (!plan->prefetch || plan->argv == NULL)
		return NULL;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	if (search_path == NULL || search_path[0] == '\0')
		search_path = FALLBACK_SEARCH_PATH;
	p->ifs = ifs;
	/* Without it the blocks are still decompressed, only not pushed. */
	p->mount_fd = open(mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
	p->budget = plan->fuse_cache_bytes / 2;
	p->helper = plan->fuse_threads > 1;
	p->accounts = !plan->fakeroot;
	p->eager = plan->hold;
	pthread_mutex_init(&p->lock, NULL);
	p->command = strdup(plan->argv[0]);
	p->search_path = strdup(search_path);
	if (p->command == NULL || p->search_path == NULL ||
	    pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
		prefetch_free(p);
		return NULL;
	}
	return p;
}

void prefetch_stop(struct prefetch *p)
{
	if (p == NULL)
		return;
	__atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
	pthread_join(p->thread, NULL);
	prefetch_free(p);
}
