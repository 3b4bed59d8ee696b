# The microVM backend (--backend microvm): the command runs under its own
# kernel in a QEMU microvm (TCG where KVM does not work, as in CI), with the
# host's view read-only over virtiofs and the workspace shared live.
# At the end, the shared profile, hardening, lifecycle and command policy
# files run with every sandbox on the microvm backend: a subset, or all with
# AK_MICROVM_FULL=1 (see the end of this file).

echo "== microvm backend"
if ! microvm_have; then
  t_begin "microvm: QEMU, virtiofsd and a guest kernel"
  skip "$MICROVM_MISSING"
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
  expect "microvm: --root on the host's view is refused (root in the guest would read what host root reads)" 125 'only as the sandbox user' -- \
    vmrun --root -- id
  rm -f "$secret"

  # A persistent sandbox's layer is an ext4 image made by mke2fs (a fixed
  # system path, never PATH): without it (covered by /dev/null in a mount
  # namespace of the test's own), doctor names it with its fix, and create
  # fails at once, creating nothing.
  mv_nomk () {
    unshare -m sh -c 'for m in /usr/sbin/mke2fs /sbin/mke2fs; do [ -e "$m" ] && mount --bind /dev/null "$m"; done; exec "$@"' _ "$@"
  }
  expect "microvm: (control) doctor reports mke2fs" 0 'microvm backend: mke2fs +ok' -- "$AK" doctor
  t_begin "microvm: without mke2fs, doctor names it and its fix"
  out=$(mv_nomk "$AK" doctor 2>&1)
  if ! printf '%s' "$out" | grep -Eq 'microvm backend: mke2fs +degraded +not found'; then fail "not named: $out"
  elif ! printf '%s' "$out" | grep -q 'fix: apt-get install e2fsprogs'; then fail "no fix: $out"
  else pass; fi
  expect "microvm: without mke2fs, create --backend microvm fails at once with the fix" 125 \
    '^agentkernel: mke2fs not found .*apt-get install e2fsprogs$' -- \
    mv_nomk sh -c 'cd /tmp && exec "$1" create mvnomk --backend microvm --no-network' _ "$AK"
  t_begin "microvm: without mke2fs, create made nothing"
  if "$AK" list 2>&1 | grep -q mvnomk; then fail "listed: $("$AK" list 2>&1)"
  elif [ -e "$AGENTKERNEL_STATE_DIR/sandboxes/mvnomk" ]; then fail "its state directory exists"
  else pass; fi

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
    # The VM's host id, and its lock (held by the supervisor) before.
    k9_qemu=$(printf '%s\n' $kids | grep qemu | head -1)
    k9_uid=$(awk '/^Uid:/ {print $2}' "/proc/${k9_qemu%%:*}/status" 2>/dev/null)
    k9_held=no
    [ -n "$k9_uid" ] && [ -e "/run/agentkernel/vm-ids/$k9_uid" ] && ! flock -n -x "/run/agentkernel/vm-ids/$k9_uid" true && k9_held=yes
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
    t_begin "microvm: kill -9 of agentkernel releases the VM's host id"
    k9_free=no
    for _ in $(seq 50); do flock -n -x "/run/agentkernel/vm-ids/$k9_uid" true 2>/dev/null && { k9_free=yes; break; }; sleep 0.2; done
    if [ "$k9_held" != yes ]; then fail "the lock of host id '$k9_uid' was not held while the VM ran"
    elif [ "$k9_free" != yes ]; then fail "the lock of host id $k9_uid is still held"
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
      # --root over an image: root in the guest reads only the image, and in
      # the shares it is the VM's own unprivileged host id.
      expect "microvm: --root over an image: uid 0 in the guest" 0 'Uid:[[:space:]]+0[[:space:]]' -- \
        vmrun --image "$PLAIN/test/busybox:latest" --root -- cat /proc/self/status
      mvr=$(mktemp -d)
      chmod 755 "$mvr"
      echo own >"$mvr/own" && chmod 600 "$mvr/own"
      echo other >"$mvr/other" && chown 4242:4242 "$mvr/other" && chmod 600 "$mvr/other"
      t_begin "microvm: --root over an image: a workspace file of another host user stays unreadable"
      out=$(cd "$mvr" && "$AK" run --backend microvm --config "$cfg_rw" --image "$PLAIN/test/busybox:latest" --root -- \
        sh -c "echo $MARK; cat /workspace/own; echo x >/workspace/byroot; cat /workspace/other" 2>&1)
      if ! printf '%s' "$out" | grep -q "$MARK"; then fail "did not run: $(printf %s "$out" | head -c 300)"
      elif ! printf '%s' "$out" | grep -q '^own$'; then fail "(control) the workspace owner's file was not readable: $out"
      elif printf '%s' "$out" | grep -q '^other$'; then fail "read another host user's file: $out"
      else pass; fi
      t_begin "microvm: --root over an image: root's writes in the workspace belong to the VM's own host id, not root"
      byroot=$(stat -c %u "$mvr/byroot" 2>/dev/null)
      if [ -z "$byroot" ]; then fail "no file written"
      elif [ "$byroot" -lt 1100000000 ] || [ "$byroot" -ge 1100065536 ]; then fail "owned by $byroot"
      else pass; fi
      rm -rf "$mvr"
      # A persistent sandbox over an image: exec --root is uid 0, exec the user.
      (cd /tmp && "$AK" create mvimg --backend microvm --no-network --image "$PLAIN/test/busybox:latest" >/dev/null 2>&1)
      "$AK" start mvimg >/dev/null 2>&1
      expect "microvm: exec --root over an image: uid 0 in the guest" 0 'Uid:[[:space:]]+0[[:space:]]' -- \
        "$AK" exec --root mvimg -- cat /proc/self/status
      expect "microvm: (control) exec without --root: the sandbox user" 0 'Uid:[[:space:]]+1000[[:space:]]' -- \
        "$AK" exec mvimg -- cat /proc/self/status
      # The guest's console (root in the guest writes /dev/console) reaches
      # the host's console.log up to 1 MiB and no further; QEMU never stalls
      # on it (the write completes, the VM keeps serving).
      mvcon=$AGENTKERNEL_STATE_DIR/sandboxes/mvimg/console.log
      t_begin "microvm: (control) a small console write from the guest reaches console.log"
      "$AK" exec --root mvimg -- sh -c "echo console-$MARK >/dev/console" >/dev/null 2>&1
      for _ in $(seq 50); do grep -q "console-$MARK" "$mvcon" 2>/dev/null && break; sleep 0.2; done
      grep -q "console-$MARK" "$mvcon" 2>/dev/null && pass || fail "not in console.log: $(tail -c 300 "$mvcon" 2>&1)"
      attack "microvm: the guest writes 1.5 MiB to its console: the write completes" 0 '' -- \
        "$AK" exec --root mvimg -- sh -c "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn | head -c 1572864 >/dev/console && echo $MARK"
      t_begin "microvm: console.log stays at 1 MiB, the rest dropped, and the VM still serves"
      for _ in $(seq 50); do grep -q 'console output beyond 1 MiB dropped' "$mvcon" 2>/dev/null && break; sleep 0.2; done
      mvcon_size=$(stat -c %s "$mvcon" 2>/dev/null || echo none)
      if [ "$mvcon_size" = none ]; then fail "no console.log"
      elif [ "$mvcon_size" -gt 1048576 ]; then fail "console.log is $mvcon_size bytes"
      elif ! grep -q 'console output beyond 1 MiB dropped' "$mvcon"; then fail "the flood never reached the cap ($mvcon_size bytes)"
      elif ! "$AK" exec mvimg -- echo "alive-$MARK" 2>&1 | grep -q "alive-$MARK"; then fail "the VM no longer serves"
      else pass; fi
      # Root's files in /etc of the image are in the persistent layer too.
      expect "microvm: layer: a file root wrote in /etc survives stop and start" 0 '^etc-kept$' -- sh -c \
        '"$1" exec --root mvimg -- sh -c "echo etc-kept >/etc/ak-kept" && "$1" stop mvimg && "$1" start mvimg && "$1" exec mvimg -- cat /etc/ak-kept' _ "$AK"
      "$AK" remove --force mvimg >/dev/null 2>&1
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

  echo "== microvm: the VMM's jail"
  # A real VM, seen from the host: its QEMU's ids, filters, namespaces, root.
  "$AK" create mvjail --backend microvm --no-network >/dev/null 2>&1
  "$AK" start mvjail >/dev/null 2>&1
  mvj_sup=$(grep -o '"supervisor_pid": *[0-9]*' "$AGENTKERNEL_STATE_DIR/sandboxes/mvjail/state.json" 2>/dev/null | grep -o '[0-9]*$')
  mvj_q=$([ -n "$mvj_sup" ] && pgrep -P "$mvj_sup" -x qemu-system-x86 | head -1)
  mvj_uid=$([ -n "$mvj_q" ] && awk '/^Uid:/ {print $2}' "/proc/$mvj_q/status")
  t_begin "microvm: QEMU: seccomp, no_new_privs, no capability, a host id of the VM's own range"
  st=$([ -n "$mvj_q" ] && grep -E '^(Uid|Seccomp|NoNewPrivs|CapEff|CapPrm):' "/proc/$mvj_q/status" | tr -s '\t\n' '  ')
  if [ -z "$mvj_q" ]; then fail "no QEMU under the supervisor '$mvj_sup'"
  elif ! printf '%s' "$st" | grep -q 'Seccomp: 2 ' || ! printf '%s' "$st" | grep -q 'NoNewPrivs: 1 '; then fail "$st"
  elif ! printf '%s' "$st" | grep -q 'CapPrm: 0000000000000000 CapEff: 0000000000000000'; then fail "capabilities: $st"
  elif [ "$mvj_uid" -lt 1100000000 ] || [ "$mvj_uid" -ge 1100065536 ] || grep -q "^[^:]*:[^:]*:$mvj_uid:" /etc/passwd; then fail "uid '$mvj_uid'"
  else pass; fi
  t_begin "microvm: QEMU: PID, mount, IPC and UTS namespaces of its own"
  same=""
  for ns in pid mnt ipc uts; do
    [ "$(readlink "/proc/$mvj_q/ns/$ns" 2>/dev/null)" = "$(readlink /proc/self/ns/$ns)" ] && same="$same $ns"
  done
  [ -n "$mvj_q" ] && [ -z "$same" ] && pass || fail "shared with the host:${same:- (no QEMU)}"
  expect "microvm: QEMU: its root holds only /usr, the boot files and /dev (no /etc, /proc, /tmp, /home)" 0 '^bin boot dev lib lib64 usr $' -- \
    sh -c 'ls -A "/proc/$1/root/" | tr "\n" " "; echo' _ "${mvj_q:-0}"
  # /dev/kvm only where the VM uses KVM.
  mvj_dev='^dev:$'
  tr '\0' ' ' <"/proc/${mvj_q:-0}/cmdline" 2>/dev/null | grep -q -- '-accel kvm' && mvj_dev='^dev:kvm$'
  expect "microvm: QEMU: its /dev holds /dev/kvm only when KVM is used" 0 "$mvj_dev" -- \
    sh -c 'd=$(ls -A "/proc/$1/root/dev/") || exit 1; echo "dev:$d"' _ "${mvj_q:-0}"
  t_begin "microvm: QEMU: the lock of its host id is held while it runs"
  [ -n "$mvj_uid" ] && [ -e "/run/agentkernel/vm-ids/$mvj_uid" ] && ! flock -n -x "/run/agentkernel/vm-ids/$mvj_uid" true && pass ||
    fail "host id '$mvj_uid': lock not held"

  # From where an attacker stands: a probe run instead of QEMU, under the
  # same jail (the test build's AK_TEST_VMM), tries what a guest that took
  # over its QEMU would try next, against the VM above.
  vmm_probe=$(dirname "$PROBE")/vmm-probe
  (cd /tmp && "$AK" create mvprobe --backend microvm --no-network >/dev/null 2>&1)
  env AK_TEST_VMM="$vmm_probe" AK_PROBE_PID="${mvj_q:-0}" \
    AK_PROBE_FILES="/etc/shadow:/etc/passwd:$AGENTKERNEL_STATE_DIR/sandboxes/mvjail/console.log:$AGENTKERNEL_STATE_DIR:/run/agentkernel/vm-ids:$vmm_probe" \
    "$AK_TEST_BIN" start mvprobe >/dev/null 2>&1
  pr_out=$(cat "$AGENTKERNEL_STATE_DIR/sandboxes/mvprobe/console.log" 2>/dev/null)
  pr () { # name, the line's expected value (a regex)
    t_begin "microvm: a compromised VMM: $1"
    if ! printf '%s\n' "$pr_out" | grep -q '^vmm-probe done$'; then fail "the probe did not run to its end: $(printf %s "$pr_out" | tail -3)"
    elif printf '%s\n' "$pr_out" | grep -Eq "^vmm-probe $2\$"; then pass
    else fail "$(printf '%s\n' "$pr_out" | grep -F "vmm-probe ${2%%:*}:" || echo "no line for ${2%%:*}")"; fi
  }
  pr "runs as an unprivileged host id, not the other VM's" "uid: (11[0-9]{8})"
  t_begin "microvm: a compromised VMM: its host id differs from the concurrent VM's"
  pr_uid=$(printf '%s\n' "$pr_out" | sed -n 's/^vmm-probe uid: //p')
  [ -n "$pr_uid" ] && [ -n "$mvj_uid" ] && [ "$pr_uid" != "$mvj_uid" ] && pass || fail "probe '$pr_uid', other VM '$mvj_uid'"
  pr "is PID 1 of its own PID namespace" "pid: 1"
  pr "has a hostname of its own" "hostname: vmm"
  pr "sees an empty root but /usr, /boot, /dev" "root: ((bin|boot|dev|lib|lib64|usr) ?){6}"
  pr "no core dumps" "core: 0"
  pr "at most 4096 descriptors" "nofile: 4096"
  pr "ptrace of the other VM's QEMU is refused" "ptrace-other: EPERM"
  pr "process_vm_readv is refused (even of itself)" "process_vm_readv-self: EPERM"
  pr "(control) it may signal itself" "kill-self: ok"
  pr "cannot reach the other VM's QEMU with kill" "kill-other: ESRCH"
  pr "mount is refused" "mount: EPERM"
  pr "umount is refused" "umount: EPERM"
  pr "chroot is refused" "chroot: EPERM"
  pr "a user namespace is refused" "unshare-user: EPERM"
  pr "setns is refused (EPERM from the filter, not EBADF)" "setns: EPERM"
  pr "bpf is refused" "bpf: EPERM"
  pr "keyctl is refused" "keyctl: EPERM"
  pr "perf_event_open is refused" "perf_event_open: EPERM"
  pr "userfaultfd is refused" "userfaultfd: EPERM"
  pr "io_uring is refused" "io_uring_setup: EPERM"
  pr "module loading is refused" "init_module: EPERM"
  pr "kexec is refused" "kexec_load: EPERM"
  pr "setuid(0) is refused" "setuid-0: EPERM"
  pr "its descriptor limit cannot be raised" "raise-nofile: EPERM"
  pr "the descriptor it was started from cannot be taken again" "dup-to-4096: EBADF"
  pr "(control) /usr/bin/true is there and executable" "access-true: ok"
  pr "execve is refused once started" "execve: EPERM"
  pr "execveat is refused once started" "execveat: EPERM"
  pr "its root is read-only" "write-root: EROFS"
  if [ "$mvj_dev" = '^dev:$' ]; then pr "no /dev/kvm under TCG" "open-kvm: ENOENT"
  else pr "(control) /dev/kvm where KVM is used" "open-kvm: ok"; fi
  pr "no /proc" "open-proc: ENOENT"
  pr "(control) the kernel it boots is readable" "read-kernel: ok"
  pr "the kernel it boots is not writable" "write-kernel: (EACCES|EROFS)"
  pr "host /etc/shadow is not there" "open /etc/shadow: ENOENT"
  pr "host /etc/passwd is not there" "open /etc/passwd: ENOENT"
  pr "the other VM's files are not there" "open $AGENTKERNEL_STATE_DIR/sandboxes/mvjail/console.log: ENOENT"
  pr "agentkernel's state directory is not there" "open $AGENTKERNEL_STATE_DIR: ENOENT"
  pr "the host ids' locks are not there" "open /run/agentkernel/vm-ids: ENOENT"
  pr "its own program's host path is not there" "open $vmm_probe: ENOENT"
  unset -f pr
  expect "microvm: the other VM survived the attempts and still serves" 0 '^alive$' -- "$AK" exec mvjail -- echo alive
  "$AK" remove --force mvprobe >/dev/null 2>&1
  # The product has no such hook: the same variable, and QEMU runs.
  expect "microvm: agentkernel (not the test build) ignores AK_TEST_VMM" 0 "$MARK" -- \
    env AK_TEST_VMM="$vmm_probe" "$AK" run --backend microvm --no-network -- echo "$MARK"
  "$AK" stop mvjail >/dev/null 2>&1
  t_begin "microvm: stop releases the VM's host id"
  [ -n "$mvj_uid" ] && flock -n -x "/run/agentkernel/vm-ids/$mvj_uid" true && pass || fail "host id '$mvj_uid' still locked"
  "$AK" remove --force mvjail >/dev/null 2>&1

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
  # A persistent sandbox's writable layer: an ext4 image in its state
  # directory (virtio-blk), which only the guest kernel reads.  What the
  # sandbox wrote outside the shares is there after stop and start; what it
  # planted there never reaches the host.
  lw=$(mktemp -d)
  lhost=$(mktemp -d /var/tmp/ak-mvlayer.XXXXXX)
  chmod 755 "$lw" "$lhost"
  echo host-original >"$lhost/target"
  chmod 666 "$lhost/target"
  ldir=$AGENTKERNEL_STATE_DIR/sandboxes/mvlayer
  (cd "$lw" && "$AK" create mvlayer --backend microvm --no-network --disk 64 >/dev/null 2>&1)
  expect "microvm: layer: start" 0 '' -- "$AK" start mvlayer
  # Links to host paths (the sandbox's own state directory and image among
  # them), a file, a directory, all in the layer.
  expect "microvm: layer: write /home/user and plant links to host paths" 0 "$MARK" -- "$AK" exec mvlayer -- sh -c \
    "echo kept-$MARK >/home/user/kept && mkdir -p /home/user/d && echo deep >/home/user/d/f && ln -s $lhost/target /home/user/to-host && ln -s $ldir/layer.img /home/user/to-image && ln -s $ldir /home/user/to-state && ln -s / /home/user/to-root && echo $MARK"
  attack "microvm: layer: --disk bounds it (1 MiB written, 100 MiB not)" 0 'small-ok .*No space left' -- \
    "$AK" exec mvlayer -- sh -c "echo $MARK; head -c 1M /dev/zero >/home/user/small && s=small-ok; r=\$(head -c 100M /dev/zero 2>&1 >/home/user/big); echo \"\$s \$r\"; rm -f /home/user/big /home/user/small"
  "$AK" stop mvlayer >/dev/null 2>&1
  t_begin "microvm: layer: one regular image of --disk's size in the state directory, nothing of the guest's beside it"
  if [ ! -f "$ldir/layer.img" ] || [ -L "$ldir/layer.img" ]; then fail "no layer image: $(ls -la "$ldir" 2>&1)"
  elif [ "$(stat -c %s "$ldir/layer.img")" != 67108864 ]; then fail "size $(stat -c %s "$ldir/layer.img")"
  elif [ -n "$(find "$ldir" -type l -o -name kept -o -name 'to-*' 2>/dev/null)" ]; then fail "$(find "$ldir" -type l -o -name kept -o -name 'to-*')"
  else pass; fi
  expect "microvm: layer: start again" 0 '' -- "$AK" start mvlayer
  expect "microvm: layer: a file written in /home/user survives stop and start" 0 "^kept-$MARK\$" -- \
    "$AK" exec mvlayer -- cat /home/user/kept
  expect "microvm: layer: a directory of it too" 0 '^deep$' -- "$AK" exec mvlayer -- cat /home/user/d/f
  expect "microvm: layer: the planted links are still the guest's links" 0 "^$ldir/layer.img\$" -- \
    "$AK" exec mvlayer -- readlink /home/user/to-image
  # Written through from the guest: the host's files stay as they were.
  "$AK" exec mvlayer -- sh -c 'for l in to-host to-image to-state/state.json to-root/etc/hostname; do echo guest >"/home/user/$l"; done' >/dev/null 2>&1
  "$AK" stop mvlayer >/dev/null 2>&1
  t_begin "microvm: layer: links planted in the layer reach no host file, at the next start or through them"
  if [ "$(cat "$lhost/target")" != host-original ]; then fail "host file changed: $(cat "$lhost/target")"
  elif [ "$(stat -c %s "$ldir/layer.img")" != 67108864 ] || [ -n "$(find "$ldir" -type l)" ]; then
    fail "state directory changed: $(ls -la "$ldir")"
  elif grep -rqx guest "$ldir" --exclude=layer.img 2>/dev/null; then fail "the guest's write is in the state directory"
  elif ! "$AK" start mvlayer >/dev/null 2>&1; then fail "does not start again"
  elif [ "$("$AK" exec mvlayer -- cat /home/user/kept 2>/dev/null)" != "kept-$MARK" ]; then fail "the layer is not there after the writes"
  else pass; fi
  expect "microvm: layer: remove" 0 '' -- "$AK" remove --force mvlayer
  t_begin "microvm: layer: remove deletes it"
  [ ! -e "$ldir/layer.img" ] && [ ! -e "$ldir" ] && pass || fail "still there: $(ls -la "$ldir" 2>&1)"
  rm -rf "$lw" "$lhost"
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
if microvm_have && is_root; then
  mv_only=${T_ONLY_FILE:-}
  if [ "${AK_MICROVM_FULL:-0}" = 1 ]; then
    echo "== microvm: the profile, hardening, lifecycle and command policy files on the microvm backend (AK_MICROVM_FULL=1)"
  else
    echo "== microvm: a representative subset of the profile, hardening, lifecycle and command policy files (microvm-subset; AK_MICROVM_FULL=1 runs them all)"
    T_ONLY_FILE=$here/microvm-subset
  fi
  mv_prev=$AK_TEST_BACKEND
  t_backend microvm
  for mv_file in profiles hardening lifecycle commands; do
    . "$here/test_$mv_file.sh"
  done
  t_backend "$mv_prev"
  T_ONLY_FILE=$mv_only
fi
