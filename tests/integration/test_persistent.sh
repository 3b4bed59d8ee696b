# Persistent sandboxes: create, start, exec, attach, cp, stop, remove, list,
# the audit log, and what survives crashes.

echo "== persistent sandboxes"
export AGENTKERNEL_STATE_DIR=$(mktemp -d)
export AGENTKERNEL_AUDIT_LOG=$AGENTKERNEL_STATE_DIR/audit.jsonl
chmod 755 "$AGENTKERNEL_STATE_DIR"
pwork=$(mktemp -d)
chmod 755 "$pwork"
echo from-host >"$pwork/hostfile"

expect "create" 0 '^pbox$' -- "$AK" create pbox --profile moderate -v "$PROBE:/probe:ro"
expect "create the same name again" 125 "already exists" -- "$AK" create pbox
expect "invalid name" 125 "invalid sandbox name" -- "$AK" create 'bad/name'
expect "name too long" 125 "invalid sandbox name" -- "$AK" create "$(printf 'a%.0s' $(seq 64))"
expect "create --label and --description" 0 '^lbox$' -- "$AK" create lbox --label team=ml --label env=dev --label team=core --description "two words"
expect "list --json shows the labels (the last value of a key wins) and the description" 0 \
  '"name": "lbox".*"labels": \{ "env": "dev", "team": "core" \}, "description": "two words"' -- \
  sh -c '"$1" list --json | tr -s " \n" " "' _ "$AK"
expect "list --json: labels {} when none" 0 '"name": "pbox".*"labels": \{\}' -- sh -c '"$1" list --json | tr -s " \n" " "' _ "$AK"
expect "create --label without =" 125 "must be KEY=VALUE" -- "$AK" create lbad --label novalue
expect "create --label with a bad key" 125 "invalid label key" -- "$AK" create lbad --label "a b=c"
expect "create --description with a control character" 125 "invalid description" -- "$AK" create lbad --description "$(printf 'a\001')"
expect "create --label with no value at all" 125 "needs a value" -- "$AK" create lbad --label
expect "a refused create leaves nothing" 1 '' -- test -e "$AGENTKERNEL_STATE_DIR/sandboxes/lbad"
expect "remove the labelled sandbox" 0 '' -- "$AK" remove lbox
expect "list: stopped" 0 'pbox +stopped +container +moderate +host' -- "$AK" list
expect "exec into a stopped sandbox" 125 "is not running" -- "$AK" exec pbox -- true
expect "exec into a missing sandbox" 125 "no such sandbox 'nobox'" -- "$AK" exec nobox -- true
expect "start" 0 '' -- "$AK" start pbox
expect "start twice" 125 "already running" -- "$AK" start pbox
expect "list: running" 0 'pbox +running' -- "$AK" list
expect "list --json" 0 '"status": "running"' -- "$AK" list --json

expect "exec: output and exit status" 3 '^out$' -- "$AK" exec pbox -- sh -c 'echo out; exit 3'
expect "exec: runs as the sandbox user" 0 'uid=1000\(user\)' -- "$AK" exec pbox -- id
expect "exec: -e and --workdir" 0 '^/tmp bar$' -- "$AK" exec pbox -e FOO=bar --workdir /tmp -- sh -c 'echo "$(pwd) $FOO"'
expect "exec: killed by a signal" 137 '' -- "$AK" exec pbox -- sh -c 'kill -KILL $$'
expect "exec: command not found" 127 'command not found' -- "$AK" exec pbox -- /nope
expect "exec: stderr arrives as it is written (nothing held back)" 0 '^got e$' -- \
  bash -c '"$1" exec pbox -- sh -c "echo e >&2; sleep 4" 2>&1 >/dev/null | { read -t 2 l && echo "got $l"; cat >/dev/null; }' _ "$AK"
expect "exec: default signal state, whatever the starter ignored" 0 'SigBlk:[[:space:]]0+ SigIgn:[[:space:]]0+$' -- \
  bash -c 'trap "" INT QUIT TERM HUP; "$1" create sigbox >/dev/null && "$1" start sigbox &&
           "$1" exec sigbox -- grep -E "SigBlk|SigIgn" /proc/self/status | tr "\n" " " | sed "s/ $//";
           "$1" remove --force sigbox' _ "$AK"
t_begin "exec: stdin EOF and binary data (4 MiB)"
tmp=$(mktemp -d)
head -c 4194304 /dev/urandom >"$tmp/in"
"$AK" exec pbox -- cat <"$tmp/in" >"$tmp/out" && cmp -s "$tmp/in" "$tmp/out" && pass || fail "differs"
t_begin "exec: stdout and stderr apart"
out=$("$AK" exec pbox -- sh -c 'echo o; echo e >&2' 2>"$tmp/err")
[ "$out" = o ] && [ "$(cat "$tmp/err")" = e ] && pass || fail "out=$out err=$(cat "$tmp/err")"
t_begin "exec: 8 at once"
for i in $(seq 8); do ("$AK" exec pbox -- sh -c "sleep 0.3; echo run-$i" >"$tmp/c$i" 2>&1; echo "rc=$?" >>"$tmp/c$i") & done
wait
okc=0
for i in $(seq 8); do grep -q "^run-$i$" "$tmp/c$i" && grep -q '^rc=0$' "$tmp/c$i" && okc=$((okc + 1)); done
[ "$okc" = 8 ] && pass || fail "$okc of 8"
rm -rf "$tmp"

echo "== persistent: profiles through exec"
expect "moderate: no /workspace" 1 'No such file' -- "$AK" exec pbox -- /probe read /workspace/hostfile
expect "moderate: no capabilities" 0 'CapEff:\s+0+$' -- "$AK" exec pbox -- /probe status CapEff
expect "moderate: seccomp" 1 denied -- "$AK" exec pbox -- /probe syscall unshare
expect "moderate: clean environment" 0 '^HOME=/home/user$' -- "$AK" exec pbox -- /probe env
if [ -n "${AK_TEST_HOST:-}" ]; then
  expect "moderate: network" 0 connected -- "$AK" exec pbox -- /probe connect "$AK_TEST_HOST" 8080
fi
( cd "$pwork" && "$AK" create rbox --profile restrictive -v "$PROBE:/probe:ro" >/dev/null && "$AK" start rbox )
expect "restrictive: read-only root" 1 'Read-only' -- "$AK" exec rbox -- /probe write /x
expect "restrictive: /tmp writable" 0 written -- "$AK" exec rbox -- /probe write /tmp/x
expect "restrictive: no network" 1 unreachable -- "$AK" exec rbox -- /probe connect 10.0.2.2 53
expect "restrictive: ptrace refused" 1 denied -- "$AK" exec rbox -- /probe syscall ptrace
expect "restrictive: Landlock" 1 'Permission denied' -- "$AK" exec rbox -- /probe write /proc/self/comm
"$AK" create wbox --profile permissive --dir "$pwork" -v "$PROBE:/probe:ro" >/dev/null && "$AK" start wbox
expect "permissive: --dir at /workspace" 0 from-host -- "$AK" exec wbox -- cat /workspace/hostfile
expect "permissive: /workspace writable" 0 written -- "$AK" exec wbox -- /probe write /workspace/from-sandbox
t_begin "permissive: the write reached the host directory"
[ -f "$pwork/from-sandbox" ] && pass || fail "missing"
if is_root; then
  expect "exec --root: uid 0 inside, no capabilities" 0 'Uid:\s+0\s+0' -- "$AK" exec --root pbox -- /probe status Uid
  expect "exec --root: still no capabilities" 0 'CapEff:\s+0+$' -- "$AK" exec --root pbox -- /probe status CapEff
else
  expect "exec --root without a mapped root: clear error" 125 'maps no uid 0' -- "$AK" exec --root pbox -- id
fi

echo "== persistent: files persist across stop/start"
"$AK" exec pbox -- sh -c 'echo kept >/home/user/keep; mkdir -p /opt/tool && echo t >/opt/tool/t'
expect "stop" 0 '' -- "$AK" stop pbox
expect "list: stopped after stop" 0 'pbox +stopped' -- "$AK" list
expect "stop is idempotent" 0 '' -- "$AK" stop pbox
expect "start again" 0 '' -- "$AK" start pbox
expect "home survived" 0 '^kept$' -- "$AK" exec pbox -- cat /home/user/keep
expect "private layer survived" 0 '^t$' -- "$AK" exec pbox -- cat /opt/tool/t

echo "== persistent: cp"
cpd=$(mktemp -d)
mkdir -p "$cpd/tree/sub"
echo one >"$cpd/tree/sub/one"
printf '#!/bin/sh\necho script\n' >"$cpd/tree/run.sh"
chmod 755 "$cpd/tree/run.sh"
chmod 750 "$cpd/tree/sub"
expect "cp a file in" 0 '' -- "$AK" cp "$pwork/hostfile" pbox:/home/user/copied
expect "the file is inside" 0 from-host -- "$AK" exec pbox -- cat /home/user/copied
expect "cp a directory in" 0 '' -- "$AK" cp "$cpd/tree" pbox:/home/user/
expect "modes kept inside" 0 '^750 755$' -- sh -c "$AK exec pbox -- stat -c %a /home/user/tree/sub /home/user/tree/run.sh | paste -sd' '"
expect "scripts stay executable" 0 '^script$' -- "$AK" exec pbox -- /home/user/tree/run.sh
expect "cp a directory out" 0 '' -- "$AK" cp pbox:/home/user/tree "$cpd/back"
t_begin "directory came back intact, modes kept"
[ "$(cat "$cpd/back/sub/one")" = one ] && [ "$(stat -c %a "$cpd/back/sub")" = 750 ] && [ "$(stat -c %a "$cpd/back/run.sh")" = 755 ] && pass || fail "$(ls -lR "$cpd/back")"
expect "cp a missing file out" 125 'No such file' -- "$AK" cp pbox:/nope "$cpd/x"
expect "cp with no sandbox side" 125 'exactly one' -- "$AK" cp "$cpd/a" "$cpd/b"
expect "cp with two sandbox sides" 125 'exactly one' -- "$AK" cp pbox:/a pbox:/b
expect "cp with a relative inside path" 125 'must be absolute' -- "$AK" cp pbox:etc/hosts "$cpd/x"
expect "cp into a stopped or missing sandbox" 125 "no such sandbox" -- "$AK" cp "$pwork/hostfile" nobox:/tmp/x
# Escapes: a symlink or ".." inside resolves in the sandbox's own view.
"$AK" exec pbox -- ln -sf /etc/passwd /home/user/link
expect "cp out of a symlink to outside: not created, named" 0 'link -> /etc/passwd not created' -- \
  "$AK" cp pbox:/home/user/link "$cpd/link"
t_begin "the host's /etc/passwd did not come out (neither its content nor a link to it)"
[ ! -e "$cpd/link" ] && [ ! -L "$cpd/link" ] && pass || fail "$(ls -l "$cpd/link")"
"$AK" exec pbox -- ln -sfn / /home/user/rootlink
expect "cp out of a directory symlink: the sandbox's files" 0 '' -- "$AK" cp pbox:/home/user/rootlink/etc/passwd "$cpd/pw"
refute "the sandbox's passwd, not the host's" '^daemon:|^aktest:' -- cat "$cpd/pw"
expect "cp in with .. stays inside" 0 '' -- "$AK" cp "$pwork/hostfile" "pbox:/home/user/../../../../tmp/ak-escape-test"
t_begin "nothing written on the host by .."
[ ! -e /tmp/ak-escape-test ] && pass || fail "host /tmp/ak-escape-test exists"
expect "it landed in the sandbox's /tmp" 0 from-host -- "$AK" exec pbox -- cat /tmp/ak-escape-test
rm -rf "$cpd"

echo "== persistent: attach"
if command -v script >/dev/null; then
  t_begin "attach: interactive shell on a real PTY"
  out=$( (sleep 1; printf 'echo $((6*7)); tty; stty size; exit\n'; sleep 1) | script -qefc "stty cols 100 rows 30; $AK attach pbox" /dev/null 2>&1)
  # The client's TERM is passed: readline's escapes (bracketed paste) and
  # carriage returns are taken out before looking at the lines.
  echo "$out" | tr -d '\r' | sed 's/\x1b\[[?0-9;]*[a-zA-Z]//g' | grep -q '^42$' && echo "$out" | grep -q '/dev/pts/' && echo "$out" | grep -q '30 100' && pass || fail "$out"
  t_begin "attach: Ctrl-C reaches the foreground process only"
  out=$( (sleep 1; printf 'sleep 100\n'; sleep 1; printf '\003'; sleep 0.5; printf 'echo alive-$((1+1))\nexit\n'; sleep 1) | script -qefc "$AK attach pbox" /dev/null 2>&1)
  echo "$out" | grep -q 'alive-2' && pass || fail "$out"
  t_begin "attach --record: an asciicast file that replays"
  rm -rf "$HOME/.agentkernel/recordings"
  (sleep 1; printf 'echo recorded-$((2*3))\nexit\n'; sleep 1) | script -qefc "$AK attach --record pbox" /dev/null >/dev/null 2>&1
  cast=$(ls "$HOME"/.agentkernel/recordings/pbox-*.cast 2>/dev/null | head -1)
  if [ -n "$cast" ] && head -1 "$cast" | grep -q '"version": *2' && "$AK" replay --speed 100 "$cast" | grep -q 'recorded-6'; then pass; else fail "cast: $cast"; fi
fi

echo "== persistent: detached commands"
did=$("$AK" exec --detach pbox -- sh -c 'echo d-out; echo d-err >&2; sleep 1; exit 5')
expect "exec --detach returns an id at once" 0 '"status": "running"' -- "$AK" detached pbox status "$did"
sleep 1.8
expect "detached: exit code once ended" 0 '"exit_code": 5' -- "$AK" detached pbox status "$did"
expect "detached: stdout" 0 '^d-out$' -- "$AK" detached pbox logs "$did"
expect "detached: stderr" 0 '^d-err$' -- "$AK" detached pbox logs "$did" --stderr
did2=$("$AK" exec --detach pbox -- sh -c 'sleep 200; : ak-detached-marker')
expect "detached: list" 0 "$did2" -- "$AK" detached pbox list
expect "detached: kill" 0 '' -- "$AK" detached pbox kill "$did2"
expect "detached: killed is exited 137" 0 '"exit_code": 137' -- "$AK" detached pbox status "$did2"
t_begin "detached: the killed command is gone"
sleep 0.5
[ -z "$(ps -eo stat=,args= | awk '$1 !~ /^Z/ && /ak-detached-marker/ && !/awk/')" ] && pass || fail "still running"
expect "detached: bad id" 125 "invalid command id" -- "$AK" detached pbox status ../../etc
expect "detached: unknown id" 125 "no such detached command" -- "$AK" detached pbox status 0123456789abcdef
expect "detached: into a stopped sandbox" 125 "is not running" -- sh -c "$AK create dstop >/dev/null; $AK exec --detach dstop -- true; rc=\$?; $AK remove dstop; exit \$rc"

echo "== persistent: crashes"
t_begin "exec client killed: its command ends too"
m="ak-pmarker-$RANDOM"
"$AK" exec pbox -- sh -c "sleep 200; : $m" >/dev/null 2>&1 &
cl=$!
sleep 1
kill -9 "$cl"; wait "$cl" 2>/dev/null
sleep 0.5
left=$(ps -eo stat=,args= | awk -v m="$m" '$1 !~ /^Z/ && index($0, m) && !/awk/ && !/agentkernel/')
[ -z "$left" ] && pass || fail "$left"
t_begin "supervisor killed -9: list tells the truth"
sup=$("$AK" list --json | awk '/"name": "rbox"/{f=1} f && /uuid/{exit}' >/dev/null; cat "$AGENTKERNEL_STATE_DIR/sandboxes/rbox/state.json" | sed -n 's/.*"supervisor_pid": *\([0-9]*\).*/\1/p')
if [ -n "$sup" ] && kill -9 "$sup" 2>/dev/null; then
  sleep 0.5
  "$AK" list | grep -Eq 'rbox +stopped' && pass || fail "$("$AK" list)"
else
  fail "no supervisor pid ($sup)"
fi
expect "and it starts again" 0 '' -- "$AK" start rbox
expect "remove a running sandbox without --force" 125 'is running' -- "$AK" remove pbox
expect "remove --force" 0 '' -- "$AK" remove --force pbox rbox wbox
expect "removed from the list" 0 '^NAME' -- sh -c "$AK list | grep -v '^NAME' | grep -q . && echo left || $AK list"
t_begin "no sandbox process left"
sleep 0.5
left=$(ps -eo stat=,args= | awk '$1 !~ /^Z/ && /agentkernel start|ak-pmarker/ && !/awk/')
[ -z "$left" ] && pass || fail "$left"
t_begin "no state left"
[ -z "$(ls -A "$AGENTKERNEL_STATE_DIR/sandboxes" 2>/dev/null)" ] && pass || fail "$(ls -A "$AGENTKERNEL_STATE_DIR/sandboxes")"
expect "remove a missing sandbox" 125 "no such sandbox" -- "$AK" remove pbox

t_begin "concurrent creates of one name: exactly one wins"
for i in $(seq 8); do ("$AK" create racer >/dev/null 2>&1; echo $? >"$AGENTKERNEL_STATE_DIR/r$i") & done
wait
wins=$(cat "$AGENTKERNEL_STATE_DIR"/r* | grep -c '^0$')
[ "$wins" = 1 ] && pass || fail "$wins winners"
"$AK" remove racer >/dev/null 2>&1

echo "== run --keep"
expect "run --keep runs the command" 0 'kept-output' -- "$AK" run --keep --name keeper -- echo kept-output
expect "and leaves the sandbox running" 0 'keeper +running' -- "$AK" list
expect "which takes more commands" 0 '^1000$' -- "$AK" exec keeper -- id -u
"$AK" remove --force keeper >/dev/null

echo "== audit log"
expect "audit path" 0 "^$AGENTKERNEL_AUDIT_LOG$" -- "$AK" audit path
for ev in sandbox_created sandbox_started command_executed file_written file_read session_attached sandbox_stopped sandbox_removed; do
  expect "audit: $ev" 0 "\"event\":\"$ev\"" -- "$AK" audit list --sandbox pbox --json
done
expect "audit entries carry timestamp, pid, user" 0 '"timestamp":"[0-9-]+T[0-9:.]+Z".*"pid":[0-9]+.*"user":"' -- sh -c "$AK audit list --json | head -1"
expect "audit: command and exit code" 0 '"command":\["sh","-c","echo out; exit 3"\].*"exit_code":3|"exit_code":3.*"command":\["sh","-c","echo out; exit 3"\]' -- "$AK" audit list --sandbox pbox --json
expect "audit: exec is on record before it starts (command_started)" 0 '"event":"command_started".*"command":\["sh","-c","echo out; exit 3"\]' -- "$AK" audit list --sandbox pbox --json
"$AK" run -- echo audit-run >/dev/null
expect "audit: run writes command_started then command_executed" 0 '^command_started command_executed $' -- sh -c "grep '\"command\":\[\"echo\",\"audit-run\"\]' '$AGENTKERNEL_AUDIT_LOG' | sed 's/.*\"event\":\"\([a-z_]*\)\".*/\1/' | tr '\n' ' '"
t_begin "audit: a run whose client is SIGKILLed is on record (command_started)"
"$AK" run -- sleep 30 >/dev/null 2>&1 &
akpid=$!
sleep 1
kill -9 "$akpid"
wait "$akpid" 2>/dev/null
if grep -q '"event":"command_started","command":\["sleep","30"\]' "$AGENTKERNEL_AUDIT_LOG"; then pass; else fail "no command_started for sleep 30: $(tail -3 "$AGENTKERNEL_AUDIT_LOG")"; fi
t_begin "AGENTKERNEL_AUDIT=0 disables it"
before=$(wc -l <"$AGENTKERNEL_AUDIT_LOG")
AGENTKERNEL_AUDIT=0 "$AK" create quiet >/dev/null; AGENTKERNEL_AUDIT=0 "$AK" remove quiet >/dev/null
[ "$(wc -l <"$AGENTKERNEL_AUDIT_LOG")" = "$before" ] && pass || fail "log grew"

rm -rf "$pwork"
unset AGENTKERNEL_STATE_DIR AGENTKERNEL_AUDIT_LOG
