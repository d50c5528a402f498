/* --device VENDOR/CLASS=NAME: Container Device Interface devices in the
 * launch plan. The specs are the administrator's (root's files in root's
 * directories, /etc/cdi and /var/run/cdi unless the site names others); a
 * device's edits become binds of its host nodes and paths and variables of
 * the command's environment. What capsula cannot do as the user (run hooks,
 * add groups) is refused with the reason, never skipped. */
#ifndef CAPSULA_CDI_PLAN_H
#define CAPSULA_CDI_PLAN_H

#include "common/error.h"
#include "common/strvec.h"
#include "runtime/config/bindspec.h"
#include "runtime/plan/options.h"
#include "runtime/plan/plan.h"

/* Where specs are looked for when the site names no directory; the later
 * one wins where both define a device. */
#define CDI_DEFAULT_SPEC_DIRS {"/etc/cdi", "/var/run/cdi"}

/* The devices of opts->devices: their nodes and mounts onto binds, their
 * variables (NAME=VALUE) onto env. */
int plan_cdi_devices(const struct exec_options *opts, const struct host_facts *facts,
                     struct bind_list *binds, struct strvec *env, capsula_error *err);

#endif
