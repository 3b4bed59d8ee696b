# The sandbox ends with agentkernel, however agentkernel ends, and leaves
# nothing behind on the host.

echo "== lifecycle"
# Processes of a run, tagged with a unique marker; zombies hold nothing.
alive () { ps -eo stat=,args= | awk -v m="$1" '$1 !~ /^Z/ && index($0, m) && !/awk/ && !/agentkernel/' ; }

mounts_before=$(wc -l </proc/self/mountinfo)

# On a VM the sandbox's processes are inside the guest, out of the host's
# sight: what the host sees of the sandbox is the run's process tree (its
# supervisor, QEMU, virtiofsd). vm_tree SUP: that tree, once QEMU is up.
vm_tree () {
  local t
  for _ in $(seq $(tries 150)); do
    t=$(t_tree "$1" | grep -vx "$1")
    for k in $t; do [ "$(cat "/proc/$k/comm" 2>/dev/null)" = qemu-system-x86 ] && { echo $t; return; }; done
    sleep 0.1
  done
  echo $t
}
# vm_left PIDS: those still running (a zombie waiting for its reaper is gone).
vm_left () {
  local k
  for k in "$@"; do [ -e "/proc/$k" ] && [ "$(awk '{print $3}' "/proc/$k/stat" 2>/dev/null)" != Z ] && printf '%s(%s) ' "$k" "$(cat "/proc/$k/comm" 2>/dev/null)"; done
}
# vm_wait_gone PIDS: polls until none is left.
vm_wait_gone () { for _ in $(seq $(tries 50)); do [ -z "$(vm_left "$@")" ] && return; sleep 0.1; done; }
# started FILE: waits for the command's "started" on its output.
started () { for _ in $(seq $(tries 150)); do grep -q started "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
lc_out=$(mktemp)
# lc_term CMD STATUS N: `run -- sh -c CMD` in the background, SIGTERM to
# agentkernel once the command runs; passes when agentkernel exits STATUS
# and nothing of the sandbox is left.  CMD says "started" (seen on a VM)
# and holds the marker $m in its processes' command lines (seen on the
# container, which waits for N of them).
lc_term () {
  local sup rc tree
  if ! on_container; then
    "$AK" run -- sh -c "$1" >"$lc_out" 2>/dev/null &
    sup=$!
    started "$lc_out"
    tree=$(vm_tree "$sup")
    kill -TERM "$sup"
    wait "$sup"
    rc=$?
    vm_wait_gone $tree
    [ "$rc" = "$2" ] && [ -n "$tree" ] && [ -z "$(vm_left $tree)" ] && pass || fail "status $rc, left: $(vm_left $tree) (tree: $tree)"
  else
    "$AK" run -- sh -c "$1" >/dev/null 2>&1 &
    sup=$!
    for _ in $(seq 50); do [ "$(alive "$m" | wc -l)" -ge "$3" ] && break; sleep 0.1; done
    kill -TERM "$sup"
    wait "$sup"
    rc=$?
    sleep 0.3
    [ "$rc" = "$2" ] && [ -z "$(alive "$m")" ] && pass || fail "status $rc, left: $(alive "$m")"
  fi
}

if ! on_container; then
  if want "kill -9 of agentkernel ends the whole sandbox"; then
    "$AK" run -- sh -c "(sleep 300) & echo started; sleep 301" >"$lc_out" 2>/dev/null &
    sup=$!
    if ! started "$lc_out"; then
      fail "the command did not start"; kill -9 "$sup"
    else
      tree=$(vm_tree "$sup")
      kill -9 "$sup"
      wait "$sup" 2>/dev/null
      vm_wait_gone $tree
      [ -n "$tree" ] && [ -z "$(vm_left $tree)" ] && pass || fail "left: $(vm_left $tree) (tree: $tree)"
    fi
  fi
elif want "kill -9 of agentkernel ends the whole sandbox"; then
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sh -c "(sleep 300; : $m) & sleep 301; : $m" >/dev/null 2>&1 &
sup=$!
for _ in $(seq 50); do [ -n "$(alive "$m")" ] && break; sleep 0.1; done
if [ -z "$(alive "$m")" ]; then
  fail "sandbox did not start"
else
  kill -9 "$sup"
  wait "$sup" 2>/dev/null
  for _ in $(seq 50); do [ -z "$(alive "$m")" ] && break; sleep 0.1; done
  [ -z "$(alive "$m")" ] && pass || fail "left: $(alive "$m")"
fi
fi

if want "SIGTERM to agentkernel ends the sandbox: 143, background jobs too"; then
  m="ak-marker-$RANDOM$RANDOM"
  lc_term "(sleep 300; : $m) & echo started; sleep 301; : $m" 143 2
fi

if want "SIGINT (Ctrl-C) to agentkernel: 130"; then
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sh -c 'echo started; exec sleep 302' >"$lc_out" 2>&1 &
sup=$!
if on_container; then sleep 0.5; else started "$lc_out"; fi
kill -INT "$sup"
wait "$sup"
rc=$?
[ "$rc" = 130 ] && pass || fail "status $rc"
fi

if command -v script >/dev/null; then
  # The command says when it runs; ^C is typed then (a VM boots first).
  if want "Ctrl-C on a real terminal ends the sandbox: 130"; then
    out=$( (tsleep 1.5; printf '\003'; sleep 1) | script -qefc "$AK run -- sleep 100" /dev/null 2>&1; echo "rc=$?")
    case "$out" in *rc=130*) pass ;; *) fail "$out" ;; esac
  fi
  if ! want "Ctrl-C on a real terminal reaches the command once"; then :
  elif on_container; then
    out=$( (sleep 1.5; printf '\003'; sleep 1) | script -qefc "$AK run -- sh -c 'trap \"echo got-int\" INT; sleep 3; echo done'" /dev/null 2>&1)
    [ "$(printf '%s' "$out" | grep -c got-int)" = 1 ] && printf '%s' "$out" | grep -q done && pass || fail "$out"
  else
    # ^C is typed once the command says it runs (the terminal's log tells;
    # its header holds the command line, so the word is printed in halves).
    ts=$(mktemp)
    out=$( (for _ in $(seq $(tries 150)); do grep -q ready "$ts" && break; sleep 0.1; done; sleep 0.5; printf '\003'; sleep 1) |
      script -qefc "$AK run -- sh -c 'trap \"echo got-int\" INT; printf \"%s%s\\\\n\" rea dy; sleep 20; echo done'" "$ts" 2>&1)
    rm -f "$ts"
    [ "$(printf '%s' "$out" | grep -c got-int)" = 1 ] && printf '%s' "$out" | grep -q done && pass || fail "$out"
  fi
fi

if want "a command ignoring SIGTERM is killed after the grace period"; then
  m="ak-marker-$RANDOM$RANDOM"
  lc_term "trap '' TERM; echo started; sleep 303; : $m" 137 1
fi

if ! on_container; then
  if want "background processes end with the command"; then
    "$AK" run -- sh -c "(sleep 304) >/dev/null 2>&1 & echo started" >"$lc_out" 2>/dev/null &
    sup=$!
    tree=$(vm_tree "$sup")
    # The run ends by itself (bounded: a run held open fails below).
    for _ in $(seq $(tries 50)); do kill -0 "$sup" 2>/dev/null || break; sleep 0.1; done
    vm_wait_gone $tree
    if kill -0 "$sup" 2>/dev/null; then fail "the run did not end"; kill -9 "$sup"
    elif [ -n "$(vm_left $tree)" ]; then fail "left: $(vm_left $tree)"
    else pass; fi
    wait "$sup" 2>/dev/null
  fi
elif want "background processes end with the command"; then
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sh -c "(sleep 304; : $m) >/dev/null 2>&1 & echo started" >/dev/null 2>&1
sleep 0.3
[ -z "$(alive "$m")" ] && pass || fail "left: $(alive "$m")"
fi
# A background process that keeps the command's output open ends with the
# command too: the run returns when the command does.
saved_timeout=$T_TIMEOUT
T_TIMEOUT=$((T_SLOW * 3 + 30))
expect "a background process holding the output does not hold the run" 0 '^started$' -- "$AK" run -- sh -c 'sleep 305 & echo started'
T_TIMEOUT=$saved_timeout

if on_container; then
t_begin "no network helper left running"
sleep 0.5
# Helpers started from this test run live in its cgroups (or below them);
# another session's processes on the same machine are not ours to count.
mine () { awk -F: 'BEGIN { while ((getline l < "/proc/self/cgroup") > 0) { split(l, a, ":"); own[a[1]] = a[3] } }
  { p = own[$1]; if (p != "/" && index($3, p) != 1) exit 1 }' "/proc/$1/cgroup" 2>/dev/null; }
left=$(ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && ($3 == "slirp4netns" || $3 == "pasta" || $3 == "passt.avx2")' |
  while read -r pid st comm; do mine "$pid" && echo "$pid $comm"; done)
[ -z "$left" ] && pass || fail "$left"
else
  container_only "no network helper left running" "the host-side network helper; a VM's QEMU and virtiofsd are checked above"
fi

if want "nothing mounted on the host"; then
  [ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ] && ! grep -q 'newroot\|oldroot' /proc/self/mountinfo && pass || fail "mount table changed"
fi
rm -f "$lc_out"

echo "== rootfs"
rootfs=$(mktemp -d)
mkdir -p "$rootfs/bin" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
ln -s busybox "$rootfs/bin/cat"
echo 'from-rootfs' >"$rootfs/etc/issue"
chmod -R a+rX "$rootfs"
expect "--rootfs: runs in the given tree" 0 from-rootfs -- "$AK" run --rootfs "$rootfs" -- /bin/cat /etc/issue
expect "--rootfs: writes stay private" 0 '' -- "$AK" run --rootfs "$rootfs" -- /bin/sh -c 'echo x >/etc/issue; echo y >/new'
if want "--rootfs: the directory is unchanged"; then
  [ "$(cat "$rootfs/etc/issue")" = from-rootfs ] && [ ! -e "$rootfs/new" ] && pass || fail "changed"
fi
expect "--rootfs read-only (restrictive)" 1 'Read-only' -- "$AK" run --profile restrictive --rootfs "$rootfs" -- /bin/sh -c 'echo x >/etc/issue'
expect "--rootfs missing" 125 'rootfs /nonexistent' -- "$AK" run --rootfs /nonexistent -- true
rm -rf "$rootfs"
