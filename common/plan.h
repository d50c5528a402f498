/* The launch plan: everything runtime/ decided, as plain data, and all that
 * starter/ needs to build and enter the container. starter/ never looks at
 * argv, configuration files or the environment policy; runtime/ never mounts. */
#ifndef CAPSULA_PLAN_H
#define CAPSULA_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum capsula_dev_mode {
	DEV_MINIMAL,  /* a tmpfs /dev with a few host devices bound in */
	DEV_HOST,     /* the host's /dev, bound whole */
	DEV_NONE,     /* nothing at /dev: a build reading the image's own tree */
};

enum {
	BIND_READONLY = 1u << 0,  /* read-only inside the container */
	BIND_OPTIONAL = 1u << 1,  /* skip quietly when the host source is missing */
	BIND_DEVICES = 1u << 2,   /* device nodes work (only devices the policy allows) */
	BIND_TMPFS = 1u << 3,     /* an empty private tmpfs at destination; no source */
	BIND_DEVPTS = 1u << 4,    /* a devpts of the container's own, its ptmx beside it */
};

#define JOIN_KEY_SIZE 64

struct capsula_bind {
	char *source;       /* absolute host path ("tmpfs", "devpts" with those flags) */
	char *destination;  /* absolute path inside the container */
	unsigned flags;
};

struct capsula_image {
	char *path;        /* as the user named it, for messages and fsname */
	int fd;            /* open, read-only, validated */
	uint64_t offset;   /* where the squashfs starts in the file */
	dev_t dev;         /* identity of the file, for the join key */
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	bool cached;       /* a pull cache entry, checked against the cache's record */
};

/* A writable layer over the image (kernel overlayfs in the user namespace). */
enum capsula_overlay {
	OVERLAY_NONE,
	OVERLAY_TMPFS,  /* --writable-tmpfs: changes vanish with the container */
	OVERLAY_DIR,    /* --overlay DIR: changes kept in DIR/upper on the host */
};

/* Subordinate ids from /etc/subuid or /etc/subgid; count 0 when none. */
struct id_range {
	unsigned long start;
	unsigned long count;
};

/* overlayfs takes up to 500 lower layers; a launch has no use for more
 * than a few, a recipe's step for one a step. */
#define MAX_IMAGE_LAYERS 128

struct capsula_plan {
	struct capsula_image image;
	struct capsula_image *layers;  /* --overlay IMG: read-only, bottom first */
	size_t layer_count;

	enum capsula_overlay overlay;
	char *overlay_dir;             /* OVERLAY_DIR: the host directory, resolved */
	unsigned long long tmpfs_bytes;  /* OVERLAY_TMPFS: its size */

	/* --fakeroot: the user is uid 0 inside. With both ranges and both
	 * helpers, ids 1.. map to the user's subordinate ids as well. */
	bool fakeroot;
	struct id_range subuids, subgids;
	/* The subordinate ids from 0 and the user after them, as a rootless
	 * mmdebstrap or podman maps them (the user as 0 otherwise). */
	bool subids_from_root;
	char *newuidmap, *newgidmap;

	uid_t uid;
	gid_t gid;

	enum capsula_dev_mode dev_mode;
	struct capsula_bind *binds;  /* in mount order: parents before children */
	size_t bind_count;

	char *home;   /* the container's $HOME, NULL with --no-home */
	char *cwd;    /* where the command starts, inside the container */

	char **argv;  /* the command, argv[0] looked up in the container's PATH */
	char **envp;  /* the command's whole environment */

	/* Ranks whose plans carry the same join key share one container. */
	char join_key[JOIN_KEY_SIZE];
	/* The user's private directory of holder sockets (O_PATH): no other
	 * user can make, open or list a name in it. */
	int socket_dir_fd;
	bool join_shared;        /* the key came from a launcher */
	bool join_existing;      /* an instance: join its holder, never start one */
	bool hold;               /* keep the job's container ready, run nothing */
	/* With hold: a socket to send how to join the ready container on
	 * (hold_notify.h), or -1. */
	int hold_notify_fd;
	unsigned grace_ms;       /* how long an idle holder waits for late ranks */

	unsigned fuse_threads;   /* FUSE worker threads of the holder */
	size_t fuse_cache_bytes; /* its cache of decompressed image blocks */
	bool prefetch;           /* warm that cache with the command's files */

	int verbosity;           /* 0 normal, -1 quiet, >0 more */
	bool timing;             /* report each launch phase (--timing, -v) */
	uint64_t start_us;       /* when capsula started, for the timings */
};

/* grace_ms of an instance's holder: it stays until stopped. */
#define GRACE_FOREVER UINT32_MAX

void plan_free(struct capsula_plan *plan);

/* The user's ids as the container sees them. */
static inline uid_t plan_inner_uid(const struct capsula_plan *plan)
{
	return plan->fakeroot ? 0 : plan->uid;
}

static inline gid_t plan_inner_gid(const struct capsula_plan *plan)
{
	return plan->fakeroot ? 0 : plan->gid;
}

/* A join key nobody else will have: "capsula-UID-UUID". */
void join_key_private(uid_t uid, char *key, size_t size);

#endif
