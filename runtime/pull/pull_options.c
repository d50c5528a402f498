#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/option_hint.h"
#include "common/text.h"
#include "runtime/pull/pull.h"

const char pull_usage[] =
	"Usage: capsula pull [OPTIONS] REF [OUTPUT.sqfs]\n"
	"Fetch an image from an OCI registry into your cache and convert it to\n"
	"squashfs; print the cached image's path, and copy it to OUTPUT if given.\n"
	"REF is Docker's: ubuntu:24.04, ghcr.io/org/app@sha256:..., host:5000/ns/app:tag\n"
	"(docker:// in front is allowed). Every manifest, config and layer is checked\n"
	"against its digest as it streams. 'capsula exec docker://REF' pulls the same way.\n"
	"\n"
	"  --platform OS/ARCH[/VARIANT]  which image of a multi-platform index (default:\n"
	"                            this machine's)\n"
	"  --tls-ca FILE             trust this CA (PEM) besides the system's\n"
	"                            (default: $CAPSULA_TLS_CA)\n"
	"  --insecure                reach this registry over plain HTTP\n"
	"  --parallel N              blobs fetched at once (default 4)\n"
	"  --retries N               tries again after 429, 5xx or a dropped connection\n"
	"                            (default 5)\n"
	"  --limit-rate RATE         at most RATE bytes/s in all (K, M, G suffixes), to\n"
	"                            leave a shared node's network to others\n"
	"  -F, --force               replace OUTPUT if it exists (-f too)\n"
	"      --all-root            every file root's, whatever its layer says\n"
	"  -c, --compression ALGO[:LEVEL]  zstd (default, level 9), gzip, xz or lz4\n"
	"  -b, --block-size SIZE     4K to 1M, a power of two (default 128K)\n"
	"  -j, --jobs N              compressing threads (default: one per processor)\n"
	"  --verify-key FILE         refuse the image unless the registry keeps a\n"
	"                            signature of it (cosign's) by this public key\n"
	"                            (PEM, ECDSA P-256 or Ed25519); repeat for any of\n"
	"                            several; the site's image policy applies as well\n"
	"  -q, --quiet               no progress, only warnings and errors\n"
	"  -h, --help                this text\n"
	"\n"
	"Credentials: CAPSULA_DOCKER_USERNAME/PASSWORD, $REGISTRY_AUTH_FILE,\n"
	"$XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json (capsula login).\n"
	"Cache: $CAPSULA_CACHEDIR, else ~/.cache/capsula (capsula cache list|clean).\n";

#define USAGE_HINT "see 'capsula pull --help'"
#define DEFAULT_PARALLEL 4

enum { OPT_PLATFORM = 256, OPT_PARALLEL, OPT_IF_MISSING, OPT_LIMIT_RATE, OPT_VERIFY_KEY };

static const struct option long_options[] = {
	{"platform", required_argument, NULL, OPT_PLATFORM},
	REGISTRY_LONG_OPTIONS,
	{"parallel", required_argument, NULL, OPT_PARALLEL},
	{"if-missing", no_argument, NULL, OPT_IF_MISSING},
	{"limit-rate", required_argument, NULL, OPT_LIMIT_RATE},
	{"verify-key", required_argument, NULL, OPT_VERIFY_KEY},
	{"force", no_argument, NULL, 'F'},
	{"all-root", no_argument, NULL, 'R'},
	{"compression", required_argument, NULL, 'c'},
	{"block-size", required_argument, NULL, 'b'},
	{"jobs", required_argument, NULL, 'j'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int parse_count(const char *text, unsigned low, unsigned high, const char *option,
                       unsigned *out, capsula_error *err)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || text[0] == '-' || text[0] == '\0' || value < low ||
	    value > high)
		return fail(err, 0, USAGE_HINT, "%s %s: give a number from %u to %u", option, text,
		            low, high);
	*out = (unsigned)value;
	return 0;
}

void pull_options_default(struct pull_options *opts)
{
	memset(opts, 0, sizeof *opts);
	build_options_default(&opts->build);
	opts->parallel = DEFAULT_PARALLEL;
	registry_access_default(&opts->access);
}

static int parse_rate(const char *text, uint64_t *out, capsula_error *err)
{
	unsigned long long value;

	if (parse_byte_size(text, &value) < 0 || value < 1024)
		return fail(err, 0, "give bytes per second, at least 1K, such as 50M",
		            "--limit-rate %s", text);
	*out = value;
	return 0;
}

int pull_options_parse(int argc, char **argv, struct pull_options *opts, capsula_error *err)
{
	int c, applied;

	pull_options_default(opts);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:fFj:c:b:qh", long_options, NULL)) != -1) {
		applied = build_option_apply(c == 'f' ? 'F' : c, optarg, &opts->build, err);
		if (applied < 0)
			return -1;
		if (applied == 0)
			applied = registry_access_option(c, optarg, &opts->access, USAGE_HINT, err);
		if (applied < 0)
			return -1;
		if (applied > 0)
			continue;
		switch (c) {
		case OPT_PLATFORM:
			opts->platform = optarg;
			break;
		case OPT_PARALLEL:
			if (parse_count(optarg, 1, 64, "--parallel", &opts->parallel, err) < 0)
				return -1;
			break;
		case OPT_LIMIT_RATE:
			if (parse_rate(optarg, &opts->max_rate, err) < 0)
				return -1;
			break;
		case OPT_VERIFY_KEY:
			if (opts->verify_key_count == PULL_VERIFY_KEYS_MAX)
				return fail(err, 0, USAGE_HINT, "--verify-key: at most %d keys",
				            PULL_VERIFY_KEYS_MAX);
			opts->verify_keys[opts->verify_key_count++] = optarg;
			break;
		case OPT_IF_MISSING:
			opts->if_missing = true;
			break;
		case 'h':
			opts->build.help = true;
			return 0;
		case ':':
			return fail(err, 0, USAGE_HINT, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fail_unknown_option(err, long_options, argv[optind - 1], USAGE_HINT);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return fail(err, 0, USAGE_HINT, "give an image reference and, if wanted, an OUTPUT");
	opts->ref = argv[optind];
	opts->build.output = argc - optind == 2 ? argv[optind + 1] : NULL;
	return 0;
}
