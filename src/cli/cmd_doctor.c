/* agentkernel doctor [--json]: what this host offers sandboxes, and how to
 * fix what is missing. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "service/sandbox.h"

static void
usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel doctor [--json]\n\n"
                "Check this host for what sandboxes use: user namespaces, Landlock,\n"
                "seccomp, cgroups (limits), a user-mode network helper (slirp4netns or\n"
                "pasta), /dev/net/tun and overlayfs; print what is missing and the fix.\n\n"
                "Options:\n"
                "      --json             machine-readable output\n"
                "  -h, --help             show this help\n\n"
                "Exit status: 0 when everything sandboxes need is there (missing optional\n"
                "features only degrade them: no Landlock layer, limits not enforced, no\n"
                "OCI images); 1 when something needed is missing; 125 on a bad argument.\n");
}

typedef struct doctor_state {
  json_t *json; /* array, or NULL for text */
  FILE *out;
  bool needed_missing;
} doctor_state_t;

static void
report (const ak_host_check_t *c, void *data)
{
  doctor_state_t *st = data;
  if (!c->ok && c->needed)
    st->needed_missing = true;
  if (st->json != NULL)
    {
      json_array_append_new (st->json, json_pack ("{s:s, s:s, s:b, s:s?, s:s?}", "check", c->name, "status",
                                                  c->ok ? "ok" : c->needed ? "missing" : "degraded", "needed",
                                                  c->needed, "detail", c->detail, "fix", c->fix));
      return;
    }
  fprintf (st->out, "%-16s %-8s %s\n", c->name, c->ok ? "ok" : c->needed ? "MISSING" : "degraded",
           c->detail ? c->detail : "");
  if (!c->ok && c->fix)
    fprintf (st->out, "%-16s %-8s fix: %s\n", "", "", c->fix);
}

/* Runs the checks, printing them (text or JSON) on out; returns whether
 * everything needed is there. */
bool
ak_cli_doctor (FILE *out, bool json)
{
  doctor_state_t st = { .json = json ? json_array () : NULL, .out = out };
  ak_error_t *err = NULL;

  if (ak_sandbox_doctor ("container", report, &st, &err) < 0)
    {
      fprintf (stderr, "agentkernel: %s\n", err->msg);
      ak_error_free (err);
      st.needed_missing = true;
    }
  /* The microvm backend is optional: what it lacks is reported, never
   * needed for the container backend to work. */
  if (ak_sandbox_doctor ("microvm", report, &st, &err) < 0)
    {
      ak_error_free (err);
      err = NULL;
    }
  if (json)
    {
      json_t *o = json_pack ("{s:b, s:o}", "ok", !st.needed_missing, "checks", st.json);
      json_dumpf (o, out, JSON_INDENT (2));
      fputc ('\n', out);
      json_decref (o);
    }
  else
    fprintf (out, "%s\n", st.needed_missing ? "Something sandboxes need is missing: see the fixes above."
                                            : "Everything sandboxes need is here.");
  return !st.needed_missing;
}

int
cmd_doctor (int argc, char **argv)
{
  bool json = false;
  for (int i = 1; i < argc; i++)
    {
      if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h"))
        {
          usage (stdout);
          return 0;
        }
      if (!strcmp (argv[i], "--json"))
        json = true;
      else
        return ak_cli_usage_error ("doctor", "unexpected argument '%s'", argv[i]);
    }
  return ak_cli_doctor (stdout, json) ? 0 : 1;
}
