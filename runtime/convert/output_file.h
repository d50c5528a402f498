/* An image file that appears whole or not at all: written under a hidden
 * name beside its final one (.NAME.partial-RANDOM), in the directory opened
 * once, then renamed into place. The writer holds a lock on the partial
 * file while it writes; a later run of the same output removes partial
 * files whose writer is gone (killed, the machine rebooted). */
#ifndef CAPSULA_OUTPUT_FILE_H
#define CAPSULA_OUTPUT_FILE_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

#define OUTPUT_NAME_MAX 1024

struct output_file {
	int dir_fd;                     /* the output's directory */
	char name[OUTPUT_NAME_MAX];     /* below it */
	char partial[OUTPUT_NAME_MAX + 32];
	char shown[4096];               /* the output as the user named it */
	int fd;                         /* the partial file, being written */
};

/* Prepare to write path (below dir_fd when it is not -1; shown names it
 * then): refused when it exists unless force. */
int output_open(struct output_file *o, int dir_fd, const char *path, const char *shown,
                bool force, capsula_error *err);
/* Create the partial file (o->fd). */
int output_begin(struct output_file *o, capsula_error *err);
/* Make it the output: mode 0666 less the umask, synced, renamed. */
int output_commit(struct output_file *o, capsula_error *err);
/* Remove the partial file (if any) and close everything. */
void output_close(struct output_file *o);

#endif
