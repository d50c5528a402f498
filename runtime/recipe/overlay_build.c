#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/option_hint.h"
#include "runtime/convert/squashfs_layers.h"
#include "runtime/image/image.h"
#include "runtime/recipe/overlay_build.h"
#include "runtime/recipe/step_container.h"

#define CHANGES_LEVEL 3
#define CHANGES_NAME "changes.sqfs"

const char overlay_usage[] =
	"Usage: capsula overlay export [-F|--force] [-c|--compression ALGO[:LEVEL]] DIR OUTPUT.sqfs\n"
	"       capsula overlay clean DIR\n"
	"DIR is a directory a run with --overlay DIR wrote (its upper/ and work/).\n"
	"export: what the runs changed, as a squashfs layer for --overlay OUTPUT.sqfs\n"
	"        (removed files kept as whiteouts, so the layer hides them too).\n"
	"clean:  remove DIR's upper/ and work/, also files a --fakeroot run gave to\n"
	"        other ids (your subordinate ids), which you cannot remove yourself.\n"
	"See also: capsula build --overlay DIR OUTPUT.sqfs IMAGE, the image with the\n"
	"changes applied.\n";

#define OVERLAY_HINT "see 'capsula overlay --help'"
#define UPPER_HINT "give the DIR a run's --overlay DIR wrote"

struct capture {
	const char *upper;
	const char *output;
	int dir_fd;                /* output is below it, or -1 */
	const char *shown;
	int level;
	const char *compression;
	bool quiet, force;
};

/* The upper directory into a layer (whiteouts and opaque directories kept
 * as overlayfs wrote them), as the one who wrote it. */
static int capture_changes(void *arg, capsula_error *err)
{
	const struct capture *c = arg;
	struct build_options o;

	build_options_default(&o);
	o.source = c->upper;
	o.capture_upper = true;
	o.output = c->output;
	o.output_dir_fd = c->dir_fd;
	o.output_shown = c->shown;
	o.level = c->level;
	if (c->compression != NULL)
		o.compression = c->compression;
	o.quiet = c->quiet;
	o.force = c->force;
	return build_image(&o, err);
}

/* Run fn inside the user's full map when there is one: files a --fakeroot
 * run gave to other ids belong to the user's subordinate ids, and are read
 * and removed as those ids. */
static int as_writer(int (*fn)(void *arg, capsula_error *err), void *arg, capsula_error *err)
{
	struct step_identity id;
	int ret;

	step_identity_init(&id);
	ret = id.full_map ? step_in_user_namespace(&id, fn, arg, err) : fn(arg, err);
	step_identity_release(&id);
	return ret;
}

/* DIR/upper, a directory (not a link to one) a run made. */
static int find_upper(const char *dir, char *upper, size_t size, capsula_error *err)
{
	struct stat st;

	snprintf(upper, size, "%s/upper", dir);
	if (lstat(upper, &st) < 0)
		return fail(err, errno, UPPER_HINT, "%s: no upper directory", dir);
	if (!S_ISDIR(st.st_mode))
		return fail(err, ENOTDIR, UPPER_HINT, "%s: no upper directory", dir);
	return 0;
}

int overlay_build(const struct build_options *opts, capsula_error *err)
{
	struct capsula_image image = {.fd = -1};
	struct squashfs_info info;
	struct squashfs_layer layers[2];
	struct build_options o = *opts;
	char upper[4096], work[4096], changes[4200];
	const char *tmp = getenv("TMPDIR");
	struct capture c = {.output = CHANGES_NAME, .shown = "the overlay's changes",
	                    .level = CHANGES_LEVEL, .quiet = true, .force = true};
	int ret;

	if (image_open(opts->source, &image, &info, err) < 0)
		return error_prefix(err, "--overlay needs a squashfs or SIF image to apply it to");
	close(image.fd);
	free(image.path);
	if (find_upper(opts->overlay_dir, upper, sizeof upper, err) < 0)
		return error_prefix(err, "--overlay");
	snprintf(work, sizeof work, "%s/capsula-overlay.XXXXXX",
	         tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(work) == NULL)
		return fail(err, errno, "set TMPDIR to a local directory of yours with room",
		            "a work directory in %s", tmp ? tmp : "/tmp");
	c.upper = upper;
	c.dir_fd = open(work, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c.dir_fd < 0) {
		ret = fail(err, errno, NULL, "%s", work);
		goto out;
	}
	ret = as_writer(capture_changes, &c, err);
	close(c.dir_fd);
	if (ret < 0) {
		error_prefix(err, "--overlay %s", opts->overlay_dir);
		goto out;
	}
	snprintf(changes, sizeof changes, "%s/%s", work, CHANGES_NAME);
	layers[0] = (struct squashfs_layer){.path = opts->source, .offset = image.offset};
	layers[1] = (struct squashfs_layer){.path = changes, .offset = 0};
	o.layers = layers;
	o.layer_count = 2;
	o.source = NULL;
	ret = build_image(&o, err);
out:
	snprintf(changes, sizeof changes, "%s/%s", work, CHANGES_NAME);
	unlink(changes);
	rmdir(work);
	return ret;
}

static int export_main(int argc, char **argv, capsula_error *err)
{
	struct build_options parsed;
	struct capture c = {.shown = NULL, .dir_fd = -1};
	char upper[4096];
	int opt, applied;

	build_options_default(&parsed);
	optind = 0;
	opterr = 0;
	static const struct option options[] = {
		{"force", no_argument, NULL, 'F'},
		{"compression", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};

	while ((opt = getopt_long(argc, argv, "+:Fc:q", options, NULL)) != -1) {
		if (opt == ':')
			return fail(err, 0, OVERLAY_HINT, "option '%s' needs a value", argv[optind - 1]);
		applied = build_option_apply(opt, optarg, &parsed, err);
		if (applied < 0)
			return -1;
		if (applied == 0)
			return fail_unknown_option(err, options, argv[optind - 1], OVERLAY_HINT);
	}
	if (argc - optind != 2)
		return fail(err, 0, OVERLAY_HINT, "overlay export needs a DIR and an OUTPUT.sqfs");
	if (find_upper(argv[optind], upper, sizeof upper, err) < 0)
		return error_prefix(err, "overlay export");
	c.upper = upper;
	c.output = argv[optind + 1];
	c.shown = c.output;
	c.level = parsed.level;
	c.compression = parsed.compression;
	c.quiet = parsed.quiet;
	c.force = parsed.force;
	if (as_writer(capture_changes, &c, err) < 0)
		return error_prefix(err, "overlay export %s", argv[optind]);
	return 0;
}

struct cleaning {
	const char *dir;
};

static int clean_inside(void *arg, capsula_error *err)
{
	const struct cleaning *c = arg;
	static const char *const parts[] = {"upper", "work"};
	char path[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", c->dir, parts[i]);
		if (lstat(path, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return fail(err, errno, NULL, "%s", path);
		}
		/* A link is removed, never followed. */
		if (!S_ISDIR(st.st_mode)) {
			if (unlink(path) < 0)
				return fail(err, errno, NULL, "remove %s", path);
			continue;
		}
		if (step_remove_tree(path, err) < 0)
			return -1;
	}
	return 0;
}

static int clean_main(int argc, char **argv, capsula_error *err)
{
	struct cleaning c;
	struct stat st;

	if (argc != 2)
		return fail(err, 0, OVERLAY_HINT, "overlay clean needs one DIR");
	c.dir = argv[1];
	if (lstat(c.dir, &st) < 0)
		return fail(err, errno, "give the DIR a run's --overlay DIR wrote", "overlay clean %s",
		            c.dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
		return fail(err, 0, "give a directory of yours that a run's --overlay DIR wrote",
		            "overlay clean %s: not a directory of yours", c.dir);
	if (as_writer(clean_inside, &c, err) < 0)
		return error_prefix(err, "overlay clean %s", c.dir);
	return 0;
}

int overlay_main(int argc, char **argv)
{
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	int ret;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(overlay_usage, stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "export") == 0)
		ret = export_main(argc - 1, argv + 1, &err);
	else if (argc >= 2 && strcmp(argv[1], "clean") == 0)
		ret = clean_main(argc - 1, argv + 1, &err);
	else
		ret = fail(&err, 0, OVERLAY_HINT, "overlay needs export or clean");
	if (ret == 0)
		return 0;
	error_print(&err);
	return err.status;
}
