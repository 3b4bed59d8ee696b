#!/usr/bin/env bash
# Test hosts for the egress policy tests (test_netpolicy.sh), as root:
#   nethosts.sh up DIR     creates them, writes DIR/env (source it)
#   nethosts.sh down DIR   removes them
# A network namespace aknp-hosts joined to the host by a veth pair: the
# host side is 198.51.100.1 (TEST-NET-2, never routed on the internet: a
# host address the sandbox must not reach), the far side carries the test
# hosts 198.51.100.10-14 and 169.254.169.254.  Each host serves HTTP on 80
# and HTTPS on 443 (one self-signed certificate for every test name),
# answering "token-<address> host=<Host header>".  On 198.51.100.10, a DNS
# server that logs every query it receives (DIR/dns.log) and a UDP
# listener that logs every datagram (DIR/udp.log); the DNS server answers
# dns-only.test (198.51.100.13) and nothing else.  On the host itself, an
# HTTP server on 0.0.0.0:18765.  Names resolve through DIR/hosts, which
# the test build of agentkernel reads instead of the host's resolver
# (AK_TEST_HOSTS), and, for the tests of the host's own resolver, through
# DIR/resolver/hosts and DIR/resolver/resolv.conf (the test DNS server),
# which the tests bind over /etc/hosts and /etc/resolv.conf in a mount
# namespace of their own: no query ever leaves the machine.
set -u
cmd=$1 dir=$2
ns=aknp-hosts
case $cmd in
down)
  [ -f "$dir/pids" ] && kill $(cat "$dir/pids") 2>/dev/null
  ip netns del $ns 2>/dev/null
  ip link del aknp0 2>/dev/null
  ip route del 169.254.169.254/32 2>/dev/null
  exit 0 ;;
up) ;;
*) echo "usage: $0 up|down DIR" >&2; exit 2 ;;
esac

mkdir -p "$dir" && chmod 755 "$dir"
"$0" down "$dir"
ip netns add $ns || exit 1
ip link add aknp0 type veth peer name aknp1 || exit 1
ip link set aknp1 netns $ns
ip addr add 198.51.100.1/24 dev aknp0
ip link set aknp0 up
for a in 10 11 12 13 14; do ip -n $ns addr add 198.51.100.$a/24 dev aknp1; done
ip -n $ns addr add 169.254.169.254/32 dev aknp1
ip -n $ns link set aknp1 up
ip -n $ns link set lo up
ip -n $ns route add default via 198.51.100.1
ip route add 169.254.169.254/32 via 198.51.100.10

cat >"$dir/hosts" <<'EOF'
198.51.100.10 allowed.test www.allowed.test
198.51.100.11 other.test
198.51.100.12 blocked.allowed.test
198.51.100.13 sub.apex.test
198.51.100.14 apex.test
198.51.100.1 rebind-host.test
169.254.169.254 rebind-meta.test
EOF
mkdir -p "$dir/resolver"
{ echo "127.0.0.1 localhost"; cat "$dir/hosts"; } >"$dir/resolver/hosts"
printf 'nameserver 198.51.100.10\noptions timeout:1 attempts:1\n' >"$dir/resolver/resolv.conf"
chmod 755 "$dir/resolver"; chmod 644 "$dir/resolver"/*
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=allowed.test \
  -addext "subjectAltName=DNS:allowed.test,DNS:www.allowed.test,DNS:other.test,DNS:blocked.allowed.test,DNS:sub.apex.test,DNS:apex.test,DNS:dns-only.test" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || exit 1
: >"$dir/dns.log"; : >"$dir/udp.log"
chmod 644 "$dir"/*; chmod 755 "$dir/resolver"

cat >"$dir/servers.py" <<'EOF'
import socket, ssl, sys, threading, http.server, socketserver
d = sys.argv[1]
addrs = ["198.51.100.%d" % a for a in (10, 11, 12, 13, 14)] + ["169.254.169.254"]

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    break
                data += self.rfile.read(size); self.rfile.readline()
        body = ("posted-%s host=%s len=%d\n" % (self.server.server_address[0], self.headers.get("Host"), len(data))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "echo":
            # Upgrade: echo is honoured (101), then every line comes back
            # as "echo:LINE"; any other Upgrade is answered as a plain GET.
            self.send_response(101); self.send_header("Upgrade", "echo")
            self.send_header("Connection", "Upgrade"); self.end_headers()
            while True:
                l = self.rfile.readline()
                if not l: break
                self.wfile.write(b"echo:" + l); self.wfile.flush()
            self.close_connection = True
            return
        body = ("token-%s host=%s\n" % (self.server.server_address[0], self.headers.get("Host"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def server_bind(self):
        # no reverse lookup of the address (there is no DNS here)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/cert.pem", d + "/key.pem")
for a in addrs:
    s = S((a, 80), H); threading.Thread(target=s.serve_forever, daemon=True).start()
    t = S((a, 443), H); t.socket = ctx.wrap_socket(t.socket, server_side=True)
    threading.Thread(target=t.serve_forever, daemon=True).start()

# Answers A queries for the names only it knows; NXDOMAIN for the rest.
dns_names = {"dns-only.test": "198.51.100.13"}
def dns():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.51.100.10", 53))
    while True:
        q, peer = u.recvfrom(2048)
        i, labels = 12, []
        while i < len(q) and q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace")); i += 1 + q[i]
        name = ".".join(labels)
        with open(d + "/dns.log", "a") as f: f.write(name + "\n")
        if len(q) < i + 5:
            continue
        question = q[12:i + 5]
        if name.lower() in dns_names and q[i + 1:i + 3] == b"\x00\x01":
            r = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + \
                b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04" + socket.inet_aton(dns_names[name.lower()])
        else:
            r = q[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question
        u.sendto(r, peer)
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.51.100.10", 9999))
    while True:
        m, peer = u.recvfrom(2048)
        with open(d + "/udp.log", "a") as f: f.write(m.decode("ascii", "replace") + "\n")
threading.Thread(target=dns, daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
threading.Event().wait()
EOF
ip netns exec $ns /usr/bin/python3 "$dir/servers.py" "$dir" >"$dir/servers.log" 2>&1 &
echo $! >"$dir/pids"
mkdir -p "$dir/www" && echo "host-service-token" >"$dir/www/index.html"
(cd "$dir/www" && exec /usr/bin/python3 -m http.server --bind 0.0.0.0 18765) >/dev/null 2>&1 &
echo $! >>"$dir/pids"
for _ in $(seq 50); do
  curl -s -m 1 http://198.51.100.10/ >/dev/null && curl -s -m 1 http://127.0.0.1:18765/ >/dev/null && break
  sleep 0.1
done
cat >"$dir/env" <<EOF
export AK_NP_DIR=$dir
export AK_TEST_HOSTS=$dir/hosts
EOF
chmod 644 "$dir/env" "$dir/pids"
