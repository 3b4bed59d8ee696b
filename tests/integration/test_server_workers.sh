# The servers (HTTP API, MCP) are threaded: a process they create that
# does not exec at once would inherit the locks other threads held (the
# allocator's, stdio's) and could hang on one.  Every process the server
# itself creates must be this program re-executed as the worker
# (`__sandbox-worker`), and nothing else, over many concurrent create /
# exec / stop / start / remove calls.  Observed with strace -f: for each
# process a server thread forks, its first act must be the worker's exec.
echo "== server workers"

# sw_check LOG: every child of the traced server's threads first execs the
# worker.  Prints the offenders (pid and what it did first).
sw_check () {
  # Two passes: a child's first line may come before its parent's clone
  # returned in the log.
  awk '
    function pidof_ret(line) { if (match(line, /= [0-9]+$/)) return substr(line, RSTART + 2); return "" }
    FNR == NR {
      if (FNR == 1) server[$1] = 1
      pid = $1
      # A call another thread interrupts is split: "<unfinished ...>",
      # then "<... clone resumed> ... = PID".
      if (pid in server && $0 ~ /(clone3?|fork)\(/) thread[pid] = ($0 ~ /CLONE_THREAD/)
      if (pid in server && $0 ~ /(clone3?|fork)\(|<\.\.\. (clone3?|v?fork) resumed>/) {
        c = pidof_ret($0)
        if (c != "") { if (thread[pid]) server[c] = 1; else { child[c] = 1; n++ } }
      }
      next
    }
    ($1 in child) && !($1 in seen) {
      seen[$1] = 1
      if ($0 !~ /execveat?\(.*"__sandbox-worker"\]/ || $0 ~ /= -1 /) bad[$1] = $0
    }
    END {
      for (p in bad) { print "  process " p " forked by the server: " substr(bad[p], 1, 200); nbad++ }
      for (p in child) if (!(p in seen)) { print "  process " p " forked by the server did nothing traced"; nbad++ }
      if (n == 0) print "  the server created no process at all"
      exit (nbad > 0 || n == 0)
    }' "$1" "$1"
}

if ! command -v strace >/dev/null; then
  want "server workers: strace" && skip "strace is not installed (apt-get install strace)"
else
  sw_dir=$(mktemp -d)
  chmod 755 "$sw_dir"
  sw_env=(env -u AGENTKERNEL_API_KEY AGENTKERNEL_STATE_DIR="$sw_dir/state" AGENTKERNEL_AUDIT_LOG="$sw_dir/audit.jsonl")

  if want "server workers: API create/exec/stop/start/remove, concurrently: every process the server forks execs the worker"; then
    "${sw_env[@]}" strace -f -qq -e trace=clone,clone3,fork,vfork,execve,execveat -o "$sw_dir/api.trace" \
      "$AK" serve --port 0 2>"$sw_dir/serve.err" &
    sw_strace=$!
    sw_port=""
    for _ in $(seq 1 "$(tries 100)"); do
      sw_port=$(grep -o '127\.0\.0\.1:[0-9]*' "$sw_dir/serve.err" 2>/dev/null | head -1 | cut -d: -f2)
      [ -n "$sw_port" ] && break
      sleep 0.1
    done
    sw_b=http://127.0.0.1:$sw_port
    sw_one () {
      local n=swk-$$-$1 i
      for i in 1 2; do
        curl -sS -m 300 -X POST "$sw_b/sandboxes" -d "{\"name\": \"$n\"}" -w ' %{http_code}\n'
        curl -sS -m 300 -X POST "$sw_b/sandboxes/$n/exec" -d '{"command": ["sh", "-c", "echo ran-$((6*7))"]}' -w ' %{http_code}\n'
        curl -sS -m 300 -X POST "$sw_b/sandboxes/$n/stop" -w ' %{http_code}\n'
        curl -sS -m 300 -X POST "$sw_b/sandboxes/$n/start" -w ' %{http_code}\n'
        curl -sS -m 300 -X POST "$sw_b/sandboxes/$n/start" -w ' %{http_code}\n'
        curl -sS -m 300 -X POST "$sw_b/sandboxes/$n/exec" -d '{"command": ["sh", "-c", "echo ran-$((6*7))"]}' -w ' %{http_code}\n'
        curl -sS -m 300 -X DELETE "$sw_b/sandboxes/$n" -w ' %{http_code}\n'
      done
      curl -sS -m 300 -X POST "$sw_b/run" -d '{"command": ["sh", "-c", "echo ran-$((6*7))"]}' -w ' %{http_code}\n'
    }
    if [ -z "$sw_port" ]; then
      fail "the server did not start: $(cat "$sw_dir/serve.err")"
    else
      for k in 1 2 3 4; do sw_one "$k" >"$sw_dir/api.$k" 2>&1 & done
      wait $(jobs -p | grep -vx "$sw_strace")
      sw_srv=$(ps -o pid= --ppid "$sw_strace" | tr -d ' ')
      [ -n "$sw_srv" ] && kill -TERM "$sw_srv"
      wait "$sw_strace"
      sw_out=$(cat "$sw_dir"/api.[1-4])
      # Per client: 2 x (create 201, exec 200 x2, stop 200, start 200, a
      # second start 409, remove 200), then a run.
      if [ "$(grep -c ' 201$' <<<"$sw_out")" != 8 ] || [ "$(grep -c ' 409$' <<<"$sw_out")" != 8 ] \
        || [ "$(grep -c 'ran-42' <<<"$sw_out")" != 20 ] || [ "$(grep -c '"status":"running"' <<<"$sw_out")" != 16 ]; then
        fail "the calls did not all answer as expected (201: $(grep -c ' 201$' <<<"$sw_out")/8, 409: $(grep -c ' 409$' <<<"$sw_out")/8, output: $(grep -c 'ran-42' <<<"$sw_out")/20, running: $(grep -c '"status":"running"' <<<"$sw_out")/16): $(grep -v '"success":true' <<<"$sw_out" | head -c 1500)"
      elif ! sw_bad=$(sw_check "$sw_dir/api.trace"); then
        fail "the server forked a process that is not the worker:
$sw_bad"
      else
        pass
      fi
    fi
    "${sw_env[@]}" "$AK" list -q 2>/dev/null | grep "^swk-$$-" | while read -r n; do "${sw_env[@]}" "$AK" remove --force "$n"; done
  fi

  if want "server workers: MCP sandbox_create/exec/stop/start/remove: every process the server forks execs the worker"; then
    sw_call () { printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"%s","arguments":%s}}\n' "$1" "$2" "$3"; }
    sw_n=swm-$$
    {
      printf '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
      printf '{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
      sw_call 1 sandbox_create "{\"name\":\"$sw_n\"}"
      sw_call 2 sandbox_exec "{\"name\":\"$sw_n\",\"command\":[\"sh\",\"-c\",\"echo ran-\$((6*7))\"]}"
      sw_call 3 sandbox_stop "{\"name\":\"$sw_n\"}"
      sw_call 4 sandbox_start "{\"name\":\"$sw_n\"}"
      sw_call 5 sandbox_exec "{\"name\":\"$sw_n\",\"command\":[\"sh\",\"-c\",\"echo ran-\$((6*7))\"]}"
      sw_call 6 sandbox_remove "{\"name\":\"$sw_n\"}"
    } >"$sw_dir/mcp.in"
    # One request at a time: each waits for the previous answer.
    : >"$sw_dir/mcp.out"
    rm -f "$sw_dir/mcp.fifo"
    mkfifo "$sw_dir/mcp.fifo"
    "${sw_env[@]}" strace -f -qq -e trace=clone,clone3,fork,vfork,execve,execveat -o "$sw_dir/mcp.trace" \
      "$AK" mcp-server <"$sw_dir/mcp.fifo" >"$sw_dir/mcp.out" 2>"$sw_dir/mcp.err" &
    sw_mcp=$!
    exec {sw_fd}>"$sw_dir/mcp.fifo"
    sw_i=0
    while IFS= read -r line; do
      printf '%s\n' "$line" >&$sw_fd
      case $line in *'"id":'*)
        for _ in $(seq 1 "$(tries 600)"); do
          [ "$(grep -c '"id"' "$sw_dir/mcp.out")" -gt "$sw_i" ] && break
          sleep 0.1
        done
        sw_i=$((sw_i + 1)) ;;
      esac
    done <"$sw_dir/mcp.in"
    exec {sw_fd}>&-
    wait "$sw_mcp"
    sw_out=$(cat "$sw_dir/mcp.out")
    if [ "$(grep -c '"isError":true' <<<"$sw_out")" != 0 ] || [ "$(grep -c 'ran-42' <<<"$sw_out")" -lt 2 ] \
      || ! grep -q "started sandbox $sw_n" <<<"$sw_out"; then
      fail "the calls did not all answer as expected: $(head -c 1500 <<<"$sw_out") $(cat "$sw_dir/mcp.err")"
    elif ! sw_bad=$(sw_check "$sw_dir/mcp.trace"); then
      fail "the MCP server forked a process that is not the worker:
$sw_bad"
    else
      pass
    fi
    "${sw_env[@]}" "$AK" remove --force "$sw_n" >/dev/null 2>&1
  fi
  rm -rf "$sw_dir"
fi
