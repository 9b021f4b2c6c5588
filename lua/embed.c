/*
 * embed.c — the host embedding API (lua/include/moongrad.h).
 *
 * A runtime owns one Lua state whose allocator is ours: it counts the Lua
 * heap (the memory limit) and forwards to the host's allocator, and its user
 * data pointer is the runtime itself, so every C function of this file finds
 * its runtime with lua_getallocf and no registry lookup. Every entry point
 * runs its work as a light C function under lua_pcall with a message handler
 * that adds the traceback (lua.c's docall pattern); nothing can longjmp into
 * the host. Around each call the runtime's limits are made current on the
 * thread (embed_budget.c: the budget, interrupts, the tensor memory account,
 * which the engine checks too); the libraries and the sandbox are opened by
 * embed_sandbox.c.
 *
 * A sandboxed runtime installs the engine's per-thread file-access policy
 * (mg_set_path_policy) around each host call, so every engine file function
 * (mg.save/load, mg.io.*, and what is built on them) must stay inside
 * allowed_dir; host callbacks run without it or the limits (they are the
 * host's code).
 *
 * The per-frame path (mg_invoke_ref with number or tensor arguments) pushes
 * light C functions and light userdata only: the only Lua allocations are the
 * boxes of tensor arguments and whatever the script itself allocates.
 */
#include "embed.h"
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

#define EMBED_NAMEMAX 256

static const char embed_anchor_key = 'a';   /* registry: string results of the last call */

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

#define embed_rt mgE_rt

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
    if (!mgE_budget_stopped(rt) && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
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
  if (rt->sandbox) mg_set_path_policy(mgE_path_policy, rt, &pfn, &pud);
  mg_limits *outer = mgE_budget_enter(rt);
  lua_pushcfunction(L, embed_msgh);
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, j);
  int st = lua_pcall(L, 1, 0, base + 1);
  mg_status rs = MG_OK;
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (st == LUA_ERRMEM || (st == LUA_ERRERR && rt->limit_hit)) rs = rt->limit_hit ? MG_ELIMIT : MG_ENOMEM;
    else if (mgE_budget_stopped(rt) || mg_limits_refused(rt->limits)) rs = MG_ELIMIT;
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
  mgE_budget_leave(rt, outer);
  return rs;
}

/* ---- opening a runtime ---------------------------------------------------------------------- */

static int embed_open_body(lua_State *L) {
  embed_job *j = lua_touserdata(L, 1);
  const mg_runtime_options *o = j->opt;
  mgE_open_libs(L, o);
  lua_createtable(L, 16, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &embed_anchor_key);
  if (o->seed) {
    mgE_require_builtin(L, "moongrad.core");
    lua_getfield(L, -1, "seed");
    lua_pushinteger(L, (lua_Integer)o->seed);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
  }
  if (!o->no_stdlib) {
    mgE_require_builtin(L, "moongrad");
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
  rt->limits = mg_limits_new();
  rt->L = rt->limits ? lua_newstate(embed_alloc, rt) : NULL;
  if (!rt->L) {
    mg_limits_release(rt->limits);
    embed_mfree(o->alloc, o->alloc_ud, rt->allowed, rt->allowed_size);
    mg_status st = rt->limit_hit ? MG_ELIMIT : MG_ENOMEM;
    embed_mfree(o->alloc, o->alloc_ud, rt, sizeof *rt);
    mg_seterror(st, "mg_runtime_new: not enough memory for a Lua state");
    return NULL;
  }
  lua_gc(rt->L, LUA_GCSTOP);                  /* no collections while setting up */
  mgE_budget_open(rt);
  rt->instruction_limit = 0;                  /* setting up is not the scripts' budget */
  rt->time_limit = 0;
  embed_job j = {.opt = o};
  mg_status st = embed_run(rt, embed_open_body, &j);
  if (st) {
    mg_seterror(st, "mg_runtime_new: %s", rt->err);
    lua_close(rt->L);
    mg_limits_release(rt->limits);
    embed_mfree(o->alloc, o->alloc_ud, rt->allowed, rt->allowed_size);
    embed_mfree(o->alloc, o->alloc_ud, rt, sizeof *rt);
    return NULL;
  }
  lua_gc(rt->L, LUA_GCRESTART);
  lua_gc(rt->L, LUA_GCGEN, 0, 0);             /* as the moongrad program: young tensors die cheaply */
  mg_runtime_set_budget(rt, o->instruction_limit, o->time_limit);
  return rt;
}

void mg_runtime_free(mg_runtime *rt) {
  if (!rt) return;
  mgE_budget_close(rt);   /* lua_close, its finalizers under the budget */
  mg_limits_release(rt->limits);
  embed_mfree(rt->alloc, rt->alloc_ud, rt->allowed, rt->allowed_size);
  embed_mfree(rt->alloc, rt->alloc_ud, rt, sizeof *rt);
}

const char *mg_runtime_errmsg(const mg_runtime *rt) { return rt->err; }

size_t mg_runtime_memory(const mg_runtime *rt, size_t *peak) {
  if (peak) *peak = rt->peak;
  return rt->heap;
}

size_t mg_runtime_tensor_memory(const mg_runtime *rt, size_t *peak) { return mg_limits_memory(rt->limits, peak); }

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
  mg_set_path_policy(NULL, NULL, &pfn, &pud);   /* the host's own code: not sandboxed, not budgeted */
  mg_limits *limits = mg_limits_enter(NULL);
  mg_status st = cb->fn(rt, cb->ud, args, nargs, res, &nres);
  mg_limits_enter(limits);
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
    mgL_protect_metatable(L, -1);
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
