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
T_FAILED=()
T_CURRENT=""

# Run the probe (or anything) in a sandbox, probe mounted at /probe.
sbx () { "$AK" run -v "$PROBE:/probe:ro" "$@"; }

t_begin () { T_CURRENT=$1; }
pass () { T_PASS=$((T_PASS + 1)); printf '  ok    %s\n' "$T_CURRENT"; }
fail () {
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
  t_begin "$name"
  out=$("$@" 2>&1)
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
  t_begin "$name"
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ]; then
    fail "exit status $rc, expected $want; output: $(printf %s "$out" | head -c 400)"
  elif [ -n "$pat" ] && ! printf '%s' "$out" | grep -Eq -- "$pat"; then
    fail "output does not match /$pat/: $(printf %s "$out" | head -c 400)"
  else
    pass
  fi
}

# refute NAME PATTERN -- CMD...: CMD's output must NOT match PATTERN.
refute () {
  local name=$1 pat=$2 out
  shift 3
  t_begin "$name"
  out=$("$@" 2>&1)
  if printf '%s' "$out" | grep -Eq -- "$pat"; then
    fail "output matches /$pat/: $(printf %s "$out" | grep -E -- "$pat" | head -3)"
  else
    pass
  fi
}

is_root () { [ "$(id -u)" = 0 ]; }

summary () {
  printf '\n%s: %d passed, %d failed, %d skipped\n' "${1:-integration}" "$T_PASS" "$T_FAIL" "$T_SKIP"
  if [ "$T_FAIL" -gt 0 ]; then
    printf '  failed: %s\n' "${T_FAILED[@]}"
    return 1
  fi
  return 0
}
