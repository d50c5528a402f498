#include "config.h"

#include <elf.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/environ.h"
#include "common/library_dirs.h"
#include "starter/imageserver/prefetch.h"

#define MAX_FILES 32
#define MAX_RANGES 128

struct range {
	sqfs_inode inode;
	uint64_t offset, length;
};

struct prefetch {
	struct image_fs *ifs;
	sqfs *fs;
	struct range ranges[MAX_RANGES];  /* file pieces to decompress */
	size_t range_count;
	pthread_mutex_t lock;             /* guards the cursor and budget */
	size_t next_range;
	uint64_t next_offset;
	bool helper;                      /* a second thread shares the work */
	sqfs_inode files[MAX_FILES];      /* found, each once, to read in order */
	size_t file_count;
	size_t budget;                    /* bytes of blocks it may still pull in */
	char *command;
	char *search_path;
};

/* Queue the file at path, once; false when the image has no such file. */
static bool want(struct prefetch *p, const char *path)
{
	sqfs_inode inode;

	if (image_fs_resolve(p->ifs, p->fs, path, &inode) < 0 || !S_ISREG(inode.base.mode))
		return false;
	for (size_t i = 0; i < p->file_count; i++)
		if (p->files[i].base.inode_number == inode.base.inode_number)
			return true;
	if (p->file_count < MAX_FILES)
		p->files[p->file_count++] = inode;
	return true;
}

static void want_range(struct prefetch *p, sqfs_inode *inode, uint64_t offset, uint64_t length)
{
	if (p->range_count < MAX_RANGES && length > 0)
		p->ranges[p->range_count++] = (struct range){*inode, offset, length};
}

/* The next piece of the ranges, up to the end of its image block, or false
 * when all are taken or the budget is spent. */
static bool take_piece(struct prefetch *p, struct range *piece)
{
	bool taken = false;

	pthread_mutex_lock(&p->lock);
	while (p->next_range < p->range_count && p->budget > 0) {
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
		*piece = (struct range){r->inode, r->offset + p->next_offset, length};
		p->next_offset += length;
		p->budget -= length < p->budget ? length : p->budget;
		taken = true;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return taken;
}

/* Decompress pieces into the block cache until none is left; run by the
 * prefetch thread and a helper, so both processors share the work. */
static void *warm_pieces(void *arg)
{
	struct prefetch *p = arg;
	sqfs *fs = image_fs_reader(p->ifs);
	struct block_span spans[4];
	struct range piece;

	while (fs != NULL && take_piece(p, &piece)) {
		long n = image_fs_spans(p->ifs, fs, &piece.inode, piece.offset, piece.length,
		                        spans, sizeof spans / sizeof spans[0]);

		if (n > 0)
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
		if (want(p, path))
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

static void read_elf(struct prefetch *p, sqfs_inode *inode, const Elf64_Ehdr *header)
{
	Elf64_Phdr ph[64];
	size_t count = header->e_phnum;

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
	for (size_t i = 0; i < count; i++)
		if (ph[i].p_type == PT_LOAD)
			want_range(p, inode, ph[i].p_offset, ph[i].p_filesz);
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

static void read_file(struct prefetch *p, sqfs_inode *inode)
{
	union {
		Elf64_Ehdr elf;
		char bytes[256];
	} head;
	long got;

	got = image_fs_pread(p->ifs, p->fs, inode, 0, &head, sizeof head);
	if (got >= (long)sizeof head.elf && memcmp(head.elf.e_ident, ELFMAG, SELFMAG) == 0 &&
	    head.elf.e_ident[EI_CLASS] == ELFCLASS64)
		read_elf(p, inode, &head.elf);
	else if (got > 2 && head.bytes[0] == '#' && head.bytes[1] == '!')
		read_script(p, head.bytes + 2 + strspn(head.bytes + 2, " \t"),
		            (size_t)got - 2 - strspn(head.bytes + 2, " \t"));
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
		if (dir[0] == '/' && want(p, path))
			return;
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

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;

	run_when_idle();
	p->fs = image_fs_reader(p->ifs);
	if (p->fs != NULL) {
		pthread_t helper;
		bool helping;

		want_command(p);
		for (size_t next = 0; next < p->file_count; next++)
			read_file(p, &p->files[next]);
		helping = p->helper && pthread_create(&helper, NULL, warm_pieces, p) == 0;
		warm_pieces(p);
		if (helping)
			pthread_join(helper, NULL);
	}
	pthread_mutex_destroy(&p->lock);
	free(p->command);
	free(p->search_path);
	free(p);
	return NULL;
}

void prefetch_start(struct image_fs *ifs, const struct capsula_plan *plan)
{
	const char *search_path = env_get(plan->envp, "PATH");
	struct prefetch *p;
	pthread_t thread;

	if (!plan->prefetch || plan->argv == NULL)
		return;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return;
	if (search_path == NULL || search_path[0] == '\0')
		search_path = FALLBACK_SEARCH_PATH;
	p->ifs = ifs;
	p->budget = plan->fuse_cache_bytes / 2;
	p->helper = plan->fuse_threads > 1;
	pthread_mutex_init(&p->lock, NULL);
	p->command = strdup(plan->argv[0]);
	p->search_path = strdup(search_path);
	if (p->command == NULL || p->search_path == NULL ||
	    pthread_create(&thread, NULL, prefetch_main, p) != 0) {
		free(p->command);
		free(p->search_path);
		free(p);
		return;
	}
	pthread_detach(thread);
}
