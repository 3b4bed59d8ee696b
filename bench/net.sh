#!/usr/bin/env bash
# Network from a sandbox to a local test host (a network namespace with a
# veth, 203.0.113.2): connection set-up (200 sequential HTTP requests of a
# small file, one connection each, timed by one process inside the sandbox) and throughput
# (a 200 MB download), through the egress policy (the default), with a host
# rule in force (allowlist; a direct client and one through the policy's
# proxy), through plain NAT (slirp4netns, no policy), and, in the same
# run, directly from the host and through Debian's tinyproxy as a plain
# proxy peer.
#   bench/net.sh      (as root; needs busybox, curl, tinyproxy)
set -eu
cd "$(dirname "$0")/.."
ak=$PWD/build/agentkernel
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it creates a network namespace)" >&2; exit 125; }
for tool in busybox curl tinyproxy python3; do
  command -v $tool >/dev/null || { echo "bench: $tool not installed" >&2; exit 125; }
done
out=$(mktemp -d)
chmod 755 "$out"
export AGENTKERNEL_STATE_DIR=$out/state AGENTKERNEL_AUDIT=0
ns=akbench-net
cleanup () {
  kill $pids 2>/dev/null || true
  ip netns del $ns 2>/dev/null || true
  ip link del akb0 2>/dev/null || true
  rm -rf "$out"
}
pids=
trap cleanup EXIT
ip netns add $ns
ip link add akb0 type veth peer name akb1
ip link set akb1 netns $ns
ip addr add 203.0.113.1/24 dev akb0 && ip link set akb0 up
ip -n $ns addr add 203.0.113.2/24 dev akb1 && ip -n $ns link set akb1 up && ip -n $ns link set lo up
mkdir -p "$out/www"
echo small >"$out/www/small"
head -c 200000000 /dev/zero >"$out/www/big"
ip netns exec $ns busybox httpd -f -p 203.0.113.2:80 -h "$out/www" &
pids="$pids $!"
sleep 0.3

# Connection set-up: 200 sequential connections, each one HTTP/1.0 request
# of a small file, timed by one Python process (no process start in the
# figure); through a proxy when one is given.
cat >"$out/conn.py" <<'EOF'
import socket, sys, time
proxy = (sys.argv[1], int(sys.argv[2])) if len(sys.argv) > 2 else None
req = (b"GET http://203.0.113.2/small HTTP/1.0\r\nHost: 203.0.113.2\r\n\r\n" if proxy
       else b"GET /small HTTP/1.0\r\nHost: 203.0.113.2\r\n\r\n")
n, t0 = 200, time.perf_counter()
for _ in range(n):
    s = socket.create_connection(proxy or ("203.0.113.2", 80))
    s.sendall(req)
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    if b"small" not in data:
        sys.exit("bad response: %r" % data[:200])
print((time.perf_counter() - t0) / n * 1e6)
EOF
chmod 644 "$out/conn.py"
# $CURL_OPTS: --noproxy HOST for a direct client, empty for one that
# follows the proxy variables.
tput='curl $CURL_OPTS -s -o /dev/null -w "%{speed_download}" http://203.0.113.2/big'
printf '%-48s %18s %16s\n' "path" "ms per connection" "MB/s (200 MB)"
row () {
  printf '%-48s %18s %16s\n' "$1" "$(echo "$2" | awk '{printf "%.2f", $1/1000}')" \
    "$(echo "$3" | awk '{printf "%.0f", $1/1000000}')"
}
# run LABEL CURL_OPTS PROXY-ARGS AK-COMMAND...
run () {
  local label=$1 opts=$2 pargs=$3
  shift 3
  local c t
  c=$("$@" -v "$out/conn.py:/conn.py:ro" -- python3 /conn.py $pargs 2>/dev/null)
  t=$("$@" -e "CURL_OPTS=$opts" -- sh -c "$tput" 2>/dev/null)
  row "$label" "$c" "$t"
}
direct="--noproxy 203.0.113.2"
row "host, direct (no sandbox)" "$(python3 "$out/conn.py")" "$(CURL_OPTS=$direct sh -c "$tput")"
run "plain NAT (slirp4netns, no policy)" "$direct" "" env AK_NET_HELPER=slirp4netns "$ak" run
run "egress policy (open network)" "$direct" "" "$ak" run
run "egress policy (--allow-host IP), direct client" "$direct" "" "$ak" run --allow-host 203.0.113.2
run "egress policy (--allow-host IP), via its proxy" "" "10.0.2.3 3128" "$ak" run --allow-host 203.0.113.2
# The plain proxy peer: Debian's tinyproxy on the host, no policy, no
# sandbox (a sandbox cannot reach the host's own addresses).
cat >"$out/tinyproxy.conf" <<EOF
Port 18899
Listen 127.0.0.1
MaxClients 100
EOF
tinyproxy -d -c "$out/tinyproxy.conf" >/dev/null 2>&1 &
pids="$pids $!"
sleep 0.3
row "tinyproxy on the host (no sandbox, no policy)" \
  "$(python3 "$out/conn.py" 127.0.0.1 18899)" \
  "$(http_proxy=http://127.0.0.1:18899 CURL_OPTS= sh -c "$tput")"
