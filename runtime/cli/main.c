#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/command.h"
#include "common/error.h"
#include "common/timing.h"
#include "runtime/doctor/doctor.h"
#include "runtime/image/converter.h"
#include "runtime/image/inspect.h"
#include "runtime/plan/instance.h"
#include "runtime/plan/launch.h"
#include "runtime/plan/rundir.h"
#include "starter/starter.h"

static const char usage[] =
	"Usage: capsula COMMAND [OPTIONS] ...\n"
	"Run squashfs container images as yourself, without privileges.\n"
	"\n"
	"Commands:\n"
	"  exec IMAGE COMMAND [ARG...]   run COMMAND inside IMAGE (a .sqfs or SIF file,\n"
	"                                or docker://REF, pulled once into the cache)\n"
	"  run IMAGE [ARG...]            run the image's runscript or entrypoint\n"
	"  shell IMAGE                   an interactive shell inside IMAGE\n"
	"  build OUTPUT.sqfs SOURCE      make an image from a directory, tarball,\n"
	"                                docker save archive, OCI layout or registry\n"
	"  pull REF [OUTPUT.sqfs]        fetch an image from a registry into the cache\n"
	"  push IMAGE docker://REF       publish an image to a registry\n"
	"  sign --key KEY docker://REF   sign an image in a registry (cosign's form)\n"
	"  login REGISTRY                store credentials for a registry\n"
	"  cache list|clean              the pulled images and blobs\n"
	"  overlay export|clean DIR      what runs with --overlay DIR changed, as a\n"
	"                                layer; or DIR emptied, --fakeroot files too\n"
	"  inspect IMAGE                 what an image is and carries\n"
	"  verify IMAGE                  does every part of the image decode?\n"
	"  instance start|list|stop      named containers that stay until stopped\n"
	"  doctor                        can this node run containers, MPI, verbs?\n"
	"\n"
	"Options:\n"
	"  --version   print the version (with -v: the site configuration file)\n"
	"  --help      this text; 'capsula COMMAND --help' for a command\n";

/* exec, run and shell: options, image, plan, then the starter. */
static int launch_main(int argc, char **argv)
{
	uint64_t start_us = timing_now_us();
	struct launch l;
	struct instance_record instance;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	int status = EXIT_CAPSULA_FAILED;
	bool joining;

	if (launch_parse(&l, argc, argv, &err) < 0)
		goto out;
	if (l.opts.help) {
		fputs(exec_usage(l.opts.mode), stdout);
		status = 0;
		goto out;
	}
	joining = strncmp(l.opts.image, INSTANCE_PREFIX, strlen(INSTANCE_PREFIX)) == 0;
	if (joining && instance_lookup(l.opts.image + strlen(INSTANCE_PREFIX), &instance, &err) < 0)
		goto out;
	if (launch_plan(&l, joining ? instance.image : l.opts.image, &err) < 0)
		goto out;
	if (joining) {
		snprintf(l.plan.join_key, sizeof l.plan.join_key, "%s", instance.key);
		l.plan.join_existing = true;
		l.plan.fakeroot = instance.fakeroot;
	}
	l.plan.start_us = start_us;
	timing_report(l.plan.timing, "plan", start_us);
	if (l.opts.dry_run) {
		plan_print(&l.plan, stdout);
		status = 0;
		goto out;
	}
	if (rundir_open_sockets(&l.plan.socket_dir_fd, &err) < 0)
		goto out;
	fflush(NULL);
	starter_run(&l.plan, &err);  /* returns only on failure */
out:
	if (status != 0)
		error_print(&err);
	launch_release(&l);
	return status == 0 ? 0 : err.status;
}

/* build, pull, push, sign, login, cache, overlay and verify are capsula-convert's. */
static int convert_main(int argc, char **argv)
{
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};

	converter_exec(argc, argv, &err);
	error_print(&err);
	return err.status;
}

static const struct command commands[] = {
	{"exec", launch_main},
	{"run", launch_main},
	{"shell", launch_main},
	{"build", convert_main},
	{"pull", convert_main},
	{"push", convert_main},
	{"sign", convert_main},
	{"login", convert_main},
	{"cache", convert_main},
	{"overlay", convert_main},
	{"verify", convert_main},
	{"inspect", inspect_main},
	{"instance", instance_main},
	{"doctor", doctor_main},
};

int main(int argc, char **argv)
{
	const struct command *command;
	capsula_error err;

	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_CAPSULA_FAILED;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("capsula %s\n", PACKAGE_VERSION);
		if (argc > 2 && strcmp(argv[2], "-v") == 0)
			printf("site configuration: %s\n", CAPSULA_CONFIG_FILE);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	command = command_find(commands, sizeof commands / sizeof commands[0], argv[1]);
	if (command != NULL)
		return command->main(argc - 1, argv + 1);
	fail(&err, 0, "see 'capsula --help'", "unknown command '%s'", argv[1]);
	error_print(&err);
	return EXIT_CAPSULA_FAILED;
}
