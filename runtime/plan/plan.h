/* Options + host facts -> the launch plan. */
#ifndef CAPSULA_RUNTIME_PLAN_H
#define CAPSULA_RUNTIME_PLAN_H

#include <stdio.h>

#include "common/error.h"
#include "common/plan.h"
#include "runtime/config/site_config.h"
#include "runtime/plan/options.h"

/* What plan_build reads from the host, gathered in one place so unit tests
 * can supply their own. */
struct host_facts {
	char **environ;
	const char *cwd;       /* logical current directory */
	const char *cwd_real;  /* the same, symlinks resolved */
	const char *home;      /* $HOME */
	/* The passwd entry's home: the home when user binds are not allowed
	 * (looked up only then: one NSS lookup less per rank otherwise). */
	const char *passwd_home;
	uid_t uid;
	gid_t gid;
	gid_t *groups;         /* supplementary groups */
	size_t group_count;
	unsigned cpus;         /* online processors */
	/* The administrator's limits; NULL means the defaults. */
	const struct capsula_config *config;
	/* Resolve a host path to an absolute canonical one, NULL with errno
	 * when it does not exist (realpath; unit tests supply their own). */
	char *(*resolve)(const char *path);
};

/* The site's configuration (its defaults when there is no file). */
const struct capsula_config *facts_config(const struct host_facts *facts);
/* Does the site allow running this image (its "image directory" lines)? */
int facts_allow_image(const struct host_facts *facts, const struct capsula_image *image,
                      capsula_error *err);

int host_facts_gather(struct host_facts *facts, capsula_error *err);
void host_facts_free(struct host_facts *facts);

/* What the image contributes (runtime/image/image_run.c); NULL for nothing. */
struct image_run;

/* The image must already be open; plan takes ownership of it. */
int plan_build(const struct exec_options *opts, const struct host_facts *facts,
               struct capsula_image *image, const struct image_run *run,
               struct capsula_plan *plan, capsula_error *err);

void plan_print(const struct capsula_plan *plan, FILE *out);

#endif
