#include "config.h"

#include <stdio.h>

#include "runtime/plan/plan.h"

/* --dry-run: what would be done, one fact a line, stable for scripts. */
void plan_print(const struct capsula_plan *plan, FILE *out)
{
	fprintf(out, "image      %s (offset %llu)\n", plan->image.path,
	        (unsigned long long)plan->image.offset);
	for (size_t i = 0; i < plan->layer_count; i++)
		fprintf(out, "layer      %s (offset %llu, read-only, over the image)\n",
		        plan->layers[i].path, (unsigned long long)plan->layers[i].offset);
	if (plan->overlay == OVERLAY_TMPFS)
		fprintf(out, "writable   tmpfs of %llu MiB over the image (changes dropped)\n",
		        plan->tmpfs_bytes >> 20);
	else if (plan->overlay == OVERLAY_DIR)
		fprintf(out, "writable   %s/upper over the image (changes kept)\n", plan->overlay_dir);
	if (!plan->fakeroot)
		fprintf(out, "identity   uid %u gid %u (mapped to themselves)\n",
		        (unsigned)plan->uid, (unsigned)plan->gid);
	else if (plan->newuidmap != NULL)
		fprintf(out, "identity   uid 0 gid 0 (fakeroot: uid %u gid %u; 1-%lu: subordinate "
		        "uids %lu- and gids %lu-)\n", (unsigned)plan->uid, (unsigned)plan->gid,
		        plan->subuids.count < plan->subgids.count ? plan->subuids.count :
		        plan->subgids.count, plan->subuids.start, plan->subgids.start);
	else
		fprintf(out, "identity   uid 0 gid 0 (fakeroot: uid %u gid %u, nothing else mapped)\n",
		        (unsigned)plan->uid, (unsigned)plan->gid);
	fprintf(out, "namespaces user mount (network and pid: host's)\n");
	fprintf(out, "dev        %s\n", plan->dev_mode == DEV_HOST ? "host" :
	        plan->dev_mode == DEV_NONE ? "none" : "minimal");
	for (size_t i = 0; i < plan->bind_count; i++)
		if (plan->binds[i].flags & BIND_TMPFS)
			fprintf(out, "tmpfs      %s (private, empty)\n", plan->binds[i].destination);
		else if (plan->binds[i].flags & BIND_DEVPTS)
			fprintf(out, "devpts     %s (private)\n", plan->binds[i].destination);
		else
			fprintf(out, "bind       %s -> %s%s\n", plan->binds[i].source,
			        plan->binds[i].destination,
			        plan->binds[i].flags & BIND_READONLY ? " (ro)" : "");
	fprintf(out, "identity   /etc/passwd /etc/group: %s\n",
	        plan->fakeroot ? "the image's own" : "image entries + caller");
	fprintf(out, "home       %s\n", plan->home ? plan->home : "(none)");
	fprintf(out, "cwd        %s\n", plan->cwd);
	fprintf(out, "join       %s (%s, grace %u ms)\n", plan->join_key,
	        plan->join_shared ? "shared by the job's ranks on this node" :
	        plan->grace_ms > 0 ? "reused by the same launch while warm" : "private",
	        plan->grace_ms);
	if (plan->hold)
		fprintf(out, "hold       the container made ready and kept until killed; the command "
		        "is only read ahead\n");
	fprintf(out, "server     up to %u FUSE threads, %zu MiB block cache, prefetch %s\n",
	        plan->fuse_threads, plan->fuse_cache_bytes >> 20, plan->prefetch ? "on" : "off");
	for (char **a = plan->argv; *a != NULL; a++)
		fprintf(out, "%s %s", a == plan->argv ? "command   " : "", *a);
	fputc('\n', out);
	if (plan->verbosity > 0)
		for (char **e = plan->envp; *e != NULL; e++)
			fprintf(out, "env        %s\n", *e);
}
