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
    printf '%s\n' "$before" >"$TMPDIR/b"; printf '%s\n' "$after" >"$TMPDIR/a"
    diff "$TMPDIR/b" "$TMPDIR/a" | head -5
    bad=1
  fi
}
persistent () {
  "$AK" create "mnt-$1" -v "$TMPDIR:/workspace/vol" >/dev/null && AK_NET_HELPER=$1 "$AK" start "mnt-$1" &&
    "$AK" exec "mnt-$1" -- sh -c "echo $MARK" && "$AK" stop "mnt-$1" && "$AK" remove "mnt-$1"
  rc=$?
  "$AK" remove --force "mnt-$1" >/dev/null 2>&1
  return $rc
}
TMPDIR=$(mktemp -d)
for h in slirp4netns pasta; do
  check env AK_NET_HELPER=$h "$AK" run -- sh -c "echo $MARK"
  check persistent $h
done
check "$AK" run --no-network -- sh -c "echo $MARK"
check "$AK" run --profile permissive -v "$TMPDIR:/workspace/vol" -- sh -c "echo $MARK"
rm -rf "$TMPDIR"
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
