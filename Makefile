# eddy: make, make test, make run, make perf-core, make install.
#
#   make SANITIZE=address,undefined test   ASan + UBSan build in build-asan-ubsan/
#   make SANITIZE=thread test              TSan build in build-tsan/
#   make DEBUG=1 test                      asserts on misuse instead of errors
#   make run                               the showcase HTTP server, port 8080 (PORT=)

CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
comma := ,

ifeq ($(origin CC),default)
CC := gcc
endif

ifneq ($(SANITIZE),)
BUILD ?= build-$(subst $(comma),-,$(subst address,asan,$(subst undefined,ubsan,$(subst thread,tsan,$(SANITIZE)))))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
ifneq ($(findstring undefined,$(SANITIZE)),)
SANFLAGS += -fno-sanitize-recover=undefined
endif
else
BUILD ?= build
endif

OPT ?= -O2
ifeq ($(DEBUG),1)
DEFS :=
else
DEFS := -DNDEBUG
endif

WARN := -Wall -Wextra -Wstrict-prototypes -Wshadow -Wno-unused-parameter -Werror
CFLAGS_ALL := -std=gnu11 -D_GNU_SOURCE $(OPT) -g $(DEFS) $(WARN) -fPIC \
              -fvisibility=hidden -Iinclude -Icore -Ipool -I. $(SANFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SANFLAGS) $(LDFLAGS)
# GraphicsMagick (io/image*.c): its headers where they are used; the
# library itself is loaded by the first image job (dlopen, io/image_gm.h
# says why), so it is not linked.
GM_CFLAGS := $(shell pkg-config --cflags GraphicsMagick 2>/dev/null)
LIBS := -luring -lpthread -ldl

SOVERSION := 0
VERSION := 0.1.0

LIB_SRC := $(wildcard core/*.c pool/*.c io/*.c net/*.c net/*/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

# llhttp, Node's HTTP parser, from Debian's node-llhttp: its C sources are
# compiled into the library from where the package installs them, never
# copied into the repository.  Not our code: its warnings are not errors.
# -fvisibility=hidden (from CFLAGS_ALL) keeps its symbols out of
# libeddy.so's exports.
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_OBJ := $(addprefix $(BUILD)/obj/llhttp/,llhttp.o api.o http.o)
LIB_OBJ += $(LLHTTP_OBJ)

APP_SRC := $(wildcard apps/*.c)
APPS := $(APP_SRC:apps/%.c=$(BUILD)/bin/%)
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(BUILD)/tests/eddy-tests

STATIC := $(BUILD)/lib/libeddy.a
SHARED := $(BUILD)/lib/libeddy.so.$(SOVERSION)
PC := $(BUILD)/lib/pkgconfig/eddy.pc

# Criterion runs tests in parallel, each forked, with a per-suite timeout.
TEST_JOBS ?= 2
TEST_ARGS ?=

.PHONY: all lib apps tests test tsan run deps perf perf-core install uninstall clean \
        format valgrind

all: lib apps

lib: $(STATIC) $(SHARED) $(PC)

apps: $(APPS)

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h include/eddy/*.h core/*.h pool/*.h net/*.h net/*/*.h io/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/net/http/%.o: CFLAGS_ALL += -I$(LLHTTP_INC)
$(BUILD)/obj/io/image%.o: CFLAGS_ALL += $(GM_CFLAGS)

$(BUILD)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c $(LLHTTP_INC)/llhttp.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(WARN),$(CFLAGS_ALL)) -w -I$(LLHTTP_INC) -c $< -o $@

$(LLHTTP_INC)/llhttp.h:
	@echo "eddy: $@ is missing: install node-llhttp (make deps)" >&2; exit 1

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libeddy.so.$(SOVERSION) -o $@ $^ $(LDFLAGS_ALL) $(LIBS)
	ln -sf libeddy.so.$(SOVERSION) $(BUILD)/lib/libeddy.so

$(PC): Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' \
	  'libdir=$${prefix}/lib' '' 'Name: eddy' \
	  'Description: Node-style event loop for C' 'Version: $(VERSION)' \
	  'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -leddy' \
	  'Libs.private: $(LIBS)' > $@

# Programs see only the public header, as a user's would.
APP_CFLAGS := $(filter-out -Icore -Ipool -I. -fvisibility=hidden,$(CFLAGS_ALL))

$(BUILD)/bin/%: apps/%.c apps/app.h $(STATIC) include/eddy.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $< -o $@ $(STATIC) $(LDFLAGS_ALL) $(LIBS)

tests: $(TEST_BIN)

$(TEST_BIN): $(TEST_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(TEST_OBJ) $(STATIC) $(LDFLAGS_ALL) -lcriterion $(LIBS)

$(BUILD)/obj/tests/%.o: tests/%.c $(wildcard tests/*.h) $(wildcard include/*.h include/eddy/*.h core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests -c $< -o $@

# TEST_ARGS reaches the test binary with globbing off (set -f), so a filter
# such as --filter pool/* is not matched against the pool/ directory.
test: deps
	$(MAKE) $(TEST_BIN)
	set -f; LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/run.sh $(TEST_BIN) --jobs $(TEST_JOBS) $(TEST_ARGS)

# The cross-thread scenarios as a plain program (Criterion cannot start
# under TSan): make SANITIZE=thread tsan
TSAN_BIN := $(BUILD)/tests/eddy-threads

$(TSAN_BIN): tests/threads/tsan.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(STATIC) $(LDFLAGS_ALL) $(LIBS)

tsan: $(TSAN_BIN)
	tests/run.sh $(TSAN_BIN)

# Installs what building and testing need (Debian packages), if missing.
deps:
	@sh scripts/deps.sh

# The showcase HTTP server on port 8080 (PORT=... to change it); Ctrl-C
# stops it gracefully.  The phase demo is build/bin/eddy-phases.
run: deps
	$(MAKE) all
	$(BUILD)/bin/eddy-server

# The HTTP race (eddy-hello on both backends against a libuv + llhttp
# peer, Node and nginx under wrk) and the echo race of io_uring against
# epoll: perf/README.md and perf/echo/README.md.
perf:
	@sh perf/deps.sh
	$(MAKE) all
	$(MAKE) -C perf http BUILD=$(abspath $(BUILD))
	$(MAKE) -C perf/echo run BUILD=$(abspath $(BUILD))
	$(MAKE) -C perf files BUILD=$(abspath $(BUILD))
	$(MAKE) -C perf images BUILD=$(abspath $(BUILD))
	$(MAKE) -C perf static BUILD=$(abspath $(BUILD))

perf-core:
	@sh scripts/deps.sh perf
	$(MAKE) lib
	$(MAKE) -C perf core BUILD=$(abspath $(BUILD))

# Valgrind cannot follow io_uring (it holds its big lock across
# io_uring_enter, so pool threads never run): the valgrind run is epoll's.
valgrind: $(TEST_BIN)
	set -f; EDDY_TEST_BACKENDS=epoll EDDY_BACKEND=epoll valgrind --trace-children=yes \
	  --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	  --suppressions=$(CURDIR)/tests/valgrind.supp \
	  $(TEST_BIN) --jobs 1 $(TEST_ARGS)

install: lib
	install -d $(DESTDIR)$(PREFIX)/include/eddy $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/eddy.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/eddy/*.h $(DESTDIR)$(PREFIX)/include/eddy/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libeddy.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libeddy.so
	install -m 644 $(PC) $(DESTDIR)$(PREFIX)/lib/pkgconfig/

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/eddy $(DESTDIR)$(PREFIX)/include/eddy.h
	rm -f $(DESTDIR)$(PREFIX)/lib/libeddy.* $(DESTDIR)$(PREFIX)/lib/pkgconfig/eddy.pc

format:
	clang-format -i include/*.h include/eddy/*.h core/*.[ch] pool/*.[ch] io/*.[ch] net/*.[ch] net/*/*.[ch] apps/*.[ch] tests/*.[ch]

clean:
	rm -rf build build-*
