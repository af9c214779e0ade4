# SPDX-License-Identifier: MIT
# gilvm — one Makefile.  Variants build in their own folders: build/release (default),
# build/debug, build/asan (ASan+UBSan), build/tsan (clang, ThreadSanitizer), build/nopoll
# (eval-breaker polls compiled out, for bench/ only), build/switch (the eval loop's switch
# dispatch, the fallback for compilers without computed goto).
#   make                 build build/release/gilvm, libgilvm.a and libgilvm.so
#   make test            unit + program + REPL + embedding tests on the release build
#   make test-asan       the same suites under ASan+UBSan
#   make test-tsan       the same suites under TSan (clang)
#   make test-switch     unit and program tests on the switch-dispatch build
#   make test-embed      host programs built against an installed copy (tests/embed/run)
#   make fuzz FUZZ_TIME=60  libFuzzer targets (clang, build/fuzz), FUZZ_TIME seconds each
#   make bench           run bench/run side by side with the peers
#   make install         PREFIX=/usr/local DESTDIR= (BINDIR LIBDIR INCLUDEDIR MANDIR PKGCONFIGDIR)
#   make uninstall       the same variables: removes what install put there
#
# The user's CPPFLAGS, CFLAGS and LDFLAGS come after the flags the build needs, so
# `make CFLAGS=-O3` or distribution flags (-D_FORTIFY_SOURCE=2 in CPPFLAGS) work; OPT_VARIANT
# holds a variant's own flags (`make VARIANT=x OPT_x="-O3"`).  Warnings are errors only with
# WERROR=-Werror (CI sets it).  Changing CC or any flag rebuilds the variant's objects.

VARIANT ?= release
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
B       := build/$(VARIANT)

# The library's version; the shared library's soname carries the major number.
VERSION := $(shell sed -n 's/^\#define GILVM_VERSION_STRING "\(.*\)"/\1/p' vm/api/gilvm.h)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libgilvm.so.$(MAJOR)

ifeq ($(VARIANT),tsan)
CC      := clang
endif
ifeq ($(VARIANT),fuzz)
CC      := clang
endif

# The library needs zlib and libffi (and pthread, libm, libdl); only the executable's REPL
# needs GNU readline, whose flags stay out of the library's objects.  The executable does not
# link it: the REPL loads it with dlopen (vm/cli/rl.c), so a run never pays for loading it.
LIB_PKGS   := zlib libffi
LIB_PKG_CFLAGS := $(shell pkg-config --cflags $(LIB_PKGS) 2>/dev/null)
LIB_PKG_LIBS   := $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null || echo -lz -lffi)
RL_CFLAGS  := $(shell pkg-config --cflags readline 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

WERROR   ?=
WARN     := -Wall -Wextra $(WERROR) -Wno-unused-parameter
BASE     := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. $(WARN) $(LIB_PKG_CFLAGS) -pthread -MMD -MP
OPT_release := -O2 -g -fno-plt
OPT_nopoll  := -O2 -g -fno-plt -DGILVM_NO_POLL
OPT_switch  := -O2 -g -fno-plt -DGILVM_SWITCH_DISPATCH
OPT_debug   := -O0 -g -DGILVM_DEBUG
OPT_asan    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DGILVM_SANITIZE
OPT_tsan    := -O1 -g -fno-omit-frame-pointer -fsanitize=thread -DGILVM_SANITIZE
OPT_fuzz    := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -DGILVM_SANITIZE
# Library objects: position-independent (the static library can go into a shared object)
# and hidden unless the public header marks them GILVM_API.
LIB_ONLY := -fPIC -fvisibility=hidden -DGILVM_BUILDING
ALL_CFLAGS = $(BASE) $(OPT_$(VARIANT)) $(CPPFLAGS) $(CFLAGS)
SAN_LDFLAGS := $(filter -fsanitize=%,$(OPT_$(VARIANT)))
ALL_LDFLAGS = -pthread $(SAN_LDFLAGS) $(LDFLAGS)
LIB_LIBS := $(LIB_PKG_LIBS) -lpthread -lm -ldl
LDLIBS   += $(LIB_LIBS)

LIB_SRC  := $(wildcard opcodes/*.c runtime/*.c vm/core/*.c vm/toolchain/*.c vm/lib/*.c vm/api/*.c)
CLI_SRC  := $(wildcard vm/cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)

all: $(B)/gilvm $(B)/libgilvm.a $(B)/$(SONAME)
	@ln -sfn $(VARIANT) build/current 2>/dev/null || true

# Every object depends on $(B)/flags, rewritten only when the compiler or a flag changes, so
# that `make CC=clang` or new CFLAGS rebuild instead of mixing objects.
FLAGS_NOW = $(CC) $(ALL_CFLAGS) $(LIB_ONLY) $(ALL_LDFLAGS)
ifeq ($(filter clean uninstall,$(MAKECMDGOALS)),)
FLAGS_SUM := $(shell printf '%s' '$(subst ','"'"',$(FLAGS_NOW))' | cksum | cut -d' ' -f1)
$(shell mkdir -p $(B) && { [ "$$(cat $(B)/flags 2>/dev/null)" = "$(FLAGS_SUM)" ] || echo $(FLAGS_SUM) > $(B)/flags; })
endif

# Per-object extra flags (target-specific, kept apart from the user's CFLAGS).
XFLAGS :=
$(LIB_OBJ): XFLAGS += $(LIB_ONLY)
$(B)/%.o: %.c $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(XFLAGS) -c $< -o $@

# The dispatch loop: keep each handler's own indirect jump (no tail merging), as CPython.
$(B)/vm/core/eval.o: XFLAGS += $(if $(filter clang,$(notdir $(CC))),,-fno-gcse -fno-crossjumping)

# Only the REPL includes readline: its flags go to the executable's objects alone.
$(CLI_OBJ): XFLAGS += $(RL_CFLAGS)

# trace-view's page (vm/cli/traceview.html) as C string literals, one per line, for
# vm/cli/traceview.c to include: each line quoted, with \ " and ? escaped (no trigraphs).
$(B)/vm/cli/traceview.html.h: vm/cli/traceview.html
	@mkdir -p $(@D)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n",/' $< > $@.tmp
	mv $@.tmp $@
$(B)/vm/cli/traceview.o: $(B)/vm/cli/traceview.html.h
$(B)/vm/cli/traceview.o: XFLAGS += -I$(B)

$(B)/libgilvm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library: only what gilvm.h marks GILVM_API is exported (tests/embed/run checks
# `nm -D`); soname libgilvm.so.MAJOR, with the usual two links beside it.
$(B)/$(SONAME): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(if $(SAN_LDFLAGS),,-Wl,--no-undefined) $(ALL_LDFLAGS) -o $(B)/libgilvm.so.$(VERSION) $^ $(LIB_LIBS)
	ln -sf libgilvm.so.$(VERSION) $@
	ln -sf $(SONAME) $(B)/libgilvm.so

$(B)/gilvm: $(CLI_OBJ) $(B)/libgilvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/unit/%.o: tests/unit/%.c $(B)/flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(B)/unit: $(UNIT_OBJ) $(B)/libgilvm.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# The C side of the native-call tests (tests/programs/ffi/), found through GILVM_TESTLIB.
$(B)/tests/ffi/libgilvmtest.so: tests/ffi/libgilvmtest.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< $(ALL_LDFLAGS)

# Under TSan a signal that arrives while a thread is inside an intercepted call is delivered
# late, and signal_storm's exact-count check then sees coalescing POSIX would not cause;
# the signal programs and unit tests still run under TSan.
STRESS_SKIP_tsan := --skip signal_storm
# The bug suite of controlled scheduling (tests/sched/run): fewer iterations and replays under
# the sanitizers (a few minutes each on 2 cores instead of ten); the release build runs it all.
SCHED_SHORT_tsan := --short
SCHED_SHORT_asan := --short

# The suites; GILVM is the binary under test for the scripts.
test-core: $(B)/gilvm $(B)/unit $(B)/tests/ffi/libgilvmtest.so $(B)/$(SONAME)
	$(B)/unit
	GILVM=$(B)/gilvm GILVM_TESTLIB=$(B)/tests/ffi/libgilvmtest.so tests/run-programs
	GILVM=$(B)/gilvm tests/corrupt-gbc
	GILVM=$(B)/gilvm tests/cli-tests
	GILVM=$(B)/gilvm tests/gil-stats-check
	GILVM=$(B)/gilvm tests/stress/run --ci $(STRESS_SKIP_$(VARIANT))
	GILVM=$(B)/gilvm tests/check-schedule
	GILVM=$(B)/gilvm tests/sched/run $(SCHED_SHORT_$(VARIANT))
	GILVM=$(B)/gilvm VARIANT=$(VARIANT) tests/run-repl
	tests/check-library-docs
	GILVM=$(B)/gilvm tests/check-trace-view
	VARIANT=$(VARIANT) tests/embed/run

test: deps-check
	$(MAKE) VARIANT=release test-core
	GILVM=build/release/gilvm tests/check-ccbench
test-asan: deps-check
	$(MAKE) VARIANT=asan test-core
test-tsan:
	@tests/check-deps clang
	$(MAKE) VARIANT=tsan test-core
test-switch: deps-check
	$(MAKE) VARIANT=switch build/switch/gilvm build/switch/unit build/switch/tests/ffi/libgilvmtest.so
	build/switch/unit
	GILVM=build/switch/gilvm tests/run-programs
test-embed: $(B)/gilvm $(B)/libgilvm.a $(B)/$(SONAME)
	VARIANT=$(VARIANT) tests/embed/run
test-all: test test-asan test-tsan test-switch memcheck

# libFuzzer targets (clang; tests/fuzz/, docs/fuzzing.md): each runs FUZZ_TIME seconds.
FUZZ_TIME ?= 60
$(B)/fuzz_%: tests/fuzz/fuzz_%.c $(B)/libgilvm.a
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(B)/libgilvm.a $(LDLIBS)
fuzz:
	@tests/check-deps clang
	$(MAKE) VARIANT=fuzz build/fuzz/gilvm build/fuzz/fuzz_load build/fuzz/fuzz_asm
	FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run build/fuzz

# valgrind over every example (release build only: valgrind and ASan don't mix)
memcheck:
	@tests/check-deps valgrind
	$(MAKE) VARIANT=release all build/release/tests/ffi/libgilvmtest.so
	GILVM=build/release/gilvm tests/memcheck
	VARIANT=release EMBED_VALGRIND=1 tests/embed/run

deps-check:
	@tests/check-deps

bench: 
	$(MAKE) VARIANT=release
	$(MAKE) VARIANT=nopoll
	bench/run

install: $(B)/gilvm $(B)/libgilvm.a $(B)/$(SONAME)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(B)/gilvm $(DESTDIR)$(BINDIR)/gilvm
	install -m 644 $(B)/libgilvm.a $(DESTDIR)$(LIBDIR)/libgilvm.a
	install -m 755 $(B)/libgilvm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libgilvm.so.$(VERSION)
	ln -sf libgilvm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libgilvm.so
	install -m 644 vm/api/gilvm.h $(DESTDIR)$(INCLUDEDIR)/gilvm.h
	install -m 644 docs/gilvm.1 $(DESTDIR)$(MANDIR)/man1/gilvm.1
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	    -e 's|@VERSION@|$(VERSION)|' gilvm.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/gilvm.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gilvm $(DESTDIR)$(LIBDIR)/libgilvm.a $(DESTDIR)$(LIBDIR)/libgilvm.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libgilvm.so $(DESTDIR)$(INCLUDEDIR)/gilvm.h \
	    $(DESTDIR)$(MANDIR)/man1/gilvm.1 $(DESTDIR)$(PKGCONFIGDIR)/gilvm.pc

clean:
	rm -rf build

.PHONY: all test test-core test-asan test-tsan test-switch test-embed test-all memcheck deps-check bench install uninstall clean
.PHONY: fuzz
-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
-include $(wildcard $(B)/fuzz_*.d)
