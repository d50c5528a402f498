#include "config.h"

#include <errno.h>
#include <string.h>

#include "runtime/push/layer_stream.h"

static ssize_t available(void *arg, uint64_t offset)
{
	struct layer_stream *s = arg;
	ssize_t ready;

	pthread_mutex_lock(&s->lock);
	while (s->state == LAYER_GROWING && s->written <= offset)
		pthread_cond_wait(&s->grown, &s->lock);
	if (s->state == LAYER_ABANDONED)
		ready = -1;
	else
		ready = s->written > offset ? (ssize_t)(s->written - offset) : 0;
	pthread_mutex_unlock(&s->lock);
	return ready;
}

static void *send_stream(void *arg)
{
	struct layer_stream *s = arg;

	s->result = registry_stream_blob(s->connection, &s->source, s->url, sizeof s->url, &s->err);
	return NULL;
}

int layer_stream_start(struct layer_stream *s, struct registry_connection *connection, int fd,
                       capsula_error *err)
{
	int ret;

	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->grown, NULL);
	s->connection = connection;
	s->source = (struct registry_body_source){.fd = fd, .available = available, .arg = s};
	ret = pthread_create(&s->thread, NULL, send_stream, s);
	if (ret != 0)
		return fail(err, ret, NULL, "layer: upload thread");
	s->running = true;
	return 0;
}

void layer_stream_grew(void *stream, uint64_t written)
{
	struct layer_stream *s = stream;

	pthread_mutex_lock(&s->lock);
	s->written = written;
	pthread_cond_broadcast(&s->grown);
	pthread_mutex_unlock(&s->lock);
}

int layer_stream_end(struct layer_stream *s, bool whole)
{
	if (!s->running)
		return -1;
	pthread_mutex_lock(&s->lock);
	s->state = whole ? LAYER_WHOLE : LAYER_ABANDONED;
	pthread_cond_broadcast(&s->grown);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->running = false;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->grown);
	return whole && s->result == 0 ? 0 : -1;
}
