#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/option_hint.h"
#include "common/text.h"
#include "runtime/convert/build.h"

const char build_usage[] =
	"Usage: capsula build [OPTIONS] OUTPUT.sqfs SOURCE\n"
	"       capsula build [OPTIONS] OUTPUT.sqfs Dockerfile|FILE.def\n"
	"       capsula build [OPTIONS] -f RECIPE OUTPUT.sqfs CONTEXT\n"
	"Make a squashfs image from SOURCE, unprivileged: a directory, a tarball\n"
	"(.tar, .tar.gz, .tar.zst, .tar.xz, ...), a 'docker save' archive, an OCI\n"
	"image layout (directory or archive), or docker://REF from a registry (as\n"
	"capsula pull REF OUTPUT). Nothing is unpacked to disk; every\n"
	"layer, config and manifest is checked against its digest. Files keep the\n"
	"owners their layer gives them (a directory's files of yours are root's).\n"
	"SOURCE:TAG picks one image of several.\n"
	"\n"
	"Or from a recipe: a Dockerfile (Containerfile, *.dockerfile; its directory\n"
	"is the context) or an Apptainer definition file (*.def). Each step runs in\n"
	"a container of capsula's, as root inside, with nothing of yours but what it\n"
	"copies, and is cached: an unchanged step is not run again.\n"
	"\n"
	"  -F, --force               replace OUTPUT if it exists\n"
	"  -t, --tag TAG             the image of an archive or layout to build\n"
	"  -c, --compression ALGO[:LEVEL]  zstd (default, level 9), gzip, xz or lz4;\n"
	"                            zstd:19 for the smallest image, slowly\n"
	"  -b, --block-size SIZE     4K to 1M, a power of two (default 128K)\n"
	"  -j, --jobs N              compressing threads (default: one per processor)\n"
	"      --all-root            every file root's, whatever its layer says\n"
	"      --reproducible        the same input, the same bytes: no time after\n"
	"                            $SOURCE_DATE_EPOCH (0 unless set) in the image\n"
	"      --overlay DIR         SOURCE, an image, with the changes a run with\n"
	"                            --overlay DIR made (--fakeroot ones too) applied\n"
	"  -q, --quiet               no progress, only warnings and errors\n"
	"  -h, --help                this text\n"
	"Recipes:\n"
	"  -f, --file RECIPE         the Dockerfile or definition file; SOURCE is then\n"
	"                            the context directory\n"
	"      --build-arg NAME=VALUE  a build argument (ARG; {{ NAME }} of a .def)\n"
	"      --no-cache            run every step again\n"
	"      --target STAGE        build this stage (and what it needs), not the last\n"
	"      --platform OS/ARCH    must be this machine's: steps run natively\n"
	"      --notest              do not run a definition file's %test\n";

#define USAGE_HINT "see 'capsula build --help'"
#define DEFAULT_BLOCK_SIZE (128u << 10)

enum {
	OPT_BUILD_ARG = 256, OPT_NO_CACHE, OPT_TARGET, OPT_PLATFORM, OPT_NOTEST, OPT_OVERLAY,
	OPT_REPRODUCIBLE,
};

static const struct option long_options[] = {
	{"force", no_argument, NULL, 'F'},
	{"file", required_argument, NULL, 'f'},
	{"build-arg", required_argument, NULL, OPT_BUILD_ARG},
	{"no-cache", no_argument, NULL, OPT_NO_CACHE},
	{"target", required_argument, NULL, OPT_TARGET},
	{"platform", required_argument, NULL, OPT_PLATFORM},
	{"notest", no_argument, NULL, OPT_NOTEST},
	{"reproducible", no_argument, NULL, OPT_REPRODUCIBLE},
	{"overlay", required_argument, NULL, OPT_OVERLAY},
	{"tag", required_argument, NULL, 't'},
	{"jobs", required_argument, NULL, 'j'},
	{"compression", required_argument, NULL, 'c'},
	{"block-size", required_argument, NULL, 'b'},
	{"quiet", no_argument, NULL, 'q'},
	{"all-root", no_argument, NULL, 'R'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_block_size(const char *text, unsigned *out, capsula_error *err)
{
	unsigned long long value;

	if (parse_byte_size(text, &value) < 0 || value < 4096 || value > (1u << 20) ||
	    (value & (value - 1)) != 0)
		return fail(err, 0, "give a power of two from 4K to 1M, such as 128K",
		            "--block-size %s", text);
	*out = (unsigned)value;
	return 0;
}

static int parse_jobs(const char *text, unsigned *out, capsula_error *err)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || text[0] == '-' || value < 1 || value > 1024)
		return fail(err, 0, "give a number of threads from 1 to 1024", "--jobs %s", text);
	*out = (unsigned)value;
	return 0;
}

/* ALGO or ALGO:LEVEL (zstd 1-22, gzip 1-9, xz 1-9; lz4 has none). */
static int parse_compression(const char *value, struct build_options *opts, capsula_error *err)
{
	static const struct { const char *name; int low, high; } algorithms[] = {
		{"zstd", 1, 22}, {"gzip", 1, 9}, {"xz", 1, 9}, {"lz4", 1, 0},
	};
	size_t len = strcspn(value, ":");
	char *end;
	long level;

	for (size_t i = 0; i < sizeof algorithms / sizeof algorithms[0]; i++) {
		if (strlen(algorithms[i].name) != len || strncmp(algorithms[i].name, value, len) != 0)
			continue;
		opts->compression = algorithms[i].name;
		opts->level = 0;
		if (value[len] == '\0')
			return 0;
		errno = 0;
		level = strtol(value + len + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == value + len + 1 ||
		    level < algorithms[i].low || level > algorithms[i].high)
			return fail(err, 0, "zstd takes 1-22, gzip and xz 1-9, lz4 none",
			            "--compression %s: not a level of %s", value,
			            algorithms[i].name);
		opts->level = (int)level;
		return 0;
	}
	return fail(err, 0, "use zstd, gzip, xz or lz4, with :LEVEL if wanted",
	            "--compression: unknown algorithm '%s'", value);
}

int build_option_apply(int option, const char *value, struct build_options *opts,
                       capsula_error *err)
{
	switch (option) {
	case 'F':
		opts->force = true;
		return 1;
	case 'c':
		return parse_compression(value, opts, err) < 0 ? -1 : 1;
	case 'b':
		return parse_block_size(value, &opts->block_size, err) < 0 ? -1 : 1;
	case 'j':
		return parse_jobs(value, &opts->workers, err) < 0 ? -1 : 1;
	case 'q':
		opts->quiet = true;
		return 1;
	case 'R':
		opts->all_root = true;
		return 1;
	default:
		return 0;
	}
}

void build_options_default(struct build_options *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->output_dir_fd = -1;
	opts->source_dir_fd = -1;
	opts->compression = "zstd";
	opts->block_size = DEFAULT_BLOCK_SIZE;
}

int build_options_parse(int argc, char **argv, struct build_options *opts,
                        capsula_error *err)
{
	int c, applied;

	build_options_default(opts);
	optind = 0;  /* 0, not 1: glibc then also forgets a previous parse */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:Ft:j:c:b:qh", long_options, NULL)) != -1) {
		applied = build_option_apply(c, optarg, opts, err);
		if (applied < 0)
			return -1;
		if (applied > 0)
			continue;
		switch (c) {
		case 't':
			opts->tag = optarg;
			break;
		case 'f':
			opts->recipe_file = optarg;
			break;
		case OPT_BUILD_ARG:
			if (strchr(optarg, '=') == NULL || optarg[0] == '=')
				return fail(err, 0, "give --build-arg NAME=VALUE", "--build-arg %s", optarg);
			if (strvec_push(&opts->build_args, optarg) < 0)
				return fail(err, errno, NULL, "--build-arg");
			break;
		case OPT_NO_CACHE:
			opts->no_cache = true;
			break;
		case OPT_TARGET:
			opts->target = optarg;
			break;
		case OPT_PLATFORM:
			opts->platform = optarg;
			break;
		case OPT_REPRODUCIBLE:
			/* The writer, and every step's, reads it from the environment. */
			if (setenv("SOURCE_DATE_EPOCH", "0", 0) < 0)
				return fail(err, errno, NULL, "--reproducible");
			break;
		case OPT_NOTEST:
			opts->notest = true;
			break;
		case OPT_OVERLAY:
			opts->overlay_dir = optarg;
			break;
		case 'h':
			opts->help = true;
			return 0;
		case ':':
			return fail(err, 0, USAGE_HINT, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fail_unknown_option(err, long_options, argv[optind - 1], USAGE_HINT);
		}
	}
	if (argc - optind != 2)
		return fail(err, 0, USAGE_HINT, "give an OUTPUT image and a SOURCE");
	opts->output = argv[optind];
	opts->source = argv[optind + 1];
	return 0;
}

void build_options_free(struct build_options *opts)
{
	strvec_free(&opts->build_args);
}
