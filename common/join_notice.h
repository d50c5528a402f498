/* What capsula --hold --hold-notify FD sends once the job's container is
 * ready, for a process that joins it without a capsula of its own (the
 * SPANK plugin's tasks, which then exec their command in it). One
 * message on a SOCK_SEQPACKET socket, read by each task with MSG_PEEK so
 * that it stays for the next, carrying the user's holder socket directory
 * (a descriptor, SCM_RIGHTS) and these fields, each ended by a NUL:
 *
 *   JOIN_NOTICE_VERSION
 *   the holder's key (its socket's name in that directory)
 *   the directory the command starts in, inside the container
 *   the one to start in when that one is missing
 *   then, one per field, "+NAME=VALUE" for each variable the command's
 *   environment sets or changes and "-NAME" for each it drops, against
 *   the environment --hold was started with.
 *
 * No message (the socket closed) means: join the way capsula exec does. */
#ifndef CAPSULA_JOIN_NOTICE_H
#define CAPSULA_JOIN_NOTICE_H

#define JOIN_NOTICE_VERSION "capsula-join-1"
/* A larger one is not sent: the tasks run capsula exec instead. */
#define JOIN_NOTICE_MAX (128 * 1024)

#endif
