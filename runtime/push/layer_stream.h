/* A layer sent while it is made: a thread of its own streams the layer
 * file to the registry as the writer fills it, so that the upload takes
 * no time of its own after the compression. The digest is known only at
 * the end; the caller then commits the upload under it, or, when the
 * stream failed, uploads the whole file as before. */
#ifndef CAPSULA_LAYER_STREAM_H
#define CAPSULA_LAYER_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/pull/registry.h"

enum layer_stream_state { LAYER_GROWING, LAYER_WHOLE, LAYER_ABANDONED };

struct layer_stream {
	pthread_mutex_t lock;
	pthread_cond_t grown;
	uint64_t written;              /* bytes in the file so far */
	enum layer_stream_state state;
	struct registry_body_source source;
	struct registry_connection *connection;
	pthread_t thread;
	bool running;
	int result;                    /* of the streamed request */
	capsula_error err;
	char url[2400];                /* where the upload goes on */
};

/* Start streaming fd (empty yet) over connection, which is the thread's
 * until layer_stream_end. */
int layer_stream_start(struct layer_stream *s, struct registry_connection *connection, int fd,
                       capsula_error *err);

/* The layer writer's word that the file now holds written bytes. */
void layer_stream_grew(void *stream, uint64_t written);

/* The layer is whole (or, whole false, given up): the stream ends and its
 * thread is joined. 0 when the registry holds the whole stream; -1 with
 * the reason in s->err otherwise. */
int layer_stream_end(struct layer_stream *s, bool whole);

#endif
