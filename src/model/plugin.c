/* Agent integration files and their merges (see plugin.h). */
#define _GNU_SOURCE
#include "model/plugin.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "model/toml.h"

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The MCP server entry most agents share (Claude Code, Gemini CLI, and the
 * generic .mcp.json): `agentkernel mcp-server` over stdio. */
#define MCP_STDIO "{\"command\": \"agentkernel\", \"args\": [\"mcp-server\"]}"

static const char skill_md[]
    = "---\n"
      "name: agentkernel\n"
      "description: Run builds, tests, package installs and any untrusted code in an isolated\n"
      "  agentkernel sandbox instead of on the host. Use it whenever a command could read or\n"
      "  change more than the project, or comes from the repository itself.\n"
      "---\n"
      "\n"
      "# agentkernel sandboxes\n"
      "\n"
      "agentkernel runs a command in a sandbox (its own namespaces, seccomp, Landlock and\n"
      "resource limits) so that it cannot touch the rest of the machine.\n"
      "\n"
      "- Prefer the `agentkernel` MCP tools: `sandbox_run` for one command, `sandbox_create`,\n"
      "  `sandbox_exec` and `sandbox_remove` for a sandbox that keeps its files between\n"
      "  commands.\n"
      "- From a shell, with the project at /workspace:\n"
      "  `agentkernel run -v \"$PWD:/workspace\" -w /workspace -- make test`\n"
      "- No network: add `--no-network`; read-only root and no network:\n"
      "  `--profile restrictive`.\n"
      "- A persistent sandbox: `agentkernel create dev -v \"$PWD:/workspace\"`,\n"
      "  `agentkernel start dev`, `agentkernel exec dev -- CMD`, `agentkernel remove --force dev`.\n"
      "\n"
      "Exit status is the command's own; 125 means agentkernel itself failed (its message\n"
      "says why).\n";

static const char sandbox_md[]
    = "---\n"
      "description: Run a command in an agentkernel sandbox\n"
      "argument-hint: COMMAND [ARGS...]\n"
      "---\n"
      "\n"
      "Run `$ARGUMENTS` inside an agentkernel sandbox, never directly on the host: use the\n"
      "agentkernel MCP tool `sandbox_run` when it is available, otherwise run\n"
      "`agentkernel run -v \"$PWD:/workspace\" -w /workspace -- $ARGUMENTS` with the shell.\n"
      "Report the command's output and exit status.\n";

static const ak_plugin_file_t claude_files[] = {
  { AK_PLUGIN_JSON, ".mcp.json", ".claude.json", KEYS ("mcpServers", "agentkernel"), MCP_STDIO },
  { AK_PLUGIN_FILE, ".claude/skills/agentkernel/SKILL.md", ".claude/skills/agentkernel/SKILL.md", NULL,
    skill_md },
  { AK_PLUGIN_FILE, ".claude/commands/sandbox.md", ".claude/commands/sandbox.md", NULL, sandbox_md },
  { 0, NULL, NULL, NULL, NULL },
};
static const ak_plugin_file_t codex_files[] = {
  /* Codex reads MCP servers from the user's config only. */
  { AK_PLUGIN_TOML, NULL, ".codex/config.toml", KEYS ("mcp_servers", "agentkernel"),
    "command = \"agentkernel\"\nargs = [\"mcp-server\"]\n" },
  { 0, NULL, NULL, NULL, NULL },
};
static const ak_plugin_file_t gemini_files[] = {
  { AK_PLUGIN_JSON, ".gemini/settings.json", ".gemini/settings.json", KEYS ("mcpServers", "agentkernel"),
    MCP_STDIO },
  { 0, NULL, NULL, NULL, NULL },
};
static const ak_plugin_file_t opencode_files[] = {
  { AK_PLUGIN_JSON, "opencode.json", ".config/opencode/opencode.json", KEYS ("mcp", "agentkernel"),
    "{\"type\": \"local\", \"command\": [\"agentkernel\", \"mcp-server\"], \"enabled\": true}" },
  { 0, NULL, NULL, NULL, NULL },
};
static const ak_plugin_file_t mcp_files[] = {
  /* The project-scope file MCP clients share. */
  { AK_PLUGIN_JSON, ".mcp.json", NULL, KEYS ("mcpServers", "agentkernel"), MCP_STDIO },
  { 0, NULL, NULL, NULL, NULL },
};

const ak_plugin_t ak_plugins[] = {
  { "claude", "Claude Code", claude_files },
  { "codex", "Codex", codex_files },
  { "gemini", "Gemini CLI", gemini_files },
  { "opencode", "OpenCode", opencode_files },
  { "mcp", "any MCP client (.mcp.json)", mcp_files },
};
const size_t ak_plugins_n = sizeof ak_plugins / sizeof ak_plugins[0];

const ak_plugin_t *
ak_plugin_find (const char *target)
{
  for (size_t i = 0; i < ak_plugins_n; i++)
    if (strcmp (ak_plugins[i].target, target) == 0)
      return &ak_plugins[i];
  if (strcmp (target, "claude-code") == 0)
    return &ak_plugins[0];
  return NULL;
}

/* ---- JSON ---- */

/* The fewest significant digits that print every real in v back exactly:
 * jansson prints reals with one precision for the whole document, and 17
 * digits would turn a user's 0.1 into 0.10000000000000001. */
static int
real_precision (const json_t *v, int p)
{
  const char *k;
  json_t *e;
  size_t i;

  if (json_is_real (v))
    {
      double d = json_real_value (v);
      for (int q = p; q < 17; q++)
        {
          char buf[64];
          snprintf (buf, sizeof buf, "%.*g", q, d);
          if (strtod (buf, NULL) == d)
            return q;
        }
      return 17;
    }
  if (json_is_object (v))
    json_object_foreach ((json_t *) v, k, e) p = real_precision (e, p);
  else if (json_is_array (v))
    json_array_foreach (v, i, e) p = real_precision (e, p);
  return p;
}

/* Whether `have` holds every key of `ours` with an equal value: an entry
 * the agent itself completed ("type": "stdio", "env": {}) is still ours. */
static bool
json_covers (const json_t *have, const json_t *ours)
{
  const char *k;
  json_t *v;

  if (!json_is_object (have) || !json_is_object (ours))
    return json_equal ((json_t *) have, (json_t *) ours);
  json_object_foreach ((json_t *) ours, k, v)
  {
    json_t *h = json_object_get (have, k);
    if (h == NULL || !json_equal (h, v))
      return false;
  }
  return true;
}

int
ak_plugin_json_merge (const char *name, const char *old, size_t len, const char *const *keys,
                      const char *entry_json, ak_plugin_op_t op, bool force, char **out,
                      ak_plugin_found_t *found, ak_error_t **err)
{
  json_error_t je;
  json_t *root = NULL, *ours = NULL, *parent, *have, *chain[8];
  size_t nkeys = 0;
  char *text = NULL;
  int rc = -1;

  *out = NULL;
  *found = AK_PLUGIN_ABSENT;
  while (keys[nkeys])
    nkeys++;
  ours = json_loads (entry_json, 0, &je);
  if (ours == NULL || nkeys == 0 || nkeys > 8)
    abort (); /* the table's own text: a broken invariant */
  if (old != NULL && len > 0)
    {
      /* Duplicate keys would silently lose one value: refuse instead. */
      root = json_loadb (old, len, JSON_REJECT_DUPLICATES, &je);
      if (root == NULL)
        {
          ak_error_set (err, 0, "%s:%d:%d: not valid JSON (%s); fix it or move it away, nothing was changed",
                        name, je.line, je.column, je.text);
          goto out;
        }
      if (!json_is_object (root))
        {
          ak_error_set (err, 0, "%s: expected a JSON object at the top; nothing was changed", name);
          goto out;
        }
    }
  else
    root = json_object ();

  /* Walk to the parent of our entry, creating it on install. */
  parent = root;
  chain[0] = root;
  for (size_t i = 0; i + 1 < nkeys; i++)
    {
      json_t *next = json_object_get (parent, keys[i]);
      if (next == NULL)
        {
          if (op == AK_PLUGIN_REMOVE)
            {
              rc = 0;
              goto out;
            }
          next = json_object ();
          json_object_set_new (parent, keys[i], next);
        }
      else if (!json_is_object (next))
        {
          ak_error_set (err, 0, "%s: \"%s\" is not a JSON object; nothing was changed", name, keys[i]);
          goto out;
        }
      parent = next;
      chain[i + 1] = next;
    }
  have = json_object_get (parent, keys[nkeys - 1]);
  if (have != NULL)
    *found = json_covers (have, ours) ? AK_PLUGIN_SAME : AK_PLUGIN_DIFFERENT;
  if (op == AK_PLUGIN_INSTALL)
    {
      if (*found == AK_PLUGIN_SAME || (*found == AK_PLUGIN_DIFFERENT && !force))
        {
          rc = 0;
          goto out;
        }
      json_object_set (parent, keys[nkeys - 1], ours);
    }
  else
    {
      if (*found == AK_PLUGIN_ABSENT || (*found == AK_PLUGIN_DIFFERENT && !force))
        {
          rc = 0;
          goto out;
        }
      json_object_del (parent, keys[nkeys - 1]);
      /* The objects that only held our entry go with it; a file left
       * holding nothing is removed (an empty result says so). */
      for (size_t i = nkeys - 1; i-- > 0;)
        if (json_object_size (chain[i + 1]) == 0)
          json_object_del (chain[i], keys[i]);
      if (json_object_size (root) == 0)
        {
          *out = ak_xstrdup ("");
          rc = 0;
          goto out;
        }
    }
  text = json_dumps (root, JSON_INDENT (2) | JSON_REAL_PRECISION (real_precision (root, 1)));
  if (text == NULL)
    {
      ak_error_set (err, 0, "%s: cannot write the merged JSON", name);
      goto out;
    }
  *out = ak_xasprintf ("%s\n", text);
  free (text);
  rc = 0;
out:
  json_decref (root);
  json_decref (ours);
  return rc;
}

/* ---- TOML ---- */

/* TOML is merged as text: the user's file keeps its comments, layout and
 * quoting, and only our table's lines change.  Every result is parsed again
 * and compared, value for value, with the original: anything but our table
 * differing is a refusal, never a write. */

typedef struct lines {
  const char **start; /* start of each line (into the text) */
  size_t n;
} lines_t;

static void
split_lines (const char *s, size_t len, lines_t *l)
{
  size_t cap = 16;
  l->start = ak_xmalloc (cap * sizeof *l->start);
  l->n = 0;
  for (size_t i = 0; i < len;)
    {
      if (l->n + 1 >= cap)
        l->start = ak_xrealloc (l->start, (cap *= 2) * sizeof *l->start);
      l->start[l->n++] = s + i;
      const char *nl = memchr (s + i, '\n', len - i);
      i = nl ? (size_t) (nl - s) + 1 : len;
    }
  l->start[l->n] = s + len; /* sentinel: end of the last line */
}

/* Whether line (1-based) holds a table header at column col. */
static bool
is_header_at (const char *text, size_t len, const lines_t *l, unsigned line, unsigned col)
{
  const char *p, *end;
  unsigned c = 1;
  if (line == 0 || line > l->n)
    return false;
  p = l->start[line - 1];
  end = l->start[line];
  while (p < end && (*p == ' ' || *p == '\t'))
    p++, c++;
  (void) text;
  (void) len;
  return p < end && *p == '[' && c == col;
}

/* Header lines of every table in v's subtree. */
static void
collect_headers (const ak_toml_value_t *v, const char *text, size_t len, const lines_t *l, unsigned **out,
                 size_t *n)
{
  if (ak_toml_type (v) == AK_TOML_TABLE)
    {
      size_t it = 0;
      ak_toml_entry_t e;
      if (is_header_at (text, len, l, ak_toml_line (v), ak_toml_column (v)))
        {
          *out = ak_xrealloc (*out, (*n + 1) * sizeof **out);
          (*out)[(*n)++] = ak_toml_line (v);
        }
      while (ak_toml_table_next (v, &it, &e))
        collect_headers (e.value, text, len, l, out, n);
    }
  else if (ak_toml_type (v) == AK_TOML_ARRAY)
    for (size_t i = 0; i < ak_toml_array_len (v); i++)
      collect_headers (ak_toml_array_get (v, i), text, len, l, out, n);
}

static bool
is_blank_or_comment (const char *p, const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    p++;
  return p == end || *p == '#';
}

static bool
key_is (const char *const *skip, const char *key, size_t len)
{
  return skip != NULL && skip[0] != NULL && strlen (skip[0]) == len && memcmp (skip[0], key, len) == 0;
}

/* Whether table t holds nothing but (tables leading to) the key path skip. */
static bool
empty_except (const ak_toml_value_t *t, const char *const *skip)
{
  size_t it = 0;
  ak_toml_entry_t e;
  if (ak_toml_type (t) != AK_TOML_TABLE)
    return false;
  while (ak_toml_table_next (t, &it, &e))
    if (!key_is (skip, e.key, e.key_len) || (skip[1] != NULL && !empty_except (e.value, skip + 1)))
      return false;
  return true;
}


/* a and b hold the same values, except at the key path skip (NULL: none). */
static bool
toml_equal_except (const ak_toml_value_t *a, const ak_toml_value_t *b, const char *const *skip)
{
  ak_toml_type_t t = ak_toml_type (a);
  if (t != ak_toml_type (b))
    return false;
  switch (t)
    {
    case AK_TOML_STRING:
      {
        const char *x, *y;
        size_t xl, yl;
        ak_toml_as_string (a, &x, &xl);
        ak_toml_as_string (b, &y, &yl);
        return xl == yl && memcmp (x, y, xl) == 0;
      }
    case AK_TOML_INTEGER:
      {
        int64_t x, y;
        ak_toml_as_int (a, &x);
        ak_toml_as_int (b, &y);
        return x == y;
      }
    case AK_TOML_FLOAT:
      {
        double x, y;
        ak_toml_as_float (a, &x);
        ak_toml_as_float (b, &y);
        return memcmp (&x, &y, sizeof x) == 0 || x == y;
      }
    case AK_TOML_BOOL:
      {
        bool x, y;
        ak_toml_as_bool (a, &x);
        ak_toml_as_bool (b, &y);
        return x == y;
      }
    case AK_TOML_DATETIME:
    case AK_TOML_DATETIME_LOCAL:
    case AK_TOML_DATE_LOCAL:
    case AK_TOML_TIME_LOCAL:
      {
        ak_toml_datetime_t x, y;
        ak_toml_as_datetime (a, &x);
        ak_toml_as_datetime (b, &y);
        return memcmp (&x, &y, sizeof x) == 0;
      }
    case AK_TOML_ARRAY:
      if (ak_toml_array_len (a) != ak_toml_array_len (b))
        return false;
      for (size_t i = 0; i < ak_toml_array_len (a); i++)
        if (!toml_equal_except (ak_toml_array_get (a, i), ak_toml_array_get (b, i), NULL))
          return false;
      return true;
    case AK_TOML_TABLE:
      {
        size_t it = 0;
        ak_toml_entry_t e;
        while (ak_toml_table_next (a, &it, &e))
          {
            const ak_toml_value_t *o = ak_toml_table_getn (b, e.key, e.key_len);
            if (key_is (skip, e.key, e.key_len))
              {
                if (skip[1] == NULL)
                  continue; /* our entry: whatever it is */
                if (o == NULL ? !empty_except (e.value, skip + 1) : !toml_equal_except (e.value, o, skip + 1))
                  return false;
                continue;
              }
            if (o == NULL || !toml_equal_except (e.value, o, NULL))
              return false;
          }
        it = 0;
        while (ak_toml_table_next (b, &it, &e))
          if (ak_toml_table_getn (a, e.key, e.key_len) == NULL
              && !(key_is (skip, e.key, e.key_len) && (skip[1] == NULL || empty_except (e.value, skip + 1))))
            return false;
        return true;
      }
    }
  return false;
}

/* Whether the table at keys in doc is ours: command and args as in entry. */
static ak_plugin_found_t
toml_found (const ak_toml_value_t *have, const ak_toml_value_t *ours)
{
  size_t it = 0;
  ak_toml_entry_t e;
  if (have == NULL)
    return AK_PLUGIN_ABSENT;
  if (ak_toml_type (have) != AK_TOML_TABLE)
    return AK_PLUGIN_DIFFERENT;
  while (ak_toml_table_next (ours, &it, &e))
    {
      const ak_toml_value_t *h = ak_toml_table_getn (have, e.key, e.key_len);
      if (h == NULL || !toml_equal_except (h, e.value, NULL))
        return AK_PLUGIN_DIFFERENT;
    }
  return AK_PLUGIN_SAME;
}

static char *
keys_dotted (const char *const *keys)
{
  char *s = ak_xstrdup ("");
  for (size_t i = 0; keys[i]; i++)
    {
      char *n = ak_xasprintf ("%s%s%s", s, i ? "." : "", keys[i]);
      free (s);
      s = n;
    }
  return s;
}

static const ak_toml_value_t *
toml_at (const ak_toml_value_t *v, const char *const *keys)
{
  for (size_t i = 0; v && keys[i]; i++)
    v = ak_toml_table_get (v, keys[i]);
  return v;
}

int
ak_plugin_toml_merge (const char *name, const char *old, size_t len, const char *const *keys,
                      const char *entry_toml, ak_plugin_op_t op, bool force, char **out,
                      ak_plugin_found_t *found, ak_error_t **err)
{
  _cleanup_free_ char *dotted = keys_dotted (keys);
  _cleanup_free_ char *section = ak_xasprintf ("[%s]\n%s", dotted, entry_toml);
  _cleanup_free_ char *result = NULL;
  _cleanup_free_ unsigned *headers = NULL;
  ak_toml_t *doc = NULL, *ours = NULL, *after = NULL;
  const ak_toml_value_t *have, *ours_entry;
  lines_t l = { 0 };
  size_t n_headers = 0;
  int rc = -1;

  *out = NULL;
  *found = AK_PLUGIN_ABSENT;
  if (ak_toml_parse (section, strlen (section), "(entry)", &ours, err) < 0)
    abort (); /* the table's own text */
  ours_entry = toml_at (ak_toml_root (ours), keys);
  if (old == NULL)
    old = "", len = 0;
  if (ak_toml_parse (old, len, name, &doc, err) < 0)
    {
      _cleanup_free_ char *m = ak_xstrdup ((*err)->msg);
      ak_error_clear (err);
      ak_error_set (err, 0, "%s (not valid TOML; fix it or move it away, nothing was changed)", m);
      goto out;
    }
  /* Each table on the way must be a table. */
  {
    const ak_toml_value_t *v = ak_toml_root (doc);
    for (size_t i = 0; keys[i + 1]; i++)
      {
        v = ak_toml_table_get (v, keys[i]);
        if (v != NULL && ak_toml_type (v) != AK_TOML_TABLE)
          {
            ak_error_set (err, 0, "%s:%u: \"%s\" is not a table; nothing was changed", name, ak_toml_line (v),
                          keys[i]);
            goto out;
          }
      }
  }
  have = toml_at (ak_toml_root (doc), keys);
  *found = toml_found (have, ours_entry);
  if (op == AK_PLUGIN_INSTALL ? (*found == AK_PLUGIN_SAME || (*found == AK_PLUGIN_DIFFERENT && !force))
                              : (*found == AK_PLUGIN_ABSENT || (*found == AK_PLUGIN_DIFFERENT && !force)))
    {
      rc = 0;
      goto out;
    }

  split_lines (old, len, &l);
  if (have == NULL)
    {
      /* Append our table at the end, after a blank line. */
      bool nl = len == 0 || old[len - 1] == '\n';
      result = ak_xasprintf ("%.*s%s%s%s", (int) len, old, nl ? "" : "\n", len ? "\n" : "", section);
    }
  else
    {
      /* Our table and its sub-tables are whole sections: from their header
       * to the next header that is not theirs.  Comments and blank lines
       * just before the next header stay with it. */
      _cleanup_free_ unsigned *mine = NULL;
      size_t n_mine = 0, from, to;
      bool *drop;
      char *buf;
      size_t blen = 0;
      unsigned first = ak_toml_line (have);

      if (ak_toml_type (have) != AK_TOML_TABLE
          || !is_header_at (old, len, &l, ak_toml_line (have), ak_toml_column (have)))
        {
          ak_error_set (err, 0,
                        "%s:%u: [%s] is not written as a [table] section; change or remove it by "
                        "hand; nothing was changed",
                        name, ak_toml_line (have), dotted);
          goto out;
        }
      collect_headers (ak_toml_root (doc), old, len, &l, &headers, &n_headers);
      collect_headers (have, old, len, &l, &mine, &n_mine);
      drop = ak_xcalloc (l.n + 1, sizeof *drop);
      for (size_t m = 0; m < n_mine; m++)
        {
          from = mine[m];
          to = l.n + 1;
          for (size_t h = 0; h < n_headers; h++)
            if (headers[h] > from && headers[h] < to)
              to = headers[h];
          /* Keep the comments that introduce the next section. */
          while (to - 1 > from && is_blank_or_comment (l.start[to - 2], l.start[to - 1]))
            to--;
          for (size_t i = from; i < to; i++)
            drop[i] = true;
          /* A table removed from the end takes the blank line that an
           * install put before it: remove undoes install exactly. */
          if (op == AK_PLUGIN_REMOVE && to == l.n + 1 && from > 1
              && is_blank_or_comment (l.start[from - 2], l.start[from - 1])
              && l.start[from - 1] - l.start[from - 2] <= 2 && *l.start[from - 2] != '#')
            drop[from - 1] = true;
        }
      buf = ak_xmalloc (len + strlen (section) + 2);
      for (size_t i = 1; i <= l.n; i++)
        {
          size_t ll = (size_t) (l.start[i] - l.start[i - 1]);
          if (i == first && op == AK_PLUGIN_INSTALL)
            {
              memcpy (buf + blen, section, strlen (section));
              blen += strlen (section);
            }
          if (drop[i])
            continue;
          memcpy (buf + blen, l.start[i - 1], ll);
          blen += ll;
        }
      buf[blen] = '\0';
      free (drop);
      result = buf;
    }

  /* The proof: the new text parses, holds our entry (or not), and every
   * other value is exactly as it was. */
  if (ak_toml_parse (result, strlen (result), name, &after, err) < 0)
    {
      ak_error_prefix (err, "%s: cannot merge [%s] into this file safely (the result would not "
                            "parse); edit it by hand; nothing was changed",
                       name, dotted);
      goto out;
    }
  if (!toml_equal_except (ak_toml_root (doc), ak_toml_root (after), keys)
      || toml_found (toml_at (ak_toml_root (after), keys), ours_entry)
             != (op == AK_PLUGIN_INSTALL ? AK_PLUGIN_SAME : AK_PLUGIN_ABSENT))
    {
      ak_error_set (err, 0,
                    "%s: cannot merge [%s] into this file without changing other settings; edit "
                    "it by hand; nothing was changed",
                    name, dotted);
      goto out;
    }
  *out = steal_pointer (&result);
  rc = 0;
out:
  free (l.start);
  ak_toml_free (doc);
  ak_toml_free (ours);
  ak_toml_free (after);
  return rc;
}

/* ---- files of ours ---- */

int
ak_plugin_merge (const ak_plugin_file_t *f, const char *name, const char *old, size_t len,
                 ak_plugin_op_t op, bool force, char **out, ak_plugin_found_t *found, ak_error_t **err)
{
  switch (f->kind)
    {
    case AK_PLUGIN_JSON:
      return ak_plugin_json_merge (name, old, len, f->keys, f->content, op, force, out, found, err);
    case AK_PLUGIN_TOML:
      return ak_plugin_toml_merge (name, old, len, f->keys, f->content, op, force, out, found, err);
    case AK_PLUGIN_FILE:
      *out = NULL;
      if (old == NULL)
        *found = AK_PLUGIN_ABSENT;
      else
        *found = len == strlen (f->content) && memcmp (old, f->content, len) == 0 ? AK_PLUGIN_SAME
                                                                                  : AK_PLUGIN_DIFFERENT;
      if (op == AK_PLUGIN_INSTALL && (*found == AK_PLUGIN_ABSENT || (*found == AK_PLUGIN_DIFFERENT && force)))
        *out = ak_xstrdup (f->content);
      /* Removing a whole file is the caller's (an empty result means: delete). */
      if (op == AK_PLUGIN_REMOVE && (*found == AK_PLUGIN_SAME || (*found == AK_PLUGIN_DIFFERENT && force)))
        *out = ak_xstrdup ("");
      return 0;
    }
  return ak_error_set (err, 0, "%s: unknown kind of file", name);
}

/* ---- diff ---- */

static void
append (char **s, size_t *n, size_t *cap, const char *prefix, const char *line, size_t len)
{
  size_t need = *n + strlen (prefix) + len + 2;
  if (need > *cap)
    {
      *cap = need * 2;
      *s = ak_xrealloc (*s, *cap);
    }
  memcpy (*s + *n, prefix, strlen (prefix));
  *n += strlen (prefix);
  memcpy (*s + *n, line, len);
  *n += len;
  if (len == 0 || line[len - 1] != '\n')
    (*s)[(*n)++] = '\n';
  (*s)[*n] = '\0';
}

#define DIFF_MAX_LINES 3000

char *
ak_plugin_diff (const char *name, const char *before, const char *after)
{
  lines_t a = { 0 }, b = { 0 };
  char *s = NULL;
  size_t n = 0, cap = 0;
  uint32_t *lcs;
  size_t i, j, w;
  /* Edit script: 0 keep, 1 delete (a), 2 insert (b). */
  struct op {
    int kind;
    size_t ai, bi;
  } *ops;
  size_t nops = 0;

  split_lines (before ? before : "", before ? strlen (before) : 0, &a);
  split_lines (after ? after : "", after ? strlen (after) : 0, &b);
  {
    _cleanup_free_ char *h = ak_xasprintf ("--- %s%s\n+++ %s%s\n", before ? "" : "(new) ", name,
                                           after ? "" : "(removed) ", name);
    append (&s, &n, &cap, "", h, strlen (h));
  }
  if (a.n > DIFF_MAX_LINES || b.n > DIFF_MAX_LINES)
    {
      _cleanup_free_ char *m = ak_xasprintf ("(%zu lines before, %zu after: too long to show)\n", a.n, b.n);
      append (&s, &n, &cap, "", m, strlen (m));
      free (a.start);
      free (b.start);
      return s;
    }
  w = b.n + 1;
  lcs = ak_xcalloc ((a.n + 1) * w, sizeof *lcs);
#define LINE_EQ(x, y)                                                                              \
  ((a.start[(x) + 1] - a.start[x]) == (b.start[(y) + 1] - b.start[y])                              \
   && memcmp (a.start[x], b.start[y], (size_t) (a.start[(x) + 1] - a.start[x])) == 0)
  for (i = a.n; i-- > 0;)
    for (j = b.n; j-- > 0;)
      lcs[i * w + j] = LINE_EQ (i, j) ? lcs[(i + 1) * w + j + 1] + 1
                       : lcs[(i + 1) * w + j] > lcs[i * w + j + 1] ? lcs[(i + 1) * w + j]
                                                                   : lcs[i * w + j + 1];
  ops = ak_xmalloc ((a.n + b.n + 1) * sizeof *ops);
  for (i = 0, j = 0; i < a.n || j < b.n;)
    {
      if (i < a.n && j < b.n && LINE_EQ (i, j))
        ops[nops++] = (struct op){ 0, i++, j++ };
      else if (i < a.n && (j == b.n || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]))
        ops[nops++] = (struct op){ 1, i++, j };
      else
        ops[nops++] = (struct op){ 2, i, j++ };
    }
#undef LINE_EQ
  free (lcs);
  /* Hunks: changes with up to three lines of context around them. */
  for (size_t k = 0; k < nops;)
    {
      size_t start, end, c;
      if (ops[k].kind == 0)
        {
          k++;
          continue;
        }
      start = k >= 3 ? k - 3 : 0;
      while (start < k && ops[start].kind != 0)
        start++;
      for (end = k, c = 0; end < nops && c <= 6; end++)
        c = ops[end].kind == 0 ? c + 1 : 0;
      if (c > 3)
        end -= c - 3;
      {
        size_t a0 = ops[start].ai, b0 = ops[start].bi, al = 0, bl = 0;
        for (size_t q = start; q < end; q++)
          al += ops[q].kind != 2, bl += ops[q].kind != 1;
        _cleanup_free_ char *h = ak_xasprintf ("@@ -%zu,%zu +%zu,%zu @@\n", a0 + (al ? 1 : 0), al,
                                               b0 + (bl ? 1 : 0), bl);
        append (&s, &n, &cap, "", h, strlen (h));
      }
      for (size_t q = start; q < end; q++)
        {
          const char *ln = ops[q].kind == 2 ? b.start[ops[q].bi] : a.start[ops[q].ai];
          const char *le = ops[q].kind == 2 ? b.start[ops[q].bi + 1] : a.start[ops[q].ai + 1];
          append (&s, &n, &cap, ops[q].kind == 0 ? " " : ops[q].kind == 1 ? "-" : "+", ln,
                  (size_t) (le - ln));
        }
      k = end;
    }
  free (ops);
  free (a.start);
  free (b.start);
  return s;
}
