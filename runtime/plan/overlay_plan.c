#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/image/image.h"
#include "runtime/plan/overlay_plan.h"

/* DIR/upper and DIR/work, the user's own directories (made if missing). */
static int prepare_overlay_dir(const char *dir, uid_t uid, capsula_error *err)
{
	static const char *const parts[] = {"upper", "work"};
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	int ret = 0;

	if (dir_fd < 0 || fstat(dir_fd, &st) < 0) {
		ret = fail(err, errno, NULL, "--overlay %s", dir);
		goto out;
	}
	/* Another user's directory, or one others may write, would let them put
	 * files into this user's container. */
	if (st.st_uid != uid || (st.st_mode & S_IWOTH)) {
		ret = fail(err, 0, "use a directory of your own that others cannot write",
		           "--overlay %s: %s", dir, st.st_uid != uid ?
		           "it is not your directory" : "others may write to it");
		goto out;
	}
	for (size_t i = 0; ret == 0 && i < sizeof parts / sizeof parts[0]; i++) {
		if (mkdirat(dir_fd, parts[i], 0755) < 0 && errno != EEXIST) {
			ret = fail(err, errno, NULL, "--overlay: create %s/%s", dir, parts[i]);
			break;
		}
		if (fstatat(dir_fd, parts[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			ret = fail(err, errno, NULL, "--overlay %s/%s", dir, parts[i]);
		else if (!S_ISDIR(st.st_mode) || st.st_uid != uid)
			ret = fail(err, 0, "remove it, or give another --overlay directory",
			           "--overlay %s/%s is not a directory of yours", dir, parts[i]);
	}
out:
	if (dir_fd >= 0)
		close(dir_fd);
	return ret;
}

static int add_writable_dir(const struct exec_options *opts, const struct host_facts *facts,
                            const char *real, struct capsula_plan *plan, capsula_error *err)
{
	if (plan->overlay != OVERLAY_NONE || opts->writable_tmpfs)
		return fail(err, 0, "give one --overlay DIR, or --writable-tmpfs",
		            "--overlay %s: the container has one writable layer already", real);
	if (prepare_overlay_dir(real, facts->uid, err) < 0)
		return -1;
	plan->overlay_dir = strdup(real);
	if (plan->overlay_dir == NULL)
		return fail(err, errno, NULL, "--overlay");
	plan->overlay = OVERLAY_DIR;
	return 0;
}

static int add_layer(const char *path, const struct host_facts *facts,
                     struct capsula_plan *plan, capsula_error *err)
{
	struct capsula_image *grown;
	struct squashfs_info info;

	if (plan->layer_count == MAX_IMAGE_LAYERS)
		return fail(err, 0, "merge some of them into one image",
		            "more than %d --overlay images", MAX_IMAGE_LAYERS);
	grown = realloc(plan->layers, (plan->layer_count + 1) * sizeof *grown);
	if (grown == NULL)
		return fail(err, errno, NULL, "--overlay %s", path);
	plan->layers = grown;
	grown[plan->layer_count] = (struct capsula_image){.fd = -1};
	if (image_open(path, &grown[plan->layer_count], &info, err) < 0)
		return -1;
	plan->layer_count++;
	return facts_allow_image(facts, &grown[plan->layer_count - 1], err);
}

int plan_overlays(const struct exec_options *opts, const struct host_facts *facts,
                  struct capsula_plan *plan, capsula_error *err)
{
	for (size_t i = 0; i < opts->overlays.count; i++) {
		const char *path = opts->overlays.items[i];
		char *real = facts->resolve(path);
		struct stat st;
		int ret;

		if (real == NULL || stat(real, &st) < 0) {
			ret = fail(err, errno, "give a directory of yours or a squashfs image",
			           "--overlay %s", path);
			free(real);
			return ret;
		}
		ret = S_ISDIR(st.st_mode) ? add_writable_dir(opts, facts, real, plan, err) :
		      add_layer(path, facts, plan, err);
		free(real);
		if (ret < 0)
			return -1;
	}
	if (opts->writable_tmpfs) {
		plan->overlay = OVERLAY_TMPFS;
		plan->tmpfs_bytes = opts->tmpfs_bytes ? opts->tmpfs_bytes :
		                    facts_config(facts)->tmpfs_bytes;
	}
	return 0;
}
