/* Scope-bound ownership helpers.
 *
 * A variable declared with one of these attributes owns its resource: it is
 * released when the variable goes out of scope.  To hand ownership to someone
 * else, use steal_pointer()/take_fd(), which return the value and reset the
 * variable so nothing is released twice.
 */
#ifndef AK_CLEANUP_H
#define AK_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
ak_freep (void *p)
{
  free (*(void **) p);
}

/* Closes *fd if open and marks it closed (-1), so calling it twice, or
 * explicitly before scope exit, is safe. */
static inline void
ak_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
      *fd = -1;
    }
}

static inline void
ak_fclosep (FILE **f)
{
  if (*f != NULL)
    fclose (*f);
}

/* NULL-terminated vector of heap strings. */
static inline void
ak_strvfreep (char ***v)
{
  if (*v == NULL)
    return;
  for (char **p = *v; *p != NULL; p++)
    free (*p);
  free (*v);
}

#define _cleanup_(f) __attribute__ ((cleanup (f)))
#define _cleanup_free_ _cleanup_ (ak_freep)
#define _cleanup_close_ _cleanup_ (ak_closep)
#define _cleanup_fclose_ _cleanup_ (ak_fclosep)
#define _cleanup_strv_ _cleanup_ (ak_strvfreep)

static inline void *
ak_steal_pointer (void *pp)
{
  void **p = (void **) pp;
  void *v = *p;
  *p = NULL;
  return v;
}
#define steal_pointer(pp) ((__typeof__ (*(pp))) ak_steal_pointer (pp))

static inline int
take_fd (int *fd)
{
  int v = *fd;
  *fd = -1;
  return v;
}

#endif
