# The warm pool: `agentkernel daemon` keeps idle sandboxes; `run` claims
# one of exactly its shape, each at most once, and starts cold otherwise.

echo "== warm pool (daemon)"
pool_state=$(mktemp -d)
pool_work=$(mktemp -d)
chmod 755 "$pool_state" "$pool_work"
pool_cfg=$pool_state/pool.toml
cat >"$pool_cfg" <<'EOF'
[security]
mount_cwd = true
[daemon]
pool_size = 2
shapes = [{ profile = "moderate", network = false }]
EOF
cp "$PROBE" "$pool_work/probe"
mkdir "$pool_work/sub"
echo from-host >"$pool_work/sub/hostfile"

pak () { (cd "$pool_work" && env AGENTKERNEL_STATE_DIR="$pool_state" "$AK" "$@"); }
prun () { pak run --config "$pool_cfg" --no-network "$@"; }
# The daemon's status of a state directory (default $pool_state) as JSON,
# one of its counters (hits, misses, pid), and a wait until its first shape
# has N idle sandboxes (default 2), at most POLLS polls of 0.1 s (default
# 200: 20 s).  The microVM section below uses them with its own.
pool_json () { env AGENTKERNEL_STATE_DIR="${1:-$pool_state}" "$AK" daemon status --json 2>/dev/null; }
pool_num () { pool_json "${2:-}" | sed -n "s/^  \"$1\": \([0-9]*\).*/\1/p"; }
pool_wait_idle () {
  for _ in $(seq "${3:-200}"); do
    [ "$(pool_json "${2:-}" | sed -n 's/^ *"idle": \([0-9]*\).*/\1/p' | head -1)" = "${1:-2}" ] && return 0
    sleep 0.1
  done
  return 1
}

expect "no daemon: status says so" 3 'not running' -- pak daemon status
expect "no daemon: run starts cold" 0 '^cold$' -- prun -- echo cold
expect "start" 0 'pool daemon started' -- pak daemon start --config "$pool_cfg"
expect "start twice" 125 'already runs' -- pak daemon start --config "$pool_cfg"

t_begin "sockets: mode 0600 in a 0700 directory, the daemon's and one per shape"
claim_socks=$(ls "$pool_state"/pool/claim-*.sock 2>/dev/null)
[ "$(stat -c %a "$pool_state/pool")" = 700 ] && [ "$(stat -c %a "$pool_state/pool/daemon.sock")" = 600 ] \
  && [ "$(echo "$claim_socks" | wc -w)" = 1 ] && [ "$(stat -c %a $claim_socks)" = 600 ] \
  && pass || fail "$(stat -c '%a %n' "$pool_state/pool" "$pool_state"/pool/*)"

t_begin "the pool fills"
pool_wait_idle && pass || fail "$(pool_json)"

t_begin "a claimed run is a hit"
h0=$(pool_num hits)
out=$(prun -- echo pooled 2>/dev/null)
h1=$(pool_num hits)
[ "$out" = pooled ] && [ "$h1" = $((h0 + 1)) ] && pass || fail "out=$out hits $h0 -> $h1"

t_begin "claims are fresh: what one run wrote, the next never sees"
pool_wait_idle
h0=$(pool_num hits)
prun -- sh -c 'echo x >/tmp/leak; echo x >/home/user/leak' >/dev/null 2>&1
out=$(prun -- sh -c 'for f in /tmp/leak /home/user/leak; do [ -e $f ] && echo "SEEN $f"; done; echo "$0"' "$MARK" 2>/dev/null)
h1=$(pool_num hits)
[ "$out" = "$MARK" ] && [ "$h1" = $((h0 + 2)) ] && pass || fail "hits $h0 -> $h1: $out"

t_begin "the claimed run has its own workspace, working directory and environment"
pool_wait_idle
out=$(cd "$pool_work/sub" && env AGENTKERNEL_STATE_DIR="$pool_state" "$AK" run --config "$pool_cfg" --no-network \
      -e FOO=bar -- sh -c 'echo "$(pwd) $FOO $(cat hostfile)"; touch made-inside' 2>/dev/null)
[ "$out" = "/workspace bar from-host" ] && [ -e "$pool_work/sub/made-inside" ] && pass || fail "$out"
expect "--workdir at claim time" 0 '^/tmp$' -- prun --workdir /tmp -- pwd
t_begin "the claimant's umask, not the daemon's"
pool_wait_idle
h0=$(pool_num hits)
out=$( (umask 077; prun -- sh -c umask 2>/dev/null) )
h1=$(pool_num hits)
[ "$out" = 0077 ] && [ "$h1" = $((h0 + 1)) ] && pass || fail "umask $out, hits $h0 -> $h1"
expect "exit status of the command" 7 '' -- prun -- sh -c 'exit 7'
expect "killed by a signal" 137 '' -- prun -- sh -c 'kill -KILL $$'
expect "command not found" 127 'command not found' -- prun -- /nope

t_begin "nothing the pooled command started outlives the run"
pool_wait_idle
rm -f "$pool_work/late"
prun -- sh -c '(sleep 0.5; touch /workspace/late) & echo "$0"' "$MARK" >"$pool_state/bg" 2>/dev/null
sleep 1.5
if ! grep -q "$MARK" "$pool_state/bg"; then fail "did not run: $(cat "$pool_state/bg")"
elif [ -e "$pool_work/late" ]; then fail "a background process wrote after the run ended"
else pass; fi
# Control: the same background write, waited for, does land.
expect "control: a waited-for background write lands" 0 '' -- \
  sh -c 'cd "$1" && AGENTKERNEL_STATE_DIR="$2" "$3" run --config "$4" --no-network -- sh -c "(sleep 0.5; touch /workspace/late) & wait" 2>/dev/null && [ -e late ]' \
  _ "$pool_work" "$pool_state" "$AK" "$pool_cfg"
rm -f "$pool_work/late"

t_begin "concurrent claims never share a sandbox"
pool_wait_idle
for i in 1 2 3 4; do
  prun -- sh -c 'if [ -e /tmp/taken ]; then echo SHARED; fi; touch /tmp/taken; sleep 1;
                 n=$(ls /proc | grep -c "^[0-9]"); echo "alone:$n"' >"$pool_state/c$i" 2>/dev/null &
done
wait
if cat "$pool_state"/c[1-4] | grep -q SHARED; then fail "$(cat "$pool_state"/c[1-4])"
elif [ "$(cat "$pool_state"/c[1-4] | grep -c '^alone:')" = 4 ]; then pass
else fail "$(cat "$pool_state"/c[1-4])"; fi

t_begin "isolation inside a pooled run equals a cold run's"
# What the command can see of its confinement: ids, capabilities,
# no_new_privs, seccomp, hostname, its mount table, the probe's view, and
# the processes it sees (counted by the shell itself: a pipeline's own
# processes come and go at their own pace).
iso='id; grep -E "^(NoNewPrivs|Seccomp|Seccomp_filters|Cap(Inh|Prm|Eff|Bnd|Amb)|Sig(Blk|Ign)):" /proc/self/status;
     ulimit -a; umask;
     hostname; cat /proc/self/uid_map; awk "{print \$5, \$6}" /proc/self/mountinfo | sort;
     ./probe read /etc/shadow; ./probe write /usr/x; ./probe connect 1.1.1.1 53; set -- /proc/[0-9]*; echo "processes: $#"'
pool_wait_idle
h0=$(pool_num hits)
warm=$(prun -- sh -c "$iso" 2>/dev/null)
h1=$(pool_num hits)
cold_state=$(mktemp -d)
cold=$(cd "$pool_work" && env AGENTKERNEL_STATE_DIR="$cold_state" "$AK" run --config "$pool_cfg" --no-network -- sh -c "$iso" 2>/dev/null)
if [ "$h1" != $((h0 + 1)) ]; then fail "not a pooled run (hits $h0 -> $h1)"
elif [ "$warm" = "$cold" ] && printf '%s' "$warm" | grep -q 'NoNewPrivs:[[:space:]]1'; then pass
else fail "$(diff <(echo "$cold") <(echo "$warm"))"; fi

t_begin "a run of another shape starts cold and counts as a miss"
m0=$(pool_num misses)
out=$(pak run --config "$pool_cfg" --profile restrictive -- echo cold 2>/dev/null)
m1=$(pool_num misses)
[ "$out" = cold ] && [ "$m1" = $((m0 + 1)) ] && pass || fail "out=$out misses $m0 -> $m1"
expect "status shows the shape, hits and misses" 0 'moderate.*off.*[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+' -- pak daemon status

t_begin "the HTTP API's /run claims from the pool"
if command -v curl >/dev/null; then
  # A daemon of its own pooling the default sandbox, which /run gets.
  api_state=$(mktemp -d)
  api_work=$(mktemp -d)
  chmod 755 "$api_state" "$api_work"
  aak () { (cd "$api_work" && env AGENTKERNEL_STATE_DIR="$api_state" "$AK" "$@"); }
  aak daemon start >/dev/null
  (cd "$api_work" && AGENTKERNEL_STATE_DIR="$api_state" exec "$AK" serve --socket "$api_state/api.sock") >/dev/null 2>&1 &
  spid=$!
  for _ in $(seq 100); do
    [ -S "$api_state/api.sock" ] && aak daemon status --json | grep -q '"idle": 2' && break
    sleep 0.1
  done
  out=$(curl -s --unix-socket "$api_state/api.sock" -X POST http://x/run \
        -d '{"command": ["sh", "-c", "echo api; exit 4"]}')
  hits=$(aak daemon status --json | sed -n 's/^  "hits": \([0-9]*\).*/\1/p')
  kill "$spid"; wait "$spid" 2>/dev/null
  aak daemon stop >/dev/null
  case $out in
    *'"stdout":"api\n"'*'"exit_code":4'*) [ "$hits" = 1 ] && pass || fail "hits $hits: $out" ;;
    *) fail "$out" ;;
  esac
else
  skip "curl not installed"
fi

t_begin "another user never gets this user's sandboxes, even with the socket open to it"
if is_root && id "${AK_TEST_USER:-aktest}" >/dev/null 2>&1; then
  pool_wait_idle
  h0=$(pool_num hits)
  chmod 755 "$pool_state/pool"; chmod 777 "$pool_state"/pool/*.sock
  # The same spec as the shape's (a hit for this user).
  out=$(cd "$pool_work" && runuser -u "${AK_TEST_USER:-aktest}" -- env HOME="$HOME" AGENTKERNEL_STATE_DIR="$pool_state" \
        "$AK" run --config "$pool_cfg" --no-network -- echo other-user 2>/dev/null)
  chmod 700 "$pool_state/pool"; chmod 600 "$pool_state"/pool/*.sock
  h1=$(pool_num hits)
  [ "$out" = other-user ] && [ "$h1" = "$h0" ] && pass || fail "out=$out hits $h0 -> $h1"
else
  skip_lacks "needs root and the ${AK_TEST_USER:-aktest} user"
fi

# A client of its own (not agentkernel, which checks the daemon's uid
# itself) on the shape's socket: the idle sandboxes' owners check who
# connected before they serve anything.  Prints "eof" when the connection
# was closed on it, "data" when an answer came, "held" when an owner took
# it and waits for the claim.  With "forge", it sends a claim as the
# connection opens, with a badge of its own making in the place of the
# daemon's (common/peer.h): "eof" then means the claim was refused unread,
# "data" that it was read (and its error answered: the claim is garbage).
claim_probe () {
  python3 - "$@" <<'PY'
import array, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
if sys.argv[2:] == ["forge"]:
    claim = os.memfd_create("claim")
    os.write(claim, b"knot-a-key\0aecho\0")
    badge = os.memfd_create("agentkernel-pool-badge")
    # struct wire { int type; int value; char text[1024]; }, type 9: CLAIM
    msg = struct.pack("ii1024s", 9, 0, b"")
    s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2, claim, badge]))])
s.settimeout(3)
try:
    print("eof" if s.recv(2048) == b"" else "data")
except socket.timeout:
    print("held")
PY
}
t_begin "the shape's socket: another user's raw connection is closed by the idle sandbox, untouched"
if is_root && id "${AK_TEST_USER:-aktest}" >/dev/null 2>&1 && command -v python3 >/dev/null; then
  pool_wait_idle
  h0=$(pool_num hits)
  sock=$(ls "$pool_state"/pool/claim-*.sock)
  chmod 755 "$pool_state/pool"; chmod 777 "$sock"
  got=$(runuser -u "${AK_TEST_USER:-aktest}" -- bash -c "$(declare -f claim_probe); claim_probe $sock" 2>&1)
  chmod 700 "$pool_state/pool"; chmod 600 "$sock"
  h1=$(pool_num hits)
  # Control: the same connection from this user is taken (an idle sandbox
  # waits for its claim; a hit is counted once a claim is served).
  ctl=$(claim_probe "$sock" 2>&1)
  [ "$got" = eof ] && [ "$h1" = "$h0" ] && [ "$ctl" = held ] && pass \
    || fail "other=$got hits $h0 -> $h1; control=$ctl"
else
  skip_lacks "needs root, python3 and the ${AK_TEST_USER:-aktest} user"
fi

t_begin "the shape's socket: a forged badge does not pass for the daemon's (a confined claimant is refused)"
if command -v setpriv >/dev/null && command -v python3 >/dev/null; then
  pool_wait_idle
  sock=$(ls "$pool_state"/pool/claim-*.sock)
  got=$(setpriv --no-new-privs bash -c "$(declare -f claim_probe); claim_probe $sock forge" 2>&1)
  # Control: the same bytes from an unconfined process get as far as the
  # claim's own check (which refuses this claim, and answers why).
  pool_wait_idle
  ctl=$(claim_probe "$sock" forge 2>&1)
  [ "$got" = eof ] && [ "$ctl" = data ] && pass || fail "confined=$got control=$ctl"
else
  skip_lacks "setpriv (util-linux) and python3"
fi

t_begin "a claimant that sees another mount table starts cold (paths in a claim mean the daemon's view)"
if is_root && command -v unshare >/dev/null; then
  pool_wait_idle
  h0=$(pool_num hits)
  out=$(cd "$pool_work" && unshare -m env AGENTKERNEL_STATE_DIR="$pool_state" "$AK" run --config "$pool_cfg" \
        --no-network -- echo "$MARK" 2>/dev/null)
  h1=$(pool_num hits)
  [ "$out" = "$MARK" ] && [ "$h1" = "$h0" ] && pass || fail "out=$out hits $h0 -> $h1"
else
  skip_lacks "needs root and unshare"
fi

t_begin "claims go straight to the idle sandboxes: a run is a hit while the daemon is stopped"
pool_wait_idle
dpid=$(pool_json | sed -n 's/^  "pid": \([0-9]*\).*/\1/p')
h0=$(pool_num hits)
kill -STOP "$dpid"
out=$(timeout 20 bash -c "cd '$pool_work' && AGENTKERNEL_STATE_DIR='$pool_state' '$AK' run --config '$pool_cfg' --no-network -- sh -c 'echo \$0; cat /proc/sys/kernel/random/boot_id >/dev/null' '$MARK'" 2>/dev/null)
kill -CONT "$dpid"
sleep 0.3
h1=$(pool_num hits)
# It was a pooled run: the daemon counts it once it runs again.
[ "$out" = "$MARK" ] && [ "$h1" = $((h0 + 1)) ] && pass || fail "out=$out hits $h0 -> $h1"

t_begin "signals reach the pooled command"
pool_wait_idle
prun -- sleep 30 >/dev/null 2>&1 &
cpid=$!
sleep 0.5
kill -TERM "$cpid"
st=0
for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$cpid" 2>/dev/null; then kill -KILL "$cpid"; fail "still running"; else wait "$cpid"; st=$?; [ "$st" = 143 ] && pass || fail "status $st"; fi

t_begin "kill -9 of the daemon leaves no process"
pool_wait_idle
dpid=$(pool_num pid)
pids=$(pgrep -g "$dpid")
kill -KILL "$dpid"
left=
for _ in $(seq 50); do
  left=
  for p in $pids; do [ -d /proc/$p ] && left="$left $p"; done
  [ -z "$left" ] && break
  sleep 0.1
done
[ -n "$pids" ] && [ "$(echo "$pids" | wc -w)" -ge 3 ] && [ -z "$left" ] && pass || fail "pids: $pids left:$left"
expect "a killed daemon: runs start cold" 0 '^cold$' -- prun -- echo cold
expect "a killed daemon: status says not running" 3 'not running' -- pak daemon status

t_begin "restart: a new daemon, new sandboxes"
: >"$pool_state/pool/claim-stale0000000.sock"
pak daemon start --config "$pool_cfg" >/dev/null && pool_wait_idle && [ "$(pool_num hits)" = 0 ] \
  && [ "$(prun -- echo again 2>/dev/null)" = again ] && [ "$(pool_num hits)" = 1 ] && pass || fail "$(pool_json)"
t_begin "restart: shapes' sockets a killed daemon left are gone, the new shape's is there"
socks=$(cd "$pool_state/pool" && ls claim-*.sock)
[ "$(echo "$socks" | wc -w)" = 1 ] && [ "$socks" != claim-stale0000000.sock ] && [ -S "$pool_state/pool/$socks" ] \
  && pass || fail "$socks"
expect "stop" 0 'stopped' -- pak daemon stop
t_begin "stop: the shapes' sockets are removed"
[ -z "$(ls "$pool_state"/pool/claim-*.sock 2>/dev/null)" ] && pass || fail "$(ls "$pool_state"/pool)"
expect "stopped: run works" 0 '^after$' -- prun -- echo after
expect "stop with none running" 0 'not running' -- pak daemon stop
expect "daemon: unknown subcommand" 125 'unknown subcommand' -- pak daemon bogus

# A shape without a workspace: its idle sandbox has dropped every privilege
# already and its command's process waits for the claim (docs/pool.md,
# "armed").  What a claim brings still reaches the command, and what runs
# is confined exactly as a cold start's command.
echo "== warm pool: a shape without a workspace"
arm_state=$(mktemp -d)
arm_work=$(mktemp -d)
chmod 755 "$arm_state" "$arm_work"
arm_cfg=$arm_state/pool.toml
cat >"$arm_cfg" <<'EOF2'
[daemon]
pool_size = 2
shapes = [{ profile = "restrictive" }]
EOF2
wak () { (cd "$arm_work" && env AGENTKERNEL_STATE_DIR="$arm_state" "$AK" "$@"); }
arun () { wak run --config "$arm_cfg" --profile restrictive "$@"; }
arm_num () { wak daemon status --json | sed -n "s/^  \"$1\": \([0-9]*\).*/\1/p"; }
arm_wait_idle () {
  for _ in $(seq 200); do
    [ "$(wak daemon status --json | sed -n 's/^ *"idle": \([0-9]*\).*/\1/p' | head -1)" = 2 ] && return 0
    sleep 0.1
  done
  return 1
}
# armed NAME STATUS PATTERN -- CMD...: expect, and the run was a hit.
armed () {
  local name=$1 want=$2 pat=$3 out rc h0 h1
  shift 4
  t_begin "$name"
  arm_wait_idle
  h0=$(arm_num hits)
  out=$("$@" 2>&1)
  rc=$?
  h1=$(arm_num hits)
  if [ "$h1" != $((h0 + 1)) ]; then fail "not a pooled run (hits $h0 -> $h1); status $rc: $(printf %s "$out" | head -c 400)"
  elif [ "$rc" != "$want" ]; then fail "exit status $rc, expected $want; output: $(printf %s "$out" | head -c 400)"
  elif [ -n "$pat" ] && ! printf '%s' "$out" | grep -Eq -- "$pat"; then fail "output does not match /$pat/: $(printf %s "$out" | head -c 400)"
  else pass; fi
}
expect "armed: start" 0 'pool daemon started' -- wak daemon start --config "$arm_cfg"
armed "armed: the command runs, its output reaches the caller" 0 "^$MARK\$" -- arun -- echo "$MARK"
arun_stdin () { echo piped-in | arun -- cat; }
arun_stderr () { arun -- sh -c 'echo to-out; echo to-err >&2' 2>&1 >/dev/null; }
armed "armed: stdin reaches the command" 0 '^piped-in$' -- arun_stdin
armed "armed: stderr stays stderr" 0 '^to-err$' -- arun_stderr
armed "armed: exit status" 7 '' -- arun -- sh -c 'exit 7'
armed "armed: killed by a signal" 137 '' -- arun -- sh -c 'kill -KILL $$'
armed "armed: command not found" 127 'command not found' -- arun -- /nope
armed "armed: -e at claim time" 0 '^bar /home/user$' -- arun -e FOO=bar -- sh -c 'echo "$FOO $(pwd)"'
armed "armed: --workdir at claim time" 0 '^/tmp$' -- arun --workdir /tmp -- pwd
# A claim comes in its message up to about a kilobyte, in a sealed memfd
# beyond (container/pool.c): a long argument, whole, either way.
long_arg=$(head -c 3000 /dev/zero | tr '\0' x)
armed "armed: a claim too large for one message (a 3000-byte argument)" 0 '^3000 x+$' \
  -- arun -- sh -c 'echo "${#0} $0"' "$long_arg"
armed "armed: a claim in its message, an argument with spaces and quotes" 0 '^a b "c" d$' \
  -- arun -- echo 'a b' '"c"' d
# A claim the armed sandbox cannot take (no such directory inside) is
# refused before anything runs; the cold start then says why.
armed "armed: a bad --workdir: refused, the cold start reports it" 125 'working directory' -- arun --workdir /nonexistent -- true
t_begin "armed: the claimant's umask"
arm_wait_idle
out=$( (umask 027; arun -- sh -c umask 2>/dev/null) )
[ "$out" = 0027 ] && pass || fail "umask $out"
t_begin "armed: no process of a pooled run holds the daemon's badge (common/peer.h)"
# From inside: every descriptor of every process the command can see.
# Control: from the host, the daemon itself holds it under this name.
arm_wait_idle
dpid=$(wak daemon status --json | sed -n 's/^  "pid": \([0-9]*\).*/\1/p')
host=$(for f in /proc/"$dpid"/fd/*; do readlink "$f"; done 2>/dev/null | grep -c 'agentkernel-pool-badge')
inside=$(arun -- sh -c 'n=0; for f in /proc/[0-9]*/fd/*; do l=$(readlink "$f") || continue; n=$((n+1));
  case $l in *pool-badge*) echo "BADGE $f";; esac; done; echo "seen $n"' 2>&1)
if [ "$host" != 1 ]; then fail "control: the daemon holds no badge under that name ($host)"
elif printf '%s' "$inside" | grep -q BADGE; then fail "reachable inside: $inside"
elif ! printf '%s' "$inside" | grep -Eq '^seen ([3-9]|[1-9][0-9]+)$'; then fail "the command did not look: $inside"
else pass; fi
t_begin "armed: claims are fresh: what one run wrote, the next never sees"
arm_wait_idle
h0=$(arm_num hits)
arun -- sh -c 'echo x >/tmp/leak; echo x >/home/user/leak' >/dev/null 2>&1
arm_wait_idle
out=$(arun -- sh -c 'for f in /tmp/leak /home/user/leak; do [ -e $f ] && echo "SEEN $f"; done; echo "$0"' "$MARK" 2>/dev/null)
h1=$(arm_num hits)
[ "$out" = "$MARK" ] && [ "$h1" = $((h0 + 2)) ] && pass || fail "hits $h0 -> $h1: $out"
t_begin "armed: concurrent claims never share a sandbox"
arm_wait_idle
for i in 1 2 3; do
  arun -- sh -c 'if [ -e /tmp/taken ]; then echo SHARED; fi; touch /tmp/taken; sleep 1; echo "alone:$(ls /proc | grep -c "^[0-9]")"' \
    >"$arm_state/c$i" 2>/dev/null &
done
wait
if cat "$arm_state"/c[1-3] | grep -q SHARED; then fail "$(cat "$arm_state"/c[1-3])"
elif [ "$(cat "$arm_state"/c[1-3] | grep -c '^alone:')" = 3 ]; then pass
else fail "$(cat "$arm_state"/c[1-3])"; fi
t_begin "armed: isolation equals a cold run's"
# Ids, capabilities, no_new_privs, seccomp, ignored and blocked signals
# (the claimant ignores SIGHUP and SIGUSR2, as nohup would), limits,
# umask, hostname, mounts, what the command can reach.
aiso='id; grep -E "^(NoNewPrivs|Seccomp|Seccomp_filters|Cap(Inh|Prm|Eff|Bnd|Amb)|Sig(Blk|Ign)):" /proc/self/status;
      ulimit -a; umask; hostname; cat /proc/self/uid_map; awk "{print \$5, \$6}" /proc/self/mountinfo | sort;
      cat /etc/shadow 2>&1 | head -1; touch /usr/x 2>&1; echo > /dev/tcp/1.1.1.1/53 2>&1; ls /proc | grep -c "^[0-9]"; ls -a /home/user'
arm_wait_idle
h0=$(arm_num hits)
warm=$(cd "$arm_work" && trap '' HUP USR2 && env AGENTKERNEL_STATE_DIR="$arm_state" "$AK" run --config "$arm_cfg" --profile restrictive -- bash -c "$aiso" 2>/dev/null)
h1=$(arm_num hits)
cold_state=$(mktemp -d)
cold=$(cd "$arm_work" && trap '' HUP USR2 && env AGENTKERNEL_STATE_DIR="$cold_state" "$AK" run --config "$arm_cfg" --profile restrictive -- bash -c "$aiso" 2>/dev/null)
rm -rf "$cold_state"
if [ "$h1" != $((h0 + 1)) ]; then fail "not a pooled run (hits $h0 -> $h1)"
elif [ "$warm" = "$cold" ] && printf '%s' "$warm" | grep -q 'NoNewPrivs:[[:space:]]1' \
     && printf '%s' "$warm" | grep -q 'CapEff:[[:space:]]0000000000000000'; then pass
else fail "$(diff <(echo "$cold") <(echo "$warm"))"; fi
t_begin "armed: signals reach the command"
arm_wait_idle
arun -- sleep 30 >/dev/null 2>&1 &
cpid=$!
sleep 0.5
kill -TERM "$cpid"
for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$cpid" 2>/dev/null; then kill -KILL "$cpid"; fail "still running"; else wait "$cpid"; st=$?; [ "$st" = 143 ] && pass || fail "status $st"; fi
t_begin "armed: nothing the command started outlives the run"
arm_wait_idle
before=$(arm_num hits)
arun -- sh -c 'sleep 29417 & echo "$0"' "$MARK" >"$arm_state/bg" 2>/dev/null
left=$(pgrep -f 'sleep 29417' || true)
grep -q "$MARK" "$arm_state/bg" && [ -z "$left" ] && pass || fail "left: $left; $(cat "$arm_state/bg")"
t_begin "armed: another user never gets this user's sandboxes"
if is_root && id "${AK_TEST_USER:-aktest}" >/dev/null 2>&1; then
  arm_wait_idle
  h0=$(arm_num hits)
  chmod 755 "$arm_state/pool"; chmod 777 "$arm_state/pool/daemon.sock"
  out=$(cd "$arm_work" && runuser -u "${AK_TEST_USER:-aktest}" -- env HOME="$HOME" AGENTKERNEL_STATE_DIR="$arm_state" \
        "$AK" run --config "$arm_cfg" --profile restrictive -- id -u 2>/dev/null)
  chmod 700 "$arm_state/pool"; chmod 600 "$arm_state/pool/daemon.sock"
  h1=$(arm_num hits)
  [ "$out" = 1000 ] && [ "$h1" = "$h0" ] && pass || fail "out=$out hits $h0 -> $h1"
else
  skip_lacks "needs root and the ${AK_TEST_USER:-aktest} user"
fi

# The launcher and the daemon's fronts (service/pool.h): `agentkernel run`
# handed to an agentkernel-core started beforehand, which takes a warm
# sandbox in the caller's place or sends it back to a cold start.
t_begin "front: a pooled run is a front's, its audit records name the caller's process, once each"
arm_wait_idle
alog=$arm_state/audit.jsonl
f0=$(arm_num fronts_served)
h0=$(arm_num hits)
out=$(cd "$arm_work" && AGENTKERNEL_AUDIT_LOG=$alog AGENTKERNEL_STATE_DIR="$arm_state" \
      sh -c 'echo "pid=$$"; exec "$0" run --config "$1" --profile restrictive -- echo "$2"' "$AK" "$arm_cfg" "$MARK" 2>&1)
cpid=$(printf '%s\n' "$out" | sed -n 's/^pid=//p')
f1=$(arm_num fronts_served)
h1=$(arm_num hits)
nstart=$(grep -c "\"pid\":$cpid,.*\"event\":\"command_started\"" "$alog" 2>/dev/null)
nexec=$(grep -c "\"pid\":$cpid,.*\"event\":\"command_executed\".*\"exit_code\":0" "$alog" 2>/dev/null)
if ! printf '%s' "$out" | grep -q "^$MARK\$"; then fail "did not run: $out"
elif [ "$f1" != $((f0 + 1)) ] || [ "$h1" != $((h0 + 1)) ]; then fail "fronts served $f0 -> $f1, hits $h0 -> $h1"
elif [ "$nstart" != 1 ] || [ "$nexec" != 1 ]; then fail "records of pid $cpid: $nstart started, $nexec executed: $(cat "$alog")"
else pass; fi
t_begin "front: kill -9 of agentkernel ends its command, as for a cold run"
arm_wait_idle
(cd "$arm_work" && AGENTKERNEL_STATE_DIR="$arm_state" exec "$AK" run --config "$arm_cfg" --profile restrictive -- \
   sh -c 'echo "$0"; exec sleep 29418' "$MARK" >"$arm_state/k9" 2>&1) &
kpid=$!
for _ in $(seq 100); do grep -q "$MARK" "$arm_state/k9" && pgrep -f 'sleep 29418' >/dev/null && break; sleep 0.1; done
running=$(pgrep -f 'sleep 29418' || true)
kill -KILL "$kpid"; wait "$kpid" 2>/dev/null
for _ in $(seq 50); do pgrep -f 'sleep 29418' >/dev/null || break; sleep 0.1; done
left=$(pgrep -f 'sleep 29418' || true)
if [ -z "$running" ]; then fail "the command never ran: $(cat "$arm_state/k9")"
elif [ -n "$left" ]; then fail "still running after kill -9 of agentkernel: $left"; pkill -f 'sleep 29418'
else pass; fi
t_begin "front: a caller under no_new_privs is not served by the daemon (a cold start of its own)"
if command -v setpriv >/dev/null; then
  arm_wait_idle
  h0=$(arm_num hits)
  out=$(cd "$arm_work" && AGENTKERNEL_STATE_DIR="$arm_state" setpriv --no-new-privs "$AK" run --config "$arm_cfg" \
        --profile restrictive -- echo "$MARK" 2>&1)
  h1=$(arm_num hits)
  # control: the same run without no_new_privs is a hit
  arm_wait_idle
  out2=$(arun -- echo "$MARK" 2>/dev/null)
  h2=$(arm_num hits)
  if ! printf '%s' "$out" | grep -q "^$MARK\$"; then fail "did not run: $out"
  elif [ "$h1" != "$h0" ]; then fail "served from the pool (hits $h0 -> $h1)"
  elif [ "$out2" != "$MARK" ] || [ "$h2" != $((h1 + 1)) ]; then fail "control: $out2, hits $h1 -> $h2"
  else pass; fi
else
  skip_lacks "setpriv (util-linux)"
fi
t_begin "front: requests that are not the launcher's change nothing, the next run is served"
arm_wait_idle
f0=$(arm_num fronts_served)
h0=$(arm_num hits)
python3 - "$arm_state/pool/front.sock" "$AK" "$arm_cfg" "$arm_work" "$arm_state" "$MARK" <<'PY'
import array, os, socket, sys
path, ak, cfg, work, state, mark = sys.argv[1:7]
def client(data, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    s.sendmsg([data], anc)
    s.settimeout(5)
    got = b""
    try:
        while True:
            m = s.recv(64)
            if not m:
                break
            got += m
    except OSError:
        pass
    s.close()
    return got
r, w = os.pipe()
plain = os.memfd_create("not-sealed")
os.write(plain, b"arun\0ax\0")
def entries(args):
    env = ["PATH=/usr/bin:/bin", "HOME=" + os.environ["HOME"], "AGENTKERNEL_STATE_DIR=" + state]
    return b"".join(b"a" + a.encode() + b"\0" for a in args) + \
        b"".join(b"e" + e.encode() + b"\0" for e in env) + b"u22\0i0\0"
run = entries([ak, "run", "--config", cfg, "--profile", "restrictive", "--", "echo", mark])
cwd = os.open(work, os.O_PATH | os.O_DIRECTORY)
answers = [client(b"hello"), client(b"AKF1"), client(b"AKF1", [r, 0, 1, 2, r]),
           client(b"AKF1", [plain, 0, 1, 2, r]), client(b"\0" * 4096),
           # in the message itself: no entries, an entry that does not end,
           # a descriptor short, one too many
           client(b"AKF2", [0, 1, 2, cwd]), client(b"AKF2" + run[:-1], [0, 1, 2, cwd]),
           client(b"AKF2" + run, [0, 1, 2]), client(b"AKF2" + run, [0, 1, 2, cwd, cwd])]
bad = [a for a in answers if a.startswith(b"S") or b"X" in a]
if bad:
    print("answered:", bad)
# The control: the same request, whole, is run (its output on a pipe).
out_r, out_w = os.pipe()
good = client(b"AKF2" + run, [0, out_w, 2, cwd])
os.close(out_w)
printed = os.read(out_r, 4096).decode().strip()
if not good.startswith(b"S") or not good.endswith(b"X0") or printed != mark:
    print("the launcher's own request was not run:", good, repr(printed))
    bad.append(good)
sys.exit(1 if bad else 0)
PY
raw=$?
arm_wait_idle
sleep 0.5
out=$(arun -- echo "$MARK" 2>/dev/null)
f1=$(arm_num fronts_served)
h1=$(arm_num hits)
if [ "$raw" != 0 ]; then fail "a raw request was run"
elif [ "$out" != "$MARK" ] || [ "$h1" != $((h0 + 2)) ]; then fail "the next run: $out, hits $h0 -> $h1 (the control and it)"
elif [ "$(arm_num fronts_idle)" -lt 1 ]; then fail "no idle front left: $(wak daemon status)"
else pass; fi
t_begin "front: a connection that sends nothing is closed by its front, the next run is served"
python3 - "$arm_state/pool/front.sock" >"$arm_state/silent" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.settimeout(20)
t = time.time()
try:
    got = s.recv(64)
except OSError as e:
    got = repr(e).encode()
print("closed" if got == b"" else "got %r" % got, round(time.time() - t))
PY
silent=$!
sleep 0.5
arm_wait_idle
h0=$(arm_num hits)
out=$(arun -- echo "$MARK" 2>/dev/null)
h1=$(arm_num hits)
wait "$silent"
if [ "$out" != "$MARK" ] || [ "$h1" != $((h0 + 1)) ]; then fail "the next run: $out, hits $h0 -> $h1"
elif ! grep -q '^closed' "$arm_state/silent"; then fail "$(cat "$arm_state/silent")"
else pass; fi
t_begin "front: more pooled runs at once than fronts idle all start at once (none waits for another's end)"
# A daemon of its own with six idle sandboxes: seven runs, six of them
# pooled and held for their whole run by their fronts, the seventh cold.
many_state=$(mktemp -d)
chmod 755 "$many_state"
printf '[daemon]\npool_size = 6\nshapes = [{ profile = "restrictive" }]\n' >"$many_state/pool.toml"
mak () { (cd "$arm_work" && env AGENTKERNEL_STATE_DIR="$many_state" "$AK" "$@"); }
mak daemon start --config "$many_state/pool.toml" >/dev/null
for _ in $(seq 300); do
  [ "$(mak daemon status --json | sed -n 's/^ *"idle": \([0-9]*\).*/\1/p' | head -1)" = 6 ] && break
  sleep 0.1
done
for i in 1 2 3 4 5 6 7; do
  mak run --config "$many_state/pool.toml" --profile restrictive -- sh -c 'echo "$0"; sleep 8' "$MARK-$i" \
    >"$many_state/many$i" 2>/dev/null &
done
started=0
for _ in $(seq 60); do
  started=$(cat "$many_state"/many? 2>/dev/null | grep -c "^$MARK-")
  [ "$started" = 7 ] && break
  sleep 0.1
done
hits=$(mak daemon status --json | sed -n 's/^  "hits": \([0-9]*\).*/\1/p')
wait
mak daemon stop >/dev/null
if [ "$started" != 7 ]; then fail "only $started of 7 had started after 6 s: $(cat "$many_state"/many?)"
elif [ "${hits:-0}" -lt 5 ]; then fail "only ${hits:-0} of them pooled: $(cat "$many_state"/many?)"
else pass; fi
rm -rf "$many_state"
t_begin "front: run --keep with the daemon up is a kept sandbox, as without it"
out=$(arun --keep --name akfront-kept -- echo "$MARK" 2>&1)
listed=$(wak list 2>&1)
wak remove --force akfront-kept >/dev/null 2>&1
if printf '%s' "$out" | grep -q "^$MARK\$" && printf '%s' "$listed" | grep -q akfront-kept; then pass
else fail "$out / $listed"; fi
expect "front: the status shows the fronts" 0 'fronts: [0-9]+ idle, [0-9]+ runs taken' -- wak daemon status
expect "armed: stop" 0 'stopped' -- wak daemon stop
t_begin "front: the socket is gone with the daemon, and no front is left"
left=$(pgrep -f "__pool-front" | while read -r p; do tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qx "AGENTKERNEL_STATE_DIR=$arm_state" && echo "$p"; done)
[ ! -e "$arm_state/pool/front.sock" ] && [ -z "$left" ] && pass || fail "$(ls "$arm_state/pool") $left"
rm -rf "$arm_state" "$arm_work"

# The microVM engine's pool: VMs booted ahead, the workspace attached at
# claim time (src/backend/microvm/pool.c).  TCG boots take seconds here:
# few VMs, generous waits.
echo "== warm pool: microvm backend"
if ! microvm_have; then
  t_begin "microvm pool: QEMU, virtiofsd and a guest kernel"
  skip "$MICROVM_MISSING"
elif ! is_root; then
  t_begin "microvm pool"
  skip_lacks "the microvm backend runs only as root (virtiofsd needs it)"
else
  mvp_state=$(mktemp -d)
  mvp_work=$(mktemp -d)
  mvp_other=$(mktemp -d)
  chmod 755 "$mvp_state" "$mvp_work" "$mvp_other"
  echo from-a >"$mvp_work/a-file"
  echo from-b >"$mvp_other/b-file"
  # Another owner: the guest's user is whoever owns the workspace.
  chown -R 4242:4242 "$mvp_other"
  mvp_cfg=$mvp_state/pool.toml
  printf '[security]\nmount_cwd = true\nnetwork = false\n[daemon]\npool_size = 2\nshapes = [{ profile = "moderate", network = false, backend = "microvm" }]\n' >"$mvp_cfg"
  mvak () { (cd "$mvp_work" && env AGENTKERNEL_STATE_DIR="$mvp_state" "$AK" "$@"); }
  mvrun () { mvak run --config "$mvp_cfg" --backend microvm --no-network "$@"; }
  mv_num () { pool_num "$1" "$mvp_state"; }
  # Waits (at most 240 s: TCG on a loaded machine) for N idle VMs.
  mv_wait_idle () { pool_wait_idle "${1:-2}" "${2:-$mvp_state}" 2400; }
  host_rel=$(uname -r)

  expect "microvm pool: start" 0 'pool daemon started' -- mvak daemon start --config "$mvp_cfg"
  t_begin "microvm pool: the pool fills with booted VMs"
  mv_wait_idle 2 && pass || fail "$(mvak daemon status 2>&1)"

  t_begin "microvm pool: a claimed run gives the output and status, under the VM's own kernel"
  h0=$(mv_num hits)
  out=$(mvrun -- sh -c "echo $MARK; uname -r; exit 5" 2>/dev/null)
  st=$?
  h1=$(mv_num hits)
  rel=$(printf '%s\n' "$out" | sed -n 2p)
  if ! printf '%s' "$out" | grep -q "$MARK"; then fail "did not run (status $st): $out"
  elif [ "$st" != 5 ]; then fail "status $st"
  elif [ -z "$rel" ] || [ "$rel" = "$host_rel" ]; then fail "kernel '$rel' is the host's ('$host_rel')"
  elif [ "$h1" != $((h0 + 1)) ]; then fail "not a pooled run (hits $h0 -> $h1)"
  else pass; fi

  # A command policy: a pooled VM is booted without one, so a spec under
  # one never claims it; it starts cold, its policy enforced in its own
  # guest: the same command as the claim above (which ran uname), with a
  # rule against it, ran (the marker) with uname refused, and no pooled VM
  # was claimed.
  t_begin "microvm pool: a command policy never runs in a pooled VM: it starts cold, enforced"
  mv_wait_idle 2
  h0=$(mv_num hits)
  out=$(mvrun --block-cmd uname -- sh -c "echo $MARK; uname -r; exit 5" 2>&1)
  st=$?
  h1=$(mv_num hits)
  if ! printf '%s' "$out" | grep -q "$MARK"; then fail "did not run (status $st): $out"
  elif [ "$h1" != "$h0" ]; then fail "a pooled VM was claimed (hits $h0 -> $h1)"
  elif [ "$st" != 5 ] || ! printf '%s' "$out" | grep -q 'uname: Permission denied'; then
    fail "uname not refused (status $st): $out"
  else pass; fi
  { cat "$mvp_cfg"; printf '[security.commands]\nblock = ["uname"]\n'; } >"$mvp_state/policy.toml"
  mvp_pol=$(mktemp -d)
  expect "microvm pool: a shape under a command policy is refused at daemon start" 125 'command policy cannot be pooled' -- \
    env AGENTKERNEL_STATE_DIR="$mvp_pol" "$AK" daemon start --config "$mvp_state/policy.toml"
  rm -rf "$mvp_pol"

  t_begin "microvm pool: claims are fresh: what one run wrote, the next never sees"
  mv_wait_idle 2
  h0=$(mv_num hits)
  b1=$(mvrun -- sh -c 'echo x >/tmp/leak; echo x >/home/user/leak; cat /proc/sys/kernel/random/boot_id' 2>/dev/null)
  out=$(mvrun -- sh -c 'for f in /tmp/leak /home/user/leak; do [ -e $f ] && echo "SEEN $f"; done; echo "$0"; cat /proc/sys/kernel/random/boot_id' "$MARK" 2>/dev/null)
  h1=$(mv_num hits)
  b2=$(printf '%s\n' "$out" | sed -n 2p)
  if [ "$(printf '%s\n' "$out" | head -1)" != "$MARK" ]; then fail "$out"
  elif [ -z "$b1" ] || [ "$b1" = "$b2" ]; then fail "the same VM twice (boot ids '$b1' '$b2')"
  elif [ "$h1" != $((h0 + 2)) ]; then fail "not pooled runs (hits $h0 -> $h1)"
  else pass; fi

  t_begin "microvm pool: concurrent claims never share a VM"
  mv_wait_idle 2
  h0=$(mv_num hits)
  for i in 1 2; do
    mvrun -- sh -c '[ -e /tmp/taken ] && echo SHARED; touch /tmp/taken; sleep 1; cat /proc/sys/kernel/random/boot_id' \
      >"$mvp_state/c$i" 2>/dev/null &
  done
  wait
  h1=$(mv_num hits)
  c1=$(cat "$mvp_state/c1"); c2=$(cat "$mvp_state/c2")
  if grep -q SHARED "$mvp_state/c1" "$mvp_state/c2"; then fail "$c1 / $c2"
  elif [ -z "$c1" ] || [ -z "$c2" ] || [ "$c1" = "$c2" ]; then fail "boot ids '$c1' '$c2'"
  elif [ "$h1" != $((h0 + 2)) ]; then fail "not pooled runs (hits $h0 -> $h1)"
  else pass; fi

  t_begin "microvm pool: the workspace is the claimant's, read-write, attached at claim time"
  mv_wait_idle 2
  h0=$(mv_num hits)
  rm -f "$mvp_work/made-inside" "$mvp_other/made-inside"
  a=$(mvrun -- sh -c 'echo "$(pwd) $(cat a-file) $(ls)"; echo in-a >made-inside' 2>/dev/null)
  b=$(cd "$mvp_other" && env AGENTKERNEL_STATE_DIR="$mvp_state" "$AK" run --config "$mvp_cfg" --backend microvm \
      --no-network -- sh -c 'echo "$(pwd) $(cat b-file) $(ls)"; id -u; echo in-b >made-inside' 2>/dev/null)
  h1=$(mv_num hits)
  if [ "$a" != "/workspace from-a a-file" ]; then fail "first claimant saw: $a"
  elif [ "$b" != "$(printf '/workspace from-b b-file\n1000')" ]; then fail "second claimant saw: $b"
  elif [ "$(cat "$mvp_work/made-inside" 2>/dev/null)" != in-a ] || [ "$(cat "$mvp_other/made-inside" 2>/dev/null)" != in-b ]; then
    fail "writes did not land in the claimants' workspaces"
  elif [ "$(stat -c %u:%g "$mvp_other/made-inside")" != 4242:4242 ]; then
    fail "a file written in the workspace belongs to $(stat -c %u:%g "$mvp_other/made-inside"), not its owner 4242"
  elif [ "$h1" != $((h0 + 2)) ]; then fail "not pooled runs (hits $h0 -> $h1)"
  else pass; fi

  t_begin "microvm pool: nothing the command started outlives the run"
  mv_wait_idle 2
  rm -f "$mvp_work/late"
  # (Its streams closed: a process holding them keeps the run going.)
  mvrun -- sh -c '(sleep 2; touch /workspace/late) </dev/null >/dev/null 2>&1 & echo "$0"' "$MARK" >"$mvp_state/bg" 2>/dev/null
  sleep 5
  if ! grep -q "$MARK" "$mvp_state/bg"; then fail "did not run: $(cat "$mvp_state/bg")"
  elif [ -e "$mvp_work/late" ]; then fail "a background process wrote after the run ended"
  else pass; fi
  t_begin "microvm pool: control: a waited-for background write lands"
  mv_wait_idle 2
  mvrun -- sh -c '(sleep 2; touch /workspace/late) </dev/null >/dev/null 2>&1 & wait' >/dev/null 2>&1
  [ -e "$mvp_work/late" ] && pass || fail "the write did not land"
  rm -f "$mvp_work/late"

  t_begin "microvm pool: a claimant killed mid-command takes its VM down"
  mv_wait_idle 2
  dpid=$(mv_num pid)
  vms=$(for p in $(pgrep -g "$dpid"); do [ "$(cat /proc/$p/comm 2>/dev/null)" = qemu-system-x86 ] && echo "$p"; done)
  h0=$(mv_num hits)
  # (exec: $! is agentkernel itself.)
  (cd "$mvp_work" && exec env AGENTKERNEL_STATE_DIR="$mvp_state" "$AK" run --config "$mvp_cfg" --backend microvm \
     --no-network -- sleep 300 >/dev/null 2>&1) &
  cpid=$!
  for _ in $(seq 100); do [ "$(mv_num hits)" != "$h0" ] && break; sleep 0.2; done
  sleep 2
  kill -KILL "$cpid"; wait "$cpid" 2>/dev/null
  n=2
  for _ in $(seq 150); do
    n=0
    for p in $vms; do [ -d /proc/$p ] && n=$((n + 1)); done
    [ "$n" = 1 ] && break
    sleep 0.2
  done
  if [ "$(echo $vms | wc -w)" != 2 ]; then fail "expected 2 idle VMs, found: $vms"
  elif [ "$(mv_num hits)" != $((h0 + 1)) ]; then fail "the run did not claim a VM"
  elif [ "$n" != 1 ]; then fail "$n of the 2 VMs still run after the claimant was killed"
  else pass; fi

  t_begin "microvm pool: kill -9 of the daemon leaves no QEMU or virtiofsd"
  mv_wait_idle 2
  dpid=$(mv_num pid)
  pids=$(pgrep -g "$dpid")
  vmm=$(for p in $pids; do cat /proc/$p/comm 2>/dev/null; done | grep -cE '^(qemu-system-x86|virtiofsd)')
  kill -KILL "$dpid"
  left=
  for _ in $(seq 150); do
    left=
    for p in $pids; do [ -d /proc/$p ] && left="$left $p"; done
    [ -z "$left" ] && break
    sleep 0.2
  done
  if [ "$vmm" -lt 4 ]; then fail "expected the QEMU and virtiofsd processes of 2 VMs, found $vmm among: $pids"
  elif [ -n "$left" ]; then fail "left running:$(for p in $left; do printf ' %s' "$(cat /proc/$p/comm 2>/dev/null)"; done)"
  else pass; fi

  # Read-only: the workspace attached at claim time is read-only, enforced
  # on the host (a daemon of its own: the whole config is the shape's).
  mvp_ro_state=$(mktemp -d)
  chmod 755 "$mvp_ro_state"
  printf '[security]\nmount_cwd = true\nnetwork = false\nread_only = true\n[daemon]\npool_size = 1\nshapes = [{ profile = "moderate", network = false, backend = "microvm" }]\n' \
    >"$mvp_ro_state/ro.toml"
  rorun () { (cd "$mvp_work" && env AGENTKERNEL_STATE_DIR="$mvp_ro_state" "$AK" run --config "$mvp_ro_state/ro.toml" \
               --backend microvm --no-network "$@"); }
  (cd "$mvp_work" && env AGENTKERNEL_STATE_DIR="$mvp_ro_state" "$AK" daemon start --config "$mvp_ro_state/ro.toml" >/dev/null)
  t_begin "microvm pool: a read-only profile's workspace is read-only (host-enforced)"
  mv_wait_idle 1 "$mvp_ro_state"
  rm -f "$mvp_work/ro-new"
  h0=$(pool_num hits "$mvp_ro_state")
  out=$(rorun -- sh -c 'cat a-file; echo "$0"; echo x >/workspace/ro-new && echo WROTE' "$MARK" 2>&1)
  h1=$(pool_num hits "$mvp_ro_state")
  if ! printf '%s' "$out" | grep -q "$MARK"; then fail "did not run: $out"
  elif ! printf '%s' "$out" | grep -q '^from-a$'; then fail "control: the workspace is not readable: $out"
  elif printf '%s' "$out" | grep -q WROTE || [ -e "$mvp_work/ro-new" ]; then fail "wrote to a read-only workspace"
  elif ! printf '%s' "$out" | grep -qi 'read-only'; then fail "not refused as read-only: $out"
  elif [ "$h1" != $((h0 + 1)) ]; then fail "not a pooled run (hits $h0 -> $h1)"
  else pass; fi
  env AGENTKERNEL_STATE_DIR="$mvp_ro_state" "$AK" daemon stop >/dev/null
  rm -rf "$mvp_state" "$mvp_ro_state" "$mvp_work" "$mvp_other"
fi
