/* agentkernel-guest: the init of a microVM (static; see microvm.h). */
#include "backend/microvm/microvm.h"

int
main (void)
{
  return ak_microvm_guest_main ();
}
