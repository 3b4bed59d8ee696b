# Published ports (-P/--publish, create -p, [network] ports), from the
# host's side: a server inside the sandbox is reached through the published
# port and through nothing else.
echo "== published ports"

# A free TCP port on the host.
pt_free () { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pt_tok=pub-$$-$RANDOM
# The command of a sandbox serving $pt_tok over HTTP on 127.0.0.1:8000 and
# 0.0.0.0:8001 inside for at most 30 s.
pt_serve="echo $MARK; d=\$(mktemp -d) && cd \"\$d\" && echo $pt_tok >index.html && (timeout 30 python3 -m http.server --bind 0.0.0.0 8001 >/dev/null 2>&1 &) && exec timeout 30 python3 -m http.server --bind 127.0.0.1 8000 >/dev/null 2>&1"
# pt_get URL: the body, once the server answers (at most ~10 s).
pt_get () {
  local i out
  for i in $(seq 50); do
    out=$(curl -sS -m 2 "$1" 2>&1) && { echo "$out"; return 0; }
    sleep 0.2
  done
  echo "$out"; return 1
}
pt_stop () { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

hp=$(pt_free)
pt_out=$(mktemp /tmp/akpt.XXXXXX)
"$AK" run -P "$hp:8000" -- sh -c "$pt_serve" >"$pt_out" 2>&1 &
pt_pid=$!
expect "run -P: the sandbox's server is reached through the published port" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
attack "the sandbox ran (marker)" 0 "" -- cat "$pt_out"
expect "only the named port: the sandbox's other port is not on the host" 7 "" -- \
  curl -sS -m 3 -o /dev/null http://127.0.0.1:8001/
pt_stop "$pt_pid"
expect "the published port is closed with the sandbox" 7 "" -- curl -sS -m 3 -o /dev/null "http://127.0.0.1:$hp/"

# The bind address: 127.0.0.1 by default, never another address of the host.
pt_addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
if [ -n "$pt_addr" ]; then
  hp=$(pt_free)
  "$AK" run --publish "$hp:8000" -- sh -c "$pt_serve" >/dev/null 2>&1 &
  pt_pid=$!
  expect "control: reached on 127.0.0.1" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
  expect "default bind address: not reached on the host's $pt_addr" 7 "" -- \
    curl -sS -m 3 -o /dev/null "http://$pt_addr:$hp/"
  pt_stop "$pt_pid"
  hp=$(pt_free)
  "$AK" run --publish "$pt_addr:$hp:8000" -- sh -c "$pt_serve" >/dev/null 2>&1 &
  pt_pid=$!
  expect "ADDR:HOSTPORT:PORT: reached on that address" 0 "^$pt_tok$" -- pt_get "http://$pt_addr:$hp/"
  expect "ADDR:HOSTPORT:PORT: not on 127.0.0.1" 7 "" -- curl -sS -m 3 -o /dev/null "http://127.0.0.1:$hp/"
  pt_stop "$pt_pid"
else
  t_begin "bind address"
  skip_lacks "the host has no global IPv4 address"
fi

# UDP
hp=$(pt_free)
"$AK" run -P "$hp:9000/udp" -- sh -c "echo $MARK; exec timeout 30 python3 -c \"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 9000))
while True:
    m, a = s.recvfrom(100); s.sendto(b'echo-' + m, a)\"" >/dev/null 2>&1 &
pt_pid=$!
expect "/udp: a datagram is answered through the published port" 0 "^echo-ping$" -- /usr/bin/python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
for _ in range(40):
    s.sendto(b'ping', ('127.0.0.1', $hp))
    try:
        print(s.recvfrom(100)[0].decode()); break
    except socket.timeout:
        pass"
pt_stop "$pt_pid"

# Refused where there is no network, and for a port in use.
expect "--publish with --no-network is refused" 125 "no network" -- "$AK" run --no-network -P 18080:80 -- true
expect "--publish under the restrictive profile is refused" 125 "no network" -- \
  "$AK" run --profile restrictive -P 18080:80 -- true
expect "run -p HOST:PORT (run's -p is --profile) says to use -P" 125 "to publish a port: -P/--publish 8080:80" -- \
  "$AK" run -p 8080:80 -- true
expect "a malformed port is refused, named" 125 "publish '80': expected" -- "$AK" run -P 80 -- true
expect "a bad port number is refused" 125 "bad host port '70000'" -- "$AK" run -P 70000:80 -- true
expect "the same host port twice is refused" 125 "published twice" -- "$AK" run -P 18080:80 -P 18080:81 -- true
hp=$(pt_free)
/usr/bin/python3 -c "import socket, time; s=socket.socket(); s.bind(('127.0.0.1', $hp)); s.listen(); time.sleep(20)" &
pt_busy=$!
sleep 0.5
expect "a host port in use is one clear error" 125 "host port $hp/tcp is already in use on the host" -- \
  "$AK" run -P "$hp:8000" -- sh -c "echo $MARK"
refute "... and the command did not run" "$MARK" -- "$AK" run -P "$hp:8000" -- sh -c "echo $MARK"
pt_stop "$pt_busy"

# create -p, persistent sandboxes re-establish the forward at each start
pn=akpt-$$
"$AK" remove --force "$pn" >/dev/null 2>&1
hp=$(pt_free)
expect "create -p HOSTPORT:PORT" 0 "" -- "$AK" create "$pn" -p "$hp:8000"
expect "start" 0 "" -- "$AK" start "$pn"
"$AK" exec --detach "$pn" -- sh -c "$pt_serve" >/dev/null 2>&1
expect "create -p: reached through the published port" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
"$AK" stop "$pn" >/dev/null 2>&1
expect "stopped: the port is closed" 7 "" -- curl -sS -m 3 -o /dev/null "http://127.0.0.1:$hp/"
"$AK" start "$pn" >/dev/null 2>&1
"$AK" exec --detach "$pn" -- sh -c "$pt_serve" >/dev/null 2>&1
expect "started again: the forward is back" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
"$AK" remove --force "$pn" >/dev/null 2>&1
expect "create -p with a profile's name: taken as the profile, with a warning" 0 \
  "create -p now publishes a port.*--profile permissive" -- "$AK" create "$pn" -p permissive
expect "... the sandbox has that profile" 0 "^permissive$" -- \
  /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["security"]["profile"]["value"])' \
  "${AGENTKERNEL_STATE_DIR:-$HOME/.local/share/agentkernel}/sandboxes/$pn/spec.json"
"$AK" remove --force "$pn" >/dev/null 2>&1
expect "create -p under the restrictive profile is refused" 125 "no network" -- \
  "$AK" create "$pn" --profile restrictive -p 18080:80

# [network] ports in a config file; unknown keys are a warning
ptcfg=$(mktemp -d /tmp/akpt-cfg.XXXXXX)
hp=$(pt_free)
printf '[network]\nports = ["%s:8000"]\nport = 1\n' "$hp" >"$ptcfg/p.toml"
chmod 755 "$ptcfg"; chmod 644 "$ptcfg/p.toml"
"$AK" run --config "$ptcfg/p.toml" -- sh -c "$pt_serve" >"$pt_out" 2>&1 &
pt_pid=$!
expect "[network] ports: reached through the port" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
pt_stop "$pt_pid"
expect "[network]: an unknown key is a warning naming it" 0 "p.toml:3: unknown key 'port' in \[network\] \(did you mean 'ports'\?\)" -- \
  cat "$pt_out"
printf '[network]\nports = ["8080"]\n' >"$ptcfg/bad.toml"
expect "[network] ports: a malformed entry is an error naming file and line" 125 "bad.toml:2: \[network\] ports: publish '8080'" -- \
  "$AK" run --config "$ptcfg/bad.toml" -- true
rm -rf "$ptcfg" "$pt_out"

# The user-mode NAT fallbacks forward the same way.
for h in slirp4netns pasta; do
  command -v $h >/dev/null 2>&1 || { t_begin "$h: published port"; skip_lacks "$h is not installed"; continue; }
  hp=$(pt_free)
  AK_NET_HELPER=$h "$AK" run -P "$hp:8000" -- sh -c "$pt_serve" >/dev/null 2>&1 &
  pt_pid=$!
  expect "$h: reached through the published port" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
  pt_stop "$pt_pid"
done

# The HTTP API's and the MCP server's "ports"
ptapi=$(mktemp -d /tmp/akpt-api.XXXXXX)
chmod 755 "$ptapi"
(cd "$ptapi" && exec "$AK" serve --port 0) 2>"$ptapi/log" &
ptsrv=$!
ptport=
for _ in $(seq 50); do
  ptport=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$ptapi/log")
  [ -n "$ptport" ] && break
  sleep 0.1
done
ptpost () { curl -s -w ' HTTP %{http_code}' -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$ptport$1"; }
hp=$(pt_free)
ptcmd=$(/usr/bin/python3 -c 'import json, sys; print(json.dumps(["sh", "-c", sys.argv[1]]))' "$pt_serve")
ptpost /run "{\"command\":$ptcmd,\"ports\":[\"$hp:8000\"]}" >/dev/null 2>&1 &
pt_pid=$!
expect "API /run: ports publishes the port" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
pt_stop "$pt_pid"
expect "API: a malformed port is a 400 naming it" 0 "ports\[0\].*publish 'x'.* HTTP 400$" -- \
  ptpost /run '{"command":["true"],"ports":["x"]}'
expect "API: ports without network are a 400" 0 "no network.* HTTP 400$" -- \
  ptpost /run '{"command":["true"],"profile":"restrictive","ports":["18080:80"]}'
expect "API /sandboxes: created with its ports" 0 "HTTP 20[01]$" -- \
  ptpost /sandboxes "{\"name\":\"akpt-api-$$\",\"ports\":[\"18080:80\",\"[::1]:5353:53/udp\"]}"
expect "API /sandboxes: the ports are in its spec" 0 "^\['127.0.0.1:18080:80/tcp', '\[::1\]:5353:53/udp'\]$" -- \
  /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ports"])' \
  "${AGENTKERNEL_STATE_DIR:-$HOME/.local/share/agentkernel}/sandboxes/akpt-api-$$/spec.json"
expect "API /sandboxes: ports without network are a 400" 0 "no network.* HTTP 400$" -- \
  ptpost /sandboxes "{\"name\":\"akpt-api2-$$\",\"profile\":\"restrictive\",\"ports\":[\"18080:80\"]}"
kill "$ptsrv" 2>/dev/null; wait "$ptsrv" 2>/dev/null
"$AK" remove --force "akpt-api-$$" >/dev/null 2>&1
rm -rf "$ptapi"

ptmcp () {
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}" |
    timeout 40 "$AK" mcp-server 2>/dev/null
}
hp=$(pt_free)
ptmcp sandbox_run "{\"command\":$ptcmd,\"ports\":[\"$hp:8000\"]}" >/dev/null 2>&1 &
pt_pid=$!
expect "MCP sandbox_run: ports publishes the port" 0 "^$pt_tok$" -- pt_get "http://127.0.0.1:$hp/"
pt_stop "$pt_pid"
expect "MCP sandbox_run: ports without network are refused" 0 "no network" -- \
  ptmcp sandbox_run '{"command":["true"],"profile":"restrictive","ports":["18080:80"]}'
expect "MCP sandbox_create: a malformed port is refused" 0 "publish 'x'" -- \
  ptmcp sandbox_create "{\"name\":\"akpt-mcp-$$\",\"ports\":[\"x\"]}"
