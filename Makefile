# skiff: build, test, benchmark, install.
#
#   make            build everything into build/ (bin/, lib/, include/ like an install)
#   make test       install Debian packages if missing, check the format, build, run the whole suite
#   make test-sanitize   the suite again, built with AddressSanitizer + UBSan (build-san/)
#   make demo       build, start skiffd on a temporary data dir, deploy the examples, call them
#   make bench      benchmarks side by side with Gearman
#   make install PREFIX=DIR
#
# The build tree mirrors an install (bin/ lib/ include/) so `skiff deploy` finds its headers and
# library relative to its own binary in both.

BUILD ?= build
PREFIX ?= /usr/local
CC ?= cc

# The libraries' flags are asked of pkg-config the first time a recipe needs them, not when the
# Makefile is read: on a fresh machine `make demo` / `make test` install the packages first
# (scripts/install-deps.sh), and flags read before that would be empty (the link then fails).
# A missing package stops the build with pkg-config's own message instead of a compiler error.
PKGS := libuv msgpack sqlite3 jansson libcrypto
pkg_flags = $(or $(shell pkg-config $(1) $(PKGS) 2>/dev/null || echo FAILED),none)
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_checked,--cflags))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $(call pkg_checked,--libs))$(PKG_LIBS)
pkg_checked = $(if $(filter FAILED,$(call pkg_flags,$(1))),$(error pkg-config cannot find \
	$(PKGS): $(shell pkg-config --print-errors --exists $(PKGS) 2>&1 | head -n 1); run \
	'make deps' (scripts/install-deps.sh) first),$(filter-out none,$(call pkg_flags,$(1))))

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
ifeq ($(CI),true)
WARN += -Werror
endif
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) $(WARN) -fPIC -fvisibility=hidden \
	-Iinclude -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN) $(LDFLAGS)
RPATH := -Wl,-rpath,'$$ORIGIN/../lib'

COMMON_SRC := $(wildcard src/common/*.c)
CLIENT_SRC := $(wildcard src/client/*.c)
WORKER_SRC := $(filter-out src/worker/main.c,$(wildcard src/worker/*.c))
SERVER_SRC := $(wildcard src/server/*.c)
CLI_SRC := $(wildcard src/cli/*.c)

obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
WORKER_OBJ := $(call obj,$(WORKER_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC))
CLI_OBJ := $(call obj,$(CLI_SRC))

LIB := $(BUILD)/lib/libskiff.so
LIBA := $(BUILD)/lib/libskiff.a
BINS := $(BUILD)/bin/skiffd $(BUILD)/bin/skiff $(BUILD)/bin/skiff-worker
HEADERS := $(BUILD)/include/skiff/skiff.h $(BUILD)/include/skiff/app.h

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_SRC := $(wildcard tests/integration/*.c)
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))
SECTEST_SRC := $(wildcard tests/security/*.c)
SECTEST_BINS := $(patsubst tests/security/%.c,$(BUILD)/tests/%,$(SECTEST_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/%,$(FUZZ_SRC))
EXAMPLE_CLIENTS := $(BUILD)/examples/call_square $(BUILD)/examples/async_fanout $(BUILD)/examples/job_queue
# The Python package (src/python): the extension skiff._skiff over libskiff, for Debian's
# /usr/bin/python3, and the pure-Python layer, laid out as installed (lib/python3/dist-packages);
# the extension finds libskiff.so three directories up ($$ORIGIN/../../..).
PYTHON ?= /usr/bin/python3
PY_SRC := $(wildcard src/python/*.c)
PY_OBJ := $(call obj,$(PY_SRC))
PY_DIR := $(BUILD)/lib/python3/dist-packages/skiff
PY_EXT_SUFFIX = $(eval PY_EXT_SUFFIX := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))'))$(PY_EXT_SUFFIX)
PY_INCLUDES = $(eval PY_INCLUDES := $(shell $(PYTHON) -c 'import sysconfig; print("-I" + sysconfig.get_paths()["include"])'))$(PY_INCLUDES)
PY_EXT = $(PY_DIR)/_skiff$(PY_EXT_SUFFIX)
PY_FILES := $(patsubst src/python/skiff/%,$(PY_DIR)/%,$(wildcard src/python/skiff/*.py))
BENCH_BINS := $(BUILD)/bench/bench_skiff $(BUILD)/bench/bench_gearman $(BUILD)/bench/bench_memory $(BUILD)/bench/bench_coldstart


.PHONY: all deps setup examples all-tests test test-sanitize unit demo bench fuzz install clean format format-check
all: $(BINS) $(LIB) $(LIBA) $(HEADERS) $(BUILD)/lib/pkgconfig/skiff.pc $(EXAMPLE_CLIENTS) python

deps:
	@scripts/install-deps.sh

# The targets that set up a fresh machine install the packages, then build in a new make that
# reads the flags of what is now installed.
setup: deps
	$(MAKE) all examples

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB): $(COMMON_OBJ) $(CLIENT_OBJ) $(WORKER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,libskiff.so -o $@ $^ $(PKG_LIBS) -ldl -lpthread

# The static library is one relocatable object whose internal (hidden) symbols are made local,
# so that only the public skiff_ API is global and nothing clashes with a user's own names
# (buf_init, mem_alloc, wire_* ...). tests/integration/symbols.sh checks it.
$(LIBA): $(COMMON_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@) $(BUILD)/obj
	$(CC) -r -nostdlib -o $(BUILD)/obj/libskiff-static.o $^
	objcopy --localize-hidden $(BUILD)/obj/libskiff-static.o
	rm -f $@ && ar rcs $@ $(BUILD)/obj/libskiff-static.o

# The dashboard's assets (src/server/dashboard/), compiled into skiffd as byte arrays.
DASH_ASSETS := $(addprefix src/server/dashboard/,index.html app.js app.css login.html)
$(BUILD)/gen/dash_assets.c: $(DASH_ASSETS)
	@mkdir -p $(dir $@)
	(cd src/server/dashboard && for f in $(notdir $(DASH_ASSETS)); do xxd -i $$f; done) > $@.tmp
	mv $@.tmp $@

$(BUILD)/obj/gen/dash_assets.o: $(BUILD)/gen/dash_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/bin/skiffd: $(SERVER_OBJ) $(COMMON_OBJ) $(BUILD)/obj/gen/dash_assets.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lhttp_parser -lseccomp -lpthread -lm

$(BUILD)/bin/skiff: $(CLI_OBJ) $(CLIENT_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

$(BUILD)/bin/skiff-worker: $(call obj,src/worker/main.c) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $< -L$(BUILD)/lib -lskiff $(RPATH)

# The Python package --------------------------------------------------------------------------

.PHONY: python
python: $(PY_EXT) $(PY_FILES)

$(PY_OBJ): CFLAGS += $(PY_INCLUDES) -fno-strict-aliasing

$(PY_EXT): $(PY_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $(PY_OBJ) -L$(BUILD)/lib -lskiff -Wl,-rpath,'$$ORIGIN/../../..'

$(PY_DIR)/%.py: src/python/skiff/%.py
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/include/skiff/%.h: include/skiff/%.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/lib/pkgconfig/skiff.pc: Makefile
	@mkdir -p $(dir $@)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: skiff\nDescription: skiff client library and app SDK\nVersion: 0.1.0\nLibs: -L$${libdir} -Wl,-rpath,$${libdir} -lskiff\nCflags: -I$${includedir}\n' \
		"$(abspath $(BUILD))" > $@

# Tests -----------------------------------------------------------------------------------------

$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/unit.h $(COMMON_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -Itests/unit -o $@ $< $(COMMON_OBJ) $(CLIENT_OBJ) $(PKG_LIBS) -lpthread

# Raw-protocol tests also speak frames themselves (src/common's wire and codec).
$(BUILD)/tests/itest_raw_%: tests/integration/itest_raw_%.c tests/integration/itest.h \
		tests/integration/rawproto.h $(LIB) $(HEADERS) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -Itests/integration -o $@ $< $(COMMON_OBJ) -L$(BUILD)/lib \
		-lskiff $(PKG_LIBS) -lpthread -Wl,-rpath,$(abspath $(BUILD)/lib)

# Unit tests of the container runtime also link its objects (src/worker, internal to libskiff).
$(BUILD)/tests/test_worker_%: tests/unit/test_worker_%.c tests/unit/unit.h $(COMMON_OBJ) $(CLIENT_OBJ) $(WORKER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -Itests/unit -o $@ $< $(COMMON_OBJ) $(CLIENT_OBJ) $(WORKER_OBJ) $(PKG_LIBS) -ldl -lpthread

$(BUILD)/tests/%: tests/integration/%.c tests/integration/itest.h $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -Itests/integration -o $@ $< -L$(BUILD)/lib -lskiff \
		$(PKG_LIBS) -lpthread -Wl,-rpath,$(abspath $(BUILD)/lib)

# The security suite (tests/security/): integration tests that attack the server.
$(BUILD)/tests/%: tests/security/%.c tests/integration/itest.h $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -Itests/integration -Itests/security -o $@ $< -L$(BUILD)/lib \
		-lskiff $(PKG_LIBS) -lpthread -Wl,-rpath,$(abspath $(BUILD)/lib)

# fuzz_http compiles the server's http.c into itself.
$(BUILD)/tests/fuzz_http: src/server/http.c src/server/http.h src/server/http_req.h

$(BUILD)/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< tests/fuzz/replay.c $(COMMON_OBJ) $(PKG_LIBS) \
		-lhttp_parser -lpthread

$(BUILD)/examples/%: examples/%.c $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -L$(BUILD)/lib -lskiff -Wl,-rpath,$(abspath $(BUILD)/lib)

$(BUILD)/bench/bench_skiff: bench/bench_skiff.c bench/bench.h $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -L$(BUILD)/lib -lskiff -lm -Wl,-rpath,$(abspath $(BUILD)/lib)

$(BUILD)/bench/bench_memory: bench/bench_memory.c bench/bench.h $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -L$(BUILD)/lib -lskiff -lm -Wl,-rpath,$(abspath $(BUILD)/lib)

$(BUILD)/bench/bench_coldstart: bench/bench_coldstart.c bench/bench.h $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -L$(BUILD)/lib -lskiff -lm -Wl,-rpath,$(abspath $(BUILD)/lib)

$(BUILD)/bench/bench_gearman: bench/bench_gearman.c bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -lgearman -lm

examples: $(EXAMPLE_CLIENTS)

test: setup
	$(MAKE) format-check
	$(MAKE) all-tests
	scripts/run-tests.sh $(BUILD)
	$(MAKE) test-sanitize

all-tests: all $(UNIT_BINS) $(ITEST_BINS) $(SECTEST_BINS) $(FUZZ_BINS) $(EXAMPLE_CLIENTS)

unit: all-tests
	scripts/run-tests.sh $(BUILD)

test-sanitize:
	$(MAKE) BUILD=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all-tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
		SKIFF_SANITIZE=1 scripts/run-tests.sh build-san

demo: setup
	scripts/demo.sh $(BUILD)

bench: setup
	$(MAKE) $(BENCH_BINS)
	bench/run.sh $(BUILD)

fuzz: $(FUZZ_BINS)
	scripts/fuzz.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/skiff
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/skiff/*.h $(DESTDIR)$(PREFIX)/include/skiff/
	install -d $(DESTDIR)$(PREFIX)/lib/python3/dist-packages/skiff
	install -m 644 $(PY_EXT) $(PY_FILES) $(DESTDIR)$(PREFIX)/lib/python3/dist-packages/skiff/
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: skiff\nDescription: skiff client library and app SDK\nVersion: 0.1.0\nLibs: -L$${libdir} -Wl,-rpath,$${libdir} -lskiff\nCflags: -I$${includedir}\n' \
		"$(PREFIX)" > $(DESTDIR)$(PREFIX)/lib/pkgconfig/skiff.pc
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 man/skiff.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/skiffd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	$(BUILD)/bin/skiff completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/skiff

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests examples bench -name '*.[ch]')

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
