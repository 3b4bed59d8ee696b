#!/usr/bin/env bash
# The placement rule of HACKING.md, checked on the tree: each layer includes
# only the layers below it, and only backends create namespaces or mounts.
set -u
cd "$(dirname "$0")/.." || exit 1
bad=0
# layer: the directories it may include from (besides itself).
declare -A may=(
  [common]=""
  [model]="common"
  [proto]="common"
  [agent]="common model proto"
  [backend]="common model proto agent"
  [service]="common model proto backend images"
  [images]="common model proto"
  [cli]="common model service server images"
  [server]="common model service proto"
)
for layer in "${!may[@]}"; do
  while IFS=: read -r file line inc; do
    dir=${inc%%/*}
    [ "$dir" = "$inc" ] && continue            # same-directory include ("util.h")
    [ "$dir" = "$layer" ] && continue
    case " ${may[$layer]} " in *" $dir "*) ;; *)
      echo "layers: $file:$line includes $inc ($layer may include: ${may[$layer]:-nothing else})"; bad=1;;
    esac
    # The service layer sees backends only through their interface.
    if [ "$layer" = service ] && [ "$dir" = backend ] && [ "$inc" != backend/backend.h ]; then
      echo "layers: $file:$line includes $inc (service reaches backends only through backend/backend.h)"; bad=1
    fi
  done < <(grep -rnoE '#include "[a-z_]+/[a-z_./]+"' "src/$layer" | sed -E 's/#include "([^"]+)"/\1/')
done
# Only backend/ creates namespaces, mounts or root changes.
if hits=$(grep -rnE '\b(mount|umount2|unshare|setns|pivot_root|ak_raw_clone|ak_pivot_root|ak_open_tree|ak_move_mount|ak_mount_setattr)[[:space:]]*\(' \
            src --include=*.c | grep -v '^src/backend/' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)'); then
  echo "layers: namespace or mount calls outside src/backend/:"; echo "$hits"; bad=1
fi
[ $bad = 0 ] && echo "layers: the tree follows the placement rule"
exit $bad
