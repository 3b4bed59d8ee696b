# OCI images: pulling from real registries (Debian's docker-registry on
# 127.0.0.1: plain, basic auth, bearer tokens, TLS with a test CA), the
# verified store, hostile layers, killed and concurrent pulls.  Fixtures are
# built offline by tests/images/fixtures.sh.
echo "== images"
IMG_FX=$(cd "$here/../images" 2>/dev/null && pwd)
img_ready=1
for tool in docker-registry htpasswd openssl python3 zstd; do
  command -v "$tool" >/dev/null || { img_ready=0; img_missing=$tool; }
done
[ -f /bin/busybox ] || { img_ready=0; img_missing=busybox-static; }
if [ "$img_ready" = 0 ] || [ -z "$IMG_FX" ]; then
  t_begin "images: fixtures"
  skip "needs $img_missing (docker-registry apache2-utils openssl python3 zstd busybox-static)"
else
  img_dir=$PWD/images-fx
  mkdir -p "$img_dir"
  t_begin "images: fixtures (registries up, images pushed)"
  if "$IMG_FX/fixtures.sh" up "$img_dir" >"$img_dir/up.log" 2>&1; then pass; else fail "$(tail -5 "$img_dir/up.log")"; fi
  . "$img_dir/env"
  IMG_ST=$PWD/img-state
  # Each command gets its own state and config directories, never the user's.
  aki () { AGENTKERNEL_STATE_DIR=$IMG_ST XDG_CONFIG_HOME=$PWD/img-config DOCKER_CONFIG=$PWD/img-docker \
             REGISTRY_AUTH_FILE= XDG_RUNTIME_DIR= "$AK" image "$@"; }
  digest_of () { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$img_dir/digests.json" "$1"; }
  # Every blob in the store hashes to its name: nothing unverified, nothing partial.
  store_verified () {
    local f bad=0
    for f in "$IMG_ST"/images/blobs/sha256/*; do
      [ -e "$f" ] || continue
      [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${f##*/}" ] || { echo "bad blob ${f##*/}"; bad=1; }
    done
    return $bad
  }
  layer_dir () { aki inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][int(sys.argv[1])]["dir"])' "$2"; }

  # --- pulls and the store ---------------------------------------------------
  expect "images: pull from a plain loopback registry" 0 "$PLAIN/test/busybox:latest $(digest_of busybox)" -- \
    aki pull "$PLAIN/test/busybox"
  expect "images: pull prints one line per layer without a terminal" 0 "^manifest .*1 layer" -- \
    aki pull "$PLAIN/test/layers:v2s2"
  expect "images: --quiet prints no progress" 0 "^$PLAIN/test/layers:latest sha256:[0-9a-f]{64}$" -- \
    aki pull --quiet "$PLAIN/test/layers"
  expect "images: a re-pull finds every layer present" 0 "already present" -- aki pull "$PLAIN/test/layers"
  expect "images: list shows the images" 0 "test/busybox:latest.*linux/amd64" -- aki list
  expect "images: list --json" 0 '"reference": "127.0.0.1:[0-9]+/test/layers:latest"' -- aki list --json
  expect "images: inspect names digest, platform, config and layers with sizes" 0 \
    '"digest": "'"$(digest_of layers)"'"' -- aki inspect "$PLAIN/test/layers"
  expect "images: inspect carries the image config" 0 '"Cmd": \[' -- aki inspect "$PLAIN/test/layers"
  expect "images: inspect of an image not pulled" 125 "no image .*image pull" -- aki inspect "$PLAIN/test/nothing"
  t_begin "images: every stored blob matches its digest"
  if out=$(store_verified); then pass; else fail "$out"; fi

  # Layer content as overlayfs expects it.
  l1=$(layer_dir "$PLAIN/test/layers" 0) l2=$(layer_dir "$PLAIN/test/layers" 1)
  t_begin "images: files, hard links and symlinks within a layer are kept"
  if [ "$(cat "$l1/a.txt")" = "layer one" ] && [ "$l1/a.txt" -ef "$l1/hl" ] && [ "$(readlink "$l1/ln")" = a.txt ] \
     && [ "$(cat "$l1/ro/f")" = "in a read-only dir" ]; then pass; else fail "$(ls -la "$l1")"; fi
  t_begin "images: files keep the image's modification time"
  if [ "$(stat -c %Y "$l1/a.txt")" = 1700000000 ] && [ "$(stat -c %Y "$l1/ln")" = 1700000000 ]; then pass
  else fail "$(stat -c '%n %Y' "$l1/a.txt" "$l1/ln")"; fi
  t_begin "images: setuid and setgid bits are stripped"
  if [ -f "$l1/suid" ] && [ ! -u "$l1/suid" ] && [ ! -g "$l1/sgid" ] && [ -x "$l1/suid" ]; then pass
  else fail "$(ls -l "$l1/suid" "$l1/sgid")"; fi
  t_begin "images: user xattrs kept; file capabilities and overlay metadata dropped"
  if out=$(python3 -c 'import os,sys; print(sorted(os.listxattr(sys.argv[1])))' "$l1/xa" 2>&1) && [ "$out" = "['user.test']" ]; then pass
  else fail "xattrs of xa: $out"; fi
  t_begin "images: a .wh. file becomes an overlay whiteout (0/0 character device)"
  if [ -c "$l2/a.txt" ] && [ "$(stat -c %t,%T "$l2/a.txt")" = 0,0 ]; then pass; else fail "$(ls -l "$l2")"; fi
  t_begin "images: an opaque directory is marked for overlay"
  if python3 -c 'import os,sys; sys.exit(0 if os.getxattr(sys.argv[1], "user.overlay.opaque") == b"y" else 1)' "$l2/d" \
     && [ ! -e "$l2/d/.wh..wh..opq" ] && [ "$(cat "$l2/d/new")" = new ]; then pass; else fail "no opaque mark on $l2/d"; fi
  t_begin "images: device nodes are skipped, FIFOs kept"
  if [ ! -e "$l2/dev/null" ] && [ ! -e "$l2/dev/sda" ] && [ -p "$l2/fifo" ]; then pass; else fail "$(ls -l "$l2/dev")"; fi

  # Indexes and platforms.
  expect "images: an OCI index resolves to this host's platform, attestation skipped" 0 \
    "test/multi:latest $(digest_of multi_amd64)" -- aki pull -q "$PLAIN/test/multi"
  expect "images: a Docker manifest list too" 0 "test/multi:list $(digest_of multi_list_amd64)" -- \
    aki pull -q "$PLAIN/test/multi:list"
  expect "images: --platform picks another entry" 0 "$(digest_of multi_arm64)" -- \
    aki pull -q --platform linux/arm64 "$PLAIN/test/multi:latest"
  expect "images: a platform the image lacks is one clear error" 125 \
    "^agentkernel: pull $PLAIN/test/multi:latest: no image for the platform linux/s390x \(the image has: linux/amd64, linux/arm64/v8\)$" -- \
    aki pull -q --platform linux/s390x "$PLAIN/test/multi"
  expect "images: an uncompressed layer" 0 "test/plain-tar:latest $(digest_of plain_tar)" -- aki pull -q "$PLAIN/test/plain-tar"
  expect "images: pull by digest" 0 "@$(digest_of busybox)" -- aki pull -q "$PLAIN/test/busybox@$(digest_of busybox)"
  expect "images: unknown tag names image and registry" 125 "^agentkernel: pull $PLAIN/test/busybox:nope: registry $PLAIN has no tag nope" -- \
    aki pull -q "$PLAIN/test/busybox:nope"
  expect "images: an invalid reference is refused" 125 "invalid image reference" -- aki pull "$PLAIN/Test/Upper"
  expect "images: an unreachable registry" 125 "registry 127.0.0.1:1 unreachable" -- aki pull -q "127.0.0.1:1/x"
  expect "images: a layer past the size limit stops the pull" 125 "expands past the size limit" -- \
    env AGENTKERNEL_IMAGE_MAX_LAYER_BYTES=1000000 "$AK" image pull -q "$PLAIN/test/big"

  IMG_ST=$PWD/img-flaky
  expect "images: pull through resets, 503s and redirects" 0 "$FLAKY/test/layers:latest" -- \
    aki pull -q "$FLAKY/test/layers"
  IMG_ST=$PWD/img-state
  t_begin "images: a manifest request whose connection was closed is retried"
  nman=$(grep -c "/v2/test/layers/manifests/latest" "$FX_FLAKY_LOG")
  if [ "$nman" = 2 ]; then pass; else fail "$nman manifest requests: $(cat "$FX_FLAKY_LOG")"; fi
  t_begin "images: each blob got a 503, then a redirect to where it was served"
  n503=$(grep -c "/v2/test/layers/blobs/" "$FX_FLAKY_LOG")
  if [ "$n503" = 6 ]; then pass; else fail "$n503 blob requests: $(cat "$FX_FLAKY_LOG")"; fi
  if command -v script >/dev/null; then
    IMG_ST=$PWD/img-tty
    expect "images: a pull on a terminal draws progress bars" 0 "layer [0-9a-f]{12}: \[#+ *\] .* MB/s|layer [0-9a-f]{12}: \[#+ *\] .* kB/s" -- \
      script -qec "AGENTKERNEL_STATE_DIR=$IMG_ST $AK image pull $PLAIN/test/busybox" /dev/null
    IMG_ST=$PWD/img-state
  fi

  # --- hostile layers: refused, naming layer and entry; nothing outside ----
  for evil in traversal:escape-traversal absolute:escape-absolute symlink:escape-symlink \
              dotdot:escape-dotdot hardlink:hl hardlink-abs:hl; do
    name=${evil%%:*} entry=${evil#*:}
    expect "images: hostile layer ($name) refused" 125 "layer sha256:[0-9a-f]{64}: entry \"[^\"]*$entry\"" -- \
      aki pull -q "$PLAIN/evil/$name"
  done
  t_begin "images: nothing written outside a layer by the hostile ones"
  if [ -z "$(ls -A "$FX_ESCAPE")" ] && [ ! -e "$PWD/escape-traversal" ] && [ ! -e "$IMG_ST/images/escape-traversal" ] \
     && [ ! -e "$IMG_ST/images/escape-dotdot" ] && [ -z "$(ls -A "$IMG_ST/images/tmp")" ]; then pass
  else fail "found: $(ls -A "$FX_ESCAPE" "$IMG_ST/images/tmp")"; fi
  expect "images: a refused image is not recorded" 0 "" -- sh -c "! AGENTKERNEL_STATE_DIR=$IMG_ST $AK image list | grep -q evil/"

  # --- a tampered blob in the registry ------------------------------------
  tl=$(digest_of tampered_layer)
  tf=$FX_STORAGE/docker/registry/v2/blobs/sha256/${tl:7:2}/${tl:7}/data
  python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[len(d)//2]^=0xff; open(p,"wb").write(d)' "$tf"
  expect "images: a tampered blob is refused, naming it" 125 "blob $tl from registry $PLAIN does not match its digest" -- \
    aki pull -q "$PLAIN/test/tampered"
  t_begin "images: the tampered blob left nothing behind"
  if [ ! -e "$IMG_ST/images/blobs/sha256/${tl:7}" ] && [ -z "$(ls -A "$IMG_ST/images/tmp")" ]; then pass; else fail "kept"; fi

  # --- authentication and TLS ---------------------------------------------
  expect "images: basic auth registry without credentials" 125 "authentication required \(agentkernel image login $BASIC\)" -- \
    aki pull -q "$BASIC/test/busybox"
  expect "images: login with a wrong password is refused" 125 "authentication refused" -- \
    sh -c "echo wrong | AGENTKERNEL_STATE_DIR=$IMG_ST XDG_CONFIG_HOME=$PWD/img-config $AK image login $BASIC -u agent --password-stdin"
  expect "images: login (basic)" 0 "logged in to $BASIC" -- \
    sh -c "echo agentpass | AGENTKERNEL_STATE_DIR=$IMG_ST XDG_CONFIG_HOME=$PWD/img-config $AK image login $BASIC -u agent --password-stdin"
  t_begin "images: credentials are kept mode 0600"
  if [ "$(stat -c %a "$PWD/img-config/agentkernel/auth.json")" = 600 ]; then pass; else fail "$(ls -l "$PWD/img-config/agentkernel")"; fi
  expect "images: pull with basic auth after login" 0 "$BASIC/test/busybox:latest" -- aki pull -q "$BASIC/test/busybox"
  expect "images: logout" 0 "logged out of $BASIC" -- aki logout "$BASIC"
  expect "images: logout twice" 125 "not logged in to $BASIC" -- aki logout "$BASIC"
  mkdir -p "$PWD/img-docker"
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$BASIC" "$(printf agent:agentpass | base64)" >"$PWD/img-docker/config.json"
  expect "images: credentials from Docker's config.json" 0 "$BASIC/test/layers:latest" -- aki pull -q "$BASIC/test/layers"
  rm -f "$PWD/img-docker/config.json"
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$BASIC" "$(printf agent:agentpass | base64)" >"$PWD/img-auth.json"
  expect "images: credentials from \$REGISTRY_AUTH_FILE" 0 "$BASIC/test/multi:latest" -- \
    env AGENTKERNEL_STATE_DIR="$IMG_ST" XDG_CONFIG_HOME="$PWD/img-config" REGISTRY_AUTH_FILE="$PWD/img-auth.json" \
    "$AK" image pull -q "$BASIC/test/multi"
  expect "images: bearer token, anonymous" 0 "$TOKEN/test/busybox:latest" -- aki pull -q "$TOKEN/test/busybox"
  expect "images: bearer token, private repository without login" 125 "authentication required" -- \
    aki pull -q "$TOKEN/private/busybox"
  expect "images: login to a token registry" 0 "logged in" -- \
    sh -c "echo agentpass | XDG_CONFIG_HOME=$PWD/img-config $AK image login $TOKEN -u agent --password-stdin"
  expect "images: bearer token with credentials" 0 "$TOKEN/private/busybox:latest" -- aki pull -q "$TOKEN/private/busybox"
  expect "images: TLS with an unknown CA is refused (no fallback to HTTP)" 125 "TLS failure with registry $TLS.*certs.d/$TLS/ca.crt" -- \
    aki pull -q "$TLS/test/busybox"
  mkdir -p "$PWD/img-config/agentkernel/certs.d/$TLS" && cp "$FX_CA" "$PWD/img-config/agentkernel/certs.d/$TLS/ca.crt"
  expect "images: TLS with the CA in certs.d/HOST:PORT/ca.crt" 0 "$TLS/test/busybox:latest" -- aki pull -q "$TLS/test/busybox"
  if is_root; then
    # Docker's own place, for this test's port only (nothing else in /etc is touched).
    rm -rf "$PWD/img-config/agentkernel/certs.d"
    [ -d /etc/docker ] && etc_docker=1 || etc_docker=0
    mkdir -p "/etc/docker/certs.d/$TLS" && cp "$FX_CA" "/etc/docker/certs.d/$TLS/ca.crt"
    IMG_ST=$PWD/img-etc-certs
    expect "images: TLS with the CA in /etc/docker/certs.d/HOST:PORT/ca.crt" 0 "$TLS/test/busybox:latest" -- \
      aki pull -q "$TLS/test/busybox"
    IMG_ST=$PWD/img-state
    rm -rf "/etc/docker/certs.d/$TLS"
    if [ "$etc_docker" = 0 ]; then rm -rf /etc/docker; else rmdir /etc/docker/certs.d 2>/dev/null; fi
  fi

  # --- killed and concurrent pulls ----------------------------------------
  t_begin "images: a pull killed with SIGKILL at any point is completed by the next"
  bad=""
  for delay in 0 0.005 0.01 0.02 0.04 0.08; do
    IMG_ST=$PWD/img-kill-$delay
    aki pull -q "$PLAIN/test/layers" >/dev/null 2>&1 & pid=$!
    sleep "$delay"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    aki pull -q "$PLAIN/test/layers" >/dev/null 2>&1 || bad="$bad re-pull($delay)"
    aki inspect "$PLAIN/test/layers" >/dev/null 2>&1 || bad="$bad inspect($delay)"
    store_verified >/dev/null || bad="$bad blobs($delay)"
  done
  if [ -z "$bad" ]; then pass; else fail "$bad"; fi
  t_begin "images: four concurrent pulls all succeed and download each layer once"
  IMG_ST=$PWD/img-conc
  for i in 1 2 3 4; do aki pull "$PLAIN/test/layers" >"$PWD/conc.$i" 2>&1 & eval "p$i=\$!"; done
  rcs=""; for i in 1 2 3 4; do eval "wait \$p$i"; rcs="$rcs$?"; done
  downloads=$(cat "$PWD"/conc.* | grep -c "downloaded")
  if [ "$rcs" = 0000 ] && [ "$downloads" = 2 ]; then pass; else fail "statuses $rcs, $downloads layer downloads: $(cat "$PWD"/conc.*)"; fi
  IMG_ST=$PWD/img-state

  # A manifest changed in the store is caught when it is read back.
  IMG_ST=$PWD/img-corrupt
  aki pull -q "$PLAIN/test/busybox" >/dev/null 2>&1
  bbm=$(digest_of busybox)
  chmod u+w "$IMG_ST/images/blobs/sha256/${bbm:7}" && printf ' ' >>"$IMG_ST/images/blobs/sha256/${bbm:7}"
  expect "images: a manifest changed in the store is refused on use" 125 "blob $bbm in the image store is corrupt" -- \
    aki inspect "$PLAIN/test/busybox"
  expect "images: list names the damaged image and goes on" 0 "warning: .*corrupt" -- aki list
  expect "images: a damaged image can be removed" 0 "removed" -- aki rm "$PLAIN/test/busybox"
  IMG_ST=$PWD/img-state

  # --- running images ------------------------------------------------------
  IMG_RUN=$PWD/img-run
  akr () { AGENTKERNEL_STATE_DIR=$IMG_RUN XDG_CONFIG_HOME=$PWD/img-config DOCKER_CONFIG=$PWD/img-docker \
             REGISTRY_AUTH_FILE= XDG_RUNTIME_DIR= "$AK" "$@"; }
  RUNIMG=$PLAIN/test/run
  expect "images run: an image not yet present is pulled, then its default command runs" 0 \
    "^default cmd$" -- akr run --image "$RUNIMG"
  expect "images run: the root is the image" 0 "^from-the-image$" -- akr run -i "$RUNIMG" -- cat /etc/marker
  attack "images run: the host's files are not there" 1 "No such file" -- \
    akr run -i "$RUNIMG" -- sh -c "echo $MARK; cat /etc/debian_version"
  expect "images run: the host's files are there without the image (control)" 0 "^[0-9]" -- \
    akr run -- cat /etc/debian_version
  expect "images run: the image's Env" 0 "^from-image /bin:/usr/bin$" -- akr run -i "$RUNIMG" -- sh -c 'echo $FOO $PATH'
  expect "images run: -e overrides the image's Env" 0 "^cli$" -- akr run -i "$RUNIMG" -e FOO=cli -- sh -c 'echo $FOO'
  expect "images run: pass_env keeps the image's PATH" 0 "^/bin:/usr/bin /home/user$" -- \
    akr run --profile permissive -i "$RUNIMG" -- sh -c 'echo $PATH $HOME'
  expect "images run: the image's WorkingDir without a workspace" 0 "^/srv$" -- akr run -i "$RUNIMG" -- sh -c pwd
  expect "images run: a whiteout in an upper layer hides the lower file" 0 "^gone$" -- \
    akr run -i "$RUNIMG" -- sh -c 'test -e /bin/ls && echo there || echo gone'
  expect "images run: the same file is there in the lower layer alone (control)" 0 "^there$" -- \
    akr run -i "$PLAIN/test/busybox" -- sh -c 'test -e /bin/ls && echo there || echo gone'
  expect "images run: the sandbox runs as its user, the image appears to be its own" 0 "^uid=1000 gid=1000" -- \
    akr run -i "$RUNIMG" -- busybox id
  expect "images run: the root is writable (an upper layer of its own)" 0 "^planted$" -- \
    akr run -i "$RUNIMG" -- sh -c 'echo planted >/bin/planted && cat /bin/planted'
  expect "images run: ... and nothing of it outlives the run" 0 "^absent$" -- \
    akr run -i "$RUNIMG" -- sh -c 'test -e /bin/planted && echo present || echo absent'
  t_begin "images run: the store's layers are untouched"
  bad=""
  for d in $(AGENTKERNEL_STATE_DIR=$IMG_RUN "$AK" image inspect "$RUNIMG" | python3 -c 'import json,sys; print(" ".join(l["dir"] for l in json.load(sys.stdin)["layers"]))'); do
    [ -e "$d/bin/planted" ] && bad="$bad $d"
  done
  if [ -z "$bad" ] && [ "$(find "$IMG_RUN/images/layers" -name planted | wc -l)" = 0 ]; then pass; else fail "planted in$bad"; fi
  attack "images run: restrictive keeps the image's root read-only" 1 "Read-only file system" -- \
    akr run --profile restrictive -i "$RUNIMG" -- sh -c "echo $MARK; echo x >/bin/planted"
  expect "images run: restrictive still has a writable /tmp" 0 "^ok$" -- \
    akr run --profile restrictive -i "$RUNIMG" -- sh -c 'echo ok >/tmp/f && cat /tmp/f'
  mkdir -p "$PWD/img-proj" && echo "project file" >"$PWD/img-proj/in-the-project"
  expect "images run: the project at /workspace (permissive)" 0 "^project file$" -- \
    sh -c "cd '$PWD/img-proj' && AGENTKERNEL_STATE_DIR='$IMG_RUN' '$AK' run --profile permissive -i '$RUNIMG' -- cat /workspace/in-the-project"
  expect "images run: --image and --rootfs exclude each other" 125 "exclude each other" -- \
    akr run -i "$RUNIMG" --rootfs / -- true
  expect "images run: an unknown image is one clear error" 125 "image $PLAIN/test/nothing.*has no (tag|repository)|image $PLAIN/test/nothing" -- \
    akr run -i "$PLAIN/test/nothing" -- true
  expect "images run: an invalid reference is one clear error" 125 "image" -- akr run -i "UPPER/Case::x" -- true
  expect "images run: [sandbox] base_image" 0 "^from-the-image$" -- \
    sh -c "cd '$PWD/img-proj' && printf '[sandbox]\nbase_image = \"%s\"\n' '$RUNIMG' >agentkernel.toml && AGENTKERNEL_STATE_DIR='$IMG_RUN' '$AK' run -- cat /etc/marker; rc=\$?; rm -f agentkernel.toml; exit \$rc"

  # Debian (glibc) and Alpine-style (musl) userlands, dynamically linked.
  expect "images run: a glibc image (the host's bash and its libraries)" 0 "^glibc [0-9]" -- \
    akr run -i "$PLAIN/test/glibc" -- /bin/bash -c 'echo glibc $BASH_VERSION'
  if grep -q '"musl"' "$img_dir/digests.json"; then
    expect "images run: a musl image (musl's dynamic loader)" 0 "^hello from musl$" -- akr run -i "$PLAIN/test/musl" -- /bin/hello
  else
    t_begin "images run: a musl image"; skip "needs musl-gcc (apt-get install musl-tools)"
  fi

  # Persistent sandboxes keep their image and their writes.
  akr remove -f img-p >/dev/null 2>&1
  expect "images run: create with an image" 0 "" -- akr create img-p --image "$RUNIMG"
  expect "images run: exec in it sees the image" 0 "^from-the-image$" -- \
    sh -c "AGENTKERNEL_STATE_DIR='$IMG_RUN' '$AK' start img-p >/dev/null && AGENTKERNEL_STATE_DIR='$IMG_RUN' '$AK' exec img-p -- cat /etc/marker"
  expect "images run: writes persist across stop and start" 0 "^kept$" -- \
    sh -c "A='AGENTKERNEL_STATE_DIR=$IMG_RUN'; env \$A '$AK' exec img-p -- sh -c 'echo kept >/bin/kept' && env \$A '$AK' stop img-p && env \$A '$AK' start img-p >/dev/null && env \$A '$AK' exec img-p -- cat /bin/kept"
  expect "images run: list shows the image" 0 "img-p .*$RUNIMG" -- akr list
  expect "images run: rm of an image a sandbox uses is refused, naming it" 125 "used by sandbox 'img-p'" -- \
    akr image rm "$RUNIMG"
  expect "images run: prune keeps it" 0 "^freed" -- akr image prune
  expect "images run: the sandbox still runs it after prune" 0 "^from-the-image$" -- akr exec img-p -- cat /etc/marker
  expect "images run: create with an image that cannot be pulled fails at create" 125 "image" -- \
    akr create img-bad --image "$PLAIN/test/nothing"
  expect "images run: ... and leaves no sandbox" 0 "" -- sh -c "! AGENTKERNEL_STATE_DIR='$IMG_RUN' '$AK' list | grep -q img-bad"
  akr remove -f img-p >/dev/null 2>&1
  expect "images run: rm works once the sandbox is gone" 0 "removed $RUNIMG" -- akr image rm "$RUNIMG"

  # --image auto, through a docker.io mirror on the test registry.
  mkdir -p "$PWD/img-auto-node" "$PWD/img-auto-none" && echo '{}' >"$PWD/img-auto-node/package.json"
  autorun () { (cd "$1" && shift && AGENTKERNEL_REGISTRY_MIRRORS=docker.io=$PLAIN AGENTKERNEL_STATE_DIR=$IMG_RUN "$AK" run "$@"); }
  expect "images run: auto picks node for package.json and says why" 0 "image auto: node:22-alpine \(found package.json in the project\)" -- \
    autorun "$PWD/img-auto-node" --image auto -- cat /etc/which
  expect "images run: ... and runs it" 0 "^node$" -- autorun "$PWD/img-auto-node" --image auto -- cat /etc/which
  expect "images run: auto falls back to alpine" 0 "image auto: alpine:3.20 \(no project file or known command\)" -- \
    autorun "$PWD/img-auto-none" --image auto -- cat /etc/which
  expect "images run: ... and runs it" 0 "^alpine$" -- autorun "$PWD/img-auto-none" --image auto -- cat /etc/which
  # (The test image has no python3: the choice is said, then the command is not found.)
  expect "images run: auto picks by the command when no file decides" 127 "image auto: python:3.12-alpine \(command python3\)" -- \
    autorun "$PWD/img-auto-none" --image auto -- python3 -c 1
  expect "images run: a malformed mirror setting is one clear error" 125 "AGENTKERNEL_REGISTRY_MIRRORS" -- \
    env AGENTKERNEL_REGISTRY_MIRRORS=docker.io AGENTKERNEL_STATE_DIR="$IMG_RUN" "$AK" run -i nothing:1 -- true

  # Through the API: /run and /run/stream with an image (pulled live on the stream).
  IMG_API=$PWD/img-api
  sock=$PWD/img-api.sock
  rm -f "$sock"
  AGENTKERNEL_STATE_DIR=$IMG_API "$AK" serve --socket "$sock" >"$PWD/img-serve.log" 2>&1 & img_srv=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
  apost () { curl -sS --unix-socket "$sock" -X POST "http://localhost$1" -H 'content-type: application/json' -d "$2"; }
  expect "images api: /run/stream pulls the image, reporting progress events, then runs it" 0 \
    '"stage":"pulling".*"event":"unpacked"' -- sh -c "$(declare -f apost); sock='$sock'; apost /run/stream '{\"command\": [\"cat\", \"/etc/marker\"], \"image\": \"$RUNIMG\"}' | tr '\n' ' '"
  expect "images api: ... and the command's output follows" 0 'from-the-image' -- \
    apost /run "{\"command\": [\"cat\", \"/etc/marker\"], \"image\": \"$RUNIMG\"}"
  expect "images api: an image that is not there is a 4xx naming it" 0 'success":false.*test/nothing' -- \
    apost /run "{\"command\": [\"true\"], \"image\": \"$PLAIN/test/nothing\"}"
  expect "images api: create with an image" 0 '"success":true' -- \
    apost /sandboxes "{\"name\": \"img-api\", \"image\": \"$RUNIMG\"}"
  expect "images api: exec in it runs in the image" 0 'from-the-image' -- \
    apost /sandboxes/img-api/exec '{"command": ["cat", "/etc/marker"]}'
  curl -sS --unix-socket "$sock" -X DELETE http://localhost/sandboxes/img-api >/dev/null
  kill "$img_srv"; wait "$img_srv" 2>/dev/null

  # --- rm and prune -------------------------------------------------------
  expect "images: rm keeps layers another image uses" 0 "removed $PLAIN/test/busybox" -- aki rm "$PLAIN/test/busybox"
  expect "images: the other image is intact" 0 "" -- aki inspect "$PLAIN/test/busybox@$(digest_of busybox)"
  expect "images: rm of an image not pulled" 125 "no image" -- aki rm "$PLAIN/test/nothing"
  : >"$IMG_ST/images/tmp/blob-leftover"
  expect "images: prune frees a killed pull's leftovers" 0 "^freed " -- aki prune
  t_begin "images: prune left every image usable"
  bad=""
  for r in "$PLAIN/test/layers" "$PLAIN/test/multi:list" "$TLS/test/busybox"; do aki inspect "$r" >/dev/null 2>&1 || bad="$bad $r"; done
  if [ -z "$bad" ] && [ ! -e "$IMG_ST/images/tmp/blob-leftover" ] && store_verified >/dev/null; then pass; else fail "broken:$bad"; fi
  for r in $(AGENTKERNEL_STATE_DIR=$IMG_ST "$AK" image list --json | python3 -c 'import json,sys; print(" ".join(i["reference"] for i in json.load(sys.stdin)))'); do
    aki rm "$r" >/dev/null 2>&1
  done
  t_begin "images: removing every image empties the store"
  left=$(find "$IMG_ST/images/blobs/sha256" "$IMG_ST/images/layers/sha256" -mindepth 1 -maxdepth 1 | head -3)
  if [ -z "$left" ]; then pass; else fail "left: $left"; fi

  "$IMG_FX/fixtures.sh" down "$img_dir"
fi
