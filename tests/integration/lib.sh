# Helpers for the integration tests: each test asserts what a user or an
# attacker observes, from outside (exit status, output, host state) or from
# inside the sandbox through the probe.

AK=${AK:-$PWD/build/agentkernel}
PROBE=${PROBE:-$PWD/build/probe}
# The test build, the only one that honours AK_TEST_DISABLE (Makefile).
AK_TEST_BIN=${AK_TEST_BIN:-$(dirname "$AK")/agentkernel-test}
T_PASS=0
T_FAIL=0
T_SKIP=0
T_NA=0
T_XFAIL=0
T_FAILED=()
T_CURRENT=""

# The backend the shared suites (profiles, hardening, lifecycle) run on:
# container (default) or microvm (every `run` and `create` gets
# --backend microvm through microvm-wrap.sh). A check asserts the property
# the profile promises, observed from inside, on either backend; a check of
# a container mechanism runs on the container only (container_only), with
# the VM's equivalent beside it where one exists.
AK_TEST_BACKEND=${AK_TEST_BACKEND:-container}
T_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
on_container () { [ "$AK_TEST_BACKEND" = container ]; }
on_microvm () { [ "$AK_TEST_BACKEND" = microvm ]; }
# t_backend container|microvm: switch AK and AK_TEST_BIN to that backend.
t_backend () {
  if [ "$1" = microvm ] && [ "${AK_MICROVM_REAL:-}" = "" ]; then
    export AK_MICROVM_REAL=$AK AK_MICROVM_REAL_TEST=$AK_TEST_BIN AK_MICROVM_PROBE=$PROBE
    AK=$T_LIB_DIR/microvm-wrap.sh
    AK_TEST_BIN=$T_LIB_DIR/microvm-wrap-test.sh
  elif [ "$1" = container ] && [ -n "${AK_MICROVM_REAL:-}" ]; then
    AK=$AK_MICROVM_REAL AK_TEST_BIN=$AK_MICROVM_REAL_TEST
    unset AK_MICROVM_REAL AK_MICROVM_REAL_TEST AK_MICROVM_PROBE
  fi
  AK_TEST_BACKEND=$1
  T_SLOW=1 T_TIMEOUT=
  if on_microvm; then T_SLOW=${AK_TEST_SLOW:-20} T_TIMEOUT=${AK_TEST_TIMEOUT:-180}; fi
}
# What the microVM backend needs on this machine; its tests skip with
# MICROVM_MISSING without it.
microvm_have () {
  command -v qemu-system-x86_64 >/dev/null && [ -x /usr/lib/qemu/virtiofsd ] && ls /boot/vmlinuz-* >/dev/null 2>&1
}
MICROVM_MISSING="qemu-system-x86_64, /usr/lib/qemu/virtiofsd or /boot/vmlinuz-* missing (apt-get install qemu-system-x86 linux-image-cloud-amd64)"
# For `env -i "$AK" ...`: what the backend's wrapper needs from the environment.
t_wrap_env () {
  [ -n "${AK_MICROVM_REAL:-}" ] && printf '%s ' "AK_MICROVM_REAL=$AK_MICROVM_REAL" \
    "AK_MICROVM_REAL_TEST=$AK_MICROVM_REAL_TEST" "AK_MICROVM_PROBE=$AK_MICROVM_PROBE"
}
# Waits and polls scale with the backend: a VM boots (under TCG, seconds).
T_SLOW=1
# On a VM a check's command gets a time limit (AK_TEST_TIMEOUT, seconds):
# one that hangs fails with status 124 instead of holding the suite.
# (Shell functions such as sbx are commands too, so no timeout(1).)
T_TIMEOUT=
t_tree () { local k; for k in $(ps -o pid= --ppid "$1"); do t_tree "$k"; done; echo "$1"; }
t_run () {
  [ -z "$T_TIMEOUT" ] && { "$@"; return; }
  local pid n=0 limit=$((T_TIMEOUT * 5))
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null && [ "$n" -lt "$limit" ]; do sleep 0.2; n=$((n + 1)); done
  if [ "$n" -ge "$limit" ]; then
    echo "TIMEOUT: still running after $T_TIMEOUT s (AK_TEST_TIMEOUT), killed"
    # SIGTERM first: agentkernel then ends its sandbox and removes its files.
    local tree
    tree=$(t_tree "$pid")
    kill -TERM $tree 2>/dev/null
    for n in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL $tree 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid"
}
# tries N: N polls (of 0.1 s) on the container, T_SLOW times as many on a VM.
tries () { echo $(($1 * T_SLOW)); }
# tsleep S: sleep S seconds on the container, T_SLOW times S (at most 30) on a VM.
tsleep () { if on_microvm; then sleep "$(awk -v s="$1" -v k="$T_SLOW" 'BEGIN { s *= k; print (s > 30 ? 30 : s) }')"; else sleep "$1"; fi; }

# T_ONLY (an extended regex): only the checks whose name matches run (the
# representative subset CI runs on a slow backend); the others are not run
# and not counted. Checks written as blocks start with `want NAME`.
# T_ONLY_FILE names them exactly, one a line (tests/integration/microvm-subset).
t_wanted () {
  if [ -n "${T_ONLY_FILE:-}" ]; then grep -Fxq -- "$1" "$T_ONLY_FILE"
  else [ -z "${T_ONLY:-}" ] || printf '%s\n' "$1" | grep -Eq -- "$T_ONLY"; fi
}
want () { t_wanted "$1" || return 1; t_begin "$1"; }

# Checks the microVM does not pass yet, each with its reason, are listed in
# one place: tests/integration/microvm-expected-missing (NAME-GLOB <tab>
# REASON). On the microvm backend such a check failing is reported as
# "xfail" with the reason; one that passes fails the run (XPASS) so the
# list shrinks as the engine grows.
t_missing () {
  on_microvm || return 1
  local glob reason
  while IFS=$'\t' read -r glob reason; do
    case $glob in '' | '#'*) continue ;; esac
    # shellcheck disable=SC2053
    if [[ $T_CURRENT == $glob ]]; then printf '%s' "$reason"; return 0; fi
  done <"$T_LIB_DIR/microvm-expected-missing"
  return 1
}
# container_only NAME REASON: a check of a container mechanism, not run on
# another backend: said, counted, never a pass.
container_only () {
  t_wanted "$1" || return 0
  T_NA=$((T_NA + 1)); printf '  n/a   %s: container mechanism (%s)\n' "$1" "$2"
}

# Run the probe (or anything) in a sandbox, probe mounted at /probe.
sbx () { "$AK" run -v "$PROBE:/probe:ro" "$@"; }

t_begin () { T_CURRENT=$1; }
pass () {
  local why
  if why=$(t_missing); then
    T_FAIL=$((T_FAIL + 1)); T_FAILED+=("$T_CURRENT (XPASS)")
    printf '  XPASS %s: passes on %s but is listed in microvm-expected-missing (%s): remove it from the list\n' \
      "$T_CURRENT" "$AK_TEST_BACKEND" "$why"
    return
  fi
  T_PASS=$((T_PASS + 1)); printf '  ok    %s\n' "$T_CURRENT"
}
fail () {
  local why
  if why=$(t_missing); then
    T_XFAIL=$((T_XFAIL + 1))
    printf '  xfail %s: expected missing on %s: %s\n        (%s)\n' "$T_CURRENT" "$AK_TEST_BACKEND" "$why" "$(printf %s "$*" | head -c 200)"
    return
  fi
  T_FAIL=$((T_FAIL + 1)); T_FAILED+=("$T_CURRENT")
  printf '  FAIL  %s: %s\n' "$T_CURRENT" "$*"
}
# skip: the test could not run.  With AK_MUST_WORK=1 (CI) that is a failure:
# the machine is expected to have every feature.  skip_lacks is for what
# this kind of run truly lacks (e.g. a writable cgroup for an unprivileged
# user) and never fails.
skip () {
  if [ "${AK_MUST_WORK:-0}" = 1 ]; then
    fail "skipped where it must work (AK_MUST_WORK=1): $*"
    return
  fi
  T_SKIP=$((T_SKIP + 1)); printf '  skip  %s: %s\n' "$T_CURRENT" "$*"
}
skip_lacks () { T_SKIP=$((T_SKIP + 1)); printf '  skip  %s: %s\n' "$T_CURRENT" "$*"; }

# The marker a sandboxed command prints to prove it ran: a deny test that
# does not see it fails, so a sandbox that never started cannot pass one.
MARK=ak-ran-7f3c

# attack NAME STATUS PATTERN -- CMD...: like expect, and the output must also
# hold $MARK (printed by the command inside the sandbox).
attack () {
  local name=$1 want=$2 pat=$3 out rc
  shift 4
  t_wanted "$name" || return 0
  t_begin "$name"
  out=$(t_run "$@" 2>&1)
  rc=$?
  if ! printf '%s' "$out" | grep -q -- "$MARK"; then
    fail "the sandboxed command did not run (no marker); status $rc; output: $(printf %s "$out" | head -c 400)"
  elif [ "$rc" != "$want" ]; then
    fail "exit status $rc, expected $want; output: $(printf %s "$out" | head -c 400)"
  elif [ -n "$pat" ] && ! printf '%s' "$out" | grep -Eq -- "$pat"; then
    fail "output does not match /$pat/: $(printf %s "$out" | head -c 400)"
  else
    pass
  fi
}

# expect NAME STATUS PATTERN -- CMD...: runs CMD, checks exit status and that
# stdout+stderr matches the extended regex PATTERN ("" to skip that check).
expect () {
  local name=$1 want=$2 pat=$3 out rc
  shift 4
  t_wanted "$name" || return 0
  t_begin "$name"
  out=$(t_run "$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ]; then
    fail "exit status $rc, expected $want; output: $(printf %s "$out" | head -c 400)"
  elif [ -n "$pat" ] && ! printf '%s' "$out" | grep -Eq -- "$pat"; then
    fail "output does not match /$pat/: $(printf %s "$out" | head -c 400)"
  else
    pass
  fi
}

# The egress policy tests' clients (test_netpolicy.sh, test_microvm_net.sh):
# np_clients [CURL OPTION...] prints shell functions for the sandboxed
# command: get URL [CURL OPTIONS] prints "rc=N out=BODY" for a direct
# client (no proxy: the policy intercepts it), pget the same for a
# proxy-aware one (through HTTP_PROXY/HTTPS_PROXY; -f: the proxy's refusal
# is an error).  The options given go to every request.
np_clients () {
  printf 'get () { u=$1; shift; r=$(curl -sS -m 5 --noproxy "*" %s "$@" "$u" 2>&1); echo "rc=$? out=$r"; };
pget () { u=$1; shift; r=$(curl -sS -f -m 5 %s "$@" "$u" 2>&1); echo "rc=$? out=$r"; }; ' "$*" "$*"
}
# A refusal is a reset: curl reports 7, 35, 52, 56, or 55 when the reset
# came before it asked for the peer's address; the proxy's is a 403.
DENIED='rc=(7|35|52|55|56) '
PDENIED='rc=(22|56) .*(403|refused by the sandbox)'
# audit_expect NAME PATTERN LOG [AUDIT LIST OPTION...]: `audit list --json`
# of the audit log LOG has a record matching PATTERN.
audit_expect () {
  local name=$1 pat=$2 log=$3
  shift 3
  expect "$name" 0 "$pat" -- env AGENTKERNEL_AUDIT_LOG="$log" "$AK" audit list --json "$@"
}

# refute NAME PATTERN -- CMD...: CMD's output must NOT match PATTERN.
refute () {
  local name=$1 pat=$2 out
  shift 3
  t_wanted "$name" || return 0
  t_begin "$name"
  out=$(t_run "$@" 2>&1)
  if printf '%s' "$out" | grep -Eq -- "$pat"; then
    fail "output matches /$pat/: $(printf %s "$out" | grep -E -- "$pat" | head -3)"
  else
    pass
  fi
}

is_root () { [ "$(id -u)" = 0 ]; }

summary () {
  printf '\n%s: %d passed, %d failed, %d skipped' "${1:-integration}" "$T_PASS" "$T_FAIL" "$T_SKIP"
  [ "$T_NA" -gt 0 ] && printf ', %d container-only (n/a on another backend)' "$T_NA"
  [ "$T_XFAIL" -gt 0 ] && printf ', %d expected missing on the microvm (microvm-expected-missing)' "$T_XFAIL"
  printf '\n'
  if [ "$T_FAIL" -gt 0 ]; then
    printf '  failed: %s\n' "${T_FAILED[@]}"
    return 1
  fi
  return 0
}

if on_microvm; then
  AK_TEST_BACKEND=container
  t_backend microvm
fi
