/* agentkernel-serve: the HTTP API server behind `agentkernel serve`.
 *
 * A program of its own so that the HTTP library (and the TLS library it
 * loads) costs nothing to every other agentkernel command: loading them
 * takes longer than starting a sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/common.h"
#include "server/http.h"
#include "server/job.h"

#define EXIT_FAIL 125

static void
usage (FILE *out)
{
  fprintf (out,
           "Usage: agentkernel serve [OPTIONS]\n\n"
           "Serve the HTTP API (JSON, and Server-Sent Events for /run/stream).\n"
           "With AGENTKERNEL_API_KEY set, every request must carry the key as\n"
           "'Authorization: Bearer KEY' or 'X-API-Key: KEY'; without it the server\n"
           "only listens on a loopback address and serves only the user who started\n"
           "it: a connection from another local user gets 403.\n\n"
           "Options:\n"
           "      --host ADDR            address to listen on (default 127.0.0.1)\n"
           "      --port N               port (default 18888; 0: any free port)\n"
           "      --socket PATH          listen on a Unix socket at PATH (mode 0600)\n"
           "                             instead of an address and port\n"
           "      --max-body BYTES       largest request body (default 33554432)\n"
           "      --max-header BYTES     largest request line and headers (default 65536)\n"
           "      --max-connections N    requests served at once (default 256)\n"
           "      --idle-timeout S       close a connection silent this long (default 60)\n"
           "      --body-timeout S       time to receive a request body (default 60)\n"
           "      --command-timeout S    kill a command running this long; 0: never\n"
           "                             (default 3600)\n"
           "      --max-runs N           new sandboxes (run, batch) at once (default 8)\n"
           "      --reap-interval S      how often expired sandboxes are removed (default 5)\n"
           "      --max-profile NAME     the loosest profile a client may ask for:\n"
           "                             permissive, moderate (default) or restrictive\n"
           "  -h, --help                 show this help\n");
}

static int
number (const char *flag, const char *v, unsigned long long max, unsigned long long *out)
{
  char *end;
  errno = 0;
  if (v == NULL || v[0] < '0' || v[0] > '9')
    goto bad;
  *out = strtoull (v, &end, 10);
  if (errno != 0 || *end != '\0' || *out > max)
    goto bad;
  return 0;
bad:
  fprintf (stderr, "agentkernel: serve: %s needs a number from 0 to %llu, not '%s' (see 'agentkernel serve --help')\n",
           flag, max, v ? v : "");
  return -1;
}

int
main (int argc, char **argv)
{
  ak_http_opts_t o;
  ak_error_t *err = NULL;

  if (argc == 2 && strcmp (argv[1], AK_JOB_WORKER_COMMAND) == 0)
    return ak_job_worker_main ();
  if (ak_job_init (&err) < 0)
    {
      fprintf (stderr, "agentkernel: serve: %s\n", err->msg);
      ak_error_free (err);
      return EXIT_FAIL;
    }
  ak_http_opts_default (&o);
  ak_server_set_max_profile (AK_PROFILE_MODERATE, "agentkernel serve --max-profile");
  o.api_key = getenv ("AGENTKERNEL_API_KEY");
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      const char *v = i + 1 < argc ? argv[i + 1] : NULL;
      unsigned long long n = 0;
      if (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0)
        {
          usage (stdout);
          return 0;
        }
      if (strcmp (a, "--host") == 0 && v != NULL && v[0] != '\0')
        o.host = v;
      else if (strcmp (a, "--socket") == 0 && v != NULL && v[0] != '\0')
        o.socket_path = v;
      else if (strcmp (a, "--max-profile") == 0 && v != NULL)
        {
          ak_profile_t p;
          if (ak_profile_from_name (v, &p, &err) < 0)
            {
              fprintf (stderr, "agentkernel: serve: --max-profile: %s\n", err->msg);
              ak_error_free (err);
              return EXIT_FAIL;
            }
          ak_server_set_max_profile (p, "agentkernel serve --max-profile");
        }
#define NUM(flag, field, max)                                                                                          \
  else if (strcmp (a, flag) == 0)                                                                                      \
  {                                                                                                                    \
    if (number (flag, v, max, &n) < 0)                                                                                 \
      return EXIT_FAIL;                                                                                                \
    o.field = n;                                                                                                       \
  }
      NUM ("--port", port, 65535)
      NUM ("--max-body", max_body, 1ULL << 32)
      NUM ("--max-header", max_header, 1ULL << 24)
      NUM ("--max-connections", max_connections, 65536)
      NUM ("--idle-timeout", idle_timeout, 86400)
      NUM ("--body-timeout", body_timeout, 86400)
      NUM ("--command-timeout", command_timeout, 31 * 86400)
      NUM ("--max-runs", max_runs, 4096)
      NUM ("--reap-interval", reap_interval, 3600)
#undef NUM
      else
        {
          fprintf (stderr, "agentkernel: serve: unknown or incomplete option '%s' (see 'agentkernel serve --help')\n",
                   a);
          return EXIT_FAIL;
        }
      i++;
    }
  if (o.max_connections == 0 || o.max_runs == 0 || o.max_body == 0 || o.max_header < 1024 || o.idle_timeout == 0
      || o.body_timeout == 0 || o.reap_interval == 0)
    {
      fprintf (stderr, "agentkernel: serve: --max-connections, --max-runs, --max-body, --idle-timeout, "
                       "--body-timeout and --reap-interval must be above 0, --max-header at least 1024\n");
      return EXIT_FAIL;
    }
  if (ak_http_serve (&o, &err) < 0)
    {
      fprintf (stderr, "agentkernel: serve: %s\n", err->msg);
      ak_error_free (err);
      return EXIT_FAIL;
    }
  return 0;
}
