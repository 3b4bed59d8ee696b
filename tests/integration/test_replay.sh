# agentkernel replay: recorded sessions play back with their timing, and a
# malformed recording is one clear error naming its line.

echo "== replay"
rdir=$(mktemp -d)
hdr='{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, "env": {"SHELL": "/bin/sh", "TERM": "xterm"}}'

printf '%s\n' "$hdr" \
  '[0.25, "o", "hello "]' \
  '[0.5, "i", "typed"]' \
  '[0.6, "r", "100x30"]' \
  '' \
  '[1.0, "o", "w\u00f6rld\r\n"]' \
  '[1.2, "o", "nul:\u0000 esc:\u001b[0m\r\n"]' >"$rdir/ok.cast"

expect "help lists replay" 0 'replay +Play back a recorded session' -- "$AK" --help
expect "replay --help" 0 'Usage: agentkernel replay FILE' -- "$AK" replay --help

t_begin "output events are played, input and resize ignored"
want=$(printf 'hello w\303\266rld\r\nnul:\000 esc:\033[0m\r\n' | od -An -c)
got=$(timeout 5 "$AK" replay --speed 100 "$rdir/ok.cast" | od -An -c)
[ "$got" = "$want" ] && pass || fail "got: $got"

t_begin "timing is kept (1.2 s at --speed 2 takes at least 0.5 s)"
t0=$(date +%s%N)
timeout 5 "$AK" replay --speed=2 "$rdir/ok.cast" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 500 ] && [ "$ms" -lt 4000 ] && pass || fail "took ${ms} ms"

printf '%s\n' "$hdr" '[0.1, "o", "before "]' '[30.1, "o", "after\n"]' >"$rdir/gap.cast"
expect "--max-idle shortens a 30 s pause" 0 '^before after$' -- timeout 5 "$AK" replay --max-idle 0.1 "$rdir/gap.cast"
expect "--max-idle 0 skips pauses" 0 '^before after$' -- timeout 5 "$AK" replay --max-idle=0 "$rdir/gap.cast"
printf '%s\n' '{"version": 2, "width": 80, "height": 24, "idle_time_limit": 0.2}' \
  '[0.1, "o", "before "]' '[30.1, "o", "after\n"]' >"$rdir/limit.cast"
expect "the recording's idle_time_limit applies" 0 '^before after$' -- timeout 5 "$AK" replay "$rdir/limit.cast"
expect "without a limit the pause is kept" 124 '' -- timeout 1 "$AK" replay "$rdir/gap.cast"

# Malformed recordings: exit 125, the file and line in the one-line error.
bad () { printf '%s\n' "$@" >"$rdir/bad.cast"; }
bad '{"version": 2, "width": 80' '[0.1, "o", "x"]'
expect "bad header JSON" 125 'bad\.cast:1: invalid JSON' -- "$AK" replay "$rdir/bad.cast"
bad '{"version": 1, "width": 80, "height": 24}' '[0.1, "o", "x"]'
expect "wrong version" 125 'bad\.cast:1: unsupported asciicast version 1' -- "$AK" replay "$rdir/bad.cast"
bad '{"width": 80, "height": 24}'
expect "header without version" 125 'bad\.cast:1: not an asciicast header' -- "$AK" replay "$rdir/bad.cast"
bad '[0.1, "o", "x"]'
expect "events without a header" 125 'bad\.cast:1: not an asciicast header' -- "$AK" replay "$rdir/bad.cast"
bad '{"version": 2, "width": 0, "height": 24}'
expect "header with zero width" 125 'bad\.cast:1: invalid header' -- "$AK" replay "$rdir/bad.cast"
bad "$hdr" '[0.1, "o", "x"]' '[0.2, "o" "y"]'
expect "bad JSON line" 125 'bad\.cast:3: invalid JSON' -- "$AK" replay "$rdir/bad.cast"
bad "$hdr" '[0.1, "o", "x"]' '' '{"t": 0.2}'
expect "event that is not an array" 125 'bad\.cast:4: invalid event' -- "$AK" replay "$rdir/bad.cast"
bad "$hdr" '[0.1, "o"]'
expect "event with two fields" 125 'bad\.cast:2: invalid event' -- "$AK" replay "$rdir/bad.cast"
bad "$hdr" '[-1, "o", "x"]'
expect "negative time" 125 'bad\.cast:2: invalid event: the time' -- "$AK" replay "$rdir/bad.cast"
bad "$hdr" '["0.1", "o", "x"]'
expect "time as a string" 125 'bad\.cast:2: invalid event: the time' -- "$AK" replay "$rdir/bad.cast"
bad "$hdr" '[0.1, "o", 42]'
expect "data not a string" 125 'bad\.cast:2: invalid event: code and data' -- "$AK" replay "$rdir/bad.cast"
: >"$rdir/empty.cast"
expect "empty file" 125 'empty\.cast:1: empty file' -- "$AK" replay "$rdir/empty.cast"
expect "missing file" 125 'open recording .*/nope\.cast: No such file' -- "$AK" replay "$rdir/nope.cast"

t_begin "a malformed recording plays nothing"
bad "$hdr" '[0.1, "o", "early output"]' '[0.2, "o", "x"]' 'garbage'
out=$("$AK" replay --speed 100 "$rdir/bad.cast" 2>/dev/null)
rc=$?
[ "$rc" = 125 ] && [ -z "$out" ] && pass || fail "status $rc, stdout '$out'"

t_begin "the error is one line on stderr"
n=$("$AK" replay "$rdir/bad.cast" 2>&1 >/dev/null | wc -l)
[ "$n" = 1 ] && pass || fail "$n lines"

expect "no file given" 125 'no recording given' -- "$AK" replay
expect "two files given" 125 "unexpected argument" -- "$AK" replay "$rdir/ok.cast" "$rdir/ok.cast"
expect "unknown option" 125 "unknown option '--fast'" -- "$AK" replay --fast "$rdir/ok.cast"
expect "--speed without value" 125 'option --speed needs a value' -- "$AK" replay "$rdir/ok.cast" --speed
expect "--speed 0" 125 "invalid --speed '0'" -- "$AK" replay --speed 0 "$rdir/ok.cast"
expect "--speed junk" 125 "invalid --speed 'fast'" -- "$AK" replay --speed fast "$rdir/ok.cast"
expect "negative --max-idle" 125 "invalid --max-idle '-1'" -- "$AK" replay --max-idle -1 "$rdir/ok.cast"

# A recording made by the writer (ak_cast_*): the unit-test program writes
# one and prints the output it holds.  asciinema, when installed, must play
# it identically.
writer=$(dirname "$AK")/tests/test_asciicast
t_begin "a recording from the writer plays back byte for byte"
if [ -x "$writer" ]; then
  "$writer" --write-sample "$rdir/sample.cast" >"$rdir/sample.want" &&
    "$AK" replay --speed 100 "$rdir/sample.cast" >"$rdir/sample.got" &&
    cmp -s "$rdir/sample.want" "$rdir/sample.got" && pass || fail "replay output differs"
else
  skip "no $writer (the unit tests are not built next to \$AK)"
fi

t_begin "asciinema plays a recording from the writer"
if ! command -v asciinema >/dev/null; then
  skip "asciinema is not installed"
elif ! command -v script >/dev/null; then
  skip "script(1) is not installed (asciinema cat needs a terminal)"
elif [ ! -s "$rdir/sample.want" ]; then
  skip "no recording from the writer"
else
  # asciinema cat opens /dev/tty: script(1) provides one, while its
  # standard output goes to a file, untouched by the terminal.
  script -qec "asciinema cat '$rdir/sample.cast' >'$rdir/asciinema.out' 2>'$rdir/asciinema.err'" /dev/null </dev/null
  cmp -s "$rdir/sample.want" "$rdir/asciinema.out" && pass ||
    fail "asciinema cat: $(tail -1 "$rdir/asciinema.err")"
fi

rm -rf "$rdir"
