/* Capabilities: the sandbox keeps none.
 *
 * The init holds a full set inside its user namespace while it builds the
 * root; before anything of the user's runs, every set is emptied (bounding,
 * ambient, inheritable, permitted, effective) and the securebits are locked
 * so that even uid 0 inside, or an executable with file capabilities, can
 * never gain one back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend/container/container.h"

int
ak_caps_drop_all (ak_error_t **err)
{
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2] = { { 0 } };
  int last = CAP_LAST_CAP;
  unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP
                       | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED
                       | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;

  /* The running kernel may know more capabilities than our headers. */
  while (prctl (PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
    last++;
  if (prctl (PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
    return ak_error_set (err, errno, "set securebits");
  for (int c = 0; c <= last; c++)
    if (prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return ak_error_set (err, errno, "drop capability %d from the bounding set", c);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return ak_error_set (err, errno, "clear ambient capabilities");
  if (syscall (SYS_capset, &hdr, data) < 0)
    return ak_error_set (err, errno, "clear capabilities");
  return 0;
}
