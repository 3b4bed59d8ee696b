# The microVM backend's network, from inside the guest: none at all for
# network off; for network on, QEMU's user-mode network in a network
# namespace that carries the container backend's egress policy, against
# the test hosts of nethosts.sh (AK_NP_DIR, names through AK_TEST_HOSTS,
# which only the test build reads).  Each VM boot (seconds under TCG)
# serves several checks: its output has one line per check.
echo "== microvm network"

# vmout NAME PATTERN: the check NAME passes when the last VM's output
# ($vm_out, which must hold the marker) has a line matching PATTERN.
vmout () { attack "$1" 0 "$2" -- printf '%s\n' "$vm_out"; }

# vmnot NAME PREFIX PATTERN: passes when the last VM's output has a line
# starting with PREFIX and none of those lines matches PATTERN.
vmnot () {
  local lines
  t_begin "$1"
  lines=$(printf '%s\n' "$vm_out" | grep -E -- "^$2")
  if ! printf '%s' "$vm_out" | grep -q -- "$MARK"; then
    fail "the VM's command did not run (no marker): $(printf %s "$vm_out" | head -c 600)"
  elif [ -z "$lines" ]; then
    fail "no line starts with $2: $(printf %s "$vm_out" | head -c 900)"
  elif printf '%s\n' "$lines" | grep -Eq -- "$3"; then
    fail "$lines"
  else
    pass
  fi
}

if ! microvm_have; then
  t_begin "microvm network: QEMU, virtiofsd and a guest kernel"
  skip "$MICROVM_MISSING"
elif ! is_root; then
  t_begin "microvm network: as an unprivileged user"
  skip_lacks "the microvm backend runs only as root (virtiofsd needs it)"
else
  mvn_state=$(mktemp -d)
  # at NAME get|pget URL [CURL OPTIONS]: one line "NAME rc=N out=BODY" of
  # lib.sh's clients (np_clients).
  GET="$(np_clients) at () { n=\$1; shift; echo \"\$n \$(\"\$@\" | tr '\\n' ' ')\"; }"
  vmn () { AGENTKERNEL_STATE_DIR=$mvn_state "$AK_TEST_BIN" run --backend microvm "$@"; }
  # DENIED: lib.sh (no connection, or a reset once accepted by the policy).

  # -- network off: no NIC, nothing reachable
  vm_out=$(vmn --no-network -- sh -c "$GET; echo $MARK; echo ifaces=\$(ls /sys/class/net | tr '\n' ,);
    at direct get http://${AK_TEST_HOST:-198.51.100.10}/; echo resolv=\$(cat /etc/resolv.conf)" 2>&1)
  vmout "microvm network off: no interface but lo" '^ifaces=lo,$'
  vmout "microvm network off: a connection attempt fails" '^direct rc=7 .*(unreachable|connect)'
  vmout "microvm network off: no resolver named" '^resolv=$'

  # -- QEMU itself, seen from the host: a network namespace of its own
  # with nothing but lo (with the egress policy there is no link at all:
  # everything leaves through the policy's sockets).
  qemu_of () {
    local p
    for p in $(pgrep -P "$1"); do
      [ "$(cat "/proc/$p/comm" 2>/dev/null)" = qemu-system-x86 ] && echo "$p"
      qemu_of "$p"
    done
  }
  for mode in off on; do
    t_begin "microvm network $mode: QEMU runs in a network namespace of its own, only lo in it"
    if [ $mode = on ] && ! [ -x /usr/sbin/nft ]; then
      skip "nftables is not installed (apt-get install nftables): network on uses a NAT helper's link"
      continue
    fi
    bg_out=$(mktemp)
    # (exec: $! is agentkernel itself, which the kill below ends, and
    # the VM with it)
    net_opt=()
    [ $mode = off ] && net_opt=(--no-network)
    (AGENTKERNEL_STATE_DIR=$mvn_state exec "$AK_TEST_BIN" run --backend microvm "${net_opt[@]}" -- \
      sh -c "echo $MARK; sleep 120" >"$bg_out" 2>&1) &
    bg_pid=$!
    q=
    for _ in $(seq 240); do
      grep -q "$MARK" "$bg_out" && q=$(qemu_of "$bg_pid" | head -1) && [ -n "$q" ] && break
      kill -0 "$bg_pid" 2>/dev/null || break
      sleep 0.5
    done
    ifs=$([ -n "$q" ] && awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s,", $1 }' "/proc/$q/net/dev" 2>/dev/null)
    host_ifs=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s,", $1 }' /proc/self/net/dev)
    if [ -z "$q" ]; then
      fail "no running QEMU found under the run; it said: $(head -c 600 "$bg_out")"
    elif [ "$(readlink "/proc/$q/ns/net")" = "$(readlink /proc/self/ns/net)" ]; then
      fail "QEMU is in the host's network namespace"
    elif [ "$ifs" != "lo," ]; then
      fail "QEMU's network namespace has: $ifs (the host's: $host_ifs)"
    else
      pass
    fi
    kill "$bg_pid" 2>/dev/null; wait "$bg_pid" 2>/dev/null
    rm -f "$bg_out"
  done

  if [ -z "${AK_NP_DIR:-}" ] || [ ! -f "${AK_TEST_HOSTS:-}" ]; then
    t_begin "microvm network on: the egress policy's test hosts"
    skip "AK_NP_DIR/AK_TEST_HOSTS not set (run through tests/run-all.sh, or as root: tests/integration/nethosts.sh up DIR; . DIR/env)"
  else
    # A service on the host's loopback, and the control: the host reaches
    # it, and the test hosts' service on the host's own address.
    lo_dir=$(mktemp -d)
    echo host-loopback-token >"$lo_dir/index.html"
    lo_port=$((20000 + $$ % 20000))
    (cd "$lo_dir" && exec python3 -m http.server --bind 127.0.0.1 "$lo_port") >/dev/null 2>&1 &
    lo_pid=$!
    for _ in $(seq 50); do curl -s -m 1 "http://127.0.0.1:$lo_port/" >/dev/null && break; sleep 0.1; done
    expect "microvm network: control: the host reaches its loopback service and own address" 0 \
      'host-loopback-token.*host-service-token' -- \
      sh -c "{ curl -sS -m 5 http://127.0.0.1:$lo_port/; curl -sS -m 5 http://198.51.100.1:18765/; } | tr '\n' ' '"

    # -- network on, no rules: the test hosts are reachable, the host is not
    vm_out=$(vmn -- sh -c "$GET; echo $MARK; echo ifaces=\$(ls /sys/class/net | tr '\n' ,);
      at byname get http://allowed.test/; at byaddr get http://198.51.100.11/;
      at gateway get http://10.0.3.2:$lo_port/; at slirpdefault get http://10.0.2.2:$lo_port/;
      at loopback get http://127.0.0.1:$lo_port/; at hostaddr get http://198.51.100.1:18765/;
      at metadata get http://169.254.169.254/" 2>&1)
    vmout "microvm network on: a NIC besides lo" '^ifaces=eth0,lo,$'
    vmout "microvm network on: the test host by name (DNS through the policy)" \
      '^byname rc=0 out=token-198\.51\.100\.10 host=allowed\.test'
    vmout "microvm network on: the test host by address" '^byaddr rc=0 out=token-198\.51\.100\.11 '
    vmout "microvm network on: the host's loopback service through the gateway is unreachable" "^gateway $DENIED"
    # (10.0.2.2 is slirp's usual gateway; here an address like any other,
    # which the host's own network may well answer.)
    vmnot "microvm network on: the host's loopback service through 10.0.2.2 is unreachable" "slirpdefault " host-loopback-token
    vmout "microvm network on: the host's loopback service on 127.0.0.1 is unreachable" "^loopback $DENIED"
    vmout "microvm network on: the host's own address is unreachable" "^hostaddr $DENIED"
    vmout "microvm network on: the cloud metadata address is unreachable" "^metadata $DENIED"

    # -- without the policy (AK_NET_HELPER): the NAT helpers' namespace,
    # with the container's warning; the host's loopback stays out of reach
    for helper in slirp4netns pasta; do
      if ! command -v "$helper" >/dev/null; then
        t_begin "microvm network through $helper"
        skip "$helper is not installed (apt-get install ${helper/pasta/passt})"
        continue
      fi
      vm_out=$(AK_NET_HELPER=$helper vmn -- sh -c "$GET; echo $MARK; at byaddr get http://198.51.100.11/;
        at gateway get http://10.0.3.2:$lo_port/; at loopback get http://127.0.0.1:$lo_port/" 2>&1)
      vmout "microvm network through $helper: announced as plain NAT" "plain NAT \\($helper\\)"
      vmout "microvm network through $helper: the test host by address" '^byaddr rc=0 out=token-198\.51\.100\.11 '
      vmout "microvm network through $helper: the host's loopback service through the gateway is unreachable" "^gateway $DENIED"
      vmout "microvm network through $helper: the host's loopback service on 127.0.0.1 is unreachable" "^loopback $DENIED"
    done
    kill "$lo_pid" 2>/dev/null; wait "$lo_pid" 2>/dev/null
    rm -rf "$lo_dir"

    # -- host rules: the same policy, proxy and audit as a container's
    alog=$(mktemp /tmp/akmvn-audit.XXXXXX)
    vm_out=$(AGENTKERNEL_AUDIT_LOG=$alog vmn --allow-host allowed.test -- sh -c "$GET; echo $MARK;
      at allowed get http://allowed.test/; at denied get http://other.test/ --resolve other.test:80:198.51.100.11;
      getent hosts other.test; echo lookup-denied=\$?; getent hosts allowed.test >/dev/null; echo lookup-allowed=\$?;
      echo proxy=\$HTTP_PROXY; at proxyallowed pget http://allowed.test/; at proxydenied pget http://other.test/" 2>&1)
    vmout "microvm rules: an allowed name is reached" '^allowed rc=0 out=token-198\.51\.100\.10 host=allowed\.test'
    vmout "microvm rules: another host is not reached (its control above)" "^denied $DENIED"
    vmout "microvm rules: an allowed name resolves" '^lookup-allowed=0$'
    vmout "microvm rules: another name does not resolve" '^lookup-denied=2$'
    vmout "microvm rules: the proxy variables point at the policy's proxy" '^proxy=http://10\.0\.2\.3:3128$'
    vmout "microvm rules: the proxy passes an allowed name" '^proxyallowed rc=0 out=token-198\.51\.100\.10 host=allowed\.test'
    vmout "microvm rules: the proxy refuses another name" '^proxydenied rc=(22|56) .*(403|refused)'
    audit_expect "microvm rules: the refused connection is in the egress audit" \
      '"event":"network_connect".*"verdict":"deny".*"address":"198\.51\.100\.11","port":80' "$alog" --denied
    audit_expect "microvm rules: the refused lookup is in the egress audit" \
      '"event":"dns_query".*"verdict":"deny".*"name":"other\.test"' "$alog" --denied
    rm -f "$alog"
  fi

  # -- published ports: the host's port reaches the guest's service
  pub_port=$((20000 + ($$ + 7) % 20000))
  pub_out=$(mktemp)
  (AGENTKERNEL_STATE_DIR=$mvn_state exec "$AK_TEST_BIN" run --backend microvm -P "127.0.0.1:$pub_port:8080" -- \
    sh -c "echo $MARK; mkdir /tmp/w; echo guest-served-token >/tmp/w/index.html;
    cd /tmp/w && timeout 60 python3 -m http.server --bind 0.0.0.0 8080" >"$pub_out" 2>&1) &
  pub_pid=$!
  got=
  for _ in $(seq 120); do
    got=$(curl -sS -m 3 "http://127.0.0.1:$pub_port/" 2>/dev/null) && [ -n "$got" ] && break
    kill -0 "$pub_pid" 2>/dev/null || break
    sleep 0.5
  done
  t_begin "microvm published port: the host's port reaches the guest's service"
  if printf '%s' "$got" | grep -q guest-served-token; then pass; else
    fail "got '$got'; the run said: $(head -c 600 "$pub_out")"; fi
  kill "$pub_pid" 2>/dev/null; wait "$pub_pid" 2>/dev/null
  rm -f "$pub_out"
  expect "microvm published ports need the network" 125 'network' -- \
    vmn --no-network -P "127.0.0.1:$pub_port:8080" -- true
  rm -rf "$mvn_state"
fi
