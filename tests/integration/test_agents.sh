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

echo "== plugin: integration files merged into the agents' own config files"
pjdir=$(mktemp -d); pjhome=$(mktemp -d)
chmod 755 "$pjdir" "$pjhome"
mkdir -p "$pjdir/.gemini" "$pjhome/.codex" "$pjhome/.config/opencode"
# What a user already has: their own servers, settings and comments.
cat >"$pjdir/.mcp.json" <<'J'
{"mcpServers": {"github": {"command": "gh-mcp", "env": {"TOKEN": "x"}}}, "note": "caf\u00e9", "ratio": 0.1}
J
cat >"$pjdir/.gemini/settings.json" <<'J'
{"theme": "GitHub", "mcpServers": {"fs": {"command": "fs-mcp", "args": ["/srv"]}}, "checkpointing": {"enabled": true}}
J
cat >"$pjhome/.codex/config.toml" <<'T'
# Codex settings, by hand
model = "o3"  # keep this comment
approval_policy = "on-request"

[mcp_servers.docs]
command = "docs-mcp"
args = ["--port", "3000"]

[profiles.fast]
model = "o4-mini"
T
cat >"$pjdir/opencode.json" <<'J'
{"$schema": "https://opencode.ai/config.json", "model": "anthropic/claude-sonnet-4", "mcp": {"mine": {"type": "remote", "url": "https://x"}}}
J
chmod 640 "$pjdir/opencode.json"
cp -a "$pjdir" "$pjdir.orig"; cp -a "$pjhome" "$pjhome.orig"
pj () { (cd "$pjdir" && env HOME="$pjhome" "$AK" plugin "$@"); }
pjtree () { (cd "$1" && find . -type f | sort | xargs sha256sum); }

expect "plugin install all --dry-run: shows the diff" 0 '\+    "agentkernel": \{' -- pj install all --dry-run
t_begin "plugin install --dry-run writes nothing"
if [ "$(pjtree "$pjdir")" = "$(pjtree "$pjdir.orig")" ] && [ "$(pjtree "$pjhome")" = "$(pjtree "$pjhome.orig")" ]; then pass; else fail "files changed"; fi
expect "plugin install all" 0 'opencode: .*opencode.json: installed' -- pj install all
expect "plugin install: Claude Code's .mcp.json keeps the user's server and gains ours" 0 '^ok$' -- python3 -c "
import json; d=json.load(open('$pjdir/.mcp.json'))
assert d['mcpServers']['github']=={'command':'gh-mcp','env':{'TOKEN':'x'}}, d
assert d['mcpServers']['agentkernel']=={'command':'agentkernel','args':['mcp-server']}, d
assert d['note']=='caf\u00e9' and d['ratio']==0.1; print('ok')"
expect "plugin install: the skill and the /sandbox command" 0 'name: agentkernel' -- cat "$pjdir/.claude/skills/agentkernel/SKILL.md"
expect "plugin install: /sandbox command" 0 'ARGUMENTS' -- cat "$pjdir/.claude/commands/sandbox.md"
expect "plugin install: Gemini settings keep theme, server and checkpointing" 0 '^ok$' -- python3 -c "
import json; d=json.load(open('$pjdir/.gemini/settings.json'))
assert d['theme']=='GitHub' and d['checkpointing']=={'enabled':True} and d['mcpServers']['fs']['args']==['/srv'], d
assert d['mcpServers']['agentkernel']['args']==['mcp-server']; print('ok')"
expect "plugin install: OpenCode's mcp.agentkernel is a local, enabled server" 0 '^ok$' -- python3 -c "
import json; d=json.load(open('$pjdir/opencode.json'))
assert d['\$schema'] and d['model']=='anthropic/claude-sonnet-4' and d['mcp']['mine']['type']=='remote', d
assert d['mcp']['agentkernel']=={'type':'local','command':['agentkernel','mcp-server'],'enabled':True}; print('ok')"
expect "plugin install: the file's mode is kept" 0 '^640$' -- stat -c %a "$pjdir/opencode.json"
t_begin "plugin install: Codex config.toml keeps every line and comment, ours appended"
if head -n "$(wc -l <"$pjhome.orig/.codex/config.toml")" "$pjhome/.codex/config.toml" | cmp -s - "$pjhome.orig/.codex/config.toml" \
   && grep -q '^\[mcp_servers.agentkernel\]$' "$pjhome/.codex/config.toml" && grep -q '^args = \["mcp-server"\]$' "$pjhome/.codex/config.toml"; then pass
else fail "$(cat "$pjhome/.codex/config.toml")"; fi
expect "plugin install: the merged config.toml parses, with both servers" 0 '^ok$' -- python3 -c "
import tomllib; d=tomllib.load(open('$pjhome/.codex/config.toml','rb'))
assert d['model']=='o3' and d['mcp_servers']['docs']['args']==['--port','3000'] and d['profiles']['fast']['model']=='o4-mini', d
assert d['mcp_servers']['agentkernel']=={'command':'agentkernel','args':['mcp-server']}; print('ok')"
t_begin "plugin install: the previous files kept as .bak"
if cmp -s "$pjdir/.mcp.json.bak" "$pjdir.orig/.mcp.json" && cmp -s "$pjhome/.codex/config.toml.bak" "$pjhome.orig/.codex/config.toml" \
   && cmp -s "$pjdir/opencode.json.bak" "$pjdir.orig/opencode.json"; then pass; else fail ".bak differs"; fi
snap=$(pjtree "$pjdir"; pjtree "$pjhome")
expect "plugin install again: already installed" 0 'codex: .*config.toml: already installed' -- pj install all
t_begin "plugin install again changes nothing (no new .bak either)"
if [ "$(pjtree "$pjdir"; pjtree "$pjhome")" = "$snap" ]; then pass; else fail "files changed on a second install"; fi
expect "plugin list: installed, where" 0 'codex +global +installed: .*config.toml' -- pj list
expect "plugin list: claude in the project" 0 'claude +project +installed' -- pj list

# Somebody else's agentkernel entry is left alone, unless --force.
printf '{"mcpServers": {"agentkernel": {"command": "/opt/ak/bin/agentkernel", "args": ["mcp-server", "--x"]}}}\n' >"$pjdir/.gemini/settings.json"
expect "plugin install: a different agentkernel entry is left alone" 0 'left alone' -- pj install gemini
expect "plugin install: ... and really unchanged" 0 '/opt/ak/bin' -- cat "$pjdir/.gemini/settings.json"
expect "plugin install --force replaces it" 0 'replaced' -- pj install gemini --force
refute "plugin install --force: the old entry is gone" '/opt/ak/bin' -- cat "$pjdir/.gemini/settings.json"

# Malformed files: a clear error, 125, nothing written anywhere.
printf '{"theme": "x",}\n' >"$pjdir/.gemini/settings.json"
printf 'model = \n' >"$pjhome/.codex/config.toml.broken"
snap=$(pjtree "$pjdir"; pjtree "$pjhome")
expect "plugin install: malformed JSON refused with its line" 125 'settings.json:1:.*not valid JSON' -- pj install all --force
t_begin "plugin install: a malformed file means nothing written (other agents included)"
if [ "$(pjtree "$pjdir"; pjtree "$pjhome")" = "$snap" ]; then pass; else fail "files changed"; fi
cp "$pjhome/.codex/config.toml" "$pjhome/.codex/config.toml.good"
mv "$pjhome/.codex/config.toml.broken" "$pjhome/.codex/config.toml"
expect "plugin install: malformed TOML refused" 125 'config.toml:1:.*not valid TOML' -- pj install codex
expect "plugin install: ... and left as it was" 0 '^model = $' -- cat "$pjhome/.codex/config.toml"
mv "$pjhome/.codex/config.toml.good" "$pjhome/.codex/config.toml"
printf '{"theme": "GitHub"}\n' >"$pjdir/.gemini/settings.json"
expect "plugin: an unknown agent is refused" 125 "unknown plugin 'vim'" -- pj install vim
expect "plugin: mcp has no user-wide file" 125 'no user-wide file' -- pj install mcp --global

# A symlinked config file (dotfiles) is written through, the link kept.
mkdir -p "$pjhome/dotfiles" && printf '{"theme": "y"}\n' >"$pjhome/dotfiles/settings.json"
mkdir -p "$pjhome/.gemini" && ln -s "$pjhome/dotfiles/settings.json" "$pjhome/.gemini/settings.json"
expect "plugin install --global: through a symlinked settings.json" 0 'installed' -- pj install gemini --global
t_begin "plugin install --global: the symlink is kept, its target merged"
if [ -L "$pjhome/.gemini/settings.json" ] && grep -q agentkernel "$pjhome/dotfiles/settings.json" && grep -q '"theme": "y"' "$pjhome/dotfiles/settings.json"; then pass; else fail "$(ls -l "$pjhome/.gemini")"; fi

# Remove takes out only what is ours.
expect "plugin remove all" 0 'codex: .*removed' -- pj remove all
expect "plugin remove: the user's servers stay in .mcp.json" 0 '^ok$' -- python3 -c "
import json; d=json.load(open('$pjdir/.mcp.json'))
assert 'agentkernel' not in d['mcpServers'] and d['mcpServers']['github']['command']=='gh-mcp' and d['ratio']==0.1; print('ok')"
t_begin "plugin remove: config.toml back to the user's own, byte for byte"
if cmp -s "$pjhome/.codex/config.toml" "$pjhome.orig/.codex/config.toml"; then pass; else fail "$(diff "$pjhome.orig/.codex/config.toml" "$pjhome/.codex/config.toml")"; fi
t_begin "plugin remove: the skill and the command are gone, the user's .claude stays"
if [ ! -e "$pjdir/.claude/skills/agentkernel" ] && [ ! -e "$pjdir/.claude/commands/sandbox.md" ] && [ -d "$pjdir/.claude" ]; then pass; else fail "$(find "$pjdir/.claude")"; fi
expect "plugin remove again: not installed" 0 'opencode: .*not installed' -- pj remove all
rm -rf "$pjdir" "$pjhome" "$pjdir.orig" "$pjhome.orig"

echo "== run --agent: an agent in its compatibility mode"
rahome=$(mktemp -d); raproj=$(mktemp -d)
chmod 755 "$rahome" "$raproj"
mkdir -p "$rahome/.claude" "$rahome/bin"
echo marker-claude-dir >"$rahome/.claude/marker"
echo '{"numStartups": 3}' >"$rahome/.claude.json"
echo marker-project >"$raproj/project-file"
# A stand-in agent under home (as ~/.local/bin would be): it shows what it
# sees from inside.
cat >"$rahome/bin/claude" <<'S'
#!/bin/sh
echo "args: $*"
echo "cwd: $(pwd)"
cat "$HOME/.claude/marker" "$HOME/.claude.json" project-file
echo "written inside" >"$HOME/.claude/from-inside" && echo "config dir writable"
env | grep -E '^(ANTHROPIC_API_KEY|OPENAI_API_KEY|GEMINI_API_KEY)=' | sed 's/=.*/=set/'
S
chmod 755 "$rahome/bin/claude"
chown -R "$(id -u):$(id -g)" "$rahome" "$raproj"
ra () { (cd "$raproj" && env HOME="$rahome" PATH="$rahome/bin:/usr/bin:/bin" ANTHROPIC_API_KEY=sk-ant-test OPENAI_API_KEY=sk-openai-test "$AK" "$@"); }
out=$(ra run --agent claude -- --flag one 2>&1); rc=$?
t_begin "run --agent claude: the agent is the command, ARGS appended"
if [ $rc = 0 ] && printf '%s' "$out" | grep -q '^args: --flag one$'; then pass; else fail "rc $rc: $out"; fi
t_begin "run --agent claude: the project is /workspace, the working directory"
if printf '%s' "$out" | grep -q '^cwd: /workspace$' && printf '%s' "$out" | grep -q '^marker-project$'; then pass; else fail "$out"; fi
t_begin "run --agent claude: ~/.claude and ~/.claude.json shown inside"
if printf '%s' "$out" | grep -q '^marker-claude-dir$' && printf '%s' "$out" | grep -q 'numStartups'; then pass; else fail "$out"; fi
t_begin "run --agent claude: ~/.claude writable, and what is written there reaches the host"
if printf '%s' "$out" | grep -q '^config dir writable$' && grep -q 'written inside' "$rahome/.claude/from-inside"; then pass; else fail "$out"; fi
t_begin "run --agent claude: its API key passes, another agent's does not"
if printf '%s' "$out" | grep -q '^ANTHROPIC_API_KEY=set$' && ! printf '%s' "$out" | grep -q OPENAI_API_KEY; then pass; else fail "$out"; fi
attack "run --agent claude: nothing else of home is shown" 1 'No such file' -- \
  sh -c "echo $MARK; cd '$raproj' && HOME='$rahome' '$AK' run -v '$PROBE:/probe:ro' -- /probe read /home/user/bin/claude"
expect "run --agent with --no-network: refused, saying why" 125 'agent claude needs the network.*--no-network' -- ra run --agent claude --no-network
expect "run --agent under the restrictive profile: refused" 125 'needs the network.*restrictive' -- ra run --agent claude --profile restrictive
expect "run --agent: an unknown agent" 125 "unknown agent 'vim'" -- ra run --agent vim
expect "run --agent: an agent that is not installed names the install command" 125 'npm install -g @google/gemini-cli' -- ra run --agent gemini
rm -f "$rahome/.claude/from-inside"
rmdir "$rahome/.gemini" 2>/dev/null

echo "== create --agent: a persistent sandbox in the agent's mode"
export AGENTKERNEL_STATE_DIR=${AGENTKERNEL_STATE_DIR:-$(mktemp -d)}
expect "create --agent claude" 0 'akag-dev' -- ra create akag-dev --agent claude
expect "create --agent: start" 0 '' -- ra start akag-dev
expect "create --agent: the config dir is there for exec" 0 '^marker-claude-dir$' -- ra exec akag-dev -- cat /home/user/.claude/marker
expect "create --agent: the key passed by name" 0 '^sk-ant-test$' -- ra exec akag-dev -- sh -c 'echo $ANTHROPIC_API_KEY'
ra remove --force akag-dev >/dev/null 2>&1

echo "== [agent] compatibility_mode in agentkernel.toml"
printf '[agent]\ncompatibility_mode = "claude"\n' >"$raproj/agentkernel.toml"
out=$(ra run -v "$PROBE:/probe:ro" -- /probe read /home/user/.claude/marker 2>&1); rc=$?
t_begin "an untrusted agentkernel.toml cannot pick an agent mode (it would widen the sandbox)"
if [ $rc != 0 ] && printf '%s' "$out" | grep -q 'compatibility_mode = claude ignored'; then pass; else fail "rc $rc: $out"; fi
expect "compatibility_mode from a trusted config: the agent's files shown for any command" 0 '^marker-claude-dir$' -- \
  ra run --config "$raproj/agentkernel.toml" -- cat /home/user/.claude/marker
printf '[agent]\npreferred = "claude"\n' >"$raproj/agentkernel.toml"
expect "[agent] preferred: a sandbox given no command runs the agent" 0 '^args: $' -- ra run --config "$raproj/agentkernel.toml"
printf '[agent]\ncompatibility_mode = "vim"\n' >"$raproj/agentkernel.toml"
expect "[agent] compatibility_mode: an unknown mode names file and line" 125 'agentkernel.toml:2: \[agent\] compatibility_mode: unknown mode' -- \
  ra run --config "$raproj/agentkernel.toml" -- true
rm -f "$raproj/agentkernel.toml"

echo "== a real agent CLI from npm, in a sandbox"
claude_bin=$(command -v claude 2>/dev/null)
if [ -z "$claude_bin" ] && command -v npm >/dev/null; then
  npmdir=$(mktemp -d); chmod 755 "$npmdir"
  if (cd "$npmdir" && npm_config_cache="$npmdir/.cache" timeout 600 npm install --no-audit --no-fund --prefix "$npmdir" @anthropic-ai/claude-code >"$npmdir/log" 2>&1); then
    claude_bin=$npmdir/node_modules/.bin/claude
    chmod -R a+rX "$npmdir"
  else
    echo "  (npm install failed: $(tail -3 "$npmdir/log"))"
  fi
fi
if [ -z "$claude_bin" ]; then
  t_begin "run --agent claude with Claude Code from npm"
  skip "no claude on PATH and npm could not install @anthropic-ai/claude-code"
else
  want=$("$claude_bin" --version 2>/dev/null | head -1)
  clbin=$(dirname "$claude_bin")
  rc2 () { (cd "$raproj" && env HOME="$rahome" PATH="$clbin:/usr/bin:/bin" "$AK" "$@"); }
  expect "run --agent claude -- --version: Claude Code answers from inside" 0 "^$(printf '%s' "$want" | sed 's/[().]/\\&/g')\$" -- rc2 run --agent claude -- --version
  printf '{"mcpServers": {"ak-marker-server": {"command": "/bin/true"}}}\n' >"$rahome/.claude.json"
  expect "run --agent claude -- mcp list: Claude Code reads its ~/.claude.json inside" 0 'ak-marker-server: /bin/true' -- \
    rc2 run --agent claude -- mcp list
fi
rm -rf "$rahome" "$raproj" ${npmdir:+"$npmdir"}

echo "== doctor"
out=$("$AK" doctor 2>&1); rc=$?
t_begin "doctor: every check reported, each ok or with its fix"
n=$(printf '%s\n' "$out" | grep -cE '^(user namespaces|landlock|seccomp|cgroups|network helper|/dev/net/tun|overlayfs) ')
if [ "$n" = 7 ] && { [ $rc = 0 ] || [ $rc = 1 ]; }; then pass; else fail "rc $rc, $n checks: $out"; fi
t_begin "doctor: exit 0 exactly when nothing needed is missing"
if { [ $rc = 0 ] && ! printf '%s' "$out" | grep -q MISSING; } || { [ $rc = 1 ] && printf '%s' "$out" | grep -q MISSING; }; then pass; else fail "rc $rc: $out"; fi
expect "doctor: the landlock ABI this kernel has" 0 '^landlock +ok +ABI [0-9]+' -- "$AK" doctor
if [ -x "$AK_TEST_BIN" ]; then
  expect "doctor: landlock missing is degraded (exit 0), with the fix" 0 'landlock +degraded.*
.*fix: Linux 5.13' -- env AK_TEST_DISABLE=landlock "$AK_TEST_BIN" doctor
fi
expect "doctor: no network helper is missing (exit 1), with the fix" 1 'network helper +MISSING.*
.*fix: apt-get install slirp4netns' -- env AK_NET_HELPER=none "$AK" doctor
expect "doctor --json" 0 '^ok$' -- sh -c "'$AK' doctor --json | python3 -c '
import json,sys; d=json.load(sys.stdin); names=[c[\"check\"] for c in d[\"checks\"]]
assert names[:7]==[\"user namespaces\",\"landlock\",\"seccomp\",\"cgroups\",\"network helper\",\"/dev/net/tun\",\"overlayfs\"], names
assert all(n.startswith(\"microvm backend\") for n in names[7:]) and len(names) > 7, names
assert all(c[\"status\"] in (\"ok\",\"missing\",\"degraded\") for c in d[\"checks\"]); assert d[\"ok\"] in (True, False); print(\"ok\")'"

echo "== setup"
suhome=$(mktemp -d); chmod 755 "$suhome"
mkdir -p "$suhome/.gemini" && printf '{"theme": "mine"}\n' >"$suhome/.gemini/settings.json"
agsetup () { env HOME="$suhome" PATH="$agdir/bin:/usr/bin:/bin" "$AK" setup "$@" </dev/null; }
out=$(agsetup 2>&1); rc=$?
t_begin "setup without a terminal and without -y: says what it would do, writes nothing"
if { [ $rc = 0 ] || [ $rc = 1 ]; } && printf '%s' "$out" | grep -q "Claude Code: would run 'agentkernel plugin install claude --global'" \
   && [ ! -e "$suhome/.claude.json" ] && ! grep -q agentkernel "$suhome/.gemini/settings.json"; then pass; else fail "rc $rc: $out"; fi
t_begin "setup: checks the host, lists the agents, says there is no agent image to pull"
if printf '%s' "$out" | grep -q '^landlock ' && printf '%s' "$out" | grep -q '^claude .*9.8.7' && printf '%s' "$out" | grep -q 'Nothing to pull'; then pass; else fail "$out"; fi
out=$(agsetup -y 2>&1); rc=$?
t_begin "setup -y: installs the integration of each detected agent, user-wide"
if { [ $rc = 0 ] || [ $rc = 1 ]; } && grep -q '"agentkernel"' "$suhome/.claude.json" && [ -f "$suhome/.claude/skills/agentkernel/SKILL.md" ] \
   && grep -q '"theme": "mine"' "$suhome/.gemini/settings.json" && grep -q agentkernel "$suhome/.gemini/settings.json" \
   && grep -q 'mcp_servers.agentkernel' "$suhome/.codex/config.toml"; then pass; else fail "rc $rc: $out"; fi
t_begin "setup -y: an agent that is not installed gets nothing"
if [ ! -e "$suhome/.config/opencode/opencode.json" ]; then pass; else fail "opencode config written"; fi
out=$(agsetup -y 2>&1)
t_begin "setup -y twice: the second finds everything installed"
if printf '%s' "$out" | grep -q 'claude: .*\.claude.json: already installed'; then pass; else fail "$out"; fi
rm -rf "$suhome" "$agdir"
