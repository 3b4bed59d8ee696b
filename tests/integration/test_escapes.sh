# Escapes: every way a hostile command (or the repository it runs in) was
# found to reach the host, each written as the attack.  Each must fail on a
# sandbox without the fix, and passes as root and as an unprivileged user.
# A deny case proves the attacking command ran ($MARK) and, where it can,
# shows the same action allowed without the rule.

esc_dir=$(mktemp -d)
chmod 755 "$esc_dir"
export AGENTKERNEL_STATE_DIR=${AGENTKERNEL_STATE_DIR:-$esc_dir/state}
mkdir -p "$AGENTKERNEL_STATE_DIR"

echo "== escapes 1: helpers never touch host mounts"
# Every kind of run (network through slirp4netns or pasta, no network, a
# persistent sandbox's start/exec/stop), each between two looks at the mount
# table, compared by mount point and type (ids change).  As root, in a mount
# namespace of the test's own whose "/" is made shared (systemd's default,
# where slirp4netns's sandbox used to unmount /dev/pts, /dev/shm and the
# cgroups on the host) and then private; as a user, the host's own table.
cat >"$esc_dir/mounts.sh" <<'EOS'
#!/bin/sh
# mounts.sh MODE: MODE is shared, private (run under unshare -m) or host.
case $1 in
  shared) mount --make-rprivate / && mount --make-rshared / || exit 2 ;;
  private) mount --make-rprivate / || exit 2 ;;
esac
table () { awk '{print $5, $9}' /proc/self/mountinfo | sort; }
bad=0
check () {
  before=$(table)
  "$@" || { echo "failed: $*"; bad=1; }
  after=$(table)
  if [ "$before" != "$after" ]; then
    echo "mount table changed by: $*"
    printf '%s\n' "$before" >"$scratch/b"; printf '%s\n' "$after" >"$scratch/a"
    diff "$scratch/b" "$scratch/a" | head -5
    bad=1
  fi
}
persistent () {
  "$AK" create "mnt-$1" -v "$scratch:/workspace/vol" >/dev/null && AK_NET_HELPER=$1 "$AK" start "mnt-$1" &&
    "$AK" exec "mnt-$1" -- sh -c "echo $MARK" && "$AK" stop "mnt-$1" && "$AK" remove "mnt-$1"
  rc=$?
  "$AK" remove --force "mnt-$1" >/dev/null 2>&1
  return $rc
}
scratch=$(mktemp -d)
for h in slirp4netns pasta; do
  check env AK_NET_HELPER=$h "$AK" run -- sh -c "echo $MARK"
  check persistent $h
done
check "$AK" run --no-network -- sh -c "echo $MARK"
check "$AK" run --profile permissive -v "$scratch:/workspace/vol" -- sh -c "echo $MARK"
rm -rf "$scratch"
[ $bad = 0 ] && echo "mounts unchanged"
exit $bad
EOS
chmod 755 "$esc_dir/mounts.sh"
if is_root; then
  for mode in shared private; do
    attack "every kind of run leaves the mount table alone (/ $mode)" 0 '^mounts unchanged$' -- \
      env AK="$AK" MARK="$MARK" unshare -m "$esc_dir/mounts.sh" $mode
  done
else
  attack "every kind of run leaves the host's mount table alone" 0 '^mounts unchanged$' -- \
    env AK="$AK" MARK="$MARK" "$esc_dir/mounts.sh" host
fi

echo "== escapes 2: no set-id bits across the boundary"
# What a sandbox creates in /workspace or a read-write volume belongs on the
# host to the share's owner (root, for root's workspace, through the
# idmapped mount): a set-id bit there gives any local user that owner's ids.
# Every route is tried from inside; the host then looks at the share.
sid=$esc_dir/setid
mkdir -p "$sid/ws" "$sid/vol" "$sid/in/t"
chmod -R 755 "$sid"
echo x >"$sid/in/t/suid" && chmod 4755 "$sid/in/t/suid"
tar -cf "$sid/in/suid.tar" -C "$sid/in/t" suid
# sid_host DIR CMD...: runs CMD, then says whether DIR holds a set-id file
# (as seen from the host), and empties DIR for the next case.
sid_host () {
  local dir=$1 found
  shift
  "$@"
  found=$(find "$dir" -mindepth 1 -perm /6000 -printf '%M %u %p\n' | head -3)
  find "$dir" -mindepth 1 -delete
  if [ -n "$found" ]; then echo "host: set-id file: $found"; return 1; fi
  echo "host: no set-id file"
}
in_ws () { (cd "$sid/ws" && "$@"); }
plant='cp /bin/sh /workspace/rootsh && chmod 4755 /workspace/rootsh'
attack "chmod 4755 in /workspace (the attack)" 0 '^host: no set-id file$' -- \
  sid_host "$sid/ws" in_ws "$AK" run --profile permissive -- sh -c "echo $MARK; $plant"
owner=$(id -un)
attack "without the filter the same plants a set-id file (control)" 1 "^host: set-id file: -rwsr-xr-x $owner " -- \
  sid_host "$sid/ws" in_ws env AK_TEST_DISABLE=seccomp "$AK_TEST_BIN" run --profile permissive -- sh -c "echo $MARK; $plant"
attack "chmod g+s / u+s in /workspace" 0 '^host: no set-id file$' -- \
  sid_host "$sid/ws" in_ws "$AK" run --profile permissive -- sh -c "echo $MARK; touch /workspace/a /workspace/b; chmod g+s /workspace/a; chmod u+s /workspace/b"
attack "tar -xpf of a 4755 file into a volume" 0 '^host: no set-id file$' -- \
  sid_host "$sid/vol" "$AK" run -v "$sid/vol:/data" -v "$sid/in:/in:ro" -- sh -c "echo $MARK; tar -xpf /in/suid.tar -C /data"
attack "tar -xpf without the filter (control)" 1 '^host: set-id file: -rwsr-xr-x' -- \
  sid_host "$sid/vol" env AK_TEST_DISABLE=seccomp "$AK_TEST_BIN" run -v "$sid/vol:/data" -v "$sid/in:/in:ro" -- sh -c "echo $MARK; tar -xpf /in/suid.tar -C /data"
for route in chmod fchmod fchmodat fchmodat2 open openat creat openat2 tmpfile mknod mknodat; do
  for mode in 4755 2755; do
    attack "$route $mode in a volume" 0 '^host: no set-id file$' -- \
      sid_host "$sid/vol" sbx -v "$sid/vol:/data" -- sh -c "echo $MARK; /probe setid /data/f $route $mode"
  done
  attack "restrictive: $route 6755 in a volume" 0 '^host: no set-id file$' -- \
    sid_host "$sid/vol" sbx --profile restrictive -v "$sid/vol:/data" -- sh -c "echo $MARK; /probe setid /data/f $route 6755"
  [ $route = openat2 ] && continue
  attack "$route 0755 still works" 0 '^allowed' -- \
    sid_host "$sid/vol" sbx -v "$sid/vol:/data" -- sh -c "echo $MARK; /probe setid /data/f $route 755"
  attack "$route 4755 without the filter (control)" 1 '^host: set-id file: -rwsr-xr-x' -- \
    sid_host "$sid/vol" env AK_TEST_DISABLE=seccomp "$AK_TEST_BIN" run -v "$PROBE:/probe:ro" -v "$sid/vol:/data" -- \
    sh -c "echo $MARK; /probe setid /data/f $route 4755"
done
attack "exec in a persistent sandbox: chmod 4755 in a volume" 0 '^host: no set-id file$' -- \
  sid_host "$sid/vol" sh -c '"$1" create sidbox -v "$2:/data" >/dev/null && "$1" start sidbox &&
    "$1" exec sidbox -- sh -c "echo $3; touch /data/x; chmod 4755 /data/x"; "$1" remove --force sidbox >/dev/null' _ "$AK" "$sid/vol" "$MARK"

echo "== escapes 3: the API server is the caller's alone"

echo "== escapes 4: persistent-root symlinks are not followed at start"

echo "== escapes 5: host sources are pinned"

echo "== escapes 6: a found agentkernel.toml only tightens"

echo "== escapes 7: no inherited descriptors"

echo "== escapes 8: agentkernel's state and credentials are hidden"

echo "== escapes 9: bounded disk and memory"

echo "== escapes 10: no hangs, no orphans"

echo "== escapes 11: cp out never writes a symlink pointing outside"

rm -rf "$esc_dir" 2>/dev/null
