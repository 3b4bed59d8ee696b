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
