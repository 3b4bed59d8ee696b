/* `--image auto`: every rule, and files before the command name. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/image_auto.h"

static bool
has (const char *name, void *data)
{
  for (const char *const *f = data; *f != NULL; f++)
    if (strcmp (*f, name) == 0)
      return true;
  return false;
}

static void
expect (const char *const *files, const char *argv0, const char *image, const char *why, ak_detect_by_t by)
{
  const char *w = NULL;
  ak_detect_by_t b;
  const char *none[] = { NULL };
  assert_string_equal (ak_image_detect (has, (void *) (files ? files : none), argv0, &w, &b), image);
  assert_string_equal (w, why);
  assert_int_equal (b, by);
}

#define F(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void
test_files (void **state)
{
  static const struct { const char *file, *image; } rules[] = {
    { "package.json", "node:22-alpine" },       { "package-lock.json", "node:22-alpine" },
    { "yarn.lock", "node:22-alpine" },          { "pnpm-lock.yaml", "node:22-alpine" },
    { "bun.lockb", "node:22-alpine" },          { "pyproject.toml", "python:3.12-alpine" },
    { "requirements.txt", "python:3.12-alpine" }, { "setup.py", "python:3.12-alpine" },
    { "poetry.lock", "python:3.12-alpine" },    { "uv.lock", "python:3.12-alpine" },
    { "go.mod", "golang:1.23-alpine" },         { "Cargo.toml", "rust:1.85-alpine" },
    { "Gemfile", "ruby:3.3-alpine" },           { "pom.xml", "eclipse-temurin:21-alpine" },
    { "build.gradle", "eclipse-temurin:21-alpine" }, { "composer.json", "php:8.3-alpine" },
    { "mix.exs", "elixir:1.16-alpine" },        { "CMakeLists.txt", "gcc:14-bookworm" },
    { "Makefile", "gcc:14-bookworm" },          { "configure", "gcc:14-bookworm" },
  };
  (void) state;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    {
      const char *files[] = { "README.md", rules[i].file, NULL };
      expect (files, NULL, rules[i].image, rules[i].file, AK_DETECT_FILE);
      /* Every file the rules name is in the list callers scan. */
      bool listed = false;
      for (const char *const *f = ak_image_detect_files; *f; f++)
        listed |= strcmp (*f, rules[i].file) == 0;
      assert_true (listed);
    }
}

static void
test_commands (void **state)
{
  (void) state;
  expect (NULL, "node", "node:22-alpine", "node", AK_DETECT_COMMAND);
  expect (NULL, "npm", "node:22-alpine", "npm", AK_DETECT_COMMAND);
  expect (NULL, "/usr/bin/npx", "node:22-alpine", "npx", AK_DETECT_COMMAND);
  expect (NULL, "python", "python:3.12-alpine", "python", AK_DETECT_COMMAND);
  expect (NULL, "python3", "python:3.12-alpine", "python3", AK_DETECT_COMMAND);
  expect (NULL, "pip", "python:3.12-alpine", "pip", AK_DETECT_COMMAND);
  expect (NULL, "uv", "python:3.12-alpine", "uv", AK_DETECT_COMMAND);
  expect (NULL, "pytest", "python:3.12-alpine", "pytest", AK_DETECT_COMMAND);
  expect (NULL, "cargo", "rust:1.85-alpine", "cargo", AK_DETECT_COMMAND);
  expect (NULL, "go", "golang:1.23-alpine", "go", AK_DETECT_COMMAND);
  /* A name that only contains a known one is not it. */
  expect (NULL, "nodemon", "alpine:3.20", "no project file or known command", AK_DETECT_DEFAULT);
  expect (NULL, "sh", "alpine:3.20", "no project file or known command", AK_DETECT_DEFAULT);
  expect (NULL, NULL, "alpine:3.20", "no project file or known command", AK_DETECT_DEFAULT);
}

static void
test_order (void **state)
{
  (void) state;
  /* Files decide before the command. */
  expect (F ("package.json"), "python3", "node:22-alpine", "package.json", AK_DETECT_FILE);
  /* Among files, the documented order: node before python before make. */
  expect (F ("Makefile", "requirements.txt", "package.json"), "make", "node:22-alpine", "package.json",
          AK_DETECT_FILE);
  expect (F ("Makefile", "pyproject.toml"), NULL, "python:3.12-alpine", "pyproject.toml", AK_DETECT_FILE);
  expect (F ("Makefile", "go.mod"), NULL, "golang:1.23-alpine", "go.mod", AK_DETECT_FILE);
  /* Case matters, as on the file system. */
  expect (F ("makefile", "PACKAGE.JSON"), "ls", "alpine:3.20", "no project file or known command",
          AK_DETECT_DEFAULT);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_files),
    cmocka_unit_test (test_commands),
    cmocka_unit_test (test_order),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
