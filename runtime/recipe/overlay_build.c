#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/convert/squashfs_layers.h"
#include "runtime/image/image.h"
#include "runtime/plan/fakeroot_plan.h"
#include "runtime/recipe/overlay_build.h"
#include "runtime/recipe/step_container.h"

#define CHANGES_LEVEL 3
#define CHANGES_NAME "changes.sqfs"

struct capture {
	const char *upper;
	int dir_fd;
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
	o.output = CHANGES_NAME;
	o.output_dir_fd = c->dir_fd;
	o.output_shown = "the overlay's changes";
	o.level = CHANGES_LEVEL;
	o.quiet = true;
	o.force = true;
	return build_image(&o, err);
}

/* Inside the user's full map when there is one: files a --fakeroot run
 * gave to other ids belong to the user's subordinate ids, and are read as
 * those ids. */
static int capture_as_writer(struct capture *c, capsula_error *err)
{
	struct host_facts facts = {.uid = getuid(), .gid = getgid()};
	struct capsula_plan maps = {.image.fd = -1, .socket_dir_fd = -1, .verbosity = -1};
	int ret;

	plan_fakeroot(&facts, &maps);
	if (maps.newuidmap != NULL) {
		struct step_identity id = {
			.uid = facts.uid, .gid = facts.gid, .full_map = true,
			.subuids = maps.subuids, .subgids = maps.subgids,
			.newuidmap = maps.newuidmap, .newgidmap = maps.newgidmap,
			.socket_dir_fd = -1, .verbosity = -1,
		};

		ret = step_in_user_namespace(&id, capture_changes, c, err);
	} else {
		ret = capture_changes(c, err);
	}
	free(maps.newuidmap);
	free(maps.newgidmap);
	return ret;
}

int overlay_build(const struct build_options *opts, capsula_error *err)
{
	struct capsula_image image = {.fd = -1};
	struct squashfs_info info;
	struct squashfs_layer layers[2];
	struct build_options o = *opts;
	char upper[4096], work[4096], changes[4200];
	const char *tmp = getenv("TMPDIR");
	struct capture c;
	struct stat st;
	int ret;

	if (image_open(opts->source, &image, &info, err) < 0)
		return error_prefix(err, "--overlay needs a squashfs or SIF image to apply it to");
	close(image.fd);
	free(image.path);
	snprintf(upper, sizeof upper, "%s/upper", opts->overlay_dir);
	if (stat(upper, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(err, errno ? errno : ENOTDIR, "give the DIR a run's --overlay DIR wrote",
		            "--overlay %s: no upper directory", opts->overlay_dir);
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
	ret = capture_as_writer(&c, err);
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
