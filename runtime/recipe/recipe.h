/* A recipe, read from a Dockerfile or an Apptainer definition file: the
 * build's stages and, in each, its steps, as written (nothing expanded:
 * build arguments and ENV are applied step by step while building). */
#ifndef CAPSULA_RECIPE_H
#define CAPSULA_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strvec.h"

enum step_kind {
	STEP_RUN,
	STEP_COPY,
	STEP_ADD,
	STEP_ENV,
	STEP_ARG,
	STEP_WORKDIR,
	STEP_USER,
	STEP_SHELL,
	STEP_LABEL,
	STEP_CMD,
	STEP_ENTRYPOINT,
	STEP_EXPOSE,
	STEP_VOLUME,
	STEP_STOPSIGNAL,
	STEP_HEALTHCHECK,
	STEP_ONBUILD,
	STEP_FILE,        /* definition files: write a file (runscript, environment, labels) */
	STEP_TEST,        /* definition files: %test, run once the image is made */
};

/* A here-document of RUN, COPY or ADD: <<NAME ... NAME. */
struct heredoc {
	char *name;
	char *body;        /* with its final newline */
	bool expand;       /* the name was not quoted: variables in it expand (COPY) */
};

struct step {
	enum step_kind kind;
	unsigned line;           /* where it starts in the file */
	char *text;              /* the instruction on one line, continuations joined */
	struct strvec flags;     /* --NAME=VALUE without the dashes, as written */
	bool exec_form;          /* a JSON array */
	/* RUN, CMD, ENTRYPOINT, SHELL: the array, or the shell form's command;
	 * COPY and ADD: the words (sources, then the destination); ENV,
	 * LABEL and ARG: NAME, VALUE, NAME, VALUE (VALUE NULL for ARG NAME
	 * without a default); others: the words. Words are raw: quotes and
	 * variables are for the build to expand. */
	struct strvec args;
	bool *has_value;         /* ARG: per NAME, whether a default was given */
	struct heredoc *heredocs;
	size_t heredoc_count;
	char *content;           /* STEP_FILE: what to write, at args[0] */
	mode_t mode;             /* STEP_FILE */
};

struct stage {
	char *name;              /* AS NAME, or NULL */
	char *from;              /* the image, raw: docker://, a file, another stage, scratch */
	struct strvec from_flags;
	unsigned line;
	struct step *steps;
	size_t count;
	/* Definition files: %files from STAGE sources are other stages. */
};

struct recipe {
	char *file;              /* as named in messages: "Dockerfile", "app.def" */
	struct step *global_args;   /* ARG before the first FROM */
	size_t global_count;
	struct stage *stages;
	size_t count;
	bool apptainer;          /* a definition file: the image gets Apptainer's layout */
};

/* Parse a Dockerfile (or Containerfile). */
int dockerfile_parse(const char *text, size_t length, const char *file, struct recipe *r,
                     capsula_error *err);
/* Parse an Apptainer/Singularity definition file; build arguments fill its
 * {{ NAME }} templates (%arguments gives the defaults). */
int deffile_parse(const char *text, size_t length, const char *file,
                  const struct strvec *build_args, struct recipe *r, capsula_error *err);

void recipe_free(struct recipe *r);

/* The instruction's name, as Dockerfiles spell it. */
const char *step_kind_name(enum step_kind kind);

/* Add a step to the list, returning it zeroed (kind, line set). */
struct step *steps_add(struct step **steps, size_t *count, enum step_kind kind, unsigned line);

#endif
