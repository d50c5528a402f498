#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/text.h"
#include "starter/imageserver/damage_report.h"

void damage_report_init(struct damage_report *r, const char *image)
{
	pthread_mutex_init(&r->lock, NULL);
	r->fds = NULL;
	r->count = r->room = 0;
	r->told = false;
	/* The name goes to terminals: no byte of it may act on one. */
	text_escape_controls(image != NULL ? image : "the image", r->image, sizeof r->image);
}

int damage_report_listen(struct damage_report *r, int fd)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->count == r->room) {
		size_t room = r->room ? 2 * r->room : 8;
		int *grown = realloc(r->fds, room * sizeof *grown);

		if (grown == NULL) {
			ret = -1;
			goto out;
		}
		r->fds = grown;
		r->room = room;
	}
	r->fds[r->count++] = fd;
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void damage_report_unlisten(struct damage_report *r, int fd)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->count; i++) {
		if (r->fds[i] == fd) {
			r->fds[i] = r->fds[--r->count];
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void damage_report_tell(struct damage_report *r, const char *what)
{
	char line[1024];
	int length;

	pthread_mutex_lock(&r->lock);
	if (r->told) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	r->told = true;
	length = snprintf(line, sizeof line, "capsula: %s is damaged: %s cannot be decoded, and "
	                  "reads of it fail; rebuild the image or fetch it again ('capsula verify "
	                  "%s' names the first damage)\n", r->image, what, r->image);
	if (length > (int)sizeof line - 1)
		length = (int)sizeof line - 1;
	for (size_t i = 0; length > 0 && i < r->count; i++)
		if (write(r->fds[i], line, (size_t)length) < 0)
			continue;  /* that rank's stderr is gone: nothing more to do */
	pthread_mutex_unlock(&r->lock);
}
