#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/image/image.h"
#include "runtime/image/image_ref.h"
#include "runtime/image/pulled_image.h"
#include "runtime/plan/joinkey.h"
#include "runtime/plan/launch.h"

int launch_parse(struct launch *l, int argc, char **argv, capsula_error *err)
{
	memset(l, 0, sizeof *l);
	l->image.fd = -1;
	l->plan.image.fd = -1;
	l->plan.socket_dir_fd = -1;
	if (exec_options_parse(argc, argv, &l->opts, err) < 0)
		return -1;
	/* Its reader learns of a failure by its closing: no child of ours (a
	 * pull's converter) may keep it open. */
	if (l->opts.hold_notify_fd >= 0 && fcntl(l->opts.hold_notify_fd, F_SETFD, FD_CLOEXEC) < 0)
		return fail(err, errno, "give the descriptor of an open socket",
		            "--hold-notify %d", l->opts.hold_notify_fd);
	return 0;
}

/* Warnings about a job's launch are said once, by its first rank. */
static bool first_rank_of_job(const struct launch *l, char *job, size_t size)
{
	return l->opts.verbosity >= 0 && launcher_job_id(l->facts.environ, job, size) != NULL &&
	       launcher_first_rank(l->facts.environ);
}

/* Ranks in containers of their own cannot map each other's memory: Open
 * MPI's single-copy transfers (CMA) fail, and large messages hang. */
static void warn_private_ranks(const struct launch *l)
{
	char job[256];

	if (l->opts.join != JOIN_NEVER || !first_rank_of_job(l, job, sizeof job))
		return;
	fprintf(stderr, "capsula: warning: --join never under a launcher (%s): each rank gets a "
	        "container of its own, and Open MPI's single-copy transfers between ranks fail "
	        "(large messages hang); leave --join at auto\n", job);
}

/* Open MPI's ranks tell its PMIx server who they are, and as uid 0 they
 * are not the user the server expects: MPI_Init fails. */
static void warn_fakeroot_ranks(const struct launch *l)
{
	char job[256];

	if (!l->opts.fakeroot || !first_rank_of_job(l, job, sizeof job))
		return;
	fprintf(stderr, "capsula: warning: --fakeroot under a launcher (%s): as uid 0 the ranks "
	        "cannot connect to the launcher's PMIx server, so MPI_Init fails; use --fakeroot to "
	        "install or build, and run the job without it\n", job);
}

int launch_plan(struct launch *l, const char *image_path, capsula_error *err)
{
	int pulled = -1;

	if (is_docker_ref(image_path)) {
		char job[256];
		struct pull_access access = {
			.tls_ca = l->opts.tls_ca, .insecure = l->opts.insecure,
			.shown = l->opts.verbosity >= 0 &&
			         (launcher_job_id(environ, job, sizeof job) == NULL ||
			          launcher_first_rank(environ)),
		};

		pulled = pulled_image_open(image_path, &access, l->pulled, sizeof l->pulled, err);
		if (pulled < 0)
			return -1;
	}
	if (host_facts_gather(&l->facts, err) < 0) {
		if (pulled >= 0)
			close(pulled);
		return -1;
	}
	if ((pulled >= 0 ? image_open_fd(pulled, l->pulled, &l->image, &l->info, err) :
	                   image_open(image_path, &l->image, &l->info, err)) < 0)
		return -1;
	/* A cache entry capsula made, opened and checked against its record. */
	l->image.cached = pulled >= 0;
	if (image_run_prepare(&l->image, l->opts.mode, l->opts.command, &l->run, err) < 0)
		return -1;
	if (plan_build(&l->opts, &l->facts, &l->image, &l->run, &l->plan, err) < 0)
		return -1;
	warn_private_ranks(l);
	warn_fakeroot_ranks(l);
	return 0;
}

void launch_release(struct launch *l)
{
	plan_free(&l->plan);
	image_run_free(&l->run);
	if (l->image.fd >= 0)
		close(l->image.fd);
	free(l->image.path);
	host_facts_free(&l->facts);
	exec_options_free(&l->opts);
}
