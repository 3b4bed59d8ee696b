# The command policy ([security.commands], --allow-cmd, --block-cmd), as the
# attack: every way a command inside could start a blocked program, each
# with the marker (the command ran) and the control (the same exec works
# without the rule).  The audit entries, persistent sandboxes across
# stop/start, and that nothing inside can lift the policy.
echo "== command policy"

cmd_dir=$(mktemp -d)
chmod 755 "$cmd_dir"
export AGENTKERNEL_STATE_DIR=$cmd_dir/state
mkdir -p "$AGENTKERNEL_STATE_DIR"
chmod 755 "$AGENTKERNEL_STATE_DIR"
cmd_audit=$cmd_dir/audit.jsonl
export AGENTKERNEL_AUDIT_LOG=$cmd_audit
EXEC_DENIED='[Pp]ermission denied'
LOADER=$(readlink -f /lib64/ld-linux-x86-64.so.2 2>/dev/null || readlink -f /lib/ld-linux-aarch64.so.1)
# A read-only volume the "repository" filled: a renamed copy of curl and a
# script naming python3 as its interpreter, directly and through env.
vol=$cmd_dir/vol
mkdir -p "$vol"
cp /usr/bin/curl "$vol/fetch"
printf '#!/usr/bin/python3\nprint("script ran")\n' >"$vol/direct.py"
printf '#!/usr/bin/env python3\nprint("script ran")\n' >"$vol/viaenv.py"
chmod -R a+rX "$vol"
chmod 755 "$vol"/*
# A writable directory shared with the sandbox, also with a copy of curl.
rw=$cmd_dir/rw
mkdir -p "$rw"
cp /usr/bin/curl "$rw/fetch"
chmod 777 "$rw"
chmod 755 "$rw/fetch"

# c [AK OPTIONS] -- SCRIPT: SCRIPT under sh in a sandbox, after the marker.
c () {
  local opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  "$AK" run -v "$vol:/opt/vol:ro" -v "$rw:/rw" "${opts[@]}" -- sh -c "echo $MARK; $1"
}
V='curl [0-9]+\.[0-9]+'

# -- a blocked program, every way of starting it
expect "control: curl runs without a rule" 0 "$V" -- c -- 'curl -V'
attack "blocked: by name on PATH (execvp through env)" 126 "env: .*curl.*: $EXEC_DENIED" -- \
  c --block-cmd curl -- 'env curl -V'
attack "blocked: by absolute path" 0 "/usr/bin/curl: $EXEC_DENIED" -- \
  c --block-cmd curl -- '/usr/bin/curl -V; true'
attack "blocked: by name from sh -c" 0 "curl: $EXEC_DENIED" -- c --block-cmd curl -- 'sh -c "curl -V"; true'
attack "blocked: through a symlink the command makes" 0 "/tmp/l: $EXEC_DENIED" -- \
  c --block-cmd curl -- 'ln -s /usr/bin/curl /tmp/l && /tmp/l -V; true'
expect "control: the same symlink runs without the rule" 0 "$V" -- \
  c -- 'ln -s /usr/bin/curl /tmp/l && /tmp/l -V'
attack "blocked: a renamed copy cannot be made (the program is unreadable)" 0 \
  "^cp=1 exists=no$" -- \
  c --block-cmd curl -- 'cp /usr/bin/curl /tmp/x 2>/dev/null; echo "cp=$? exists=$(test -e /tmp/x && echo yes || echo no)"'
expect "control: the copy is made and runs without the rule" 0 "$V" -- \
  c -- 'cp /usr/bin/curl /tmp/x && /tmp/x -V'
attack "blocked: a renamed copy the repository brought (read-only volume, same content)" 0 \
  "/opt/vol/fetch: $EXEC_DENIED" -- c --block-cmd curl -- '/opt/vol/fetch -V; true'
expect "control: that copy runs without the rule" 0 "$V" -- c -- '/opt/vol/fetch -V'
attack "blocked: a copy in a writable share (nothing writable executes under a policy)" 0 \
  "/rw/fetch: $EXEC_DENIED" -- c --block-cmd curl -- '/rw/fetch -V; true'
attack "blocked: a copy written to /tmp (nothing writable executes under a policy)" 0 \
  "/tmp/ls: $EXEC_DENIED" -- c --block-cmd curl -- 'cp /bin/ls /tmp/ls && /tmp/ls /; true'
expect "control: the copy in the writable share runs without a policy" 0 "$V" -- c -- '/rw/fetch -V'
attack "blocked: a copy the repository brought, moved into the private layer's /usr and /opt" 0 \
  "^usr=126 opt=126$" -- \
  c --block-cmd curl -- 'cp /rw/fetch /usr/f; /usr/f -V 2>/dev/null; u=$?; cp /rw/fetch /opt/f; /opt/f -V 2>/dev/null; echo "usr=$u opt=$?"'
expect "control: both run without a policy" 0 "^usr=0 opt=0$" -- \
  c -- 'cp /rw/fetch /usr/f; /usr/f -V >/dev/null; u=$?; cp /rw/fetch /opt/f; /opt/f -V >/dev/null; echo "usr=$u opt=$?"'
attack "blocked: through xargs" 0 "xargs: curl: $EXEC_DENIED" -- \
  c --block-cmd curl -- 'echo -V | xargs curl; true'
attack "blocked: through find -exec" 0 "find: .*/usr/bin/curl.*: $EXEC_DENIED" -- \
  c --block-cmd curl -- 'find /usr/bin -name curl -exec {} -V \; ; true'
expect "control: find -exec runs it without the rule" 0 "$V" -- \
  c -- 'find /usr/bin -name curl -exec {} -V \;'
attack "blocked: started by the dynamic loader" 0 "curl.*($EXEC_DENIED|failed to map)" -- \
  c --block-cmd curl -- "$LOADER /usr/bin/curl -V; true"
expect "control: the loader starts it without the rule" 0 "$V" -- c -- "$LOADER /usr/bin/curl -V"
attack "blocked: a hard link elsewhere is the same program" 0 "$EXEC_DENIED" -- \
  c --block-cmd /usr/bin/curl -- 'env curl -V; true'
attack "blocked: python's os.execv gets EACCES" 0 "errno 13" -- \
  c --block-cmd curl -- 'python3 -c "
import os
try:
    os.execv(\"/usr/bin/curl\", [\"curl\", \"-V\"])
except OSError as e:
    print(\"errno\", e.errno)
"'
attack "blocked: a script whose #! names a blocked interpreter" 0 "/opt/vol/direct.py: $EXEC_DENIED" -- \
  c --block-cmd python3 -- '/opt/vol/direct.py; true'
attack "blocked: a script whose #! runs a blocked interpreter through env" 0 "python3.*$EXEC_DENIED" -- \
  c --block-cmd python3 -- '/opt/vol/viaenv.py; true'
expect "control: both scripts run without the rule" 0 "script ran.*script ran" -- \
  c -- '/opt/vol/direct.py && /opt/vol/viaenv.py | tr "\n" " "; /opt/vol/direct.py'
expect "other programs still run under a block list" 0 "^bin$" -- \
  c --block-cmd curl -- 'ls / | grep -x bin'
attack "blocked: from a process started later (a background job)" 0 "env: .*curl.*: $EXEC_DENIED" -- \
  c --block-cmd curl -- '(sleep 0.2; env curl -V) & wait; true'

# -- the audit entry
: >"$cmd_audit"
# (The runs behind a check only where it runs: a subset on a slow backend.)
{ t_wanted "audit: policy_violation names the program and the rule" || t_wanted "audit list --denied shows it"; } &&
  c --block-cmd curl -- 'env curl -V' >/dev/null 2>&1
expect "audit: policy_violation names the program and the rule" 0 \
  '"event":"policy_violation".*"program":"/usr/bin/curl","exec":"/usr/bin/curl","rule":"block".*"entry":"curl"' -- \
  cat "$cmd_audit"
expect "audit list --denied shows it" 0 "policy_violation .* /usr/bin/curl deny \(block curl\)" -- \
  "$AK" audit list --denied
: >"$cmd_audit"
t_wanted "audit: an exec from a writable place" && c --block-cmd curl -- 'cp /bin/true /tmp/t; /tmp/t' >/dev/null 2>&1
expect "audit: an exec from a writable place" 0 '"program":"/tmp/t".*"rule":"not_program_tree"' -- cat "$cmd_audit"
: >"$cmd_audit"
t_wanted "audit: an exec outside the allow list" && c --allow-cmd sh -- 'ls' >/dev/null 2>&1
expect "audit: an exec outside the allow list" 0 '"program":"/usr/bin/ls".*"rule":"allowlist_only"' -- \
  cat "$cmd_audit"

# -- allowlist mode
expect "allowlist: an allowed program runs" 0 "^ok 3$" -- \
  c --allow-cmd sh --allow-cmd python3 -- 'python3 -c "print(\"ok\", 1 + 2)"'
attack "allowlist: any other program is refused" 0 "ls: $EXEC_DENIED" -- c --allow-cmd sh -- 'ls /; true'
expect "control: the same program without the policy" 0 "bin" -- c -- 'ls /'
attack "allowlist: env is not a way around" 0 "env: $EXEC_DENIED" -- \
  c --allow-cmd sh --allow-cmd python3 -- 'env python3 -c 1; true'
attack "allowlist: an allowed interpreter cannot exec what is not allowed" 0 "errno 13" -- \
  c --allow-cmd sh --allow-cmd python3 -- 'python3 -c "
import os
try:
    os.execv(\"/usr/bin/id\", [\"id\"])
except OSError as e:
    print(\"errno\", e.errno)
"'
# Bytes of a program that is not allowed, run from places outside the tree.
MEMFD='
import os, sys
data = open("/usr/bin/id", "rb").read()
for how in ("memfd", "tmpfile", "fexecve"):
    try:
        if how == "memfd":
            fd = os.memfd_create("x", 0)
            os.write(fd, data)
        elif how == "tmpfile":
            w = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o755)
            os.write(w, data)
            fd = os.open("/proc/self/fd/%d" % w, os.O_RDONLY)
            os.close(w)
        else:
            fd = os.open("/usr/bin/id", os.O_RDONLY)
    except OSError as e:
        print(how, "errno", e.errno, flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(fd, ["id"], {})
        except OSError as e:
            print(how, "errno", e.errno, flush=True)
            os._exit(1)
    os.waitpid(pid, 0)
'
attack "allowlist: no exec from a memfd, an O_TMPFILE file or by descriptor" 0 \
  "^memfd errno 13 tmpfile errno 13 fexecve errno 13 $" -- \
  c --allow-cmd sh --allow-cmd python3 --allow-cmd tr -- "python3 -c '$MEMFD' 2>&1 | tr '\\n' ' '"
expect "control: all three run without the policy" 0 "^(uid=[^ ]+ .*){3}" -- \
  c -- "python3 -c '$MEMFD' | tr '\\n' ' '"
attack "allowlist: the loader cannot start a program that is not allowed" 0 "id: .*(failed to map|$EXEC_DENIED)" -- \
  c --allow-cmd sh -- "$LOADER /usr/bin/id; true"
expect "control: the loader starts it without the policy" 0 "uid=" -- c -- "$LOADER /usr/bin/id"
attack "allowlist: block wins over allow" 0 "curl: $EXEC_DENIED" -- \
  c --allow-cmd sh --allow-cmd curl --block-cmd curl -- 'curl -V; true'
expect "allowlist: a script allowed by path runs with its #! interpreter" 0 "script ran" -- \
  c --allow-cmd sh --allow-cmd /opt/vol/viaenv.py -- '/opt/vol/viaenv.py'
if command -v npm >/dev/null 2>&1; then
  expect "allowlist: npm (#!/usr/bin/env node) runs when allowed" 0 '^[0-9]+\.[0-9]+' -- \
    c --allow-cmd sh --allow-cmd npm -- 'npm --version'
fi
attack "allowlist: a blocked interpreter stops an allowed script" 0 "$EXEC_DENIED" -- \
  c --allow-cmd sh --allow-cmd /opt/vol/direct.py --block-cmd python3 -- '/opt/vol/direct.py; true'

# -- a config file
cfgdir=$cmd_dir/project
mkdir -p "$cfgdir"
chmod 777 "$cfgdir"
printf '[security.commands]\nallow = ["sh", "python3", "git"]\nblock = ["curl", "wget", "nc"]\nallowlist_only = true\n' \
  >"$cfgdir/agentkernel.toml"
chmod 666 "$cfgdir/agentkernel.toml"
attack "config: [security.commands] from an untrusted agentkernel.toml applies" 0 "ls: $EXEC_DENIED" -- \
  bash -c 'cd "$1" && "$2" run -- sh -c "echo $3; python3 -c 1 && ls; true"' _ "$cfgdir" "$AK" "$MARK"
expect "config show: the resolved policy and where it came from" 0 \
  'allowlist_only = true  # config line 4.*"curl",  # config line 3' -- \
  bash -c 'cd "$1" && "$2" config show | tr "\n" " "' _ "$cfgdir" "$AK"
expect "config show --json: the policy" 0 '"commands": \{' -- \
  bash -c 'cd "$1" && "$2" config show --json' _ "$cfgdir" "$AK"
printf '[security.commands]\nblock = [\n  "curl",\n  "bin/wget",\n]\n' >"$cmd_dir/bad.toml"
expect "config: a malformed entry names file, line and entry" 125 \
  "bad.toml:4: \[security.commands\] block: entry 2: command entry 'bin/wget'" -- \
  "$AK" run --config "$cmd_dir/bad.toml" -- true
expect "cli: a malformed --block-cmd" 125 "--block-cmd: command entry '../curl'" -- \
  "$AK" run --block-cmd ../curl -- true
expect "cli: an empty --allow-cmd" 125 "--allow-cmd: empty command entry" -- "$AK" run --allow-cmd '' -- true

# -- where the kernel cannot enforce it, nothing runs
if [ -x "$AK_TEST_BIN" ]; then
  expect "no Landlock: a policy refuses to start, never runs unenforced" 125 "needs Landlock" -- \
    env AK_TEST_DISABLE=landlock "$AK_TEST_BIN" run --block-cmd curl -- true
fi

# -- persistent sandboxes: every exec, across stop/start, not removable inside
pdir=$cmd_dir/pwork
mkdir -p "$pdir"
chmod 777 "$pdir"
printf '[security.commands]\nblock = ["curl"]\n' >"$pdir/agentkernel.toml"
chmod 666 "$pdir/agentkernel.toml"
pname=akcmd-$$
expect "persistent: create with the project's policy" 0 "^$pname$" -- \
  bash -c 'cd "$1" && "$2" create "$3" --profile permissive --block-cmd wget' _ "$pdir" "$AK" "$pname"
expect "persistent: start" 0 '' -- "$AK" start "$pname"
attack "persistent: exec of a blocked program" 0 "curl.*$EXEC_DENIED" -- \
  "$AK" exec "$pname" -- sh -c "echo $MARK; env curl -V; true"
expect "persistent: exec of the blocked program itself is EACCES (126)" 126 "$EXEC_DENIED" -- \
  "$AK" exec "$pname" -- curl -V
expect "persistent: other programs run" 0 "^ok$" -- "$AK" exec "$pname" -- sh -c 'echo ok'
# Root inside where the sandbox maps one (a root caller on the container
# backend; the microvm backend runs no root on the host's view), else its user.
asroot=()
is_root && on_container && asroot=(--root)
attack "persistent: nothing inside can unmount the cover" 0 "^um=[1-9]" -- \
  "$AK" exec "$pname" "${asroot[@]}" -- sh -c "echo $MARK; umount /usr/bin/curl 2>/dev/null; echo um=\$?"
attack "persistent: the project's config rewritten from inside" 0 "^rewritten$" -- \
  "$AK" exec "$pname" -- sh -c "echo $MARK; printf '[security.commands]\n' >/workspace/agentkernel.toml && echo rewritten"
expect "persistent: stop" 0 '' -- "$AK" stop "$pname"
expect "persistent: start again" 0 '' -- "$AK" start "$pname"
attack "persistent: still blocked after the restart (the stored policy, not the file)" 0 "curl.*$EXEC_DENIED" -- \
  "$AK" exec "$pname" -- sh -c "echo $MARK; env curl -V; true"
attack "persistent: the CLI's entry too" 0 "wget.*$EXEC_DENIED" -- \
  "$AK" exec "$pname" -- sh -c "echo $MARK; env wget -V; true"
: >"$cmd_audit"
"$AK" exec "$pname" -- env curl -V >/dev/null 2>&1
expect "persistent: the audit entry names the sandbox" 0 \
  "\"event\":\"policy_violation\",\"sandbox\":\"$pname\".*\"program\":\"/usr/bin/curl\"" -- cat "$cmd_audit"
"$AK" rm -f "$pname" >/dev/null 2>&1 || "$AK" remove -f "$pname" >/dev/null 2>&1

# -- the HTTP API's and MCP's commands field
sock=$cmd_dir/api.sock
"$AK" serve --socket "$sock" >"$cmd_dir/serve.log" 2>&1 &
api_pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
api () { curl -sS --unix-socket "$sock" -X "$1" "http://localhost$2" ${3:+-d "$3"} -w ' http=%{http_code}'; }
attack "API: POST /run with commands.block" 0 "curl.*$EXEC_DENIED.*\"exit_code\":126" -- \
  api POST /run "{\"command\":[\"sh\",\"-c\",\"echo $MARK; env curl -V\"],\"commands\":{\"block\":[\"curl\"]}}"
expect "API: control, the same run without it" 0 "curl [0-9]" -- \
  api POST /run '{"command":["env","curl","-V"]}'
expect "API: a malformed entry is a 400 naming it" 0 "commands.allow\[0\]: command entry 'a/b'.* http=400" -- \
  api POST /run '{"command":["true"],"commands":{"allow":["a/b"]}}'
expect "API: an unknown field of commands is a 400" 0 "unknown field 'nope'.* http=400" -- \
  api POST /run '{"command":["true"],"commands":{"nope":[]}}'
aname=akcmdapi-$$
expect "API: POST /sandboxes with commands" 0 "http=201" -- \
  api POST /sandboxes "{\"name\":\"$aname\",\"commands\":{\"allow\":[\"sh\"]}}"
attack "API: exec in it runs under its allow list" 0 "ls.*$EXEC_DENIED" -- \
  api POST "/sandboxes/$aname/exec" "{\"command\":[\"sh\",\"-c\",\"echo $MARK; ls /\"]}"
api DELETE "/sandboxes/$aname" >/dev/null 2>&1
kill "$api_pid" 2>/dev/null
wait "$api_pid" 2>/dev/null
mcp_call () {
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"sandbox_run\",\"arguments\":$1}}" |
    timeout 60 "$AK" mcp-server 2>/dev/null | grep '"id":2'
}
attack "MCP: sandbox_run with commands.block" 0 '"exit_code":126.*curl.*Permission denied' -- \
  mcp_call "{\"command\":[\"sh\",\"-c\",\"echo $MARK; env curl -V\"],\"commands\":{\"block\":[\"curl\"]}}"
expect "MCP: a malformed entry is refused naming it" 0 "commands.block\[0\]: command entry '../x'" -- \
  mcp_call '{"command":["true"],"commands":{"block":["../x"]}}'
unset AGENTKERNEL_AUDIT_LOG AGENTKERNEL_STATE_DIR
