# The microVM backend (--backend microvm): the command runs under its own
# kernel in a QEMU microvm (TCG where KVM does not work, as in CI), with the
# host's view read-only over virtiofs and the workspace shared live.
# At the end, the shared profile, hardening and lifecycle files run with
# every sandbox on the microvm backend: a subset, or all with
# AK_MICROVM_FULL=1 (see the end of this file).

echo "== microvm backend"
mv_have () {
  command -v qemu-system-x86_64 >/dev/null && [ -x /usr/lib/qemu/virtiofsd ] && ls /boot/vmlinuz-* >/dev/null 2>&1
}

if ! mv_have; then
  t_begin "microvm: QEMU, virtiofsd and a guest kernel"
  skip "qemu-system-x86_64, /usr/lib/qemu/virtiofsd or /boot/vmlinuz-* missing (apt-get install qemu-system-x86 linux-image-cloud-amd64)"
elif ! is_root; then
  # virtiofsd needs root (it takes the ids of each request): an
  # unprivileged user gets one clear error, and nothing starts.
  expect "microvm: unprivileged, one clear error" 125 'runs only as root' -- \
    "$AK" run --backend microvm -- true
  t_begin "microvm: sandboxes as an unprivileged user"
  skip_lacks "the microvm backend runs only as root (virtiofsd needs it)"
else
  export AGENTKERNEL_STATE_DIR=$(mktemp -d)
  mvw=$(mktemp -d)
  chmod 755 "$mvw"
  echo from-host >"$mvw/hostfile"
  cfg_rw=$(mktemp -d)/rw.toml
  printf '[security]\nmount_cwd = true\nnetwork = false\n' >"$cfg_rw"
  cfg_ro=$(mktemp -d)/ro.toml
  printf '[security]\nmount_cwd = true\nnetwork = false\nread_only = true\n' >"$cfg_ro"
  vmrun () { "$AK" run --backend microvm --no-network "$@"; }

  host_rel=$(uname -r)
  host_boot=$(cat /proc/sys/kernel/random/boot_id)
  t_begin "microvm: the command runs under its own kernel (uname -r, boot id)"
  out=$(vmrun -- sh -c "echo $MARK; uname -r; cat /proc/sys/kernel/random/boot_id" 2>/dev/null)
  rel=$(printf '%s\n' "$out" | sed -n 2p)
  boot=$(printf '%s\n' "$out" | sed -n 3p)
  if ! printf '%s' "$out" | grep -q "$MARK"; then
    fail "did not run: $(printf %s "$out" | head -c 400)"
  elif [ -z "$rel" ] || [ "$rel" = "$host_rel" ] || [ ! -e "/boot/vmlinuz-$rel" ]; then
    fail "guest kernel '$rel' (host '$host_rel'): not a kernel of /boot other than the host's"
  elif [ -z "$boot" ] || [ "$boot" = "$host_boot" ]; then
    fail "guest boot id '$boot' is the host's"
  else
    pass
  fi
  expect "microvm: TCG is announced when KVM does not work" 0 'TCG|^ok$' -- \
    sh -c '"$1" run --backend microvm --no-network -- true 2>&1 >/dev/null; [ -w /dev/kvm ] && echo ok; exit 0' _ "$AK"

  expect "microvm: exit status passes through" 7 '' -- vmrun -- sh -c 'exit 7'
  expect "microvm: command not found is 127" 127 'command not found' -- vmrun -- /nonexistent
  expect "microvm: killed by a signal is 128+N" 137 '' -- vmrun -- sh -c 'kill -KILL $$'
  expect "microvm: stdin reaches the command" 0 '^piped$' -- sh -c 'echo piped | "$1" run --backend microvm --no-network -- cat' _ "$AK"
  expect "microvm: the sandbox user (uid 1000)" 0 'uid=1000\(user\)' -- vmrun -- id
  expect "microvm: no_new_privs and seccomp on the command" 0 'NoNewPrivs:[[:space:]]+1 Seccomp:[[:space:]]+2' -- \
    vmrun -- sh -c 'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status | tr "\n" " " | sed "s/ $//"'

  # Host processes: a process on the host is not among the guest's.
  sleep 1234 &
  hostpid=$!
  attack "microvm: host processes are not visible" 1 '' -- \
    vmrun -- sh -c "echo $MARK; ps ax -o args | grep -q '^sleep 123[4]'"
  kill "$hostpid" 2>/dev/null; wait "$hostpid" 2>/dev/null
  expect "microvm: control: the guest's ps sees its own processes" 0 'sleep 4321' -- \
    vmrun -- sh -c 'sleep 4321 & ps ax -o args; kill $!'

  # Host files: /tmp is the guest's own; agentkernel's state is hidden; the
  # host view is read-only (writes land in the guest's own layer only).
  secret=$(mktemp /tmp/ak-mv-secret.XXXXXX)
  echo host-secret >"$secret"
  chmod 644 "$secret"
  attack "microvm: host /tmp is not the guest's" 1 '' -- vmrun -- sh -c "echo $MARK; cat $secret"
  echo state-secret >"$AGENTKERNEL_STATE_DIR/ak-mv-state"
  chmod 644 "$AGENTKERNEL_STATE_DIR/ak-mv-state"
  attack "microvm: agentkernel's state directory is hidden" 1 '' -- \
    vmrun -- sh -c "echo $MARK; cat $AGENTKERNEL_STATE_DIR/ak-mv-state"
  expect "microvm: control: the host view shows host files" 0 "^$(cat /etc/debian_version)$" -- vmrun -- cat /etc/debian_version
  t_begin "microvm: a write to the host view stays in the guest"
  rm -f /var/tmp/ak-mv-probe
  out=$(vmrun -- sh -c "echo $MARK; echo x >/var/tmp/ak-mv-probe && cat /var/tmp/ak-mv-probe" 2>&1)
  if ! printf '%s' "$out" | grep -q "$MARK"; then fail "did not run: $out"
  elif [ -e /var/tmp/ak-mv-probe ]; then fail "the host got /var/tmp/ak-mv-probe"; rm -f /var/tmp/ak-mv-probe
  elif ! printf '%s' "$out" | grep -q '^x$'; then fail "the guest's own layer is not writable: $out"
  else pass; fi
  attack "microvm: host root's files stay unreadable (/etc/shadow)" 1 'Permission denied' -- \
    vmrun -- sh -c "echo $MARK; cat /etc/shadow"
  # The guest's user is uid 1000, served the host's files by host root with
  # the host's ids: a host account with uid 1000 must not lend it its files.
  u1000=/home/akvm-u1000-$$
  mkdir -p "$u1000" && echo "u1000-secret" >"$u1000/key" && chown -R 1000:1000 "$u1000" && chmod 700 "$u1000" && chmod 600 "$u1000/key"
  expect "microvm: (control) the file is readable by host uid 1000" 0 '^u1000-secret$' -- setpriv --reuid 1000 --regid 1000 --clear-groups cat "$u1000/key"
  attack "microvm: a host account's files with the guest user's uid stay unreadable" 1 'No such file' -- \
    vmrun -- sh -c "echo $MARK; cat $u1000/key"
  rm -rf "$u1000"
  expect "microvm: --root is refused (root in the guest would read what host root reads)" 125 'only as the sandbox user' -- \
    vmrun --root -- id
  # What the engine cannot enforce yet is refused, never silently dropped.
  expect "microvm: a command policy is refused (not enforced by this engine yet)" 125 'command policy' -- \
    vmrun --block-cmd curl -- true
  expect "microvm: published ports are refused (the VM has no network yet)" 125 'publish ports' -- \
    "$AK" run --backend microvm -P 127.0.0.1:18931:80 -- true
  rm -f "$secret"

  # The workspace, live both ways; read-only enforced by the host.
  expect "microvm: workspace: host files seen" 0 '^from-host$' -- \
    sh -c 'cd "$1" && "$2" run --backend microvm --config "$3" -- cat /workspace/hostfile' _ "$mvw" "$AK" "$cfg_rw"
  t_begin "microvm: workspace: the guest's writes reach the host, owned by the workspace's owner"
  (cd "$mvw" && "$AK" run --backend microvm --config "$cfg_rw" -- sh -c 'echo from-guest >/workspace/guestfile') >/dev/null 2>&1
  if [ "$(cat "$mvw/guestfile" 2>/dev/null)" != from-guest ]; then fail "no guestfile on the host"
  elif [ "$(stat -c %u "$mvw/guestfile")" != "$(stat -c %u "$mvw")" ]; then fail "owner $(stat -c %u "$mvw/guestfile")"
  else pass; fi
  attack "microvm: workspace read-only: a write fails" 2 'Read-only file system' -- \
    sh -c 'cd "$1" && "$2" run --backend microvm --config "$3" -- sh -c "echo $4; echo x >/workspace/rofile"' _ "$mvw" "$AK" "$cfg_ro" "$MARK"
  t_begin "microvm: workspace read-only: nothing reached the host"
  [ ! -e "$mvw/rofile" ] && pass || fail "rofile exists on the host"
  # The guest mounts its shares read-write: the EROFS above comes from the
  # host, which serves the share from a read-only mount.
  expect "microvm: workspace read-only is the host's, not the guest's mount flag" 0 'rw' -- \
    sh -c 'cd "$1" && "$2" run --backend microvm --config "$3" -- sh -c "grep \" /workspace \" /proc/mounts | cut -d\" \" -f4 | cut -d, -f1"' _ "$mvw" "$AK" "$cfg_ro"

  # kill -9 of agentkernel: the VM (QEMU, virtiofsd) and its directory go.
  t_begin "microvm: kill -9 of agentkernel leaves nothing behind"
  "$AK" run --backend microvm --no-network -- sleep 300 >/dev/null 2>&1 &
  runpid=$!
  left=""
  for _ in $(seq 150); do
    kids=$(ps -e -o pid=,ppid=,comm= | awk -v r="$runpid" '
      { p[$1]=$2; c[$1]=$3 } END { for (x in p) { y=x; while (y in p && y != r && y > 1) y=p[y]; if (y == r && x != r) print x":"c[x] } }')
    printf '%s' "$kids" | grep -q qemu && break
    sleep 0.2
  done
  if ! printf '%s' "$kids" | grep -q qemu; then
    fail "no QEMU under the run: $kids"
    kill -9 "$runpid" 2>/dev/null
  else
    sleep 3 # let it boot; the point is what a booted VM leaves
    rundir=$(for k in $kids; do ls -l "/proc/${k%%:*}/fd" 2>/dev/null; done | grep -o '/tmp/agentkernel-vm\.[A-Za-z0-9]*' | head -1)
    kill -9 "$runpid"
    wait "$runpid" 2>/dev/null
    for _ in $(seq 50); do
      left=""
      for k in $kids; do kill -0 "${k%%:*}" 2>/dev/null && [ "$(cat /proc/${k%%:*}/stat 2>/dev/null | awk '{print $3}')" != Z ] && left="$left $k"; done
      [ -z "$left" ] && break
      sleep 0.2
    done
    for _ in $(seq 50); do [ -n "$rundir" ] && [ -e "$rundir" ] || break; sleep 0.2; done
    if [ -n "$left" ]; then fail "still running:$left"
    elif [ -z "$rundir" ]; then fail "the run's directory was not found"
    elif [ -e "$rundir" ]; then fail "$rundir is left behind"
    else pass; fi
  fi

  # An OCI image as the guest's root (its layers stacked read-only on the
  # host, a writable layer in the guest).
  MV_FX=$(cd "$here/../images" 2>/dev/null && pwd)
  if [ -n "$MV_FX" ] && command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && [ -f /bin/busybox ]; then
    mv_fx=$(mktemp -d)
    if "$MV_FX/fixtures.sh" up "$mv_fx" >"$mv_fx/up.log" 2>&1; then
      . "$mv_fx/env"
      t_begin "microvm: an image as the root: its files, the guest kernel, a writable layer"
      out=$(vmrun --image "$PLAIN/test/busybox:latest" -- sh -c "echo $MARK; uname -r; ls /bin/busybox; echo w >/tmp/w; cat /tmp/w; ls /usr/lib/os-release /etc/debian_version 2>&1" 2>/dev/null)
      if ! printf '%s' "$out" | grep -q "$MARK"; then fail "did not run: $(printf %s "$out" | head -c 300)"
      elif printf '%s' "$out" | grep -qx "$host_rel"; then fail "host kernel"
      elif ! printf '%s' "$out" | grep -q '^/bin/busybox$'; then fail "not the image's files: $out"
      elif ! printf '%s' "$out" | grep -q '^w$'; then fail "no writable layer: $out"
      elif printf '%s' "$out" | grep -q '^/etc/debian_version$'; then fail "the host's files are there: $out"
      else pass; fi
      "$MV_FX/fixtures.sh" down "$mv_fx" >/dev/null 2>&1
    else
      t_begin "microvm: image fixtures"
      fail "$(tail -5 "$mv_fx/up.log")"
    fi
  else
    t_begin "microvm: an image as the root"
    skip "needs docker-registry, apache2-utils and busybox-static (tests/images/fixtures.sh)"
  fi

  # Volumes: directories, read-only on the host side.
  mvv=$(mktemp -d)
  chmod 755 "$mvv"
  echo vol >"$mvv/v"
  expect "microvm: a volume is shared" 0 '^vol$' -- vmrun -v "$mvv:/data" -- cat /data/v
  attack "microvm: a read-only volume refuses writes" 2 'Read-only file system' -- \
    vmrun -v "$mvv:/data:ro" -- sh -c "echo $MARK; echo x >/data/new"
  t_begin "microvm: a read-only volume: nothing reached the host"
  [ ! -e "$mvv/new" ] && pass || fail "$mvv/new exists"

  echo "== microvm: persistent sandboxes"
  (cd "$mvw" && "$AK" create mvbox --backend microvm --config "$cfg_rw" >/dev/null)
  expect "microvm: start" 0 '' -- "$AK" start mvbox
  expect "microvm: list shows the backend" 0 'mvbox +running +microvm' -- "$AK" list
  t_begin "microvm: exec runs under the guest kernel"
  rel=$("$AK" exec mvbox -- uname -r 2>/dev/null)
  [ -n "$rel" ] && [ "$rel" != "$host_rel" ] && pass || fail "uname -r: '$rel' (host $host_rel)"
  expect "microvm: exec: exit status" 3 '^out$' -- "$AK" exec mvbox -- sh -c 'echo out; exit 3'
  expect "microvm: exec: state persists between execs" 0 '^kept$' -- \
    sh -c '"$1" exec mvbox -- sh -c "echo kept >/tmp/k" && "$1" exec mvbox -- cat /tmp/k' _ "$AK"
  t_begin "microvm: two execs at once (streams of one port)"
  tmpd=$(mktemp -d)
  "$AK" exec mvbox -- sh -c 'sleep 2; echo A' >"$tmpd/a" 2>/dev/null &
  apid=$!
  sleep 0.5
  b=$("$AK" exec mvbox -- sh -c 'echo B' 2>/dev/null)
  a_then=$(cat "$tmpd/a")
  wait "$apid"
  # B answered while A was still running, and A finished too.
  [ "$b" = B ] && [ -z "$a_then" ] && [ "$(cat "$tmpd/a")" = A ] && pass || fail "B '$b', A before '$a_then', A after '$(cat "$tmpd/a")'"
  t_begin "microvm: exec: 2 MiB of binary stdin and stdout"
  head -c 2097152 /dev/urandom >"$tmpd/in"
  "$AK" exec mvbox -- cat <"$tmpd/in" >"$tmpd/out" 2>/dev/null && cmp -s "$tmpd/in" "$tmpd/out" && pass || fail "differs"
  echo cp-data >"$tmpd/cpin"
  expect "microvm: cp into the sandbox" 0 '' -- "$AK" cp "$tmpd/cpin" mvbox:/tmp/cpin
  expect "microvm: cp: the file is there" 0 '^cp-data$' -- "$AK" exec mvbox -- cat /tmp/cpin
  expect "microvm: cp out of the sandbox" 0 '' -- "$AK" cp mvbox:/tmp/k "$tmpd/kout"
  t_begin "microvm: cp out: content"
  [ "$(cat "$tmpd/kout" 2>/dev/null)" = kept ] && pass || fail "got '$(cat "$tmpd/kout" 2>/dev/null)'"
  t_begin "microvm: exec --detach, then its log"
  did=$("$AK" exec --detach mvbox -- sh -c 'echo d-out; exit 5' 2>/dev/null)
  for _ in $(seq 50); do "$AK" detached mvbox status "$did" 2>/dev/null | grep -q '"exit_code": 5' && break; sleep 0.2; done
  "$AK" detached mvbox logs "$did" 2>/dev/null | grep -q '^d-out$' && pass || fail "no log (id '$did')"
  t_begin "microvm: attach: a shell on a PTY of the guest"
  out=$( (sleep 3; printf 'tty; echo pty-ok-$((40+2))\n'; sleep 3; printf 'exit\n') |
        timeout 60 script -qfec "$AK attach mvbox" /dev/null 2>&1 | tr -d '\r')
  printf '%s' "$out" | grep -q '/dev/pts/[0-9]' && printf '%s' "$out" | grep -q 'pty-ok-42' && pass ||
    fail "$(printf %s "$out" | tail -5)"
  expect "microvm: workspace shared with the persistent sandbox" 0 '^from-host$' -- "$AK" exec mvbox -- cat /workspace/hostfile
  t_begin "microvm: stop ends the VM"
  sup=$(grep -o '"supervisor_pid": *[0-9]*' "$AGENTKERNEL_STATE_DIR/sandboxes/mvbox/state.json" | grep -o '[0-9]*$')
  vmpids="$sup $(pgrep -P "$sup" | tr '\n' ' ')"
  "$AK" stop mvbox >/dev/null 2>&1
  alive=""
  for p in $vmpids; do
    # A zombie waiting for its reaper is gone for this purpose.
    [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive="$alive $p"
  done
  if [ -z "$sup" ] || [ "$(echo $vmpids | wc -w)" -lt 3 ]; then fail "no supervisor/VM processes found: '$vmpids'"
  elif [ -n "$alive" ]; then fail "still running:$alive"
  elif ! "$AK" list | grep -Eq 'mvbox +stopped'; then fail "not stopped: $("$AK" list)"
  else pass; fi
  expect "microvm: remove" 0 '' -- "$AK" remove mvbox
  # A workspace swapped for a symlink after create is not shared.
  swapw=$(mktemp -d)
  chmod 755 "$swapw"
  mkdir "$swapw/ws"
  (cd "$swapw/ws" && "$AK" create mvswap --backend microvm --config "$cfg_rw" >/dev/null 2>&1)
  mv "$swapw/ws" "$swapw/ws.old" && ln -s / "$swapw/ws"
  expect "microvm: a workspace swapped for a symlink since create is refused" 125 '' -- "$AK" start mvswap
  "$AK" remove --force mvswap >/dev/null 2>&1
  rm -rf "$swapw" "$mvv"
  rm -rf "$tmpd"
  unset -f vmrun
fi

# The shared suites on the microvm backend (lib.sh's t_backend): by default
# a representative subset (microvm-subset: each property once, a few
# minutes under TCG); AK_MICROVM_FULL=1 runs the whole files. What the VM
# does not pass yet is listed, with the reason, in microvm-expected-missing.
if mv_have && is_root; then
  mv_only=${T_ONLY_FILE:-}
  if [ "${AK_MICROVM_FULL:-0}" = 1 ]; then
    echo "== microvm: the profile, hardening and lifecycle files on the microvm backend (AK_MICROVM_FULL=1)"
  else
    echo "== microvm: a representative subset of the profile, hardening and lifecycle files (microvm-subset; AK_MICROVM_FULL=1 runs them all)"
    T_ONLY_FILE=$here/microvm-subset
  fi
  mv_prev=$AK_TEST_BACKEND
  t_backend microvm
  for mv_file in profiles hardening lifecycle; do
    . "$here/test_$mv_file.sh"
  done
  t_backend "$mv_prev"
  T_ONLY_FILE=$mv_only
fi
