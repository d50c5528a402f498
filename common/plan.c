#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "common/plan.h"

static void free_vector(char **v)
{
	for (char **p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}

static void image_release(struct capsula_image *image)
{
	if (image->fd >= 0)
		close(image->fd);
	free(image->path);
	image->fd = -1;
	image->path = NULL;
}

void plan_free(struct capsula_plan *plan)
{
	image_release(&plan->image);
	for (size_t i = 0; i < plan->layer_count; i++)
		image_release(&plan->layers[i]);
	free(plan->layers);
	plan->layers = NULL;
	if (plan->socket_dir_fd >= 0)
		close(plan->socket_dir_fd);
	plan->socket_dir_fd = -1;
	plan->layer_count = 0;
	free(plan->overlay_dir);
	free(plan->newuidmap);
	free(plan->newgidmap);
	plan->overlay_dir = plan->newuidmap = plan->newgidmap = NULL;
	for (size_t i = 0; i < plan->bind_count; i++) {
		free(plan->binds[i].source);
		free(plan->binds[i].destination);
	}
	free(plan->binds);
	free(plan->home);
	free(plan->cwd);
	free_vector(plan->argv);
	free_vector(plan->envp);
	plan->binds = NULL;
	plan->bind_count = 0;
	plan->home = plan->cwd = NULL;
	plan->argv = plan->envp = NULL;
}

void join_key_private(uid_t uid, char *key, size_t size)
{
	uuid_t uuid;
	char text[37];

	uuid_generate(uuid);
	uuid_unparse_lower(uuid, text);
	snprintf(key, size, "capsula-%u-%s", (unsigned)uid, text);
}
