#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/json_out.h"
#include "common/small_file.h"
#include "runtime/image/image.h"
#include "runtime/image/image_cache.h"
#include "runtime/image/image_config.h"
#include "runtime/image/image_files.h"
#include "runtime/image/image_ref.h"
#include "runtime/image/image_run.h"
#include "runtime/image/inspect.h"
#include "runtime/image/mpi_stack.h"
#include "runtime/image/pulled_image.h"

static const char inspect_usage[] =
	"Usage: capsula inspect [--json] IMAGE\n"
	"Show an image's format, size, compression, block size, file count, labels,\n"
	"environment, runscript and its MPI stack (Open MPI, PMIx, libfabric,\n"
	"rdma-core and verbs providers). IMAGE may be docker://REF: the image its\n"
	"pull left in the cache, pulled first when it is not there.\n"
	"\n"
	"  --json          one JSON object instead of text\n"
	"  --tls-ca FILE   docker://REF: the registry's CA, as for capsula pull\n"
	"  --insecure      docker://REF: reach the registry over plain HTTP\n"
	"  -h, --help      this text\n";

#define MAX_LABELS_SIZE (1u << 20)
#define MAX_RUNSCRIPT_SIZE (64u << 10)

struct inspection {
	struct capsula_image image;
	struct squashfs_info info;
	struct image_files files;
	struct image_run run;         /* config, Apptainer flags (no command) */
	char *runscript;              /* Apptainer's, or NULL */
	char *startscript;            /* what Apptainer's instance start runs, or NULL */
	char *help;                   /* a definition file's %help, or NULL */
	char *recipe;                 /* what a recipe build kept, or NULL */
	struct mpi_stack stack;
	char digest[72];              /* docker://REF: the manifest it came from */
	char signed_by[1200];         /* and who signed it, if a pull checked */
};

/* An image Apptainer built keeps its labels beside its runscript. */
static void add_apptainer_labels(struct inspection *in)
{
	char *text, why[256];
	size_t length;

	if (image_files_read(&in->files, APPTAINER_DIR "/labels.json", MAX_LABELS_SIZE, &text,
	                     &length) < 0)
		return;
	if (image_config_add_labels(text, length, &in->run.config, why, sizeof why) < 0)
		fprintf(stderr, "capsula: warning: %s/labels.json: %s; its labels are left out\n",
		        APPTAINER_DIR, why);
	free(text);
}

/* A docker://REF is the image its pull left in the cache (pulled now when
 * it is not there). */
/* A pulled image is named by its manifest digest; the pull that checked its
 * signatures left their record beside it. */
static void describe_origin(const char *cached, struct inspection *in)
{
	const char *base = strrchr(cached, '/');
	char cache_dir[4200];
	size_t images = strlen("/images");
	struct signers_record r;
	int cache_fd;

	if (base == NULL || strlen(base + 1) != 64 + strlen(".sqfs") ||
	    (size_t)(base - cached) < images || strncmp(base - images, "/images", images) != 0)
		return;
	snprintf(in->digest, sizeof in->digest, "sha256:%.64s", base + 1);
	snprintf(cache_dir, sizeof cache_dir, "%.*s", (int)(base - images - cached), cached);
	cache_fd = open(cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cache_fd < 0)
		return;
	if (cache_signers_read(cache_fd, in->digest, &r))
		snprintf(in->signed_by, sizeof in->signed_by, "%s (signature of %s)", r.signers,
		         r.signed_digest);
	close(cache_fd);
}

static int open_image(const char *path, const struct pull_access *pull, struct inspection *in,
                      capsula_error *err)
{
	char cached[4096];
	int fd;

	if (!is_docker_ref(path))
		return image_open(path, &in->image, &in->info, err);
	fd = pulled_image_open(path, pull, cached, sizeof cached, err);
	if (fd < 0)
		return -1;
	describe_origin(cached, in);
	return image_open_fd(fd, cached, &in->image, &in->info, err);
}

static int gather(const char *path, const struct pull_access *pull, struct inspection *in,
                  capsula_error *err)
{
	struct file_access access;
	size_t length;

	if (open_image(path, pull, in, err) < 0 ||
	    image_files_open(&in->files, &in->image, err) < 0 ||
	    image_run_describe(&in->files, &in->run, err) < 0)
		return -1;
	if (image_files_read(&in->files, APPTAINER_DIR "/runscript", MAX_RUNSCRIPT_SIZE,
	                     &in->runscript, &length) < 0)
		in->runscript = NULL;
	if (image_files_read(&in->files, APPTAINER_DIR "/startscript", MAX_RUNSCRIPT_SIZE,
	                     &in->startscript, &length) < 0)
		in->startscript = NULL;
	if (image_files_read(&in->files, APPTAINER_DIR "/runscript.help", MAX_RUNSCRIPT_SIZE,
	                     &in->help, &length) < 0)
		in->help = NULL;
	if (image_files_read(&in->files, IMAGE_RECIPE_PATH, MAX_RUNSCRIPT_SIZE, &in->recipe,
	                     &length) < 0)
		in->recipe = NULL;
	add_apptainer_labels(in);
	access = image_files_access(&in->files);
	mpi_stack_detect(&access, &in->stack);
	return 0;
}

static void release(struct inspection *in)
{
	mpi_stack_free(&in->stack);
	free(in->runscript);
	free(in->startscript);
	free(in->help);
	free(in->recipe);
	image_run_free(&in->run);
	image_files_close(&in->files);
	if (in->image.fd >= 0)
		close(in->image.fd);
	free(in->image.path);
}

static void print_list(const char *label, const struct strvec *items)
{
	printf("%-18s", label);
	for (size_t i = 0; i < items->count; i++)
		printf("%s%s", i ? " " : "", items->items[i]);
	printf("%s\n", items->count ? "" : "-");
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

/* A text, each of its lines under the first indented as the rest. */
static void print_text_block(const char *label, const char *help)
{
	const char *line = help;

	printf("%-18s", label);
	if (help == NULL || help[0] == '\0') {
		printf("-\n");
		return;
	}
	while (*line != '\0') {
		const char *end = strchrnul(line, '\n');

		printf("%s%.*s\n", line == help ? "" : "                  ", (int)(end - line), line);
		line = *end ? end + 1 : end;
	}
}

static void print_text(const struct inspection *in)
{
	const struct image_config *c = &in->run.config;

	printf("%-18s%s\n", "Image:", in->image.path);
	if (in->image.offset != 0)
		printf("%-18sSIF, squashfs partition at byte %llu\n", "Format:",
		       (unsigned long long)in->image.offset);
	else
		printf("%-18ssquashfs %u.%u\n", "Format:", in->info.major, in->info.minor);
	printf("%-18s%lld bytes\n", "Size:", (long long)in->image.size);
	printf("%-18s%s\n", "Digest:", in->digest[0] ? in->digest : "-");
	printf("%-18s%s\n", "Signed by:", in->signed_by[0] ? in->signed_by : "-");
	printf("%-18s%s\n", "Compression:", squashfs_compression_name(in->info.compression));
	printf("%-18s%u\n", "Block size:", in->info.block_size);
	printf("%-18s%u\n", "Files:", in->info.inodes);
	printf("%-18s", "Labels:");
	for (size_t i = 0; i < c->label_keys.count; i++)
		printf("%s%s=%s", i ? " " : "", c->label_keys.items[i], c->label_values.items[i]);
	printf("%s\n", c->label_keys.count ? "" : "-");
	print_list("Env:", &c->env);
	print_list("Entrypoint:", &c->entrypoint);
	print_list("Cmd:", &c->cmd);
	printf("%-18s%s\n", "WorkingDir:", or_dash(c->workdir));
	printf("%-18s%s\n", "User:", or_dash(c->user));
	printf("%-18s%s\n", "Runscript:", in->runscript ? APPTAINER_DIR "/runscript" : "-");
	printf("%-18s%s\n", "Startscript:", in->startscript ? APPTAINER_DIR "/startscript" : "-");
	print_text_block("Help:", in->help);
	print_text_block("Recipe:", in->recipe);
	printf("%-18s%s\n", "Open MPI:", or_dash(in->stack.openmpi));
	printf("%-18s%s\n", "PMIx:", or_dash(in->stack.pmix));
	printf("%-18s%s\n", "libfabric:", or_dash(in->stack.libfabric));
	printf("%-18s%s\n", "rdma-core:", or_dash(in->stack.rdma_core));
	print_list("Verbs providers:", &in->stack.verbs_providers);
}

static int print_json(const struct inspection *in)
{
	const struct image_config *c = &in->run.config;

	return json_print(json_pack("{s:o,s:s,s:I,s:I,s:o,s:o,s:s,s:i,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o}",
	        "image", json_text(in->image.path),
	        "format", in->image.offset ? "sif" : "squashfs",
	        "offset", (json_int_t)in->image.offset,
	        "size", (json_int_t)in->image.size,
	        "digest", in->digest[0] ? json_text(in->digest) : json_null(),
	        "signed_by", in->signed_by[0] ? json_text(in->signed_by) : json_null(),
	        "compression", squashfs_compression_name(in->info.compression),
	        "block_size", (int)in->info.block_size,
	        "files", (int)in->info.inodes,
	        "labels", json_labels(c),
	        "env", json_text_list(c->env.items, c->env.count),
	        "entrypoint", json_text_list(c->entrypoint.items, c->entrypoint.count),
	        "cmd", json_text_list(c->cmd.items, c->cmd.count),
	        "workdir", json_text(c->workdir ? c->workdir : ""),
	        "user", json_text(c->user ? c->user : ""),
	        "apptainer", in->run.apptainer || in->run.runscript,
	        "runscript", in->runscript ? json_text(in->runscript) : json_null(),
	        "startscript", in->startscript ? json_text(in->startscript) : json_null(),
	        "help", in->help ? json_text(in->help) : json_null(),
	        "recipe", in->recipe ? json_text(in->recipe) : json_null(),
	        "mpi", mpi_stack_json(&in->stack)), stdout);
}

int inspect_main(int argc, char **argv)
{
	struct inspection in = {.image.fd = -1};
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct pull_access pull = {.shown = true};
	const char *path = NULL;
	bool json = false;
	int status = EXIT_CAPSULA_FAILED;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--insecure") == 0) {
			pull.insecure = true;
		} else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
			pull.tls_ca = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(inspect_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-' || path != NULL) {
			fail(&err, 0, "see 'capsula inspect --help'", "unexpected argument '%s'", argv[i]);
			goto out;
		} else {
			path = argv[i];
		}
	}
	if (path == NULL) {
		fail(&err, 0, "see 'capsula inspect --help'", "no image given");
		goto out;
	}
	if (gather(path, &pull, &in, &err) < 0)
		goto out;
	if (json && print_json(&in) < 0) {
		fail(&err, errno, NULL, "standard output");
		goto out;
	}
	if (!json)
		print_text(&in);
	if (fflush(stdout) != 0) {
		fail(&err, errno, NULL, "standard output");
		goto out;
	}
	status = 0;
out:
	if (status != 0)
		error_print(&err);
	release(&in);
	return status == 0 ? 0 : err.status;
}
