/*
 * data.c — the Lua side of core/prefetch.c, for stdlib/moongrad/data.
 *
 * Registered as its own module table, package.loaded["moongrad.prefetch"],
 * rather than in moongrad.core: it is an accelerator that the LuaJIT FFI
 * binding does not have (there mg.data runs the same pipeline in Lua, with
 * the same elements), so the two moongrad.core surfaces stay identical.
 *   P.new(sources, stages, capacity) -> a prefetcher (stages bottom-up:
 *     {kind="shuffle"|"take"|"skip"|"repeat"|"batch", n=, seed=, epoch=, flag=})
 *   pf:next() -> one tensor per source, or nothing at the end
 *   pf:epochs() -> the shuffle stages' iteration counters (a list)
 *   pf:close() (also __gc and __close) stops and joins the worker.
 */
#include "capi.h"

#define MGL_PREFETCH "mg.Prefetch"

typedef struct pf_box {
  mg_prefetch *p;
  int nsrc;
} pf_box;

static pf_box *check_box(lua_State *L) {
  pf_box *b = luaL_checkudata(L, 1, MGL_PREFETCH);
  if (!b->p) mgL_error(L, "prefetch: the iterator was closed");
  return b;
}

static int64_t field_int(lua_State *L, int idx, const char *name, int64_t dflt) {
  int ok;
  lua_getfield(L, idx, name);
  int64_t v = lua_isnil(L, -1) ? dflt : (int64_t)lua_tointegerx(L, -1, &ok);
  if (!lua_isnil(L, -1) && !ok) mgL_error(L, "prefetch: stage field '%s' must be an integer", name);
  lua_pop(L, 1);
  return v;
}

static int parse_stage(lua_State *L, int idx, mg_pf_stage *s) {
  static const char *const kinds[] = {"shuffle", "take", "skip", "repeat", "batch", NULL};
  lua_getfield(L, idx, "kind");
  s->kind = luaL_checkoption(L, -1, NULL, kinds);
  lua_pop(L, 1);
  s->n = field_int(L, idx, "n", -1);
  s->seed = field_int(L, idx, "seed", 0);
  s->epoch = field_int(L, idx, "epoch", 0);
  lua_getfield(L, idx, "flag");
  s->flag = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return 0;
}

static int data_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  int capacity = (int)luaL_checkinteger(L, 3);
  int nsrc = (int)lua_rawlen(L, 1), nst = (int)lua_rawlen(L, 2);
  if (nsrc > MG_PF_MAX_SOURCES) return mgL_error(L, "prefetch: at most %d sources", MG_PF_MAX_SOURCES);
  if (nst > 64) return mgL_error(L, "prefetch: at most 64 stages");
  mg_tensor *src[MG_PF_MAX_SOURCES];
  mg_pf_stage st[64];
  for (int i = 0; i < nsrc; i++) {
    lua_rawgeti(L, 1, i + 1);
    src[i] = mgL_testtensor(L, lua_gettop(L));  /* borrowed: the table keeps it alive */
    if (!src[i]) return mgL_error(L, "prefetch: source %d is not a live tensor", i + 1);
    lua_pop(L, 1);
  }
  for (int i = 0; i < nst; i++) {
    lua_rawgeti(L, 2, i + 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    parse_stage(L, lua_gettop(L), &st[i]);
    lua_pop(L, 1);
  }
  pf_box *b = lua_newuserdatauv(L, sizeof *b, 0);  /* first, so no error leaks the handle */
  b->p = NULL;
  b->nsrc = nsrc;
  luaL_setmetatable(L, MGL_PREFETCH);
  if (mg_prefetch_new(nsrc, src, nst, st, capacity, &b->p)) return mgL_raise(L);
  return 1;
}

static int data_next(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  pf_box *b = check_box(L);
  mg_tensor *outs[MG_PF_MAX_SOURCES];
  int got;
  if (mg_prefetch_next(b->p, outs, &got)) return mgL_raise(L);
  if (!got) return 0;
  luaL_checkstack(L, b->nsrc, "prefetch: too many sources");
  for (int k = 0; k < b->nsrc; k++) mgL_pushtensor(L, S, outs[k], 1);
  return b->nsrc;
}

static int data_epochs(lua_State *L) {
  pf_box *b = check_box(L);
  int64_t e[MG_PF_MAX_SHUFFLES];
  int n = mg_prefetch_epochs(b->p, e);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)e[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int data_close(lua_State *L) {
  pf_box *b = luaL_checkudata(L, 1, MGL_PREFETCH);
  mg_prefetch_free(b->p);
  b->p = NULL;
  return 0;
}

static const luaL_Reg prefetch_methods[] = {
    {"next", data_next}, {"epochs", data_epochs}, {"close", data_close}, {NULL, NULL}};

/* Upvalues of every function: the state and the tensor metatable (as in module.c). */
static void push_upvalues(lua_State *L, int state_idx) {
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
}

void mgL_open_data(lua_State *L, int state_idx) {
  luaL_newmetatable(L, MGL_PREFETCH);
  mgL_protect_metatable(L, -1);
  push_upvalues(L, state_idx);
  lua_pushcclosure(L, data_close, 2);
  lua_setfield(L, -2, "__gc");
  push_upvalues(L, state_idx);
  lua_pushcclosure(L, data_close, 2);
  lua_setfield(L, -2, "__close");
  lua_newtable(L);
  push_upvalues(L, state_idx);
  luaL_setfuncs(L, prefetch_methods, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);  /* the module */
  push_upvalues(L, state_idx);
  lua_pushcclosure(L, data_new, 2);
  lua_setfield(L, -2, "new");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_insert(L, -2);
  lua_setfield(L, -2, "moongrad.prefetch");
  lua_pop(L, 1);
}
