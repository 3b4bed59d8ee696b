/* Helpers shared by the unit tests. */
#ifndef AK_TESTUTIL_H
#define AK_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

/* Removes a test's scratch directory and everything in it. */
static inline void
ak_test_rmtree (const char *dir)
{
  char *cmd = ak_xasprintf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", dir);
  free (cmd);
}

#endif
