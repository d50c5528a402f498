#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/timing.h"
#include "runtime/image.h"
#include "runtime/options.h"
#include "runtime/plan.h"
#include "starter/starter.h"

static const char usage[] =
	"Usage: capsula COMMAND [OPTIONS] ...\n"
	"Run squashfs container images as yourself, without privileges.\n"
	"\n"
	"Commands:\n"
	"  exec IMAGE COMMAND [ARG...]   run COMMAND inside IMAGE\n"
	"\n"
	"Options:\n"
	"  --version   print the version\n"
	"  --help      this text; 'capsula COMMAND --help' for a command\n";

static int exec_main(int argc, char **argv)
{
	uint64_t start_us = timing_now_us();
	struct exec_options opts;
	struct host_facts facts = {0};
	struct capsula_image image = {.fd = -1};
	struct squashfs_info info;
	struct capsula_plan plan = {.image.fd = -1};
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	int status = EXIT_CAPSULA_FAILED;

	if (exec_options_parse(argc, argv, &opts, &err) < 0)
		goto out;
	if (opts.help) {
		fputs(exec_usage, stdout);
		status = 0;
		goto out;
	}
	if (host_facts_gather(&facts, &err) < 0 ||
	    image_open(opts.image, &image, &info, &err) < 0 ||
	    plan_build(&opts, &facts, &image, &plan, &err) < 0)
		goto out;
	plan.start_us = start_us;
	if (opts.dry_run) {
		plan_print(&plan, stdout);
		status = 0;
		goto out;
	}
	fflush(NULL);
	starter_run(&plan, &err);  /* returns only on failure */
out:
	if (status != 0)
		error_print(&err);
	status = status == 0 ? 0 : err.status;
	plan_free(&plan);
	free(image.path);
	host_facts_free(&facts);
	exec_options_free(&opts);
	return status;
}

int main(int argc, char **argv)
{
	capsula_error err;

	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_CAPSULA_FAILED;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("capsula %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "exec") == 0)
		return exec_main(argc - 1, argv + 1);
	fail(&err, 0, "see 'capsula --help'", "unknown command '%s'", argv[1]);
	error_print(&err);
	return EXIT_CAPSULA_FAILED;
}
