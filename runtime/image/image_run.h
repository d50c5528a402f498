/* What the image adds to a launch: its environment (capsula metadata, or
 * Apptainer's env scripts), and for run and shell the command itself. */
#ifndef CAPSULA_IMAGE_RUN_H
#define CAPSULA_IMAGE_RUN_H

#include <stdbool.h>

#include "common/error.h"
#include "common/plan.h"
#include "common/strvec.h"
#include "runtime/image/image_config.h"

#define APPTAINER_DIR "/.singularity.d"

/* exec runs a command, run the image's own, shell its shell; start makes
 * a named instance (capsula instance start IMAGE NAME). */
enum run_mode { RUN_EXEC, RUN_RUN, RUN_SHELL, RUN_INSTANCE };

struct image_run {
	struct image_config config;  /* empty unless the image has capsula metadata */
	bool apptainer;              /* the image has Apptainer's env scripts */
	bool runscript;              /* ... or its runscript */
	const char *shell;           /* /bin/bash or /bin/sh */
	struct strvec env;           /* K=V the image contributes */
	struct strvec argv;          /* the command to run */
	const char *workdir;         /* for run: the image's WorkingDir */
};

struct image_files;

/* What the image says about running it (config, Apptainer's files, its
 * shell), from an image already open; no command yet. */
int image_run_describe(struct image_files *files, struct image_run *run, capsula_error *err);

/* args: for exec the command, for run the arguments, for shell the shell's. */
int image_run_prepare(const struct capsula_image *image, enum run_mode mode,
                      char *const *args, struct image_run *run, capsula_error *err);
void image_run_free(struct image_run *run);

/* "capsula:NAME" for a prompt: the image file name without its suffix,
 * with only [A-Za-z0-9._-] kept. */
void image_prompt_name(const char *image_path, char *out, size_t size);

#endif
