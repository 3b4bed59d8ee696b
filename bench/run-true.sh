#!/usr/bin/env bash
# Start-up cost of a sandbox: `agentkernel run -- /bin/true` for each profile
# against bare /bin/true and bubblewrap with a comparable filesystem, in one
# run on one machine.  Prints medians (ms) and ratios to bubblewrap.
#   bench/run-true.sh [RUNS]      (default 200; needs hyperfine and bwrap)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-200}
ak=$PWD/build/agentkernel
for tool in hyperfine bwrap; do
  command -v $tool >/dev/null || { echo "bench: $tool not installed (apt-get install ${tool/bwrap/bubblewrap})" >&2; exit 125; }
done
[ -x "$ak" ] || { echo "bench: build first (make)" >&2; exit 125; }
out=$(mktemp -d)
chmod 755 "$out"
trap 'rm -rf "$out"' EXIT
cd "$out"

# bubblewrap with the same shape of root: read-only /usr and its merged-/usr
# links, /etc files, fresh /proc, minimal /dev, private /tmp, all namespaces.
bwrap_cmd="bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --ro-bind /etc/ld.so.cache /etc/ld.so.cache --ro-bind /etc/alternatives /etc/alternatives --proc /proc --dev /dev --tmpfs /tmp --tmpfs /home /bin/true"

# Pooled runs: a pool daemon of its own (own state directory) keeps idle
# sandboxes of the shapes measured; each run claims one.  hyperfine's
# --prepare (not timed) waits until the pool is full again (every shape
# at pool_size idle: the daemon builds a replacement once the claimed
# command has ended), so every run measures the hot path, claim plus
# exec, not the building of its replacement.
export AGENTKERNEL_STATE_DIR=$out/state
printf '[daemon]\npool_size = 4\nshapes = [{ profile = "restrictive" }, { profile = "moderate", network = false }]\n' >"$out/pool.toml"
"$ak" daemon start --config "$out/pool.toml" >/dev/null
trap 'AGENTKERNEL_STATE_DIR="$out/state" "$ak" daemon stop >/dev/null 2>&1; rm -rf "$out"' EXIT
# Every shape at pool_size idle, and both fronts idle (docs/pool.md).
cat >"$out/refilled.sh" <<EOF
#!/bin/sh
for i in \$(seq 500); do
  st=\$("$ak" daemon status --json)
  [ "\$(echo "\$st" | grep -c '"idle": 4,')" = 2 ] && echo "\$st" | grep -q '"fronts_idle": 2,' && exit 0
  sleep 0.01
done
EOF
chmod +x "$out/refilled.sh"
refilled=$out/refilled.sh
sleep 2
# bwrap and bare /bin/true again in the same invocation: on a shared
# machine the load changes between invocations, and a ratio is only
# meaningful within one.
hyperfine -N --warmup 5 --runs "$runs" --export-json "$out/p.json" --prepare "$refilled" \
  -n "pooled restrictive" "$ak run --config $out/pool.toml --profile restrictive -- /bin/true" \
  -n "pooled moderate --no-network" "$ak run --config $out/pool.toml --profile moderate --no-network -- /bin/true" \
  -n "pooled restrictive, no launcher" "$ak-core run --config $out/pool.toml --profile restrictive -- /bin/true" \
  -n "bwrap (pooled batch)" "$bwrap_cmd" -n "bare (pooled batch)" /bin/true >/dev/null 2>&1
"$ak" daemon status | sed -n 2,3p
unset AGENTKERNEL_STATE_DIR

hyperfine -N --warmup 20 --runs "$runs" --export-json "$out/r.json" \
  -n bare /bin/true \
  -n bwrap "$bwrap_cmd" \
  -n restrictive "$ak run --profile restrictive -- /bin/true" \
  -n moderate "$ak run --profile moderate -- /bin/true" \
  -n "moderate --no-network" "$ak run --profile moderate --no-network -- /bin/true" \
  -n permissive "$ak run --profile permissive -- /bin/true" >/dev/null 2>&1

python3 - "$out/r.json" "$out/p.json" <<'PY'
import json, sys
print(f"{'command':<30}{'median ms':>10}{'mean ms':>10}{'vs bwrap':>10}")
for f in sys.argv[1:]:
    r = {x["command"]: x for x in json.load(open(f))["results"]}
    b = [x for n, x in r.items() if n.startswith("bwrap")][0]["median"]
    for name, x in r.items():
        print(f"{name:<30}{x['median']*1000:>10.2f}{x['mean']*1000:>10.2f}{x['median']/b:>9.2f}x")
PY
