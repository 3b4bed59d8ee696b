#!/usr/bin/env bash
# Images: a cold pull+unpack of a Debian+python3 image (~50 MB) from a local
# registry against `skopeo copy` + `umoci unpack` and `podman pull`; a
# re-pull of a present image; and starting a sandbox from a present image
# against the host image and bubblewrap.  All peers in the same run, on
# the same registry (Debian's docker-registry on 127.0.0.1).  Prints
# medians (ms) and ratios.
#   bench/image.sh [RUNS]     (default 10 for pulls, 20x that for starts;
#                              as root; the image is built once with
#                              mmdebstrap and cached in ~/.cache/agentkernel-bench)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-10}
ak=$PWD/build/agentkernel
need="hyperfine bwrap docker-registry skopeo umoci podman mmdebstrap python3"
for tool in $need; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not installed (apt-get install ${tool/bwrap/bubblewrap})" >&2; exit 125; }
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root (mmdebstrap and podman's store)" >&2; exit 125; }
[ -x "$ak" ] || { echo "bench: build first (make)" >&2; exit 125; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/agentkernel-bench
mkdir -p "$cache"
out=$(mktemp -d)
reg_pid=
cleanup () { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

# The image: Debian minbase + python3, one layer, built once.
if [ ! -s "$cache/python.tar" ]; then
  echo "bench: building the Debian+python3 rootfs (once)" >&2
  mmdebstrap --quiet --variant=minbase --include=python3 --format=tar bookworm "$cache/python.tar.tmp" \
    && mv "$cache/python.tar.tmp" "$cache/python.tar"
fi
if [ ! -d "$cache/oci" ]; then
  umoci init --layout "$cache/oci.tmp"
  umoci new --image "$cache/oci.tmp:python"
  umoci raw add-layer --image "$cache/oci.tmp:python" "$cache/python.tar"
  umoci config --image "$cache/oci.tmp:python" --os linux --architecture amd64 \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.cmd python3
  mv "$cache/oci.tmp" "$cache/oci"
fi

# A registry of our own on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$out/reg.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $out/storage}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$out/reg.yml" >"$out/reg.log" 2>&1 & reg_pid=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref=127.0.0.1:$port/bench/python:latest
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$cache/oci:python" "docker://$ref"
size=$(du -sh "$cache/python.tar" | cut -f1)

st=$out/ak-state
hyperfine -N --warmup 1 --runs "$runs" --export-json "$out/pull.json" \
  --prepare "rm -rf $st $out/sk $out/umoci $out/podman $out/podman-run" \
  -n "agentkernel image pull" "env AGENTKERNEL_STATE_DIR=$st $ak image pull -q $ref" \
  -n "skopeo copy + umoci unpack" "sh -c 'skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$out/sk:x && umoci unpack --image $out/sk:x $out/umoci >/dev/null'" \
  -n "podman pull" "podman --root $out/podman --runroot $out/podman-run --storage-driver overlay pull -q --tls-verify=false $ref" \
  >/dev/null 2>&1

env AGENTKERNEL_STATE_DIR="$st" "$ak" image pull -q "$ref" >/dev/null
hyperfine -N --warmup 3 --runs $((runs * 5)) --export-json "$out/repull.json" \
  -n "agentkernel re-pull (present)" "env AGENTKERNEL_STATE_DIR=$st $ak image pull -q $ref" >/dev/null 2>&1

bwrap_cmd="bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev --tmpfs /tmp --tmpfs /home /bin/true"
hyperfine -N --warmup 10 --runs $((runs * 20)) --export-json "$out/start.json" \
  -n "bwrap" "$bwrap_cmd" \
  -n "run (host image)" "env AGENTKERNEL_STATE_DIR=$st $ak run -- /bin/true" \
  -n "run --image (present)" "env AGENTKERNEL_STATE_DIR=$st $ak run --image $ref -- /bin/true" \
  >/dev/null 2>&1

python3 - "$out" "$size" <<'PY'
import json, sys
d, size = sys.argv[1], sys.argv[2]
def load(n): return {x["command"]: x for x in json.load(open(f"{d}/{n}.json"))["results"]}
pull, repull, start = load("pull"), load("repull"), load("start")
print(f"cold pull + unpack of a Debian+python3 image ({size} uncompressed), median of each:")
ak = pull["agentkernel image pull"]["median"]
for name, x in pull.items():
    print(f"  {name:<32}{x['median']*1000:>9.0f} ms  {x['median']/ak:>5.2f}x agentkernel")
x = repull["agentkernel re-pull (present)"]
print(f"re-pull of a present image: {x['median']*1000:.1f} ms (median)")
h = start["run (host image)"]["median"]; b = start["bwrap"]["median"]
print("start a sandbox (/bin/true), median of each:")
for name, x in start.items():
    print(f"  {name:<32}{x['median']*1000:>9.2f} ms  {x['median']/h:>5.2f}x host image  {x['median']/b:>5.2f}x bwrap")
PY
