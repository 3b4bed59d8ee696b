# The sandbox ends with agentkernel, however agentkernel ends, and leaves
# nothing behind on the host.

echo "== lifecycle"
# Processes of a run, tagged with a unique marker; zombies hold nothing.
alive () { ps -eo stat=,args= | awk -v m="$1" '$1 !~ /^Z/ && index($0, m) && !/awk/ && !/agentkernel/' ; }

mounts_before=$(wc -l </proc/self/mountinfo)

t_begin "kill -9 of agentkernel ends the whole sandbox"
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

t_begin "SIGTERM to agentkernel ends the sandbox: 143, background jobs too"
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sh -c "(sleep 300; : $m) & sleep 301; : $m" >/dev/null 2>&1 &
sup=$!
for _ in $(seq 50); do [ "$(alive "$m" | wc -l)" -ge 2 ] && break; sleep 0.1; done
kill -TERM "$sup"
wait "$sup"
rc=$?
sleep 0.3
if [ "$rc" = 143 ] && [ -z "$(alive "$m")" ]; then pass; else fail "status $rc, left: $(alive "$m")"; fi

t_begin "SIGINT (Ctrl-C) to agentkernel: 130"
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sleep 302 >/dev/null 2>&1 &
sup=$!
sleep 0.5
kill -INT "$sup"
wait "$sup"
rc=$?
[ "$rc" = 130 ] && pass || fail "status $rc"

if command -v script >/dev/null; then
  t_begin "Ctrl-C on a real terminal ends the sandbox: 130"
  out=$( (sleep 1.5; printf '\003'; sleep 1) | script -qefc "$AK run -- sleep 100" /dev/null 2>&1; echo "rc=$?")
  case "$out" in *rc=130*) pass ;; *) fail "$out" ;; esac
  t_begin "Ctrl-C on a real terminal reaches the command once"
  out=$( (sleep 1.5; printf '\003'; sleep 1) | script -qefc "$AK run -- sh -c 'trap \"echo got-int\" INT; sleep 3; echo done'" /dev/null 2>&1)
  [ "$(printf '%s' "$out" | grep -c got-int)" = 1 ] && printf '%s' "$out" | grep -q done && pass || fail "$out"
fi

t_begin "a command ignoring SIGTERM is killed after the grace period"
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sh -c "trap '' TERM; sleep 303; : $m" >/dev/null 2>&1 &
sup=$!
for _ in $(seq 50); do [ -n "$(alive "$m")" ] && break; sleep 0.1; done
kill -TERM "$sup"
wait "$sup"
rc=$?
sleep 0.3
if [ "$rc" = 137 ] && [ -z "$(alive "$m")" ]; then pass; else fail "status $rc, left: $(alive "$m")"; fi

t_begin "background processes end with the command"
m="ak-marker-$RANDOM$RANDOM"
"$AK" run -- sh -c "(sleep 304; : $m) >/dev/null 2>&1 & echo started" >/dev/null 2>&1
sleep 0.3
[ -z "$(alive "$m")" ] && pass || fail "left: $(alive "$m")"

t_begin "no network helper left running"
sleep 0.5
# Helpers started from this test run live in its cgroups (or below them);
# another session's processes on the same machine are not ours to count.
mine () { awk -F: 'BEGIN { while ((getline l < "/proc/self/cgroup") > 0) { split(l, a, ":"); own[a[1]] = a[3] } }
  { p = own[$1]; if (p != "/" && index($3, p) != 1) exit 1 }' "/proc/$1/cgroup" 2>/dev/null; }
left=$(ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && ($3 == "slirp4netns" || $3 == "pasta" || $3 == "passt.avx2")' |
  while read -r pid st comm; do mine "$pid" && echo "$pid $comm"; done)
[ -z "$left" ] && pass || fail "$left"

t_begin "nothing mounted on the host"
[ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ] && ! grep -q 'newroot\|oldroot' /proc/self/mountinfo && pass || fail "mount table changed"

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
t_begin "--rootfs: the directory is unchanged"
[ "$(cat "$rootfs/etc/issue")" = from-rootfs ] && [ ! -e "$rootfs/new" ] && pass || fail "changed"
expect "--rootfs read-only (restrictive)" 1 'Read-only' -- "$AK" run --profile restrictive --rootfs "$rootfs" -- /bin/sh -c 'echo x >/etc/issue'
expect "--rootfs missing" 125 'rootfs /nonexistent' -- "$AK" run --rootfs /nonexistent -- true
rm -rf "$rootfs"
