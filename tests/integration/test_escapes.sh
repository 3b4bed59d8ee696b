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
# Another local user POSTs a permissive /run to the server root (or anyone)
# started without a key.  The command would leave a file in the server's
# working directory, shown at /workspace by the permissive profile.
e3=$esc_dir/e3
mkdir -p "$e3/work"
chmod 755 "$e3"
chmod 777 "$e3/work"
e3pids=
# e3serve LOG ARGS...: starts a server in $e3/work; sets e3port.
e3serve () {
  local log=$1
  shift
  (cd "$e3/work" && exec "$AK" serve --port 0 "$@") 2>"$log" &
  e3pids="$e3pids $!"
  e3port=
  for _ in $(seq 50); do
    e3port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log")
    [ -n "$e3port" ] && break
    sleep 0.1
  done
}
# e3post PORT FILE [CURL ARGS...]: a permissive /run creating /workspace/FILE;
# prints the status and the body.
e3post () {
  local port=$1 file=$2
  shift 2
  curl -s -w ' HTTP %{http_code}' -H 'Content-Type: application/json' "$@" \
    -d "{\"profile\":\"permissive\",\"command\":[\"sh\",\"-c\",\"echo $MARK > /workspace/$file; echo $MARK\"]}" \
    "http://127.0.0.1:$port/run"
}
e3serve "$e3/open.log" --max-profile permissive
if [ -z "$e3port" ]; then
  t_begin "escapes 3: server without a key starts"; fail "$(cat "$e3/open.log")"
else
  if is_root && id aktest >/dev/null 2>&1; then
    expect "escapes 3: another local user's /run to a keyless server is refused (403)" 0 'forbidden: this server serves uid 0 only.* HTTP 403$' -- runuser -u aktest -- sh -c "cd /; $(declare -f e3post); MARK=$MARK e3post $e3port ran-aktest"
    t_begin "escapes 3: the other user's command did not run"
    if [ -e "$e3/work/ran-aktest" ]; then fail "$e3/work/ran-aktest exists"; else pass; fi
  else
    t_begin "escapes 3: another local user's /run to a keyless server is refused"
    skip_lacks "needs root and the user aktest"
  fi
  expect "escapes 3 control: the server's own user is served" 0 "$MARK.* HTTP 200$" -- e3post "$e3port" ran-own
  t_begin "escapes 3 control: the own user's command ran"
  if [ -e "$e3/work/ran-own" ]; then pass; else fail "no $e3/work/ran-own"; fi
fi
if is_root && id aktest >/dev/null 2>&1; then
  AGENTKERNEL_API_KEY=e3-key e3serve "$e3/key.log" --max-profile permissive
  expect "escapes 3 control: another user with the API key is served" 0 "$MARK.* HTTP 200$" -- runuser -u aktest -- sh -c "cd /; $(declare -f e3post); MARK=$MARK e3post $e3port ran-key -H 'X-API-Key: e3-key'"
  expect "escapes 3: another user without the key gets 401" 0 ' HTTP 401$' -- runuser -u aktest -- sh -c "cd /; $(declare -f e3post); MARK=$MARK e3post $e3port ran-nokey"
fi
e3serve "$e3/cap.log"
expect "escapes 3: --max-profile defaults to moderate: a permissive /run is refused (403)" 0 'at most moderate.*serve --max-profile permissive.* HTTP 403$' -- e3post "$e3port" ran-cap
t_begin "escapes 3: the capped command did not run"
if [ -e "$e3/work/ran-cap" ]; then fail "$e3/work/ran-cap exists"; else pass; fi
# The same over a Unix socket: 0600, and its peer's uid (SO_PEERCRED) is
# checked even when the socket is made world-writable.
(cd "$e3/work" && exec "$AK" serve --socket "$e3/ak.sock") 2>"$e3/sock.log" &
e3pids="$e3pids $!"
for _ in $(seq 50); do grep -q listening "$e3/sock.log" && break; sleep 0.1; done
expect "escapes 3: serve --socket makes a 0600 Unix socket" 0 '^srw-------' -- ls -l "$e3/ak.sock"
expect "escapes 3 control: the own user is served over --socket" 0 '"exit_code":0.* HTTP 200$' -- curl -s -w ' HTTP %{http_code}' --unix-socket "$e3/ak.sock" -d '{"command":["true"]}' http://ak/run
if is_root && id aktest >/dev/null 2>&1; then
  chmod 666 "$e3/ak.sock"
  expect "escapes 3: another user through a world-writable --socket is refused (403)" 0 'forbidden: this server serves uid 0 only.* HTTP 403$' -- runuser -u aktest -- curl -s -w ' HTTP %{http_code}' --unix-socket "$e3/ak.sock" -d '{"command":["true"]}' http://ak/run
fi
for p in $e3pids; do kill "$p" 2>/dev/null; done
wait $e3pids 2>/dev/null

echo "== escapes 4: persistent-root symlinks are not followed at start"

echo "== escapes 5: host sources are pinned"

echo "== escapes 6: a found agentkernel.toml only tightens"
# The repository (or the agent, through /workspace) writes
# ./agentkernel.toml to widen an explicit profile.  The trust records go to
# a directory of the test's own.
e6=$esc_dir/e6
mkdir -p "$e6/repo" "$e6/home" "$e6/xdg"
chmod -R 755 "$e6"
echo e6-secret >"$e6/home/id_ed25519"
e6run () { (cd "$e6/repo" && env HOME="$e6/home" XDG_CONFIG_HOME="$e6/xdg" "$AK" "$@"); }
e6home='if [ -e /home/user/id_ed25519 ]; then echo home-visible; else echo home-hidden; fi'
printf '[security]\nmount_home = true\nnetwork = true\n' >"$e6/repo/agentkernel.toml"
attack "escapes 6: repository mount_home = true under --profile restrictive: home stays hidden" 0 '^home-hidden$' -- e6run run --profile restrictive -- sh -c "echo $MARK; $e6home"
expect "escapes 6: the refusal names file, line, setting and how to trust" 0 "agentkernel.toml:2: \[security\] mount_home = true ignored: it would widen profile restrictive.*config trust" -- e6run run --profile restrictive -- true
expect "escapes 6: repository network = true under restrictive stays off" 0 '^network = false  # profile restrictive' -- e6run config show --profile restrictive
expect "escapes 6 control: --config FILE widens" 0 '^home-visible$' -- e6run run --profile restrictive --config agentkernel.toml -- sh -c "$e6home"
expect "escapes 6 control: config trust" 0 '^trusted ' -- e6run config trust
expect "escapes 6 control: a trusted file widens" 0 '^home-visible$' -- e6run run --profile restrictive -- sh -c "$e6home"
# The agent rewrites the trusted file from inside (permissive shows the
# caller's directory at /workspace): the change untrusts it.
expect "escapes 6: the sandbox rewrites its trusted agentkernel.toml" 0 '' -- e6run run --profile permissive -- sh -c 'printf "[security]\nmount_home = true\nread_only = false\n" >/workspace/agentkernel.toml'
attack "escapes 6: a trusted file changed is untrusted again" 0 '^home-hidden$' -- e6run run --profile restrictive -- sh -c "echo $MARK; $e6home"
printf '[security]\nprofile = "permissive"\n' >"$e6/repo/agentkernel.toml"
attack "escapes 6: repository profile = permissive cannot loosen the default moderate" 0 '^home-hidden$' -- e6run run -- sh -c "echo $MARK; $e6home"
expect "escapes 6: the refused profile is named" 0 'refused \(would widen\): line 2: \[security\] profile = "permissive"' -- e6run config show
printf '[security]\nprofile = "restrictive"\n' >"$e6/repo/agentkernel.toml"
expect "escapes 6: a repository may still tighten (restrictive: read-only root)" 1 'Read-only' -- e6run run -v "$PROBE:/probe:ro" -- /probe write /newfile

echo "== escapes 7: no inherited descriptors"

echo "== escapes 8: agentkernel's state and credentials are hidden"

echo "== escapes 9: bounded disk and memory"

echo "== escapes 10: no hangs, no orphans"

echo "== escapes 11: cp out never writes a symlink pointing outside"

rm -rf "$esc_dir" 2>/dev/null
