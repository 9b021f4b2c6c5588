/*
 * test_sandbox.c — the sandbox's threat model (doc/embedding.md), line by line.
 *
 * Each test is one promise of the model, tried by a hostile script; the ones
 * that could hang the host if the promise broke run in a child process under
 * a watchdog (HOSTILE_TEST). The walker test checks the model's core
 * statically: nothing reachable from the script's globals, the string
 * metatable or the metatables a script can see is the registry, the
 * library's private environment, a raw debug/io/os/load/loadlib function or
 * an engine metatable.
 */
#include "harness.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sys/stat.h>
#include <unistd.h>

static mg_runtime *sandbox_new(const char *dir) {
  mg_runtime_options o = {0};
  o.sandbox = 1;
  o.allowed_dir = dir;
  o.time_limit = 5;
  return mg_runtime_new(&o);
}

/* ---- code a script makes runs in the script's environment -------------------------------- */

/* The exploit of issue 15: replace the source of a library function and have
 * AutoGraph convert it, so the script's text runs with the library's
 * environment, which holds the whole debug library. */
static const char exploit_register_source[] =
  "local i = debug.getinfo(mg.save, 'Su')\n"
  "mg.autograph.register_source(i.source, string.rep('\\n', i.linedefined - 1)\n"
  "  .. 'return function(a, b, c) if debug then return debug end'\n"
  "  .. string.rep('\\n', i.lastlinedefined - i.linedefined) .. ' end')\n"
  "local dbg = mg.autograph.convert(mg.save)()\n"
  "if type(dbg) == 'table' and dbg.sethook then dbg.sethook() while true do end end\n";

HOSTILE_TEST(sandbox_register_source_cannot_replace_library_chunks, 30) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  CHECK(mg_run_string(rt, exploit_register_source, "=exploit") == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "register_source");
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "only the source of chunks you loaded yourself");
  /* the script's own chunks can still be registered and converted */
  mg_value r;
  CHECK_RT(rt, mg_eval(rt,
    "local text = 'return function(x) if mg.sum(x) > 1 then return x * 2 end return x - 1 end'\n"
    "mg.autograph.register_source('=mine', text)\n"
    "local f = load(text, '=mine')()\n"
    "return mg.func(f)(mg.ones{3}):sum():item()", &r, 1));
  CHECK(mg_value_number(&r, NULL) == 6);
  mg_runtime_free(rt);
}

/* The same through the file system: a file in the allowed directory named
 * like a library chunk, written by the script, must not be read as that
 * chunk's source. */
HOSTILE_TEST(sandbox_library_source_never_comes_from_a_file, 30) {
  char dir[] = "/tmp/mg_sbx_srcXXXXXX";
  REQUIRE(mkdtemp(dir));
  REQUIRE(chdir(dir) == 0);   /* the child's own working directory: relative chunk names resolve here */
  mg_runtime *rt = sandbox_new(dir);
  REQUIRE(rt);
  mg_value r;
  CHECK_RT(rt, mg_eval(rt,
    "local i = debug.getinfo(mg.save, 'S')\n"
    "local path = i.source:sub(2)\n"
    "mg.io.mkdir(path:match('^(.*)/[^/]*$'), {parents = true})\n"
    "mg.io.write_file_atomic(path, string.rep('\\n', i.linedefined - 1)\n"
    "  .. 'return function(a, b, c) if debug then return debug end'\n"
    "  .. string.rep('\\n', i.lastlinedefined - i.linedefined) .. ' end')\n"
    "local ok, got = pcall(function() return mg.autograph.convert(mg.save)() end)\n"
    "return type(got) == 'table' and got.sethook ~= nil", &r, 1));
  CHECK(r.type == MG_VBOOLEAN && !r.u.b);
  mg_runtime_free(rt);
}

/* The library's functions are never converted: their converted code would
 * run with the library's environment while its calls go through
 * runtime.converter, a hook the script can replace (it would be handed
 * debug.getinfo and the library's private functions). */
TEST(sandbox_library_functions_are_never_converted) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[3];
  CHECK_RT(rt, mg_eval(rt,
    "local guards = require('moongrad.guards')\n"
    "local got = 0\n"
    "mg.autograph.runtime.converter = function(f) got = got + 1 return f end\n"
    "local conv = mg.autograph.convert(guards.describe)\n"
    "pcall(conv, {kind = 'upvalue', name = 'k', fn = print, value = 1}, 2, nil)\n"
    "local conv2 = mg.autograph.convert(mg.save)\n"
    "return got, mg.autograph.is_converted(conv), mg.autograph.is_converted(conv2)", r, 3));
  CHECK(r[0].type == MG_VINTEGER && r[0].u.i == 0);
  CHECK(r[1].type == MG_VBOOLEAN && !r[1].u.b);
  CHECK(r[2].type == MG_VBOOLEAN && !r[2].u.b);
  mg_runtime_free(rt);
}

/* Converted code is loaded with no environment of its own: a script's
 * function converted by AutoGraph reads the script's globals, never the
 * library's. */
TEST(sandbox_converted_code_runs_in_the_scripts_environment) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[2];
  CHECK_RT(rt, mg_eval(rt,
    "local seen\n"
    "local function f(x) seen = debug.getupvalue or io or false if mg.sum(x) > 0 then return x end return -x end\n"
    "mg.func(f)(mg.ones{2})\n"
    "return seen, mg.autograph.is_converted(mg.autograph.convert(f))", r, 2));
  CHECK(r[0].type == MG_VBOOLEAN && !r[0].u.b);
  CHECK(r[1].type == MG_VBOOLEAN && r[1].u.b);
  mg_runtime_free(rt);
}

/* ---- library functions share no environment a script can reach ---------------------------- */

/* Every global function, and those of string and table, replaced by a
 * counting wrapper: the library's work (AutoGraph, staging, guards, a
 * layer, a gradient) must never call them. */
TEST(sandbox_library_never_runs_through_the_scripts_globals) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[3];
  CHECK_RT(rt, mg_eval(rt,
    "local calls, names = 0, {}\n"
    "local function wrap(t, prefix)\n"
    "  local keys = {}\n"
    "  for k, v in pairs(t) do if type(v) == 'function' then keys[#keys + 1] = k end end\n"
    "  for _, k in ipairs(keys) do\n"
    "    local f = t[k]\n"
    "    t[k] = function(...) calls = calls + 1 names[prefix .. k] = true return f(...) end\n"
    "  end\n"
    "end\n"
    "local mg = mg\n"
    "wrap(string, 'string.') wrap(table, 'table.') wrap(math, 'math.') wrap(_G, '')\n"
    "package.loaded['moongrad.core'] = {}\n"
    "package.loaded['autograph'] = {}\n"
    "calls = 0\n"
    "local k = 3\n"
    "local f = mg.func(function(x)\n"
    "  local y = x\n"
    "  if mg.sum(x) > 0 then y = x * k else y = -x end\n"
    "  for i = 1, 2 do y = y + i end\n"
    "  return y\n"
    "end)\n"
    "local s = f(mg.ones{3}):sum():item()\n"
    "local dense = mg.nn.Dense(2)\n"
    "local out = dense(mg.ones{4, 3})\n"
    "local g = mg.grad(function(x) return (x * x):sum() end)(mg.ones{2})\n"
    "local c, seen = calls, {}\n"
    "for n in next, names do seen[#seen + 1] = n end\n"
    "return c, table.concat(seen, ' '), s", r, 3));
  CHECK(r[0].type == MG_VINTEGER && r[0].u.i == 0);
  if (r[0].u.i != 0 && r[1].type == MG_VSTRING) fprintf(stderr, "  the library called: %s\n", r[1].u.str.s);
  CHECK(mg_value_number(&r[2], NULL) == 18);
  CHECK_RT(rt, mg_eval(rt, "package.loaded.moongrad = {} return require('moongrad') == mg", r, 1));
  CHECK(r[0].type == MG_VBOOLEAN && r[0].u.b);
  mg_runtime_free(rt);
}

/* Library functions a script may call with values of its own making must
 * not read and hand back what a library function closes over (its private
 * environment among them): mg.func's guard check, given forged guards. */
TEST(sandbox_library_hands_out_no_upvalue_of_its_own) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[2];
  CHECK_RT(rt, mg_eval(rt,
    "local guards = require('moongrad.guards')\n"
    "local leaked, tried = 0, 0\n"
    "for _, f in ipairs{mg.save, mg.func, mg.autograph.convert, guards.run, guards.hold, mg.nn.Dense} do\n"
    "  for i = 1, 30 do\n"
    "    for _, kind in ipairs{'upvalue', 'global'} do\n"
    "      tried = tried + 1\n"
    "      local ok, held, gd, now = pcall(guards.hold, {{kind = kind, fn = f, index = i, env = f, name = i,\n"
    "        value = 'x'}})\n"
    "      if type(now) == 'function' or (type(now) == 'table' and tostring(now) ~= 'a value of another type') then\n"
    "        leaked = leaked + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return leaked, tried", r, 2));
  CHECK(r[0].type == MG_VINTEGER && r[0].u.i == 0);
  CHECK(mg_value_number(&r[1], NULL) == 360);
  mg_runtime_free(rt);
}

/* The string metatable is shared by every string, the library's included:
 * what a script sees of it is a look-alike. */
TEST(sandbox_string_methods_stay_the_librarys) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[3];
  CHECK_RT(rt, mg_eval(rt,
    "local mt = getmetatable('')\n"
    "pcall(function() mt.__index.upper = function() return 'hacked' end end)\n"
    "pcall(function() mt.__index = function() return function() return 'hacked' end end end)\n"
    "string.rep = function() return 'hacked' end\n"
    "return ('a'):upper(), ('ab'):rep(2), mg.autograph.to_code(function(x) return x end) ~= nil", r, 3));
  CHECK(r[0].type == MG_VSTRING && strcmp(r[0].u.str.s, "A") == 0);
  CHECK(r[1].type == MG_VSTRING && strcmp(r[1].u.str.s, "abab") == 0);
  CHECK(r[2].type == MG_VBOOLEAN && r[2].u.b);
  mg_runtime_free(rt);
}

/* debug.getinfo(level, "f") would hand out whatever function runs below:
 * the library's private closures too. */
TEST(sandbox_getinfo_gives_no_function_from_the_stack) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[3];
  CHECK_RT(rt, mg_eval(rt,
    "local found = {}\n"
    "local f = mg.func(function(x)\n"
    "  for level = 1, 30 do\n"
    "    local info = debug.getinfo(level, 'fS')\n"
    "    if not info then break end\n"
    "    if info.func then found[#found + 1] = info.func end\n"
    "  end\n"
    "  return x + 1\n"
    "end)\n"
    "f(mg.ones{2})\n"
    "local self = debug.getinfo(f.fn or print, 'S')\n"
    "return #found, debug.getinfo(print).func == print, self.what", r, 3));
  CHECK(r[0].type == MG_VINTEGER && r[0].u.i == 0);
  CHECK(r[1].type == MG_VBOOLEAN && r[1].u.b);   /* of a function it already has: harmless */
  mg_runtime_free(rt);
}

/* ---- the engine's metatables ----------------------------------------------------------------- */

TEST(sandbox_engine_metatables_are_protected) {
  int64_t before = mg_storage_bytes_live();
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[4];
  CHECK_RT(rt, mg_eval(rt,
    "local t = mg.ones{1000}\n"
    "local mt = getmetatable(t)\n"
    "local ok1 = pcall(function() mt.__gc = function() end end)\n"
    "local ok2 = pcall(function() mt.__index = nil end)\n"
    "local ok3 = pcall(setmetatable, t, {})\n"
    "local f = mg.func(function(x) return x + 1 end)\n"
    "local cf = f:concrete(mg.ones{2})\n"
    "local gm = getmetatable(cf.graph_obj)\n"
    "return type(mt), ok1 or ok2 or ok3, type(gm), (t + 1):sum():item()", r, 4));
  CHECK(r[0].type == MG_VSTRING && strcmp(r[0].u.str.s, "string") == 0);
  CHECK(r[1].type == MG_VBOOLEAN && !r[1].u.b);
  CHECK(r[2].type == MG_VSTRING && strcmp(r[2].u.str.s, "string") == 0);
  CHECK(mg_value_number(&r[3], NULL) == 2000);
  mg_runtime_free(rt);
  CHECK(mg_storage_bytes_live() == before);   /* every tensor's storage went with the runtime */
}

/* ---- nothing a script can reach hands back a privileged value ------------------------------------ */

/* forbidden[f] = "lib.name" for each C function of the table at H's top
 * (a stock Lua state's library) other than `allowed`: light C functions
 * compare by their C pointer, so the same function in the sandbox's state
 * is the same key. */
static void walker_forbid_lib(lua_State *H, lua_State *L, int forbidden, const char *lib,
                              const char *const *allowed) {
  for (lua_pushnil(H); lua_next(H, -2); lua_pop(H, 1)) {
    lua_CFunction fn = lua_tocfunction(H, -1);
    int ok = fn != NULL && lua_type(H, -2) == LUA_TSTRING;
    for (const char *const *a = allowed; ok && *a; a++)
      if (strcmp(lua_tostring(H, -2), *a) == 0) ok = 0;
    if (!ok) continue;
    lua_pushcfunction(L, fn);
    lua_pushfstring(L, "%s.%s", lib, lua_tostring(H, -2));
    lua_rawset(L, forbidden);
  }
  lua_pop(H, 1);
}

static void walker_forbid(lua_State *L, int forbidden, const char *what) {
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushstring(L, what);
  lua_rawset(L, forbidden);
}

/* The metatable a script sees for the value at idx (getmetatable's rule). */
static int walker_visible_metatable(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  if (lua_getfield(L, -1, "__metatable") != LUA_TNIL) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 1);
  return 1;
}

TEST(sandbox_nothing_reachable_is_privileged) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt,   /* make the library build its lazy parts and give out objects */
    "T = mg.ones{2} G = mg.func(function(x) return x * 2 end) C = G:concrete(T) TAPE = mg.GradientTape()\n"
    "L = mg.nn.Dense(2) L(mg.ones{1, 2}) V = mg.Variable(mg.ones{2})", NULL));
  lua_State *L = mg_runtime_lua(rt);
  int top = lua_gettop(L);
  lua_newtable(L);
  int forbidden = lua_gettop(L);
  static const char *const none[] = {NULL};
  static const char *const debug_ok[] = {"traceback", NULL};   /* getinfo: only wrapped (no 'f' for levels) */
  static const char *const os_ok[] = {"clock", "time", "date", "difftime", NULL};
  static const char *const base_bad[] = {"load", "loadfile", "dofile", NULL};
  lua_State *H = luaL_newstate();   /* a stock state: its library's C functions are the raw ones */
  REQUIRE(H);
  luaL_openlibs(H);
  lua_getglobal(H, "debug");
  walker_forbid_lib(H, L, forbidden, "debug", debug_ok);
  lua_getglobal(H, "io");
  walker_forbid_lib(H, L, forbidden, "io", none);
  luaL_getmetatable(H, LUA_FILEHANDLE);
  lua_getfield(H, -1, "__index");
  walker_forbid_lib(H, L, forbidden, "file", none);
  lua_pop(H, 1);
  lua_getglobal(H, "os");
  walker_forbid_lib(H, L, forbidden, "os", os_ok);
  lua_getglobal(H, "package");
  walker_forbid_lib(H, L, forbidden, "package", none);
  lua_newtable(H);
  for (const char *const *b = base_bad; *b; b++) {
    lua_getglobal(H, *b);
    lua_setfield(H, -2, *b);
  }
  walker_forbid_lib(H, L, forbidden, "_G", none);
  lua_close(H);
  lua_pushvalue(L, LUA_REGISTRYINDEX);
  walker_forbid(L, forbidden, "the registry");
  static const char *const mts[] = {"mg.Tensor", "mg.Graph", "mg.Tape", "mg.Kept", "mg.Prefetch", NULL};
  for (const char *const *m = mts; *m; m++) {
    luaL_getmetatable(L, *m);
    walker_forbid(L, forbidden, *m);
  }
  lua_getglobal(L, "mg");      /* the library's private environment: a library function's _ENV */
  lua_getfield(L, -1, "func");
  const char *up = NULL;
  for (int i = 1; (up = lua_getupvalue(L, -1, i)); i++) {
    if (strcmp(up, "_ENV") == 0) break;
    lua_pop(L, 1);
  }
  REQUIRE(up);
  lua_pushvalue(L, -1);
  lua_pushliteral(L, "the library's environment");
  lua_rawset(L, forbidden);
  lua_getfield(L, -1, "debug");
  walker_forbid(L, forbidden, "the library's debug");
  lua_getfield(L, -1, "package");
  walker_forbid(L, forbidden, "the library's package");
  lua_settop(L, forbidden);
  /* breadth first from the globals and the string metatable as a script sees them */
  lua_newtable(L);
  int seen = lua_gettop(L);
  lua_newtable(L);
  int queue = lua_gettop(L);
  int head = 1, tail = 0;
  lua_pushglobaltable(L);
  lua_rawseti(L, queue, ++tail);
  lua_pushliteral(L, "");
  if (walker_visible_metatable(L, -1)) lua_rawseti(L, queue, ++tail);
  lua_pop(L, 1);
  int bad = 0, visited = 0;
  while (head <= tail) {
    lua_rawgeti(L, queue, head++);
    int v = lua_gettop(L);
    lua_pushvalue(L, v);
    if (lua_rawget(L, seen) != LUA_TNIL) {
      lua_settop(L, v - 1);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, v);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    visited++;
    lua_pushvalue(L, v);
    if (lua_rawget(L, forbidden) != LUA_TNIL) {
      fprintf(stderr, "  a sandboxed script can reach %s\n", lua_tostring(L, -1));
      bad++;
    }
    lua_pop(L, 1);
    if (lua_type(L, v) == LUA_TTABLE) {
      for (lua_pushnil(L); lua_next(L, v); lua_pop(L, 1)) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, queue, ++tail);
        lua_pushvalue(L, -1);
        lua_rawseti(L, queue, ++tail);
      }
    }
    if ((lua_type(L, v) == LUA_TTABLE || lua_type(L, v) == LUA_TUSERDATA) && walker_visible_metatable(L, v))
      lua_rawseti(L, queue, ++tail);
    lua_settop(L, v - 1);
  }
  CHECK(bad == 0);
  CHECK(visited > 500);   /* it did walk the library's tables */
  lua_settop(L, top);
  mg_runtime_free(rt);
}

/* ---- what a script can and cannot load ------------------------------------------------------------- */

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  return fwrite(p, 1, n, (FILE *)ud) == n ? 0 : 1;
}

HOSTILE_TEST(sandbox_loads_lua_files_as_text_and_never_blocks, 30) {
  char dir[] = "/tmp/mg_sbx_loadXXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[300];
  /* a binary chunk in the allowed directory (the host's, or planted) is refused */
  lua_State *H = luaL_newstate();
  REQUIRE(H);
  REQUIRE(luaL_loadstring(H, "return 'binary ran'") == LUA_OK);
  snprintf(path, sizeof path, "%s/bin.lua", dir);
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  lua_dump(H, dump_writer, f, 0);
  fclose(f);
  lua_close(H);
  snprintf(path, sizeof path, "%s/text.lua", dir);
  f = fopen(path, "w");
  REQUIRE(f);
  fputs("return 'text ran'\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/pipe.lua", dir);
  REQUIRE(mkfifo(path, 0600) == 0);   /* opening it to read would wait for a writer forever */
  mg_runtime *rt = sandbox_new(dir);
  REQUIRE(rt);
  mg_value r;
  CHECK_RT(rt, mg_eval(rt, "return require 'text'", &r, 1));
  CHECK(r.type == MG_VSTRING && strcmp(r.u.str.s, "text ran") == 0);
  CHECK(mg_run_string(rt, "return require 'bin'", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "binary");
  double t0 = embed_test_now();
  CHECK(mg_run_string(rt, "return require 'pipe'", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "not a regular file");
  CHECK(mg_run_string(rt, "return mg.load('pipe.lua')", NULL) != MG_OK);
  CHECK(embed_test_now() - t0 < 5);
  /* package.searchpath would open any path (a FIFO blocks; any file's existence leaks) */
  CHECK_RT(rt, mg_eval(rt, "return package.searchpath", &r, 1));
  CHECK(r.type == MG_VNIL);
  mg_runtime_free(rt);
  unlink(path);
  snprintf(path, sizeof path, "%s/bin.lua", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/text.lua", dir);
  unlink(path);
  rmdir(dir);
}

/* ---- what a script cannot touch at all ------------------------------------------------------------- */

TEST(sandbox_denies_the_host_and_the_vm) {
  mg_runtime *rt = sandbox_new(NULL);
  REQUIRE(rt);
  mg_value r[12];
  CHECK_RT(rt, mg_eval(rt,
    "return io, os.execute, os.getenv, os.remove, loadfile, dofile, package.loadlib, debug.sethook,\n"
    "  debug.getregistry, debug.getupvalue, debug.setmetatable, string.dump and nil", r, 12));
  for (int i = 0; i < 12; i++) CHECK(r[i].type == MG_VNIL);
  CHECK(mg_run_string(rt, "load(string.dump(function() end))()", NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(rt, "setmetatable({}, {__gc = print})", NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(rt, "require 'debug'.sethook()", NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(rt, "mg.save('/tmp/x.mgw', {})", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "no file access");
  mg_runtime_free(rt);
}

/* ---- warnings reach the host -------------------------------------------------------------------- */

static char warned[4096];
static void capture_warning(void *ud, const char *s, size_t len) {
  (void)ud;
  size_t n = strlen(warned);
  snprintf(warned + n, sizeof warned - n, "%.*s\n", (int)len, s);
}

TEST(warnings_go_to_the_print_callback) {
  for (int sandbox = 0; sandbox <= 1; sandbox++) {
    mg_runtime_options o = {0};
    o.sandbox = sandbox;
    o.print = capture_warning;
    mg_runtime *rt = mg_runtime_new(&o);
    REQUIRE(rt);
    warned[0] = '\0';
    CHECK_RT(rt, mg_run_string(rt, "mg.func(print)", NULL));   /* a note: staged without AutoGraph */
    CHECK_CONTAINS(warned, "moongrad: note: ");
    CHECK_CONTAINS(warned, "is staged without AutoGraph: a C function");
    warned[0] = '\0';
    CHECK_RT(rt, mg_run_string(rt,
      "local f = mg.func(function(x) return x * 2 end, {max_traces = 1})\n"
      "f(mg.ones{1}) f(mg.ones{2})", NULL));          /* a warning: retracing past max_traces */
    CHECK_CONTAINS(warned, "moongrad: warning: ");
    warned[0] = '\0';
    CHECK_RT(rt, mg_run_string(rt, "warn('not yet') warn('@on') warn('over ', 'here')", NULL));
    CHECK(strcmp(warned, "Lua warning: over here\n") == 0);
    mg_runtime_free(rt);
  }
}
