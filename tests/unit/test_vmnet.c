/* The microVM's network, QEMU's side (backend/microvm/net.c): no NIC for
 * network off; for network on one user-mode NIC on the VM's own network,
 * IPv4 only, and each published (protocol, port) forwarded once from the
 * namespace's loopback to the guest. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/microvm/microvm.h"
#include "common/util.h"

static char *
joined (char **argv)
{
  char *s = ak_xstrdup ("");
  for (char **a = argv; a && *a; a++)
    {
      char *t = ak_xasprintf ("%s%s%s", s, *s ? " " : "", *a);
      free (s);
      s = t;
    }
  return s;
}

static void
test_off_no_nic (void **state)
{
  ak_spec_t spec;
  char **argv = NULL;
  (void) state;
  ak_spec_init (&spec);
  ak_spec_set_security (&spec, AK_SEC_NETWORK, false, AK_SRC_CLI, 0);
  ak_vm_net_qemu_args (&spec, &argv);
  assert_null (argv);
  ak_spec_clear (&spec);
}

static void
test_on_nic_and_ports (void **state)
{
  ak_spec_t spec;
  char **argv = NULL, *s;
  (void) state;
  ak_spec_init (&spec);
  ak_spec_set_security (&spec, AK_SEC_NETWORK, true, AK_SRC_CLI, 0);
  assert_int_equal (ak_spec_add_port (&spec, "127.0.0.1:8080:80", NULL), 0);
  assert_int_equal (ak_spec_add_port (&spec, "127.0.0.1:8081:80", NULL), 0);
  assert_int_equal (ak_spec_add_port (&spec, "5353:53/udp", NULL), 0);
  ak_vm_net_qemu_args (&spec, &argv);
  s = joined (argv);
  assert_string_equal (s, "-netdev user,id=net0,net=10.0.3.0/24,host=10.0.3.2,dns=10.0.3.3,ipv6=off,"
                          "hostfwd=tcp:127.0.0.1:80-10.0.3.15:80,hostfwd=udp:127.0.0.1:53-10.0.3.15:53 "
                          "-device virtio-net-device,netdev=net0");
  free (s);
  ak_strv_free (argv);
  ak_spec_clear (&spec);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_off_no_nic),
    cmocka_unit_test (test_on_nic_and_ports),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
