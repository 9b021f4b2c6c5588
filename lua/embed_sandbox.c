/*
 * embed_sandbox.c — the libraries a runtime opens, and the sandbox.
 *
 * The built-in library (stdlib and AutoGraph, compiled in as text: build/gen
 * /stdlib_embed.c) is loaded through mgE_require_builtin, which keeps its
 * modules in a table of its own. An unsandboxed runtime trusts its scripts:
 * that table is package.loaded and the library runs in _G, as with the
 * moongrad program.
 *
 * A sandboxed runtime runs scripts the host did not write, and the rule is
 * that nothing they can reach gives more than the script's own powers
 * (doc/embedding.md has the threat model; tests/embed/test_sandbox.c tests
 * each line). The library needs more (AutoGraph and mg.func read and join
 * upvalues; the data readers open files under the path policy), so:
 *
 *  - the library runs in a private environment built here from pristine
 *    copies of the standard functions and tables, with its own debug subset
 *    and checked io/os, and its own package.loaded: nothing a script changes
 *    in _G, in string/table/math, or in package.loaded reaches it, and no
 *    value of it is in a table the script can reach. A script's require of a
 *    built-in name gets the library's own instance;
 *  - the string metatable (shared by every string) indexes the library's
 *    string table and is hidden behind __metatable, so `("x"):rep(2)` in
 *    library code cannot run a script's function;
 *  - the script's debug.getinfo never returns a stack level's function (that
 *    would hand out the library's private closures); load takes text only,
 *    and every Lua file a script loads (require from allowed_dir) is read as
 *    text after checking, without blocking, that it is a regular file;
 *  - the engine's metatables carry __metatable (lua/capi), so a script can
 *    neither read nor replace their __gc or __index; setmetatable refuses
 *    __gc (finalizers run with hooks off, out of the budget's reach).
 */
#include "embed.h"
#include "capi/capi.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The embedded Lua sources (build/gen/stdlib_embed.c, sorted by name). */
typedef struct mgE_source {
  const char *name, *chunkname;
  const unsigned char *bytes;
  size_t len;
} mgE_source;
extern const mgE_source mgE_sources[];
extern const int mgE_nsources;

static const char lib_env_key = 'e';     /* registry: the library's environment (a sandbox's own, or _G) */
static const char lib_loaded_key = 'l';  /* registry: the library's loaded modules */

static const mgE_source *sandbox_find(const char *name) {
  int lo = 0, hi = mgE_nsources - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(name, mgE_sources[mid].name);
    if (c == 0) return &mgE_sources[mid];
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

int mgE_is_builtin_chunk(const char *source) {
  for (int i = 0; i < mgE_nsources; i++)
    if (strcmp(mgE_sources[i].chunkname, source) == 0) return 1;
  return 0;
}

static int sandbox_is_builtin(const char *name) {
  return sandbox_find(name) || !strcmp(name, "moongrad.core") || !strcmp(name, "moongrad.embedded") ||
         !strcmp(name, "moongrad.prefetch");
}

/* ---- require "moongrad.embedded" ------------------------------------------------------- */

/* The built-in sources, for AutoGraph, which re-reads a function's source by
 * its chunk name: a built-in chunk's text comes from here, never a file. */
static int sandbox_source(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  for (int i = 0; i < mgE_nsources; i++)
    if (strcmp(mgE_sources[i].name, key) == 0 || strcmp(mgE_sources[i].chunkname, key) == 0 ||
        strcmp(mgE_sources[i].chunkname + 1, key) == 0) {
      lua_pushlstring(L, (const char *)mgE_sources[i].bytes, mgE_sources[i].len);
      return 1;
    }
  return 0;
}

static int sandbox_modules(lua_State *L) {
  lua_createtable(L, mgE_nsources, 0);
  for (int i = 0; i < mgE_nsources; i++) {
    lua_pushstring(L, mgE_sources[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int sandbox_open_embedded(lua_State *L) {
  static const luaL_Reg fns[] = {{"source", sandbox_source}, {"modules", sandbox_modules}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

/* ---- the built-in library's modules --------------------------------------------------------- */

/* Loads the built-in Lua module s as its chunk in the library's environment:
 * pushes the loader. */
static void sandbox_load_builtin(lua_State *L, const mgE_source *s) {
  if (luaL_loadbufferx(L, (const char *)s->bytes, s->len, s->chunkname, "t") != LUA_OK) lua_error(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lib_env_key);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);   /* the chunk's _ENV */
}

void mgE_require_builtin(lua_State *L, const char *name) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lib_loaded_key);
  int loaded = lua_gettop(L);
  if (lua_getfield(L, loaded, name) != LUA_TNIL) {
    lua_remove(L, loaded);
    return;
  }
  lua_pop(L, 1);
  const mgE_source *s = sandbox_find(name);
  if (s) {
    sandbox_load_builtin(L, s);
    lua_pushstring(L, name);
    lua_pushstring(L, s->chunkname + 1);
    lua_call(L, 2, 1);
  } else if (!strcmp(name, "moongrad.core") || !strcmp(name, "moongrad.prefetch")) {
    lua_pushcfunction(L, luaopen_moongrad_core);
    lua_call(L, 0, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);   /* set by the module just now (capi/data.c) */
    lua_getfield(L, -1, "moongrad.prefetch");
    lua_setfield(L, loaded, "moongrad.prefetch");
    lua_pop(L, 1);
    if (!strcmp(name, "moongrad.prefetch")) {
      lua_setfield(L, loaded, "moongrad.core");
      lua_getfield(L, loaded, name);
    }
  } else if (!strcmp(name, "moongrad.embedded")) {
    lua_pushcfunction(L, sandbox_open_embedded);
    lua_call(L, 0, 1);
  } else {
    luaL_error(L, "module '%s' not found (not part of the built-in library)", name);
  }
  if (lua_getfield(L, loaded, name) != LUA_TNIL) {   /* the module stored itself (or an alias) */
    lua_replace(L, -2);
  } else {
    lua_pop(L, 1);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, name);
  }
  lua_remove(L, loaded);
}

/* require inside the library (a sandbox's private environment): built-in modules only. */
static int sandbox_lib_require(lua_State *L) {
  mgE_require_builtin(L, luaL_checkstring(L, 1));
  return 1;
}

/* package.searchers entry of an unsandboxed runtime, right after preload:
 * the built-in library through the same loader. */
static int sandbox_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (!sandbox_find(name)) {
    lua_pushfstring(L, "no built-in module '%s'", name);
    return 1;
  }
  lua_pushcfunction(L, sandbox_lib_require);
  lua_pushstring(L, name);
  return 2;
}

/* ---- print and warnings ------------------------------------------------------------------ */

int mgE_print(lua_State *L) {
  mg_runtime *rt = mgE_rt(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  rt->print(rt->print_ud, s, len);
  return 0;
}

/* registry["mg.warn"] (read by moongrad.core's warn): the library's
 * warnings and notes go to the host's print callback, or stderr when it set
 * none (a sandboxed library has no io.stderr). */
static int sandbox_warn(lua_State *L) {
  mg_runtime *rt = mgE_rt(L);
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (rt->print) {
    rt->print(rt->print_ud, s, len);
  } else {
    fwrite(s, 1, len, stderr);
    fputc('\n', stderr);
  }
  return 0;
}

/* Lua's warn(): off until warn("@on"), as in the lua program; then each
 * message goes to the print callback (or stderr), prefixed "Lua warning: ". */
static void sandbox_warnf(void *ud, const char *msg, int tocont) {
  mg_runtime *rt = ud;
  if (!rt->warn_len && !rt->warn_cont && msg[0] == '@') {   /* a control message */
    if (!strcmp(msg, "@on")) rt->warn_on = 1;
    else if (!strcmp(msg, "@off")) rt->warn_on = 0;
    return;
  }
  rt->warn_cont = tocont;
  if (!rt->warn_on) return;
  size_t cap = sizeof rt->warn_buf;
  if (!rt->warn_len) rt->warn_len = (size_t)snprintf(rt->warn_buf, cap, "Lua warning: ");
  if (rt->warn_len < cap - 1) rt->warn_len += (size_t)snprintf(rt->warn_buf + rt->warn_len, cap - rt->warn_len, "%s", msg);
  if (rt->warn_len > cap - 1) rt->warn_len = cap - 1;
  if (tocont) return;
  if (rt->print) rt->print(rt->print_ud, rt->warn_buf, rt->warn_len);
  else fprintf(stderr, "%s\n", rt->warn_buf);
  rt->warn_len = 0;
}

/* ---- what scripts get in a sandbox ------------------------------------------------------------ */

static int sandbox_exit(lua_State *L) {
  return luaL_error(L, "os.exit is not allowed in an embedded runtime (the host decides when to stop)");
}

/* load() in the sandbox: text chunks only (binary chunks can break the VM). */
static int sandbox_load_text(lua_State *L) {
  int n = lua_gettop(L);
  if (n < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n < 3 ? 3 : n, LUA_MULTRET);
  return lua_gettop(L);
}

/* setmetatable() in the sandbox: no __gc on tables. Finalisers run with
 * hooks off, so a looping __gc could not be interrupted; an object is only
 * ever finalised if its metatable had __gc when it was set, so refusing it
 * here closes that door for good. */
static int sandbox_setmetatable(lua_State *L) {
  lua_pushliteral(L, "__gc");
  if (lua_type(L, 2) == LUA_TTABLE && lua_rawget(L, 2) != LUA_TNIL)
    return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

/* require() in the sandbox: plain module names only, so a name cannot walk
 * out of the allowed directory ("../x", "/etc/x"); a built-in name is the
 * library's own instance, whatever the script put in package.loaded. */
static int sandbox_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int ok = name[0] != '\0' && name[0] != '.' && strstr(name, "..") == NULL;
  for (const char *p = name; ok && *p; p++)
    ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
         *p == '.' || *p == '-';
  if (!ok) return luaL_error(L, "require: module name '%s' is not allowed in the sandbox", name);
  lua_settop(L, 1);
  if (sandbox_is_builtin(name)) {
    mgE_require_builtin(L, name);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* debug.getinfo for scripts: with a stack level, never the function ("f"):
 * it would hand out the library's private closures running below. */
static int sandbox_getinfo(lua_State *L) {
  int arg = lua_type(L, 1) == LUA_TTHREAD ? 2 : 1;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    const char *what = luaL_optstring(L, arg + 1, "lnSrtu");
    char keep[32];
    size_t n = 0;
    for (; *what && n < sizeof keep - 1; what++)
      if (*what != 'f') keep[n++] = *what;
    keep[n] = '\0';
    lua_settop(L, arg);
    lua_pushstring(L, keep);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* Opens fname for reading without blocking and only if it is a regular file
 * (a FIFO or a device would block in open or read forever): the fd, or -1
 * with errno (EINVAL: not a regular file). */
static int sandbox_open_regular(const char *fname) {
  int fd = open(fname, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    errno = EINVAL;
    return -1;
  }
  return fd;
}

/* package.searchers[2] in the sandbox: Lua modules from package.path (the
 * allowed directory), read as text, regular files only. */
static int sandbox_lua_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *path = lua_tostring(L, -1);
  if (!path) return luaL_error(L, "package.path must be a string");
  const char *mod = luaL_gsub(L, name, ".", "/");
  for (const char *p = path; *p;) {
    const char *semi = strchr(p, ';');
    size_t n = semi ? (size_t)(semi - p) : strlen(p);
    lua_pushlstring(L, p, n);
    const char *fname = luaL_gsub(L, lua_tostring(L, -1), "?", mod);
    p += n + (semi != NULL);
    int fd = n ? sandbox_open_regular(fname) : -1;
    if (fd < 0) {
      if (n && errno == EINVAL) return luaL_error(L, "require: '%s' is not a regular file", fname);
      lua_pop(L, 2);
      continue;
    }
    luaL_Buffer src;
    luaL_buffinit(L, &src);
    for (;;) {
      char *dst = luaL_prepbuffer(&src);
      ssize_t got = read(fd, dst, LUAL_BUFFERSIZE);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      luaL_addsize(&src, (size_t)got);
    }
    close(fd);
    luaL_pushresult(&src);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    lua_pushfstring(L, "@%s", fname);
    if (luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t") != LUA_OK)
      return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, fname, lua_tostring(L, -1));
    lua_pushstring(L, fname);
    return 2;
  }
  lua_pushfstring(L, "\n\tno file for '%s' in the allowed directory", name);
  return 1;
}

/* ---- the library's file and process functions in a sandbox ----------------------------------- */

mg_status mgE_path_policy(void *ud, const char *fname, const char *path, int flags) {
  mg_runtime *rt = ud;
  if (!rt->allowed)
    return mg_seterror(MG_EARG, "%s: '%s' is outside the sandbox's allowed directory (the host allowed none: "
                       "no file access)", fname, path);
  return mg_path_within(rt->allowed, fname, path, flags);
}

/* The library's io.open, os.remove and os.rename in a sandbox (its
 * plot_model, CSVLogger, CSV and IDX readers use them): the same policy as
 * the engine's file functions, checked before the real function (upvalue 1)
 * runs; io.open reads regular files only (a FIFO would block). The error
 * points at the library line that made the call. */
static int sandbox_checked_call(lua_State *L, const char *fname, int nfollow, int npaths) {
  for (int i = 1; i <= npaths; i++) {
    const char *path = luaL_checkstring(L, i);
    struct stat sb;
    mg_status st = mgE_path_policy(mgE_rt(L), fname, path, nfollow ? MG_PATH_NOFOLLOW : 0);
    if (!st && !nfollow && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
      st = mg_seterror(MG_EIO, "%s: '%s' is not a regular file", fname, path);
    if (st) {
      luaL_where(L, 2);
      lua_pushstring(L, mg_last_error());
      lua_concat(L, 2);
      return lua_error(L);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}
static int sandbox_io_open(lua_State *L) { return sandbox_checked_call(L, "io.open", 0, 1); }
static int sandbox_os_remove(lua_State *L) { return sandbox_checked_call(L, "os.remove", 1, 1); }
static int sandbox_os_rename(lua_State *L) { return sandbox_checked_call(L, "os.rename", 1, 2); }

/* io.popen and os.execute for the built-in library in a sandbox: no
 * programs run (plot_model's `dot`, gzip for .gz data sets). */
static int sandbox_no_process(lua_State *L) {
  const char *cmd = lua_tostring(L, 1);
  return luaL_error(L, "%s: running programs is not allowed in the sandbox (command: %s)",
                    lua_tostring(L, lua_upvalueindex(1)), cmd ? cmd : "none");
}

/* ---- building the environments ----------------------------------------------------------------- */

/* A new table with the fields `keep` (NULL-terminated; all when NULL) of the table at idx. */
static void sandbox_copy(lua_State *L, int idx, const char *const *keep) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  if (keep) {
    for (; *keep; keep++) {
      lua_getfield(L, idx, *keep);
      lua_setfield(L, -2, *keep);
    }
    return;
  }
  for (lua_pushnil(L); lua_next(L, idx);) {   /* ..., copy, key, value */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);                        /* leaves the key for lua_next */
  }
}

/* io.stdout / io.write of the library in a sandbox (Keras-style progress
 * lines of fit, callbacks): line-buffered into the host's print callback,
 * or the process's stdout when the host set none. */
static int sandbox_out_write(lua_State *L) {
  mg_runtime *rt = mgE_rt(L);
  int first = lua_istable(L, 1) ? 2 : 1;   /* io.stdout:write(...) or io.write(...) */
  for (int i = first; i <= lua_gettop(L); i++) {
    size_t len;
    const char *s = luaL_checklstring(L, i, &len);
    if (!rt->print) {
      fwrite(s, 1, len, stdout);
      continue;
    }
    for (size_t k = 0; k < len; k++) {
      if (s[k] == '\n' || rt->out_len == sizeof rt->out_buf) {
        rt->print(rt->print_ud, rt->out_buf, rt->out_len);
        rt->out_len = 0;
        if (s[k] == '\n') continue;
      }
      rt->out_buf[rt->out_len++] = s[k];
    }
  }
  lua_settop(L, 1);
  return 1;
}

static int sandbox_out_flush(lua_State *L) {
  mg_runtime *rt = mgE_rt(L);
  if (!rt->print) fflush(stdout);
  return 0;
}

static void sandbox_lib_io(lua_State *L) {
  static const luaL_Reg out_fns[] = {{"write", sandbox_out_write}, {"flush", sandbox_out_flush}, {NULL, NULL}};
  lua_createtable(L, 0, 4);
  luaL_newlib(L, out_fns);
  lua_setfield(L, -2, "stdout");
  lua_pushcfunction(L, sandbox_out_write);
  lua_setfield(L, -2, "write");
  lua_pushcfunction(L, luaopen_io);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "open");
  lua_pushcclosure(L, sandbox_io_open, 1);
  lua_setfield(L, -3, "open");
  lua_pop(L, 1);
  lua_pushliteral(L, "io.popen");
  lua_pushcclosure(L, sandbox_no_process, 1);
  lua_setfield(L, -2, "popen");
}

static const char *const os_keep[] = {"clock", "time", "date", "difftime", NULL};

static void sandbox_lib_os(lua_State *L) {
  lua_pushcfunction(L, luaopen_os);
  lua_call(L, 0, 1);
  sandbox_copy(L, -1, os_keep);
  lua_getfield(L, -2, "remove");
  lua_pushcclosure(L, sandbox_os_remove, 1);
  lua_setfield(L, -2, "remove");
  lua_getfield(L, -2, "rename");
  lua_pushcclosure(L, sandbox_os_rename, 1);
  lua_setfield(L, -2, "rename");
  lua_pushliteral(L, "os.execute");
  lua_pushcclosure(L, sandbox_no_process, 1);
  lua_setfield(L, -2, "execute");
  lua_remove(L, -2);
}

/* The library's private environment (a sandbox): pristine standard
 * functions and tables, taken before any script runs, plus what the library
 * alone needs. Leaves nothing on the stack. */
static void sandbox_lib_env(lua_State *L) {
  static const char *const base[] = {"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
                                     "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable",
                                     "tonumber", "tostring", "type", "collectgarbage", "_VERSION", NULL};
  static const char *const libs[] = {"string", "table", "math", "utf8", "coroutine", NULL};
  /* getlocal: nn/class.lua reads a method's first parameter name (debug.getlocal(f, 1)) to guard
   * methods against dot calls; the library never calls it with a stack level. */
  static const char *const debug_keep[] = {"getinfo", "getupvalue", "setupvalue", "upvalueid", "upvaluejoin",
                                           "traceback", "getlocal", NULL};
  lua_pushglobaltable(L);
  int g = lua_gettop(L);
  sandbox_copy(L, g, base);
  int env = lua_gettop(L);
  for (const char *const *k = libs; *k; k++) {   /* the originals: scripts get copies */
    lua_getfield(L, g, *k);
    lua_setfield(L, env, *k);
  }
  lua_getfield(L, g, "xpcall");
  lua_pushcclosure(L, mgE_xpcall, 1);
  lua_setfield(L, env, "xpcall");
  lua_getfield(L, g, "load");
  lua_pushcclosure(L, sandbox_load_text, 1);
  lua_setfield(L, env, "load");
  lua_getfield(L, g, "print");
  lua_setfield(L, env, "print");
  lua_pushcfunction(L, sandbox_lib_require);
  lua_setfield(L, env, "require");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
  lua_pushcfunction(L, luaopen_debug);
  lua_call(L, 0, 1);
  sandbox_copy(L, -1, debug_keep);
  lua_setfield(L, env, "debug");
  lua_pop(L, 1);
  sandbox_lib_io(L);
  lua_setfield(L, env, "io");
  sandbox_lib_os(L);
  lua_setfield(L, env, "os");
  lua_getfield(L, g, "package");   /* its own package: loaded, no searchers, no C loading */
  lua_createtable(L, 0, 8);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lib_loaded_key);
  lua_setfield(L, -2, "loaded");
  lua_newtable(L);
  lua_setfield(L, -2, "preload");
  lua_newtable(L);
  lua_setfield(L, -2, "searchers");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_getfield(L, -2, "config");
  lua_setfield(L, -2, "config");
  lua_getfield(L, -2, "searchpath");
  lua_setfield(L, -2, "searchpath");
  lua_setfield(L, env, "package");
  lua_pop(L, 1);
  lua_pushvalue(L, env);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lib_env_key);
  lua_settop(L, g - 1);
}

/* Scripts get copies of string, table, math, utf8 and coroutine (so what
 * they change never reaches the library), and the string metatable, which
 * every string shares, indexes the library's string table and hides itself
 * behind __metatable. */
static void sandbox_script_tables(lua_State *L) {
  static const char *const libs[] = {"string", "table", "math", "utf8", "coroutine", NULL};
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  for (const char *const *k = libs; *k; k++) {
    lua_getglobal(L, *k);
    sandbox_copy(L, -1, NULL);
    lua_pushvalue(L, -1);
    lua_setglobal(L, *k);
    lua_setfield(L, -3, *k);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_createtable(L, 0, 1);   /* what getmetatable("") shows: a harmless look-alike */
  lua_getglobal(L, "string");
  lua_setfield(L, -2, "__index");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
}

static void sandbox_open(lua_State *L, const mg_runtime_options *o) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
                                  {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},    {NULL, NULL}};
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");   /* LUA_PATH & co. do not apply */
  for (const luaL_Reg *l = libs; l->func; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  if (o->print) {
    lua_pushcfunction(L, mgE_print);
    lua_setglobal(L, "print");
  }
  sandbox_lib_env(L);          /* before anything of the script's is set up */
  sandbox_script_tables(L);
  lua_pushcfunction(L, luaopen_os);
  lua_call(L, 0, 1);
  sandbox_copy(L, -1, os_keep);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "os");
  lua_pop(L, 1);
  lua_setglobal(L, "os");
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);    /* the script's debug: a traceback and getinfo without stack functions */
  lua_pushcfunction(L, luaopen_debug);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "traceback");
  lua_setfield(L, -3, "traceback");
  lua_getfield(L, -1, "getinfo");
  lua_pushcclosure(L, sandbox_getinfo, 1);
  lua_setfield(L, -3, "getinfo");
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "debug");
  lua_pop(L, 1);
  lua_setglobal(L, "debug");
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  lua_getglobal(L, "load");
  lua_pushcclosure(L, sandbox_load_text, 1);
  lua_setglobal(L, "load");
  lua_getglobal(L, "require");
  lua_pushcclosure(L, sandbox_require, 1);
  lua_setglobal(L, "require");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, sandbox_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_getglobal(L, "package");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadlib");
  lua_pushnil(L);
  lua_setfield(L, -2, "searchpath");   /* it opens any path: a FIFO blocks, a file's existence leaks */
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  if (o->allowed_dir) lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", o->allowed_dir, o->allowed_dir);
  else lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "searchers");   /* preload, then Lua files as text; no C searchers */
  lua_pushcfunction(L, sandbox_lua_searcher);
  lua_rawseti(L, -2, 2);
  lua_pushnil(L);
  lua_rawseti(L, -2, 4);
  lua_pushnil(L);
  lua_rawseti(L, -2, 3);
  lua_pop(L, 2);
}

/* An unsandboxed runtime: the standard libraries, os.exit refused unless
 * allowed, Lua finalizers bounded by the budget, the library in _G. */
static void sandbox_open_full(lua_State *L, const mg_runtime_options *o) {
  luaL_openlibs(L);
  if (o->print) {
    lua_pushcfunction(L, mgE_print);
    lua_setglobal(L, "print");
  }
  if (o->module_path) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s;%s", o->module_path, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
  }
  if (!o->allow_exit) {
    lua_getglobal(L, "os");
    lua_pushcfunction(L, sandbox_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
  }
  mgE_budget_wrap_finalizers(L);
  lua_pushglobaltable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lib_env_key);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lib_loaded_key);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_moongrad_core);
  lua_setfield(L, -2, "moongrad.core");
  lua_pushcfunction(L, sandbox_open_embedded);
  lua_setfield(L, -2, "moongrad.embedded");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = n; i >= 2; i--) {      /* shift 2..n up by one */
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, sandbox_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

void mgE_open_libs(lua_State *L, const mg_runtime_options *o) {
  mg_runtime *rt = mgE_rt(L);
  if (o->sandbox) sandbox_open(L, o);
  else sandbox_open_full(L, o);
  lua_getglobal(L, "xpcall");
  lua_pushcclosure(L, mgE_xpcall, 1);
  lua_setglobal(L, "xpcall");
  lua_setwarnf(L, sandbox_warnf, rt);
  lua_pushcfunction(L, sandbox_warn);
  lua_setfield(L, LUA_REGISTRYINDEX, "mg.warn");
}
