#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/option_hint.h"
#include "common/text.h"
#include "runtime/config/cdi_spec.h"
#include "runtime/plan/options.h"

#define COMMON_OPTIONS \
	"  -B, --bind SRC[:DST[:ro|rw]]  bind a host path (repeatable, comma lists)\n" \
	"      --home SRC[:DST]      bind SRC as the home directory (default: $HOME)\n" \
	"      --no-home             do not bind a home directory\n" \
	"  -c, --contain             no host home, /tmp or current directory: private\n" \
	"                            empty ones (tmpfs) instead\n" \
	"      --no-mount LIST       leave out default binds: home,tmp,cwd,shm\n" \
	"      --pwd DIR             start in DIR inside the container\n" \
	"      --writable-tmpfs      the image writable, changes kept in memory and\n" \
	"                            dropped with the container\n" \
	"      --tmpfs-size SIZE     their limit (default 2G; K, M, G, T suffixes)\n" \
	"      --overlay DIR         the image writable, changes kept in DIR on the\n" \
	"                            host (DIR/upper); one DIR, made if missing\n" \
	"      --overlay IMG.sqfs    a read-only layer over the image (repeatable,\n" \
	"                            later ones on top)\n" \
	"      --fakeroot            be uid 0 inside (a full id map with /etc/subuid)\n" \
	"      --nv                  NVIDIA GPUs: devices and the host's driver\n" \
	"      --rocm                AMD GPUs: devices and the host's ROCm libraries\n" \
	"      --device VENDOR/CLASS=NAME  a CDI device (the node's specs in /etc/cdi,\n" \
	"                            /var/run/cdi): its nodes, mounts, variables\n" \
	"      --env K=V             set a variable (repeatable; may set PATH)\n" \
	"      --env-file FILE       set variables from FILE (K=V lines)\n" \
	"  -e, --cleanenv            do not pass the host environment\n" \
	"      --dev minimal|host    a minimal /dev (default) or the host's\n" \
	"      --join auto|never     share one container per job and node (default\n" \
	"                            auto: when started by mpirun or srun)\n" \
	"      --job ID              the job whose launches share the container,\n" \
	"                            instead of the launcher's variables\n" \
	"      --hold                make the job's container ready and keep it\n" \
	"                            until killed, without running COMMAND\n" \
	"      --hold-notify FD      with --hold: once ready, send on the socket FD\n" \
	"                            how to join it (for the SPANK plugin)\n" \
	"  -v, --verbose             say more (repeatable)\n" \
	"  -q, --quiet               only errors\n" \
	"      --dry-run             print the launch plan and do nothing\n" \
	"      --timing              print how long each launch phase took (us)\n" \
	"      --tls-ca FILE         docker://REF: the registry's CA (default\n" \
	"                            $CAPSULA_TLS_CA), as for capsula pull\n" \
	"      --insecure            docker://REF: reach the registry over plain HTTP\n" \
	"  -h, --help                this text\n"

#define EXIT_STATUS_TEXT \
	"\n" \
	"Exit status: the command's own; 128+N if it died of signal N; 125 if\n" \
	"capsula failed; 126 if the command cannot be run; 127 if not found.\n"

const char *exec_usage(enum run_mode mode)
{
	static const char *const texts[] = {
		[RUN_EXEC] =
		"Usage: capsula exec [OPTIONS] IMAGE COMMAND [ARG...]\n"
		"Run COMMAND inside the squashfs IMAGE as yourself, unprivileged.\n"
		"IMAGE may be a .sqfs or .sif file, docker://REF (pulled into the cache\n"
		"once per node when it is not there), or instance://NAME.\n"
		"\n" COMMON_OPTIONS EXIT_STATUS_TEXT,
		[RUN_RUN] =
		"Usage: capsula run [OPTIONS] IMAGE [ARG...]\n"
		"Run the image's own command: its Apptainer runscript, or its Entrypoint\n"
		"with ARGs (or its Cmd), starting in its WorkingDir unless --pwd is given.\n"
		"\n" COMMON_OPTIONS EXIT_STATUS_TEXT,
		[RUN_SHELL] =
		"Usage: capsula shell [OPTIONS] IMAGE [SHELL-ARG...]\n"
		"Start the image's shell (bash, else sh) with a prompt naming the image.\n"
		"\n" COMMON_OPTIONS EXIT_STATUS_TEXT,
		[RUN_INSTANCE] =
		"Usage: capsula instance start [OPTIONS] IMAGE NAME\n"
		"Start a named, persistent container of IMAGE; run commands in it with\n"
		"'capsula exec instance://NAME COMMAND' and end it with\n"
		"'capsula instance stop NAME'.\n"
		"\n" COMMON_OPTIONS,
	};
	return texts[mode];
}

enum {
	OPT_HOME = 256, OPT_NO_HOME, OPT_NO_MOUNT, OPT_PWD, OPT_ENV, OPT_ENV_FILE, OPT_DEV,
	OPT_JOIN, OPT_DRY_RUN, OPT_TIMING, OPT_WRITABLE_TMPFS, OPT_TMPFS_SIZE, OPT_OVERLAY,
	OPT_FAKEROOT, OPT_NV, OPT_ROCM, OPT_DEVICE, OPT_TLS_CA, OPT_INSECURE, OPT_JOB, OPT_HOLD,
	OPT_HOLD_NOTIFY,
};

static const struct option long_options[] = {
	{"bind", required_argument, NULL, 'B'},
	{"home", required_argument, NULL, OPT_HOME},
	{"no-home", no_argument, NULL, OPT_NO_HOME},
	{"contain", no_argument, NULL, 'c'},
	{"no-mount", required_argument, NULL, OPT_NO_MOUNT},
	{"pwd", required_argument, NULL, OPT_PWD},
	{"writable-tmpfs", no_argument, NULL, OPT_WRITABLE_TMPFS},
	{"tmpfs-size", required_argument, NULL, OPT_TMPFS_SIZE},
	{"overlay", required_argument, NULL, OPT_OVERLAY},
	{"fakeroot", no_argument, NULL, OPT_FAKEROOT},
	{"nv", no_argument, NULL, OPT_NV},
	{"rocm", no_argument, NULL, OPT_ROCM},
	{"device", required_argument, NULL, OPT_DEVICE},
	{"env", required_argument, NULL, OPT_ENV},
	{"env-file", required_argument, NULL, OPT_ENV_FILE},
	{"cleanenv", no_argument, NULL, 'e'},
	{"dev", required_argument, NULL, OPT_DEV},
	{"join", required_argument, NULL, OPT_JOIN},
	{"job", required_argument, NULL, OPT_JOB},
	{"hold", no_argument, NULL, OPT_HOLD},
	{"hold-notify", required_argument, NULL, OPT_HOLD_NOTIFY},
	{"verbose", no_argument, NULL, 'v'},
	{"quiet", no_argument, NULL, 'q'},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"timing", no_argument, NULL, OPT_TIMING},
	{"tls-ca", required_argument, NULL, OPT_TLS_CA},
	{"insecure", no_argument, NULL, OPT_INSECURE},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static const char *const usage_hints[] = {
	[RUN_EXEC] = "see 'capsula exec --help'",
	[RUN_RUN] = "see 'capsula run --help'",
	[RUN_SHELL] = "see 'capsula shell --help'",
	[RUN_INSTANCE] = "see 'capsula instance start --help'",
};
/* Set by the parser for the subcommand at hand. */
static const char *usage_hint = "see 'capsula exec --help'";
#define USAGE_HINT usage_hint

static int parse_choice(const char *option, const char *value,
                        const char *const *choices, int *out, capsula_error *err)
{
	for (int i = 0; choices[i] != NULL; i++) {
		if (strcmp(value, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return fail(err, 0, USAGE_HINT, "--%s: unknown value '%s'", option, value);
}

static int parse_no_mount(const char *list, unsigned *out, capsula_error *err)
{
	static const struct { const char *name; unsigned flag; } names[] = {
		{"home", NO_MOUNT_HOME}, {"tmp", NO_MOUNT_TMP}, {"cwd", NO_MOUNT_CWD},
		{"shm", NO_MOUNT_SHM},
	};
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, ","), i;

		for (i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == len && strncmp(names[i].name, p, len) == 0)
				break;
		if (i == sizeof names / sizeof names[0])
			return fail(err, 0, "name home, tmp, cwd or shm, separated by commas",
			            "--no-mount: unknown bind '%.*s'", (int)len, p);
		*out |= names[i].flag;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int set_once(char **slot, const char *option, const char *value,
                    capsula_error *err)
{
	free(*slot);
	*slot = strdup(value);
	if (*slot == NULL)
		return fail(err, errno, NULL, "--%s", option);
	return 0;
}

static int handle_option(int c, struct exec_options *opts, capsula_error *err)
{
	static const char *const dev_modes[] = {"minimal", "host", NULL};
	static const char *const join_modes[] = {"auto", "never", NULL};
	int choice = 0;

	switch (c) {
	case 'B':
		return bindspec_parse(optarg, &opts->binds, err);
	case OPT_HOME:
		return set_once(&opts->home, "home", optarg, err);
	case OPT_NO_HOME:
		opts->no_home = true;
		return 0;
	case 'c':
		opts->contain = true;
		return 0;
	case OPT_NO_MOUNT:
		return parse_no_mount(optarg, &opts->no_mount, err);
	case OPT_PWD:
		if (optarg[0] != '/')
			return fail(err, 0, USAGE_HINT, "--pwd %s: not an absolute path", optarg);
		return set_once(&opts->pwd, "pwd", optarg, err);
	case OPT_WRITABLE_TMPFS:
		opts->writable_tmpfs = true;
		return 0;
	case OPT_TMPFS_SIZE:
		if (parse_byte_size(optarg, &opts->tmpfs_bytes) < 0 || opts->tmpfs_bytes < (1u << 20))
			return fail(err, 0, "give a size of at least 1M, such as 512M or 4G",
			            "--tmpfs-size %s", optarg);
		return 0;
	case OPT_OVERLAY:
		if (optarg[0] == '\0' || strvec_push(&opts->overlays, optarg) < 0)
			return fail(err, optarg[0] ? errno : 0, USAGE_HINT, "--overlay '%s'", optarg);
		return 0;
	case OPT_FAKEROOT:
		opts->fakeroot = true;
		return 0;
	case OPT_NV:
		opts->gpus |= GPU_NVIDIA;
		return 0;
	case OPT_ROCM:
		opts->gpus |= GPU_AMD;
		return 0;
	case OPT_DEVICE: {
		char kind[256], name[256];

		if (cdi_device_name(optarg, kind, sizeof kind, name, sizeof name, err) < 0)
			return -1;
		if (strvec_push(&opts->devices, optarg) < 0)
			return fail(err, errno, NULL, "--device");
		return 0;
	}
	case OPT_ENV:
		if (strchr(optarg, '=') == NULL || optarg[0] == '=')
			return fail(err, 0, "write --env NAME=VALUE", "--env %s: no NAME=", optarg);
		if (strvec_push(&opts->env, optarg) < 0)
			return fail(err, errno, NULL, "--env");
		return 0;
	case OPT_ENV_FILE:
		if (strvec_push(&opts->env_files, optarg) < 0)
			return fail(err, errno, NULL, "--env-file");
		return 0;
	case 'e':
		opts->cleanenv = true;
		return 0;
	case OPT_DEV:
		if (parse_choice("dev", optarg, dev_modes, &choice, err) < 0)
			return -1;
		opts->dev_mode = choice == 0 ? DEV_MINIMAL : DEV_HOST;
		return 0;
	case OPT_JOIN:
		if (parse_choice("join", optarg, join_modes, &choice, err) < 0)
			return -1;
		opts->join = choice == 0 ? JOIN_AUTO : JOIN_NEVER;
		return 0;
	case OPT_JOB:
		if (optarg[0] == '\0' || strlen(optarg) > 200)
			return fail(err, 0, USAGE_HINT, "--job needs a name of 1 to 200 characters");
		opts->job = optarg;
		return 0;
	case OPT_HOLD:
		opts->hold = true;
		return 0;
	case OPT_HOLD_NOTIFY: {
		char *end;
		long fd;

		errno = 0;
		fd = strtol(optarg, &end, 10);
		if (errno != 0 || end == optarg || *end != '\0' || fd < 3 || fd > INT_MAX)
			return fail(err, 0, USAGE_HINT, "--hold-notify needs a descriptor number "
			            "of 3 or more");
		opts->hold_notify_fd = (int)fd;
		return 0;
	}
	case 'v':
		opts->verbosity = opts->verbosity < 0 ? 1 : opts->verbosity + 1;
		return 0;
	case 'q':
		opts->verbosity = -1;
		return 0;
	case OPT_DRY_RUN:
		opts->dry_run = true;
		return 0;
	case OPT_TIMING:
		opts->timing = true;
		return 0;
	case OPT_TLS_CA:
		opts->tls_ca = optarg;
		return 0;
	case OPT_INSECURE:
		opts->insecure = true;
		return 0;
	case 'h':
		opts->help = true;
		return 0;
	default:
		return fail(err, 0, USAGE_HINT, "unknown or incomplete option");
	}
}

static enum run_mode mode_of(const char *subcommand)
{
	if (strcmp(subcommand, "run") == 0)
		return RUN_RUN;
	if (strcmp(subcommand, "shell") == 0)
		return RUN_SHELL;
	if (strcmp(subcommand, "start") == 0)
		return RUN_INSTANCE;
	return RUN_EXEC;
}

int exec_options_parse(int argc, char **argv, struct exec_options *opts,
                       capsula_error *err)
{
	int c;

	memset(opts, 0, sizeof *opts);
	opts->dev_mode = DEV_MINIMAL;
	opts->join = JOIN_AUTO;
	opts->hold_notify_fd = -1;
	opts->mode = mode_of(argv[0]);
	usage_hint = usage_hints[opts->mode];

	/* '+' stops at IMAGE so the command's own options are left alone; ':'
	 * lets us word the message for a missing argument ourselves. */
	optind = 0;  /* 0, not 1: glibc then also forgets a previous parse */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:B:cevqh", long_options, NULL)) != -1) {
		if (c == '?') {
			if (optopt != 0)
				return fail(err, 0, USAGE_HINT, "unknown option '-%c'", optopt);
			return fail_unknown_option(err, long_options, argv[optind - 1], USAGE_HINT);
		}
		if (c == ':')
			return fail(err, 0, USAGE_HINT, "option '%s' needs a value",
			            argv[optind - 1]);
		if (handle_option(c, opts, err) < 0)
			return -1;
	}
	if (opts->help)
		return 0;
	if (opts->no_home && opts->home != NULL)
		return fail(err, 0, USAGE_HINT, "--home and --no-home exclude each other");
	if (opts->tmpfs_bytes != 0 && !opts->writable_tmpfs)
		return fail(err, 0, USAGE_HINT, "--tmpfs-size needs --writable-tmpfs");
	if (opts->hold && (opts->mode == RUN_INSTANCE || opts->join == JOIN_NEVER))
		return fail(err, 0, USAGE_HINT, "--hold keeps a job's shared container: not with "
		            "--join never or an instance");
	if (opts->hold_notify_fd >= 0 && !opts->hold)
		return fail(err, 0, USAGE_HINT, "--hold-notify goes with --hold");
	if (optind >= argc)
		return fail(err, 0, USAGE_HINT, "no image given");
	opts->image = argv[optind++];
	if (opts->mode == RUN_INSTANCE) {
		if (argc - optind != 1)
			return fail(err, 0, USAGE_HINT, "give an IMAGE and an instance NAME");
		opts->instance_name = argv[optind];
		opts->command = &argv[argc];
		return 0;
	}
	if (optind >= argc && opts->mode == RUN_EXEC)
		return fail(err, 0, USAGE_HINT, "no command given after the image");
	opts->command = &argv[optind];
	return 0;
}

void exec_options_free(struct exec_options *opts)
{
	bind_list_free(&opts->binds);
	free(opts->home);
	free(opts->pwd);
	strvec_free(&opts->env);
	strvec_free(&opts->env_files);
	strvec_free(&opts->overlays);
	strvec_free(&opts->devices);
}
