#!/usr/bin/env bash
# The whole test suite: unit tests (also under ASan+UBSan), the TOML
# conformance suite, short fuzz passes, and the integration tests, run as
# root and, when started as root, again as an unprivileged user.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$PWD
failed=()
step () { echo; echo "######## $*"; }
run () { local name=$1; shift; "$@" || failed+=("$name"); }

step "layers (HACKING.md's placement rule)"
run layers tests/layers.sh

step "unit tests"
for t in build/tests/test_* build/asan/tests/test_*; do
  [ -x "$t" ] || continue
  run "$t" "$t"
done

step "TOML conformance (toml-test)"
run toml-test tests/toml/run-toml-test.sh build/toml-test-decoder
run toml-test-asan tests/toml/run-toml-test.sh build/asan/toml-test-decoder

if [ -x build/fuzz/fuzz_toml ]; then
  step "fuzz smoke"
  run fuzz-toml env FUZZ_SECONDS=${FUZZ_SECONDS:-20} tests/toml/fuzz-smoke.sh
fi
for target in proto spec_json imgref netpolicy; do
  [ -x build/fuzz/fuzz_$target ] || continue
  step "fuzz smoke ($target)"
  mkdir -p build/fuzz/artifacts-$target
  run fuzz-$target build/fuzz/fuzz_$target -max_total_time="${FUZZ_SECONDS:-20}" \
      -artifact_prefix=build/fuzz/artifacts-$target/
done
if [ -x build/fuzz/fuzz_mcp ]; then
  step "fuzz smoke (MCP requests)"
  mkdir -p build/fuzz/artifacts-mcp build/fuzz/corpus-mcp
  cp fuzz/corpus/mcp/* build/fuzz/corpus-mcp/
  run fuzz-mcp build/fuzz/fuzz_mcp -max_total_time="${FUZZ_SECONDS:-20}" -artifact_prefix=build/fuzz/artifacts-mcp/ \
      build/fuzz/corpus-mcp
fi

if [ -x build/fuzz/fuzz_manifest ]; then
  step "fuzz smoke (image manifests)"
  mkdir -p build/fuzz/artifacts-manifest build/fuzz/corpus-manifest
  cp fuzz/corpus/manifest/* build/fuzz/corpus-manifest/
  run fuzz-manifest build/fuzz/fuzz_manifest -max_total_time="${FUZZ_SECONDS:-20}" \
      -artifact_prefix=build/fuzz/artifacts-manifest/ build/fuzz/corpus-manifest
fi

if [ -x build/fuzz/fuzz_seccomp_profile ]; then
  step "fuzz smoke (seccomp profiles)"
  mkdir -p build/fuzz/artifacts-seccomp build/fuzz/corpus-seccomp
  cp fuzz/corpus/seccomp/* build/fuzz/corpus-seccomp/
  # libseccomp 2.5.4 loses a rule it refuses part-way (fuzz/lsan-libseccomp.supp,
  # and the corpus's socketcall-args-x86.json, which makes it do so); its
  # frames have no frame pointers, so only the full unwinder names them, at
  # a tenth of the speed.  So: crashes and undefined behaviour at full
  # speed first, then leaks over the corpus that grew, with the full
  # unwinder and that one suppression.
  run fuzz-seccomp env ASAN_OPTIONS=detect_leaks=0 build/fuzz/fuzz_seccomp_profile -detect_leaks=0 \
      -max_total_time="${FUZZ_SECONDS:-20}" -max_len=65536 -artifact_prefix=build/fuzz/artifacts-seccomp/ \
      build/fuzz/corpus-seccomp
  run fuzz-seccomp-leaks env ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=fuzz/lsan-libseccomp.supp \
      build/fuzz/fuzz_seccomp_profile -max_total_time=10 -max_len=65536 \
      -artifact_prefix=build/fuzz/artifacts-seccomp/ build/fuzz/corpus-seccomp
fi

if [ -x build/fuzz/fuzz_api ]; then
  step "fuzz smoke (HTTP API requests)"
  mkdir -p build/fuzz/artifacts-api build/fuzz/corpus-api
  cp fuzz/corpus/api/* build/fuzz/corpus-api/
  run fuzz-api build/fuzz/fuzz_api -max_total_time="${FUZZ_SECONDS:-20}" -artifact_prefix=build/fuzz/artifacts-api/ \
      build/fuzz/corpus-api
fi

# The HTTP API tests' client comes from npm.
(cd tests/api && { [ -d node_modules/agentkernel ] || npm install --no-audit --no-fund; }) || failed+=(api-npm-install)

# Integration tests run from a copy every user can read (the checkout may
# live in a private home directory).
stage=$(mktemp -d /tmp/ak-test.XXXXXX)
chmod 755 "$stage"
cp build/agentkernel build/agentkernel-core build/agentkernel-test build/agentkernel-serve build/agentkernel-guest build/probe build/vmm-probe "$stage/"
cp build/asan/agentkernel "$stage/agentkernel-asan" 2>/dev/null
cp build/asan/agentkernel-serve "$stage/agentkernel-asan-serve" 2>/dev/null
cp -r tests/integration "$stage/integration"
cp -r tests/data "$stage/data"
cp -r tests/images "$stage/images"
cp -r tests/api "$stage/api"
mkdir -p "$stage/tests" && cp build/tests/test_asciicast "$stage/tests/" 2>/dev/null
chmod -R a+rX "$stage"

host_ns=""
if [ "$(id -u)" = 0 ]; then
  step "test host (network namespace aktest-host, 10.231.0.2)"
  host_ns=aktest-host
  ip netns del $host_ns 2>/dev/null
  ip link del ak-h0 2>/dev/null
  ip netns add $host_ns
  ip link add ak-h0 type veth peer name ak-h1
  ip link set ak-h1 netns $host_ns
  ip addr add 10.231.0.1/24 dev ak-h0
  ip link set ak-h0 up
  ip -n $host_ns addr add 10.231.0.2/24 dev ak-h1
  ip -n $host_ns link set ak-h1 up
  ip -n $host_ns link set lo up
  mkdir -p "$stage/www" && echo hello >"$stage/www/index.html"
  ip netns exec $host_ns busybox httpd -f -p 10.231.0.2:8080 -h "$stage/www" &
  httpd=$!
  export AK_TEST_HOST=10.231.0.2
  sleep 0.3
  step "test hosts of the egress policy (network namespace aknp-hosts, 198.51.100.0/24)"
  "$stage/integration/nethosts.sh" up "$stage/np" && . "$stage/np/env"
fi

step "integration tests as $(id -un)"
run "integration-$(id -un)" env AK="$stage/agentkernel" PROBE="$stage/probe" "$stage/integration/run.sh"

step "integration tests (cli, profiles, persistent) with the ASan+UBSan build"
run "integration-asan" env AK="$stage/agentkernel-asan" PROBE="$stage/probe" AK_TEST_FILES="cli profiles persistent" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 "$stage/integration/run.sh"

step "MCP server (official TypeScript SDK client)"
run mcp env AK="$stage/agentkernel" tests/mcp/run.sh
run mcp-asan env AK="$stage/agentkernel-asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1 tests/mcp/run.sh

step "HTTP API (published Node.js client) as $(id -un)"
run "api-$(id -un)" env AK="$stage/agentkernel" "$stage/api/run.sh"

step "HTTP API: the curl examples of docs/api.md"
run api-docs env AK="$stage/agentkernel" tests/api/docs-test.sh docs/api.md

step "HTTP API with the ASan+UBSan build"
run "api-asan" env AK="$stage/agentkernel-asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1 "$stage/api/run.sh"

# The API and MCP checks on the microvm backend (root only: the backend
# needs it): a representative subset, all of them with AK_MICROVM_FULL=1.
# The integration files do the same from test_microvm.sh.
if [ "$(id -u)" = 0 ] && [ -x /usr/lib/qemu/virtiofsd ] && command -v qemu-system-x86_64 >/dev/null; then
  mv_api_only='^(run: output, streams and exit code|createSandbox: created and running, with its limits|execInSandbox: env, workdir, exit code|files: write and read text; binary comes back as base64 with its size|removeSandbox: gone, and its state with it|the server is still healthy, with no sandbox or worker left behind)$'
  mv_mcp_only='^(sandbox_run echo hello|sandbox_run restrictive exit 3|sandbox_create creates and starts: exec works at once, info says running|sandbox_file_write|sandbox_file_read|sandbox_remove \(a running sandbox, as agentkernel does\))$'
  [ "${AK_MICROVM_FULL:-0}" = 1 ] && mv_api_only="" && mv_mcp_only=""
  step "HTTP API on the microvm backend ($([ -n "$mv_api_only" ] && echo "a representative subset; AK_MICROVM_FULL=1 for all" || echo "all checks"))"
  run api-microvm env AK="$stage/agentkernel" AK_TEST_BACKEND=microvm AK_TEST_ONLY="$mv_api_only" "$stage/api/run.sh"
  step "MCP server on the microvm backend ($([ -n "$mv_mcp_only" ] && echo "a representative subset; AK_MICROVM_FULL=1 for all" || echo "all checks"))"
  run mcp-microvm env AK="$stage/agentkernel" AK_TEST_BACKEND=microvm AK_TEST_ONLY="$mv_mcp_only" tests/mcp/run.sh
fi

if [ "$(id -u)" = 0 ]; then
  user=${AK_TEST_USER:-aktest}
  id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
  # Debian's default; some hosts ship a root-only TAP device.
  chmod 0666 /dev/net/tun 2>/dev/null
  step "integration tests as $user"
  run "integration-$user" runuser -u "$user" -- env AK="$stage/agentkernel" PROBE="$stage/probe" \
      AK_TEST_HOST=$AK_TEST_HOST AK_NP_DIR=${AK_NP_DIR:-} AK_TEST_HOSTS=${AK_TEST_HOSTS:-} AK_EXPECT_NO_CGROUPS=${AK_TEST_USER_HAS_CGROUPS:+}${AK_TEST_USER_HAS_CGROUPS:-1} \
      HOME="/home/$user" "$stage/integration/run.sh"
  step "HTTP API as $user"
  run "api-$user" runuser -u "$user" -- env AK="$stage/agentkernel" HOME="/home/$user" "$stage/api/run.sh"
  kill "$httpd" 2>/dev/null
  "$stage/integration/nethosts.sh" down "$stage/np"
  ip netns del $host_ns 2>/dev/null
  ip link del ak-h0 2>/dev/null
fi
rm -rf "$stage"

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "ALL TESTS PASSED"
