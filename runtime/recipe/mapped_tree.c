#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/recipe/mapped_tree.h"
#include "runtime/recipe/step_container.h"

static bool in_range(unsigned long id, const struct id_range *r)
{
	return r->count > 0 && id >= r->start && id - r->start < r->count;
}

/* The builder keeps the user's own id in the namespace it made (mapped
 * after the subordinate ids), with the namespace's capabilities over
 * every mapped owner: it reads the whole tree, and the image it writes is
 * the user's. */
static int build_inside(void *arg, capsula_error *err)
{
	return build_image(arg, err);
}

int mapped_tree_build(const struct build_options *opts, capsula_error *err)
{
	struct step_identity id;
	struct stat st;
	int ret = 0;

	if (opts->source == NULL || opts->layer_count > 0 || opts->source_dir_fd >= 0 ||
	    stat(opts->source, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	step_identity_init(&id);
	if (id.full_map && in_range(st.st_uid, &id.subuids)) {
		id.subids_from_root = true;
		ret = step_in_user_namespace(&id, build_inside, (void *)opts, err) < 0 ? -1 : 1;
	}
	step_identity_release(&id);
	return ret;
}
