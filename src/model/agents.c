/* The agent table (see agents.h). */
#define _GNU_SOURCE
#include "model/agents.h"

#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/seccomp_profile.h"

#define STRS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const ak_agent_path_t claude_paths[] = {
  { ".claude", false, true },      /* settings, sessions, OAuth credentials */
  { ".claude.json", true, true },  /* account state and user-scope MCP servers */
  { NULL, false, false },
};
static const ak_agent_path_t codex_paths[] = {
  { ".codex", false, true }, /* config.toml, auth.json, sessions */
  { NULL, false, false },
};
static const ak_agent_path_t gemini_paths[] = {
  { ".gemini", false, true }, /* settings.json, OAuth credentials, history */
  { NULL, false, false },
};
static const ak_agent_path_t opencode_paths[] = {
  { ".config/opencode", false, false },     /* opencode.json, agents, commands */
  { ".local/share/opencode", false, true }, /* auth.json, sessions */
  { ".cache/opencode", false, true },       /* model list, provider packages */
  { ".local/state/opencode", false, true },
  { NULL, false, false },
};

const ak_agent_t ak_agents[] = {
  {
      .name = "claude",
      .title = "Claude Code",
      .binary = "claude",
      .version_flag = "--version",
      .key_vars = STRS ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"),
      .extra_vars = STRS ("ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
                          "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX",
                          "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER"),
      .paths = claude_paths,
      .domains = STRS ("api.anthropic.com", "console.anthropic.com", "claude.ai",
                       "statsig.anthropic.com", "sentry.io"),
      .npm_package = "@anthropic-ai/claude-code",
      .install_hint = "npm install -g @anthropic-ai/claude-code",
      .seccomp = AK_SECCOMP_AI_AGENT,
  },
  {
      .name = "codex",
      .title = "Codex",
      .binary = "codex",
      .version_flag = "--version",
      .key_vars = STRS ("OPENAI_API_KEY", "CODEX_API_KEY"),
      .extra_vars = STRS ("OPENAI_BASE_URL", "OPENAI_ORGANIZATION", "OPENAI_PROJECT"),
      .paths = codex_paths,
      .domains = STRS ("api.openai.com", "chatgpt.com", "auth.openai.com"),
      .npm_package = "@openai/codex",
      .install_hint = "npm install -g @openai/codex",
      .seccomp = AK_SECCOMP_AI_AGENT,
  },
  {
      .name = "gemini",
      .title = "Gemini CLI",
      .binary = "gemini",
      .version_flag = "--version",
      .key_vars = STRS ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
      .extra_vars = STRS ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI",
                          "GEMINI_MODEL"),
      .paths = gemini_paths,
      .domains = STRS ("generativelanguage.googleapis.com", "cloudcode-pa.googleapis.com",
                       "oauth2.googleapis.com", "accounts.google.com", "play.googleapis.com"),
      .npm_package = "@google/gemini-cli",
      .install_hint = "npm install -g @google/gemini-cli",
      .seccomp = AK_SECCOMP_AI_AGENT,
  },
  {
      .name = "opencode",
      .title = "OpenCode",
      .binary = "opencode",
      .version_flag = "--version",
      /* OpenCode talks to whichever provider is configured: each provider's
       * own variable. */
      .key_vars = STRS ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
                        "GOOGLE_GENERATIVE_AI_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY",
                        "DEEPSEEK_API_KEY", "XAI_API_KEY", "MISTRAL_API_KEY"),
      .extra_vars = STRS ("OPENCODE_CONFIG", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"),
      .paths = opencode_paths,
      .domains = STRS ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com",
                       "openrouter.ai", "models.dev", "opencode.ai", "registry.npmjs.org"),
      .npm_package = "opencode-ai",
      .install_hint = "npm install -g opencode-ai",
      .seccomp = AK_SECCOMP_AI_AGENT,
  },
};

const size_t ak_agents_n = sizeof ak_agents / sizeof ak_agents[0];

const ak_agent_t *
ak_agent_find (const char *name)
{
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < ak_agents_n; i++)
    if (strcmp (ak_agents[i].name, name) == 0 || strcmp (ak_agents[i].binary, name) == 0)
      return &ak_agents[i];
  /* The names agentkernel's users know the first one by. */
  if (strcmp (name, "claude-code") == 0)
    return &ak_agents[0];
  return NULL;
}

const char *
ak_agent_names (void)
{
  return "claude, codex, gemini or opencode";
}

const ak_agent_t *
ak_agent_lookup (const char *name, ak_error_t **err)
{
  const ak_agent_t *a = ak_agent_find (name);
  if (a == NULL)
    ak_error_set (err, 0, "unknown agent '%s' (expected %s)", name, ak_agent_names ());
  return a;
}

int
ak_agent_apply (ak_spec_t *spec, const ak_agent_t *a, const char *home, ak_agent_path_fn usable,
                void *data, ak_source_t src, ak_error_t **err)
{
  for (const char *const *k = a->key_vars; *k; k++)
    if (ak_spec_add_env (spec, *k, err) < 0)
      return -1;
  for (const char *const *k = a->extra_vars; *k; k++)
    if (ak_spec_add_env (spec, *k, err) < 0)
      return -1;
  for (const ak_agent_path_t *p = a->paths; home != NULL && p->path; p++)
    {
      _cleanup_free_ char *host = ak_xasprintf ("%s/%s", home, p->path);
      _cleanup_free_ char *vol = NULL;
      if (usable != NULL && !usable (host, p, data))
        continue;
      vol = ak_xasprintf ("%s:%s/%s:%s", host, AK_AGENT_HOME_INSIDE, p->path, p->writable ? "rw" : "ro");
      if (ak_spec_add_mount (spec, vol, err) < 0)
        return ak_error_prefix (err, "agent %s", a->name);
    }
  ak_spec_set_security (spec, AK_SEC_MOUNT_CWD, true, src, 0);
  if (spec->sec.seccomp.kind == AK_SECCOMP_DEFAULT)
    ak_spec_set_seccomp (spec, a->seccomp, src, 0);
  return 0;
}

int
ak_agent_check (const ak_spec_t *spec, const ak_agent_t *a, ak_error_t **err)
{
  if (!ak_spec_sec (spec, AK_SEC_NETWORK))
    return ak_error_set (err, 0,
                         "agent %s needs the network (it talks to %s) and this sandbox has none "
                         "(profile %s%s); use --profile moderate, or drop --no-network",
                         a->name, a->domains[0], ak_profile_name (spec->sec.profile),
                         spec->sec.s[AK_SEC_NETWORK].source == AK_SRC_CLI ? ", --no-network"
                         : spec->sec.s[AK_SEC_NETWORK].source == AK_SRC_CONFIG ? ", network = false in the config"
                                                                                 : "");
  return 0;
}
