/* The command's environment: the host's passes through (MPI, PMIx and Slurm
 * variables included) except PATH and LD_LIBRARY_PATH, which belong to the
 * image unless the user sets them. */
#ifndef CAPSULA_ENV_H
#define CAPSULA_ENV_H

#include <stdbool.h>

#include "common/environ.h"
#include "common/error.h"
#include "common/strvec.h"

#define CONTAINER_DEFAULT_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct env_request {
	char **host;                   /* the host environment */
	bool cleanenv;
	const char *home;              /* $HOME inside, or NULL to leave it */
	const char *image_path;
	char *const *image_env;        /* K=V the image sets, may be NULL */
	char *const *env_files;        /* NULL-terminated, may be NULL */
	char *const *assignments;      /* --env K=V, NULL-terminated, may be NULL */
};

int env_build(const struct env_request *req, struct strvec *out, capsula_error *err);

/* Set "NAME=VALUE" in env, replacing any NAME already there. */
int env_set(struct strvec *env, const char *assignment);

/* Parse one --env-file; lines are NAME=VALUE, optional "export ", blank
 * lines and # comments. Values may be quoted with ' or ". */
int env_file_load(const char *path, struct strvec *env, capsula_error *err);

#endif
