#!/usr/bin/env bash
# Every curl example of docs/api.md (the ```sh blocks), run in order exactly
# as written against a fresh `agentkernel serve` on the default port.  An
# example passes when it gets a 2xx, or the status its "# → NNN" comment
# names, and a JSON body whose "success" says the same ("# → 200 text": that
# status and a body that is not JSON, e.g. /metrics).
# Usage: AK=/path/to/agentkernel tests/api/docs-test.sh docs/api.md
set -u
: "${AK:?set AK to the agentkernel binary}"
doc=${1:?usage: docs-test.sh docs/api.md}
work=$(mktemp -d /tmp/ak-docs.XXXXXX)
export AGENTKERNEL_STATE_DIR=$work/state AGENTKERNEL_AUDIT_LOG=$work/audit.jsonl
unset AGENTKERNEL_API_KEY
passed=0 failed=0

"$AK" serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do grep -q listening "$work/serve.log" && break; sleep 0.1; done
if ! grep -q listening "$work/serve.log"; then
  echo "not ok - server did not start: $(cat "$work/serve.log")"
  kill $server 2>/dev/null
  exit 1
fi

in_sh=0
while IFS= read -r line; do
  case $line in
    '```sh') in_sh=1; continue ;;
    '```'*) in_sh=0; continue ;;
  esac
  [ $in_sh = 1 ] && [ -n "$line" ] || continue
  if [[ $line != curl* ]]; then
    eval "$line"
    continue
  fi
  want=2 text=0
  if [[ $line =~ \#\ →\ ([0-9]{3})( text)?$ ]]; then
    want=${BASH_REMATCH[1]}
    [ -n "${BASH_REMATCH[2]}" ] && text=1
    line=${line%%#*}
  fi
  code=$(eval "$line -o $work/body -w '%{http_code}'")
  ok=0
  if [ $text = 1 ]; then
    [ "$code" = "$want" ] && [ -s "$work/body" ] && ok=1
  elif [ "$want" = 2 ]; then
    [[ $code = 2* ]] && { grep -q '"success":true' "$work/body" || grep -q '^event: done' "$work/body"; } && ok=1
  else
    [ "$code" = "$want" ] && grep -q '"success":false' "$work/body" && ok=1
  fi
  if [ $ok = 1 ]; then
    passed=$((passed + 1))
    echo "ok - $line"
  else
    failed=$((failed + 1))
    echo "not ok - $line"
    echo "  got $code: $(head -c 300 "$work/body")"
  fi
done <"$doc"

# The ```js examples, run with the Node.js on PATH (the one the README
# installs) and the published client of tests/api/node_modules.
here=$(cd "$(dirname "$0")" && pwd)
js=$here/.docs-example-$$.mjs
awk '/^```js$/ { on = 1; next } /^```/ { on = 0 } on' "$doc" >"$js"
if [ -s "$js" ]; then
  if out=$(cd "$here" && node "$js" 2>&1) && printf '%s\n' "$out" | grep -qx 42 && printf '%s\n' "$out" | grep -qx hi; then
    passed=$((passed + 1))
    echo "ok - the Node.js example ($(node --version))"
  else
    failed=$((failed + 1))
    echo "not ok - the Node.js example ($(node --version)): $out"
  fi
fi
rm -f "$js"

kill -TERM $server
wait $server
for d in "$work"/state/sandboxes/*; do [ -d "$d" ] && "$AK" remove --force "$(basename "$d")" >/dev/null 2>&1; done
rm -rf "$work"
echo "docs examples: $passed passed, $failed failed"
[ $failed = 0 ] && [ $passed -gt 20 ]
