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
# The victims: host directories the sandbox's host id could write (under the
# caller's own home when unprivileged; owned by the sandbox's host id when
# run as root, whose home the sandbox could not traverse anyway).
if is_root || ! e4=$(mktemp -d "$HOME/.ak-e4.XXXXXX" 2>/dev/null); then
  e4=$esc_dir/e4
  mkdir -p "$e4"
fi
chmod 755 "$e4"
mkdir "$e4/vartmp" "$e4/etc" "$e4/home" "$e4/files" "$e4/cfg"
chmod 755 "$e4/vartmp" "$e4/etc" "$e4/home" "$e4/files"
is_root && chown 1000001000:1000001000 "$e4/vartmp" "$e4/etc" "$e4/home" "$e4/files"
echo injected >"$e4/cfg/x"
printf '[[files]]\nsource = "x"\ndest = "/opt/cfg/x"\n' >"$e4/cfg/agentkernel.toml"
chmod -R a+rX "$e4/cfg"
e4_host_unchanged () {
  [ "$(stat -c %a "$e4/vartmp")" = 755 ] && [ -z "$(find "$e4/etc" "$e4/home" "$e4/files" -mindepth 1)" ]
}
"$AK" create e4sys >/dev/null && "$AK" start e4sys
attack "4: plant symlinks to host directories at /var/tmp, /etc, /home" 0 "" -- \
  "$AK" exec e4sys -- sh -c "echo $MARK; rm -rf /var/tmp && ln -s /oldroot$e4/vartmp /var/tmp &&
    mv /etc /etc.old && ln -s /oldroot$e4/etc /etc && mv /home /home.old && ln -s /oldroot$e4/home /home"
"$AK" stop e4sys >/dev/null
expect "4: the sandbox starts again over its planted symlinks" 0 "" -- "$AK" start e4sys
t_begin "4: nothing changed on the host (no chmod 1777, no passwd, no home/user)"
if e4_host_unchanged; then pass; else
  fail "$(stat -c '%a %n' "$e4/vartmp"; find "$e4/etc" "$e4/home" -mindepth 1 | head -5)"; fi
expect "4: real /etc, /var/tmp and /home/user again inside" 0 '^user:x:1000 drwxrwxrwt d d$' -- \
  "$AK" exec e4sys -- sh -c 'set -e; test ! -L /etc; test ! -L /var/tmp; test ! -L /home
    echo "$(grep ^user: /etc/passwd | cut -d: -f1-3) $(stat -c %A /var/tmp) $(stat -c %F /etc | cut -c1) $(stat -c %F /home/user | cut -c1)"'
"$AK" remove --force e4sys >/dev/null
"$AK" create e4files --config "$e4/cfg/agentkernel.toml" >/dev/null && "$AK" start e4files
attack "4: plant a symlink to a host directory where a [[files]] destination goes" 0 "" -- \
  "$AK" exec e4files -- sh -c "echo $MARK; test \"\$(cat /opt/cfg/x)\" = injected && rm -rf /opt/cfg &&
    ln -s /oldroot$e4/files /opt/cfg"
"$AK" stop e4files >/dev/null
expect "4: the start refuses the planted destination, naming it" 125 "/opt/cfg is a symlink" -- \
  "$AK" start e4files
t_begin "4: the injected file is not written into the host directory"
if [ -z "$(ls -A "$e4/files")" ]; then pass; else fail "$(ls -la "$e4/files")"; fi
"$AK" remove --force e4files >/dev/null
rm -rf "$e4"

echo "== escapes 5: host sources are pinned"
# The workspace is the sandbox's to write: after create it swaps a source
# for a symlink (to a host directory or a secret), and the next start must
# refuse it rather than show what the link points at.
e5=$esc_dir/e5
mkdir -p "$e5/work/data" "$e5/work/rootfs/bin" "$e5/secret"
echo workdata >"$e5/work/data/f"
echo filedata >"$e5/work/key"
echo SECRET-DIR >"$e5/secret/f"
echo SECRET-KEY >"$e5/secret/id_key"
cp "$PROBE" "$e5/work/rootfs/bin/probe"
printf '[[files]]\nsource = "key"\ndest = "/etc/key"\n' >"$e5/work/files.toml"
chmod -R a+rwX "$e5"
"$AK" create e5vol -v "$e5/work:/w" -v "$e5/work/data:/data" >/dev/null && "$AK" start e5vol
"$AK" stop e5vol >/dev/null
expect "5: control: an unswapped volume starts again and is shown" 0 '^workdata$' -- \
  sh -c '"$1" start e5vol && "$1" exec e5vol -- cat /data/f' _ "$AK"
attack "5: -v source swapped for a symlink to a host directory" 0 "" -- \
  "$AK" exec e5vol -- sh -c "echo $MARK; rm -rf /w/data && ln -s ../secret /w/data"
"$AK" stop e5vol >/dev/null
expect "5: the next start refuses the swapped volume" 125 "volume .*/work/data .*(replaced|symlink)" -- \
  "$AK" start e5vol
refute "5: the host directory is not shown" "SECRET-DIR" -- "$AK" exec e5vol -- cat /data/f
"$AK" remove --force e5vol >/dev/null
"$AK" create e5file --config "$e5/work/files.toml" -v "$e5/work:/w" >/dev/null && "$AK" start e5file
expect "5: control: the [[files]] source is injected" 0 '^filedata$' -- "$AK" exec e5file -- cat /etc/key
attack "5: [[files]] source swapped for a symlink to a secret" 0 "" -- \
  "$AK" exec e5file -- sh -c "echo $MARK; rm /w/key && ln -s ../secret/id_key /w/key"
"$AK" stop e5file >/dev/null
expect "5: the next start refuses the swapped [[files]] source" 125 "\[\[files\]\] source .*/work/key .*(replaced|symlink)" -- \
  "$AK" start e5file
refute "5: the secret is not copied in" "SECRET-KEY" -- "$AK" exec e5file -- cat /etc/key
"$AK" remove --force e5file >/dev/null
expect "5: a [[files]] source that is a symlink is refused at create" 125 "files.*key.*symlink" -- \
  "$AK" create e5link --config "$e5/work/files.toml"
"$AK" remove --force e5link >/dev/null 2>&1
rm -f "$e5/work/key"; echo filedata >"$e5/work/key"; chmod 666 "$e5/work/key"
"$AK" create e5root --rootfs "$e5/work/rootfs" >/dev/null && "$AK" start e5root
expect "5: control: --rootfs shows the directory" 2 'usage: probe' -- "$AK" exec e5root -- /bin/probe
"$AK" stop e5root >/dev/null
attack "5: --rootfs swapped for a symlink to a host directory" 0 "" -- \
  "$AK" run -v "$e5/work:/w" -- sh -c "echo $MARK; mv /w/rootfs /w/rootfs.old && ln -s .. /w/rootfs"
expect "5: the next start refuses the swapped rootfs" 125 "rootfs .*/work/rootfs .*(replaced|symlink)" -- \
  "$AK" start e5root
"$AK" remove --force e5root >/dev/null
# A sandbox recorded before identities were: refused with what to do.
mkdir -p "$e5/old"
"$AK" create e5old -v "$e5/old:/data" >/dev/null
e5spec=$AGENTKERNEL_STATE_DIR/sandboxes/e5old/spec.json
tr -d '\n' <"$e5spec" | sed -E 's/,[[:space:]]*"pin":[[:space:]]*\{[^}]*\}//g' >"$e5spec.new" &&
  mv "$e5spec.new" "$e5spec"
expect "5: a spec without source identities is refused at start, asking to re-create" 125 \
  "volume .*re-create it" -- "$AK" start e5old
"$AK" remove --force e5old >/dev/null

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
mkdir -p "$e6/home/.ssh" && echo e6-ssh-key >"$e6/home/.ssh/id_ed25519" && chmod -R a+rX "$e6/home"
printf '[security]\nhide_credentials = false\n' >"$e6/repo/agentkernel.toml"
attack "escapes 6: repository hide_credentials = false: credential stores stay hidden" 0 '^ssh-hidden$' -- \
  e6run run --profile permissive -- sh -c "echo $MARK; cat /home/user/.ssh/id_ed25519 2>/dev/null || echo ssh-hidden"
expect "escapes 6 control: with --config the same file shows them" 0 '^e6-ssh-key$' -- \
  e6run run --profile permissive --config agentkernel.toml -- cat /home/user/.ssh/id_ed25519
printf '[security]\nprofile = "restrictive"\n' >"$e6/repo/agentkernel.toml"
expect "escapes 6: a repository may still tighten (restrictive: read-only root)" 1 'Read-only' -- e6run run -v "$PROBE:/probe:ro" -- /probe write /newfile

echo "== escapes 7: no inherited descriptors"
# The caller's shell holds a secret on fd 7 and the host's / on fd 8; a
# command in the sandbox must see neither, only its three standard streams.
e7=$esc_dir/e7
mkdir -p "$e7"
echo SECRET-FD >"$e7/secret"
chmod 644 "$e7/secret"
# The shell's own descriptors, listed by a child writing to the shell's own
# stdout (a $(...) pipe or a redirection would add one of the shell's).
e7_fds='ls -m /proc/$$/fd; true'
expect "7: control: outside a sandbox fd 7 is readable" 0 '^SECRET-FD$' -- \
  bash -c 'exec 7<"$1"; sh -c "cat <&7"' _ "$e7/secret"
attack "7: run: read fd 7, list the host through fd 8" 0 '^0, 1, 2$' -- \
  bash -c 'exec 7<"$1" 8</; "$2" run -- sh -c "echo $3; cat <&7; ls /proc/self/fd/8/; $4"' \
  _ "$e7/secret" "$AK" "$MARK" "$e7_fds"
refute "7: run: the secret and the host's / stay outside" 'SECRET-FD|^(etc|usr)$' -- \
  bash -c 'exec 7<"$1" 8</; "$2" run -- sh -c "cat <&7; ls /proc/self/fd/8/"' _ "$e7/secret" "$AK"
"$AK" create e7box >/dev/null && bash -c 'exec 7<"$1" 8</; "$2" start e7box' _ "$e7/secret" "$AK"
attack "7: exec in a sandbox started holding fds 7 and 8: only 0 1 2" 0 '^0, 1, 2$' -- \
  bash -c 'exec 7<"$1" 8</; "$2" exec e7box -- sh -c "echo $3; cat <&7; ls /proc/self/fd/8/; $4"' \
  _ "$e7/secret" "$AK" "$MARK" "$e7_fds"
refute "7: exec: the secret and the host's / stay outside" 'SECRET-FD|^(etc|usr)$' -- \
  bash -c 'exec 7<"$1" 8</; "$2" exec e7box -- sh -c "cat <&7; ls /proc/self/fd/8/"' _ "$e7/secret" "$AK"
t_begin "7: a detached command holds only 0 1 2"
e7id=$(bash -c 'exec 7<"$1" 8</; "$2" exec -d e7box -- sh -c "echo $3; cat <&7; $4"' \
  _ "$e7/secret" "$AK" "$MARK" "$e7_fds" 2>/dev/null)
e7out=""
for _ in $(seq 50); do
  e7out=$("$AK" detached e7box logs "$e7id" 2>&1) && printf '%s' "$e7out" | grep -q '^0,' && break
  sleep 0.1
done
if printf '%s' "$e7out" | grep -q "$MARK" && printf '%s' "$e7out" | grep -q '^0, 1, 2$' &&
  ! printf '%s' "$e7out" | grep -q SECRET-FD; then pass; else fail "id $e7id: $e7out"; fi
"$AK" remove --force e7box >/dev/null

echo "== escapes 8: agentkernel's state and credentials are hidden"
# A home holding keys, and agentkernel's own state where it lives by
# default (~/.local/share/agentkernel, ~/.agentkernel): another sandbox's
# spec.json carries its -e secret.  A permissive sandbox shows this home.
e8=$esc_dir/e8
h8=$e8/home
mkdir -p "$h8/.ssh" "$h8/.aws" "$h8/.config/gh" "$h8/dotfiles/gnupg" "$e8/work/proj" "$e8/cfg"
ln -s dotfiles/gnupg "$h8/.gnupg"
echo SECRET-GPG >"$h8/dotfiles/gnupg/key"
echo SECRET-SSH >"$h8/.ssh/id_ed25519"
echo SECRET-AWS >"$h8/.aws/credentials"
echo SECRET-GH >"$h8/.config/gh/hosts.yml"
echo ordinary-file >"$h8/notes.txt"
echo ordinary-work >"$e8/work/proj/f"
printf '[security]\nhide_credentials = false\n' >"$e8/cfg/show.toml"
chmod -R a+rX "$e8"
ak8 () { env -u AGENTKERNEL_STATE_DIR -u XDG_DATA_HOME -u AGENTKERNEL_AUDIT_LOG HOME="$h8" "$AK" "$@"; }
ak8 create e8other -e SECRET=hunter2-e8 >/dev/null
# check8 NAME CMD...: the command (which prints $MARK) ran, shows the
# ordinary file beside the secrets (control), and none of the secrets.
check8 () {
  local name=$1 out
  shift
  t_begin "$name"
  out=$("$@" 2>&1)
  if ! printf '%s' "$out" | grep -q "$MARK"; then
    fail "the sandboxed command did not run (no marker): $(printf %s "$out" | head -c 400)"
  elif ! printf '%s' "$out" | grep -q '^ordinary-'; then
    fail "control: the ordinary file is not shown: $(printf %s "$out" | head -c 400)"
  elif printf '%s' "$out" | grep -Eq 'SECRET-|hunter2|sandbox_created'; then
    fail "$(printf %s "$out" | grep -E 'SECRET-|hunter2|sandbox_created' | head -3)"
  else
    pass
  fi
}
e8_read='cat $0/notes.txt $0/.ssh/id_ed25519 $0/.aws/credentials $0/.config/gh/hosts.yml $0/.gnupg/key $0/dotfiles/gnupg/key;
  cat $0/.local/share/agentkernel/sandboxes/*/spec.json $0/.agentkernel/audit.jsonl; ls -a $0/.ssh'
test -f "$h8/.local/share/agentkernel/sandboxes/e8other/spec.json" && grep -q hunter2 "$h8/.local/share/agentkernel/sandboxes/e8other/spec.json" &&
  grep -q sandbox_created "$h8/.agentkernel/audit.jsonl" || echo "  (e8: the state is not where this test expects it)"
check8 "8: permissive run: keys, other sandboxes' spec.json and the audit log are hidden in home" \
  ak8 run --profile permissive -- sh -c "echo $MARK; $e8_read" /home/user
expect "8: opt-out ([security] hide_credentials = false): the key is shown" 0 '^SECRET-SSH$' -- \
  ak8 run --profile permissive --config "$e8/cfg/show.toml" -- cat /home/user/.ssh/id_ed25519
refute "8: the opt-out still hides agentkernel's state" 'hunter2' -- \
  ak8 run --profile permissive --config "$e8/cfg/show.toml" -- \
  sh -c 'cat /home/user/.local/share/agentkernel/sandboxes/*/spec.json'
ak8 create e8box --profile permissive >/dev/null && ak8 start e8box
check8 "8: persistent permissive sandbox: exec sees no key and no state" \
  ak8 exec e8box -- sh -c "echo $MARK; $e8_read" /home/user
ak8 exec -d e8box -- sh -c 'echo SECRET-ARG' >/dev/null
# The state under the workspace, and under a volume.
check8 "8: state under the workspace is hidden" \
  sh -c 'cd "$1/work" && AGENTKERNEL_STATE_DIR=$1/work/state "$2" create e8w -e SECRET=hunter2-w >/dev/null &&
    AGENTKERNEL_STATE_DIR=$1/work/state "$2" run --profile permissive -- sh -c "echo $3; cat proj/f;
      cat state/sandboxes/e8w/spec.json; ls state"' _ "$e8" "$AK" "$MARK"
check8 "8: state under a volume is hidden" \
  env AGENTKERNEL_STATE_DIR="$e8/work/state" "$AK" run -v "$e8/work:/w" -- \
  sh -c "echo $MARK; cat /w/proj/f /w/state/sandboxes/e8w/spec.json; ls /w/state"
check8 "8: a volume inside the state directory shows nothing of it" \
  ak8 run -v "$h8/.local/share/agentkernel:/st" -v "$e8/work/proj:/p" -- \
  sh -c "echo $MARK; cat /p/f /st/sandboxes/*/spec.json; ls -A /st"
expect "8: control: without the state there, the volume shows the file" 0 '^hunter2-ctl$' -- \
  sh -c 'echo hunter2-ctl >"$1/work/proj/s"; "$2" run -v "$1/work:/w" -- cat /w/proj/s' _ "$e8" "$AK"
t_begin "8: state files are the caller's alone (0600 files, 0700 directories)"
e8bad=$(find "$h8/.local/share/agentkernel" "$e8/work/state" "$h8/.agentkernel" -path '*/persist/*' -prune -o \
  \( -type f -perm /077 -o -type d -perm /077 \) -print 2>&1)
if [ -z "$e8bad" ]; then pass; else fail "$(printf %s "$e8bad" | head -5)"; fi
ak8 remove --force e8box >/dev/null
AGENTKERNEL_STATE_DIR="$e8/work/state" "$AK" remove --force e8w >/dev/null
ak8 remove --force e8other >/dev/null


echo "== escapes 9: bounded disk and memory"
# A detached command that floods its output (stdout and stderr): each log
# is kept within [resources] log_mb (here 1 MiB), rotated once, by the
# writer itself, while the command runs on.
e9=$esc_dir/e9
e9state=$AGENTKERNEL_STATE_DIR/sandboxes
mkdir -p "$e9/proj" && printf '[resources]\nlog_mb = 1\n' >"$e9/proj/agentkernel.toml"
printf '[resources]\nlog_mb = 200\n' >"$e9/big.toml"
chmod -R a+rwX "$e9"
(cd "$e9/proj" && "$AK" create e9flood >/dev/null && "$AK" start e9flood >/dev/null)
e9base=$(du -sk "$e9state/e9flood" 2>/dev/null | cut -f1)
e9id=$("$AK" exec --detach e9flood -- sh -c "yes err-$MARK >&2 & exec yes $MARK")
e9dir=$e9state/e9flood/detached/$e9id
for _ in $(seq 100); do
  [ -e "$e9dir/stdout.1" ] && [ -e "$e9dir/stderr.1" ] && break; sleep 0.1
done
sleep 2
t_begin "a detached flood of output: the command ran, filled its logs, and runs on"
if "$AK" detached e9flood logs "$e9id" | head -5 | grep -q -- "$MARK" &&
   "$AK" detached e9flood logs "$e9id" --stderr | tail -1 | grep -q -- "err-$MARK" &&
   "$AK" detached e9flood status "$e9id" | grep -q '"status": "running"'; then
  pass; else fail "no output from the command, or it stopped: $("$AK" detached e9flood status "$e9id")"; fi
t_begin "... the sandbox's state stays within twice log_mb a stream on the host's disk"
e9kb=$(du -sk "$e9state/e9flood" 2>/dev/null | cut -f1)
e9rot=$(stat -c %s "$e9dir/stdout.1" "$e9dir/stderr.1" 2>/dev/null | tr '\n' ' ')
if [ "$e9rot" = "1048576 1048576 " ] && [ "$e9kb" -le $((e9base + 4 * 1024 + 256)) ]; then pass
else fail "rotated ${e9rot:-none} bytes, ${e9kb} KiB on disk (${e9base} KiB before)"; fi
"$AK" detached e9flood kill "$e9id"
# What is read back is the latest output, in order, across the rotation:
# 400,000 numbered lines (2.6 MB) through a 1 MiB cap.
e9seq=$("$AK" exec --detach e9flood -- seq 400000)
for _ in $(seq 300); do [ -e "$e9state/e9flood/detached/$e9seq/exit" ] && break; sleep 0.1; done
e9tail='NR == 1 { next } NR == 2 { first = $0 } NR > 2 && $0 != prev + 1 { print "gap after " prev; exit 1 }
  { prev = $0 } END { if (prev != 400000 || first <= 1) { print "from " first " to " prev; exit 1 } }'
t_begin "... read back: the latest output in order, across the rotation (CLI)"
e9out=$("$AK" detached e9flood logs "$e9seq")
e9len=$(printf '%s\n' "$e9out" | wc -c)
if e9why=$(printf '%s\n' "$e9out" | awk "$e9tail") && [ "$e9len" -gt 1048576 ] && [ "$e9len" -le 2097152 ]; then pass
else fail "$e9why; $e9len bytes"; fi
expect "log_mb 0 is a config error naming the line" 125 "agentkernel.toml:2: \[resources\] log_mb" -- \
  sh -c "cd '$e9/proj' && printf '[resources]\nlog_mb = 0\n' >agentkernel.toml && '$AK' run -- true; rc=\$?; printf '[resources]\nlog_mb = 1\n' >agentkernel.toml; exit \$rc"

# Fetching a big log through the API: streamed, the server's memory stays
# small (its peak resident size is read from /proc, not timed).
(cd "$e9" && "$AK" create e9big --config "$e9/big.toml" >/dev/null && "$AK" start e9big >/dev/null)
e9id=$("$AK" exec --detach e9big -- sh -c "echo $MARK; head -c 150000000 /dev/zero | tr '\\0' y; echo; echo end-of-log")
for _ in $(seq 600); do [ -e "$e9state/e9big/detached/$e9id/exit" ] && break; sleep 0.1; done
e9sock=$e9/api.sock
"$AK" serve --socket "$e9sock" >"$e9/serve.log" 2>&1 & e9srv=$!
for _ in $(seq 100); do [ -S "$e9sock" ] && break; sleep 0.05; done
curl -sS --unix-socket "$e9sock" "http://localhost/sandboxes/e9big/exec/detached/$e9id/logs" >"$e9/logs.json"
e9hwm=$(awk '/VmHWM/ {print $2}' "/proc/$e9srv/status")
t_begin "a 150 MB log through the API: complete, valid JSON"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; o=d["stdout"]; sys.exit(0 if o.startswith(sys.argv[2]) and o.rstrip().endswith("end-of-log") and len(o) > 150000000 else 1)' "$e9/logs.json" "$MARK"; then
  e9whole=1; pass; else e9whole=0; fail "$(head -c 200 "$e9/logs.json")"; fi
t_begin "... while the server's peak memory stays under 64 MB"
if [ "$e9whole" = 1 ] && [ -n "$e9hwm" ] && [ "$e9hwm" -lt 65536 ]; then pass
else fail "VmHWM ${e9hwm:-?} kB (log served whole: $e9whole)"; fi
t_begin "... a rotated log through the API: the latest output in order"
curl -sS --unix-socket "$e9sock" "http://localhost/sandboxes/e9flood/exec/detached/$e9seq/logs?stream=stdout" >"$e9/seq.json"
if e9why=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["stdout"], end="")' "$e9/seq.json" | awk "$e9tail"); then pass
else fail "$e9why: $(head -c 200 "$e9/seq.json")"; fi
# disk_mb through the API: a root server's sandbox fills at its size; an
# unprivileged server refuses it (400, saying why), nothing left behind.
e9post () { curl -sS --unix-socket "$e9sock" -w '\n%{http_code}\n' -X POST "http://localhost$1" -d "$2"; }
if is_root; then
  t_begin "API: a sandbox created with disk_mb 20 fills at 20 MB"
  e9c=$(e9post /sandboxes '{"name": "e9apidisk", "disk_mb": 20}')
  e9x=$(e9post /sandboxes/e9apidisk/exec "{\"command\": [\"sh\", \"-c\", \"echo $MARK; dd if=/dev/zero of=/var/tmp/big bs=1M count=40 2>&1; true\"]}")
  if printf %s "$e9c" | grep -q '"disk_mb":20' && printf %s "$e9x" | grep -q "$MARK" &&
     printf %s "$e9x" | grep -q "No space left on device"; then pass
  else fail "create: $(printf %s "$e9c" | head -c 300); exec: $(printf %s "$e9x" | head -c 300)"; fi
  curl -sS --unix-socket "$e9sock" -X DELETE http://localhost/sandboxes/e9apidisk >/dev/null
else
  t_begin "API (unprivileged): a sandbox with disk_mb is refused with a 400 saying why, and not created"
  e9c=$(e9post /sandboxes '{"name": "e9apidisk", "disk_mb": 20}')
  if [ "$(printf %s "$e9c" | tail -1)" = 400 ] && printf %s "$e9c" | grep -q "disk_mb for a persistent sandbox needs agentkernel run as root" &&
     [ "$(curl -sS --unix-socket "$e9sock" -o /dev/null -w '%{http_code}' http://localhost/sandboxes/e9apidisk)" = 404 ]; then pass
  else fail "$(printf %s "$e9c" | head -c 300)"; fi
fi
kill "$e9srv"; wait "$e9srv" 2>/dev/null
"$AK" remove --force e9big >/dev/null
"$AK" remove --force e9flood >/dev/null
rm -f "$e9/logs.json" "$e9/seq.json"

# disk_mb: filling the writable layer stops at its size, inside (ENOSPC);
# without the limit the same write goes through.
attack "run --disk 20: a 40 MB write to the root is refused (ENOSPC)" 0 "No space left on device" -- \
  "$AK" run --disk 20 -- sh -c "echo $MARK; dd if=/dev/zero of=/var/tmp/big bs=1M count=40 2>&1; true"
attack "run --disk 20: ... and to /tmp" 0 "No space left on device" -- \
  "$AK" run --disk 20 -- sh -c "echo $MARK; dd if=/dev/zero of=/tmp/big bs=1M count=40 2>&1; true"
attack "run without a disk limit: the same write goes through (control)" 0 "41943040 bytes" -- \
  "$AK" run -- sh -c "echo $MARK; dd if=/dev/zero of=/var/tmp/big bs=1M count=40 2>&1"
expect "--disk with a value that is not MiB: exit 125 naming it" 125 "invalid --disk '1.5'" -- \
  "$AK" run --disk 1.5 -- true
expect "[resources] disk_mb from the config" 0 "No space left on device" -- \
  sh -c "cd '$e9/proj' && printf '[resources]\ndisk_mb = 20\n' >agentkernel.toml && '$AK' run -- sh -c 'dd if=/dev/zero of=/var/tmp/big bs=1M count=40 2>&1; true'; rc=\$?; printf '[resources]\nlog_mb = 1\n' >agentkernel.toml; exit \$rc"
if is_root; then
  "$AK" create e9disk --disk 30 >/dev/null && "$AK" start e9disk >/dev/null
  attack "a persistent sandbox with disk_mb 30: its layer fills at 30 MB" 0 "No space left on device" -- \
    "$AK" exec e9disk -- sh -c "echo $MARK; dd if=/dev/zero of=/var/tmp/big bs=1M count=50 2>&1; echo kept >/var/tmp/small; true"
  expect "... what fits is kept across stop and start" 0 "^kept$" -- \
    sh -c "'$AK' exec e9disk -- rm -f /var/tmp/big && '$AK' stop e9disk && '$AK' start e9disk >/dev/null && '$AK' exec e9disk -- cat /var/tmp/small"
  t_begin "... the host's mount table never shows its file system"
  if ! grep -q "persist.img\|e9disk" /proc/self/mountinfo; then pass; else fail "$(grep e9disk /proc/self/mountinfo)"; fi
  "$AK" remove --force e9disk >/dev/null
  t_begin "... removed with the sandbox, loop device included"
  if [ ! -e "$AGENTKERNEL_STATE_DIR/sandboxes/e9disk" ] && ! losetup -a 2>/dev/null | grep -q e9disk; then pass; else fail "$(losetup -a | grep e9disk)"; fi
else
  expect "unprivileged: a persistent sandbox's disk_mb is refused, saying why" 125 "disk_mb for a persistent sandbox needs agentkernel run as root" -- \
    "$AK" create e9disk --disk 30
fi

echo "== escapes 10: no hangs, no orphans"
# Many volumes: every one reaches the sandbox (as root they travel to its
# init as descriptors; 61 and more once overflowed a 64-entry array), and
# past the documented cap the sandbox is refused, at create too.
e10=$esc_dir/e10
for i in $(seq 1 300); do mkdir -p "$e10/v/$i" && echo "volume $i" >"$e10/v/$i/f"; done
chmod -R a+rwX "$e10"
vols70=() vols300=()
for i in $(seq 1 70); do vols70+=(-v "$e10/v/$i:/mnt/v$i:ro"); done
for i in $(seq 1 300); do vols300+=(-v "$e10/v/$i:/mnt/v$i:ro"); done
expect "70 volumes: the first and the last are there" 0 "volume 1.*volume 70|volume 70" -- \
  sh -c "$(printf '%q ' "$AK" run "${vols70[@]}" -- sh -c 'cat /mnt/v1/f /mnt/v70/f | tr "\n" " "')"
expect "300 volumes: one clear error" 125 "too many volumes.*at most 245" -- "$AK" run "${vols300[@]}" -- true
expect "300 volumes: refused at create, nothing recorded" 125 "too many volumes" -- "$AK" create e10many "${vols300[@]}"
expect "... and no sandbox left" 1 "" -- sh -c "\"$AK\" list | grep e10many"

# An exec client killed while its command, having closed its output, runs
# on: the command goes with the client.
"$AK" create e10orph >/dev/null && "$AK" start e10orph >/dev/null
"$AK" exec e10orph -- sh -c "echo \$\$ >/tmp/orphan.pid; exec >&- 2>&-; sleep 300" & e10c=$!
for _ in $(seq 100); do "$AK" exec e10orph -- test -s /tmp/orphan.pid && break; sleep 0.1; done
kill -9 "$e10c"; wait "$e10c" 2>/dev/null
attack "a client killed: the command it started (output closed) ends too" 0 "gone" -- "$AK" exec e10orph -- sh -c \
  "echo $MARK; p=\$(cat /tmp/orphan.pid); for i in \$(seq 100); do kill -0 \$p 2>/dev/null || { echo gone; exit 0; }; sleep 0.1; done; echo alive"
# ... and so does one whose input is backed up (a writer it never reads):
# the agent reads no more of the client's frames then, yet still sees it go.
yes | "$AK" exec e10orph -- sh -c "echo \$\$ >/tmp/orphan2.pid; exec >&- 2>&-; sleep 300" & e10c=$!
e10fill='import fcntl,struct,sys,termios; f=open(sys.argv[1],"rb",buffering=0); print(struct.unpack("i",fcntl.ioctl(f,termios.FIONREAD,b"0000"))[0])'
for _ in $(seq 100); do
  n=$("$AK" exec e10orph -- sh -c 'test -s /tmp/orphan2.pid && python3 -c "$1" /proc/$(cat /tmp/orphan2.pid)/fd/0' _ "$e10fill" 2>/dev/null)
  [ "${n:-0}" -ge 65536 ] && break; sleep 0.1
done
t_begin "... the command's input is backed up (a full pipe) before the client is killed"
if [ "${n:-0}" -ge 65536 ]; then pass; else fail "its input holds ${n:-nothing}"; fi
kill -9 "$e10c"; wait "$e10c" 2>/dev/null
attack "a client killed while its command's input is backed up: the command ends too" 0 "gone" -- "$AK" exec e10orph -- sh -c \
  "echo $MARK; p=\$(cat /tmp/orphan2.pid); for i in \$(seq 100); do kill -0 \$p 2>/dev/null || { echo gone; exit 0; }; sleep 0.1; done; echo alive"
# exec honours SIGTERM: passed to the command; one that ignores it is killed 5 s later.
"$AK" exec e10orph -- sh -c "trap 'echo $MARK term-seen; exit 3' TERM; echo ready; sleep 100 & wait" >"$esc_dir/e10term" 2>&1 & e10c=$!
for _ in $(seq 100); do grep -q ready "$esc_dir/e10term" && break; sleep 0.1; done
kill -TERM "$e10c"; wait "$e10c"; e10rc=$?
t_begin "exec passes SIGTERM to its command (which exits 3)"
if [ "$e10rc" = 3 ] && grep -q "$MARK term-seen" "$esc_dir/e10term"; then pass; else fail "status $e10rc: $(cat "$esc_dir/e10term")"; fi
"$AK" exec e10orph -- sh -c "trap '' TERM; echo ready; sleep 60; echo survived" >"$esc_dir/e10term" 2>&1 & e10c=$!
for _ in $(seq 100); do grep -q ready "$esc_dir/e10term" && break; sleep 0.1; done
kill -TERM "$e10c"; wait "$e10c"; e10rc=$?
t_begin "exec: a command that ignores SIGTERM is killed (137), the client does not hang"
if [ "$e10rc" = 137 ] && ! grep -q survived "$esc_dir/e10term"; then pass; else fail "status $e10rc: $(cat "$esc_dir/e10term")"; fi
"$AK" remove --force e10orph >/dev/null
# PTRACE_TRACEME (allowed in permissive): the sandbox's init and agent let
# the command go instead of reporting its stop as an end (a silent 125) or
# waiting on it forever.
e10py='import ctypes,os,signal; libc=ctypes.CDLL(None); print("traceme", libc.ptrace(0,0,0,0), flush=True); os.kill(os.getpid(), signal.SIGSTOP); print("'"$MARK"' after the stop", flush=True)'
attack "PTRACE_TRACEME then a stop: run goes on" 0 "traceme 0" -- timeout -s KILL 60 "$AK" run --profile permissive -- python3 -c "$e10py"
"$AK" create e10trace --profile permissive >/dev/null && "$AK" start e10trace >/dev/null
attack "PTRACE_TRACEME then a stop: exec goes on" 0 "traceme 0" -- timeout -s KILL 60 "$AK" exec e10trace -- python3 -c "$e10py"
"$AK" remove --force e10trace >/dev/null

# cp into a sandbox from a source that cannot be read part way (a file that
# fails on read: a write-only sysfs file for root, a mode-000 file for a
# user): one clear error instead of both sides waiting; the sandbox goes on.
mkdir -p "$e10/cpsrc" && echo fine >"$e10/cpsrc/a" && echo unreadable >"$e10/cpsrc/b"
if is_root; then
  # A sysfs attribute with a size (tracefs's write-only files are empty,
  # and an empty file copies without a read).
  e10src=$(find /sys -maxdepth 4 \( -path /sys/kernel/tracing -o -path /sys/kernel/debug \) -prune \
    -o -type f -perm 0200 -size +0 -print 2>/dev/null | head -1)
else
  chmod 000 "$e10/cpsrc/b"
  e10src=$e10/cpsrc
fi
"$AK" create e10cp >/dev/null && "$AK" start e10cp >/dev/null
if [ -n "$e10src" ]; then
  expect "cp in from a source that fails on read: one clear error, no hang" 125 "Input/output error|Permission denied|Can't open" -- \
    timeout -s KILL 60 "$AK" cp "$e10src" e10cp:/tmp/x
else
  t_begin "cp in from a source that fails on read"; skip_lacks "no write-only sysfs file on this host"
fi
# A file that ends before the size it had when its header went out (a sysfs
# file says 4096 bytes and holds a few; so does a file truncated during the
# copy): an error, never a copy padded with zeros, and nothing of it inside.
e10short=/sys/kernel/uevent_seqnum
if [ -r "$e10short" ] && [ "$(stat -c %s "$e10short")" -gt "$(wc -c <"$e10short")" ]; then
  expect "cp in of a file that ends before its size: one clear error" 125 "changed while being copied" -- \
    timeout -s KILL 60 "$AK" cp "$e10short" e10cp:/tmp/short
  expect "... and no short or zero-padded copy of it inside" 0 "^none$" -- \
    "$AK" exec e10cp -- sh -c 'ls -l /tmp/short 2>/dev/null || echo none'
else
  t_begin "cp in of a file that ends before its size"; skip "no $e10short shorter than its size"
fi
expect "... the sandbox still answers" 0 "^alive$" -- "$AK" exec e10cp -- echo alive
expect "... and a readable source copies (control)" 0 "^fine$" -- \
  sh -c "'$AK' cp '$e10/cpsrc/a' e10cp:/tmp/a && '$AK' exec e10cp -- cat /tmp/a"
"$AK" remove --force e10cp >/dev/null

# A 1,200-deep directory chain made inside: remove still removes everything
# (the walk holds one directory open at a time), leaving no record.
"$AK" create e10deep >/dev/null && "$AK" start e10deep >/dev/null
attack "a 1,200-deep directory chain is made inside" 0 "made 1200" -- "$AK" exec e10deep -- sh -c \
  "cd /var/tmp && i=0; while [ \$i -lt 1200 ]; do mkdir d && cd d || break; i=\$((i+1)); done; echo $MARK made \$i"
expect "... the sandbox is removed" 0 "" -- "$AK" remove --force e10deep
expect "... and leaves no record" 1 "" -- sh -c "\"$AK\" list | grep e10deep"
t_begin "... nor any file of it"
left=$(find "$AGENTKERNEL_STATE_DIR" -maxdepth 3 -name '*e10deep*' 2>/dev/null | head -3)
if [ -z "$left" ]; then pass; else fail "left: $left"; fi

# A removal that stops part way (a mount point left beneath a stopped
# sandbox's state, as root) leaves the sandbox listed as it was and
# removable again, never a broken record; a record that lost a file is
# listed as broken and still removed.
if is_root; then
  "$AK" create e10stuck >/dev/null && "$AK" start e10stuck >/dev/null && "$AK" stop e10stuck >/dev/null
  e10m=$AGENTKERNEL_STATE_DIR/sandboxes/e10stuck/persist/e10mnt
  mkdir -p "$e10m" "$e10/mnt" && mount --bind "$e10/mnt" "$e10m"
  expect "a removal stopped by a mount point: one clear error" 125 "mount point" -- "$AK" remove e10stuck
  expect "... the sandbox is listed as it was (not broken)" 0 "^e10stuck +stopped" -- "$AK" list
  expect "... and still starts" 0 "^up$" -- sh -c "'$AK' start e10stuck && '$AK' exec e10stuck -- echo up"
  umount "$e10m"
  expect "... and is removed once the mount is gone" 0 "" -- "$AK" remove --force e10stuck
  expect "... leaving no record" 1 "" -- sh -c "\"$AK\" list | grep e10stuck"
else
  t_begin "a removal stopped by a mount point"; skip_lacks "mounting needs root"
fi
"$AK" create e10broken >/dev/null && rm "$AGENTKERNEL_STATE_DIR/sandboxes/e10broken/spec.json"
expect "a record missing its spec is listed as broken" 0 "^e10broken +broken" -- "$AK" list
expect "... and removed" 0 "" -- "$AK" remove e10broken
expect "... leaving no record" 1 "" -- sh -c "\"$AK\" list | grep e10broken"

echo "== escapes 11: cp out never writes a symlink pointing outside"
# The sandbox plants links to host secrets in a tree the user then copies
# out; a tool reading the copy later would follow them on the host.
e11=$esc_dir/e11
mkdir -p "$e11/out" "$e11/victim" "$e11/pre/t"
echo VICTIM >"$e11/victim/v"
ln -s "$e11/victim" "$e11/pre/t/sub"
chmod -R a+rwX "$e11"
"$AK" create e11box >/dev/null && "$AK" start e11box
attack "11: plant absolute and escaping links beside in-tree ones" 0 "" -- \
  "$AK" exec e11box -- sh -c "echo $MARK; set -e; mkdir -p /tmp/t/sub/deep; echo data >/tmp/t/sub/f
    echo two >/tmp/t/f2; ln -s /root/.ssh/id_ed25519 /tmp/t/key; ln -s ../../../../.. /tmp/t/up
    ln -s ../../x /tmp/t/sub/esc; ln -s deep/../../.. /tmp/t/sub/dip; ln -s $e11/victim/v /tmp/t/sub/host
    ln -s sub/f /tmp/t/in; ln -s ../f2 /tmp/t/sub/in2; ln -s ../../f2 /tmp/t/sub/deep/in3"
expect "11: cp out succeeds and names each link it did not create" 0 \
  'key -> /root/.ssh/id_ed25519 not created' -- "$AK" cp e11box:/tmp/t "$e11/out/t"
t_begin "11: no link on the host points outside the copied tree"
e11bad=$(cd "$e11/out" && for l in t/key t/up t/sub/esc t/sub/dip t/sub/host; do
  if [ -e "$l" ] || [ -L "$l" ]; then echo "$l -> $(readlink "$l")"; fi; done)
if [ -z "$e11bad" ]; then pass; else fail "$e11bad"; fi
t_begin "11: control: links that stay inside are kept and resolve"
if [ "$(readlink "$e11/out/t/in")" = sub/f ] && [ "$(cat "$e11/out/t/in")" = data ] &&
  [ "$(cat "$e11/out/t/sub/in2")" = two ] && [ "$(cat "$e11/out/t/sub/deep/in3")" = two ]; then pass
else fail "$(ls -lR "$e11/out/t" | head -20)"; fi
expect "11: a link at the top of what is copied is not created either" 0 'not created' -- \
  "$AK" cp e11box:/tmp/t/key "$e11/out/key"
t_begin "11: ... and nothing stands at its name"
if [ ! -e "$e11/out/key" ] && [ ! -L "$e11/out/key" ]; then pass; else fail "$(ls -l "$e11/out/key")"; fi
expect "11: a destination holding a symlink where the tree has a directory" 0 '' -- \
  "$AK" cp e11box:/tmp/t "$e11/pre"
t_begin "11: ... is replaced by the directory, never written through"
if [ -d "$e11/pre/t/sub" ] && [ ! -L "$e11/pre/t/sub" ] && [ "$(cat "$e11/pre/t/sub/f")" = data ] &&
  [ "$(ls "$e11/victim")" = v ]; then pass; else fail "$(ls -l "$e11/pre/t" "$e11/victim")"; fi
"$AK" remove --force e11box >/dev/null


rm -rf "$esc_dir" 2>/dev/null
