/* The steps exec, run, shell and instance start share: from parsed options
 * to a launch plan, and the release of everything that took. */
#ifndef CAPSULA_LAUNCH_H
#define CAPSULA_LAUNCH_H

#include "common/error.h"
#include "common/plan.h"
#include "runtime/image/image_run.h"
#include "runtime/image/squashfs.h"
#include "runtime/plan/options.h"
#include "runtime/plan/plan.h"

struct launch {
	struct exec_options opts;
	struct host_facts facts;
	struct capsula_image image;
	struct squashfs_info info;
	struct image_run run;
	struct capsula_plan plan;
	char pulled[4096];          /* the cached image of a docker://REF */
};

/* Parse argv (argv[0] the subcommand). Returns 0, or -1 with err set. */
int launch_parse(struct launch *l, int argc, char **argv, capsula_error *err);

/* Host facts, the image at image_path (or the cached image of
 * docker://REF, pulled if missing) and what it adds, then the plan. */
int launch_plan(struct launch *l, const char *image_path, capsula_error *err);

void launch_release(struct launch *l);

#endif
