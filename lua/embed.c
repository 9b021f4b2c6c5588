/*
 * embed.c — the host embedding API (lua/include/moongrad.h).
 *
 * A runtime owns one Lua state whose allocator is ours: it counts the Lua
 * heap (the memory limit) and forwards to the host's allocator, and its user
 * data pointer is the runtime itself, so every C function of this file finds
 * its runtime with lua_getallocf and no registry lookup. Every entry point
 * runs its work as a light C function under lua_pcall with a message handler
 * that adds the traceback (lua.c's docall pattern); nothing can longjmp into
 * the host. The budget is a count hook (every 1,000 instructions) that stays
 * armed, firing on every instruction, once the budget is spent, so a script's
 * pcall cannot swallow it for long. The stdlib comes from the generated
 * stdlib_embed.c through a package searcher placed right after preload.
 *
 * A sandboxed runtime installs the engine's per-thread file-access policy
 * (mg_set_path_policy) around each host call, so every engine file function
 * (mg.save/load, mg.io.*, and what is built on them) must stay inside
 * allowed_dir; host callbacks run without it (they are the host's code).
 *
 * The per-frame path (mg_invoke_ref with number or tensor arguments) pushes
 * light C functions and light userdata only: the only Lua allocations are the
 * boxes of tensor arguments and whatever the script itself allocates.
 */
#include "moongrad.h"
#include "capi/capi.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The embedded Lua sources (build/gen/stdlib_embed.c, sorted by name). */
typedef struct mgE_source {
  const char *name, *chunkname;
  const unsigned char *bytes;
  size_t len;
} mgE_source;
extern const mgE_source mgE_sources[];
extern const int mgE_nsources;

#define EMBED_ERRMAX 8192
#define EMBED_HOOK_COUNT 1000
#define EMBED_NAMEMAX 256

static const char embed_anchor_key = 'a';   /* registry: string results of the last call */
static const char embed_stdenv_key = 'e';   /* registry: the built-in library's globals in a sandbox */

struct mg_runtime {
  lua_State *L;
  lua_State *cur;            /* the thread running a host callback: nested calls use it */
  mg_alloc_fn alloc;
  void *alloc_ud;
  size_t heap, peak, memory_limit, tensor_limit;
  uint64_t instruction_limit;
  double time_limit;
  uint64_t used;             /* instructions of the current host call */
  double deadline;
  int depth;                 /* host calls in progress (nested through callbacks) */
  int exhausted;             /* this host call's budget is spent */
  int limit_hit;             /* the last failed allocation was refused by memory_limit */
  int tensor_hit;            /* the tensor memory limit raised an error */
  mg_print_fn print;
  void *print_ud;
  int sandbox;
  char *allowed;             /* sandbox: realpath of allowed_dir (host allocator), or NULL: no file access */
  size_t allowed_size;
  char err[EMBED_ERRMAX];
};

/* What one entry point asks its protected body to do. */
typedef struct embed_job {
  mg_runtime *rt;
  const char *name;          /* function or global path, or chunk name */
  const char *code;          /* source or file path */
  const mg_runtime_options *opt;
  mg_ref ref;
  const mg_value *args;
  int nargs;
  mg_value *results;
  int nresults, filled;      /* results[0..filled) hold references to drop on failure */
  mg_callback fn;
  void *ud;
  mg_status hint;            /* status to report if the body fails (MG_EIO for files) */
} embed_job;

static mg_runtime *embed_rt(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

static double embed_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- memory ------------------------------------------------------------------------ */

static void *embed_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mg_runtime *rt = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    if (ptr) {
      rt->heap -= old;
      if (rt->alloc) rt->alloc(rt->alloc_ud, ptr, osize, 0);
      else free(ptr);
    }
    return NULL;
  }
  if (nsize > old && rt->memory_limit && rt->heap - old + nsize > rt->memory_limit) {
    rt->limit_hit = 1;   /* Lua collects and retries once, then raises "not enough memory" */
    return NULL;
  }
  void *p = rt->alloc ? rt->alloc(rt->alloc_ud, ptr, osize, nsize) : realloc(ptr, nsize);
  if (!p) return NULL;
  rt->heap = rt->heap - old + nsize;
  if (rt->heap > rt->peak) rt->peak = rt->heap;
  return p;
}

/* The runtime's own structures use the host's allocator too. */
static void *embed_malloc(mg_alloc_fn alloc, void *ud, size_t n) {
  return alloc ? alloc(ud, NULL, 0, n) : malloc(n);
}

static void embed_mfree(mg_alloc_fn alloc, void *ud, void *p, size_t n) {
  if (!p) return;
  if (alloc) alloc(ud, p, n, 0);
  else free(p);
}

/* ---- budget --------------------------------------------------------------------------- */

static int embed_mask(const mg_runtime *rt) {
  return (rt->instruction_limit || rt->time_limit > 0 ? LUA_MASKCOUNT : 0) |
         (rt->tensor_limit ? LUA_MASKCALL : 0);
}

static void embed_hook(lua_State *L, lua_Debug *ar) {
  mg_runtime *rt = embed_rt(L);
  if (!rt->depth) return;                      /* finalisers between host calls */
  if (ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKTAILCALL) {
    if (rt->tensor_limit && (size_t)mg_storage_bytes_live() > rt->tensor_limit) {
      lua_gc(L, LUA_GCCOLLECT);                /* garbage tensors may be waiting for the collector */
      long long live = (long long)mg_storage_bytes_live();
      if ((size_t)live > rt->tensor_limit) {
        char msg[160];   /* lua_pushfstring has no %lld */
        rt->tensor_hit = 1;
        snprintf(msg, sizeof msg, "tensor memory limit of %zu bytes exceeded (%lld bytes live)", rt->tensor_limit,
                 live);
        luaL_error(L, "%s", msg);
      }
    }
    return;
  }
  if (ar->event != LUA_HOOKCOUNT) return;
  if (!rt->exhausted) {
    if (lua_gethookcount(L) == 1) {            /* a coroutine armed by an earlier call */
      lua_sethook(L, embed_hook, embed_mask(rt), EMBED_HOOK_COUNT);
      return;
    }
    rt->used += EMBED_HOOK_COUNT;
    if (rt->instruction_limit && rt->used > rt->instruction_limit) rt->exhausted = 1;
    else if (rt->time_limit > 0 && embed_now() > rt->deadline) rt->exhausted = 2;
    else return;
  }
  lua_sethook(L, embed_hook, embed_mask(rt), 1);  /* fire again at once if a pcall catches it */
  char msg[96];
  if (rt->exhausted == 1)
    snprintf(msg, sizeof msg, "instruction budget of %llu exceeded", (unsigned long long)rt->instruction_limit);
  else
    snprintf(msg, sizeof msg, "time budget of %g s exceeded", rt->time_limit);
  luaL_error(L, "%s", msg);
}

void mg_runtime_set_budget(mg_runtime *rt, uint64_t instruction_limit, double time_limit) {
  rt->instruction_limit = instruction_limit;
  rt->time_limit = time_limit;
  lua_sethook(rt->L, embed_mask(rt) ? embed_hook : NULL, embed_mask(rt), EMBED_HOOK_COUNT);
}

/* ---- values ------------------------------------------------------------------------------ */

void mg_value_clear(mg_value *v) {
  if (!v) return;
  if (v->type == MG_VTENSOR) mg_tensor_release(v->u.t);
  *v = mg_vnil();
}

double mg_value_number(const mg_value *v, int *ok) {
  int good = 1;
  double d = 0;
  switch (v->type) {
  case MG_VINTEGER: d = (double)v->u.i; break;
  case MG_VNUMBER: d = v->u.n; break;
  case MG_VBOOLEAN: d = v->u.b; break;
  default: good = 0;
  }
  if (ok) *ok = good;
  return d;
}

/* Pushes a new box holding a new reference to t. The box exists before the
 * reference is taken, so a memory error here leaks nothing. */
static void embed_pushtensor(lua_State *L, mg_tensor *t) {
  mgL_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  luaL_setmetatable(L, MGL_TENSOR);
  mg_tensor_retain(t);
  b->t = t;
}

/* The tensor in the box at idx (NULL when it is not a tensor box). */
static mgL_box *embed_testbox(lua_State *L, int idx) { return luaL_testudata(L, idx, MGL_TENSOR); }

static void embed_pushvalue(lua_State *L, const mg_value *v, int argn) {
  switch (v->type) {
  case MG_VNIL: lua_pushnil(L); break;
  case MG_VBOOLEAN: lua_pushboolean(L, v->u.b); break;
  case MG_VINTEGER: lua_pushinteger(L, (lua_Integer)v->u.i); break;
  case MG_VNUMBER: lua_pushnumber(L, v->u.n); break;
  case MG_VSTRING:
    if (!v->u.str.s) luaL_error(L, "argument %d: NULL string", argn);
    lua_pushlstring(L, v->u.str.s, v->u.str.len == (size_t)-1 ? strlen(v->u.str.s) : v->u.str.len);
    break;
  case MG_VTENSOR:
    if (!v->u.t) luaL_error(L, "argument %d: NULL tensor", argn);
    embed_pushtensor(L, v->u.t);
    break;
  default: luaL_error(L, "argument %d: a value of type %d cannot be passed to Lua", argn, (int)v->type);
  }
}

/* Converts the Lua value at idx into a result the host owns (see moongrad.h). */
static void embed_tovalue(lua_State *L, int idx, mg_value *out, int slot) {
  mgL_box *b;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: *out = mg_vnil(); return;
  case LUA_TBOOLEAN: *out = mg_vboolean(lua_toboolean(L, idx)); return;
  case LUA_TNUMBER:
    *out = lua_isinteger(L, idx) ? mg_vinteger((int64_t)lua_tointeger(L, idx)) : mg_vnumber(lua_tonumber(L, idx));
    return;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &embed_anchor_key);  /* keep it alive until the next call */
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, slot + 1);
    lua_pop(L, 1);
    *out = mg_vlstring(s, len);
    return;
  }
  case LUA_TUSERDATA:
    if ((b = embed_testbox(L, idx)) && b->t) {
      mg_tensor_retain(b->t);
      *out = mg_vtensor(b->t);
      return;
    }
    /* fall through */
  default:
    out->type = MG_VOTHER;
    out->u.str.s = luaL_typename(L, idx);
    out->u.str.len = strlen(out->u.str.s);
  }
}

/* Stores the n values from idx on as the job's results. */
static void embed_results(lua_State *L, embed_job *j, int idx, int n) {
  for (int i = 0; i < j->nresults; i++) {
    if (i < n) embed_tovalue(L, idx + i, &j->results[i], i);
    j->filled = i + 1;
  }
}

/* ---- names: "a", "a.b.c", "a.b:m" ------------------------------------------------------ */

/* Pushes the value at `name` (and, for "a:m", the object a below it; *nself
 * is then 1). Raises a clear error when a part is missing. */
static void embed_resolve(lua_State *L, const char *name, int *nself, const char *what) {
  const char *p = name;
  *nself = 0;
  if (!*name) luaL_error(L, "%s: empty name", what);
  size_t seglen = strcspn(p, ".:");
  lua_pushglobaltable(L);
  lua_pushlstring(L, p, seglen);
  lua_gettable(L, -2);
  lua_remove(L, -2);
  if (lua_isnil(L, -1) && p[seglen]) {     /* not a global: a loaded module? */
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushlstring(L, p, seglen);
    lua_gettable(L, -2);
    lua_remove(L, -2);
  }
  for (p += seglen; *p; p += seglen) {
    int is_method = *p == ':';
    p++;
    seglen = strcspn(p, ".:");
    if (is_method && p[seglen])
      luaL_error(L, "%s: '%s': ':' may only come before the last name", what, name);
    if (!lua_istable(L, -1)) {
      const char *tname = luaL_typename(L, -1);
      if (!luaL_getmetafield(L, -1, "__index"))
        luaL_error(L, "%s: '%s': '%s' is %s, not a table", what, name,
                   lua_pushlstring(L, name, (size_t)(p - 1 - name)), tname);
      lua_pop(L, 1);   /* the __index metafield: indexing works */
    }
    lua_pushlstring(L, p, seglen);
    lua_gettable(L, -2);
    if (is_method) {
      lua_insert(L, -2);                      /* function, self */
      *nself = 1;
    } else {
      lua_remove(L, -2);
    }
  }
}

static void embed_checkcallable(lua_State *L, int idx, const char *name, const char *what) {
  if (lua_type(L, idx) == LUA_TFUNCTION) return;
  if (luaL_getmetafield(L, idx, "__call")) {
    lua_pop(L, 1);
    return;
  }
  luaL_error(L, "%s: '%s' is not a function (it is %s)", what, name, luaL_typename(L, idx));
}

/* ---- running protected bodies --------------------------------------------------------- */

/* Message handler: the message plus a traceback (as lua.c). */
static int embed_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  mg_runtime *rt = embed_rt(L);
  if (msg == NULL) {   /* no __tostring once a limit fired: hooks may be off (see embed_xpcall) */
    if (!rt->exhausted && !rt->tensor_hit && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
    else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The sandbox's file-access policy (mg_path_policy_fn): inside allowed_dir,
 * resolved; with no allowed_dir, nothing. */
static mg_status embed_path_policy(void *ud, const char *fname, const char *path, int flags) {
  mg_runtime *rt = ud;
  if (!rt->allowed)
    return mg_seterror(MG_EARG, "%s: '%s' is outside the sandbox's allowed directory (the host allowed none: "
                       "no file access)", fname, path);
  return mg_path_within(rt->allowed, fname, path, flags);
}

static mg_status embed_fail(mg_runtime *rt, mg_status st, const char *msg) {
  snprintf(rt->err, sizeof rt->err, "%s", msg);
  mg_seterror(st, "%s", rt->err);
  return st;
}

/* Runs body(job) protected on the runtime's current thread; turns a failure
 * into a status and rt->err, dropping any results taken so far. */
static mg_status embed_run(mg_runtime *rt, lua_CFunction body, embed_job *j) {
  lua_State *L = rt->cur ? rt->cur : rt->L;
  j->rt = rt;
  j->filled = 0;
  for (int i = 0; i < j->nresults; i++) j->results[i] = mg_vnil();
  rt->err[0] = '\0';
  if (!lua_checkstack(L, 4)) return embed_fail(rt, MG_ENOMEM, "not enough memory (Lua stack)");
  int base = lua_gettop(L);
  mg_path_policy_fn pfn = NULL;
  void *pud = NULL;
  if (rt->sandbox) mg_set_path_policy(embed_path_policy, rt, &pfn, &pud);
  if (rt->depth++ == 0) {
    rt->used = 0;
    rt->exhausted = rt->limit_hit = rt->tensor_hit = 0;
    rt->deadline = rt->time_limit > 0 ? embed_now() + rt->time_limit : 0;
  }
  lua_pushcfunction(L, embed_msgh);
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, j);
  int st = lua_pcall(L, 1, 0, base + 1);
  mg_status rs = MG_OK;
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (st == LUA_ERRMEM || (st == LUA_ERRERR && rt->limit_hit)) rs = rt->limit_hit ? MG_ELIMIT : MG_ENOMEM;
    else if (rt->exhausted || rt->tensor_hit) rs = MG_ELIMIT;
    else rs = j->hint ? j->hint : MG_ESCRIPT;
    if (rs == MG_ELIMIT && rt->limit_hit && (st == LUA_ERRMEM || st == LUA_ERRERR))
      snprintf(rt->err, sizeof rt->err, "not enough memory (the runtime's memory limit of %zu bytes was reached)",
               rt->memory_limit);
    else
      snprintf(rt->err, sizeof rt->err, "%s", msg ? msg : "(error object is not a string)");
    mg_seterror(rs, "%s", rt->err);
    for (int i = 0; i < j->filled; i++) mg_value_clear(&j->results[i]);
  }
  lua_settop(L, base);
  if (rt->sandbox) mg_set_path_policy(pfn, pud, NULL, NULL);
  if (--rt->depth == 0 && rt->exhausted)
    lua_sethook(L, embed_hook, embed_mask(rt), EMBED_HOOK_COUNT);  /* disarm the every-instruction hook */
  return rs;
}

/* ---- the stdlib searcher and the sandbox ---------------------------------------------- */

static const mgE_source *embed_find(const char *name) {
  int lo = 0, hi = mgE_nsources - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(name, mgE_sources[mid].name);
    if (c == 0) return &mgE_sources[mid];
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

/* package.searchers entry: the built-in Lua library, as the file searcher
 * would return it (the loader gets the name and the chunk name). */
static int embed_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const mgE_source *s = embed_find(name);
  if (!s) {
    lua_pushfstring(L, "no built-in module '%s'", name);
    return 1;
  }
  if (luaL_loadbufferx(L, (const char *)s->bytes, s->len, s->chunkname, "t") != LUA_OK) return lua_error(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &embed_stdenv_key) == LUA_TTABLE) {
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);   /* the chunk's _ENV: see embed_open_sandbox */
  } else {
    lua_pop(L, 1);
  }
  lua_pushstring(L, s->chunkname + 1);
  return 2;
}

/* require "moongrad.embedded": the built-in sources, for tools (AutoGraph)
 * that re-read a function's source by its chunk name. */
static int embed_source(lua_State *L) {
  const char *key = luaL_checkstring(L, 1);
  for (int i = 0; i < mgE_nsources; i++)
    if (strcmp(mgE_sources[i].name, key) == 0 || strcmp(mgE_sources[i].chunkname, key) == 0 ||
        strcmp(mgE_sources[i].chunkname + 1, key) == 0) {
      lua_pushlstring(L, (const char *)mgE_sources[i].bytes, mgE_sources[i].len);
      return 1;
    }
  return 0;
}

static int embed_modules(lua_State *L) {
  lua_createtable(L, mgE_nsources, 0);
  for (int i = 0; i < mgE_nsources; i++) {
    lua_pushstring(L, mgE_sources[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int embed_open_embedded(lua_State *L) {
  static const luaL_Reg fns[] = {{"source", embed_source}, {"modules", embed_modules}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

static int embed_exit(lua_State *L) {
  return luaL_error(L, "os.exit is not allowed in an embedded runtime (the host decides when to stop)");
}

static int embed_print(lua_State *L) {
  mg_runtime *rt = embed_rt(L);
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

/* load() in the sandbox: text chunks only (binary chunks can break the VM). */
static int embed_load_text(lua_State *L) {
  int n = lua_gettop(L);
  if (n < 3) lua_settop(L, 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n < 3 ? 3 : n, LUA_MULTRET);
  return lua_gettop(L);
}

/* An error raised by a hook (the budget, the tensor limit) runs the message
 * handlers with hooks off, so a Lua handler that loops would never be
 * stopped: xpcall's handler is skipped once a limit has fired. */
static int embed_xpcall_handler(lua_State *L) {
  mg_runtime *rt = embed_rt(L);
  if (rt->exhausted || rt->tensor_hit) return 1;   /* the error as it is */
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static int embed_xpcall(lua_State *L) {
  luaL_checkany(L, 2);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, embed_xpcall_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* setmetatable() in the sandbox: no __gc on tables. Finalisers run with
 * hooks off, so a looping __gc could not be interrupted; an object is only
 * ever finalised if its metatable had __gc when it was set, so refusing it
 * here closes that door for good. */
static int embed_setmetatable_checked(lua_State *L) {
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
 * out of the allowed directory ("../x", "/etc/x"). */
static int embed_require_checked(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int ok = name[0] != '\0' && name[0] != '.' && strstr(name, "..") == NULL;
  for (const char *p = name; ok && *p; p++)
    ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
         *p == '.' || *p == '-';
  if (!ok) return luaL_error(L, "require: module name '%s' is not allowed in the sandbox", name);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* The built-in library's io.open, os.remove and os.rename in a sandbox (its
 * plot_model, CSVLogger, CSV and IDX readers use them): the same policy as
 * the engine's file functions, checked before the real function (upvalue 1)
 * runs. The error points at the library line that made the call. */
static int embed_checked_call(lua_State *L, const char *fname, int nfollow, int npaths) {
  for (int i = 1; i <= npaths; i++)
    if (embed_path_policy(embed_rt(L), fname, luaL_checkstring(L, i), nfollow ? MG_PATH_NOFOLLOW : 0)) {
      luaL_where(L, 2);
      lua_pushstring(L, mg_last_error());
      lua_concat(L, 2);
      return lua_error(L);
    }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}
static int embed_io_open(lua_State *L) { return embed_checked_call(L, "io.open", 0, 1); }
static int embed_os_remove(lua_State *L) { return embed_checked_call(L, "os.remove", 1, 1); }
static int embed_os_rename(lua_State *L) { return embed_checked_call(L, "os.rename", 1, 2); }

/* io.popen and os.execute for the built-in library in a sandbox: no
 * programs run (plot_model's `dot`, gzip for .gz data sets). */
static int embed_no_process(lua_State *L) {
  const char *cmd = lua_tostring(L, 1);
  return luaL_error(L, "%s: running programs is not allowed in the sandbox (command: %s)",
                    lua_tostring(L, lua_upvalueindex(1)), cmd ? cmd : "none");
}

/* Opens lib with `open`, keeps only `keep` (NULL-terminated) and makes the
 * result both the global and package.loaded[name]. */
static void embed_subset(lua_State *L, const char *name, lua_CFunction open, const char *const *keep) {
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  lua_newtable(L);
  for (; *keep; keep++) {
    lua_getfield(L, -2, *keep);
    lua_setfield(L, -2, *keep);
  }
  lua_remove(L, -2);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  lua_setglobal(L, name);
}

static void embed_open_sandbox(lua_State *L, const mg_runtime_options *o) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
                                  {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},    {NULL, NULL}};
  static const char *const os_keep[] = {"clock", "time", "date", "difftime", NULL};
  static const char *const debug_keep[] = {"traceback", "getinfo", NULL};
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");   /* LUA_PATH & co. do not apply */
  for (const luaL_Reg *l = libs; l->func; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  embed_subset(L, "os", luaopen_os, os_keep);
  /* The built-in library (AutoGraph, mg.func) needs the whole debug library
   * (upvalues) and writes its notes to io.stderr; scripts get neither. Its
   * modules run with an environment that has those two and reads and writes
   * everything else in _G. Its io has stderr, a checked open and a popen
   * that refuses; its os adds a checked remove/rename and a refusing
   * execute (see embed_checked_call). */
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, luaopen_debug);
  lua_call(L, 0, 1);
  lua_setfield(L, -2, "debug");
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, luaopen_io);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "stderr");
  lua_setfield(L, -3, "stderr");
  lua_getfield(L, -1, "open");
  lua_pushcclosure(L, embed_io_open, 1);
  lua_setfield(L, -3, "open");
  lua_pop(L, 1);
  lua_pushliteral(L, "io.popen");
  lua_pushcclosure(L, embed_no_process, 1);
  lua_setfield(L, -2, "popen");
  lua_setfield(L, -2, "io");
  /* os there: the script's subset, remove/rename checked, execute refused */
  lua_pushcfunction(L, luaopen_os);
  lua_call(L, 0, 1);
  lua_createtable(L, 0, 8);
  for (const char *const *k = os_keep; *k; k++) {
    lua_getfield(L, -2, *k);
    lua_setfield(L, -2, *k);
  }
  lua_getfield(L, -2, "remove");
  lua_pushcclosure(L, embed_os_remove, 1);
  lua_setfield(L, -2, "remove");
  lua_getfield(L, -2, "rename");
  lua_pushcclosure(L, embed_os_rename, 1);
  lua_setfield(L, -2, "rename");
  lua_pushliteral(L, "os.execute");
  lua_pushcclosure(L, embed_no_process, 1);
  lua_setfield(L, -2, "execute");
  lua_remove(L, -2);
  lua_setfield(L, -2, "os");
  lua_createtable(L, 0, 2);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &embed_stdenv_key);
  embed_subset(L, "debug", luaopen_debug, debug_keep);
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  lua_getglobal(L, "load");
  lua_pushcclosure(L, embed_load_text, 1);
  lua_setglobal(L, "load");
  lua_getglobal(L, "require");
  lua_pushcclosure(L, embed_require_checked, 1);
  lua_setglobal(L, "require");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, embed_setmetatable_checked, 1);
  lua_setglobal(L, "setmetatable");
  lua_getglobal(L, "package");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadlib");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  if (o->allowed_dir) lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", o->allowed_dir, o->allowed_dir);
  else lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "searchers");   /* drop the C searchers (3 and 4) */
  lua_pushnil(L);
  lua_rawseti(L, -2, 4);
  lua_pushnil(L);
  lua_rawseti(L, -2, 3);
  lua_pop(L, 2);
}

static void embed_open_full(lua_State *L, const mg_runtime_options *o) {
  luaL_openlibs(L);
  if (o->module_path) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s;%s", o->module_path, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
  }
  if (!o->allow_exit) {
    lua_getglobal(L, "os");
    lua_pushcfunction(L, embed_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
  }
}

/* Inserts the stdlib searcher after preload, registers the engine and
 * "moongrad.embedded" as preloads. */
static void embed_open_stdlib(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_moongrad_core);
  lua_setfield(L, -2, "moongrad.core");
  lua_pushcfunction(L, embed_open_embedded);
  lua_setfield(L, -2, "moongrad.embedded");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = n; i >= 2; i--) {      /* shift 2..n up by one */
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embed_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

static int embed_open_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  const mg_runtime_options *o = j->opt;
  if (o->sandbox) embed_open_sandbox(L, o);
  else embed_open_full(L, o);
  if (o->print) {
    lua_pushcfunction(L, embed_print);
    lua_setglobal(L, "print");
  }
  lua_getglobal(L, "xpcall");
  lua_pushcclosure(L, embed_xpcall, 1);
  lua_setglobal(L, "xpcall");
  lua_createtable(L, 16, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &embed_anchor_key);
  embed_open_stdlib(L);
  if (o->seed) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongrad.core");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "seed");
    lua_pushinteger(L, (lua_Integer)o->seed);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
  }
  if (!o->no_stdlib) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongrad");
    lua_call(L, 1, 1);
    lua_setglobal(L, "mg");
  }
  return 0;
}

/* ---- runtimes ------------------------------------------------------------------------------ */

/* The sandbox's allowed directory, resolved once (the policy compares
 * resolved paths with it); it must exist. */
static mg_status embed_allow(mg_runtime *rt, const char *dir) {
  char buf[PATH_MAX];
  struct stat sb;
  if (!realpath(dir, buf)) return mg_seterror(MG_EARG, "mg_runtime_new: allowed_dir '%s': %s", dir, strerror(errno));
  if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return mg_seterror(MG_EARG, "mg_runtime_new: allowed_dir '%s' is not a directory", dir);
  rt->allowed_size = strlen(buf) + 1;
  rt->allowed = embed_malloc(rt->alloc, rt->alloc_ud, rt->allowed_size);
  if (!rt->allowed) return mg_seterror(MG_ENOMEM, "mg_runtime_new: out of memory");
  memcpy(rt->allowed, buf, rt->allowed_size);
  return MG_OK;
}

mg_runtime *mg_runtime_new(const mg_runtime_options *options) {
  static const mg_runtime_options defaults;
  const mg_runtime_options *o = options ? options : &defaults;
  mg_init();
  mg_runtime *rt = embed_malloc(o->alloc, o->alloc_ud, sizeof *rt);
  if (!rt) {
    mg_seterror(MG_ENOMEM, "mg_runtime_new: out of memory");
    return NULL;
  }
  memset(rt, 0, sizeof *rt);
  rt->alloc = o->alloc;
  rt->alloc_ud = o->alloc_ud;
  rt->memory_limit = o->memory_limit;
  rt->tensor_limit = o->tensor_memory_limit;
  rt->instruction_limit = o->instruction_limit;
  rt->time_limit = o->time_limit;
  rt->print = o->print;
  rt->print_ud = o->print_ud;
  rt->sandbox = o->sandbox != 0;
  if (rt->sandbox && o->allowed_dir && embed_allow(rt, o->allowed_dir)) {
    embed_mfree(o->alloc, o->alloc_ud, rt, sizeof *rt);
    return NULL;
  }
  rt->L = lua_newstate(embed_alloc, rt);
  if (!rt->L) {
    embed_mfree(o->alloc, o->alloc_ud, rt->allowed, rt->allowed_size);
    mg_status st = rt->limit_hit ? MG_ELIMIT : MG_ENOMEM;
    embed_mfree(o->alloc, o->alloc_ud, rt, sizeof *rt);
    mg_seterror(st, "mg_runtime_new: not enough memory for a Lua state");
    return NULL;
  }
  lua_gc(rt->L, LUA_GCSTOP);                  /* no collections while setting up */
  embed_job j = {.opt = o};
  mg_status st = embed_run(rt, embed_open_body, &j);
  if (st) {
    mg_seterror(st, "mg_runtime_new: %s", rt->err);
    lua_close(rt->L);
    embed_mfree(o->alloc, o->alloc_ud, rt->allowed, rt->allowed_size);
    embed_mfree(o->alloc, o->alloc_ud, rt, sizeof *rt);
    return NULL;
  }
  lua_gc(rt->L, LUA_GCRESTART);
  lua_gc(rt->L, LUA_GCGEN, 0, 0);             /* as the moongrad program: young tensors die cheaply */
  mg_runtime_set_budget(rt, rt->instruction_limit, rt->time_limit);
  return rt;
}

void mg_runtime_free(mg_runtime *rt) {
  if (!rt) return;
  lua_close(rt->L);
  embed_mfree(rt->alloc, rt->alloc_ud, rt->allowed, rt->allowed_size);
  embed_mfree(rt->alloc, rt->alloc_ud, rt, sizeof *rt);
}

const char *mg_runtime_errmsg(const mg_runtime *rt) { return rt->err; }

size_t mg_runtime_memory(const mg_runtime *rt, size_t *peak) {
  if (peak) *peak = rt->peak;
  return rt->heap;
}

struct lua_State *mg_runtime_lua(mg_runtime *rt) { return rt->L; }

/* ---- running code ------------------------------------------------------------------------- */

static int embed_eval_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  int top = lua_gettop(L);
  /* no name: the code itself, as load(s) does, so debug.getinfo (AutoGraph) can re-read it */
  if (luaL_loadbufferx(L, j->code, strlen(j->code), j->name ? j->name : j->code, "t") != LUA_OK)
    return lua_error(L);
  lua_call(L, 0, LUA_MULTRET);
  embed_results(L, j, top + 1, lua_gettop(L) - top);
  return 0;
}

static int embed_file_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  int st = luaL_loadfilex(L, j->code, "t");
  if (st == LUA_ERRFILE) j->hint = MG_EIO;
  if (st != LUA_OK) return lua_error(L);
  lua_call(L, 0, 0);
  return 0;
}

mg_status mg_run_string(mg_runtime *rt, const char *code, const char *chunkname) {
  embed_job j = {.code = code, .name = chunkname};
  if (!code) return embed_fail(rt, MG_EARG, "mg_run_string: code is NULL");
  return embed_run(rt, embed_eval_body, &j);
}

mg_status mg_eval(mg_runtime *rt, const char *code, mg_value *results, int nresults) {
  embed_job j = {.code = code, .results = results, .nresults = results ? nresults : 0};
  if (!code) return embed_fail(rt, MG_EARG, "mg_eval: code is NULL");
  return embed_run(rt, embed_eval_body, &j);
}

mg_status mg_run_file(mg_runtime *rt, const char *path) {
  embed_job j = {.code = path};
  if (!path) return embed_fail(rt, MG_EARG, "mg_run_file: path is NULL");
  return embed_run(rt, embed_file_body, &j);
}

/* ---- calling functions ------------------------------------------------------------------- */

/* Pushes the job's arguments and calls the function below them (with nself
 * objects first), then takes the results. */
static void embed_callpushed(lua_State *L, embed_job *j, int top, int nself) {
  luaL_checkstack(L, j->nargs + 2, "too many arguments");
  for (int i = 0; i < j->nargs; i++) embed_pushvalue(L, &j->args[i], i + 1);
  lua_call(L, nself + j->nargs, LUA_MULTRET);
  embed_results(L, j, top + 1, lua_gettop(L) - top);
}

static int embed_invoke_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  int top = lua_gettop(L), nself;
  embed_resolve(L, j->name, &nself, "mg_invoke");
  embed_checkcallable(L, top + 1, j->name, "mg_invoke");
  embed_callpushed(L, j, top, nself);
  return 0;
}

static int embed_invoke_ref_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  int top = lua_gettop(L), nself = 0;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, j->ref) == LUA_TTABLE) {  /* {function, self} */
    lua_rawgeti(L, top + 1, 1);
    lua_rawgeti(L, top + 1, 2);
    lua_remove(L, top + 1);
    nself = 1;
  }
  if (lua_isnil(L, top + 1)) return luaL_error(L, "mg_invoke_ref: %d is not a live reference", (int)j->ref);
  embed_callpushed(L, j, top, nself);
  return 0;
}

static int embed_lookup_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  int top = lua_gettop(L), nself;
  embed_resolve(L, j->name, &nself, "mg_lookup");
  embed_checkcallable(L, top + 1, j->name, "mg_lookup");
  if (nself) {
    lua_createtable(L, 2, 0);
    lua_insert(L, top + 1);
    lua_rawseti(L, top + 1, 2);
    lua_rawseti(L, top + 1, 1);
  }
  j->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

mg_status mg_invoke(mg_runtime *rt, const char *name, const mg_value *args, int nargs, mg_value *results,
                    int nresults) {
  embed_job j = {.name = name, .args = args, .nargs = args ? nargs : 0, .results = results,
                 .nresults = results ? nresults : 0};
  if (!name) return embed_fail(rt, MG_EARG, "mg_invoke: name is NULL");
  return embed_run(rt, embed_invoke_body, &j);
}

mg_status mg_lookup(mg_runtime *rt, const char *name, mg_ref *out) {
  embed_job j = {.name = name};
  *out = 0;
  if (!name) return embed_fail(rt, MG_EARG, "mg_lookup: name is NULL");
  mg_status st = embed_run(rt, embed_lookup_body, &j);
  if (!st) *out = j.ref;
  return st;
}

mg_status mg_invoke_ref(mg_runtime *rt, mg_ref fn, const mg_value *args, int nargs, mg_value *results,
                        int nresults) {
  embed_job j = {.ref = fn, .args = args, .nargs = args ? nargs : 0, .results = results,
                 .nresults = results ? nresults : 0};
  if (fn <= 0) return embed_fail(rt, MG_EARG, "mg_invoke_ref: not a reference from mg_lookup");
  return embed_run(rt, embed_invoke_ref_body, &j);
}

void mg_unref(mg_runtime *rt, mg_ref ref) {
  if (rt && ref > 0) luaL_unref(rt->L, LUA_REGISTRYINDEX, ref);  /* frees nothing: the slot joins a free list */
}

/* ---- globals ------------------------------------------------------------------------------------ */

/* Splits "a.b.c" into the container path and the last name; pushes the
 * container (the global table for a plain name). */
static const char *embed_container(lua_State *L, const char *name, const char *what) {
  const char *dot = strrchr(name, '.');
  if (strchr(name, ':')) luaL_error(L, "%s: '%s': ':' is not allowed here", what, name);
  if (!dot) {
    lua_pushglobaltable(L);
    return name;
  }
  char path[EMBED_NAMEMAX];
  size_t n = (size_t)(dot - name);
  if (n >= sizeof path) luaL_error(L, "%s: name too long", what);
  memcpy(path, name, n);
  path[n] = '\0';
  int nself;
  embed_resolve(L, path, &nself, what);
  if (!lua_istable(L, -1)) luaL_error(L, "%s: '%s' is %s, not a table", what, path, luaL_typename(L, -1));
  return dot + 1;
}

static int embed_set_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  const char *key = embed_container(L, j->name, "mg_set_global");
  embed_pushvalue(L, j->args, 1);
  lua_setfield(L, -2, key);
  return 0;
}

static int embed_get_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  int top = lua_gettop(L), nself;
  if (strchr(j->name, ':')) luaL_error(L, "mg_get_global: '%s': ':' is not allowed here", j->name);
  embed_resolve(L, j->name, &nself, "mg_get_global");
  embed_results(L, j, top + 1, 1);
  return 0;
}

mg_status mg_set_global(mg_runtime *rt, const char *name, const mg_value *value) {
  embed_job j = {.name = name, .args = value};
  if (!name || !value) return embed_fail(rt, MG_EARG, "mg_set_global: name or value is NULL");
  return embed_run(rt, embed_set_body, &j);
}

mg_status mg_get_global(mg_runtime *rt, const char *name, mg_value *out) {
  embed_job j = {.name = name, .results = out, .nresults = 1};
  if (!name || !out) return embed_fail(rt, MG_EARG, "mg_get_global: name or out is NULL");
  return embed_run(rt, embed_get_body, &j);
}

/* ---- host callbacks -------------------------------------------------------------------------- */

typedef struct embed_cb {
  mg_callback fn;
  void *ud;
} embed_cb;

typedef struct embed_cbresults {
  mg_value *v;
  int n, pushed;
} embed_cbresults;

/* Pushes a callback's results (protected: a memory error leaves the
 * references not yet pushed to the caller to release). */
static int embed_cb_push(lua_State *L) {
  embed_cbresults *r = lua_touserdata(L, 1);
  lua_pop(L, 1);
  luaL_checkstack(L, r->n, "callback results");
  for (; r->pushed < r->n; r->pushed++) {
    mg_value *v = &r->v[r->pushed];
    if (v->type == MG_VTENSOR && v->u.t) {
      embed_pushtensor(L, v->u.t);   /* takes its own reference; ours is dropped below */
      mg_tensor_release(v->u.t);
      v->type = MG_VNIL;
    } else if (v->type == MG_VTENSOR || v->type == MG_VOTHER) {
      lua_pushnil(L);
    } else {
      embed_pushvalue(L, v, r->pushed + 1);
    }
  }
  return r->n;
}

static int embed_callback(lua_State *L) {
  mg_runtime *rt = embed_rt(L);
  embed_cb *cb = lua_touserdata(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L), nres = 0;
  mg_value args[MG_CALLBACK_MAX_ARGS], res[MG_CALLBACK_MAX_RESULTS];
  if (nargs > MG_CALLBACK_MAX_ARGS)
    return luaL_error(L, "%s: at most %d arguments", lua_tostring(L, lua_upvalueindex(2)), MG_CALLBACK_MAX_ARGS);
  for (int i = 0; i < nargs; i++) {
    int ty = lua_type(L, i + 1);
    mgL_box *b;
    if (ty == LUA_TNIL || ty == LUA_TBOOLEAN || ty == LUA_TNUMBER) {
      embed_tovalue(L, i + 1, &args[i], 0);
    } else if (ty == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, i + 1, &len);
      args[i] = mg_vlstring(s, len);   /* borrowed: the string is on the stack */
    } else if (ty == LUA_TUSERDATA && (b = embed_testbox(L, i + 1)) && b->t) {
      args[i] = mg_vtensor(b->t);       /* borrowed: the box is on the stack */
    } else {
      args[i].type = MG_VOTHER;
      args[i].u.str.s = luaL_typename(L, i + 1);
      args[i].u.str.len = strlen(args[i].u.str.s);
    }
  }
  for (int i = 0; i < MG_CALLBACK_MAX_RESULTS; i++) res[i] = mg_vnil();
  lua_State *outer = rt->cur;
  rt->cur = L;
  mg_path_policy_fn pfn;
  void *pud;
  mg_set_path_policy(NULL, NULL, &pfn, &pud);   /* the host's own code: not sandboxed */
  mg_status st = cb->fn(rt, cb->ud, args, nargs, res, &nres);
  mg_set_path_policy(pfn, pud, NULL, NULL);
  rt->cur = outer;
  if (nres < 0) nres = 0;
  if (nres > MG_CALLBACK_MAX_RESULTS) nres = MG_CALLBACK_MAX_RESULTS;
  if (st != MG_OK) {
    for (int i = 0; i < nres; i++) mg_value_clear(&res[i]);
    return luaL_error(L, "%s: %s", lua_tostring(L, lua_upvalueindex(2)), mg_last_error());
  }
  embed_cbresults r = {res, nres, 0};
  int top = lua_gettop(L);
  lua_pushcfunction(L, embed_cb_push);
  lua_pushlightuserdata(L, &r);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    for (int i = r.pushed; i < nres; i++) mg_value_clear(&res[i]);
    return lua_error(L);
  }
  return lua_gettop(L) - top;
}

/* Creates the tables on the way to name's container and sets the field. */
static int embed_register_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  const char *p = j->name, *dot;
  if (!*p || strchr(p, ':')) return luaL_error(L, "mg_register: bad name '%s'", p);
  lua_pushglobaltable(L);
  while ((dot = strchr(p, '.'))) {
    lua_pushlstring(L, p, (size_t)(dot - p));
    if (lua_gettable(L, -2) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushlstring(L, p, (size_t)(dot - p));
      lua_pushvalue(L, -2);
      lua_settable(L, -4);
    } else if (!lua_istable(L, -1)) {
      return luaL_error(L, "mg_register: '%s': a part of the path is %s, not a table", j->name, luaL_typename(L, -1));
    }
    lua_remove(L, -2);
    p = dot + 1;
  }
  embed_cb *cb = lua_newuserdatauv(L, sizeof *cb, 0);
  cb->fn = j->fn;
  cb->ud = j->ud;
  lua_pushstring(L, j->name);
  lua_pushcclosure(L, embed_callback, 2);
  lua_setfield(L, -2, p);
  return 0;
}

mg_status mg_register(mg_runtime *rt, const char *name, mg_callback fn, void *ud) {
  embed_job j = {.name = name, .fn = fn, .ud = ud};
  if (!name || !fn) return embed_fail(rt, MG_EARG, "mg_register: name or fn is NULL");
  return embed_run(rt, embed_register_body, &j);
}

/* ---- staged functions called from the host with no Lua on the way ---------------------- */

/* A full userdata (metatable "mg.Staged") anchored in the registry: user
 * value 1 is the mg.func object, 2 its concrete function. The host's pointer
 * is the userdata's memory, which Lua never moves. */
struct mg_staged {
  mg_graph *g;               /* the concrete function's graph (held) */
  mgL_state *S;              /* the engine state of the runtime's moongrad.core */
  int self_ref;              /* registry reference keeping the userdata alive */
  int guarded;               /* its trace read Lua values: checked every call */
  char name[64];
};

#define EMBED_STAGED "mg.Staged"

typedef struct staged_job {
  embed_job j;
  const char *name;
  mg_tensor *const *ins;
  int nin;
  mg_tensor *const *outs;
  int nout;
  mg_staged *s;
} staged_job;

static int staged_gc(lua_State *L) {
  mg_staged *s = luaL_checkudata(L, 1, EMBED_STAGED);
  mg_graph_release(s->g);
  s->g = NULL;
  return 0;
}

/* Pushes the inputs as tensor boxes (lookups and retraces only: they allocate). */
static void staged_pushinputs(lua_State *L, staged_job *sj, const char *what) {
  luaL_checkstack(L, sj->nin + 4, "too many inputs");
  for (int i = 0; i < sj->nin; i++) {
    if (!sj->ins[i]) luaL_error(L, "%s: input %d is NULL", what, i + 1);
    embed_pushtensor(L, sj->ins[i]);
  }
}

/* With f (the mg.func object) and the inputs on the stack: f:concrete(inputs)
 * becomes s's concrete function (user value 2) and graph. */
static void staged_concrete(lua_State *L, mg_staged *s, int sidx, staged_job *sj, const char *what) {
  int f = lua_gettop(L);
  if (lua_getfield(L, f, "concrete") != LUA_TFUNCTION || (lua_getfield(L, f, "guards_hold"), !lua_isfunction(L, -1)))
    luaL_error(L, "%s: '%s' is not a staged function (mg.func)", what, s->name);
  lua_pop(L, 1);
  lua_pushvalue(L, f);
  staged_pushinputs(L, sj, what);
  lua_call(L, 1 + sj->nin, 1);
  int cf = lua_gettop(L);
  lua_getfield(L, cf, "simple");
  if (!lua_toboolean(L, -1))
    luaL_error(L, "%s: '%s' must take only tensors (not Variables) and return one tensor or a flat list of "
                  "tensors to be called from the host", what, s->name);
  lua_getfield(L, cf, "graph_obj");
  mg_graph *g = mgL_testgraph(L, -1);
  if (!g) luaL_error(L, "%s: '%s' has no graph", what, s->name);
  lua_getfield(L, cf, "guards");
  s->guarded = lua_istable(L, -1) && lua_rawlen(L, -1) > 0;
  mg_graph_retain(g);
  mg_graph_release(s->g);
  s->g = g;
  lua_pushvalue(L, cf);
  lua_setiuservalue(L, sidx, 2);
  lua_settop(L, f);
}

static int staged_lookup_body(lua_State *L) {
  staged_job *sj = lua_touserdata(L, 1);
  int top = lua_gettop(L), nself;
  lua_getfield(L, LUA_REGISTRYINDEX, "mg.state");  /* set by moongrad.core when it loads */
  mgL_state *S = lua_touserdata(L, -1);
  if (!S) luaL_error(L, "mg_lookup_staged: the moongrad library is not loaded");
  mg_staged *s = lua_newuserdatauv(L, sizeof *s, 2);
  memset(s, 0, sizeof *s);
  s->S = S;
  snprintf(s->name, sizeof s->name, "%s", sj->name);
  if (luaL_newmetatable(L, EMBED_STAGED)) {
    lua_pushcfunction(L, staged_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int sidx = lua_gettop(L);
  embed_resolve(L, sj->name, &nself, "mg_lookup_staged");
  if (nself) luaL_error(L, "mg_lookup_staged: '%s': name a staged function, not a method call", sj->name);
  if (!lua_istable(L, -1)) luaL_error(L, "mg_lookup_staged: '%s' is not a staged function (mg.func)", sj->name);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, sidx, 1);
  staged_concrete(L, s, sidx, sj, "mg_lookup_staged");
  lua_pushvalue(L, sidx);
  s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  sj->s = s;
  lua_settop(L, top);
  return 0;
}

/* A guarded concrete function: when a value its trace read changed, the
 * function is traced again for these inputs (TF's rule: never run stale). */
static void staged_guards(lua_State *L, staged_job *sj) {
  mg_staged *s = sj->s;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
  int sidx = lua_gettop(L);
  lua_getiuservalue(L, sidx, 1);
  lua_getfield(L, -1, "guards_hold");
  lua_pushvalue(L, -2);
  lua_getiuservalue(L, sidx, 2);
  lua_call(L, 2, 1);
  int hold = lua_toboolean(L, -1);
  lua_pop(L, 1);  /* f stays on top */
  if (!hold) staged_concrete(L, s, sidx, sj, "mg_call_into");
  lua_settop(L, sidx - 1);
}

static int staged_call_body(lua_State *L) {
  staged_job *sj = lua_touserdata(L, 1);
  mg_staged *s = sj->s;
  for (int i = 0; i < sj->nin; i++)
    if (!sj->ins[i]) luaL_error(L, "mg_call_into: '%s': input %d is NULL", s->name, i + 1);
  if (s->guarded) staged_guards(L, sj);
  lua_State *saved = s->S->current_L;
  s->S->current_L = L;  /* mg.lua_function nodes call back on this thread */
  mg_status st = mg_graph_run_into(s->S->ctx, s->g, sj->nin, sj->ins, sj->nout, sj->outs);
  s->S->current_L = saved;
  if (st) {
    sj->j.hint = st;
    luaL_error(L, "mg_call_into: %s", mg_last_error());
  }
  return 0;
}

mg_status mg_lookup_staged(mg_runtime *rt, const char *name, mg_tensor *const *example, int nexample,
                           mg_staged **out) {
  staged_job sj = {.name = name, .ins = example, .nin = example ? nexample : 0};
  if (!out) return embed_fail(rt, MG_EARG, "mg_lookup_staged: out is NULL");
  *out = NULL;
  if (!name) return embed_fail(rt, MG_EARG, "mg_lookup_staged: name is NULL");
  if (nexample < 0) return embed_fail(rt, MG_EARG, "mg_lookup_staged: negative input count");
  mg_status st = embed_run(rt, staged_lookup_body, &sj.j);
  if (!st) *out = sj.s;
  return st;
}

mg_status mg_call_into(mg_runtime *rt, mg_staged *fn, mg_tensor *const *inputs, int nin, mg_tensor *const *outputs,
                       int nout) {
  staged_job sj = {.s = fn, .ins = inputs, .nin = nin, .outs = outputs, .nout = nout};
  if (!fn || !fn->g) return embed_fail(rt, MG_EARG, "mg_call_into: not a live handle from mg_lookup_staged");
  if ((nin > 0 && !inputs) || (nout > 0 && !outputs) || nin < 0 || nout < 0)
    return embed_fail(rt, MG_EARG, "mg_call_into: NULL or negative inputs/outputs");
  return embed_run(rt, staged_call_body, &sj.j);
}

mg_status mg_staged_output(const mg_staged *fn, int k, mg_dtype *dtype, int *ndim, int64_t *shape) {
  if (!fn || !fn->g) return mg_seterror(MG_EARG, "mg_staged_output: not a live handle");
  if (k < 0 || k >= mg_graph_noutputs(fn->g))
    return mg_seterror(MG_EINDEX, "mg_staged_output: '%s' has %d outputs, asked for output %d", fn->name,
                       mg_graph_noutputs(fn->g), k + 1);
  mg_graph_output_meta(fn->g, k, dtype, ndim, shape);
  return MG_OK;
}

int mg_staged_noutputs(const mg_staged *fn) { return fn && fn->g ? mg_graph_noutputs(fn->g) : 0; }

void mg_staged_free(mg_runtime *rt, mg_staged *fn) {
  if (!rt || !fn || !fn->self_ref) return;
  mg_graph_release(fn->g);  /* the userdata itself goes with the next collection */
  fn->g = NULL;
  luaL_unref(rt->L, LUA_REGISTRYINDEX, fn->self_ref);
  fn->self_ref = 0;
}
