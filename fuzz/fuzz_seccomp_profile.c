/* libFuzzer target for Docker seccomp profiles: arbitrary bytes through
 * the parser (model/seccomp_profile.c) and, when accepted, through the
 * compiler to BPF (backend/container/seccomp_custom.c).  Beyond the
 * sanitizers, it checks that a refusal always names the file, and that an
 * accepted profile either compiles into a program the kernel would take or
 * fails with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/container/container.h"
#include "model/seccomp_profile.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ak_scmp_profile_t *p = NULL;
  ak_error_t *err = NULL;
  off_t len;
  int fd;

  if (ak_scmp_profile_parse ("fuzz.json", (const char *) data, size, &p, &err) < 0)
    {
      check (err != NULL && strncmp (err->msg, "fuzz.json", 9) == 0, "error names the file");
      check (p == NULL, "no profile on failure");
      ak_error_free (err);
      return 0;
    }
  check (err == NULL && p != NULL, "a profile on success");
  for (size_t i = 0; i < p->n_rules; i++)
    {
      check (p->rules[i].names != NULL && p->rules[i].names[0] != NULL, "every rule names a call");
      check (p->rules[i].n_args <= 6, "at most 6 arguments");
      for (size_t a = 0; a < p->rules[i].n_args; a++)
        check (p->rules[i].args[a].index <= 5, "argument index 0-5");
    }
  ak_scmp_profile_free (p);
  fd = ak_seccomp_compile_custom ("fuzz.json", (const char *) data, size, &err);
  if (fd < 0)
    {
      check (err != NULL && strstr (err->msg, "fuzz.json") != NULL, "compile error names the file");
      ak_error_free (err);
      return 0;
    }
  len = lseek (fd, 0, SEEK_END);
  check (len > 0 && len % 8 == 0 && len <= 4096 * 8, "a program the kernel would take");
  close (fd);
  return 0;
}
