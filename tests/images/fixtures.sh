#!/usr/bin/env bash
# The image suite's registries and images, offline, in a scratch directory.
#
#   fixtures.sh up DIR     start the registries, push the fixtures, write DIR/env
#   fixtures.sh down DIR   stop what `up` started (by PID file)
#
# Registries (Debian's docker-registry, one shared storage directory, so one
# push serves all), each on a free 127.0.0.1 port:
#   PLAIN  plain HTTP, no auth
#   BASIC  plain HTTP, htpasswd basic auth (agent / agentpass)
#   TOKEN  plain HTTP, bearer tokens from token_server.py on TOKEN_SRV
#          (anonymous: pull all but private/*; agent / agentpass: all)
#   TLS    HTTPS with a certificate from a test CA (DIR/certs/ca.crt), no auth
#   FLAKY  flaky_proxy.py in front of PLAIN: each manifest's first request
#          reset, each blob first a 503, then a redirect to PLAIN (requests
#          logged in DIR/flaky.log)
# Images: see fixtures.py; their digests in DIR/digests.json.
# Needs: docker-registry, apache2-utils (htpasswd), openssl, python3, zstd,
# busybox-static.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2

free_port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http () {
  for _ in $(seq 100); do
    code=$(python3 - "$1" <<'PY' 2>/dev/null
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try: print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=2).status)
except urllib.error.HTTPError as e: print(e.code)
except Exception: print(0)
PY
)
    [ "$code" != 0 ] && return 0
    sleep 0.1
  done
  echo "fixtures: $1 did not come up" >&2; return 1
}

registry_conf () { # NAME PORT EXTRA...
  local name=$1 port=$2; shift 2
  cat >"$dir/$name.yml" <<EOF2
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/storage}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:$port
$(printf '%s\n' "$@")
EOF2
}

start_bg () { # NAME CMD...
  local name=$1; shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

up () {
  mkdir -p "$dir/storage" "$dir/certs" "$dir/escape"
  local plain basic token tsrv tls flaky
  plain=$(free_port) basic=$(free_port) token=$(free_port) tsrv=$(free_port) tls=$(free_port) flaky=$(free_port)
  htpasswd -Bbn agent agentpass >"$dir/htpasswd" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=agentkernel-test-ca \
    -keyout "$dir/certs/ca.key" -out "$dir/certs/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$dir/certs/server.key" \
    -out "$dir/certs/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/certs/ext"
  openssl x509 -req -in "$dir/certs/server.csr" -CA "$dir/certs/ca.crt" -CAkey "$dir/certs/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/certs/ext" -out "$dir/certs/server.crt" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=agentkernel-token-issuer \
    -keyout "$dir/certs/token.key" -out "$dir/certs/token.crt" 2>/dev/null
  registry_conf plain "$plain"
  registry_conf basic "$basic" "auth:" "  htpasswd: {realm: agentkernel-basic, path: $dir/htpasswd}"
  registry_conf token "$token" "auth:" "  token:" "    realm: http://127.0.0.1:$tsrv/token" \
    "    service: agentkernel-registry" "    issuer: agentkernel-token-issuer" \
    "    rootcertbundle: $dir/certs/token.crt"
  registry_conf tls "$tls" "  tls: {certificate: $dir/certs/server.crt, key: $dir/certs/server.key}"
  for r in plain basic token tls; do start_bg "$r" docker-registry serve "$dir/$r.yml"; done
  start_bg token-server python3 "$here/token_server.py" "$tsrv" "$dir/certs/token.key" "$dir/certs/token.crt" \
    agentkernel-token-issuer agent:agentpass
  wait_http "http://127.0.0.1:$plain/v2/"
  start_bg flaky python3 "$here/flaky_proxy.py" "$flaky" "127.0.0.1:$plain"
  wait_http "http://127.0.0.1:$flaky/v2/"
  wait_http "http://127.0.0.1:$basic/v2/"
  wait_http "http://127.0.0.1:$token/v2/"
  wait_http "http://127.0.0.1:$tsrv/token"
  wait_http "https://127.0.0.1:$tls/v2/"
  python3 "$here/fixtures.py" push "http://127.0.0.1:$plain" "$dir/digests.json" "$dir/escape"
  cat >"$dir/env" <<EOF2
PLAIN=127.0.0.1:$plain
BASIC=127.0.0.1:$basic
TOKEN=127.0.0.1:$token
TOKEN_SRV=127.0.0.1:$tsrv
TLS=127.0.0.1:$tls
FLAKY=127.0.0.1:$flaky
FX_FLAKY_LOG=$dir/flaky.log
FX_STORAGE=$dir/storage
FX_CA=$dir/certs/ca.crt
FX_ESCAPE=$dir/escape
EOF2
}

down () {
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: fixtures.sh up|down DIR" >&2; exit 2 ;;
esac
