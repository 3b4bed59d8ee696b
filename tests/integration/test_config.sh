# agentkernel.toml observed from inside: profile, then config keys, then CLI
# flags (DESIGN.md), and every bad file refused with its file and line.

cfgdir=$(mktemp -d)
chmod 755 "$cfgdir"
echo marker-config >"$cfgdir/marker"
echo injected-content >"$cfgdir/payload.txt"
# These cases test what a file the user vouched for does, so cfg trusts
# what it writes (escapes 6 tests what an untrusted one cannot do); the
# trust records go to a directory of this test's own.
cfg_xdg_saved=${XDG_CONFIG_HOME-unset}
export XDG_CONFIG_HOME="$cfgdir/.xdg"
cfg () { printf '%s\n' "$@" >"$cfgdir/agentkernel.toml" && "$AK" config trust "$cfgdir/agentkernel.toml" >/dev/null; }
cfgu () { printf '%s\n' "$@" >"$cfgdir/agentkernel.toml"; }
pushd "$cfgdir" >/dev/null || exit 1

echo "== config: [security] keys"
cfg '[security]' 'profile = "moderate"' 'mount_cwd = true'
expect "config mount_cwd = true shows /workspace" 0 'read 14 bytes' -- sbx -- /probe read /workspace/marker
expect "config mount_cwd = true: the caller's directory at /workspace" 0 '^marker-config$' -- "$AK" run -- cat /workspace/marker
expect "--profile restrictive beats the config profile; config key still applies" 0 'read 14 bytes' -- sbx --profile restrictive -- /probe read /workspace/marker
expect "--profile restrictive beats the config profile (read-only root)" 1 'Read-only' -- sbx --profile restrictive -- /probe write /newfile

cfg '[security]' 'profile = "restrictive"'
expect "config profile restrictive: root is read-only" 1 'Read-only' -- sbx -- /probe write /newfile
expect "--profile moderate beats config profile restrictive" 0 written -- sbx --profile moderate -- /probe write /newfile

cfghome=$(mktemp -d)
chmod 755 "$cfghome"
echo marker-cfghome >"$cfghome/.m"
cfg '[security]' 'mount_home = true'
expect "config mount_home = true over moderate: home shown" 0 '^marker-cfghome$' -- env HOME="$cfghome" "$AK" run -- cat /home/user/.m
cfg '[security]' 'profile = "permissive"' 'mount_home = false'
expect "config mount_home = false over permissive: home not shown" 1 'No such file' -- env HOME="$cfghome" "$AK" run -v "$PROBE:/probe:ro" -- /probe read /home/user/.m
cfg '[security]' 'profile = "permissive"' 'mount_cwd = false'
expect "config mount_cwd = false over permissive: no /workspace" 1 'No such file' -- sbx -- /probe read /workspace/marker
cfg '[security]' 'profile = "permissive"' 'read_only = true'
expect "config read_only = true over permissive" 1 'Read-only' -- sbx -- /probe write /newfile
rm -rf "$cfghome"

cfg '[security]' 'read_only = true'
expect "config read_only = true: root is read-only" 1 'Read-only' -- sbx -- /probe write /newfile

cfg '[security]' 'pass_env = true'
expect "config pass_env = true passes TERM" 0 '^xterm-config$' -- env TERM=xterm-config "$AK" run -- sh -c 'echo "$TERM"'
cfg '[security]' 'pass_env = false'
refute "config pass_env = false keeps TERM out" 'xterm-config' -- env TERM=xterm-config "$AK" run -- sh -c 'echo "TERM=$TERM"'

if [ -n "${AK_TEST_HOST:-}" ]; then
  cfg '[security]' 'network = false'
  expect "config network = false: test host unreachable" 1 unreachable -- sbx -- /probe connect "$AK_TEST_HOST" 8080
  cfg '[security]' 'profile = "restrictive"' 'network = true'
  expect "config network = true over restrictive: test host reachable" 0 connected -- sbx -- /probe connect "$AK_TEST_HOST" 8080
  expect "--no-network beats config network = true" 1 unreachable -- sbx --no-network -- /probe connect "$AK_TEST_HOST" 8080
else
  t_begin "config network to a test host"; skip "AK_TEST_HOST not set"
fi
cfg '[security]' 'profile = "restrictive"' 'network = true'
expect "config network = true over restrictive: a DNS resolver" 0 nameserver -- "$AK" run -- cat /etc/resolv.conf
expect "--no-network beats config network = true: loopback only" 0 '^lo$' -- "$AK" run --no-network -- sh -c 'ls /sys/class/net 2>/dev/null || ip -o link | cut -d: -f2 | tr -d " "'
expect "--no-network beats config network = true: no DNS resolver" 0 '' -- "$AK" run --no-network -- sh -c '! grep -q nameserver /etc/resolv.conf'

echo "== config: [[files]] and --config"
cfg '[[files]]' 'source = "payload.txt"' 'dest = "/etc/payload"'
expect "[[files]] source copied to dest" 0 '^injected-content$' -- "$AK" run -- cat /etc/payload
other=$(mktemp -d)
printf '[security]\nread_only = true\n' >"$other/custom.toml"
expect "--config FILE is used instead of ./agentkernel.toml" 1 'Read-only' -- sbx --config "$other/custom.toml" -- /probe write /newfile
expect "--config missing file fails" 125 'missing.toml' -- "$AK" run --config "$other/missing.toml" -- true
rm -rf "$other"

echo "== config: config show"
cfg '[security]' 'profile = "moderate"' 'mount_cwd = true'
expect "config show: key from config with its line" 0 'mount_cwd = true  # config line 3' -- "$AK" config show
expect "config show: cli flag" 0 'network = false  # cli flag' -- "$AK" config show --no-network
expect "config show: from the profile" 0 'pass_env = false  # profile moderate' -- "$AK" config show
expect "config show --json: sources" 0 '"source": "config"' -- "$AK" config show --json
t_begin "config show --json: network from cli, mount_cwd from config line 3"
out=$("$AK" config show --json --no-network 2>&1)
if printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["security"]; assert s["network"]=={"value":False,"source":"cli"}, s; assert s["mount_cwd"]=={"value":True,"source":"config","line":3}, s; assert d["profile"]["source"]=="config"' 2>/dev/null; then pass; else fail "$out"; fi

echo "== config: errors and warnings"
cfg '[security]' 'network = "no"'
expect "wrong type: file, line and key" 125 'agentkernel.toml:2: \[security\] network: expected a boolean, got string' -- "$AK" run -- true
cfg '[security]' 'profile = "paranoid"'
expect "unknown profile" 125 "agentkernel.toml:2: .*unknown profile 'paranoid'" -- "$AK" run -- true
cfg '[[files]]' 'source = "payload.txt"' 'dest = "etc/payload"'
expect "relative dest" 125 'agentkernel.toml:3: \[\[files\]\] dest' -- "$AK" run -- true
cfg '[[files]]' 'source = "../../../etc/passwd"' 'dest = "/x"'
expect "source escaping the directory" 125 'agentkernel.toml:1: \[\[files\]\] source.*outside' -- "$AK" run -- true
ln -sf /etc/passwd "$cfgdir/link"
cfg '[[files]]' 'source = "link"' 'dest = "/x"'
expect "source escaping through a symlink" 125 'agentkernel.toml:1: \[\[files\]\] source.*outside' -- "$AK" run -- true
cfg '[[files]]' 'source = "nothere.txt"' 'dest = "/x"'
expect "missing source" 125 "agentkernel.toml:1: \[\[files\]\] source 'nothere.txt'" -- "$AK" run -- true
cfg '[sandbox]' 'name = "no spaces allowed"'
expect "invalid name" 125 'agentkernel.toml:2: \[sandbox\] name' -- "$AK" run -- true
cfg '[security]' 'network = tru'
expect "syntax error with line and column" 125 'agentkernel.toml:2:[0-9]+:' -- "$AK" run -- true
cfg '[security]' 'netwrok = false'
expect "unknown key is a warning with a suggestion" 0 "warning: agentkernel.toml:2: unknown key 'netwrok' in \[security\] \(did you mean 'network'\?\)" -- "$AK" run -- true

echo "== config: an untrusted ./agentkernel.toml only tightens"
cfgu '[security]' 'read_only = true' 'network = false'
expect "untrusted read_only = true still applies" 1 'Read-only' -- sbx -- /probe write /newfile
expect "untrusted network = false still applies" 0 'network = false  # config line 3' -- "$AK" config show
cfgu '[resources]' 'pids = 64' 'memory_mb = 0'
expect "untrusted pids lowered applies" 0 'pids = 64  # config' -- "$AK" config show
expect "untrusted memory_mb = 0 (no limit) is refused" 0 'memory_mb = 512  # profile moderate' -- "$AK" config show
cfgu '[security]' 'mount_cwd = true'
expect "untrusted mount_cwd = true refused, with file, line and how to trust" 0 "warning: agentkernel.toml:2: \[security\] mount_cwd = true ignored: .*config trust agentkernel.toml" -- "$AK" run -- true
expect "config show says the file is not trusted" 0 'not trusted' -- "$AK" config show
expect "config show --json lists the refused settings" 0 '"2: \[security\] mount_cwd = true"' -- "$AK" config show --json
expect "config trust records the file and its SHA-256" 0 "^trusted $cfgdir/agentkernel.toml \(sha256 $(sha256sum <"$cfgdir/agentkernel.toml" | cut -d' ' -f1)\)" -- "$AK" config trust
for n in 0 55 56 63 64 119 120 1000; do
  head -c "$n" /dev/zero | tr '\0' x >"$cfgdir/h$n"
  hex=$("$AK" config trust "$cfgdir/h$n" | sed -n 's/.*(sha256 \([0-9a-f]*\)).*/\1/p')
  "$AK" config untrust "$cfgdir/h$n" >/dev/null
  t_begin "SHA-256 of $n bytes matches sha256sum"
  if [ "$hex" = "$(sha256sum <"$cfgdir/h$n" | cut -d' ' -f1)" ]; then pass; else fail "$hex"; fi
done
expect "config show says the file is trusted" 0 "config file $cfgdir/agentkernel.toml: trusted" -- "$AK" config show
expect "trusted mount_cwd = true applies" 0 'mount_cwd = true  # config line 2' -- "$AK" config show
expect "config untrust removes the record" 0 "^untrusted $cfgdir/agentkernel.toml" -- "$AK" config untrust
expect "untrusted again after config untrust" 0 'mount_cwd = false  # profile moderate' -- "$AK" config show
expect "config trust of a missing file fails" 125 'nothere.toml' -- "$AK" config trust nothere.toml
t_begin "the trust records are private (0600)"
if [ "$(stat -c %a "$XDG_CONFIG_HOME/agentkernel/trusted")" = 600 ]; then pass; else fail "$(stat -c %a "$XDG_CONFIG_HOME/agentkernel/trusted")"; fi

popd >/dev/null || exit 1
if [ "$cfg_xdg_saved" = unset ]; then unset XDG_CONFIG_HOME; else export XDG_CONFIG_HOME="$cfg_xdg_saved"; fi
rm -rf "$cfgdir"
