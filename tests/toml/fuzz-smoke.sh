#!/bin/sh
# Short fuzzing pass over the TOML parser (libFuzzer + ASan/UBSan/LSan).
# Builds nothing: run `make fuzz` first.  Seeds are the toml-test cases.
# Fails on any crash, leak, sanitizer report, invariant violation or
# timeout; the offending input is kept under build/fuzz/artifacts-toml/.
#
# usage: tests/toml/fuzz-smoke.sh [SECONDS] [extra libFuzzer flags...]
#   SECONDS defaults to $AK_FUZZ_SECONDS, else $FUZZ_SECONDS, else 20.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fuzzer=${AK_FUZZ_TOML:-$root/build/fuzz/fuzz_toml}
seconds=${AK_FUZZ_SECONDS:-${FUZZ_SECONDS:-20}}
if [ $# -gt 0 ]; then
    seconds=$1
    shift
fi
data=${AK_TOML_TEST_DIR:-$here/toml-test}

if [ ! -x "$fuzzer" ]; then
    echo "fuzz-smoke: $fuzzer not found (build it with make fuzz)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/corpus" "$work/seeds"
artifacts=$root/build/fuzz/artifacts-toml
mkdir -p "$artifacts"

n=0
find "$data/valid" "$data/invalid" -name '*.toml' | while IFS= read -r f; do
    n=$((n + 1))
    cp "$f" "$work/seeds/$n.toml"
done

# Tokens of the grammar, so mutations reach deep quickly.
cat >"$work/toml.dict" <<'DICT'
"["
"]"
"[["
"]]"
"{"
"}"
"="
","
"."
"#"
"\x0d\x0a"
"\x22\x22\x22"
"'''"
"\x5cu"
"\x5cU"
"\x5c"
"true"
"false"
"inf"
"nan"
"0x"
"0o"
"0b"
"e+"
"_"
"1979-05-27T07:32:00Z"
"1979-05-27 07:32:00.999999+07:00"
"07:32:00"
"\xef\xbb\xbf"
DICT

# The fuzzer writes new interesting inputs to the first directory only.
"$fuzzer" -max_total_time="$seconds" -timeout=10 -max_len=4096 \
    -dict="$work/toml.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$@" "$work/corpus" "$work/seeds" >"$work/log" 2>&1 || {
    tail -n 60 "$work/log"
    echo "fuzz-smoke: FAILED (artifacts in $artifacts)" >&2
    exit 1
}
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$work/log" || true
echo "fuzz-smoke: toml clean after ${seconds}s"
