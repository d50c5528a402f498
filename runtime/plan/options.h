/* Command-line options of the subcommands that start a container. */
#ifndef CAPSULA_OPTIONS_H
#define CAPSULA_OPTIONS_H

#include <stdbool.h>

#include "common/error.h"
#include "common/plan.h"
#include "common/strvec.h"
#include "runtime/config/bindspec.h"
#include "runtime/image/image_run.h"
#include "runtime/plan/gpu.h"

enum join_mode { JOIN_AUTO, JOIN_NEVER };

/* Default binds --no-mount can leave out. */
enum {
	NO_MOUNT_HOME = 1u << 0,
	NO_MOUNT_TMP = 1u << 1,
	NO_MOUNT_CWD = 1u << 2,
	NO_MOUNT_SHM = 1u << 3,
};

struct exec_options {
	struct bind_list binds;    /* -B, in the order given */
	char *home;                /* --home SRC[:DST] */
	bool no_home;
	bool contain;              /* private tmpfs home and /tmp, no cwd */
	unsigned no_mount;         /* NO_MOUNT_* */
	char *pwd;                 /* --pwd */
	bool writable_tmpfs;
	unsigned long long tmpfs_bytes;  /* --tmpfs-size; 0: the site's or default */
	struct strvec overlays;    /* --overlay DIR|IMG, in order */
	bool fakeroot;
	unsigned gpus;             /* GPU_NVIDIA | GPU_AMD */
	struct strvec devices;     /* --device VENDOR/CLASS=NAME (CDI), in order */
	struct strvec env;         /* --env K=V, in order */
	struct strvec env_files;   /* --env-file */
	bool cleanenv;
	enum capsula_dev_mode dev_mode;
	enum join_mode join;
	const char *job;           /* --job ID: the launches that share a container */
	bool hold;                 /* --hold: make it ready and keep it, no command */
	int hold_notify_fd;        /* --hold-notify FD, or -1 */
	int verbosity;
	bool dry_run;
	bool timing;
	bool help;
	const char *tls_ca;        /* docker://REF: --tls-ca FILE for its pull */
	bool insecure;             /* docker://REF: --insecure, plain HTTP */

	enum run_mode mode;
	const char *image;
	char **command;            /* points into argv; may be empty for run/shell */
	const char *instance_name; /* for instance start */
};

/* Parse "exec [OPTIONS] IMAGE COMMAND [ARG...]" where argv[0] is the
 * subcommand name (exec, run, shell or start), which also sets the mode.
 * Returns 0, or -1 with err set (status 125). With --help, returns 0 with
 * help set and nothing else required. */
int exec_options_parse(int argc, char **argv, struct exec_options *opts,
                       capsula_error *err);
void exec_options_free(struct exec_options *opts);

/* The --help text of a mode. */
const char *exec_usage(enum run_mode mode);

#endif
