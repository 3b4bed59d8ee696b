/* `--image auto`: the rules, in order.  Project files decide before the
 * command name, so `run --image auto -- make` in a Node project gets
 * node (its Makefile most likely drives npm), and a command alone decides
 * only where the directory says nothing. */
#include <string.h>

#include "model/image_auto.h"

#define NODE "node:22-alpine"
#define PYTHON "python:3.12-alpine"
#define GO "golang:1.23-alpine"
#define RUST "rust:1.85-alpine"
#define RUBY "ruby:3.3-alpine"
#define JAVA "eclipse-temurin:21-alpine"
#define PHP "php:8.3-alpine"
#define ELIXIR "elixir:1.16-alpine"
#define GCC "gcc:14-bookworm"
#define FALLBACK "alpine:3.20"

static const struct {
  const char *file;
  const char *image;
} file_rules[] = {
  { "package.json", NODE },     { "package-lock.json", NODE }, { "npm-shrinkwrap.json", NODE },
  { "yarn.lock", NODE },        { "pnpm-lock.yaml", NODE },    { "bun.lockb", NODE },
  { "bun.lock", NODE },         { "pyproject.toml", PYTHON },  { "requirements.txt", PYTHON },
  { "setup.py", PYTHON },       { "poetry.lock", PYTHON },     { "uv.lock", PYTHON },
  { "go.mod", GO },             { "Cargo.toml", RUST },        { "Gemfile", RUBY },
  { "pom.xml", JAVA },          { "build.gradle", JAVA },      { "build.gradle.kts", JAVA },
  { "composer.json", PHP },     { "mix.exs", ELIXIR },         { "CMakeLists.txt", GCC },
  { "Makefile", GCC },          { "configure", GCC },
};

static const struct {
  const char *cmd;
  const char *image;
} cmd_rules[] = {
  { "node", NODE },      { "npm", NODE },       { "npx", NODE },        { "yarn", NODE },
  { "pnpm", NODE },      { "python", PYTHON },  { "python3", PYTHON },  { "pip", PYTHON },
  { "pip3", PYTHON },    { "uv", PYTHON },      { "uvx", PYTHON },      { "pytest", PYTHON },
  { "go", GO },          { "cargo", RUST },     { "rustc", RUST },      { "ruby", RUBY },
  { "gem", RUBY },       { "bundle", RUBY },    { "java", JAVA },       { "mvn", JAVA },
  { "gradle", JAVA },    { "php", PHP },        { "composer", PHP },    { "elixir", ELIXIR },
  { "mix", ELIXIR },     { "iex", ELIXIR },     { "gcc", GCC },         { "g++", GCC },
  { "cc", GCC },         { "make", GCC },       { "cmake", GCC },
};

const char *const ak_image_detect_files[] = {
  "package.json",  "package-lock.json", "npm-shrinkwrap.json", "yarn.lock",  "pnpm-lock.yaml",
  "bun.lockb",     "bun.lock",          "pyproject.toml",      "requirements.txt", "setup.py",
  "poetry.lock",   "uv.lock",           "go.mod",              "Cargo.toml", "Gemfile",
  "pom.xml",       "build.gradle",      "build.gradle.kts",    "composer.json", "mix.exs",
  "CMakeLists.txt", "Makefile",         "configure",           NULL,
};

const char *
ak_image_detect (ak_has_file_fn has, void *data, const char *argv0, const char **why, ak_detect_by_t *by)
{
  const char *base;

  for (size_t i = 0; has != NULL && i < sizeof file_rules / sizeof file_rules[0]; i++)
    if (has (file_rules[i].file, data))
      {
        *why = file_rules[i].file;
        *by = AK_DETECT_FILE;
        return file_rules[i].image;
      }
  if (argv0 != NULL)
    {
      base = strrchr (argv0, '/');
      base = base != NULL ? base + 1 : argv0;
      for (size_t i = 0; i < sizeof cmd_rules / sizeof cmd_rules[0]; i++)
        if (strcmp (base, cmd_rules[i].cmd) == 0)
          {
            *why = cmd_rules[i].cmd;
            *by = AK_DETECT_COMMAND;
            return cmd_rules[i].image;
          }
    }
  *why = "no project file or known command";
  *by = AK_DETECT_DEFAULT;
  return FALLBACK;
}
