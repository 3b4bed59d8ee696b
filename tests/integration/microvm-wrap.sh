#!/usr/bin/env bash
# agentkernel with every new sandbox on the microvm backend: `run` and
# `create` get --backend microvm (AK_TEST_BACKEND=microvm, see lib.sh).
# Called as microvm-wrap-test.sh it wraps the test build instead.
#
# The microvm backend shares directories only, so the suites' probe volume
# (-v $PROBE:/probe:ro, a file) becomes its directory at /.ak-probe, and the
# command's /probe becomes /.ak-probe/probe: the same program, read-only.
case $0 in
  *-test.sh) real=${AK_MICROVM_REAL_TEST:?} ;;
  *) real=${AK_MICROVM_REAL:?} ;;
esac
case ${1:-} in
  run | create) ;;
  *) unset AK_MICROVM_REAL AK_MICROVM_REAL_TEST AK_MICROVM_PROBE; exec "$real" "$@" ;;
esac
sub=$1
shift
probe=${AK_MICROVM_PROBE:-}
args=()
incmd=0
while [ $# -gt 0 ]; do
  a=$1
  shift
  if [ $incmd = 0 ] && [ -n "$probe" ] && { [ "$a" = -v ] || [ "$a" = --volume ]; } && [ "${1:-}" = "$probe:/probe:ro" ]; then
    args+=(-v "$(dirname "$probe"):/.ak-probe:ro")
    shift
    continue
  fi
  if [ $incmd = 1 ] && [ -n "$probe" ]; then
    a=$(printf '%s' "$a" | perl -0pe 's{(^|[\s;&|(`])/probe(?=[\s;&|)`]|$)}{$1/.ak-probe/probe}g'; echo x)
    a=${a%x}
  fi
  [ "$a" = -- ] && incmd=1
  args+=("$a")
done
unset AK_MICROVM_REAL AK_MICROVM_REAL_TEST AK_MICROVM_PROBE
exec "$real" "$sub" --backend microvm "${args[@]}"
