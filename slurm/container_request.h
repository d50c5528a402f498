/* What a job step asks of the SPANK plugin, in pyxis's words
 * (--container-image, --container-mounts, ...), and the capsula command
 * line that gives it. No Slurm calls here: the plugin fills it in. */
#ifndef CAPSULA_CONTAINER_REQUEST_H
#define CAPSULA_CONTAINER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* Where the held capsula finds the socket it sends its notice on
 * (--hold-notify, common/join_notice.h). */
#define REQUEST_NOTICE_FD 3

/* A yes/no option: not given, given as no, given as yes. */
enum choice { CHOICE_UNSET = -1, CHOICE_NO = 0, CHOICE_YES = 1 };

struct container_request {
	char *image;          /* --container-image, as given */
	char *mounts;         /* --container-mounts SRC:DST[:ro|rw],... */
	char *workdir;        /* --container-workdir */
	char *name;           /* --container-name */
	char *env_names;      /* --container-env NAME,... */
	enum choice writable;     /* --container-writable / --container-readonly */
	enum choice mount_home;   /* --[no-]container-mount-home (default yes) */
	enum choice remap_root;   /* --[no-]container-remap-root (default no) */
	enum choice entrypoint;   /* --[no-]container-entrypoint (default no) */
	enum choice nv;           /* --container-nv */
	const char *script;   /* a batch step's script, to be bound where it is */
	const char *job;      /* the name the step's tasks share a container by */
	bool hold;            /* the command line that keeps it ready (--hold) */
	bool hold_notify;     /* with hold: its notice on REQUEST_NOTICE_FD */
};

/* Is anything asked for at all? A step without these options is left as
 * it is. */
bool request_wanted(const struct container_request *r);

/* The image as capsula takes it: a path (absolute, ./relative, or a .sqfs
 * or .sif file) or docker://REF stays; pyxis's [USER@][REGISTRY#]IMAGE[:TAG]
 * becomes docker://[REGISTRY/]IMAGE[:TAG] (credentials are capsula login's).
 * Returns 0, or -1 with why. */
int request_image_ref(const char *given, char *out, size_t size, char *why, size_t why_size);

/* SRC:DST[:ro|rw] entries, comma-separated, both absolute. */
int request_check_mounts(const char *mounts, char *why, size_t why_size);

/* The command line: CAPSULA exec|run [OPTIONS] IMAGE [--] COMMAND...
 * image is request_image_ref's; overlay_dir the named container's
 * writable layer or NULL; env the step's environment (for
 * --container-env); command the task's argv. NULL with why on failure;
 * free with request_argv_free. */
char **request_argv(const struct container_request *r, const char *capsula, const char *image,
                    const char *overlay_dir, char *const *env, char *const *command, char *why,
                    size_t why_size);
void request_argv_free(char **argv);

#endif
