# moongrad — one entry point.
#   make            build build/bin/moongrad, build/lib/libmoongrad.{so,a}, build/lua/moongrad/core.so
#   make test       build and run every test; the last line is "N passed, N failed"
#   make oracle     the op oracle alone: every op's value and gradient against NumPy and JAX
#   make demo       build and train the Fashion-MNIST CNN (examples/fashion_mnist_cnn.lua)
#   make examples   run every examples/*.lua in full mode (make test runs them quick; tens of minutes)
#   make asan       build with ASan+UBSan+LSan into build-asan/ and run the tests there
#   make install PREFIX=/usr/local
#   make print-luapath   the LUA_PATH/LUA_CPATH lines for stock lua5.4 / luajit
#   make embed      build/lib/libmoongrad_embed.{so,a}: the host embedding library (lua/include/moongrad.h)
#   make deps       install the Debian packages (as root)
#   make bench      the benchmarks in bench/
#   make fuzz       libFuzzer over the safetensors parser, then the graph-file loader, 60 s each (FUZZ_TIME=n; clang-14)
#   make fuzz-onnx  libFuzzer over the ONNX loader for 60 s (FUZZ_TIME=n; clang-14)
#   make fuzz-diff  the differential program fuzzer for 60 s (SECONDS=n, START=seed; tests/fuzz_diff)
#   make cross-aarch64   compiles core/ with Debian's aarch64 cross compiler (CI checks it)
#   make rock       the Lua module as the LuaRocks rockspec builds it (rock-install installs it)
#
# Plain `make` needs only the build packages (scripts/setup.sh build); `make test`,
# `make demo` and `make bench` install (as root) or ask for the tools and data they need.

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= gcc
# The default build runs on any CPU of its architecture: on x86-64 the
# baseline (SSE2), with the kernels compiled twice more, for AVX2 and AVX-512,
# and chosen at run time (core/isa.c). MARCH=-march=native builds for this
# machine alone (no copies; `make BUILD=build-native MARCH=-march=native`).
HOST_ARCH := $(shell $(CC) -dumpmachine)
ifneq (,$(filter x86_64-%,$(HOST_ARCH)))
MARCH    ?= -march=x86-64 -mtune=generic
else
MARCH    ?=
endif
ISA_COPIES ?= $(if $(filter -march=x86-64,$(firstword $(MARCH))),avx2 avx512,)
ISA_FLAGS_avx2   := -march=x86-64-v3 -mtune=generic
ISA_FLAGS_avx512 := -march=x86-64-v4 -mtune=generic
OPT      ?= -O2
SAN      ?=
LUA_INCDIR ?= /usr/include/lua5.4
LUA_INC  := -isystem $(LUA_INCDIR)
# Debian's BLIS headers live under the multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu).
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BLIS_INC := -isystem /usr/include/$(MULTIARCH)/blis-openmp
# -fvisibility=hidden: only what a public header declares MG_API is exported (core/mg.h).
CFLAGS   += -std=c11 $(OPT) $(MARCH) -g -fPIC -fvisibility=hidden -Wall -Wextra -Werror -D_GNU_SOURCE -fopenmp \
            -fno-math-errno -Icore -I$(BUILD)/gen $(BLIS_INC) $(SAN)
LDFLAGS  += -fopenmp $(SAN)
# -llapack: Debian's reference LAPACK (liblapack-dev; its BLAS is BLIS through the libblas.so.3
# alternative) for the factorizations of mg.linalg (core/kernels/linalg.c).
# -lprotobuf-c: ONNX files (core/onnx_export.c, core/onnx_import.c) through the schema subset
# core/onnx_subset.proto, compiled by protoc-c into $(BUILD)/gen (never committed).
CORE_LIBS := -llapack -lblis -lcjson -lz -lm -lpthread -lprotobuf-c
ROOT     := $(abspath .)

CORE_SRC := $(wildcard core/*.c core/kernels/*.c core/passes/*.c)
# The sources compiled once per ISA copy (core/isa.c): the kernels and the
# fused-node loops. Each copy is linked into one object with its functions
# renamed (k_add -> k_add__avx2) by scripts/isa_rename.sh.
ISA_SRC  := $(wildcard core/kernels/*.c) core/passes/fused.c
ISA_OBJ  := $(foreach i,$(ISA_COPIES),$(BUILD)/obj/isa/kernels_$(i).o)
ONNX_PB_C := $(BUILD)/gen/onnx_subset.pb-c.c
ONNX_PB_H := $(BUILD)/gen/onnx_subset.pb-c.h
ONNX_PB_OBJ := $(BUILD)/obj/gen/onnx_subset.pb-c.o
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o) $(ISA_OBJ) $(ONNX_PB_OBJ)
CAPI_SRC := $(wildcard lua/capi/*.c)
CAPI_OBJ := $(CAPI_SRC:%.c=$(BUILD)/obj/%.o)
PROG_SRC := lua/main.c lua/repl.c
PROG_OBJ := $(PROG_SRC:%.c=$(BUILD)/obj/%.o)
CTEST_SRC := $(wildcard tests/core/*.c)
CXX      ?= g++
CXXFLAGS += -std=c++17 $(OPT) $(MARCH) -g -Wall -Wextra -Werror -Icore -Ilua/include $(SAN)
# The embedding library: lua/embed.c, the Lua binding and the stdlib compiled in
# (scripts/embed_lua.lua writes every stdlib/autograph .lua file into one C file).
EMBED_LUA := $(sort $(shell find stdlib autograph -name '*.lua' 2>/dev/null))
EMBED_GEN := $(BUILD)/gen/stdlib_embed.c
EMBED_OBJ := $(BUILD)/obj/lua/embed.o $(BUILD)/obj/lua/embed_budget.o $(BUILD)/obj/lua/embed_sandbox.o \
             $(BUILD)/obj/gen/stdlib_embed.o
LIBE_A   := $(BUILD)/lib/libmoongrad_embed.a
LIBE_SO  := $(BUILD)/lib/libmoongrad_embed.so
EMBED_LIBS := -llua5.4 $(CORE_LIBS)
# The LuaJIT binding's declarations: mg.h through the preprocessor (no system headers: LuaJIT
# knows the <stdint.h> types), written as a Lua module next to the path of libmoongrad.so.
FFI_CDEF := $(BUILD)/luajit/moongrad/ffi_cdef.lua
# Embedding tests, examples and the frame benchmark (built by `make test`/`make bench`)
EMBED_BINS := $(BUILD)/tests/embed_tests $(BUILD)/tests/embed_cxx_tests $(BUILD)/tests/embed_cxx_noexc_tests \
              $(BUILD)/examples/game $(BUILD)/examples/policy_graph $(BUILD)/bench/graph_frame \
              $(BUILD)/examples/tool $(BUILD)/bench/embed_frame $(BUILD)/tests/embed_doc_host

LIB_A    := $(BUILD)/lib/libmoongrad.a
# The shared libraries are versioned: libmoongrad.so.X.Y.Z with the SONAME
# libmoongrad.so.$(SOVERSION) (bumped when the ABI changes), and the link-time
# name libmoongrad.so a symlink to it.
VERSION  := $(shell sed -n 's/^\#define MG_VERSION "\(.*\)"/\1/p' core/mg.h)
SOVERSION := 0
LIB_SO   := $(BUILD)/lib/libmoongrad.so
LIB_SOV  := $(BUILD)/lib/libmoongrad.so.$(VERSION)
LIBE_SOV := $(BUILD)/lib/libmoongrad_embed.so.$(VERSION)
# The core's own objects, unlocalised, for the C unit tests (they call internals).
CORE_OBJS_A := $(BUILD)/obj/libmoongrad_objs.a
LUAMOD   := $(BUILD)/lua/moongrad/core.so
PROG     := $(BUILD)/bin/moongrad
CTESTS   := $(BUILD)/tests/core_tests

.PHONY: all test demo examples asan install print-luapath deps bench clean check-deps embed fuzz fuzz-onnx oracle fuzz-diff \
        cross-aarch64 rock rock-install test-deps demo-deps bench-deps
all: check-deps $(LIB_A) $(LIB_SO) $(LUAMOD) $(PROG) $(LIBE_A) $(LIBE_SO) $(FFI_CDEF)
embed: $(LIBE_A) $(LIBE_SO)

# Installs the Debian packages of a purpose when one is missing and we are root
# (else prints the sudo line and stops): build for `make`, test/demo/bench for theirs.
check-deps:
	@sh scripts/setup.sh --check build || sh scripts/setup.sh build
test-deps:
	@sh scripts/setup.sh --check build test || sh scripts/setup.sh build test
demo-deps:
	@sh scripts/setup.sh --check build demo || sh scripts/setup.sh build demo
bench-deps:
	@sh scripts/setup.sh --check build bench || sh scripts/setup.sh build bench

deps:
	sh scripts/setup.sh all

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter lua/%,$<),$(LUA_INC) -Ilua/include,) -MMD -MP -c $< -o $@

# The ONNX schema subset through protoc-c. The generated C is compiled without -Werror (it is
# not ours to keep warning-clean); the core files that include its header wait for it.
# (one protoc-c run writes both files; the .c follows the .h so that make -j runs it once)
$(ONNX_PB_H): core/onnx_subset.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Icore core/onnx_subset.proto
$(ONNX_PB_C): $(ONNX_PB_H)
	@test -f $@ || protoc-c --c_out=$(BUILD)/gen -Icore core/onnx_subset.proto
$(ONNX_PB_OBJ): $(ONNX_PB_C) $(ONNX_PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(CFLAGS)) -c $< -o $@
$(BUILD)/obj/core/onnx_export.o $(BUILD)/obj/core/onnx_import.o: $(ONNX_PB_H)

# One ISA copy: its sources with the ISA's -march (after MARCH, so it wins).
define isa_copy
$(BUILD)/obj/isa/$(1)/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(ISA_FLAGS_$(1)) -DMG_ISA_COPY=$(1) -MMD -MP -c $$< -o $$@

$(BUILD)/obj/isa/kernels_$(1).o: $(ISA_SRC:%.c=$(BUILD)/obj/isa/$(1)/%.o) scripts/isa_rename.sh
	sh scripts/isa_rename.sh $$@ $(1) $(ISA_SRC:%.c=$(BUILD)/obj/isa/$(1)/%.o)

-include $(ISA_SRC:%.c=$(BUILD)/obj/isa/$(1)/%.d)
endef
$(foreach i,$(ISA_COPIES),$(eval $(call isa_copy,$(i))))

# A static archive that a host links beside its own code: its objects are
# linked into one (ld -r) and every hidden symbol made local, so only the
# MG_API functions are global and a host's own map_get or k_add cannot clash.
# scripts/localize.sh NAME.a OBJ...
$(LIB_A): $(CORE_OBJ) scripts/localize.sh
	@mkdir -p $(dir $@)
	sh scripts/localize.sh $@ $(CORE_OBJ)

$(CORE_OBJS_A): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# -z nodelete: never unloaded (LuaJIT's ffi.load, dlopen) under its running OpenMP threads.
$(LIB_SOV): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(CORE_LIBS) -Wl,-soname,libmoongrad.so.$(SOVERSION) -Wl,-z,nodelete

$(LIB_SO): $(LIB_SOV)
	ln -sf $(notdir $<) $(BUILD)/lib/libmoongrad.so.$(SOVERSION)
	ln -sf libmoongrad.so.$(SOVERSION) $@

$(LUAMOD): $(CAPI_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(CAPI_OBJ) $(LIB_A) $(LDFLAGS) $(CORE_LIBS) -Wl,-z,nodelete

$(PROG): $(PROG_OBJ) $(CAPI_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(PROG_OBJ) $(CAPI_OBJ) $(LIB_A) $(LDFLAGS) -Wl,-E -llua5.4 -ledit $(CORE_LIBS)

$(CTESTS): $(CTEST_SRC) $(CORE_OBJS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/core -o $@ $(CTEST_SRC) $(CORE_OBJS_A) $(LDFLAGS) $(CORE_LIBS)

$(BUILD)/gen/mg_cdef.h: core/mg.h core/ops.def
	@mkdir -p $(BUILD)/gen/ffistub
	touch $(BUILD)/gen/ffistub/stddef.h $(BUILD)/gen/ffistub/stdint.h
	$(CC) -E -P -nostdinc -DMG_API= -I$(BUILD)/gen/ffistub -Icore core/mg.h -o $@

$(FFI_CDEF): $(BUILD)/gen/mg_cdef.h scripts/ffi_cdef.lua
	@mkdir -p $(dir $@)
	lua5.4 scripts/ffi_cdef.lua $< core/mg.h $(ROOT)/$(BUILD)/lib/libmoongrad.so.$(SOVERSION) $@

$(EMBED_GEN): scripts/embed_lua.lua $(EMBED_LUA)
	@mkdir -p $(dir $@)
	lua5.4 scripts/embed_lua.lua $@ $(EMBED_LUA)

$(BUILD)/obj/gen/stdlib_embed.o: $(EMBED_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBE_A): $(EMBED_OBJ) $(CAPI_OBJ) scripts/localize.sh
	@mkdir -p $(dir $@)
	sh scripts/localize.sh $@ $(EMBED_OBJ) $(CAPI_OBJ)

# Linked to libmoongrad.so beside it ($$ORIGIN), so the engine stays one copy per process.
$(LIBE_SOV): $(EMBED_OBJ) $(CAPI_OBJ) $(LIB_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(EMBED_OBJ) $(CAPI_OBJ) -L$(BUILD)/lib -lmoongrad $(LDFLAGS) $(EMBED_LIBS) \
	  -Wl,-soname,libmoongrad_embed.so.$(SOVERSION) -Wl,-rpath,'$$ORIGIN' -Wl,-z,nodelete

$(LIBE_SO): $(LIBE_SOV)
	ln -sf $(notdir $<) $(BUILD)/lib/libmoongrad_embed.so.$(SOVERSION)
	ln -sf libmoongrad_embed.so.$(SOVERSION) $@

# Embedding programs link the static libraries: one binary, nothing to find at run time.
EMBED_TEST_SRC := tests/embed/test_embed.c tests/embed/test_sandbox.c tests/embed/test_limits.c
$(BUILD)/tests/embed_tests: $(EMBED_TEST_SRC) tests/embed/harness.h $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_INC) -Ilua/include -Itests/embed -o $@ $(EMBED_TEST_SRC) $(LIBE_A) $(LIB_A) $(LDFLAGS) \
	  $(EMBED_LIBS)

$(BUILD)/tests/embed_cxx_tests: tests/embed/test_cxx.cpp lua/include/moongrad.hpp $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

# The C++ wrapper in a host built without exceptions (moongrad.hpp's -fno-exceptions mode).
$(BUILD)/tests/embed_cxx_noexc_tests: tests/embed/test_cxx_noexc.cpp lua/include/moongrad.hpp $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -fno-exceptions -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

$(BUILD)/examples/game: examples/embed/game.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

# A host with libmoongrad alone (no Lua library): runs a graph file mg.export wrote.
$(BUILD)/examples/policy_graph: examples/embed/policy_graph.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) $(CORE_LIBS)

$(BUILD)/examples/tool: examples/embed/tool.cpp lua/include/moongrad.hpp $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

# The host program of doc/embedding.md (the block after "<!-- test: host.c -->"), so the page stays true.
$(BUILD)/gen/doc_host.c: doc/embedding.md
	@mkdir -p $(dir $@)
	awk '/<!-- test: host.c -->/ {want = 1; next} want && /^```c/ {inb = 1; next} inb && /^```/ {exit} inb {print}' $< > $@

$(BUILD)/tests/embed_doc_host: $(BUILD)/gen/doc_host.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

$(BUILD)/bench/embed_frame: bench/embed_frame.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

$(BUILD)/bench/graph_frame: bench/graph_frame.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

$(BUILD)/bench/embed_overshoot: bench/embed_overshoot.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

test: test-deps all $(CTESTS) $(EMBED_BINS)
	@BUILD=$(BUILD) sh tests/run.sh

# The op oracle (tests/oracle, doc/testing.md): creates build/oracle-venv (JAX, NumPy) once.
oracle: all
	@BUILD=$(BUILD) sh tests/oracle/run.sh

demo: demo-deps all
	$(PROG) examples/fashion_mnist_cnn.lua

# Every example in full mode, one after the other; stops at the first that fails
# (an example checks its own result: an accuracy, a perplexity, a decreasing loss).
examples: demo-deps all
	@for ex in examples/*.lua; do \
	  echo "== $$ex"; t0=$$(date +%s); \
	  $(PROG) "$$ex" || { echo "make examples: $$ex failed"; exit 1; }; \
	  echo "== $$ex: ok ($$(( $$(date +%s) - t0 )) s)"; done

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# One pair for both interpreters: LuaJIT takes moongrad.core from lua/ffi (the FFI binding);
# Lua 5.4 finds the same file first and is handed the C module from LUA_CPATH.
print-luapath:
	@echo 'export LUA_PATH="$(ROOT)/lua/ffi/?.lua;$(ROOT)/$(BUILD)/luajit/?.lua;$(ROOT)/stdlib/?.lua;$(ROOT)/stdlib/?/init.lua;$(ROOT)/?.lua;;"'
	@echo 'export LUA_CPATH="$(ROOT)/$(BUILD)/lua/?.so;;"'

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/moongrad \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4/moongrad $(DESTDIR)$(PREFIX)/share/lua/5.4
	install -m 755 $(PROG) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB_A) $(LIBE_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SOV) $(LIBE_SOV) $(DESTDIR)$(PREFIX)/lib/
	for l in libmoongrad libmoongrad_embed; do \
	  ln -sf $$l.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$$l.so.$(SOVERSION); \
	  ln -sf $$l.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/$$l.so; done
	install -m 644 core/mg.h core/ops.def lua/include/moongrad.h lua/include/moongrad.hpp \
	  $(DESTDIR)$(PREFIX)/include/moongrad/
	install -m 755 $(LUAMOD) $(DESTDIR)$(PREFIX)/lib/lua/5.4/moongrad/
	cp -r stdlib/moongrad autograph $(DESTDIR)$(PREFIX)/share/lua/5.4/
	install -d $(DESTDIR)$(PREFIX)/share/lua/5.1
	cp -r stdlib/moongrad autograph $(DESTDIR)$(PREFIX)/share/lua/5.1/
	install -m 644 lua/ffi/moongrad/*.lua $(DESTDIR)$(PREFIX)/share/lua/5.1/moongrad/
	lua5.4 scripts/ffi_cdef.lua $(BUILD)/gen/mg_cdef.h core/mg.h $(PREFIX)/lib/libmoongrad.so.$(SOVERSION) \
	  $(DESTDIR)$(PREFIX)/share/lua/5.1/moongrad/ffi_cdef.lua
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  scripts/moongrad.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/moongrad.pc
	install -d $(DESTDIR)$(PREFIX)/lib/cmake/moongrad $(DESTDIR)$(PREFIX)/share/doc/moongrad
	for f in moongradConfig moongradConfigVersion; do \
	  sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOVERSION@|$(SOVERSION)|g' \
	      -e 's|@VERSION_MAJOR@|$(word 1,$(subst ., ,$(VERSION)))|g' -e 's|@VERSION_MINOR@|$(word 2,$(subst ., ,$(VERSION)))|g' \
	      scripts/$$f.cmake.in > $(DESTDIR)$(PREFIX)/lib/cmake/moongrad/$$f.cmake; done
	install -m 644 LICENSE $(DESTDIR)$(PREFIX)/share/doc/moongrad/

# LuaRocks (moongrad-$(VERSION)-1.rockspec, build type "make"): `rock` builds the
# Lua 5.4 C module (the engine linked in, BLIS/cJSON/zlib from the system),
# `rock-install` copies it and the Lua modules to LuaRocks' LIBDIR and LUADIR.
rock: $(LUAMOD)

rock-install: rock
	@test -n "$(LIBDIR)" && test -n "$(LUADIR)" || { echo "rock-install: set LIBDIR and LUADIR (LuaRocks does)"; exit 1; }
	install -d $(LIBDIR)/moongrad $(LUADIR)
	install -m 755 $(LUAMOD) $(LIBDIR)/moongrad/
	cp -r stdlib/moongrad autograph $(LUADIR)/

# core/ compiled for aarch64 with Debian's cross compiler (gcc-aarch64-linux-gnu):
# x86-only code must stay behind architecture guards. Compiles only (no aarch64
# BLIS to link against here); CI runs it.
CROSS_CC ?= aarch64-linux-gnu-gcc
CROSS_OBJ := $(CORE_SRC:%.c=$(BUILD)/aarch64/%.o)
$(BUILD)/aarch64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CROSS_CC) -std=c11 -O2 -fPIC -fvisibility=hidden -Wall -Wextra -Werror -D_GNU_SOURCE -fopenmp \
	  -fno-math-errno -Icore -I$(BUILD)/gen -isystem /usr/include/aarch64-linux-gnu/blis-openmp $(BLIS_INC) -c $< -o $@
$(BUILD)/aarch64/core/onnx_export.o $(BUILD)/aarch64/core/onnx_import.o: $(ONNX_PB_H)

cross-aarch64: $(CROSS_OBJ)
	@echo "cross-aarch64: core/ compiles for aarch64 ($(words $(CROSS_OBJ)) files)"

# The side-by-side benchmarks (bench/run.sh, doc/performance.md): creates bench/.venv with
# the peers once, writes bench/RESULTS.md. QUICK=1: a short run that installs nothing.
QUICK ?=
$(BUILD)/bench/sgemm_blis: bench/sgemm_blis.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $(CORE_LIBS)

bench: bench-deps all $(BUILD)/bench/embed_frame $(BUILD)/bench/embed_overshoot $(BUILD)/bench/sgemm_blis $(BUILD)/bench/graph_frame
	BUILD=$(BUILD) QUICK=$(QUICK) sh bench/run.sh

# libFuzzer over the safetensors parser (tests/fuzz/safetensors_fuzz.c): the core built again
# by clang-14 with ASan+UBSan and coverage into $(BUILD)/fuzz, run FUZZ_TIME seconds from the
# seed corpus. New inputs go to $(BUILD)/fuzz/corpus (the seeds stay as they are); a crash is
# written to $(BUILD)/fuzz/crash-* and fails the target.
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 60
FUZZ_DIR  := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -fopenmp=libgomp -Icore -I$(BUILD)/gen $(BLIS_INC) \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ  := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/onnx_subset.pb-c.o
$(FUZZ_DIR)/obj/gen/onnx_subset.pb-c.o: $(ONNX_PB_C) $(ONNX_PB_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_DIR)/obj/core/onnx_export.o $(FUZZ_DIR)/obj/core/onnx_import.o: $(ONNX_PB_H)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/safetensors_fuzz: tests/fuzz/safetensors_fuzz.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(CORE_LIBS)

# The graph-file loader's target (tests/fuzz/graph_fuzz.c) runs next, as long, from the files
# mg.export wrote (tests/fuzz/corpus/graph); its new inputs go to $(BUILD)/fuzz/corpus-graph.
$(FUZZ_DIR)/graph_fuzz: tests/fuzz/graph_fuzz.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(CORE_LIBS)

fuzz: $(FUZZ_DIR)/safetensors_fuzz $(FUZZ_DIR)/graph_fuzz
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/corpus-graph
	ASAN_OPTIONS=detect_leaks=1 $< -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	  -dict=tests/fuzz/safetensors.dict -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus tests/fuzz/corpus/safetensors
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/graph_fuzz -max_total_time=$(FUZZ_TIME) -max_len=8192 -timeout=20 \
	  -rss_limit_mb=4096 -dict=tests/fuzz/graph.dict -artifact_prefix=$(FUZZ_DIR)/graph- \
	  $(FUZZ_DIR)/corpus-graph tests/fuzz/corpus/graph

# The ONNX loader (tests/fuzz/onnx_fuzz.c), seeded from the committed ONNX fixtures.
$(FUZZ_DIR)/onnx_fuzz: tests/fuzz/onnx_fuzz.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(CORE_LIBS)

fuzz-onnx: $(FUZZ_DIR)/onnx_fuzz
	@mkdir -p $(FUZZ_DIR)/corpus-onnx
	ASAN_OPTIONS=detect_leaks=1 $< -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=4096 \
	  -malloc_limit_mb=2048 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-onnx tests/fixtures/onnx

-include $(FUZZ_OBJ:.o=.d)

# The differential program fuzzer (tests/fuzz_diff): random programs run as plain Lua, eagerly,
# staged with and without optimisation, with tapes around and inside, against each other and
# float64 finite differences, for SECONDS seconds; shrunk reports go to $(BUILD)/fuzz_diff/.
SECONDS ?= 60
START   ?=
fuzz-diff: all
	@BUILD=$(BUILD) sh tests/fuzz_diff/fuzz.sh $(SECONDS) $(START)

clean:
	rm -rf build build-asan build-native

-include $(CORE_OBJ:.o=.d) $(CAPI_OBJ:.o=.d) $(PROG_OBJ:.o=.d) $(EMBED_OBJ:.o=.d)
