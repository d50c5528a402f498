/* capsula build OUT DIR of a tree owned by the user's subordinate ids (a
 * rootless mmdebstrap's or podman's): the user cannot read all of it, and
 * its owners are those ids. Such a tree is read inside a user namespace
 * that maps the subordinate ids from 0, as the tool that made it did, so
 * that its files are readable and their owners the image's own. */
#ifndef CAPSULA_MAPPED_TREE_H
#define CAPSULA_MAPPED_TREE_H

#include "common/error.h"
#include "runtime/convert/build.h"

/* 1: built (or -1, failed) inside such a namespace; 0: not such a tree (or
 * no subordinate ids), build it as any directory. */
int mapped_tree_build(const struct build_options *opts, capsula_error *err);

#endif
