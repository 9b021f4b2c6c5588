/*
 * autodiff.c — the tape and Variable surface of moongrad.core.
 *
 * The tape is a userdata ("mg.Tape") owning an mg_tape; its C methods work on
 * flat lists, and stdlib/moongrad/autodiff.lua builds the user-facing
 * GradientTape (nested source structures, jacobians, record scopes) on top.
 * Custom gradients call back into Lua from the backward pass: the trampoline
 * runs the Lua function through mgL_callback_pcall (callback.c), so a Lua
 * error becomes an engine error instead of a longjmp through core frames.
 */
#include "capi.h"
#include <stdlib.h>

#define MGL_TAPE "mg.Tape"

typedef struct tape_box {
  mg_tape *tape;
} tape_box;

static mg_tape *check_tape(lua_State *L, int idx) {
  tape_box *b = luaL_checkudata(L, idx, MGL_TAPE);
  if (!b->tape) mgL_error(L, "GradientTape: the tape was released");
  return b->tape;
}

static int tape_new(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  int persistent = lua_toboolean(L, 1);
  int watch = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  tape_box *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->tape = NULL;
  luaL_setmetatable(L, MGL_TAPE);
  lua_pushvalue(L, lua_upvalueindex(1));  /* keep the context alive as long as the tape */
  lua_setiuservalue(L, -2, 1);
  b->tape = mg_tape_new(S->ctx, persistent, watch);
  if (!b->tape) return mgL_raise(L);
  return 1;
}

static int tape_gc(lua_State *L) {
  tape_box *b = luaL_checkudata(L, 1, MGL_TAPE);
  mg_tape_free(b->tape);
  b->tape = NULL;
  return 0;
}

/* local tape <close> = mg.GradientTape(): leaving the scope stops recording. */
static int tape_close(lua_State *L) {
  tape_box *b = luaL_checkudata(L, 1, MGL_TAPE);
  if (b->tape) mg_tape_stop(b->tape);
  return 0;
}

static int tape_start(lua_State *L) {
  if (mg_tape_start(check_tape(L, 1))) return mgL_raise(L);
  return 0;
}

static int tape_stop(lua_State *L) {
  mg_tape_stop(check_tape(L, 1));
  return 0;
}

static int tape_recording(lua_State *L) {
  lua_pushboolean(L, mg_tape_recording(check_tape(L, 1)));
  return 1;
}

static int tape_watch(lua_State *L) {
  mg_tape *t = check_tape(L, 1);
  mg_tensor *x = mgL_testtensor(L, 2);
  if (!x) return mgL_error(L, "watch: expected a tensor or Variable, got %s", luaL_typename(L, 2));
  if (mg_tape_watch(t, x)) return mgL_raise(L);
  return 0;
}

/* Reads a flat Lua list of tensors into a new array (NULL entries for holes
 * when allow_nil). */
static mg_tensor **read_list(lua_State *L, int idx, int *n, int allow_nil, const char *what) {
  *n = (int)luaL_len(L, idx);
  mg_tensor **v = lua_newuserdatauv(L, (size_t)(*n > 0 ? *n : 1) * sizeof *v, 0);  /* GC-owned */
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = mgL_testtensor(L, -1);
    if (!v[i] && !(allow_nil && lua_isnil(L, -1)))
      mgL_error(L, "gradient: %s %d must be a tensor or Variable, got %s", what, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return v;
}

/* tape:_gradient(targets, output_grads|nil, sources, unconnected_zero [, keep]) -> list of grads
 * (nil holes). keep: leave a non-persistent tape's records (jacobian's inner calls). */
static int tape_gradient(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tape *t = check_tape(L, 1);
  int nt, ng = 0, ns;
  int zero = lua_toboolean(L, 5), keep = lua_toboolean(L, 6);  /* before read_list pushes */
  lua_settop(L, 4);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  mg_tensor **targets = read_list(L, 2, &nt, 0, "target");
  mg_tensor **ograds = lua_isnoneornil(L, 3) ? NULL : read_list(L, 3, &ng, 1, "output gradient");
  mg_tensor **sources = read_list(L, 4, &ns, 0, "source");
  if (ograds && ng != nt)
    return mgL_error(L, "gradient: %d output_gradients for %d targets", ng, nt);
  mg_tensor **grads = lua_newuserdatauv(L, (size_t)(ns > 0 ? ns : 1) * sizeof *grads, 0);
  lua_State *saved = S->current_L;
  S->current_L = L;  /* custom backward functions run on the calling thread */
  int was = keep ? mg_tape_set_persistent(t, 1) : -1;
  mg_status st = mg_tape_gradient(t, nt, targets, ograds, ns, sources, zero, grads);
  if (was >= 0) mg_tape_set_persistent(t, was);
  S->current_L = saved;
  if (st) return mgL_raise(L);
  lua_createtable(L, ns, 1);
  for (int i = 0; i < ns; i++) {
    if (!grads[i]) continue;
    mgL_pushtensor(L, S, grads[i], 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, ns);
  lua_setfield(L, -2, "n");
  return 1;
}

static const luaL_Reg tape_methods[] = {
    {"start", tape_start}, {"stop", tape_stop}, {"recording", tape_recording},
    {"watch", tape_watch}, {"_gradient", tape_gradient}, {NULL, NULL}};

/* ---- custom gradients ----------------------------------------------------------- */

typedef struct custom_ud {
  mgL_state *S;
  int ref;          /* the Lua backward function in the registry */
  mgL_kept *kept;   /* group records: tensors kept for the backward (released with the record) */
  int kept_ref;     /* ... and their box, held in the registry */
} custom_ud;

static custom_ud *custom_new(lua_State *L, mgL_state *S, int fn) {
  custom_ud *u = malloc(sizeof *u);
  if (!u) mgL_error(L, "gradient: out of memory");
  u->S = S;
  u->kept = NULL;
  u->kept_ref = LUA_NOREF;
  lua_pushvalue(L, fn);
  u->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return u;
}

static void custom_free(void *p) {
  custom_ud *u = p;
  if (u->kept) mgL_kept_clear(u->kept);  /* now, not when the collector finds the box */
  if (u->S->main_L) {
    luaL_unref(u->S->main_L, LUA_REGISTRYINDEX, u->ref);
    luaL_unref(u->S->main_L, LUA_REGISTRYINDEX, u->kept_ref);
  }
  free(u);
}

/* Calls the Lua backward(grad_output) -> grads (one per input, or a table). */
static int custom_call(lua_State *L) {
  custom_ud *u = lua_touserdata(L, 1);
  mg_tensor *gout = lua_touserdata(L, 2);
  int nin = (int)lua_tointeger(L, 3);
  mg_tensor **gin = lua_touserdata(L, 4);
  lua_rawgeti(L, LUA_REGISTRYINDEX, u->ref);
  mg_tensor_retain(gout);
  mgL_pushtensor(L, u->S, gout, 0);
  lua_call(L, 1, LUA_MULTRET);
  int nres = lua_gettop(L) - 4;
  int first = 5;
  if (nres == 1 && lua_type(L, first) == LUA_TTABLE && !mgL_testtensor(L, first)) {  /* a list of grads */
    lua_Integer n = luaL_len(L, first);
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, first, i);
    lua_remove(L, first);
    nres = (int)n;
  }
  for (int i = 0; i < nin && i < nres; i++) {
    if (lua_isnil(L, first + i)) continue;
    gin[i] = mgL_totensor(L, first + i, "custom_gradient", i + 1);
    if (!gin[i]) return mgL_error(L, "custom_gradient: the backward function's result %d: %s", i + 1, mg_last_error());
  }
  return 0;
}

static mg_status custom_backward(void *p, mg_tensor *gout, int nin, mg_tensor **gin) {
  custom_ud *u = p;
  lua_State *L = mgL_callback_thread(u->S);
  int top = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)custom_call);  /* the closure made at open */
  lua_pushlightuserdata(L, u);
  lua_pushlightuserdata(L, gout);
  lua_pushinteger(L, nin);
  lua_pushlightuserdata(L, gin);
  return mgL_callback_pcall(L, top, 4, gin, nin);
}

/* core.record_custom({inputs}, output, backward) */
static int record_custom(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  int nin;
  luaL_checktype(L, 1, LUA_TTABLE);
  mg_tensor **in = read_list(L, 1, &nin, 0, "input");
  mg_tensor *out = mgL_checktensor(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  custom_ud *u = custom_new(L, S, 3);
  if (mg_tape_record_custom(S->ctx, nin, in, out, custom_backward, u, custom_free)) return mgL_raise(L);
  return 0;
}

/* ---- group records (staged cond/while nodes) ------------------------------------------ */

/* Calls the Lua backward({grad_outputs, n=}, {need...}) -> {grads} (holes = none). */
static int group_call(lua_State *L) {
  custom_ud *u = lua_touserdata(L, 1);
  int nout = (int)lua_tointeger(L, 2);
  mg_tensor *const *gouts = lua_touserdata(L, 3);
  int nin = (int)lua_tointeger(L, 4);
  const unsigned char *need = lua_touserdata(L, 5);
  mg_tensor **gin = lua_touserdata(L, 6);
  lua_rawgeti(L, LUA_REGISTRYINDEX, u->ref);
  lua_createtable(L, nout, 1);
  for (int k = 0; k < nout; k++) {
    if (!gouts[k]) continue;
    mg_tensor_retain(gouts[k]);
    mgL_pushtensor(L, u->S, gouts[k], 0);
    lua_rawseti(L, -2, k + 1);
  }
  lua_pushinteger(L, nout);
  lua_setfield(L, -2, "n");
  lua_createtable(L, nin, 0);
  for (int i = 0; i < nin; i++) {
    lua_pushboolean(L, need[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_call(L, 2, 1);
  if (!lua_istable(L, -1)) return mgL_error(L, "gradient: a cond/while backward returned %s, not a list", luaL_typename(L, -1));
  for (int i = 0; i < nin; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (!lua_isnil(L, -1) && need[i]) {
      gin[i] = mgL_totensor(L, -1, "gradient", i + 1);
      if (!gin[i]) return mgL_error(L, "gradient: a cond/while backward's result %d: %s", i + 1, mg_last_error());
    }
    lua_pop(L, 1);
  }
  return 0;
}

static mg_status group_backward(void *p, int nout, mg_tensor *const *gouts, int nin, const unsigned char *need,
                                mg_tensor **gin) {
  custom_ud *u = p;
  lua_State *L = mgL_callback_thread(u->S);
  int top = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)group_call);  /* the closure made at open */
  lua_pushlightuserdata(L, u);
  lua_pushinteger(L, nout);
  lua_pushlightuserdata(L, (void *)gouts);
  lua_pushinteger(L, nin);
  lua_pushlightuserdata(L, (void *)need);
  lua_pushlightuserdata(L, gin);
  return mgL_callback_pcall(L, top, 6, gin, nin);
}

/* core.record_group({inputs}, {outputs}, backward [, kept]): kept (an mg.Kept
 * box from core.graph_call_keep) is emptied when the tape drops the record. */
static int record_group(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  int nin, nout;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  mgL_kept *kept = lua_isnoneornil(L, 4) ? NULL : luaL_checkudata(L, 4, MGL_KEPT);  /* before read_list pushes */
  lua_settop(L, 4);
  mg_tensor **in = read_list(L, 1, &nin, 0, "input");
  mg_tensor **outs = read_list(L, 2, &nout, 0, "output");
  custom_ud *u = custom_new(L, S, 3);
  if (kept) {
    u->kept = kept;
    lua_pushvalue(L, 4);
    u->kept_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (mg_tape_record_group(S->ctx, nin, in, nout, outs, group_backward, u, custom_free)) return mgL_raise(L);
  return 0;
}

/* ---- variables and tape control ---------------------------------------------------- */

static int variable_new(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *init = mgL_totensor(L, 1, "Variable", 1), *v;
  if (!init) return mgL_raise(L);
  mg_status st = mg_variable_new(S->ctx, init, lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2), &v);
  mg_tensor_release(init);
  if (st) return mgL_raise(L);
  mgL_pushtensor(L, S, v, 1);
  return 1;
}

static int variable_assign(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *v = mgL_checktensor(L, 1);
  if (!mg_tensor_is_variable(v)) return mgL_error(L, "assign: the target is not a Variable");
  mg_tensor *x = mgL_totensor(L, 2, "assign", 2);
  if (!x) return mgL_raise(L);
  mg_status st = mg_variable_assign(S->ctx, v, x);
  mg_tensor_release(x);
  if (st) return mgL_raise(L);
  lua_settop(L, 1);
  return 1;
}

static int variable_read(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *v = mgL_checktensor(L, 1), *r;
  if (mg_variable_read(v, &r)) return mgL_raise(L);
  mgL_pushtensor(L, S, r, 0);
  return 1;
}

static int is_variable(lua_State *L) {
  mg_tensor *t = mgL_testtensor(L, 1);
  lua_pushboolean(L, t && mg_tensor_is_variable(t));
  return 1;
}

/* core.variable_writes() -> the count of Variable writes so far (mg.h). */
static int variable_writes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mg_variable_writes());
  return 1;
}

/* core.variable_version(v) -> the count of writes when v was last written. */
static int variable_version(lua_State *L) {
  mg_tensor *t = mgL_checktensor(L, 1);
  if (!mg_tensor_is_variable(t)) return mgL_error(L, "variable_version: not a Variable");
  lua_pushinteger(L, (lua_Integer)mg_variable_version(t));
  return 1;
}

static int is_trainable(lua_State *L) {
  mg_tensor *t = mgL_checktensor(L, 1);
  lua_pushboolean(L, mg_tensor_is_variable(t) && mg_variable_trainable(t));
  return 1;
}

static int pause_tapes(lua_State *L) {
  mg_ctx_pause_tapes(mgL_getstate(L)->ctx, lua_toboolean(L, 1));
  return 0;
}

/* core.tapes_track({tensors}, ...) -> whether a tape recording at this trace
 * depth tracks one of the list's or the other arguments' tensors (a staged
 * function's call asks this about its Variables and arguments: no tables per
 * call). As a read would, it makes watching tapes hold trainable Variables. */
static int tapes_track(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *small[16];
  int nl = lua_istable(L, 1) ? (int)luaL_len(L, 1) : 0, na = lua_gettop(L) - 1;
  if (nl + na <= 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  mg_tensor **ts = nl + na <= 16 ? small : lua_newuserdatauv(L, (size_t)(nl + na) * sizeof *ts, 0);
  int n = 0;
  for (int i = 0; i < nl; i++) {
    lua_rawgeti(L, 1, i + 1);
    mg_tensor *t = mgL_testtensor(L, -1);
    if (t) ts[n++] = t;
    lua_pop(L, 1);
  }
  for (int i = 0; i < na; i++) {
    mg_tensor *t = mgL_testtensor(L, i + 2);
    if (t) ts[n++] = t;
  }
  lua_pushboolean(L, n > 0 && mg_tapes_track_any(S->ctx, n, ts));
  return 1;
}

/* core.tensor_key(t) -> a value equal for the Lua handles of one engine
 * tensor (handles are boxes: two may hold the same tensor), for table keys. */
static int tensor_key(lua_State *L) {
  lua_pushlightuserdata(L, mgL_checktensor(L, 1));
  return 1;
}

static const luaL_Reg autodiff_fns[] = {
    {"tape_new", tape_new},         {"record_custom", record_custom}, {"record_group", record_group}, {"variable", variable_new},
    {"assign", variable_assign},    {"variable_read", variable_read}, {"is_variable", is_variable}, {"variable_version", variable_version},
    {"variable_writes", variable_writes},
    {"is_trainable", is_trainable}, {"pause_tapes", pause_tapes},     {"tapes_track", tapes_track},
    {"tensor_key", tensor_key},     {NULL, NULL}};

void mgL_open_autodiff(lua_State *L, int state_idx, int module_idx) {
  luaL_newmetatable(L, MGL_TAPE);
  mgL_protect_metatable(L, -1);
  lua_pushcfunction(L, tape_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tape_close);
  lua_setfield(L, -2, "__close");
  lua_newtable(L);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  luaL_setfuncs(L, tape_methods, 2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_setfield(L, module_idx, "tape_methods");  /* autodiff.lua adds the rest */
  lua_pop(L, 1);
  lua_pushvalue(L, module_idx);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  luaL_setfuncs(L, autodiff_fns, 2);
  lua_pop(L, 1);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  lua_pushcclosure(L, custom_call, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)custom_call);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  lua_pushcclosure(L, group_call, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)group_call);
}
