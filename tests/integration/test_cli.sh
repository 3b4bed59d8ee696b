# The command line: options, exit statuses, standard streams, bad input.

echo "== cli"
expect "version" 0 '^agentkernel [0-9]+\.[0-9]+\.[0-9]+' -- "$AK" --version
expect "help lists run" 0 'run +Run a command' -- "$AK" --help
expect "run --help" 0 'Usage: agentkernel run' -- "$AK" run --help
expect "run --version" 0 '^agentkernel ' -- "$AK" run --version
expect "unknown command" 125 "unknown command 'frobnicate'" -- "$AK" frobnicate
expect "unknown option" 125 "unknown option '--bogus'" -- "$AK" run --bogus -- true
expect "unknown profile" 125 "unknown profile 'paranoid'" -- "$AK" run --profile paranoid -- true
expect "missing command" 125 'no command given' -- "$AK" run --profile moderate
expect "option without value" 125 'option --profile needs a value' -- "$AK" run --profile
expect "bad -e" 125 "invalid environment variable '=x'" -- "$AK" run -e =x -- true
expect "bad --memory" 125 "invalid --memory 'lots'" -- "$AK" run --memory lots -- true
expect "bad --cpus" 125 "invalid --cpus" -- "$AK" run --cpus -1 -- true
expect "bad volume" 125 'invalid volume' -- "$AK" run -v /tmp -- true
expect "volume escaping with .." 125 'without' -- "$AK" run -v /tmp:/a/../b -- true
expect "relative workdir" 125 "invalid workdir" -- "$AK" run --workdir rel -- true
expect "missing workdir" 125 'working directory /nope inside the sandbox' -- "$AK" run --workdir /nope -- true
expect "missing config file" 125 'config file /nonexistent.toml' -- "$AK" run --config /nonexistent.toml -- true
t_begin "failure is one line on stderr"
n=$("$AK" run --profile paranoid -- true 2>&1 >/dev/null | wc -l)
[ "$n" = 1 ] && pass || fail "$n lines"

expect "exit status passes through" 7 '' -- "$AK" run -- sh -c 'exit 7'
expect "exit status zero" 0 '' -- "$AK" run -- true
expect "killed by signal: 128+N" 143 '' -- "$AK" run -- sh -c 'kill -TERM $$'
expect "SIGKILL inside: 137" 137 '' -- "$AK" run -- sh -c 'kill -KILL $$'
expect "command not found: 127" 127 'command not found' -- "$AK" run -- /no/such/program
expect "arguments pass verbatim" 0 '^a b\|c d\|\$HOME\|$' -- "$AK" run -- printf '%s|' 'a b' 'c d' '$HOME'

t_begin "stdin passes through"
out=$(printf 'line1\nline2\n' | "$AK" run -- cat)
[ "$out" = $'line1\nline2' ] && pass || fail "got '$out'"

t_begin "stdout and stderr stay apart"
err=$(mktemp)
out=$("$AK" run -- sh -c 'echo to-out; echo to-err >&2' 2>"$err")
[ "$out" = "to-out" ] && [ "$(grep -v 'warning: resource limits' "$err")" = "to-err" ] && pass || fail "out='$out' err='$(cat "$err")'"
rm -f "$err"

t_begin "binary data passes through unchanged (4 MiB)"
tmp=$(mktemp -d)
head -c 4194304 /dev/urandom >"$tmp/in"
"$AK" run -- cat <"$tmp/in" >"$tmp/out" && cmp -s "$tmp/in" "$tmp/out" && pass || fail "differs"
rm -rf "$tmp"

t_begin "stdin EOF reaches the command"
out=$("$AK" run -- sh -c 'cat >/dev/null; echo eof-seen' </dev/null)
[ "$out" = "eof-seen" ] && pass || fail "got '$out'"

expect "an image that cannot be pulled is one error, never replaced by the host" 125 "image python:3.12-alpine: pull docker.io/library/python:3.12-alpine" -- sh -c 'd=$(mktemp -d); cd "$d" && printf "[sandbox]\nbase_image = \"python:3.12-alpine\"\n" >agentkernel.toml && "$0" run -- true' "$AK"

expect "serve: an unknown option" 125 "unknown or incomplete option '--bogus'" -- "$AK" serve --bogus
expect "serve: a bad port" 125 "--port needs a number" -- "$AK" serve --port 70000
expect "serve: another address needs an API key" 125 "without an API key" -- env -u AGENTKERNEL_API_KEY "$AK" serve --host 0.0.0.0 --port 0
