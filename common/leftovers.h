/* Files a killed writer left: partial files whose writer held a lock on
 * them while it wrote (flock), found again by name and removed once nobody
 * holds that lock any more. */
#ifndef CAPSULA_LEFTOVERS_H
#define CAPSULA_LEFTOVERS_H

/* Remove the caller's regular files in dir_fd whose names begin with
 * prefix and hold infix (NULL: any), unless their lock is held. */
void leftovers_remove(int dir_fd, const char *prefix, const char *infix);

#endif
