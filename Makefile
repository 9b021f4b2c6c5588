# moongrad — one entry point.
#   make            build build/bin/moongrad, build/lib/libmoongrad.{so,a}, build/lua/moongrad/core.so
#   make test       build and run every test; the last line is "N passed, N failed"
#   make demo       build and train the Fashion-MNIST CNN (examples/fashion_mnist_cnn.lua)
#   make asan       build with ASan+UBSan+LSan into build-asan/ and run the tests there
#   make install PREFIX=/usr/local
#   make print-luapath   the LUA_PATH/LUA_CPATH lines for stock lua5.4 / luajit
#   make embed      build/lib/libmoongrad_embed.{so,a}: the host embedding library (lua/include/moongrad.h)
#   make deps       install the Debian packages (as root)
#   make bench      the benchmarks in bench/
#   make fuzz       libFuzzer over the safetensors parser for 60 s (FUZZ_TIME=n; clang-14)

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= gcc
MARCH    ?= -march=native
OPT      ?= -O2
SAN      ?=
LUA_INC  := -isystem /usr/include/lua5.4
BLIS_INC := -isystem /usr/include/x86_64-linux-gnu/blis-openmp
CFLAGS   += -std=c11 $(OPT) $(MARCH) -g -fPIC -Wall -Wextra -Werror -D_GNU_SOURCE -fopenmp \
            -fno-math-errno -Icore $(BLIS_INC) $(SAN)
LDFLAGS  += -fopenmp $(SAN)
CORE_LIBS := -lblis -lcjson -lm -lpthread
ROOT     := $(abspath .)

CORE_SRC := $(wildcard core/*.c core/kernels/*.c core/passes/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
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
EMBED_BINS := $(BUILD)/tests/embed_tests $(BUILD)/tests/embed_cxx_tests $(BUILD)/examples/game \
              $(BUILD)/examples/tool $(BUILD)/bench/embed_frame $(BUILD)/tests/embed_doc_host

LIB_A    := $(BUILD)/lib/libmoongrad.a
LIB_SO   := $(BUILD)/lib/libmoongrad.so
LUAMOD   := $(BUILD)/lua/moongrad/core.so
PROG     := $(BUILD)/bin/moongrad
CTESTS   := $(BUILD)/tests/core_tests

.PHONY: all test demo asan install print-luapath deps bench clean check-deps embed fuzz
all: check-deps $(LIB_A) $(LIB_SO) $(LUAMOD) $(PROG) $(LIBE_A) $(LIBE_SO) $(FFI_CDEF)
embed: $(LIBE_A) $(LIBE_SO)

# Installs the Debian packages when one is missing and we are root.
check-deps:
	@sh scripts/setup.sh --check || sh scripts/setup.sh

deps:
	sh scripts/setup.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter lua/%,$<),$(LUA_INC) -Ilua/include,) -MMD -MP -c $< -o $@

$(LIB_A): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# -z nodelete: never unloaded (LuaJIT's ffi.load, dlopen) under its running OpenMP threads.
$(LIB_SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(CORE_LIBS) -Wl,-z,nodelete

$(LUAMOD): $(CAPI_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(CAPI_OBJ) $(LIB_A) $(LDFLAGS) $(CORE_LIBS) -Wl,-z,nodelete

$(PROG): $(PROG_OBJ) $(CAPI_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(PROG_OBJ) $(CAPI_OBJ) $(LIB_A) $(LDFLAGS) -Wl,-E -llua5.4 -lreadline $(CORE_LIBS)

$(CTESTS): $(CTEST_SRC) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/core -o $@ $(CTEST_SRC) $(LIB_A) $(LDFLAGS) $(CORE_LIBS)

$(BUILD)/gen/mg_cdef.h: core/mg.h core/ops.def
	@mkdir -p $(BUILD)/gen/ffistub
	touch $(BUILD)/gen/ffistub/stddef.h $(BUILD)/gen/ffistub/stdint.h
	$(CC) -E -P -nostdinc -I$(BUILD)/gen/ffistub -Icore core/mg.h -o $@

$(FFI_CDEF): $(BUILD)/gen/mg_cdef.h scripts/ffi_cdef.lua
	@mkdir -p $(dir $@)
	lua5.4 scripts/ffi_cdef.lua $< core/mg.h $(ROOT)/$(LIB_SO) $@

$(EMBED_GEN): scripts/embed_lua.lua $(EMBED_LUA)
	@mkdir -p $(dir $@)
	lua5.4 scripts/embed_lua.lua $@ $(EMBED_LUA)

$(BUILD)/obj/gen/stdlib_embed.o: $(EMBED_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBE_A): $(EMBED_OBJ) $(CAPI_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Linked to libmoongrad.so beside it ($$ORIGIN), so the engine stays one copy per process.
$(LIBE_SO): $(EMBED_OBJ) $(CAPI_OBJ) $(LIB_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(EMBED_OBJ) $(CAPI_OBJ) -L$(BUILD)/lib -lmoongrad $(LDFLAGS) $(EMBED_LIBS) \
	  -Wl,-rpath,'$$ORIGIN' -Wl,-z,nodelete

# Embedding programs link the static libraries: one binary, nothing to find at run time.
EMBED_TEST_SRC := tests/embed/test_embed.c tests/embed/test_sandbox.c tests/embed/test_limits.c
$(BUILD)/tests/embed_tests: $(EMBED_TEST_SRC) tests/embed/harness.h $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_INC) -Ilua/include -Itests/embed -o $@ $(EMBED_TEST_SRC) $(LIBE_A) $(LIB_A) $(LDFLAGS) \
	  $(EMBED_LIBS)

$(BUILD)/tests/embed_cxx_tests: tests/embed/test_cxx.cpp lua/include/moongrad.hpp $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

$(BUILD)/examples/game: examples/embed/game.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

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

$(BUILD)/bench/embed_overshoot: bench/embed_overshoot.c $(LIBE_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilua/include -o $@ $< $(LIBE_A) $(LIB_A) $(LDFLAGS) $(EMBED_LIBS)

test: all $(CTESTS) $(EMBED_BINS)
	@BUILD=$(BUILD) sh tests/run.sh

demo: all
	$(PROG) examples/fashion_mnist_cnn.lua

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
	install -m 644 $(LIB_A) $(LIB_SO) $(LIBE_A) $(LIBE_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 core/mg.h core/ops.def lua/include/moongrad.h lua/include/moongrad.hpp \
	  $(DESTDIR)$(PREFIX)/include/moongrad/
	install -m 755 $(LUAMOD) $(DESTDIR)$(PREFIX)/lib/lua/5.4/moongrad/
	cp -r stdlib/moongrad autograph $(DESTDIR)$(PREFIX)/share/lua/5.4/
	install -d $(DESTDIR)$(PREFIX)/share/lua/5.1
	cp -r stdlib/moongrad autograph $(DESTDIR)$(PREFIX)/share/lua/5.1/
	install -m 644 lua/ffi/moongrad/core.lua $(DESTDIR)$(PREFIX)/share/lua/5.1/moongrad/
	lua5.4 scripts/ffi_cdef.lua $(BUILD)/gen/mg_cdef.h core/mg.h $(PREFIX)/lib/libmoongrad.so \
	  $(DESTDIR)$(PREFIX)/share/lua/5.1/moongrad/ffi_cdef.lua
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define MG_VERSION "\(.*\)"/\1/p' core/mg.h)|' \
	  scripts/moongrad.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/moongrad.pc

# The side-by-side benchmarks (bench/run.sh, doc/performance.md): creates bench/.venv with
# the peers once, writes bench/RESULTS.md. QUICK=1: a short run that installs nothing.
QUICK ?=
$(BUILD)/bench/sgemm_blis: bench/sgemm_blis.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $(CORE_LIBS)

bench: all $(BUILD)/bench/embed_frame $(BUILD)/bench/embed_overshoot $(BUILD)/bench/sgemm_blis
	BUILD=$(BUILD) QUICK=$(QUICK) sh bench/run.sh

# libFuzzer over the safetensors parser (tests/fuzz/safetensors_fuzz.c): the core built again
# by clang-14 with ASan+UBSan and coverage into $(BUILD)/fuzz, run FUZZ_TIME seconds from the
# seed corpus. New inputs go to $(BUILD)/fuzz/corpus (the seeds stay as they are); a crash is
# written to $(BUILD)/fuzz/crash-* and fails the target.
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 60
FUZZ_DIR  := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -fopenmp=libgomp -Icore $(BLIS_INC) \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ  := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/safetensors_fuzz: tests/fuzz/safetensors_fuzz.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(CORE_LIBS)

fuzz: $(FUZZ_DIR)/safetensors_fuzz
	@mkdir -p $(FUZZ_DIR)/corpus
	ASAN_OPTIONS=detect_leaks=1 $< -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	  -dict=tests/fuzz/safetensors.dict -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus tests/fuzz/corpus/safetensors

-include $(FUZZ_OBJ:.o=.d)

clean:
	rm -rf build build-asan

-include $(CORE_OBJ:.o=.d) $(CAPI_OBJ:.o=.d) $(PROG_OBJ:.o=.d) $(EMBED_OBJ:.o=.d)
