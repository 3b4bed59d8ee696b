/* What every fuzz target uses to state an invariant: a violation aborts,
 * so libFuzzer keeps the input as a crash. */
#ifndef AK_FUZZ_CHECK_H
#define AK_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static inline void
check (int cond, const char *what)
{
  if (!cond)
    {
      fprintf (stderr, "invariant violated: %s\n", what);
      abort ();
    }
}

#endif
