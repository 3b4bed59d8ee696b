# The egress policy, from inside sandboxes, against the test hosts of
# nethosts.sh (AK_NP_DIR; names through AK_TEST_HOSTS, which only the test
# build reads, or through the host's own resolver pointed at the test hosts
# in a mount namespace of the test).  Every deny runs the command (marker) and has its control:
# the same request allowed without the rule, or made from the host.
echo "== egress policy"

if [ -z "${AK_NP_DIR:-}" ] || [ ! -f "${AK_TEST_HOSTS:-}" ]; then
  t_begin "egress policy test hosts"
  skip "AK_NP_DIR/AK_TEST_HOSTS not set (run through tests/run-all.sh, or as root: tests/integration/nethosts.sh up DIR; . DIR/env)"
else

# np [AK OPTIONS] -- SCRIPT: runs SCRIPT under sh in a sandbox of the test
# build, with the test hosts' certificate at /cert.pem and get URL [ARGS]
# defined: it prints "rc=N out=BODY" for one curl request.
np () {
  local opts=() script
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  script=$1
  "$AK_TEST_BIN" run -v "$AK_NP_DIR/cert.pem:/cert.pem:ro" "${opts[@]}" -- sh -c \
    "$(np_clients --cacert /cert.pem) echo $MARK; $script"
}
# get, pget, DENIED, PDENIED: lib.sh (np_clients; HTTP_PROXY/HTTPS_PROXY
# are set when rules are in force).
T10=token-198.51.100.10

# -- names allowed, and only those
expect "allowed name over HTTP" 0 "rc=0 out=$T10 host=allowed.test" -- \
  np --allow-host allowed.test -- "get http://allowed.test/"
expect "allowed name over HTTPS (its SNI)" 0 "rc=0 out=$T10 host=allowed.test" -- \
  np --allow-host allowed.test -- "get https://allowed.test/"
expect "control: another name resolves without a policy" 0 "198\.51\.100\.11 +other\.test" -- \
  np -- "getent hosts other.test"
attack "another name does not resolve inside" 0 "^lookup-rc=2$" -- \
  np --allow-host allowed.test -- "getent hosts other.test; echo lookup-rc=\$?"
attack "another name is not reached" 0 "$DENIED" -- \
  np --allow-host allowed.test -- "get http://other.test/ --resolve other.test:80:198.51.100.11"

# -- proxy-aware clients: the proxy in HTTP_PROXY/HTTPS_PROXY/ALL_PROXY
expect "rules in force: the proxy variables point at the policy's proxy" 0 \
  "^http://10\.0\.2\.3:3128 http://10\.0\.2\.3:3128 http://10\.0\.2\.3:3128 http://10\.0\.2\.3:3128 localhost,127\.0\.0\.1" -- \
  np --allow-host allowed.test -- 'echo $HTTP_PROXY $https_proxy $ALL_PROXY $http_proxy $NO_PROXY'
expect "control: no rules, no proxy variables" 0 "^proxy=$" -- \
  np -- 'echo proxy=$HTTP_PROXY$HTTPS_PROXY$ALL_PROXY'
expect "proxy: an allowed name over HTTP" 0 "rc=0 out=$T10 host=allowed.test" -- \
  np --allow-host allowed.test -- "pget http://allowed.test/"
expect "proxy: an allowed name over HTTPS (CONNECT)" 0 "rc=0 out=$T10 host=allowed.test" -- \
  np --allow-host allowed.test -- "pget https://allowed.test/"
expect "proxy: a request with a body, chunked" 0 "rc=0 out=posted-198.51.100.10 host=allowed.test len=5" -- \
  np --allow-host allowed.test -- "pget http://allowed.test/p -H 'Transfer-Encoding: chunked' -d hello"
attack "proxy: another name over HTTP is refused" 0 "$PDENIED" -- \
  np --allow-host allowed.test -- "pget http://other.test/"
attack "proxy: another name over HTTPS is refused (CONNECT)" 0 "$PDENIED" -- \
  np --allow-host allowed.test -- "pget https://other.test/"
expect "control: through the proxy, without an allow list, it is reached" 0 "rc=0 out=token-198.51.100.11 host=other.test" -- \
  np --block-host unrelated.test -- "pget https://other.test/"
attack "proxy: an IP literal is refused without an IP rule" 0 "$PDENIED" -- \
  np --allow-host allowed.test -- "pget http://198.51.100.10/"
expect "control: through the proxy, an IP rule allows the literal" 0 "rc=0 out=$T10" -- \
  np --allow-host 198.51.100.10 -- "pget http://198.51.100.10/"
attack "proxy: a blocked name is refused in the open network" 0 "$PDENIED" -- \
  np --block-host other.test -- "pget http://other.test/"
expect "control: through the proxy, the same name without its block rule" 0 "rc=0 out=token-198.51.100.11 host=other.test" -- \
  np --block-host unrelated.test -- "pget http://other.test/"
attack "proxy: a TLS server name other than the CONNECT target" 0 "rc=35 " -- \
  np --allow-host allowed.test --allow-host other.test -- \
  "pget https://allowed.test/ --connect-to allowed.test:443:other.test:443"
expect "control: the CONNECT target and the server name agree" 0 "rc=0 out=$T10" -- \
  np --allow-host allowed.test --allow-host other.test -- \
  "pget https://allowed.test/ --connect-to allowed.test:443:allowed.test:443"
attack "proxy: a Host header other than the request's target" 0 "$PDENIED" -- \
  np --allow-host allowed.test --allow-host other.test -- "pget http://allowed.test/ -H 'Host: other.test'"
attack "proxy: the host's own address through the proxy" 0 "$PDENIED" -- \
  np --block-host unrelated.test -- "pget http://198.51.100.1:18765/"
expect "NO_PROXY: the sandbox's own loopback is reached directly" 0 "rc=0 out=<!DOCTYPE HTML>" -- \
  np --allow-host allowed.test -- \
  "cd /tmp && python3 -m http.server --bind 127.0.0.1 8765 >/dev/null 2>&1 & for i in 1 2 3 4 5 6 7 8 9 10; do pget http://localhost:8765/ | grep -q rc=0 && break; sleep 0.3; done; pget http://localhost:8765/"

# -- every request of a kept-alive plain-HTTP connection is checked
kadir=$(mktemp -d /tmp/aknp-ka.XXXXXX)
cat >"$kadir/ka.py" <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
out = []
for h in sys.argv[2:]:
    try:
        s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % h).encode())
        data = b""
        while b"token" not in data or not data.endswith(b"\n"):
            c = s.recv(4096)
            if not c:
                raise ConnectionError("closed")
            data += c
        out.append(data.split(b"\r\n\r\n", 1)[1].decode().strip())
    except Exception as e:
        out.append("refused:" + type(e).__name__)
print(" | ".join(out))
EOF
chmod 755 "$kadir"; chmod 644 "$kadir/ka.py"
attack "kept-alive HTTP: a second request naming another host is refused" 0 \
  "^$T10 host=allowed.test \| $T10 host=allowed.test \| refused:" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- "python3 /ka/ka.py allowed.test allowed.test allowed.test other.test"
attack "open network: a second request naming a blocked host is refused" 0 \
  "^$T10 host=allowed.test \| refused:" -- \
  np -v "$kadir:/ka:ro" --block-host other.test -- "python3 /ka/ka.py allowed.test allowed.test other.test"
expect "control: without the rules the second request reaches it" 0 \
  "^$T10 host=allowed.test \| $T10 host=other.test$" -- \
  np -v "$kadir:/ka:ro" -- "python3 /ka/ka.py allowed.test allowed.test other.test"
cat >"$kadir/seq.py" <<'EOF'
# seq.py ADDR REQ...: sends each request (\n stands for CRLF) on one
# connection, printing each response's body or how the connection ended.
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
out = []
for r in sys.argv[2:]:
    try:
        s.sendall(r.replace("\\n", "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"\n") or data.endswith(b"\r\n\r\n"):
            c = s.recv(4096)
            if not c:
                raise ConnectionError("closed")
            data += c
        out.append(data.split(b"\r\n\r\n", 1)[1].decode().strip())
    except Exception as e:
        out.append("refused:" + type(e).__name__)
print(" | ".join(out))
EOF
chmod 644 "$kadir/seq.py"
post='POST / HTTP/1.1\nHost: allowed.test\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n'
attack "kept-alive HTTP: a request after a chunked body is checked too" 0 \
  "^posted-198.51.100.10 host=allowed.test len=5 \| refused:" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/seq.py allowed.test '$post' 'GET / HTTP/1.1\nHost: other.test\n\n'"
expect "control: the same two requests without the rules" 0 \
  "^posted-198.51.100.10 host=allowed.test len=5 \| $T10 host=other.test$" -- \
  np -v "$kadir:/ka:ro" -- \
  "python3 /ka/seq.py allowed.test '$post' 'GET / HTTP/1.1\nHost: other.test\n\n'"
attack "ambiguous framing (Content-Length and chunked) is refused" 0 "^refused:" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/seq.py allowed.test 'POST / HTTP/1.1\nHost: allowed.test\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n'"
expect "control: the same body with Content-Length alone" 0 "^posted-198.51.100.10 host=allowed.test len=5$" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/seq.py allowed.test 'POST / HTTP/1.1\nHost: allowed.test\nContent-Length: 5\n\nhello'"
attack "two Host headers are refused" 0 "^refused:" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/seq.py allowed.test 'GET / HTTP/1.1\nHost: allowed.test\nHost: other.test\n\n'"
cat >"$kadir/up.py" <<'EOF'
# up.py ADDR UPGRADE REQ: a GET asking for Upgrade: UPGRADE, then REQ (\n
# stands for CRLF, \t for a tab) on the same connection; prints the first
# answer's status and what came back for REQ (or how the connection ended).
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
def more(data):
    c = s.recv(4096)
    if not c:
        raise ConnectionError("closed")
    return data + c
out = []
try:
    s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n" % (sys.argv[1], sys.argv[2])).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data = more(data)
    out.append(data.split(b" ")[1].decode())
    if out[0] != "101":
        while not data.endswith(b"\n") or data.endswith(b"\r\n\r\n"):
            data = more(data)
    s.sendall(sys.argv[3].replace("\\n", "\r\n").replace("\\t", "\t").encode())
    data = b""
    while not data.endswith(b"\n") or data.endswith(b"\r\n\r\n"):
        data = more(data)
    out.append(data.split(b"\r\n\r\n", 1)[-1].decode().strip())
except Exception as e:
    out.append("refused:" + type(e).__name__)
print(" | ".join(out))
EOF
chmod 644 "$kadir/up.py"
# An Upgrade the server answers with 200 switches nothing: what follows is
# HTTP again and still checked (a request line the check cannot read, here
# with a tab the server takes for a space, must not pass unread).
attack "an Upgrade answered 200: a later request the check cannot read is refused" 0 "^200 \| refused:" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/up.py allowed.test probe 'GET\t/ HTTP/1.1\nHost: other.test\n\n'"
expect "control: the server takes that request (from the host)" 0 "^200 \| $T10 host=other.test$" -- \
  python3 "$kadir/up.py" 198.51.100.10 probe 'GET\t/ HTTP/1.1\nHost: other.test\n\n'
attack "an Upgrade answered 200: a later request naming another host is refused" 0 "^200 \| refused:" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/up.py allowed.test probe 'GET / HTTP/1.1\nHost: other.test\n\n'"
expect "control: after it, a request naming the allowed host is served" 0 "^200 \| $T10 host=allowed.test$" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/up.py allowed.test probe 'GET / HTTP/1.1\nHost: allowed.test\n\n'"
expect "an Upgrade answered 101: the new protocol passes unread" 0 "^101 \| echo:GET.*/ not HTTP$" -- \
  np -v "$kadir:/ka:ro" --allow-host allowed.test -- \
  "python3 /ka/up.py allowed.test echo 'GET\t/ not HTTP\n'"
rm -rf "$kadir"

# -- IP literals: only an IP rule allows them
attack "an IP literal is refused without an IP rule" 0 "$DENIED" -- \
  np --allow-host allowed.test -- "get http://198.51.100.10/"
expect "control: an IP rule allows it" 0 "rc=0 out=$T10" -- \
  np --allow-host 198.51.100.10 -- "get http://198.51.100.10/"
expect "a CIDR rule allows the range" 0 "rc=0 out=token-198.51.100.11" -- \
  np --allow-host 198.51.100.0/28 -- "get http://198.51.100.11/"

# -- ports
attack "a name allowed on 443 only is refused on 80" 0 "$DENIED" -- \
  np --allow-host allowed.test:443 -- "get http://allowed.test/"
expect "control: the same name on 443" 0 "rc=0 out=$T10" -- \
  np --allow-host allowed.test:443 -- "get https://allowed.test/"

# -- identity: an allowed name cannot be pointed elsewhere, nor front another
attack "curl --resolve points an allowed name at another host's address" 0 "$DENIED" -- \
  np --allow-host allowed.test --allow-host other.test -- \
  "getent hosts other.test >/dev/null; get https://allowed.test/ --resolve allowed.test:443:198.51.100.11"
expect "control: --resolve to the name's own address" 0 "rc=0 out=$T10" -- \
  np --allow-host allowed.test -- "get https://allowed.test/ --resolve allowed.test:443:198.51.100.10"
attack "Host header fronting another name through an allowed one" 0 "$DENIED" -- \
  np --allow-host allowed.test -- "get http://allowed.test/ -H 'Host: other.test'"
attack "TLS server name of another name at an allowed name's address" 0 "$DENIED" -- \
  np --allow-host allowed.test -- "get https://other.test/ --resolve other.test:443:198.51.100.10"
attack "open network: a blocked name fronted through another one" 0 "$DENIED" -- \
  np --block-host other.test -- "get http://allowed.test/ -H 'Host: other.test'"
expect "control: the same fronting without the block rule" 0 "rc=0 out=$T10 host=other.test" -- \
  np -- "get http://allowed.test/ -H 'Host: other.test'"

# -- block wins; a wildcard never matches its apex
attack "block wins over an allow wildcard" 0 "$DENIED" -- \
  np --allow-host '*.allowed.test' --block-host blocked.allowed.test -- \
  "get http://blocked.allowed.test/ --resolve blocked.allowed.test:80:198.51.100.12"
attack "a blocked name does not resolve" 0 "^lookup-rc=2$" -- \
  np --allow-host '*.allowed.test' --block-host blocked.allowed.test -- \
  "getent hosts blocked.allowed.test; echo lookup-rc=\$?"
expect "control: the wildcard allows its other names" 0 "rc=0 out=$T10 host=www.allowed.test" -- \
  np --allow-host '*.allowed.test' --block-host blocked.allowed.test -- "get http://www.allowed.test/"
expect "a wildcard matches a name under it" 0 "rc=0 out=token-198.51.100.13" -- \
  np --allow-host '*.apex.test' -- "get https://sub.apex.test/"
attack "a wildcard does not match its apex: no lookup" 0 "^lookup-rc=2$" -- \
  np --allow-host '*.apex.test' -- "getent hosts apex.test; echo lookup-rc=\$?"
attack "a wildcard does not match its apex: no connection" 0 "$DENIED" -- \
  np --allow-host '*.apex.test' -- "get http://apex.test/ --resolve apex.test:80:198.51.100.14"
attack "open network: a blocked name is refused" 0 "$DENIED" -- \
  np --block-host other.test -- "get http://other.test/ --resolve other.test:80:198.51.100.11"
expect "control: open network: other names reached" 0 "rc=0 out=$T10" -- \
  np --block-host other.test -- "get http://allowed.test/"

# -- the host and the metadata address, in every profile, with or without rules
expect "control: the host's service answers the host" 0 "host-service-token" -- \
  curl -sS -m 5 http://198.51.100.1:18765/
for p in permissive moderate; do
  attack "$p: the host's own address is unreachable" 0 "$DENIED" -- \
    np --profile $p -- "get http://198.51.100.1:18765/"
done
attack "an IP rule does not open the host's own address" 0 "$DENIED" -- \
  np --allow-host 198.51.100.0/24 -- "get http://198.51.100.1:18765/"
expect "control: the metadata address answers the host" 0 "token-169.254.169.254" -- \
  curl -sS -m 5 http://169.254.169.254/
attack "the cloud metadata address is unreachable" 0 "$DENIED" -- \
  np -- "get http://169.254.169.254/"
attack "an IP rule does not open the metadata address" 0 "$DENIED" -- \
  np --allow-host 169.254.169.254 -- "get http://169.254.169.254/"
attack "an allowed name resolving to the host is not given out (rebinding)" 0 "^lookup-rc=2$" -- \
  np --allow-host rebind-host.test -- "getent hosts rebind-host.test; echo lookup-rc=\$?"
attack "an allowed name resolving to the host is not reached" 0 "$DENIED" -- \
  np --allow-host rebind-host.test -- \
  "get http://rebind-host.test:18765/ --resolve rebind-host.test:18765:198.51.100.1"
attack "an allowed name resolving to the metadata address is not given out" 0 "^lookup-rc=2$" -- \
  np --allow-host rebind-meta.test -- "getent hosts rebind-meta.test; echo lookup-rc=\$?"
if [ -n "${AK_TEST_HOST:-}" ]; then
  attack "allowlist: a private address needs an IP rule" 0 "$DENIED" -- \
    np --allow-host allowed.test -- "get http://$AK_TEST_HOST:8080/"
  expect "control: with an IP rule naming it" 0 "rc=0 out=hello" -- \
    np --allow-host "$AK_TEST_HOST" -- "get http://$AK_TEST_HOST:8080/"
fi

# -- UDP and DNS never leave
leak=leak-$$-$RANDOM
udp_send () { echo "/usr/bin/python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'$1', ('198.51.100.10', $2))\" 2>&1; echo sent"; }
dns_query () {
  echo "/usr/bin/python3 -c \"import socket; n=b'$1'; q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00'+b''.join(bytes([len(l)])+l for l in n.split(b'.'))+b'\\x00\\x00\\x01\\x00\\x01'; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(q, ('198.51.100.10', 53))\" 2>&1; echo sent"
}
attack "raw DNS to another server: sent from inside" 0 "sent" -- \
  np --allow-host allowed.test -- "$(dns_query "$leak-a.test"); getent hosts $leak-b.test; $(udp_send "$leak-u" 9999)"
attack "open network: raw DNS and UDP sent from inside" 0 "sent" -- \
  np -- "$(dns_query "$leak-c.test"); getent hosts $leak-d.test; $(udp_send "$leak-v" 9999)"
/usr/bin/python3 -c "
import socket; n=b'control-$leak.test'
q=b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'+b''.join(bytes([len(l)])+l for l in n.split(b'.'))+b'\x00\x00\x01\x00\x01'
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(q, ('198.51.100.10', 53)); s.sendto(b'control-$leak', ('198.51.100.10', 9999))"
sleep 0.5
expect "control: the test DNS server and UDP listener log what the host sends" 0 "control-$leak" -- \
  cat "$AK_NP_DIR/dns.log" "$AK_NP_DIR/udp.log"
refute "no DNS query from a sandbox reached the test DNS server" "$leak-[abcd]" -- cat "$AK_NP_DIR/dns.log"
refute "no UDP datagram from a sandbox reached the test host" "^$leak-[uv]" -- cat "$AK_NP_DIR/udp.log"

# -- the host's own resolver: /etc/hosts and /etc/resolv.conf of the test
# hosts bound over the host's in a mount namespace of this test only, and
# the product build (which knows nothing of AK_TEST_HOSTS): names go
# through getaddrinfo as for any program on the host, /etc/hosts first,
# then the test DNS server, which logs every query it gets.
if command -v unshare >/dev/null 2>&1 && [ -f "$AK_NP_DIR/resolver/hosts" ]; then
  # rsv CMD...: CMD with the test resolver (an unprivileged user maps
  # itself to root in a user namespace to bind, then back to itself).
  rsv () {
    local bind="mount --bind $AK_NP_DIR/resolver/hosts /etc/hosts && mount --bind $AK_NP_DIR/resolver/resolv.conf /etc/resolv.conf"
    if [ "$(id -u)" = 0 ]; then
      env -u AK_TEST_HOSTS unshare -m sh -c "$bind && exec \"\$@\"" sh "$@"
    else
      env -u AK_TEST_HOSTS unshare -rm sh -c "$bind && exec unshare --user --map-user=$(id -u) --map-group=$(id -g) -- \"\$@\"" sh "$@"
    fi
  }
  # npr: np with the product build, through the test resolver.
  npr () {
    local opts=() script
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    script=$1
    rsv "$AK" run -v "$AK_NP_DIR/cert.pem:/cert.pem:ro" "${opts[@]}" -- sh -c \
      "get () { u=\$1; shift; r=\$(curl -sS -m 5 --noproxy '*' --cacert /cert.pem \"\$@\" \"\$u\" 2>&1); echo \"rc=\$? out=\$r\"; };
       pget () { u=\$1; shift; r=\$(curl -sS -f -m 5 --cacert /cert.pem \"\$@\" \"\$u\" 2>&1); echo \"rc=\$? out=\$r\"; };
       echo $MARK; $script"
  }
  rleak=rleak-$$-$RANDOM
  expect "host resolver: the test's /etc/hosts is the host's (control)" 0 "^198\.51\.100\.10 +allowed\.test" -- \
    rsv getent hosts allowed.test
  expect "host resolver: a name from /etc/hosts, allowed, reached (direct)" 0 "rc=0 out=$T10 host=allowed.test" -- \
    npr --allow-host allowed.test -- "get https://allowed.test/"
  expect "host resolver: a name from /etc/hosts, allowed, reached (proxy)" 0 "rc=0 out=$T10 host=allowed.test" -- \
    npr --allow-host allowed.test -- "pget https://allowed.test/"
  expect "host resolver: a name only DNS knows, allowed, reached" 0 "rc=0 out=token-198.51.100.13 host=dns-only.test" -- \
    npr --allow-host dns-only.test -- "get http://dns-only.test/"
  expect "host resolver: ... and the host's resolver asked the DNS server" 0 "^dns-only\.test$" -- \
    cat "$AK_NP_DIR/dns.log"
  attack "host resolver: another name does not resolve inside" 0 "^lookup-rc=2$" -- \
    npr --allow-host allowed.test -- "getent hosts $rleak-a.test; echo lookup-rc=\$?"
  attack "host resolver: another name through the proxy is refused" 0 "$PDENIED" -- \
    npr --allow-host allowed.test -- "pget http://$rleak-b.test/"
  attack "control: without rules, the lookup is made by the host's resolver" 0 "^lookup-rc=2$" -- \
    npr -- "getent hosts $rleak-c.test; echo lookup-rc=\$?"
  expect "control: ... and reached the test DNS server" 0 "^$rleak-c\.test$" -- cat "$AK_NP_DIR/dns.log"
  refute "host resolver: no query for a refused name reached the DNS server" "^$rleak-[ab]\.test$" -- \
    cat "$AK_NP_DIR/dns.log"
  attack "host resolver: raw DNS and UDP to the DNS server's address" 0 "sent" -- \
    npr --allow-host allowed.test -- "$(dns_query "$rleak-d.test"); $(udp_send "$rleak-u" 9999)"
  sleep 0.5
  refute "host resolver: the raw query never arrived" "^$rleak-d\.test$" -- cat "$AK_NP_DIR/dns.log"
  refute "host resolver: the datagram never arrived" "^$rleak-u$" -- cat "$AK_NP_DIR/udp.log"
else
  t_begin "the host's resolver in a mount namespace"
  skip "unshare (util-linux) or the test resolver files are missing"
fi

# -- nothing inside can lift the policy
attack "root inside cannot flush the rules or reach around them" 0 "$DENIED" -- \
  np --root --allow-host allowed.test -- "nft flush ruleset 2>&1; ip route add 198.51.100.0/24 dev lo 2>&1; get http://198.51.100.11/"

# -- every decision is on record
alog=$(mktemp /tmp/aknp-audit.XXXXXX)
AGENTKERNEL_AUDIT_LOG=$alog np --keep --name aknp-audit-$$ --allow-host allowed.test -- \
  "getent hosts other.test; get http://allowed.test/; get http://198.51.100.11/; pget http://other.test/" >/dev/null 2>&1
"$AK" remove --force aknp-audit-$$ >/dev/null 2>&1
audit_expect "audit: the allowed connection, with its rule and bytes" \
  '"event":"network_connect","sandbox":"aknp-audit-[0-9]+","verdict":"allow","rule":"allow \\"allowed.test\\" \(cli\)","name":"allowed.test","address":"198.51.100.10","port":80,"bytes_out":[1-9][0-9]*,"bytes_in":[1-9]' "$alog"
audit_expect "audit list --denied: the refused connection" \
  '"event":"network_connect".*"verdict":"deny","rule":"not in the allow list".*"address":"198.51.100.11","port":80' "$alog" --denied
audit_expect "audit list --denied: the refused lookup" \
  '"event":"dns_query".*"verdict":"deny","rule":"not in the allow list","name":"other.test"' "$alog" --denied
audit_expect "audit list --denied: the request the proxy refused" \
  '"event":"network_connect".*"verdict":"deny","rule":"not in the allow list","name":"other.test","port":80' "$alog" --denied
refute "audit list --denied: nothing allowed" '"verdict":"allow"' -- \
  env AGENTKERNEL_AUDIT_LOG="$alog" "$AK" audit list --denied --json
AGENTKERNEL_AUDIT_LOG=$alog np --allow-host rebind-host.test -- "getent hosts rebind-host.test" >/dev/null 2>&1
audit_expect "audit: an allowed name that resolves only to the host is a denied lookup" \
  '"event":"dns_query".*"verdict":"deny","rule":"resolves only to addresses the sandbox may not reach","name":"rebind-host.test"' "$alog" --denied
rm -f "$alog"

# -- the HTTP API and the MCP server take the same lists (the API server
# is the product build, which resolves names with the host: IP literals only)
npapi=$(mktemp -d /tmp/aknp-api.XXXXXX)
chmod 755 "$npapi"
(cd "$npapi" && exec "$AK" serve --port 0) 2>"$npapi/log" &
nppid=$!
npport=
for _ in $(seq 50); do
  npport=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$npapi/log")
  [ -n "$npport" ] && break
  sleep 0.1
done
nppost () {
  curl -s -w ' HTTP %{http_code}' -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$npport$1"
}
npcmd="[\"sh\",\"-c\",\"echo $MARK; curl -sS -m 5 --noproxy '*' http://198.51.100.11/ 2>&1; echo rc=\$?\"]"
attack "API /run: allow_hosts refuses another address" 0 'rc=(7|52|55|56).* HTTP 200$' -- \
  nppost /run "{\"command\":$npcmd,\"allow_hosts\":[\"allowed.test\"]}"
attack "control: API /run without allow_hosts reaches it" 0 'token-198.51.100.11.* HTTP 200$' -- \
  nppost /run "{\"command\":$npcmd}"
attack "API /run: block_hosts refuses it" 0 'rc=(7|52|55|56).* HTTP 200$' -- \
  nppost /run "{\"command\":$npcmd,\"block_hosts\":[\"198.51.100.0/24\"]}"
attack "API /batch/run: allow_hosts per command" 0 'rc=(7|52|55|56).* HTTP 200$' -- \
  nppost /batch/run "{\"commands\":[{\"command\":$npcmd,\"allow_hosts\":[\"allowed.test\"]}]}"
expect "API: a malformed pattern is a 400 naming it" 0 "allow_hosts\[1\].*'a\.\.b'.* HTTP 400$" -- \
  nppost /run "{\"command\":[\"true\"],\"allow_hosts\":[\"ok.test\",\"a..b\"]}"
expect "API: host rules without network are a 400" 0 "no network.* HTTP 400$" -- \
  nppost /run "{\"command\":[\"true\"],\"profile\":\"restrictive\",\"allow_hosts\":[\"ok.test\"]}"
expect "API /sandboxes: created with its host rules" 0 "HTTP 20[01]$" -- \
  nppost /sandboxes "{\"name\":\"aknp-api-$$\",\"allow_hosts\":[\"allowed.test\"],\"block_hosts\":[\"x.test\"]}"
expect "API /sandboxes: the rules are in its spec" 0 "^\\['allowed.test'\\] \\['x.test'\\] True$" -- \
  /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["security"]["domains"]; print([p["pattern"] for p in d["allow"]], [p["pattern"] for p in d["block"]], d["allowlist_only"]["value"])' \
  "${AGENTKERNEL_STATE_DIR:-$HOME/.local/share/agentkernel}/sandboxes/aknp-api-$$/spec.json"
kill "$nppid" 2>/dev/null
"$AK_TEST_BIN" remove --force "aknp-api-$$" >/dev/null 2>&1
rm -rf "$npapi"

mcp_call () {
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}" |
    timeout 30 env AK_TEST_HOSTS="$AK_TEST_HOSTS" "$AK_TEST_BIN" mcp-server 2>/dev/null
}
attack "MCP sandbox_run: allow_hosts refuses another address" 0 'rc=(7|52|55|56)' -- \
  mcp_call sandbox_run "{\"command\":$npcmd,\"allow_hosts\":[\"allowed.test\"]}"
attack "control: MCP sandbox_run without it reaches the address" 0 'token-198.51.100.11' -- \
  mcp_call sandbox_run "{\"command\":$npcmd}"
expect "MCP sandbox_create: a malformed pattern is refused" 0 "a\.\.b" -- \
  mcp_call sandbox_create "{\"name\":\"aknp-mcp-$$\",\"allow_hosts\":[\"a..b\"]}"

# -- persistent sandboxes keep their policy; exec is subject to it
pb=aknp-$$
"$AK_TEST_BIN" remove --force "$pb" >/dev/null 2>&1
expect "create with host rules" 0 "" -- "$AK_TEST_BIN" create "$pb" --allow-host allowed.test
expect "start" 0 "" -- "$AK_TEST_BIN" start "$pb"
expect "exec: the allowed name" 0 "rc=0 out=$T10" -- \
  "$AK_TEST_BIN" exec "$pb" -- sh -c "echo $MARK; curl -sS -m 5 --noproxy '*' http://allowed.test/ 2>&1 | sed 's/^/rc=0 out=/'"
attack "exec: another address is refused" 0 "rc=(7|52|55|56)" -- \
  "$AK_TEST_BIN" exec "$pb" -- sh -c "echo $MARK; curl -sS -m 5 --noproxy '*' http://198.51.100.11/; echo rc=\$?"
attack "exec: a proxy-aware client is refused by the proxy" 0 "rc=22" -- \
  "$AK_TEST_BIN" exec "$pb" -- sh -c "echo $MARK; curl -sS -f -m 5 http://other.test/; echo rc=\$?"
"$AK_TEST_BIN" stop "$pb" >/dev/null 2>&1
"$AK_TEST_BIN" start "$pb" >/dev/null 2>&1
attack "after stop and start: still refused" 0 "rc=(7|52|55|56)" -- \
  "$AK_TEST_BIN" exec "$pb" -- sh -c "echo $MARK; curl -sS -m 5 --noproxy '*' http://198.51.100.11/; echo rc=\$?"
"$AK_TEST_BIN" remove --force "$pb" >/dev/null 2>&1

fi

# -- usage errors (no test host needed)
expect "--allow-host with --no-network is a usage error" 125 "no network" -- \
  "$AK" run --no-network --allow-host allowed.test -- true
expect "--block-host under the restrictive profile is a usage error" 125 "no network" -- \
  "$AK" run --profile restrictive --block-host x.test -- true
expect "a malformed pattern is refused, named" 125 "--allow-host: 'a\.\.b': not a host name" -- \
  "$AK" run --allow-host a..b -- true
expect "a bad port is refused" 125 "bad port" -- "$AK" create aknp-bad --allow-host x.test:0
npcfg=$(mktemp -d /tmp/aknp-cfg.XXXXXX)
printf '[security.domains]\nallow = [\n  "api.example.com",\n  "*.github.com",\n]\nblock = ["bad.github.com:1-1024"]\n' >"$npcfg/np.toml"
expect "config show: each entry with where it came from" 0 '"\*\.github\.com",  # config line 4' -- \
  "$AK" config show --config "$npcfg/np.toml" --block-host 203.0.113.0/24
expect "config show: a flag's entry" 0 '"203\.0\.113\.0/24",  # cli flag' -- \
  "$AK" config show --config "$npcfg/np.toml" --block-host 203.0.113.0/24
expect "config show: allowlist mode from the allow list" 0 'allowlist_only = true  # config line 2' -- \
  "$AK" config show --config "$npcfg/np.toml"
printf '[security.domains]\nallow = ["ok.example", "x:99999"]\n' >"$npcfg/bad.toml"
expect "a malformed pattern in a config file: file, line and entry" 125 "bad\.toml:2: \[security\.domains\] allow: entry 2: 'x:99999': bad port" -- \
  "$AK" run --config "$npcfg/bad.toml" -- true
rm -rf "$npcfg"
