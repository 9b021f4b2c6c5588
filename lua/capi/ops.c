/*
 * ops.c — every op of the table as a Lua function, registered in one loop.
 *
 * One generic C function serves all ops (upvalue 3 is the op id). It reads
 * the op's tensor inputs (tensors, Lua numbers as weak scalars, nested
 * tables), then its attributes from the op's schema: positionally in schema
 * order, and/or by name from one trailing table, so mg.sum(t, 1, true) and
 * t:sum{axis=1, keepdims=true} are the same call. Errors are raised only
 * after every temporary tensor is released.
 */
#include "capi.h"
#include "dim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARIADIC 4096

static const char *const kind_names[] = {"int", "float", "bool", "dtype", "axis",
                                         "axes", "shape", "ints", "enum"};

static int is_list_kind(mg_attr_kind k) { return k == MG_A_AXES || k == MG_A_SHAPE || k == MG_A_INTS; }

/* Reads an integer, accepting floats with no fraction and unknown sizes
 * (their probe, which the executor maps to the call's size). */
static int get_int(lua_State *L, int idx, int64_t *out) { return mgL_tosize(L, idx, out); }

static mg_status bad_attr(const mg_opinfo *info, const mg_attr_desc *d, const char *want, lua_State *L, int idx) {
  const char *got = luaL_typename(L, idx);
  if (mgL_isdim(L, idx)) {  /* an unknown element count (t:numel()): no size stands for it */
    char use[120];
    snprintf(use, sizeof use, "using it as option '%s' of '%s'", d->name, info->name);
    mg_status st = mg_seterror(MG_EARG, "%s: %s", info->name, mgL_dim_message(L, idx, use));
    lua_pop(L, 1);
    return st;
  }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    got = isnan(v) ? "nan" : isinf(v) ? "inf" : "a number with a fraction";
  }
  return mg_seterror(MG_EARG, "%s: option '%s' must be %s, got %s", info->name, d->name, want, got);
}

/* Converts the Lua value at idx to attribute slot k of `a`. nil leaves it unset. */
static mg_status read_attr(lua_State *L, int idx, const mg_opinfo *info, int k, mg_attrs *a) {
  const mg_attr_desc *d = &info->attrs[k];
  int t = lua_type(L, idx);
  if (t == LUA_TNIL) return MG_OK;
  a->set |= 1u << k;
  a->v[k].n = 1;
  switch (d->kind) {
  case MG_A_INT:
  case MG_A_AXIS:
    if (!get_int(L, idx, &a->v[k].i[0])) return bad_attr(info, d, "an integer", L, idx);
    return MG_OK;
  case MG_A_FLOAT:
    if (t != LUA_TNUMBER) return bad_attr(info, d, "a number", L, idx);
    a->v[k].f = lua_tonumber(L, idx);
    return MG_OK;
  case MG_A_BOOL:
    if (t != LUA_TBOOLEAN) return bad_attr(info, d, "a boolean", L, idx);
    a->v[k].i[0] = lua_toboolean(L, idx);
    return MG_OK;
  case MG_A_DTYPE: {
    mg_dtype dt;
    if (t != LUA_TSTRING) return bad_attr(info, d, "a dtype name (mg.float32, ...)", L, idx);
    if (!mg_dtype_from_name(lua_tostring(L, idx), &dt))
      return mg_seterror(MG_EDTYPE, "%s: unknown dtype '%s' (float32, float64, float16, bfloat16, int8, int16, int32, int64, uint8, bool)",
                         info->name, lua_tostring(L, idx));
    a->v[k].i[0] = dt;
    return MG_OK;
  }
  case MG_A_ENUM:
    if (t == LUA_TSTRING)
      for (int e = 0; e < d->nenums; e++)
        if (strcmp(lua_tostring(L, idx), d->enums[e]) == 0) {
          a->v[k].i[0] = e;
          return MG_OK;
        }
    return mg_seterror(MG_EARG, "%s: option '%s' must be one of %s%s%s%s%s, got %s", info->name, d->name,
                       d->enums[0], d->nenums > 1 ? ", " : "", d->nenums > 1 ? d->enums[1] : "",
                       d->nenums > 2 ? ", " : "", d->nenums > 2 ? d->enums[2] : "",
                       t == LUA_TSTRING ? lua_tostring(L, idx) : luaL_typename(L, idx));
  default:  /* lists: one integer (or unknown size) or a table of them */
    if (t == LUA_TNUMBER || mgL_isdim(L, idx)) {
      if (!get_int(L, idx, &a->v[k].i[0])) return bad_attr(info, d, "an integer or a list of integers", L, idx);
      return MG_OK;
    }
    if (t != LUA_TTABLE) return bad_attr(info, d, "a list of integers", L, idx);
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n > MG_MAX_LIST)
      return mg_seterror(MG_EARG, "%s: option '%s' has %llu entries, at most %d are supported", info->name,
                         d->name, (unsigned long long)n, MG_MAX_LIST);
    a->v[k].n = (int)n;
    for (lua_Unsigned i = 0; i < n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      int ok = get_int(L, -1, &a->v[k].i[i]);
      if (!ok) {
        mg_status st = bad_attr(info, d, "a list of integers", L, lua_gettop(L));
        lua_pop(L, 1);
        return st;
      }
      lua_pop(L, 1);
    }
    return MG_OK;
  }
}

/* A table of options (any string key), as opposed to a positional list. */
static int is_options_table(lua_State *L, int idx, const mg_attr_desc *next) {
  if (lua_type(L, idx) != LUA_TTABLE || mgL_testtensor(L, idx)) return 0;
  lua_pushnil(L);
  if (!lua_next(L, idx)) return !(next && is_list_kind(next->kind));  /* {} */
  int named = 0;
  do {
    if (lua_type(L, -2) == LUA_TSTRING) named = 1;
    lua_pop(L, 1);
  } while (!named && lua_next(L, idx));
  if (named) lua_pop(L, 1);
  return named;
}

static mg_status read_options(lua_State *L, int idx, const mg_opinfo *info, mg_attrs *a) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = -1;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (int j = 0; j < info->nattrs; j++)
        if (strcmp(info->attrs[j].name, lua_tostring(L, -2)) == 0) k = j;
    if (k < 0) {
      char known[200] = "";
      for (int j = 0; j < info->nattrs; j++) {
        if (j) strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, info->attrs[j].name, sizeof known - strlen(known) - 1);
      }
      mg_status st = mg_seterror(MG_EARG, "%s: unknown option '%s' (options: %s)", info->name,
                                 lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?",
                                 info->nattrs ? known : "none");
      lua_pop(L, 2);
      return st;
    }
    mg_status st = read_attr(L, lua_gettop(L), info, k, a);
    lua_pop(L, 1);
    if (st) {
      lua_pop(L, 1);
      return st;
    }
  }
  return MG_OK;
}

/* Reads attributes from Lua arguments first..top. */
static mg_status read_attrs(lua_State *L, int first, const mg_opinfo *info, mg_attrs *a) {
  int top = lua_gettop(L);
  a->set = 0;
  for (int p = first; p <= top; p++) {
    int k = p - first;
    const mg_attr_desc *next = k < info->nattrs ? &info->attrs[k] : NULL;
    if (is_options_table(L, p, next)) {
      if (p != top) return mg_seterror(MG_EARG, "%s: the options table must be the last argument", info->name);
      return read_options(L, p, info, a);
    }
    if (!next) {
      if (lua_isnil(L, p)) continue;
      return mg_seterror(MG_EARG, "%s: too many arguments (%d given after the %d tensor input%s; options: %d)",
                         info->name, top - first + 1, info->nin < 0 ? 1 : info->nin,
                         info->nin == 1 ? "" : "s", info->nattrs);
    }
    mg_status st = read_attr(L, p, info, k, a);
    if (st) return st;
  }
  return MG_OK;
}

static int op_call(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_op op = (mg_op)lua_tointeger(L, lua_upvalueindex(3));
  const mg_opinfo *info = mg_op_info(op);
  mg_tensor *small[4], **in = small;
  unsigned char small_owned[4], *owned = small_owned;
  int nin = info->nin, first_attr;
  mg_attrs a;

  if (info->flags & MG_VARIADIC) {
    if (lua_type(L, 1) != LUA_TTABLE || mgL_testtensor(L, 1))
      return mgL_error(L, "%s: argument #1 must be a table of tensors, got %s", info->name, luaL_typename(L, 1));
    lua_Unsigned n = lua_rawlen(L, 1);
    if (n > MAX_VARIADIC) return mgL_error(L, "%s: at most %d tensors", info->name, MAX_VARIADIC);
    nin = (int)n;
    first_attr = 2;
  } else {
    first_attr = nin + 1;
  }
  if (read_attrs(L, first_attr, info, &a)) return mgL_raise(L);
  if (nin > 4) {
    in = lua_newuserdatauv(L, (size_t)nin * (sizeof *in + 1), 0);  /* freed by the GC */
    owned = (unsigned char *)(in + nin);
  }
  for (int i = 0; i < nin; i++) {
    if (info->flags & MG_VARIADIC) lua_rawgeti(L, 1, i + 1);
    int idx = info->flags & MG_VARIADIC ? lua_gettop(L) : i + 1;
    in[i] = mgL_toinput(L, idx, info->name, i + 1, &owned[i]);
    if (info->flags & MG_VARIADIC) lua_pop(L, 1);  /* still held by the table */
    if (!in[i]) {
      for (int j = 0; j < i; j++)
        if (owned[j]) mg_tensor_release(in[j]);
      return mgL_raise(L);
    }
  }
  return mgL_apply_push(L, S, op, in, nin, &a, owned);
}

/* core.ops(): the op table as Lua data, for help(), docs and tests. */
static int ops_list(lua_State *L) {
  lua_createtable(L, MG_OP_COUNT, 0);
  for (int op = 0; op < MG_OP_COUNT; op++) {
    const mg_opinfo *info = mg_op_info((mg_op)op);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, info->name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, info->nin);
    lua_setfield(L, -2, "nin");
    lua_pushstring(L, info->doc);
    lua_setfield(L, -2, "doc");
    static const struct { unsigned flag; const char *name; } flags[] = {
        {MG_EW, "elementwise"}, {MG_BCAST, "broadcast"}, {MG_NOGRAD, "nograd"}, {MG_VIEW, "view"},
        {MG_CREATE, "create"},  {MG_RANDOM, "random"},   {MG_VARIADIC, "variadic"}};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
      lua_pushboolean(L, (info->flags & flags[f].flag) != 0);
      lua_setfield(L, -2, flags[f].name);
    }
    lua_createtable(L, info->nattrs, 0);
    for (int k = 0; k < info->nattrs; k++) {
      const mg_attr_desc *d = &info->attrs[k];
      lua_createtable(L, 0, 3);
      lua_pushstring(L, d->name);
      lua_setfield(L, -2, "name");
      lua_pushstring(L, kind_names[d->kind]);
      lua_setfield(L, -2, "kind");
      lua_pushboolean(L, d->has_default);
      lua_setfield(L, -2, "has_default");
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "attrs");
    lua_rawseti(L, -2, op + 1);
  }
  return 1;
}

/* Registers core.<name> for every op (upvalues: state, metatable, op id). */
void mgL_open_ops(lua_State *L, int state_idx, int module_idx) {
  int mt_idx;
  luaL_getmetatable(L, MGL_TENSOR);
  mt_idx = lua_gettop(L);
  for (int op = 0; op < MG_OP_COUNT; op++) {
    lua_pushvalue(L, state_idx);
    lua_pushvalue(L, mt_idx);
    lua_pushinteger(L, op);
    lua_pushcclosure(L, op_call, 3);
    lua_setfield(L, module_idx, mg_op_info((mg_op)op)->name);
  }
  lua_pushcfunction(L, ops_list);
  lua_setfield(L, module_idx, "ops");
  mgL_open_dim(L, module_idx);
  lua_pop(L, 1);
}
