#!/usr/bin/env bash
# The microVM backend: boot to first exec (`run --backend microvm -- true`),
# exec latency in a running microVM sandbox, and memory per idle VM (the
# supervisor, QEMU and virtiofsd), against the floor measured in the same
# run: QEMU booting the same kernel, same machine type and accelerator,
# with a minimal init (static busybox that resets the VM at once).  Also a
# pooled microVM run (warm pool) against an exec into a running container
# sandbox.
#   bench/microvm.sh [RUNS]   (default 10; as root; needs hyperfine, busybox-static, cpio)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-10}
ak=$PWD/build/agentkernel
for tool in hyperfine qemu-system-x86_64 cpio busybox; do
  command -v $tool >/dev/null || { echo "bench: $tool not installed" >&2; exit 125; }
done
[ "$(id -u)" = 0 ] || { echo "bench: the microvm backend runs as root" >&2; exit 125; }
kernel=${AK_MICROVM_KERNEL:-$(ls /boot/vmlinuz-*cloud* 2>/dev/null | sort -V | tail -1)}
[ -n "$kernel" ] || { echo "bench: no /boot/vmlinuz-*cloud* (apt-get install linux-image-cloud-amd64)" >&2; exit 125; }
out=$(mktemp -d)
export AGENTKERNEL_STATE_DIR=$out/state AGENTKERNEL_AUDIT=0
cleanup () { "$ak" remove --force mvbench >/dev/null 2>&1 || true; rm -rf "$out"; }
trap cleanup EXIT
accel=tcg
[ -w /dev/kvm ] && [ "${AK_MICROVM_ACCEL:-}" != tcg ] && accel=kvm

# The floor: the same kernel and QEMU flags, an init that resets at once.
mkdir -p "$out/floor/bin" "$out/floor/dev"
cp "$(command -v busybox)" "$out/floor/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox reboot -f\n' >"$out/floor/init"
chmod 755 "$out/floor/init"
(cd "$out/floor" && find . | cpio -o -H newc --quiet -R 0:0) >"$out/floor.cpio"
floor="qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot -M microvm -accel $accel -m 512 -smp 1
  -kernel $kernel -initrd $out/floor.cpio -serial null
  -append 'console=ttyS0 loglevel=1 cryptomgr.notests random.trust_cpu=on audit=0 panic=-1 reboot=t tsc_early_khz=2100000 nokaslr rdinit=/init'"

cd "$out"
"$ak" run --backend microvm --no-network -- true >/dev/null 2>&1 # builds the cached initramfs
hyperfine -N --warmup 1 --runs "$runs" --export-json "$out/boot.json" \
  -n "floor: QEMU microvm, same kernel, init resets at once" "$floor" \
  -n "agentkernel run --backend microvm -- true (boot to first exec)" \
  "$ak run --backend microvm --no-network -- true" >/dev/null 2>&1

"$ak" create mvbench --backend microvm --no-network >/dev/null
"$ak" start mvbench 2>/dev/null
hyperfine -N --warmup 3 --runs $((runs * 5)) --export-json "$out/exec.json" \
  -n "agentkernel exec (microvm) -- true" "$ak exec mvbench -- true" >/dev/null 2>&1
sleep 2
sup=$(grep -o '"supervisor_pid": *[0-9]*' "$AGENTKERNEL_STATE_DIR/sandboxes/mvbench/state.json" | grep -o '[0-9]*$')
pids="$sup $(pgrep -P "$sup" | tr '\n' ' ')"
pss=0
for p in $pids; do
  v=$(awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
  pss=$((pss + v))
done
"$ak" stop mvbench >/dev/null 2>&1

# Pooled microVM runs (warm pool, docs/pool.md) against an exec into a
# running container sandbox, in the same run.  A pool daemon of its own
# keeps booted VMs; --prepare (not timed) waits until the pool is full
# again, so each run is the hot path: claim, workspace attached, one command.
printf '[security]\nmount_cwd = true\nnetwork = false\n[daemon]\npool_size = 2\nshapes = [{ profile = "moderate", network = false, backend = "microvm" }]\n' \
  >"$out/pool.toml"
pstate=$out/pool-state
AGENTKERNEL_STATE_DIR=$pstate "$ak" daemon start --config "$out/pool.toml" >/dev/null
trap 'AGENTKERNEL_STATE_DIR=$pstate "$ak" daemon stop >/dev/null 2>&1; cleanup' EXIT
full=$out/full.sh
printf '#!/bin/sh\nfor i in $(seq 1200); do\n  AGENTKERNEL_STATE_DIR=%s %s daemon status --json | grep -q %s && exit 0\n  sleep 0.25\ndone\nexit 1\n' \
  "$pstate" "$ak" "'\"idle\": 2'" >"$full"
chmod 755 "$full"
"$full"
# The workspace: a directory of its own (one holding agentkernel's state is
# never pooled).
mkdir "$out/ws"
(cd "$out/ws" && hyperfine -N --runs "$runs" --prepare "$full" --export-json "$out/pool.json" \
  -n "pooled agentkernel run --backend microvm -- true" \
  "env AGENTKERNEL_STATE_DIR=$pstate $ak run --config $out/pool.toml --backend microvm --no-network -- true" >/dev/null 2>&1)
AGENTKERNEL_STATE_DIR=$pstate "$ak" daemon status | sed -n 2p
"$ak" create ctbench --backend container --no-network >/dev/null
"$ak" start ctbench 2>/dev/null
hyperfine -N --warmup 3 --runs $((runs * 5)) --export-json "$out/ctexec.json" \
  -n "agentkernel exec (container) -- true" "$ak exec ctbench -- true" >/dev/null 2>&1
"$ak" remove --force ctbench >/dev/null 2>&1

echo "accelerator: $accel; kernel: $kernel; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for f in boot exec pool ctexec; do
  python3 - "$out/$f.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command'][:70]:70s} median {r['median']*1000:8.1f} ms  mean {r['mean']*1000:8.1f} ms  min {r['min']*1000:8.1f} ms")
EOF
done
python3 - "$out/pool.json" "$out/ctexec.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["results"][0]["median"]
c = json.load(open(sys.argv[2]))["results"][0]["median"]
print(f"pooled microVM run / container exec (medians): {p / c:.1f}x")
EOF
echo "idle microVM sandbox (memory 512 MiB by default): PSS of supervisor + QEMU + virtiofsd = $((pss / 1024)) MiB"
