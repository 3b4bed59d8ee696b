#!/usr/bin/env bash
# agentkernel with every new sandbox on the microvm backend: `run` and
# `create` get --backend microvm (AK_MICROVM_FULL=1 in test_microvm.sh).
real=${AK_MICROVM_REAL:?}
case ${1:-} in
  run | create) sub=$1; shift; exec "$real" "$sub" --backend microvm "$@" ;;
  *) exec "$real" "$@" ;;
esac
