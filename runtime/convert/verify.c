/* capsula verify IMAGE: read all of an image, as the image server would,
 * and say whether every part of it decodes. */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "runtime/convert/squashfs_layers.h"
#include "runtime/convert/verify.h"
#include "runtime/image/image.h"

#define HINT_DAMAGED "rebuild the image or fetch it again"
#define VERIFY_HINT "see 'capsula verify --help'"

static const char verify_usage[] =
	"Usage: capsula verify [-q] IMAGE\n"
	"Read every table, directory, inode, extended attribute and file of IMAGE\n"
	"(squashfs, or a SIF file's squashfs partition) and decode it, as running it\n"
	"would. Exit status 0: all of it decodes; 1: the image is damaged (the first\n"
	"damage is named); 125: it could not be checked. Squashfs keeps no checksums:\n"
	"bytes stored uncompressed can change without a sign.\n"
	"\n"
	"  -q, --quiet   say nothing when the image is intact\n"
	"  -h, --help    this text\n";

static bool starts_as_squashfs(const char *path)
{
	char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	bool is = fd >= 0 && read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
	          memcmp(magic, "hsqs", 4) == 0;

	if (fd >= 0)
		close(fd);
	return is;
}

int verify_main(int argc, char **argv)
{
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};
	struct capsula_image image = {.fd = -1};
	struct squashfs_info info;
	struct squashfs_verify_counts counts;
	struct squashfs_layer layer;
	const char *path = NULL;
	bool quiet = false;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(verify_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
			quiet = true;
		} else if (argv[i][0] == '-' || path != NULL) {
			fail(&err, 0, VERIFY_HINT, "unexpected argument '%s'", argv[i]);
			error_print(&err);
			return EXIT_CAPSULA_FAILED;
		} else {
			path = argv[i];
		}
	}
	if (path == NULL) {
		fail(&err, 0, VERIFY_HINT, "no image given");
		error_print(&err);
		return EXIT_CAPSULA_FAILED;
	}
	/* A squashfs that image_open refuses (truncated, a superblock out of
	 * bounds) is a damaged image; a file that is none is not one at all. */
	if (image_open(path, &image, &info, &err) < 0) {
		error_print(&err);
		return starts_as_squashfs(path) ? EXIT_IMAGE_DAMAGED : err.status;
	}
	close(image.fd);
	layer = (struct squashfs_layer){.path = path, .offset = image.offset};
	ret = squashfs_image_verify(&layer, HINT_DAMAGED, &counts, &err);
	free(image.path);
	if (ret < 0) {
		error_print(&err);
		return err.status;
	}
	if (!quiet)
		printf("%s: intact: %llu files (%.1f MiB), %llu directories, %llu other entries decoded\n",
		       path, (unsigned long long)counts.files, (double)counts.bytes / (1 << 20),
		       (unsigned long long)counts.directories, (unsigned long long)counts.others);
	return 0;
}
