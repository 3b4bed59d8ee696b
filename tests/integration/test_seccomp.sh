# Seccomp profiles observed from inside: the built-ins by name, custom
# Docker profiles (Docker's own default among them), the floor that no
# custom profile lifts without --allow-unsafe-seccomp, and every bad name
# or file refused with its file and line.

scdir=$(mktemp -d)
chmod 755 "$scdir"
scdata=$(cd "$here/../data/seccomp" 2>/dev/null && pwd)
sc_xdg_saved=${XDG_CONFIG_HOME-unset}
export XDG_CONFIG_HOME="$scdir/.xdg"
pushd "$scdir" >/dev/null || exit 1
cat >deny-mkdir.json <<'EOF'
{
	"defaultAction": "SCMP_ACT_ALLOW",
	"syscalls": [
		{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 }
	]
}
EOF
# Allows everything, and says so again for what the floor refuses.
cat >hostile.json <<'EOF'
{
	"defaultAction": "SCMP_ACT_ALLOW",
	"syscalls": [
		{ "names": ["mount", "unshare", "setns", "ptrace", "bpf", "keyctl", "add_key", "clone",
		            "clone3", "io_uring_setup", "userfaultfd"], "action": "SCMP_ACT_ALLOW" }
	]
}
EOF
printf '{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [{"names": ["read"], "action": "SCMP_ACT_MAYBE"}]}\n' >bad-action.json
printf '{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [\n' >bad-json.json

echo "== seccomp: built-in profiles by name"
expect "config show: the profile's filter by default" 0 '^seccomp = "moderate"  # the profile' -- "$AK" config show
expect "config show: restrictive's filter follows the profile" 0 '^seccomp = "restrictive"' -- "$AK" config show --profile restrictive
for n in permissive moderate ai-agent restrictive; do
  expect "--seccomp $n: config show" 0 "^seccomp = \"$n\"  # cli flag" -- "$AK" config show --seccomp $n
  attack "--seccomp $n: the sandbox runs" 0 '' -- "$AK" run --seccomp $n -- sh -c "echo $MARK"
  expect "--seccomp $n: seccomp filter active" 0 'Seccomp:\s+2' -- sbx --seccomp $n -- /probe status 'Seccomp:'
done
attack "--seccomp default: the sandbox runs" 0 '' -- "$AK" run --seccomp default -- sh -c "echo $MARK"
# A packet socket: the kernel refuses it for want of CAP_NET_RAW (EPERM);
# ai-agent's filter refuses the family before the kernel sees it.
pkt="import socket
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
except OSError as e:
    print('errno', e.errno)"
attack "ai-agent: socket families other than unix, inet, netlink refused" 0 '^errno 97$' -- "$AK" run --seccomp ai-agent -- sh -c "echo $MARK; python3 -c \"$pkt\""
attack "moderate: the kernel decides (control)" 0 '^errno 1$' -- "$AK" run --seccomp moderate -- sh -c "echo $MARK; python3 -c \"$pkt\""
# name_to_handle_at: nothing an agent needs, refused by ai-agent's list.
if [ "$(uname -m)" = x86_64 ]; then
  nth="import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(303, -100, b'/', None, None, 0)
print('errno', ctypes.get_errno())"
  attack "ai-agent: name_to_handle_at refused" 0 '^errno 1$' -- "$AK" run --seccomp ai-agent -- sh -c "echo $MARK; python3 -c \"$nth\""
  attack "moderate: name_to_handle_at reaches the kernel (control)" 0 '^errno (14|75|95)$' -- "$AK" run --seccomp moderate -- sh -c "echo $MARK; python3 -c \"$nth\""
fi
attack "ai-agent: ptrace refused" 1 denied -- sbx --seccomp ai-agent -- sh -c "echo $MARK; /probe syscall ptrace"
attack "--seccomp permissive: ptrace allowed (control)" 0 allowed -- sbx --seccomp permissive -- sh -c "echo $MARK; /probe syscall ptrace"
for s in unshare mount bpf io_uring_setup userfaultfd; do
  attack "ai-agent: $s refused" 1 denied -- sbx --seccomp ai-agent -- sh -c "echo $MARK; /probe syscall $s"
done
attack "ai-agent: an agent's toolchain works (threads, pipes, files, python)" 0 '^ok$' -- \
  "$AK" run --seccomp ai-agent -- sh -c "echo $MARK; mkdir -p /tmp/w && cd /tmp/w && git init -q . && python3 -c 'import threading, subprocess, tempfile; t = threading.Thread(target=lambda: None); t.start(); t.join(); subprocess.run([\"true\"], check=True); tempfile.mkstemp(); print(\"ok\")'"
printf '[security]\nseccomp = "ai-agent"\n' >agentkernel.toml
"$AK" config trust agentkernel.toml >/dev/null
expect "[security] seccomp = \"ai-agent\": config show names the line" 0 '^seccomp = "ai-agent"  # config line 2' -- "$AK" config show
attack "[security] seccomp = \"ai-agent\" applies" 0 '^errno 97$' -- "$AK" run -- sh -c "echo $MARK; python3 -c \"$pkt\""
expect "--seccomp beats the config key" 0 '^seccomp = "moderate"  # cli flag' -- "$AK" config show --seccomp moderate
rm -f agentkernel.toml

echo "== seccomp: custom profiles"
attack "without a profile, mkdir works (control)" 0 '' -- "$AK" run -- sh -c "echo $MARK; mkdir /tmp/x"
attack "a profile refusing mkdir with EACCES" 1 'Permission denied' -- "$AK" run --seccomp ./deny-mkdir.json -- sh -c "echo $MARK; mkdir /tmp/x"
expect "config show: the file, on top of the floor" 0 "seccomp = \"$scdir/deny-mkdir.json\"  # cli flag; on top of the floor" -- "$AK" config show --seccomp deny-mkdir.json
if [ -n "$scdata" ] && [ -f "$scdata/docker-default.json" ]; then
  attack "Docker's default profile: ordinary commands work" 0 '^/tmp/x$' -- "$AK" run --seccomp "$scdata/docker-default.json" -- sh -c "echo $MARK; mkdir /tmp/x && ls -d /tmp/x && python3 -c 'import threading; t = threading.Thread(target=print); t.start(); t.join()'"
  attack "Docker's default profile: unshare refused" 1 denied -- sbx --seccomp "$scdata/docker-default.json" -- sh -c "echo $MARK; /probe syscall unshare"
  attack "Docker's default profile: personality(0xffffffff) allowed" 0 allowed -- sbx --seccomp "$scdata/docker-default.json" -- sh -c "echo $MARK; /probe syscall personality"
else
  skip "Docker's default profile" "tests/data/seccomp/docker-default.json not found beside the tests"
fi
for s in mount unshare setns clone-newuser clone3 bpf keyctl add_key io_uring_setup userfaultfd; do
  attack "a hostile profile allowing $s: the floor still refuses it" 1 denied -- sbx --seccomp hostile.json -- sh -c "echo $MARK; /probe syscall $s"
done
for s in unshare clone-newuser keyctl; do
  attack "--allow-unsafe-seccomp: the hostile profile alone allows $s" 0 '^allowed' -- sbx --seccomp hostile.json --allow-unsafe-seccomp -- sh -c "echo $MARK; /probe syscall $s"
done
expect "--allow-unsafe-seccomp warns loudly" 0 'warning: UNSAFE: --allow-unsafe-seccomp' -- "$AK" run --seccomp hostile.json --allow-unsafe-seccomp -- true
expect "config show says so" 0 'UNSAFE: alone, without the floor' -- "$AK" config show --seccomp hostile.json --allow-unsafe-seccomp
# An untrusted ./agentkernel.toml: its profile goes on top of the filter
# in force (moderate), which refuses ptrace, whatever the file allows.
printf '[security]\nseccomp = "hostile.json"\n' >agentkernel.toml
attack "untrusted config's hostile profile cannot allow ptrace" 1 denied -- sbx -- sh -c "echo $MARK; /probe syscall ptrace"
attack "untrusted config's hostile profile cannot allow unshare" 1 denied -- sbx -- sh -c "echo $MARK; /probe syscall unshare"
expect "config show: on top of moderate" 0 'on top of the moderate filter' -- "$AK" config show
expect "--allow-unsafe-seccomp refused for an untrusted config's profile" 125 'not trusted' -- "$AK" run --allow-unsafe-seccomp -- true
printf '[security]\nseccomp = "deny-mkdir.json"\n' >agentkernel.toml
attack "untrusted config's own refusal applies (it only takes away)" 1 'Permission denied' -- "$AK" run -- sh -c "echo $MARK; mkdir /tmp/x"
printf '[security]\nseccomp = "permissive"\n' >agentkernel.toml
expect "untrusted config cannot pick a looser built-in" 0 'seccomp = "permissive" ignored' -- "$AK" config show
attack "... and ptrace stays refused" 1 denied -- sbx -- sh -c "echo $MARK; /probe syscall ptrace"
rm -f agentkernel.toml

echo "== seccomp: a persistent sandbox keeps the profile create read"
cp deny-mkdir.json keep.json
expect "create with a custom profile" 0 '^scbox$' -- "$AK" create scbox --seccomp keep.json
printf '{"defaultAction": "SCMP_ACT_ALLOW"}\n' >keep.json
expect "start" 0 '' -- "$AK" start scbox
attack "the profile as created still refuses mkdir" 1 'Permission denied' -- "$AK" exec scbox -- sh -c "echo $MARK; mkdir /tmp/y"
"$AK" stop scbox >/dev/null 2>&1
"$AK" remove scbox >/dev/null 2>&1

echo "== seccomp: bad names and files"
expect "--seccomp: unknown name" 125 "unknown seccomp profile 'strict'" -- "$AK" run --seccomp strict -- true
expect "--seccomp: missing file" 125 'nothere.json' -- "$AK" run --seccomp nothere.json -- true
expect "--seccomp: malformed JSON names file, line and column" 125 'bad-json.json:3:[0-9]+: invalid JSON' -- "$AK" run --seccomp bad-json.json -- true
expect "--seccomp: unknown action" 125 "bad-action.json: syscalls\[0\].action: unknown action 'SCMP_ACT_MAYBE'" -- "$AK" run --seccomp bad-action.json -- true
expect "--allow-unsafe-seccomp without a custom profile" 125 'applies to a custom seccomp profile' -- "$AK" run --allow-unsafe-seccomp -- true
printf '[sandbox]\n\n[security]\nseccomp = "strict"\n' >agentkernel.toml
expect "[security] seccomp: unknown name, with file and line" 125 "agentkernel.toml:4: \[security\] seccomp: unknown seccomp profile 'strict'" -- "$AK" run -- true
printf '[security]\nseccomp = "bad-json.json"\n' >agentkernel.toml
expect "[security] seccomp: malformed file, with both files' lines" 125 'agentkernel.toml:2: \[security\] seccomp: .*bad-json.json:3:' -- "$AK" run -- true
printf '[security]\nseccomp = "/etc/passwd"\n' >agentkernel.toml
expect "[security] seccomp: untrusted, outside the directory" 125 "outside the config file's directory" -- "$AK" run -- true
rm -f agentkernel.toml

popd >/dev/null || exit 1
if [ "$sc_xdg_saved" = unset ]; then unset XDG_CONFIG_HOME; else export XDG_CONFIG_HOME="$sc_xdg_saved"; fi
rm -rf "$scdir"
