# agentkernel build.  `make` builds build/agentkernel and its helpers;
# `make check` builds everything (also an ASan+UBSan variant) and runs the
# whole test suite.  Every library source under src/ (except src/cli) is
# picked up automatically.

CC      ?= cc
O       ?= build
VERSION := 0.1.0

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wundef -Wcast-align -Wwrite-strings \
           -Wno-unused-parameter -Wvla -Wnull-dereference -Wimplicit-fallthrough
CFLAGS  ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(WARN) -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE \
           -DAK_VERSION=\"$(VERSION)\" -Isrc -MMD -MP
LDFLAGS ?=
# Every binary: relocations read-only after start-up, symbols bound at
# load time (no writable GOT to aim at), no executable stack.
HARDEN  := -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
# libseccomp, jansson and nettle are linked statically: it saves the dynamic loader
# a good part of a sandbox start-up.  libarchive is loaded at run time, and
# only for file transfers (src/proto/archive_dl.h).
LIBS    := -Wl,-Bstatic -lseccomp -ljansson -lnettle -Wl,-Bdynamic -lutil

LIB_SRCS := $(shell find src -name '*.c' -not -path 'src/cli/*' -not -name guest_main.c | sort)
CLI_SRCS := $(sort $(wildcard src/cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))

define objs
$(patsubst %.c,$(1)/obj/%.o,$(2))
endef

LIB_OBJS  := $(call objs,$(O),$(LIB_SRCS))
CLI_OBJS  := $(call objs,$(O),$(CLI_SRCS))
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRCS))

ASAN_O     := $(O)/asan
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_LIB_OBJS := $(call objs,$(ASAN_O),$(LIB_SRCS))
ASAN_CLI_OBJS := $(call objs,$(ASAN_O),$(CLI_SRCS))
ASAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(ASAN_O)/tests/%,$(UNIT_SRCS))

.PHONY: all asan unit check fuzz clean man
all: $(O)/agentkernel $(O)/agentkernel-core $(O)/agentkernel-guest $(O)/agentkernel-test $(O)/agentkernel-serve $(O)/toml-test-decoder $(O)/probe $(O)/vmm-probe $(O)/exec-latency $(UNIT_BINS)

# The man page, printed from the same option tables as --help.
man: $(O)/agentkernel.1
$(O)/agentkernel.1: $(O)/agentkernel-core
	$(O)/agentkernel-core help --man >$@

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(ASAN_O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(O)/libagentkernel.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(ASAN_O)/libagentkernel.a: $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(O)/agentkernel-core: $(CLI_OBJS) $(O)/libagentkernel.a
	$(CC) $(CFLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS)

# `agentkernel` is a small static launcher in front of agentkernel-core
# (tools/agentkernel-launch.c): built with musl where musl-tools is
# installed, whose start-up is a tenth of glibc's; else with $(CC).
LAUNCH_CC := $(shell command -v musl-gcc || echo $(CC))
$(O)/agentkernel: tools/agentkernel-launch.c
	@mkdir -p $(dir $@)
	$(LAUNCH_CC) -std=gnu11 $(WARN) -O2 -static $(HARDEN) -o $@ $<

$(ASAN_O)/agentkernel: $(ASAN_CLI_OBJS) $(ASAN_O)/libagentkernel.a
	$(CC) $(ASAN_FLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS)

# The test build: the product's objects but util.c, compiled again with
# -DAK_TEST_BUILD so that AK_TEST_DISABLE is honoured (src/common/util.c).
# Linked ahead of the library, that object is the one used.
$(O)/obj-test/util.o: src/common/util.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -DAK_TEST_BUILD -c $< -o $@

$(O)/agentkernel-test: $(CLI_OBJS) $(O)/obj-test/util.o $(O)/libagentkernel.a
	$(CC) $(CFLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS)

# The init of a microVM guest (src/backend/microvm): static, it runs from the
# initramfs before any root filesystem exists.
$(O)/agentkernel-guest: $(O)/obj/src/backend/microvm/guest_main.o $(O)/libagentkernel.a
	$(CC) $(CFLAGS) -static $(HARDEN) $(LDFLAGS) -o $@ $^ -lseccomp -ljansson -lnettle -lutil

# The HTTP server is a program of its own: see tools/agentkernel-serve.c.
SERVE_LIBS := -lmicrohttpd -lpthread
$(O)/agentkernel-serve: $(O)/obj/tools/agentkernel-serve.o $(O)/libagentkernel.a
	$(CC) $(CFLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS) $(SERVE_LIBS)

$(ASAN_O)/agentkernel-serve: $(ASAN_O)/obj/tools/agentkernel-serve.o $(ASAN_O)/libagentkernel.a
	$(CC) $(ASAN_FLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS) $(SERVE_LIBS)

$(O)/toml-test-decoder: $(O)/obj/tools/toml-test-decoder.o $(O)/libagentkernel.a
	$(CC) $(CFLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS)

$(O)/exec-latency: $(O)/obj/tools/exec-latency.o $(O)/libagentkernel.a
	$(CC) $(CFLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS) -lpthread

$(ASAN_O)/toml-test-decoder: $(ASAN_O)/obj/tools/toml-test-decoder.o $(ASAN_O)/libagentkernel.a
	$(CC) $(ASAN_FLAGS) -pie $(HARDEN) $(LDFLAGS) -o $@ $^ $(LIBS)

# The probe runs inside sandboxes whose root may not hold our libc: static.
$(O)/probe: tests/probe/probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -static $(HARDEN) -o $@ $<

# Plays a compromised VMM under QEMU's jail (AK_TEST_VMM, test build only).
$(O)/vmm-probe: tests/probe/vmm-probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -static $(HARDEN) -o $@ $<

$(O)/tests/%: tests/unit/%.c $(O)/libagentkernel.a tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(HARDEN) -o $@ $< $(O)/libagentkernel.a $(LIBS) $(SERVE_LIBS) -lcmocka -lutil

$(ASAN_O)/tests/%: tests/unit/%.c $(ASAN_O)/libagentkernel.a tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) $(HARDEN) -o $@ $< $(ASAN_O)/libagentkernel.a $(LIBS) $(SERVE_LIBS) -lcmocka -lutil

asan: $(ASAN_O)/agentkernel $(ASAN_O)/agentkernel-serve $(ASAN_O)/toml-test-decoder $(ASAN_UNIT_BINS)

# libFuzzer targets (clang only): fuzz/fuzz_<name>.c -> build/fuzz/fuzz_<name>
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=gnu11 -Isrc -g -O1 -MMD -MP -DAK_VERSION=\"$(VERSION)\" $(FUZZ_SAN)
# The library is compiled once for every target (instrumented for the
# fuzzer, not linked with its main), each target linked against it.
FUZZ_LIB_OBJS := $(call objs,$(O)/fuzz,$(LIB_SRCS))
fuzz: $(FUZZ_BINS)
$(O)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(O)/fuzz/libagentkernel.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^
$(O)/fuzz/%: fuzz/%.c fuzz/fuzz_check.h $(O)/fuzz/libagentkernel.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(HARDEN) -o $@ $< $(O)/fuzz/libagentkernel.a $(LIBS) $(SERVE_LIBS)

check: all asan $(if $(shell command -v clang),fuzz)
	tests/run-all.sh

clean:
	rm -rf $(O)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
