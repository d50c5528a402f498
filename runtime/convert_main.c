/* capsula-convert: the image-building half of capsula. `capsula build`
 * runs it, so that libarchive, libsquashfs and their own libraries load
 * only when an image is built, never on the launch path. */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "runtime/build.h"

static int build_main(int argc, char **argv)
{
	struct build_options opts;
	capsula_error err = {.status = EXIT_CAPSULA_FAILED};

	if (build_options_parse(argc, argv, &opts, &err) < 0)
		goto failed;
	if (opts.help) {
		fputs(build_usage, stdout);
		return 0;
	}
	if (build_image(&opts, &err) == 0)
		return 0;
failed:
	error_print(&err);
	return err.status;
}

int main(int argc, char **argv)
{
	capsula_error err;

	/* Names in pax headers are UTF-8: read them as they are written. */
	setlocale(LC_CTYPE, "C.UTF-8");
	if (argc >= 2 && strcmp(argv[1], "build") == 0)
		return build_main(argc - 1, argv + 1);
	fail(&err, 0, "run it as 'capsula build'", "capsula-convert: unknown command '%s'",
	     argc >= 2 ? argv[1] : "");
	error_print(&err);
	return EXIT_CAPSULA_FAILED;
}
