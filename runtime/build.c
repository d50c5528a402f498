#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/build.h"
#include "runtime/image_config.h"
#include "runtime/image_source.h"
#include "runtime/unpack.h"

/* Everything a build makes lives in one work directory beside the output,
 * so that the image is renamed into place (never half written) and one
 * removal cleans up whatever happened. */
struct build {
	const struct build_options *opts;
	enum source_kind kind;
	char work[4096];       /* OUTDIR/.NAME.build-XXXXXX */
	char rootfs[4096];     /* what mksquashfs packs */
	char partial[4096];    /* the image until it is complete */
	struct image_config config;
	bool has_config;
	struct unpack unpack;
	bool progress;
};

static volatile sig_atomic_t stop_signal;
static volatile pid_t running_child;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
	if (running_child > 0)
		kill(running_child, sig);
}

static void catch_stop_signals(bool on)
{
	static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa = {.sa_handler = on ? on_stop_signal : SIG_DFL};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		sigaction(signals[i], &sa, NULL);
}

static int check_interrupted(capsula_error *err)
{
	if (stop_signal == 0)
		return 0;
	return fail_status(err, 128 + stop_signal, 0, "nothing was written",
	                   "build interrupted by signal %d", (int)stop_signal);
}

static void __attribute__((format(printf, 2, 3)))
progress(const struct build *b, const char *fmt, ...)
{
	va_list ap;

	if (!b->progress)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* out = a + b, or -1 when that does not fit. */
static int join_path(char *out, size_t size, const char *a, const char *b, capsula_error *err)
{
	int n = snprintf(out, size, "%s%s", a, b);

	if (n < 0 || (size_t)n >= size)
		return fail(err, ENAMETOOLONG, "build somewhere with a shorter path", "%s%s", a, b);
	return 0;
}

static int check_output(struct build *b, capsula_error *err)
{
	char copy[4096];
	struct stat st;
	const char *dir;

	if (lstat(b->opts->output, &st) == 0 && !b->opts->force)
		return fail(err, 0, "use --force to replace it", "%s exists", b->opts->output);
	if (snprintf(copy, sizeof copy, "%s", b->opts->output) >= (int)sizeof copy)
		return fail(err, ENAMETOOLONG, NULL, "%s", b->opts->output);
	dir = dirname(copy);
	if (access(dir, W_OK | X_OK) < 0)
		return fail(err, errno, "write the image to a directory you own",
		            "output directory %s", dir);
	return 0;
}

static int make_work_dir(struct build *b, capsula_error *err)
{
	char dir_copy[4096], base_copy[4096];

	snprintf(dir_copy, sizeof dir_copy, "%s", b->opts->output);
	snprintf(base_copy, sizeof base_copy, "%s", b->opts->output);
	if ((size_t)snprintf(b->work, sizeof b->work, "%s/.%s.build-XXXXXX", dirname(dir_copy),
	                     basename(base_copy)) >= sizeof b->work - 32)
		return fail(err, ENAMETOOLONG, NULL, "%s", b->opts->output);
	if (mkdtemp(b->work) == NULL) {
		b->work[0] = '\0';
		return fail(err, errno, "free some space or write elsewhere",
		            "work directory beside %s", b->opts->output);
	}
	if (join_path(b->partial, sizeof b->partial, b->work, "/image.sqfs", err) < 0 ||
	    join_path(b->rootfs, sizeof b->rootfs, b->work, "/rootfs", err) < 0)
		return -1;
	if (mkdir(b->rootfs, 0755) < 0)
		return fail(err, errno, NULL, "%s", b->rootfs);
	return 0;
}

static int apply_layers(struct build *b, const struct strvec *layers, capsula_error *err)
{
	if (unpack_init(&b->unpack, b->rootfs, true, err) < 0)
		return -1;
	for (size_t i = 0; i < layers->count; i++) {
		progress(b, "capsula: layer %zu of %zu\n", i + 1, layers->count);
		if (unpack_archive(&b->unpack, layers->items[i], err) < 0 || check_interrupted(err) < 0)
			return -1;
	}
	return 0;
}

/* Bring SOURCE into rootfs/ (a directory source is packed where it is). */
static int stage_source(struct build *b, capsula_error *err)
{
	const char *source = b->opts->source;
	char archive_dir[4096];
	struct strvec layers = {0};
	struct unpack outer;
	int ret;

	progress(b, "capsula: reading %s\n", source);
	switch (b->kind) {
	case SOURCE_DIRECTORY:
		snprintf(b->rootfs, sizeof b->rootfs, "%s", source);
		return 0;
	case SOURCE_TARBALL:
		if (unpack_init(&b->unpack, b->rootfs, false, err) < 0)
			return -1;
		return unpack_archive(&b->unpack, source, err);
	case SOURCE_DOCKER_ARCHIVE:
	case SOURCE_OCI_ARCHIVE:
		if (join_path(archive_dir, sizeof archive_dir, b->work, "/archive", err) < 0)
			return -1;
		if (mkdir(archive_dir, 0700) < 0)
			return fail(err, errno, NULL, "%s", archive_dir);
		if (unpack_init(&outer, archive_dir, false, err) < 0)
			return -1;
		ret = unpack_archive(&outer, source, err);
		unpack_free(&outer);
		if (ret < 0 || check_interrupted(err) < 0)
			return -1;
		source = archive_dir;
		break;
	case SOURCE_OCI_LAYOUT:
		break;
	}
	ret = source_read_layers(source, b->kind, &layers, &b->config, err);
	b->has_config = ret == 0;
	if (ret == 0)
		ret = apply_layers(b, &layers, err);
	strvec_free(&layers);
	return ret;
}

static int write_metadata(struct build *b, capsula_error *err)
{
	char path[4096];
	FILE *f;

	if (!b->has_config)
		return 0;
	if (join_path(path, sizeof path, b->rootfs, IMAGE_METADATA_DIR, err) < 0)
		return -1;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return fail(err, errno, NULL, "%s", path);
	if (join_path(path, sizeof path, b->rootfs, IMAGE_CONFIG_PATH, err) < 0)
		return -1;
	f = fopen(path, "we");
	if (f == NULL)
		return fail(err, errno, NULL, "%s", path);
	image_config_write(&b->config, f);
	if (fclose(f) != 0)
		return fail(err, errno, NULL, "%s", path);
	return 0;
}

static int write_pseudo_file(struct build *b, char *path, size_t size, capsula_error *err)
{
	FILE *f;

	path[0] = '\0';
	if (b->unpack.modes == NULL)
		return 0;
	if (join_path(path, size, b->work, "/modes", err) < 0)
		return -1;
	f = fopen(path, "we");
	if (f == NULL)
		return fail(err, errno, NULL, "%s", path);
	if (unpack_write_modes(&b->unpack, f, err) < 0) {
		fclose(f);
		return -1;
	}
	if (fclose(f) != 0)
		return fail(err, errno, NULL, "%s", path);
	return 0;
}

static void warn_skipped_devices(const struct build *b)
{
	if (b->unpack.devices_skipped > 0)
		fprintf(stderr, "capsula: warning: skipped %u device node%s (first: %s); containers "
		        "get /dev from the host\n", b->unpack.devices_skipped,
		        b->unpack.devices_skipped == 1 ? "" : "s", b->unpack.first_device);
}

static int run_mksquashfs(struct build *b, const char *pseudo, capsula_error *err)
{
	char block[32];
	const char *argv[24];
	size_t n = 0;
	int status;
	pid_t pid;

	snprintf(block, sizeof block, "%u", b->opts->block_size);
	argv[n++] = "mksquashfs";
	argv[n++] = b->rootfs;
	argv[n++] = b->partial;
	argv[n++] = "-noappend";
	argv[n++] = "-all-root";
	argv[n++] = "-no-xattrs";
	argv[n++] = "-comp";
	argv[n++] = b->opts->compression;
	argv[n++] = "-b";
	argv[n++] = block;
	if (pseudo[0] != '\0') {
		argv[n++] = "-pf";
		argv[n++] = pseudo;
	}
	if (!b->progress || !isatty(STDOUT_FILENO)) {
		argv[n++] = "-quiet";
		argv[n++] = "-no-progress";
	}
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return fail(err, errno, NULL, "fork mksquashfs");
	if (pid == 0) {
		if (!b->progress)
			dup2(STDERR_FILENO, STDOUT_FILENO);  /* its errors, not chatter */
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "capsula: mksquashfs: %s; install squashfs-tools\n", strerror(errno));
		_exit(127);
	}
	running_child = pid;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	running_child = 0;
	if (check_interrupted(err) < 0)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail(err, 0, "see its message above", "mksquashfs failed (status %d)",
		            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

static int move_into_place(struct build *b, capsula_error *err)
{
	int fd = open(b->partial, O_RDONLY | O_CLOEXEC);

	/* The image must be on disk before its name is. */
	if (fd < 0 || fsync(fd) < 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		return fail(err, saved, NULL, "%s", b->partial);
	}
	close(fd);
	if (chmod(b->partial, 0644) < 0 || rename(b->partial, b->opts->output) < 0)
		return fail(err, errno, NULL, "rename the image to %s", b->opts->output);
	return 0;
}

static void remove_work_dir(struct build *b)
{
	if (b->work[0] != '\0' && remove_tree(AT_FDCWD, b->work) < 0)
		fprintf(stderr, "capsula: warning: could not remove %s: %s\n", b->work,
		        strerror(errno));
}

int build_image(const struct build_options *opts, capsula_error *err)
{
	struct build b = {.opts = opts, .unpack.root_fd = -1};
	char pseudo[4096] = "";
	int ret = -1;

	b.progress = !opts->quiet && isatty(STDERR_FILENO);
	catch_stop_signals(true);
	if (check_output(&b, err) < 0 || source_detect(opts->source, &b.kind, err) < 0 ||
	    make_work_dir(&b, err) < 0)
		goto out;
	if (stage_source(&b, err) < 0 || check_interrupted(err) < 0 ||
	    write_metadata(&b, err) < 0 ||
	    write_pseudo_file(&b, pseudo, sizeof pseudo, err) < 0)
		goto out;
	warn_skipped_devices(&b);
	if (run_mksquashfs(&b, pseudo, err) < 0 || check_interrupted(err) < 0 ||
	    move_into_place(&b, err) < 0)
		goto out;
	progress(&b, "capsula: wrote %s\n", opts->output);
	ret = 0;
out:
	unpack_free(&b.unpack);
	image_config_free(&b.config);
	remove_work_dir(&b);
	catch_stop_signals(false);
	return ret;
}
