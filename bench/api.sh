#!/usr/bin/env bash
# The HTTP API under load: POST /run of /bin/true (a new sandbox each time)
# and POST /sandboxes/{name}/exec of /bin/true (a running sandbox), at 1, 8
# and 64 concurrent clients, with wrk.  Prints p50/p99 latency, requests per
# second and errors (any non-2xx answer or socket error fails the run), and,
# measured in the same run for scale, the peers: a one-shot bubblewrap
# sandbox for /run, nsenter into a running bubblewrap sandbox for exec.
#   bench/api.sh [SECONDS]   (per measurement, default 10; needs wrk, hyperfine, bwrap)
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
ak=$PWD/build/agentkernel
for tool in wrk hyperfine bwrap nsenter curl python3; do
  command -v $tool >/dev/null || { echo "bench: $tool not installed" >&2; exit 125; }
done
out=$(mktemp -d)
export AGENTKERNEL_STATE_DIR=$out/state AGENTKERNEL_AUDIT=0
port=18899
cleanup () {
  curl -s -X DELETE "http://127.0.0.1:$port/sandboxes/benchbox" >/dev/null 2>&1 || true
  kill "$srv" "$bw" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
cd "$out"
"$ak" serve --port $port --max-runs 16 2>"$out/serve.log" &
srv=$!
for _ in $(seq 50); do grep -q listening "$out/serve.log" && break; sleep 0.1; done
curl -sf -X POST "http://127.0.0.1:$port/sandboxes" -d '{"name": "benchbox"}' >/dev/null

cat >"$out/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.3f %.3f %.1f %d %d %d\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6), summary.requests,
    e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

printf '%-40s%10s%10s%10s%10s%8s\n' "benchmark" "p50 ms" "p99 ms" "req/s" "requests" "errors"
bad=0
measure () { # name path body clients
  local line
  line=$(BODY=$3 wrk -t "$(( $4 < 4 ? $4 : 4 ))" -c "$4" -d "${secs}s" --timeout 30s -s "$out/post.lua" \
    "http://127.0.0.1:$port$2" | grep '^RESULT')
  set -- "$1" $line
  printf '%-40s%10s%10s%10s%10s%8s\n' "$1" "$3" "$4" "$5" "$6" "$(( $7 + $8 ))"
  [ $(( $7 + $8 )) = 0 ] || bad=1
  last_p50=$3
}
for c in 1 8 64; do
  measure "POST /run true, $c clients" /run '{"command": ["/bin/true"]}' $c
  [ $c = 1 ] && run1=$last_p50
done
for c in 1 8 64; do
  measure "POST /sandboxes/NAME/exec true, $c clients" /sandboxes/benchbox/exec '{"command": ["/bin/true"]}' $c
  [ $c = 1 ] && exec1=$last_p50
done

# Peers, same run.
bwrap_true="bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev /bin/true"
bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
  --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp /bin/sleep 3600 &
bw=$!
sleep 0.5
inner=$(pgrep -n -x sleep)
hyperfine -N --warmup 10 --runs 100 --export-json "$out/peers.json" \
  -n "bwrap one-shot /bin/true" "$bwrap_true" \
  -n "nsenter into bwrap /bin/true" "nsenter -t $inner -U -m -p -n -i -u --preserve-credentials /bin/true" \
  >/dev/null 2>&1
python3 - "$out/peers.json" "$run1" "$exec1" <<'PY'
import json, sys
peers = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
run1, exec1 = float(sys.argv[2]), float(sys.argv[3])
for name, ms in peers.items():
    print(f"{name:<40}{ms:>10.2f}")
b, n = peers["bwrap one-shot /bin/true"], peers["nsenter into bwrap /bin/true"]
print(f"POST /run p50 (1 client) / bwrap one-shot:          {run1 / b:.2f}x")
print(f"POST exec p50 (1 client) / nsenter into bwrap:      {exec1 / n:.2f}x")
print(f"API exec p50 goal (< 3 ms): {'met' if exec1 < 3 else 'NOT met'} ({exec1:.2f} ms)")
PY
[ $bad = 0 ] || { echo "bench: some requests failed" >&2; exit 1; }
