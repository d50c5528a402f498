#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "runtime/plan/env.h"
#include "runtime/plan/joinkey.h"

const char *launcher_job_id(char **env, char *buf, size_t size)
{
	const char *pmix_ns = env_get(env, "PMIX_NAMESPACE");
	const char *orte_job = env_get(env, "OMPI_MCA_ess_base_jobid");
	const char *slurm_job = env_get(env, "SLURM_JOB_ID");
	const char *slurm_step = env_get(env, "SLURM_STEP_ID");

	/* PMIx first: both Open MPI's mpirun and srun --mpi=pmix set it, and it
	 * names the job step the ranks were launched in. */
	if (pmix_ns != NULL && pmix_ns[0] != '\0')
		snprintf(buf, size, "pmix:%s", pmix_ns);
	else if (orte_job != NULL && orte_job[0] != '\0')
		snprintf(buf, size, "orte:%s", orte_job);
	else if (slurm_job != NULL && slurm_step != NULL)
		snprintf(buf, size, "slurm:%s.%s", slurm_job, slurm_step);
	else
		return NULL;
	return buf;
}

bool launcher_first_rank(char **env)
{
	static const char *const names[] = {"PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *rank = env_get(env, names[i]);

		if (rank != NULL && rank[0] != '\0')
			return strcmp(rank, "0") == 0;
	}
	return true;
}

static uint64_t fnv1a(uint64_t hash, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		hash ^= p[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static uint64_t fnv1a_str(uint64_t hash, const char *s)
{
	/* Include the terminator so "ab"+"c" and "a"+"bc" differ. */
	return fnv1a(hash, s ? s : "", s ? strlen(s) + 1 : 1);
}

static uint64_t hash_image(uint64_t hash, const struct capsula_image *img)
{
	hash = fnv1a(hash, &img->dev, sizeof img->dev);
	hash = fnv1a(hash, &img->ino, sizeof img->ino);
	hash = fnv1a(hash, &img->size, sizeof img->size);
	hash = fnv1a(hash, &img->mtime_ns, sizeof img->mtime_ns);
	return fnv1a(hash, &img->offset, sizeof img->offset);
}

int join_key_make(struct capsula_plan *plan, const char *scope, const gid_t *groups,
                  size_t group_count)
{
	uint64_t hash = 0xcbf29ce484222325ULL;

	if (scope == NULL) {
		join_key_private(plan->uid, plan->join_key, sizeof plan->join_key);
		return 0;
	}
	/* Everything that shapes the container is in the key, so launches that
	 * asked for different containers never share one. */
	hash = fnv1a_str(hash, scope);
	hash = fnv1a(hash, &plan->uid, sizeof plan->uid);
	/* The groups too: a container made under another primary group (sg,
	 * newgrp, a job run under a project's group) is not this one's. */
	hash = fnv1a(hash, &plan->gid, sizeof plan->gid);
	hash = fnv1a(hash, &group_count, sizeof group_count);
	hash = fnv1a(hash, groups, group_count * sizeof *groups);
	hash = hash_image(hash, &plan->image);
	hash = fnv1a(hash, &plan->dev_mode, sizeof plan->dev_mode);
	hash = fnv1a(hash, &plan->fuse_threads, sizeof plan->fuse_threads);
	hash = fnv1a(hash, &plan->fuse_cache_bytes, sizeof plan->fuse_cache_bytes);
	hash = fnv1a_str(hash, plan->home);
	for (size_t i = 0; i < plan->layer_count; i++)
		hash = hash_image(hash, &plan->layers[i]);
	hash = fnv1a(hash, &plan->overlay, sizeof plan->overlay);
	hash = fnv1a_str(hash, plan->overlay_dir);
	hash = fnv1a(hash, &plan->tmpfs_bytes, sizeof plan->tmpfs_bytes);
	hash = fnv1a(hash, &plan->fakeroot, sizeof plan->fakeroot);
	hash = fnv1a(hash, &plan->subuids, sizeof plan->subuids);
	hash = fnv1a(hash, &plan->subgids, sizeof plan->subgids);
	for (size_t i = 0; i < plan->bind_count; i++) {
		hash = fnv1a_str(hash, plan->binds[i].source);
		hash = fnv1a_str(hash, plan->binds[i].destination);
		hash = fnv1a(hash, &plan->binds[i].flags, sizeof plan->binds[i].flags);
	}
	snprintf(plan->join_key, sizeof plan->join_key, "capsula-%u-%016" PRIx64,
	         (unsigned)plan->uid, hash);
	return 0;
}
