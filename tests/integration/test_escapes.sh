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
