/* capsula-convert: the half of capsula that gets images: build, pull,
 * login and cache. capsula runs it, so that libarchive, libsquashfs,
 * libcurl and their own libraries load only when an image is made or
 * fetched, never on the launch path. */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "common/command.h"
#include "common/error.h"
#include "runtime/convert/build.h"
#include "runtime/convert/verify.h"
#include "runtime/image/image_ref.h"
#include "runtime/pull/login.h"
#include "runtime/pull/pull.h"
#include "runtime/push/push.h"
#include "runtime/push/sign.h"
#include "runtime/recipe/builder.h"
#include "runtime/recipe/mapped_tree.h"
#include "runtime/recipe/overlay_build.h"

static int build_main(int argc, char **argv)
{
	struct build_options opts;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};

	if (build_options_parse(argc, argv, &opts, &err) < 0)
		goto failed;
	if (opts.help) {
		fputs(build_usage, stdout);
		build_options_free(&opts);
		return 0;
	}
	if (opts.overlay_dir != NULL) {
		if (overlay_build(&opts, &err) == 0) {
			build_options_free(&opts);
			return 0;
		}
		goto failed;
	}
	if (recipe_wanted(&opts)) {
		if (recipe_build(&opts, &err) == 0) {
			build_options_free(&opts);
			return 0;
		}
		goto failed;
	}
	if (is_docker_ref(opts.source)) {
		struct pull_options pull;
		char image[4096];

		pull_options_default(&pull);
		pull.build = opts;
		pull.ref = opts.source;
		if (pull_image(&pull, image, sizeof image, &err) == 0)
			return 0;
		goto failed;
	}
	switch (mapped_tree_build(&opts, &err)) {
	case 1:
		build_options_free(&opts);
		return 0;
	case -1:
		goto failed;
	default:
		break;
	}
	if (build_image(&opts, &err) == 0) {
		build_options_free(&opts);
		return 0;
	}
failed:
	build_options_free(&opts);
	error_print(&err);
	return err.status;
}

static int pull_main(int argc, char **argv)
{
	struct pull_options opts;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	char image[4096];

	if (pull_options_parse(argc, argv, &opts, &err) < 0)
		goto failed;
	if (opts.build.help) {
		fputs(pull_usage, stdout);
		return 0;
	}
	if (pull_image(&opts, image, sizeof image, &err) < 0)
		goto failed;
	/* exec docker://REF reads the cache itself; a user or script wants the path. */
	if (!opts.if_missing)
		printf("%s\n", image);
	return 0;
failed:
	error_print(&err);
	return err.status;
}

static int push_main(int argc, char **argv)
{
	struct push_options opts;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	char digest[72];

	if (push_options_parse(argc, argv, &opts, &err) < 0)
		goto failed;
	if (opts.help) {
		fputs(push_usage, stdout);
		return 0;
	}
	if (push_image(&opts, digest, &err) < 0)
		goto failed;
	printf("%s\n", digest);
	return 0;
failed:
	error_print(&err);
	return err.status;
}

static const struct command commands[] = {
	{"build", build_main},
	{"pull", pull_main},
	{"push", push_main},
	{"sign", sign_main},
	{"login", login_main},
	{"cache", cache_main},
	{"overlay", overlay_main},
	{"verify", verify_main},
};

int main(int argc, char **argv)
{
	const struct command *command;
	capsula_error err;

	/* Names in pax headers are UTF-8: read them as they are written. */
	setlocale(LC_CTYPE, "C.UTF-8");
	command = argc >= 2 ? command_find(commands, sizeof commands / sizeof commands[0], argv[1]) :
	          NULL;
	if (command != NULL)
		return command->main(argc - 1, argv + 1);
	fail(&err, 0, "run it through capsula", "capsula-convert: unknown command '%s'",
	     argc >= 2 ? argv[1] : "");
	error_print(&err);
	return EXIT_CAPSULA_FAILED;
}
