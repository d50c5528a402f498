#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/option_hint.h"
#include "common/text.h"
#include "runtime/push/parallel_gzip.h"
#include "runtime/push/push.h"

const char push_usage[] =
	"Usage: capsula push [OPTIONS] IMAGE docker://REGISTRY/REPOSITORY[:TAG]\n"
	"Publish an image (squashfs or SIF) to an OCI registry, as one layer that\n"
	"keeps owners, modes, times, hard links and extended attributes, and an\n"
	"image config made from the image's run settings (Env, Entrypoint, Cmd,\n"
	"WorkingDir, User, Labels). Print the manifest's digest.\n"
	"\n"
	"  -c, --compression ALGO[:LEVEL]  gzip (default, level 4 of 1-12: every tool\n"
	"                            pulls it) or zstd; the same image gives the same\n"
	"                            layer\n"
	"  -j, --jobs N              compressing threads (default: one per processor)\n"
	"      --chunk-size SIZE     upload in chunks of SIZE (K, M, G suffixes), each\n"
	"                            sent again alone if it fails (default: whole)\n"
	"  --tls-ca FILE             trust this CA (PEM) besides the system's\n"
	"                            (default: $CAPSULA_TLS_CA)\n"
	"  --insecure                reach this registry over plain HTTP\n"
	"  --retries N               tries again after 429, 5xx or a dropped connection\n"
	"                            (default 5)\n"
	"  -q, --quiet               only warnings and errors\n"
	"  -h, --help                this text\n"
	"\n"
	"Credentials: those of capsula pull (capsula login REGISTRY).\n";

#define USAGE_HINT "see 'capsula push --help'"

enum { OPT_CHUNK_SIZE = 256 };

static const struct option long_options[] = {
	{"compression", required_argument, NULL, 'c'},
	{"jobs", required_argument, NULL, 'j'},
	{"chunk-size", required_argument, NULL, OPT_CHUNK_SIZE},
	REGISTRY_LONG_OPTIONS,
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_number(const char *text, unsigned long low, unsigned long high,
                        const char *option, unsigned long *out, capsula_error *err)
{
	char *end;

	errno = 0;
	*out = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || text[0] == '-' || text[0] == '\0' || *out < low ||
	    *out > high)
		return fail(err, 0, USAGE_HINT, "%s %s: give a number from %lu to %lu", option, text,
		            low, high);
	return 0;
}

static int parse_compression(const char *text, struct layer_tar_options *layer,
                             capsula_error *err)
{
	const char *colon = strchr(text, ':');
	size_t length = colon ? (size_t)(colon - text) : strlen(text);
	unsigned long level = 0;

	if (length == 4 && strncmp(text, "gzip", 4) == 0)
		layer->compression = "gzip";
	else if (length == 4 && strncmp(text, "zstd", 4) == 0)
		layer->compression = "zstd";
	else
		return fail(err, 0, "a layer is gzip or zstd", "--compression %s: unknown", text);
	if (colon != NULL &&
	    parse_number(colon + 1, 1, layer->compression[0] == 'g' ? GZIP_MAX_LEVEL : 19, "--compression level",
	                 &level, err) < 0)
		return -1;
	layer->level = (int)level;
	return 0;
}

int push_options_parse(int argc, char **argv, struct push_options *opts, capsula_error *err)
{
	unsigned long value;
	unsigned long long size;
	long processors = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	memset(opts, 0, sizeof *opts);
	registry_access_default(&opts->access);
	opts->layer.compression = "gzip";
	opts->layer.threads = processors > 0 ? (unsigned)processors : 1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:j:qh", long_options, NULL)) != -1) {
		int applied = registry_access_option(c, optarg, &opts->access, USAGE_HINT, err);

		if (applied < 0)
			return -1;
		if (applied > 0)
			continue;
		switch (c) {
		case 'c':
			if (parse_compression(optarg, &opts->layer, err) < 0)
				return -1;
			break;
		case 'j':
			if (parse_number(optarg, 1, 256, "--jobs", &value, err) < 0)
				return -1;
			opts->layer.threads = (unsigned)value;
			break;
		case OPT_CHUNK_SIZE:
			if (parse_byte_size(optarg, &size) < 0 || size < 4096)
				return fail(err, 0, "give at least 4K, such as 64M", "--chunk-size %s",
				            optarg);
			opts->chunk_size = size;
			break;
		case 'q':
			opts->quiet = true;
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
		return fail(err, 0, USAGE_HINT, "give an image and where to push it");
	opts->image = argv[optind];
	opts->ref = argv[optind + 1];
	return 0;
}
