/* --hold-notify: tell the process that started capsula --hold how to join
 * the ready container (common/join_notice.h). */
#ifndef CAPSULA_HOLD_NOTIFY_H
#define CAPSULA_HOLD_NOTIFY_H

#include "common/error.h"
#include "common/plan.h"

/* Send the notice on plan->hold_notify_fd, host_env being the environment
 * capsula was started with, and close it. Returns 0, or -1 with err set
 * (the socket is closed all the same, which tells the other side to join
 * the usual way). */
int hold_notify(const struct capsula_plan *plan, char **host_env, capsula_error *err);

#endif
