/*
 * dim.c — an unknown size read while tracing.
 *
 * A -1 size of an input signature (or of reduce_retracing) is traced as a
 * "probe" size (core/graph.h): ops taking a shape accept it and the executor
 * maps it back to the call's real size. Lua arithmetic on it, though, would
 * compute with the probe number and bake a wrong constant into the graph.
 * So t.shape and #t give such a size as a small userdata, not a number (and
 * t:numel() an unknown count, which stands for no size): it
 * carries the probe (every shape or integer attribute accepts it), compares
 * equal to the same unknown size, prints as "?", and raises an error naming
 * the traced function on arithmetic, ordering and concatenation. TF gives
 * None for such sizes; this object is None that still works as a shape.
 */
#include "dim.h"
#include <stdio.h>
#include <string.h>

typedef struct mgL_dim {
  int64_t probe;   /* 0: an element count, usable as no size */
  char what[80];   /* "shape[2] of a traced tensor", ... */
  char fn[120];    /* the outermost function being traced */
} mgL_dim;

static void push_dim(lua_State *L, mgL_state *S, int64_t probe, const char *what) {
  mgL_dim *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->probe = probe;
  snprintf(u->what, sizeof u->what, "%s", what);
  const char *fn = mg_trace_name(S->ctx);
  snprintf(u->fn, sizeof u->fn, "%s", fn ? fn : "a staged function");
  luaL_setmetatable(L, MGL_DIM);
}

void mgL_pushsize(lua_State *L, mgL_state *S, const mg_tensor *t, int axis, const char *what) {
  int64_t d = mg_tensor_shape(t)[axis];
  if (!mg_tensor_is_symbolic(t) || !mg_size_is_unknown(d)) {
    lua_pushinteger(L, (lua_Integer)d);
    return;
  }
  char w[80];
  if (strcmp(what, "#") == 0) snprintf(w, sizeof w, "#t (size 1 of a traced tensor)");
  else snprintf(w, sizeof w, "%s[%d] of a traced tensor", what, axis + 1);
  push_dim(L, S, d, w);
}

void mgL_pushnumel(lua_State *L, mgL_state *S, const mg_tensor *t) {
  int unknown = 0;
  if (mg_tensor_is_symbolic(t))
    for (int i = 0; i < mg_tensor_ndim(t); i++) unknown |= mg_size_is_unknown(mg_tensor_shape(t)[i]);
  if (unknown) push_dim(L, S, 0, "t:numel() of a traced tensor with an unknown size");
  else lua_pushinteger(L, (lua_Integer)mg_tensor_numel(t));
}

int mgL_isdim(lua_State *L, int idx) { return luaL_testudata(L, idx, MGL_DIM) != NULL; }

int mgL_tosize(lua_State *L, int idx, int64_t *out) {
  int ok;
  lua_Integer i = lua_tointegerx(L, idx, &ok);
  if (ok) {
    *out = (int64_t)i;
    return 1;
  }
  mgL_dim *u = luaL_testudata(L, idx, MGL_DIM);
  if (!u || !u->probe) return 0;
  *out = u->probe;
  return 1;
}

const char *mgL_dim_message(lua_State *L, int idx, const char *use) {
  mgL_dim *u = luaL_checkudata(L, idx, MGL_DIM);
  return lua_pushfstring(L,
                         "%s is unknown while tracing '%s' (a -1 size of its input signature); %s would "
                         "bake a placeholder into the graph: use ops (mg.shape(x), mg.mean, reshape's -1, "
                         "mg.sum(mg.ones_like(x)))",
                         u->what, u->fn, use);
}

/* Every refused metamethod: upvalue 1 says what it is. */
static int dim_refuse(lua_State *L) {
  int idx = mgL_isdim(L, 1) ? 1 : 2;
  luaL_where(L, 1);
  mgL_dim_message(L, idx, lua_tostring(L, lua_upvalueindex(1)));
  lua_concat(L, 2);
  return lua_error(L);
}

static int dim_eq(lua_State *L) {
  mgL_dim *a = luaL_testudata(L, 1, MGL_DIM), *b = luaL_testudata(L, 2, MGL_DIM);
  lua_pushboolean(L, a && b && (a == b || (a->probe && a->probe == b->probe)));
  return 1;
}

static int dim_tostring(lua_State *L) {
  lua_pushliteral(L, "?");
  return 1;
}

static int is_unknown_size(lua_State *L) {
  lua_pushboolean(L, mgL_isdim(L, 1));
  return 1;
}

void mgL_open_dim(lua_State *L, int module_idx) {
  static const char *const refused[][2] = {
      {"__add", "Lua arithmetic '+' on it"},   {"__sub", "Lua arithmetic '-' on it"},
      {"__mul", "Lua arithmetic '*' on it"},   {"__div", "Lua arithmetic '/' on it"},
      {"__mod", "Lua arithmetic '%' on it"},   {"__pow", "Lua arithmetic '^' on it"},
      {"__unm", "Lua arithmetic '-' on it"},   {"__idiv", "Lua arithmetic '//' on it"},
      {"__band", "Lua '&' on it"},             {"__bor", "Lua '|' on it"},
      {"__bxor", "Lua '~' on it"},             {"__shl", "Lua '<<' on it"},
      {"__shr", "Lua '>>' on it"},             {"__bnot", "Lua '~' on it"},
      {"__concat", "Lua concatenation '..' of it"},
      {"__lt", "a Lua comparison '<' of it"},  {"__le", "a Lua comparison '<=' of it"}};
  luaL_newmetatable(L, MGL_DIM);
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    lua_pushstring(L, refused[i][1]);
    lua_pushcclosure(L, dim_refuse, 1);
    lua_setfield(L, -2, refused[i][0]);
  }
  lua_pushcfunction(L, dim_eq);
  lua_setfield(L, -2, "__eq");
  lua_pushcfunction(L, dim_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "unknown size");
  lua_setfield(L, -2, "__metatable");  /* getmetatable(d) says what it is; setmetatable refused */
  lua_pop(L, 1);
  lua_pushcfunction(L, is_unknown_size);
  lua_setfield(L, module_idx, "is_unknown_size");
}
