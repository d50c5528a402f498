/* capsula build: a squashfs image from a directory, a tarball, a docker
 * save archive or an OCI layout, unprivileged, written atomically, without
 * unpacking anything to disk. Runs in capsula-convert, so that the
 * libraries it needs never slow down a launch. */
#ifndef CAPSULA_BUILD_H
#define CAPSULA_BUILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strvec.h"

struct squashfs_layer;
struct image_config;

struct build_options {
	const char *output;
	int output_dir_fd;         /* output is below it, not -1: a cache's own file */
	const char *output_shown;  /* then, the output's name in messages */
	const char *source;
	int source_dir_fd;         /* not -1: the source directory, already open and checked */
	const char *tag;           /* which image of an archive or layout */
	const char *manifest;      /* or a layout's image by manifest digest (a pull) */
	/* Or squashfs images as layers, bottom first (a recipe's), and the
	 * run configuration to keep in the image: */
	const struct squashfs_layer *layers;
	size_t layer_count;
	const struct image_config *config;
	const char *recipe_text;   /* the recipe built, kept in the image; or NULL */
	const char *compression;   /* zstd (default), gzip, xz, lz4 */
	int level;                 /* its level; 0: the default (zstd 9) */
	unsigned block_size;       /* bytes, a power of two from 4 KiB to 1 MiB */
	unsigned workers;          /* compressing threads; 0: one per processor */
	bool force;
	bool all_root;             /* every file root's, as before owners were kept */
	bool capture_upper;        /* the source is a build step's overlay upper directory */
	const struct strvec *capture_skip;  /* its mount points, left out when empty */
	bool quiet;
	bool help;
	/* A recipe build (capsula build OUT Dockerfile|x.def, or -f FILE CONTEXT): */
	const char *recipe_file;   /* -f FILE */
	struct strvec build_args;  /* --build-arg NAME=VALUE */
	bool no_cache;
	const char *target;        /* --target STAGE */
	const char *platform;      /* --platform: only this machine's */
	bool notest;               /* definition files: no %test */
	const char *overlay_dir;   /* --overlay DIR: its upper applied to SOURCE */
};

extern const char build_usage[];

void build_options_default(struct build_options *opts);
/* -F, -c, -b, -j, -q and --all-root, which pull shares: 1 if option was
 * one of them. */
int build_option_apply(int option, const char *value, struct build_options *opts,
                       capsula_error *err);
int build_options_parse(int argc, char **argv, struct build_options *opts,
                        capsula_error *err);
void build_options_free(struct build_options *opts);
int build_image(const struct build_options *opts, capsula_error *err);

#endif
