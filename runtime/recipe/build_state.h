/* What a recipe build keeps while it runs, shared by the stage driver
 * (builder.c) and the steps that change files (layer_steps.c). */
#ifndef CAPSULA_BUILD_STATE_H
#define CAPSULA_BUILD_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/sha256.h"
#include "common/strvec.h"
#include "runtime/config/site_config.h"
#include "runtime/convert/build.h"
#include "runtime/image/image_cache.h"
#include "runtime/image/image_config.h"
#include "runtime/recipe/recipe.h"
#include "runtime/recipe/sources.h"
#include "runtime/recipe/step_container.h"

#define KEY_HEX SHA256_HEX_BYTES

struct stage_state {
	bool built, building;
	char base[PATH_MAX];         /* the base image's file */
	uint64_t base_offset;        /* where its squashfs starts (a SIF's partition) */
	struct strvec layers;        /* the steps' layers, bottom first */
	struct image_config config;  /* what the image says about running it */
	struct strvec shell;         /* SHELL, else /bin/sh -c */
	struct strvec args;          /* ARG NAME=VALUE in scope */
	char key[KEY_HEX];           /* of everything so far */
	bool workdir_pending;        /* a WORKDIR no step has made yet */
};

struct builder {
	const struct build_options *opts;
	struct recipe recipe;
	char file[PATH_MAX];         /* the recipe, as messages name it */
	char *text;                  /* and as it reads, kept in the image */
	int context_fd;
	struct ignore_rules ignore;
	struct capsula_config site;
	struct image_cache cache;
	int layers_fd;               /* CACHE/build/layers */
	char layers_dir[48];         /* and as a path: /proc/self/fd/N */
	char mounts_dir[PATH_MAX];   /* CACHE/build/mounts: RUN --mount caches */
	char work_base[2048];        /* the steps' work directories (local disk) */
	struct step_identity id;
	struct stage_state *stages;
	struct strvec global_args;   /* ARG before FROM, with --build-arg */
	unsigned step, total;        /* for [step/total] */
	unsigned cached;
	uint64_t start_us;
	bool warned_user;            /* USER without subordinate ids: said once */
};

/* "FILE:LINE" of a step, for messages. */
const char *step_where(const struct builder *b, const struct step *s);

/* The environment a step sees: the image's Env, then the stage's ARGs. */
int step_variables(const struct stage_state *st, struct strvec *vars, capsula_error *err);

/* A step's cache key: the stage's key so far and what describes the step. */
void step_key(const struct stage_state *st, const char *description, char key[KEY_HEX]);

/* Say "[N/T] TEXT" and, once done, how it went. */
void step_begin(struct builder *b, const struct step *s);
void step_end(struct builder *b, bool cached, uint64_t start_us);

/* The steps that change files: each adds a layer to st (or finds it in
 * the cache). */
int run_step(struct builder *b, struct stage_state *st, const struct step *s,
             capsula_error *err);
int copy_step(struct builder *b, struct stage_state *st, const struct step *s,
              capsula_error *err);
int file_step(struct builder *b, struct stage_state *st, const struct step *s,
              capsula_error *err);
/* A definition file's %test: run in the image as it stands, nothing kept. */
int test_step(struct builder *b, struct stage_state *st, const struct step *s,
              capsula_error *err);
/* A WORKDIR that no later step made: made on its own. */
int workdir_step(struct builder *b, struct stage_state *st, capsula_error *err);

/* The stage a name (or index) designates, built first: 1 with *out set,
 * 0 when the name is no stage's, -1 on error. */
int stage_named(struct builder *b, const char *name, struct stage_state **out,
                capsula_error *err);

#endif
