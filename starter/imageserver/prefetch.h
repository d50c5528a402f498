/* Warm the holder's block cache with what the first rank will exec: the
 * command found along the container's PATH, its ELF interpreter and the
 * libraries it names, or a script's interpreter; and the image's passwd and
 * group, which the holder reads first. Decompression then runs on another
 * core while the container is being built, instead of page fault by page
 * fault after exec, and each block is pushed into the kernel's page cache
 * too, so that those page faults need no round trip to the image server.
 * Best effort: anything it cannot find is skipped. */
#ifndef CAPSULA_PREFETCH_H
#define CAPSULA_PREFETCH_H

#include "common/plan.h"
#include "starter/imageserver/image_fs.h"

/* mountpoint: where ifs is mounted, as the holder sees it now. Returns
 * the running prefetch, or NULL when there is none to run. */
struct prefetch *prefetch_start(struct image_fs *ifs, const struct capsula_plan *plan,
                                const char *mountpoint);

/* Stop it and wait for it, before the process exits: it looks files up
 * through the image's mount, and a lookup left waiting on the image server
 * when the server's threads die would never end, nor would the process. */
void prefetch_stop(struct prefetch *p);

#endif
