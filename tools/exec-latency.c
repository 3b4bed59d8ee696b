/* exec-latency NAME [N] [CONCURRENCY]: times N library-level execs of
 * /bin/true in a running sandbox (what the HTTP API pays per request,
 * without the CLI's own process start-up) and prints p50/p99 in ms. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/util.h"
#include "service/sandbox.h"

static const char *name;
static int per_thread;
static double *samples;

static int
cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void *
worker (void *arg)
{
  size_t base = (size_t) arg * (size_t) per_thread;
  char *argv[] = { (char *) "/bin/true", NULL };
  ak_exec_req_t req = { .argv = argv, .sigfd = -1 };
  int null = open ("/dev/null", O_RDWR);
  ak_stdio_t io = { null, null, null };
  for (int i = 0; i < per_thread; i++)
    {
      ak_error_t *err = NULL;
      int code = -1;
      unsigned long long t0 = ak_now_ns ();
      if (ak_sandbox_exec (name, &req, &io, &code, &err) < 0 || code != 0)
        {
          fprintf (stderr, "exec-latency: %s\n", err ? err->msg : "non-zero exit");
          exit (1);
        }
      samples[base + (size_t) i] = (double) (ak_now_ns () - t0) / 1e6;
    }
  close (null);
  return NULL;
}

int
main (int argc, char **argv)
{
  int n, conc;
  pthread_t t[64];
  if (argc < 2)
    {
      fprintf (stderr, "usage: exec-latency NAME [N] [CONCURRENCY]\n");
      return 2;
    }
  setenv ("AGENTKERNEL_AUDIT", "0", 0);
  name = argv[1];
  n = argc > 2 ? atoi (argv[2]) : 500;
  conc = argc > 3 ? atoi (argv[3]) : 1;
  if (conc < 1 || conc > 64 || n < conc)
    return 2;
  per_thread = n / conc;
  n = per_thread * conc;
  samples = calloc ((size_t) n, sizeof *samples);
  for (int i = 0; i < conc; i++)
    pthread_create (&t[i], NULL, worker, (void *) (size_t) i);
  for (int i = 0; i < conc; i++)
    pthread_join (t[i], NULL);
  qsort (samples, (size_t) n, sizeof *samples, cmp);
  printf ("execs=%d concurrency=%d p50_ms=%.3f p99_ms=%.3f\n", n, conc, samples[n / 2],
          samples[(size_t) ((double) n * 0.99)]);
  return 0;
}
