# agentkernel's documented command lines (docs/compat.md, "CLI"), the
# README's examples as written, help, completions and the man page.

echo "== agentkernel's command lines"
saved_state=${AGENTKERNEL_STATE_DIR-}
saved_audit=${AGENTKERNEL_AUDIT_LOG-}
export AGENTKERNEL_STATE_DIR=$(mktemp -d)
export AGENTKERNEL_AUDIT_LOG=$AGENTKERNEL_STATE_DIR/audit.jsonl
chmod 755 "$AGENTKERNEL_STATE_DIR"
cw=$(mktemp -d)
chmod 755 "$cw"

# -- the sandbox group -------------------------------------------------------
expect "sandbox create" 0 '^cbox$' -- "$AK" sandbox create cbox
expect "sb list: the group's alias" 0 'cbox +stopped' -- "$AK" sb list
expect "list: the top-level verb stays" 0 'cbox +stopped' -- "$AK" list
expect "sandbox start" 0 '' -- "$AK" sandbox start cbox
expect "sandbox exec" 0 '^in-cbox$' -- "$AK" sandbox exec cbox -- echo in-cbox
expect "sb info: status, profile, image, backend, limits" 0 \
  'Status: +running.*Profile: +moderate.*Image: +host.*Backend: +container.*Expires: +never.*Limits: +memory' -- \
  sh -c '"$1" sb info cbox | tr "\n" " "' _ "$AK"
expect "sandbox info --json" 0 '"status": "running".*"limits"' -- sh -c '"$1" sandbox info cbox --json | tr "\n" " "' _ "$AK"
expect "info of a missing sandbox" 125 "no such sandbox 'nobox'" -- "$AK" sandbox info nobox
expect "sandbox: an unknown verb" 125 "unknown verb 'frob'" -- "$AK" sandbox frob
expect "sandbox: a top-level-only command is no verb" 125 "unknown verb 'serve'" -- "$AK" sb serve
expect "sandbox cp in and out" 0 '^copied$' -- sh -c 'echo copied >"$2/f" && "$1" sb cp "$2/f" cbox:/tmp/f && "$1" sb cp cbox:/tmp/f "$2/g" && cat "$2/g"' _ "$AK" "$cw"

# -- TTL: create --ttl, extend-ttl, gc -----------------------------------------
expect "create --ttl sets the expiry" 0 'Expires: +20[0-9-]+T' -- sh -c '"$1" sandbox create tbox --ttl 30m >/dev/null && "$1" sb info tbox' _ "$AK"
t_begin "extend-ttl: default 1h, added to the current expiry"
e1=$("$AK" sb info tbox --json | sed -n 's/.*"expires_at": "\(.*\)".*/\1/p')
out=$("$AK" sandbox extend-ttl tbox 2>&1)
e2=$("$AK" sb info tbox --json | sed -n 's/.*"expires_at": "\(.*\)".*/\1/p')
d=$(( $(date -d "$e2" +%s) - $(date -d "$e1" +%s) ))
[ "$d" = 3600 ] && printf '%s' "$out" | grep -q "tbox expires at $e2" && pass || fail "from $e1 to $e2 ($d s): $out"
expect "extend-ttl --by 2h" 0 'tbox expires at' -- "$AK" sandbox extend-ttl tbox --by 2h
expect "extend-ttl: a bad duration" 125 "invalid duration 'soon'" -- "$AK" sandbox extend-ttl tbox --by soon
expect "extend-ttl: a missing sandbox" 125 "no such sandbox" -- "$AK" sandbox extend-ttl nobox
expect "create --ttl: a bad duration changes nothing" 125 "invalid duration" -- "$AK" create xbox --ttl 5y
refute "create --ttl: nothing recorded" 'xbox' -- "$AK" list
"$AK" create gbox --ttl 1s >/dev/null
sleep 2
expect "gc removes what expired, without a server" 0 'removed 1 expired sandbox$' -- "$AK" sandbox gc
refute "gc: the expired one is gone" 'gbox' -- "$AK" list
expect "gc: the others stay" 0 'tbox.*cbox|cbox.*tbox' -- sh -c '"$1" list | tr "\n" " "' _ "$AK"

# -- clean ---------------------------------------------------------------------
expect "clean without --yes, stdin not a terminal: refused" 125 'confirm with --yes' -- "$AK" sandbox clean </dev/null
expect "clean: nothing was removed" 0 'tbox' -- "$AK" list
expect "clean --dry-run lists the stopped ones only" 0 '^tbox$' -- "$AK" sandbox clean --dry-run
expect "clean -y removes every stopped sandbox" 0 'removing tbox' -- "$AK" sandbox clean -y
refute "clean: the stopped one is gone" 'tbox' -- "$AK" list
expect "clean: the running one stays" 0 'cbox +running' -- "$AK" list

# -- export ----------------------------------------------------------------------
"$AK" exec cbox -- sh -c 'mkdir -p /home/user/proj && echo exported >/home/user/proj/file'
expect "export -o: a tar of the working directory" 0 'proj/file' -- sh -c '"$1" sandbox export cbox -o "$2/x.tar" && tar -tf "$2/x.tar"' _ "$AK" "$cw"
expect "export: the content, under the directory's name" 0 '^exported$' -- tar -xOf "$cw/x.tar" user/proj/file
expect "export --path to standard output" 0 'file' -- sh -c '"$1" sandbox export cbox --path /home/user/proj | tar -tf -' _ "$AK"
expect "export of a stopped sandbox" 125 'not running' -- sh -c '"$1" create sbox >/dev/null && "$1" export sbox -o "$2/y.tar"' _ "$AK" "$cw"
t_begin "export: a failed export leaves no file"
[ ! -e "$cw/y.tar" ] && [ -z "$(ls "$cw" | grep partial)" ] && pass || fail "$(ls "$cw")"
"$AK" remove sbox >/dev/null

# -- run's flags -------------------------------------------------------------------
expect "run -F (accepted)" 0 '^fast$' -- "$AK" run -F -- echo fast
expect "run -B container" 0 '^b$' -- "$AK" run -B container -- echo b
expect "run -B: an unknown backend" 125 "backend" -- "$AK" run -B nosuch -- true
expect "run -i host" 0 '^i$' -- "$AK" run -i host -- echo i
printf '[resources]\nmemory_mb = 300\n' >"$cw/c.toml"
expect "run -c FILE" 0 'memory_mb = 300' -- "$AK" config show -c "$cw/c.toml"
expect "run --name without --keep is an error" 125 'add --keep' -- "$AK" run --name nokeep -- true
expect "run --ttl without --keep is an error" 125 'add --keep' -- "$AK" run --ttl 1h -- true
expect "run -k --name --ttl" 0 '^kept-run$' -- "$AK" run -k --name kbox --ttl 1h -- echo kept-run
expect "run -k: the sandbox stays, running, with its expiry" 0 'Status: +running.*Expires: +20' -- sh -c '"$1" info kbox | tr "\n" " "' _ "$AK"
"$AK" remove --force kbox >/dev/null

t_begin "run --branch: named after the project and branch, reused"
proj=$cw/My.Proj
mkdir -p "$proj/.git" && chmod 755 "$proj" "$proj/.git" && echo 'ref: refs/heads/feature/Login#2' >"$proj/.git/HEAD"
o1=$(cd "$proj" && "$AK" run --branch -- sh -c 'echo one >/home/user/mark' 2>&1)
o2=$(cd "$proj" && "$AK" run --branch -- cat /home/user/mark 2>&1)
if "$AK" list | grep -q '^My-Proj-feature-Login-2 ' && printf '%s' "$o2" | grep -qx one \
   && printf '%s' "$o2" | grep -q 'reusing sandbox My-Proj-feature-Login-2'; then pass; else fail "$o1 / $o2 / $("$AK" list)"; fi
# Never reused with other isolation than asked for, nor for another
# directory whose repository gives the same name.
expect "run --branch: an existing sandbox is not reused with other settings" 125 'exists with other settings' -- \
  sh -c 'cd "$1" && "$2" run --branch --no-network -- true' _ "$proj" "$AK"
proj2=$cw/My-Proj
mkdir -p "$proj2/.git" && chmod 755 "$proj2" "$proj2/.git" && echo 'ref: refs/heads/feature/Login-2' >"$proj2/.git/HEAD"
expect "run --branch: a name that collides is not another project's sandbox" 125 'exists for another directory' -- \
  sh -c 'cd "$1" && "$2" run --branch -- true' _ "$proj2" "$AK"
"$AK" remove --force My-Proj-feature-Login-2 >/dev/null 2>&1
expect "run --branch outside a git work tree" 125 'not inside a git work tree' -- sh -c 'cd / && "$1" run --branch -- true' _ "$AK"

# -- exec --sudo, attach -------------------------------------------------------------
t_begin "exec --sudo is --root, with root's HOME"
out=$("$AK" exec --sudo cbox -- sh -c 'echo "$(id -u) $HOME"' 2>&1)
if [ "$out" = "0 /root" ]; then pass
elif printf '%s' "$out" | grep -q 'maps no uid 0'; then skip_lacks "this user's sandboxes map no uid 0"
else fail "$out"; fi
expect "exec: the user's HOME" 0 '^/home/user$' -- "$AK" exec cbox -- sh -c 'echo $HOME'
expect "attach NAME extra: refused" 125 "unexpected argument 'extra'" -- "$AK" attach cbox extra
expect "attach with stdin at its end ends" 0 '' -- timeout 60 "$AK" sandbox attach cbox </dev/null
expect "attach reads a script from stdin" 0 '^attached-3$' -- sh -c 'echo "echo attached-\$((1+2))" | timeout 60 "$1" attach cbox' _ "$AK"
t_begin "attach ends on SIGTERM"
mkfifo "$cw/fifo"
( sleep 120 >"$cw/fifo" ) & holder=$!
timeout 60 "$AK" attach cbox <"$cw/fifo" >/dev/null 2>&1 & ap=$!
sleep 2
kill -TERM "$ap"
wait "$ap"; rc=$?
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
[ "$rc" != 124 ] && [ "$rc" != 0 ] && pass || fail "status $rc (124: still running after 60 s)"
expect "attach --record PATH" 0 'rec-marker' -- sh -c 'echo "echo rec-marker" | "$1" attach cbox --record "$2/s.cast" >/dev/null 2>&1; head -1 "$2/s.cast" | grep -q "\"version\": *2" && cat "$2/s.cast"' _ "$AK" "$cw"
if command -v script >/dev/null; then
  expect "attach on a terminal passes TERM" 0 'term=vt220-ak' -- \
    sh -c 'printf "echo term=\$TERM; exit\n" | timeout 60 script -qec "env TERM=vt220-ak $1 attach cbox" /dev/null' _ "$AK"
fi

# -- create's validation --------------------------------------------------------------
expect "create --image that cannot be resolved fails at create" 125 'image nosuch-image-ak' -- "$AK" create ibox --image nosuch-image-ak:1
refute "create --image: nothing recorded" 'ibox' -- "$AK" list

# -- audit in agentkernel's syntax --------------------------------------------------------
t_begin "audit -n 5: the last five entries"
n=$("$AK" audit -n 5 | wc -l); all=$("$AK" audit | wc -l)
[ "$n" = 5 ] && [ "$all" -gt 5 ] && [ "$("$AK" audit -n 5 | tail -1)" = "$("$AK" audit | tail -1)" ] && pass || fail "$n of $all"
expect "audit --sandbox X --json" 0 '"sandbox":"cbox"' -- "$AK" audit --sandbox cbox --json -n 1
refute "audit --sandbox: only that sandbox" '"sandbox":"(tbox|kbox)"' -- "$AK" audit --sandbox cbox --json
expect "audit --path" 0 "^$AGENTKERNEL_AUDIT_LOG\$" -- "$AK" audit --path
expect "audit list: the old form stays" 0 'sandbox_created' -- "$AK" audit list --sandbox cbox
expect "audit -n: a bad number" 125 "invalid -n" -- "$AK" audit -n many

# -- named volumes ---------------------------------------------------------------------
expect "volume create" 0 '^cache$' -- "$AK" volume create cache
expect "volume create: twice" 125 "already exists" -- "$AK" volume create cache
expect "volume create: an invalid name" 125 "invalid volume name" -- "$AK" volume create 'Bad/Name'
expect "volume list" 0 'cache' -- "$AK" volume list
expect "a volume keeps what one sandbox wrote for the next" 0 '^kept$' -- \
  sh -c '"$1" run -v cache:/cache -- sh -c "echo kept >/cache/f" && "$1" run --volume cache:/data:ro -- cat /data/f' _ "$AK"
attack "a read-only volume refuses writes" 0 'Read-only file system' -- \
  "$AK" run -v cache:/data:ro -- sh -c "echo $MARK; echo x >/data/g; true"
expect "volume info" 0 'Size: +[0-9]+ bytes in 1 files' -- "$AK" volume info cache
expect "a volume named in create is in use" 0 '^vbox$' -- "$AK" create vbox -v cache:/cache
expect "volume delete while a sandbox uses it: refused" 125 "used by sandbox 'vbox'" -- "$AK" volume delete cache
expect "volume info: used by" 0 'Used by: +vbox' -- "$AK" volume info cache
"$AK" remove vbox >/dev/null
expect "volume delete" 0 '^cache$' -- "$AK" volume delete cache
refute "volume delete: gone" 'cache' -- "$AK" volume list
expect "-v NAME:/path with an invalid name" 125 "neither a path" -- "$AK" run -v 'Caps:/x' -- true
attack "the volumes directory itself is never shown (agentkernel's state)" 0 '^ak-ran-7f3c 0$' -- \
  sh -c '"$1" volume create other >/dev/null; "$1" run -v "$2/volumes:/v" -- sh -c "echo $3 \$(ls -A /v | wc -l)"' _ "$AK" "$AGENTKERNEL_STATE_DIR" "$MARK"
"$AK" volume delete other >/dev/null
# A run holds its volumes until it ends (a run is never recorded, so only
# the lock it holds keeps a delete from removing the files under it).
held=$(mktemp -d /tmp/ak-held.XXXXXX); chmod 755 "$held"
expect "volume delete while a run holds the volume: refused, the run keeps its files" 0 \
  '^refused: .*in use by a sandbox that is starting or running \| kept$' -- sh -c '
  "$1" run -v held:/c -- sh -c "echo kept >/c/f; i=0; while [ ! -e /c/go ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i+1)); done; cat /c/f" >"$3/out" 2>"$3/err" &
  i=0; while [ ! -e "$2/f" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
  r=$("$1" volume delete held 2>&1); touch "$2/go"; wait; echo "refused: $r | $(cat "$3/out")"' \
  _ "$AK" "$AGENTKERNEL_STATE_DIR/volumes/held" "$held"
expect "control: once the run has ended, the volume is deleted" 0 '^held$' -- "$AK" volume delete held
rm -rf "$held"
expect "config show -v NAME:/path: where the volume would be" 0 '^# volume: .*/volumes/shown -> /x$' -- \
  "$AK" config show -v shown:/x
refute "config show -v NAME:/path: no volume is created" 'shown' -- "$AK" volume list

# -- the README's examples, as written, under the default profile ------------------------
echo "== README examples"
readme=$cw/readme
mkdir -p "$readme" && chmod 755 "$readme"
printf 'print("untrusted ran")\n' >"$readme/untrusted_script.py"
printf '#!/bin/sh\necho "script ran with ${API_KEY:-no key}"\n' >"$readme/script.sh"
printf '#!/bin/sh\necho built\n' >"$readme/build.sh"
printf 'test:\n\t@echo make test ran\n' >"$readme/Makefile"
chmod 755 "$readme/script.sh" "$readme/build.sh"
chmod 644 "$readme/untrusted_script.py" "$readme/Makefile"
expect "run --profile restrictive python3 untrusted_script.py" 0 '^untrusted ran$' -- \
  sh -c 'cd "$2" && "$1" run --profile restrictive python3 untrusted_script.py' _ "$AK" "$readme"
attack "the script shown to restrictive is read-only" 0 'Read-only|Permission denied' -- \
  sh -c 'cd "$2" && "$1" run --profile restrictive sh -c "echo $3; echo x >>untrusted_script.py" untrusted_script.py; true' _ "$AK" "$readme" "$MARK"
expect "run --profile permissive -- make test" 0 'make test ran' -- \
  sh -c 'cd "$2" && "$1" run --profile permissive -- make test' _ "$AK" "$readme"
expect "run -e API_KEY=... -- ./script.sh" 0 'script ran with k1' -- \
  sh -c 'cd "$2" && API_KEY=k1 && "$1" run -e API_KEY="$API_KEY" -- ./script.sh' _ "$AK" "$readme"
expect "run --no-network --memory 256 -- ./build.sh" 0 '^built$' -- \
  sh -c 'cd "$2" && "$1" run --no-network --memory 256 -- ./build.sh 2>&1 | grep -v "warning: resource limits"' _ "$AK" "$readme"
expect "create dev --profile moderate --dir ~/project" 0 '^rdev$' -- "$AK" create rdev --profile moderate --dir "$readme"
"$AK" start rdev
expect "exec dev -- make test (--dir shows the directory)" 0 'make test ran' -- "$AK" exec rdev -- make test
expect "exec dev -e API_KEY=... --workdir /workspace -- ./script.sh" 0 'script ran with k2' -- \
  "$AK" exec rdev -e API_KEY=k2 --workdir /workspace -- ./script.sh
expect "cp ./src dev:/home/user/" 0 '^untrusted_script.py$' -- \
  sh -c 'cd "$2" && mkdir -p src && cp untrusted_script.py src/ && "$1" cp ./src rdev:/home/user/ && "$1" exec rdev -- ls /home/user/src' _ "$AK" "$readme"
expect "cp dev:/home/user/out.txt ." 0 '^out$' -- \
  sh -c 'cd "$2" && "$1" exec rdev -- sh -c "echo out >/home/user/out.txt" && "$1" cp rdev:/home/user/out.txt . && cat out.txt' _ "$AK" "$readme"
expect "run --keep --name scratch --profile permissive -- make test" 0 'make test ran' -- \
  sh -c 'cd "$2" && "$1" run --keep --name rscratch --profile permissive -- make test' _ "$AK" "$readme"
"$AK" remove --force rdev rscratch cbox >/dev/null 2>&1

# -- config show ----------------------------------------------------------------------------
expect "config show: volumes, env names (not values), hostname, workdir" 0 \
  '^# hostname: hh # workdir: /w # environment set \(names only; values not shown\): FOO # volume: /tmp -> /x \(read-only\)' -- \
  sh -c '"$1" config show -v /tmp:/x:ro -e FOO=s3cret --hostname hh -w /w | grep "^# [hwev]" | tr "\n" " "' _ "$AK"
refute "config show: an env value is never printed" 's3cret' -- "$AK" config show -e FOO=s3cret
expect "config show --json: the same" 0 '"hostname": "hh".*"workdir": "/w".*"env_names": \[ *"FOO" *\].*"dest": "/x"' -- \
  sh -c '"$1" config show -v /tmp:/x -e FOO=s --hostname hh -w /w --json | tr -d "\n"' _ "$AK"

# -- permissive's environment -------------------------------------------------------------
mkdir -p "$cw/fakehome" && chmod 755 "$cw/fakehome"
expect "permissive: HOME is the home inside, not the host's" 0 '^/home/user$' -- \
  env HOME="$cw/fakehome" "$AK" run --profile permissive -- sh -c 'echo $HOME'
expect "permissive: PATH keeps only directories that exist inside" 0 '^/usr/bin:/bin$' -- \
  env PATH=/nonexistent-ak/bin:/usr/bin:/bin "$AK" run --profile permissive -- /bin/sh -c 'echo $PATH'

# -- help, completions, the man page ---------------------------------------------------------
echo "== help"
for c in run create start stop remove list info exec attach cp extend-ttl gc clean export sandbox volume audit completions help; do
  expect "$c --help" 0 "Usage: agentkernel $c" -- "$AK" "$c" --help
done
expect "create -h" 0 'Usage: agentkernel create' -- "$AK" create -h
expect "exec NAME --help" 0 'Usage: agentkernel exec' -- "$AK" exec somebox --help
expect "exec NAME -- CMD -h: -h is the command's" 125 "no such sandbox 'somebox'" -- "$AK" exec somebox -- sh -h
expect "help CMD" 0 'Usage: agentkernel exec' -- "$AK" help exec
expect "help of an alias" 0 'Usage: agentkernel remove' -- "$AK" help rm
expect "help: an unknown command" 125 "unknown command 'frob'" -- "$AK" help frob
expect "help: the sandbox verb's other names" 0 'agentkernel sandbox info .*sb info' -- "$AK" sandbox info --help
t_begin "every option in the tables is in --help, the man page and every completion"
"$AK" help --man >"$cw/ak.1"
for sh in bash zsh fish; do "$AK" completions $sh >"$cw/c.$sh"; done
missing=
nopts=0
while read -r cmd opt; do
  nopts=$((nopts + 1))
  "$AK" help "$cmd" | grep -q -- "$opt\b" || missing="$missing help:$cmd:$opt"
  sed 's/\\-/-/g' "$cw/ak.1" | grep -q -- "$opt\b" || missing="$missing man:$cmd:$opt"
  grep -q -- " $opt\b" "$cw/c.bash" || missing="$missing bash:$cmd:$opt"
  grep -q -- " $opt\b" "$cw/c.zsh" || missing="$missing zsh:$cmd:$opt"
  case $opt in
    --*) grep -q -- "__ak_cmd $cmd' -l ${opt#--}\b" "$cw/c.fish" || missing="$missing fish:$cmd:$opt" ;;
    -*) grep -q -- "__ak_cmd $cmd' .* -s ${opt#-}\b" "$cw/c.fish" || missing="$missing fish:$cmd:$opt" ;;
  esac
done < <("$AK" help --options)
[ -z "$missing" ] && [ "$nopts" -gt 100 ] && pass || fail "$nopts options; missing:$missing"
expect "completions bash: valid bash" 0 '' -- bash -n "$cw/c.bash"
if command -v zsh >/dev/null; then expect "completions zsh: valid zsh" 0 '' -- zsh -n "$cw/c.zsh"; fi
if command -v fish >/dev/null; then expect "completions fish: valid fish" 0 '' -- fish -n "$cw/c.fish"; fi
t_begin "completions bash: completes the verbs and a command's options"
out=$(bash -c '. "$1"; COMP_WORDS=(agentkernel sb ext); COMP_CWORD=2; _agentkernel; echo "${COMPREPLY[*]}";
               COMP_WORDS=(agentkernel run --ke); COMP_CWORD=2; _agentkernel; echo "${COMPREPLY[*]}"' _ "$cw/c.bash")
[ "$out" = $'extend-ttl\n--keep' ] && pass || fail "$out"
expect "completions: an unknown shell" 125 "unknown shell 'tcsh'" -- "$AK" completions tcsh
if command -v groff >/dev/null; then
  expect "the man page formats without warnings" 0 '' -- sh -c 'groff -man -Tutf8 -ww -z "$1" 2>&1 | grep . && exit 1; exit 0' _ "$cw/ak.1"
fi

rm -rf "$cw"
export AGENTKERNEL_STATE_DIR=$saved_state AGENTKERNEL_AUDIT_LOG=$saved_audit
[ -n "$saved_state" ] || unset AGENTKERNEL_STATE_DIR
[ -n "$saved_audit" ] || unset AGENTKERNEL_AUDIT_LOG
