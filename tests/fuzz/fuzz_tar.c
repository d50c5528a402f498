/* Tar streams as layers and tarballs bring them: headers, GNU long names,
 * pax records, content. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("tar", MFD_CLOEXEC);
	struct tar_reader r;
	struct tar_entry *e;
	capsula_error err;
	char buf[4096];

	if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	tar_open(&r, fd, "fuzz.tar");
	while (tar_next(&r, &e, &err) > 0)
		while (tar_read(&r, buf, sizeof buf, &err) > 0)
			;
	tar_close(&r);
	close(fd);
	return 0;
}
