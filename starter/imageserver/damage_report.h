/* A damaged image (a block or table that does not decode) makes the
 * command that reads it fail with EIO, or die of SIGBUS when the read was
 * a page fault: with no word of why. The image server says it once, on the
 * stderr of every rank that is running, before the failing read returns. */
#ifndef CAPSULA_DAMAGE_REPORT_H
#define CAPSULA_DAMAGE_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct damage_report {
	pthread_mutex_t lock;
	int *fds;              /* the running ranks' stderr */
	size_t count, room;
	bool told;
	char image[512];
};

void damage_report_init(struct damage_report *r, const char *image);
/* A rank's stderr, while it runs; 0, or -1 when out of memory. */
int damage_report_listen(struct damage_report *r, int fd);
void damage_report_unlisten(struct damage_report *r, int fd);
/* WHAT of the image does not decode: said once for the container's life. */
void damage_report_tell(struct damage_report *r, const char *what);

#endif
