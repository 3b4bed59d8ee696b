# Every row of the profile table, for every profile, observed from inside.

echo "== profiles: network"
if [ -n "${AK_TEST_HOST:-}" ]; then
  expect "permissive reaches the test host" 0 connected -- sbx --profile permissive -- /probe connect "$AK_TEST_HOST" 8080
  expect "moderate reaches the test host" 0 connected -- sbx --profile moderate -- /probe connect "$AK_TEST_HOST" 8080
  expect "restrictive cannot reach the test host" 1 unreachable -- sbx --profile restrictive -- /probe connect "$AK_TEST_HOST" 8080
  expect "--no-network overrides moderate" 1 unreachable -- sbx --profile moderate --no-network -- /probe connect "$AK_TEST_HOST" 8080
  expect "--no-network overrides permissive" 1 unreachable -- sbx --profile permissive --no-network -- /probe connect "$AK_TEST_HOST" 8080
  if on_container; then
    expect "pasta helper reaches the test host" 0 connected -- env AK_NET_HELPER=pasta "$AK" run -v "$PROBE:/probe:ro" -- /probe connect "$AK_TEST_HOST" 8080
  else
    container_only "pasta helper reaches the test host" "the host-side network helper chosen by AK_NET_HELPER"
  fi
else
  t_begin "network to a test host"; fail "AK_TEST_HOST not set (run through tests/run-all.sh)"
fi
expect "restrictive has loopback only" 0 '^lo$' -- "$AK" run --profile restrictive -- sh -c 'ls /sys/class/net 2>/dev/null || ip -o link | cut -d: -f2 | tr -d " "'
expect "restrictive: loopback works inside" 0 connected -- sbx --profile restrictive -- sh -c 'busybox nc -l -p 5555 >/dev/null & sleep 0.3; /probe connect 127.0.0.1 5555'
expect "restrictive: no DNS resolver" 0 '' -- "$AK" run --profile restrictive -- sh -c '! grep -q nameserver /etc/resolv.conf'
expect "moderate: a DNS resolver" 0 'nameserver' -- "$AK" run --profile moderate -- cat /etc/resolv.conf

# A service on the host's loopback must stay out of reach.
port=$((20000 + RANDOM % 20000))
webroot=$(mktemp -d)
chmod 755 "$webroot"
token="ak-host-loopback-$RANDOM$RANDOM"
echo "$token" >"$webroot/token"
chmod 644 "$webroot/token"
busybox httpd -f -p "127.0.0.1:$port" -h "$webroot" &
httpd=$!
sleep 0.3
# Whether the host's loopback service answered is told by its token: some
# networks accept any connection upstream, so "connected" alone proves
# nothing about the host.
fetch='import sys, urllib.request
try: print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())
except Exception as e: print("unreachable:", e)'
expect "host loopback service answers on the host (control)" 0 "$token" -- python3 -c "$fetch" "http://127.0.0.1:$port/token"
expect "the same client runs in a sandbox (control)" 0 "unreachable" -- "$AK" run --profile restrictive -- python3 -c "$fetch" "http://127.0.0.1:$port/token"
refute "moderate: host loopback not reachable via 127.0.0.1" "$token" -- "$AK" run --profile moderate -- python3 -c "$fetch" "http://127.0.0.1:$port/token"
refute "moderate: host loopback not reachable via the gateway" "$token" -- "$AK" run --profile moderate -- python3 -c "$fetch" "http://10.0.2.2:$port/token"
refute "permissive: host loopback not reachable via the gateway" "$token" -- "$AK" run --profile permissive -- python3 -c "$fetch" "http://10.0.2.2:$port/token"
gw=$(ip -4 route show default 2>/dev/null | awk '{print $3; exit}')
if [ -n "$gw" ] && ! on_container; then
  container_only "pasta: host loopback not reachable (gateway, 127.0.0.1)" "the host-side network helper chosen by AK_NET_HELPER"
elif [ -n "$gw" ]; then
  refute "pasta: host loopback not reachable via the gateway" "$token" -- env AK_NET_HELPER=pasta "$AK" run -- python3 -c "$fetch" "http://$gw:$port/token"
  refute "pasta: host loopback not reachable via 127.0.0.1" "$token" -- env AK_NET_HELPER=pasta "$AK" run -- python3 -c "$fetch" "http://127.0.0.1:$port/token"
fi
kill "$httpd" 2>/dev/null; wait "$httpd" 2>/dev/null; rm -rf "$webroot"

echo "== profiles: mount_cwd"
work=$(mktemp -d)
chmod 755 "$work"
echo marker-cwd >"$work/marker"
pushd "$work" >/dev/null || exit 1
  expect "permissive: cwd at /workspace" 0 marker-cwd -- "$AK" run --profile permissive -- cat /workspace/marker
  expect "permissive: /workspace is the working directory" 0 '^/workspace$' -- "$AK" run --profile permissive -- pwd
  expect "permissive: /workspace is writable" 0 written -- sbx --profile permissive -- /probe write /workspace/created
  expect "moderate: no /workspace" 1 'No such file' -- sbx --profile moderate -- /probe read /workspace/marker
  expect "restrictive: no /workspace" 1 'No such file' -- sbx --profile restrictive -- /probe read /workspace/marker
  expect "moderate: working directory is home" 0 '^/home/user$' -- "$AK" run --profile moderate -- pwd
popd >/dev/null || exit 1
if ! want "permissive: file written in /workspace appears on the host, owned by the caller"; then :
elif [ -f "$work/created" ] && [ "$(stat -c %u "$work/created")" = "$(id -u)" ]; then pass; else fail "$(ls -ln "$work")"; fi
rm -rf "$work"

echo "== profiles: mount_home"
fakehome=$(mktemp -d)
chmod 755 "$fakehome"
echo marker-home >"$fakehome/.marker"
expect "permissive: home at /home/user" 0 marker-home -- env HOME="$fakehome" "$AK" run --profile permissive -- cat /home/user/.marker
expect "permissive: home is read-only" 1 'Read-only' -- env HOME="$fakehome" "$AK" run --profile permissive -v "$PROBE:/probe:ro" -- /probe write /home/user/new
expect "moderate: home not shown" 1 'No such file' -- env HOME="$fakehome" "$AK" run --profile moderate -v "$PROBE:/probe:ro" -- /probe read /home/user/.marker
expect "restrictive: home not shown" 1 'No such file' -- env HOME="$fakehome" "$AK" run --profile restrictive -v "$PROBE:/probe:ro" -- /probe read /home/user/.marker
# The home's credential stores stay hidden; a trusted config that turns
# hide_credentials off shows the same file (the control).
mkdir -p "$fakehome/.ssh" && echo ak-home-ssh-key >"$fakehome/.ssh/id_ed25519" && chmod -R a+rX "$fakehome/.ssh"
credcfg=$(mktemp)
chmod 644 "$credcfg"
printf '[security]\nhide_credentials = false\n' >"$credcfg"
attack "permissive: the home's credential stores are hidden (~/.ssh)" 0 '^ssh-hidden$' -- env HOME="$fakehome" "$AK" run --profile permissive -- \
  sh -c "echo $MARK; cat /home/user/.ssh/id_ed25519 2>/dev/null || echo ssh-hidden"
expect "permissive: hide_credentials = false shows them (control)" 0 '^ak-home-ssh-key$' -- \
  env HOME="$fakehome" "$AK" run --profile permissive --config "$credcfg" -- cat /home/user/.ssh/id_ed25519
rm -f "$credcfg"
if want "home on the host unchanged"; then
  [ ! -e "$fakehome/new" ] && pass || fail "file appeared"
fi
rm -rf "$fakehome"

echo "== profiles: pass_env"
envhome=$(mktemp -d)
chmod 755 "$envhome"
envrun () { env -i $(t_wrap_env) PATH=/usr/bin:/bin:/custom/bin HOME=$envhome USER=custom LANG=fr_FR.UTF-8 LC_ALL=fr_FR.UTF-8 TERM=xterm-custom SECRET_TOKEN=s3cr3t "$AK" run -v "$PROBE:/probe:ro" "$@"; }
# HOME names the home inside, never the host's; PATH keeps only the
# directories that exist inside (/custom/bin does not).
expected_pass=$'HOME=/home/user\nLANG=fr_FR.UTF-8\nLC_ALL=fr_FR.UTF-8\nPATH=/usr/bin:/bin\nTERM=xterm-custom\nUSER=custom'
expected_clean=$'HOME=/home/user\nLANG=C.UTF-8\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nUSER=user'
if want "permissive: exactly the six variables pass (HOME and PATH as inside)"; then
  out=$(envrun --profile permissive -- /probe env 2>/dev/null)
  [ "$out" = "$expected_pass" ] && pass || fail "got: $out"
fi
for p in moderate restrictive; do
  want "$p: fixed clean environment, nothing of the caller's" || continue
  out=$(envrun --profile $p -- /probe env 2>/dev/null)
  [ "$out" = "$expected_clean" ] && pass || fail "got: $out"
done
for p in permissive moderate restrictive; do
  expect "$p: -e passes what it names" 0 '^FOO=bar baz$' -- envrun --profile $p -e 'FOO=bar baz' -- /probe env
  expect "$p: -e KEY passes the caller's value" 0 '^SECRET_TOKEN=s3cr3t$' -- envrun --profile $p -e SECRET_TOKEN -- /probe env
  refute "$p: secrets stay out unless named" 'SECRET_TOKEN' -- envrun --profile $p -- /probe env
done

echo "== profiles: read_only"
expect "restrictive: root is read-only" 1 'Read-only' -- sbx --profile restrictive -- /probe write /newfile
expect "restrictive: /usr is read-only" 1 'Read-only' -- sbx --profile restrictive -- /probe write /usr/newfile
expect "restrictive: /etc is read-only" 1 'Read-only' -- sbx --profile restrictive -- /probe write /etc/newfile
expect "restrictive: /tmp is writable" 0 written -- sbx --profile restrictive -- /probe write /tmp/newfile
expect "restrictive: /dev/shm is writable" 0 written -- sbx --profile restrictive -- /probe write /dev/shm/newfile
for p in permissive moderate; do
  expect "$p: root is writable (private layer)" 0 written -- sbx --profile $p -- /probe write /newfile
  expect "$p: /opt is writable (private layer)" 0 written -- sbx --profile $p -- /probe write /opt/ak-private-layer-test
  expect "$p: host-owned /usr keeps host permissions" 1 'Permission denied' -- sbx --profile $p -- /probe write /usr/lib/ak-private-layer-test
  expect "$p: /etc is writable (private layer)" 0 written -- sbx --profile $p -- /probe write /etc/ak-private-layer-test
done
want "writes to the private layer never reach the host" &&
{ [ ! -e /opt/ak-private-layer-test ] && [ ! -e /etc/ak-private-layer-test ] && [ ! -e /newfile ] && pass || fail "host changed"; }
expect "private layer does not outlive the run" 1 'No such file' -- sbx --profile moderate -- /probe read /opt/ak-private-layer-test
rm -rf "$envhome"
