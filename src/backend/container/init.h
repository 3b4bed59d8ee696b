#ifndef AK_CONTAINER_INIT_H
#define AK_CONTAINER_INIT_H

#include <signal.h>
#include <sys/types.h>

/* Fork argv with env, relay signals, reap orphans; returns the command's
 * wait status (or -1 when it could not be forked).  `started` is called in
 * the init once the command's pid is known. */
int ak_init_run (char **argv, char **env, const sigset_t *origmask,
                 void (*started) (pid_t pid, void *data), void *data);

#endif
