/*
 * module.c — luaopen_moongrad_core: the module table, the per-state engine
 * context, and the module-level functions that are not ops (tensor
 * construction from Lua data or bytes, seeding, threads, configuration).
 */
#include "capi.h"
#include <string.h>
#include <time.h>

static int state_gc(lua_State *L) {
  mgL_state *S = lua_touserdata(L, 1);
  if (S->ctx) mg_ctx_free(S->ctx);
  S->ctx = NULL;
  mgL_where_free(S);  /* after the context: tapes freed with it held the strings */
  return 0;
}

static int parse_dtype(lua_State *L, int idx, mg_dtype *dt) {
  if (lua_isnoneornil(L, idx)) return 0;
  const char *name = luaL_checkstring(L, idx);
  if (!mg_dtype_from_name(name, dt))
    mgL_error(L, "unknown dtype '%s' (float32, float64, float16, bfloat16, int8, int16, int32, int64, uint8, bool)", name);
  return 1;
}

/* core.tensor(data [, dtype]): data is a nested table, a number, a boolean or a tensor (copied). */
static int core_tensor(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_dtype dt = MG_FLOAT32;
  int has_dt = parse_dtype(L, 2, &dt);
  mg_tensor *t = NULL, *src;
  mg_status st;
  switch (lua_type(L, 1)) {
  case LUA_TTABLE: st = mgL_table_to_tensor(L, 1, has_dt, dt, &t); break;
  case LUA_TNUMBER:
    if (!has_dt) dt = lua_isinteger(L, 1) ? MG_INT64 : MG_FLOAT32;
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    st = mgL_table_to_tensor(L, -1, 1, dt, &t);
    if (!st) {  /* make it 0-d: a view with no axes */
      mg_attrs a = {.set = 1u};
      a.v[0].n = 0;
      mg_tensor *r;
      st = mg_apply(S->ctx, MG_OP_RESHAPE, &t, 1, &a, &r);
      mg_tensor_release(t);
      t = st ? NULL : r;
    }
    break;
  case LUA_TBOOLEAN:
    if (!has_dt) dt = MG_BOOL;
    {
      int64_t v = lua_toboolean(L, 1);
      mg_tensor *s;
      st = mg_scalar_i64(v, 0, &s);
      if (!st) {
        mg_attrs a = {.set = 1u};
        a.v[0].n = 1;
        a.v[0].i[0] = dt;
        st = mg_apply(S->ctx, MG_OP_CAST, &s, 1, &a, &t);
        mg_tensor_release(s);
      }
    }
    break;
  default:
    src = mgL_testtensor(L, 1);
    if (!src) return mgL_error(L, "tensor: expected a nested table, a number or a tensor, got %s", luaL_typename(L, 1));
    {
      mg_attrs a = {.set = 1u};
      a.v[0].n = 1;
      a.v[0].i[0] = has_dt ? dt : mg_tensor_dtype(src);
      st = mg_apply(S->ctx, MG_OP_CAST, &src, 1, &a, &t);
    }
  }
  if (st) return mgL_raise(L);
  mgL_pushtensor(L, S, t, 1);
  return 1;
}

/* core.frombytes(s, dtype, shape): a tensor holding a copy of the bytes of s. */
static int core_frombytes(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  mg_dtype dt = MG_FLOAT32;
  parse_dtype(L, 2, &dt);
  int64_t shape[MG_MAX_DIMS], n = 1;
  int ndim = 0;
  if (lua_isnoneornil(L, 3)) {
    shape[0] = (int64_t)(len / mg_dtype_size(dt));
    ndim = 1;
  } else {
    luaL_checktype(L, 3, LUA_TTABLE);
    ndim = (int)lua_rawlen(L, 3);
    if (ndim > MG_MAX_DIMS) return mgL_error(L, "frombytes: at most %d dimensions", MG_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
      lua_rawgeti(L, 3, i + 1);
      int ok;
      shape[i] = (int64_t)lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok || shape[i] < 0) return mgL_error(L, "frombytes: shape entry %d must be a non-negative integer", i + 1);
    }
  }
  for (int i = 0; i < ndim; i++) n *= shape[i];
  if ((size_t)n * mg_dtype_size(dt) != len)
    return mgL_error(L, "frombytes: %zu bytes do not make %lld %s elements", len, (long long)n, mg_dtype_name(dt));
  mg_tensor *t;
  if (mg_tensor_from_data(dt, ndim, shape, s, &t)) return mgL_raise(L);
  mgL_pushtensor(L, S, t, 1);
  return 1;
}

static int core_seed(lua_State *L) {
  mg_ctx_seed(mgL_getstate(L)->ctx, (uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

/* core.rng_state() -> seed, counter; core.set_rng_state(seed, counter).
 * Both are 64-bit values carried as Lua integers (bit patterns kept). */
static int core_rng_state(lua_State *L) {
  uint64_t seed, counter;
  mg_ctx_rng_state(mgL_getstate(L)->ctx, &seed, &counter);
  lua_pushinteger(L, (lua_Integer)seed);
  lua_pushinteger(L, (lua_Integer)counter);
  return 2;
}

static int core_set_rng_state(lua_State *L) {
  mg_ctx_set_rng_state(mgL_getstate(L)->ctx, (uint64_t)luaL_checkinteger(L, 1), (uint64_t)luaL_checkinteger(L, 2));
  return 0;
}

static int core_set_num_threads(lua_State *L) {
  if (mg_set_num_threads((int64_t)luaL_checkinteger(L, 1))) return mgL_raise(L);
  return 0;
}

static int core_max_threads(lua_State *L) {
  lua_pushinteger(L, mg_max_threads());
  return 1;
}

static int core_get_num_threads(lua_State *L) {
  lua_pushinteger(L, mg_get_num_threads());
  return 1;
}

static int core_config_info(lua_State *L) {
  char buf[1024];
  mg_config_info(buf, sizeof buf);
  lua_pushstring(L, buf);
  return 1;
}

static int core_is_tensor(lua_State *L) {
  lua_pushboolean(L, mgL_testtensor(L, 1) != NULL);
  return 1;
}

/* core.clock(): monotonic wall time in seconds (os.clock is process CPU
 * time, which counts every kernel thread and so misleads benchmarks). */
static int core_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* core.warn(text): hands one warning or note of the library
 * (moongrad.warnings) to the function registry["mg.warn"] when a host
 * embedding set one (scripts cannot reach the registry) and returns true;
 * false when there is none (the library then writes io.stderr). */
static int core_warn(lua_State *L) {
  luaL_checkstring(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, "mg.warn") != LUA_TFUNCTION) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  lua_pushboolean(L, 1);
  return 1;
}

static int core_bytes_live(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mg_storage_bytes_live());
  return 1;
}

static const luaL_Reg module_fns[] = {
    {"tensor", core_tensor},
    {"frombytes", core_frombytes},
    {"seed", core_seed},
    {"rng_state", core_rng_state},
    {"set_rng_state", core_set_rng_state},
    {"set_num_threads", core_set_num_threads}, {"max_threads", core_max_threads},
    {"get_num_threads", core_get_num_threads},
    {"config_info", core_config_info},
    {"is_tensor", core_is_tensor},
    {"bytes_live", core_bytes_live}, {"warn", core_warn},
    {"clock", core_clock},
    {NULL, NULL}};

MG_API int luaopen_moongrad_core(lua_State *L) {
  mgL_state *S = lua_newuserdatauv(L, sizeof *S, 0);
  int state_idx = lua_gettop(L);
  S->ctx = NULL;
  S->gc_pending = 0;
  S->ext_since_major = 0;
  S->major_threshold = MGL_GC_MAJOR_MIN;
  S->fresh_tensors = 0;
  S->tensor_batch = 4096;  /* GC_TENSOR_BATCH (tensor.c) */
  S->tensors_freed = 0;
  S->freed_mark = 0;
  S->current_L = NULL;
  S->where = NULL;
  S->own_prefix[0] = S->own_prefix[1] = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->main_L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, state_idx);
  S->ctx = mg_ctx_new();
  if (!S->ctx) return mgL_error(L, "moongrad: out of memory creating the engine context");
  mg_ctx_set_index_base(S->ctx, 1);
  mgL_open_where(S);

  lua_newtable(L);  /* the module */
  int module_idx = lua_gettop(L);
  mgL_open_tensor(L, state_idx);  /* pushes the methods table */
  lua_setfield(L, module_idx, "methods");
  mgL_open_ops(L, state_idx, module_idx);
  mgL_open_autodiff(L, state_idx, module_idx);
  mgL_open_graph(L, state_idx, module_idx);
  mgL_open_data(L, state_idx);
  mgL_open_io(L, state_idx, module_idx);
  lua_pushvalue(L, module_idx);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  luaL_setfuncs(L, module_fns, 2);
  lua_pop(L, 1);
  lua_pushvalue(L, state_idx);
  lua_setfield(L, LUA_REGISTRYINDEX, "mg.state");  /* keeps the context alive with the state */
  lua_pushstring(L, MG_VERSION);
  lua_setfield(L, module_idx, "version");
  lua_pushvalue(L, module_idx);
  return 1;
}
