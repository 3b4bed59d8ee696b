#!/usr/bin/env bash
# Integration tests of `agentkernel run`, as whichever user runs this.
#   AK=path/to/agentkernel PROBE=path/to/probe tests/integration/run.sh
# AK_TEST_HOST: address of the test host (tests/run-all.sh creates it).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$(mktemp -d)" || exit 1
echo "integration tests as $(id -un) (uid $(id -u)), agentkernel $($AK --version), backend $AK_TEST_BACKEND"
if on_microvm && ! is_root; then
  echo "AK_TEST_BACKEND=microvm: the microvm backend runs only as root" >&2
  exit 1
fi
for t in ${AK_TEST_FILES:-cli profiles hardening seccomp escapes limits lifecycle config replay persistent images agents netpolicy compat commands ports pool server_workers microvm microvm_net}; do
  . "$here/test_$t.sh"
done
summary "integration ($(id -un))"
