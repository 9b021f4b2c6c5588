# moongrad — one entry point.
#   make            build build/bin/moongrad, build/lib/libmoongrad.{so,a}, build/lua/moongrad/core.so
#   make test       build and run every test; the last line is "N passed, N failed"
#   make demo       build and run the main job
#   make asan       build with ASan+UBSan+LSan into build-asan/ and run the tests there
#   make install PREFIX=/usr/local
#   make print-luapath   the LUA_PATH/LUA_CPATH lines for stock lua5.4 / luajit
#   make deps       install the Debian packages (as root)
#   make bench      the benchmarks in bench/

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
CORE_LIBS := -lblis -lm -lpthread
ROOT     := $(abspath .)

CORE_SRC := $(wildcard core/*.c core/kernels/*.c core/passes/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CAPI_SRC := $(wildcard lua/capi/*.c)
CAPI_OBJ := $(CAPI_SRC:%.c=$(BUILD)/obj/%.o)
PROG_SRC := lua/main.c lua/repl.c
PROG_OBJ := $(PROG_SRC:%.c=$(BUILD)/obj/%.o)
CTEST_SRC := $(wildcard tests/core/*.c)

LIB_A    := $(BUILD)/lib/libmoongrad.a
LIB_SO   := $(BUILD)/lib/libmoongrad.so
LUAMOD   := $(BUILD)/lua/moongrad/core.so
PROG     := $(BUILD)/bin/moongrad
CTESTS   := $(BUILD)/tests/core_tests

.PHONY: all test demo asan install print-luapath deps bench clean check-deps
all: check-deps $(LIB_A) $(LIB_SO) $(LUAMOD) $(PROG)

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

$(LIB_SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(CORE_LIBS)

$(LUAMOD): $(CAPI_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(CAPI_OBJ) $(LIB_A) $(LDFLAGS) $(CORE_LIBS) -Wl,-z,nodelete

$(PROG): $(PROG_OBJ) $(CAPI_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(PROG_OBJ) $(CAPI_OBJ) $(LIB_A) $(LDFLAGS) -Wl,-E -llua5.4 -lreadline $(CORE_LIBS)

$(CTESTS): $(CTEST_SRC) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/core -o $@ $(CTEST_SRC) $(LIB_A) $(LDFLAGS) $(CORE_LIBS)

test: all $(CTESTS)
	@BUILD=$(BUILD) sh tests/run.sh

demo: all
	$(PROG) examples/tour.lua

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

print-luapath:
	@echo 'export LUA_PATH="$(ROOT)/stdlib/?.lua;$(ROOT)/stdlib/?/init.lua;$(ROOT)/?.lua;;"'
	@echo 'export LUA_CPATH="$(ROOT)/$(BUILD)/lua/?.so;;"'

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/moongrad \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4/moongrad $(DESTDIR)$(PREFIX)/share/lua/5.4
	install -m 755 $(PROG) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB_A) $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 core/mg.h core/ops.def $(DESTDIR)$(PREFIX)/include/moongrad/
	install -m 755 $(LUAMOD) $(DESTDIR)$(PREFIX)/lib/lua/5.4/moongrad/
	cp -r stdlib/moongrad autograph $(DESTDIR)$(PREFIX)/share/lua/5.4/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define MG_VERSION "\(.*\)"/\1/p' core/mg.h)|' \
	  scripts/moongrad.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/moongrad.pc

bench: all
	sh bench/run.sh

clean:
	rm -rf build build-asan

-include $(CORE_OBJ:.o=.d) $(CAPI_OBJ:.o=.d) $(PROG_OBJ:.o=.d)
