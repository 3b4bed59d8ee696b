#!/usr/bin/env bash
# Persistent sandboxes: exec latency of /bin/true in a running sandbox, the
# create+start+exec+stop+remove cycle, and 8 concurrent execs, against the
# closest Debian-packaged equivalent run in the same script: nsenter(1) into
# a running bubblewrap sandbox (crun exec and podman exec need cgroup setups
# this kind of host may not offer; they are used when they work).
#   bench/exec.sh [RUNS]      (default 200; needs hyperfine, bwrap, python3)
set -eu
cd "$(dirname "$0")/.."
top=$PWD
runs=${1:-200}
ak=$PWD/build/agentkernel
for tool in hyperfine bwrap nsenter python3; do
  command -v $tool >/dev/null || { echo "bench: $tool not installed" >&2; exit 125; }
done
out=$(mktemp -d)
export AGENTKERNEL_STATE_DIR=$out/state AGENTKERNEL_AUDIT=0
cleanup () { "$ak" remove --force benchbox >/dev/null 2>&1 || true; kill "$bw" 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
cd "$out"

"$ak" create benchbox --profile moderate >/dev/null
"$ak" start benchbox
bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
  --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp /bin/sleep 3600 &
bw=$!
sleep 0.5
inner=$(pgrep -n -x sleep)
nsenter_cmd="nsenter -t $inner -U -m -p -n -i -u --preserve-credentials /bin/true"
conc () { printf 'for i in 1 2 3 4 5 6 7 8; do %s & done; wait' "$1"; }

hyperfine -N --warmup 20 --runs "$runs" --export-json "$out/exec.json" \
  -n "agentkernel exec" "$ak exec benchbox -- /bin/true" \
  -n "nsenter into bwrap" "$nsenter_cmd" >/dev/null 2>&1
hyperfine --warmup 3 --runs 30 --export-json "$out/conc.json" \
  -n "8 x agentkernel exec" "$(conc "$ak exec benchbox -- /bin/true")" \
  -n "8 x nsenter into bwrap" "$(conc "$nsenter_cmd")" >/dev/null 2>&1
hyperfine --warmup 2 --runs 20 --export-json "$out/cycle.json" \
  -n "create+start+exec+stop+remove" \
  "$ak create cyc >/dev/null && $ak start cyc && $ak exec cyc -- /bin/true && $ak stop cyc && $ak remove cyc" \
  -n "bwrap run (one-shot, for scale)" "bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev /bin/true" \
  >/dev/null 2>&1

# The same exec through the library, as the HTTP API makes it (no CLI
# process start-up): build/exec-latency.
lib1=$("$top/build/exec-latency" benchbox "$runs" 1)
lib8=$("$top/build/exec-latency" benchbox "$((runs / 8 * 8))" 8)

python3 - "$out" <<'PY'
import json, sys, statistics
d = sys.argv[1]
print(f"{'benchmark':<34}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
for f in ("exec", "conc", "cycle"):
    for r in json.load(open(f"{d}/{f}.json"))["results"]:
        t = sorted(r["times"])
        p99 = t[min(len(t) - 1, int(len(t) * 0.99))]
        print(f"{r['command']:<34}{r['median']*1000:>9.2f}{p99*1000:>9.2f}{r['mean']*1000:>9.2f}")
PY
echo "library exec, 1 client:  $lib1"
echo "library exec, 8 clients: $lib8"
