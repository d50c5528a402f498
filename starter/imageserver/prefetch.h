/* Warm the holder's block cache with what the first rank will exec: the
 * command found along the container's PATH, its ELF interpreter and the
 * libraries it names, or a script's interpreter. Decompression then runs on
 * another core while the container is being built, instead of page fault by
 * page fault after exec. Best effort: anything it cannot find is skipped. */
#ifndef CAPSULA_PREFETCH_H
#define CAPSULA_PREFETCH_H

#include "common/plan.h"
#include "starter/imageserver/image_fs.h"

void prefetch_start(struct image_fs *ifs, const struct capsula_plan *plan);

#endif
