# Agents: the `agents` table with fake agent programs on PATH, the plugin
# integration files merged into real agent config files, `doctor`,
# `setup`, and an agent started in a sandbox with its compatibility mode.

agdir=$(mktemp -d)
chmod 755 "$agdir"
mkdir -p "$agdir/bin"
# A well-behaved agent, one that hangs (and leaves a child behind), one that
# fails; opencode is absent.
printf '#!/bin/sh\necho "9.8.7 (Claude Code)"\n' >"$agdir/bin/claude"
printf '#!/bin/sh\nsleep 300 &\necho $! >"%s/hang.pid"\nwait\n' "$agdir" >"$agdir/bin/codex"
printf '#!/bin/sh\necho broken >&2\nexit 3\n' >"$agdir/bin/gemini"
chmod 755 "$agdir/bin/"*
# Running and not a zombie waiting for its reaper.
ag_alive () { local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1); [ -n "$s" ] && [ "$s" != Z ]; }
agenv () { env -u ANTHROPIC_API_KEY -u CLAUDE_CODE_OAUTH_TOKEN -u ANTHROPIC_AUTH_TOKEN -u OPENAI_API_KEY \
  -u CODEX_API_KEY -u GEMINI_API_KEY -u GOOGLE_API_KEY -u GOOGLE_GENERATIVE_AI_API_KEY -u OPENROUTER_API_KEY \
  -u GROQ_API_KEY -u DEEPSEEK_API_KEY -u XAI_API_KEY -u MISTRAL_API_KEY PATH="$agdir/bin:/usr/bin:/bin" "$@"; }

echo "== agents: the table, with fake agent programs on PATH"
out=$(agenv GEMINI_API_KEY=secret-value "$AK" agents 2>&1); rc=$?
t_begin "agents: exits 0 and lists the four agents"
if [ $rc = 0 ] && printf '%s' "$out" | grep -q '^claude' && printf '%s' "$out" | grep -q '^codex' \
   && printf '%s' "$out" | grep -q '^gemini' && printf '%s' "$out" | grep -q '^opencode'; then pass; else fail "rc $rc: $out"; fi
t_begin "agents: the version the program printed"
if printf '%s' "$out" | grep -q '^claude.*yes, 9.8.7 (Claude Code)'; then pass; else fail "$out"; fi
t_begin "agents: a program that hangs is killed after the timeout, with its children"
if printf '%s' "$out" | grep -q '^codex.*timed out after 5 s' && [ -s "$agdir/hang.pid" ] \
   && ! ag_alive "$(cat "$agdir/hang.pid")"; then pass; else fail "$out; child $(cat "$agdir/hang.pid" 2>/dev/null) alive?"; fi
t_begin "agents: a failing --version is reported, not a version"
if printf '%s' "$out" | grep -q "^gemini.*exited with status 3"; then pass; else fail "$out"; fi
t_begin "agents: a missing agent shows its install hint"
if printf '%s' "$out" | grep -q '^opencode .* no$' && printf '%s' "$out" | grep -q 'install: npm install -g opencode-ai'; then pass; else fail "$out"; fi
t_begin "agents: API key set by name, never by value; missing ones named"
if printf '%s' "$out" | grep -q 'API key: set (GEMINI_API_KEY)' && ! printf '%s' "$out" | grep -q secret-value \
   && printf '%s' "$out" | grep -q 'API key: missing (ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN'; then pass; else fail "$out"; fi
expect "agents --json: valid JSON with installed, version and key state" 0 '^ok$' -- sh -c \
  "$(declare -f agenv); agdir='$agdir'; agenv OPENAI_API_KEY=k '$AK' agents --json | python3 -c '
import json,sys
a={x[\"name\"]:x for x in json.load(sys.stdin)}
assert a[\"claude\"][\"installed\"] and a[\"claude\"][\"version\"]==\"9.8.7 (Claude Code)\", a[\"claude\"]
assert not a[\"opencode\"][\"installed\"] and a[\"opencode\"][\"install_hint\"]
assert a[\"codex\"][\"api_key_vars_set\"]==[\"OPENAI_API_KEY\"] and a[\"codex\"][\"api_key_set\"]
assert a[\"codex\"][\"version\"] is None and \"timed out\" in a[\"codex\"][\"version_error\"]
assert a[\"gemini\"][\"seccomp_profile\"]==\"ai-agent\"
assert \"api.openai.com\" in a[\"codex\"][\"domains\"]
print(\"ok\")'"
expect "agents: an unknown argument is refused" 125 'unexpected argument' -- "$AK" agents --bogus
