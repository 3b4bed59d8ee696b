#ifndef AK_CONTAINER_INIT_H
#define AK_CONTAINER_INIT_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Fork argv with env, relay signals, reap orphans; returns the command's
 * wait status (or -1 when it could not be forked).  `started` is called in
 * the init once the command's pid is known. */
int ak_init_run (char **argv, char **env, const sigset_t *origmask,
                 void (*started) (pid_t pid, void *data), void *data);
/* The same for a command not known yet (warm pool): the process is forked
 * at once and waits in prepare (in the child), which fills in argv and env
 * from its claim, or returns -1 (it reported why) and the process exits
 * 125 without running anything.  `forked` is called in the init with the
 * process's pid. */
int ak_init_run_armed (int (*prepare) (void *data, char ***argv, char ***env), const sigset_t *origmask,
                       void (*forked) (pid_t pid, void *data), void *data);

/* Closes every descriptor from 3 up except the n in keep: the sandbox init
 * starts with whatever its caller held, and none of it is the sandbox's. */
int ak_init_close_fds_except (const int *keep, size_t n);

#endif
