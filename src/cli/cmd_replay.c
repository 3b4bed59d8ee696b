/* agentkernel replay: play a recorded session (asciicast v2) back on the
 * terminal with its original timing.
 *
 * The whole file is checked before anything is shown, so a malformed
 * recording gives one error naming the line instead of half a session. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"

typedef struct {
  double speed;    /* > 0 */
  double max_idle; /* < 0: no limit */
} replay_opts_t;

typedef struct {
  double t;
  const char *code;
  const char *data;
  size_t len;
} cast_event_t;

static void
replay_usage (FILE *out)
{
  fprintf (out, "Usage: agentkernel replay FILE [--speed X] [--max-idle S]\n\n"
                "Play back a session recorded in asciicast v2 format, with its timing.\n\n"
                "Options:\n"
                "      --speed X          play X times faster (default 1)\n"
                "      --max-idle S       shorten pauses longer than S seconds to S\n"
                "                         (default: the recording's idle_time_limit, if any)\n"
                "  -h, --help             show this help\n");
}

/* A finite number in [min, inf), the whole string. */
static bool
parse_seconds (const char *s, double min, double *out)
{
  char *end;
  double v;

  if (*s == '\0')
    return false;
  errno = 0;
  v = strtod (s, &end);
  if (errno != 0 || *end != '\0' || !isfinite (v) || v < min)
    return false;
  *out = v;
  return true;
}

static int
line_error (ak_error_t **err, const char *path, size_t lineno, const char *fmt, const char *detail)
{
  return ak_error_set (err, 0, "%s:%zu: %s%s%s", path, lineno, fmt, detail ? ": " : "",
                       detail ? detail : "");
}

static json_t *
parse_line (const char *path, size_t lineno, const char *line, size_t len, ak_error_t **err)
{
  json_error_t jerr;
  json_t *v = json_loadb (line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
  if (v == NULL)
    line_error (err, path, lineno, "invalid JSON", jerr.text);
  return v;
}

/* The header: {"version": 2, "width": W, "height": H, ...}.  Sets
 * *idle_limit to the recording's idle_time_limit, or -1. */
static int
check_header (const char *path, const char *line, size_t len, double *idle_limit, ak_error_t **err)
{
  json_t *h = parse_line (path, 1, line, len, err);
  json_t *v;
  int ret = -1;

  if (h == NULL)
    return -1;
  *idle_limit = -1;
  if (!json_is_object (h))
    {
      line_error (err, path, 1, "not an asciicast header (expected a JSON object)", NULL);
      goto out;
    }
  v = json_object_get (h, "version");
  if (!json_is_integer (v))
    {
      line_error (err, path, 1, "not an asciicast header (no \"version\")", NULL);
      goto out;
    }
  if (json_integer_value (v) != 2)
    {
      ak_error_set (err, 0, "%s:1: unsupported asciicast version %" JSON_INTEGER_FORMAT
                    " (only version 2 can be played)", path, json_integer_value (v));
      goto out;
    }
  if (!json_is_integer (json_object_get (h, "width")) || !json_is_integer (json_object_get (h, "height"))
      || json_integer_value (json_object_get (h, "width")) <= 0
      || json_integer_value (json_object_get (h, "height")) <= 0)
    {
      line_error (err, path, 1, "invalid header: \"width\" and \"height\" must be positive integers", NULL);
      goto out;
    }
  v = json_object_get (h, "idle_time_limit");
  if (v != NULL)
    {
      if (!json_is_number (v) || json_number_value (v) < 0 || !isfinite (json_number_value (v)))
        {
          line_error (err, path, 1, "invalid header: \"idle_time_limit\" must be a non-negative number", NULL);
          goto out;
        }
      *idle_limit = json_number_value (v);
    }
  ret = 0;
out:
  json_decref (h);
  return ret;
}

/* One event line: [time, code, data].  On success *ev borrows from the
 * returned JSON value, which the caller releases. */
static json_t *
parse_event (const char *path, size_t lineno, const char *line, size_t len, cast_event_t *ev,
             ak_error_t **err)
{
  json_t *a = parse_line (path, lineno, line, len, err);
  json_t *t, *code, *data;

  if (a == NULL)
    return NULL;
  if (!json_is_array (a) || json_array_size (a) != 3)
    {
      line_error (err, path, lineno, "invalid event: expected [time, code, data]", NULL);
      json_decref (a);
      return NULL;
    }
  t = json_array_get (a, 0);
  code = json_array_get (a, 1);
  data = json_array_get (a, 2);
  if (!json_is_number (t) || !isfinite (json_number_value (t)) || json_number_value (t) < 0)
    {
      line_error (err, path, lineno, "invalid event: the time must be a non-negative number", NULL);
      json_decref (a);
      return NULL;
    }
  if (!json_is_string (code) || json_string_length (code) == 0 || !json_is_string (data))
    {
      line_error (err, path, lineno, "invalid event: code and data must be strings", NULL);
      json_decref (a);
      return NULL;
    }
  ev->t = json_number_value (t);
  ev->code = json_string_value (code);
  ev->data = json_string_value (data);
  ev->len = json_string_length (data);
  return a;
}

static bool
blank (const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

static int
sleep_until (const struct timespec *when)
{
  int r;
  while ((r = clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL)) == EINTR)
    ;
  errno = r;
  return r == 0 ? 0 : -1;
}

/* seconds >= 0; a recording claiming more than 30 years is capped there
 * rather than overflowing time_t. */
static void
timespec_add (struct timespec *ts, double seconds)
{
  if (seconds > 1e9)
    seconds = 1e9;
  long long whole = (long long) seconds;
  ts->tv_sec += (time_t) whole;
  ts->tv_nsec += (long) ((seconds - (double) whole) * 1e9);
  if (ts->tv_nsec >= 1000000000L)
    {
      ts->tv_sec++;
      ts->tv_nsec -= 1000000000L;
    }
}

/* Reads f from the start.  The first pass (play == false) only checks
 * every line and counts them; the second plays the "o" events of the
 * lines counted, so a file still growing is played as it was checked. */
static int
replay_pass (FILE *f, const char *path, const replay_opts_t *o, bool play, size_t *nlines,
             ak_error_t **err)
{
  _cleanup_free_ char *line = NULL;
  size_t cap = 0, lineno = 0;
  double idle_limit = -1, prev_t = 0, clock_s = 0;
  struct timespec start;
  ssize_t n;

  if (fseek (f, 0, SEEK_SET) < 0)
    return ak_error_set (err, errno, "%s: cannot read the file twice", path);
  clearerr (f);
  errno = 0;
  if (clock_gettime (CLOCK_MONOTONIC, &start) < 0)
    return ak_error_set (err, errno, "clock_gettime");

  while ((!play || lineno < *nlines) && (n = getline (&line, &cap, f)) >= 0)
    {
      size_t len = (size_t) n;
      cast_event_t ev;
      json_t *v;

      lineno++;
      if (len > 0 && line[len - 1] == '\n')
        len--;
      if (lineno == 1)
        {
          if (check_header (path, line, len, &idle_limit, err) < 0)
            return -1;
          continue;
        }
      if (blank (line, len))
        continue;
      v = parse_event (path, lineno, line, len, &ev, err);
      if (v == NULL)
        return -1;
      if (play && strcmp (ev.code, "o") == 0)
        {
          double max_idle = o->max_idle >= 0 ? o->max_idle : idle_limit;
          double gap = ev.t > prev_t ? ev.t - prev_t : 0;
          struct timespec when = start;

          if (max_idle >= 0 && gap > max_idle)
            gap = max_idle;
          prev_t = ev.t > prev_t ? ev.t : prev_t;
          clock_s += gap / o->speed;
          timespec_add (&when, clock_s);
          if (sleep_until (&when) < 0 || ak_write_all (STDOUT_FILENO, ev.data, ev.len) < 0)
            {
              int e = errno;
              json_decref (v);
              return ak_error_set (err, e, "write standard output");
            }
        }
      json_decref (v);
    }
  if (ferror (f))
    return ak_error_set (err, errno, "read %s", path);
  if (lineno == 0)
    return ak_error_set (err, 0, "%s:1: empty file, expected an asciicast v2 header", path);
  *nlines = lineno;
  return 0;
}

int
cmd_replay (int argc, char **argv)
{
  replay_opts_t o = { .speed = 1, .max_idle = -1 };
  const char *path = NULL;
  _cleanup_fclose_ FILE *f = NULL;
  ak_error_t *err = NULL;
  size_t nlines = 0;
  bool opts_done = false;

  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      const char *val = NULL;
      bool speed = false, idle = false;

      if (!opts_done && strcmp (a, "--") == 0)
        {
          opts_done = true;
          continue;
        }
      if (!opts_done && (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0))
        {
          replay_usage (stdout);
          return 0;
        }
      if (!opts_done && strncmp (a, "--speed", 7) == 0 && (a[7] == '\0' || a[7] == '='))
        speed = true;
      else if (!opts_done && strncmp (a, "--max-idle", 10) == 0 && (a[10] == '\0' || a[10] == '='))
        idle = true;
      else if (!opts_done && a[0] == '-' && a[1] != '\0')
        return ak_cli_usage_error ("replay", "unknown option '%s'", a);
      else
        {
          if (path != NULL)
            return ak_cli_usage_error ("replay", "unexpected argument '%s'", a);
          path = a;
          continue;
        }

      const char *opt = speed ? "--speed" : "--max-idle";
      const char *eq = strchr (a, '=');
      if (eq != NULL)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return ak_cli_usage_error ("replay", "option %s needs a value", opt);
      if (speed && (!parse_seconds (val, 0, &o.speed) || o.speed <= 0))
        return ak_cli_usage_error ("replay", "invalid --speed '%s': expected a number above 0", val);
      if (idle && !parse_seconds (val, 0, &o.max_idle))
        return ak_cli_usage_error ("replay", "invalid --max-idle '%s': expected seconds, 0 or more", val);
    }
  if (path == NULL)
    return ak_cli_usage_error ("replay", "no recording given");

  f = fopen (path, "re");
  if (f == NULL)
    {
      ak_error_set (&err, errno, "open recording %s", path);
      return ak_cli_fail (err);
    }
  if (replay_pass (f, path, &o, false, &nlines, &err) < 0
      || replay_pass (f, path, &o, true, &nlines, &err) < 0)
    return ak_cli_fail (err);
  return 0;
}
