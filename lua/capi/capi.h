/*
 * capi.h — shared pieces of the Lua 5.4 module `moongrad.core`.
 *
 * A tensor is a full userdata holding one reference to an mg_tensor (a box;
 * NULL once released by __gc/__close/free). Each lua_State gets one mgL_state
 * (an engine context plus GC bookkeeping), kept as upvalue 1 of every C
 * function of the module so the hot path needs no registry lookup.
 */
#ifndef MG_CAPI_H
#define MG_CAPI_H

#include "mg.h"
#include <lauxlib.h>
#include <lua.h>

#define MGL_TENSOR "mg.Tensor"
#define MGL_GC_MAJOR_MIN ((size_t)4 << 20)

typedef struct mgL_box {
  mg_tensor *t;
} mgL_box;

typedef struct mgL_state {
  mg_ctx *ctx;
  size_t gc_pending;   /* tensor bytes not yet reported to the collector */
  size_t ext_since_major;  /* tensor bytes made since the last full collection */
  size_t major_threshold;  /* ... that trigger the next one */
  unsigned fresh_tensors;  /* tensors made since the last count-paced GC step (tensor.c) */
  unsigned tensor_batch;   /* ... that trigger the next one */
  size_t tensors_freed;    /* boxes released by __gc, ever */
  size_t freed_mark;       /* tensors_freed at the last count-paced step */
  lua_State *main_L;   /* the state's main thread */
  lua_State *current_L; /* the thread running tape gradient() or a graph, for Lua callbacks */
  struct mgL_where *where;  /* interned "file:line" strings handed to the engine (graph.c) */
  char *own_prefix[2];      /* chunk names of moongrad's own Lua files start so (core.set_own_sources) */
  size_t own_len[2];
} mgL_state;

/* Whether a frame's chunk (lua_Debug source) is one of moongrad's own Lua
 * files (the stdlib, autograph), whose lines are never the user's. */
int mgL_is_own_source(const mgL_state *S, const char *source);
/* Pushes "file:line: " of the innermost frame of L outside moongrad's own
 * Lua files (level 1 when there is none), for errors raised at the user's line. */
void mgL_push_user_where(lua_State *L);
/* luaL_error at the user's line (mgL_push_user_where): every error the
 * module raises goes through here or mgL_raise. */
int mgL_error(lua_State *L, const char *fmt, ...);

/* Frees the interned source positions (the state's __gc). */
void mgL_where_free(mgL_state *S);
/* Gives the state its interning table and sets the engine's where hook. */
void mgL_open_where(mgL_state *S);

/* Tensors a staged call keeps for its gradient (the backward graph's first
 * inputs), owned by C so they are let go when the tape drops the call's
 * record, not when Lua's collector gets to them (graph.c, autodiff.c). */
#define MGL_KEPT "mg.Kept"
typedef struct mgL_kept {
  int n;
  mg_tensor **t;
} mgL_kept;
/* Releases the tensors (the box stays, empty). */
void mgL_kept_clear(mgL_kept *k);

int luaopen_moongrad_core(lua_State *L);

/* The state of the calling C function (its upvalue 1). */
#define mgL_getstate(L) ((mgL_state *)lua_touserdata(L, lua_upvalueindex(1)))

/* Pushes a new box owning `t` (steals the reference), reporting new storage
 * bytes to the GC when `fresh`. The metatable must exist (luaopen does it). */
void mgL_pushtensor(lua_State *L, mgL_state *S, mg_tensor *t, int fresh);
/* The tensor at idx, or NULL when idx is not a live tensor box. Borrowed. */
mg_tensor *mgL_testtensor(lua_State *L, int idx);
/* The graph of the mg.Graph userdata at idx (a concrete function's
 * graph_obj), or NULL (not one, or released). Borrowed. */
struct mg_graph *mgL_testgraph(lua_State *L, int idx);
/* The tensor at idx or raises a "bad argument" error. Borrowed. */
mg_tensor *mgL_checktensor(lua_State *L, int idx);
/* A new reference for the value at idx: a tensor, a Lua number (a weak
 * scalar) or a nested table (a strong tensor). NULL with *err set (message
 * in mg_last_error) when it is none of these. */
mg_tensor *mgL_totensor(lua_State *L, int idx, const char *opname, int argn);
/* Like mgL_totensor for op inputs: a tensor comes back borrowed (*owned = 0),
 * a converted value as a new reference (*owned = 1). */
mg_tensor *mgL_toinput(lua_State *L, int idx, const char *opname, int argn, unsigned char *owned);
/* Raises the engine's last error as a Lua error (never returns). */
int mgL_raise(lua_State *L);
/* Runs op on inputs with attrs and pushes the result, or raises. Releases
 * `owned` (may be NULL) inputs either way. */
int mgL_apply_push(lua_State *L, mgL_state *S, mg_op op, mg_tensor **in, int nin,
                   const mg_attrs *attrs, const unsigned char *owned);

/* Lua callbacks from engine code (callback.c). The thread to call on: the
 * one running a tape gradient or a graph, else the main thread. */
lua_State *mgL_callback_thread(mgL_state *S);
/* Calls the function pushed above `top` with its nargs arguments under
 * lua_pcall and restores the stack to `top`. On a Lua error it records the
 * message as the engine's error and releases and clears out[0..nout). */
mg_status mgL_callback_pcall(lua_State *L, int top, int nargs, mg_tensor **out, int nout);

/* Hides the metatable at idx from scripts: getmetatable() on its objects
 * gives its name ("mg.Tensor") instead, so no script can read or replace
 * its __gc, __index or any other field (the engine relies on them; the
 * sandbox, doc/embedding.md). C code still reaches it (lua_getmetatable). */
void mgL_protect_metatable(lua_State *L, int idx);

/* Registration helpers for the module's parts (each file owns one). */
void mgL_open_tensor(lua_State *L, int state_idx);   /* metatable + methods */
void mgL_open_ops(lua_State *L, int state_idx, int module_idx);
void mgL_open_autodiff(lua_State *L, int state_idx, int module_idx);
void mgL_open_graph(lua_State *L, int state_idx, int module_idx);
void mgL_open_data(lua_State *L, int state_idx);  /* package.loaded["moongrad.prefetch"] */
void mgL_open_io(lua_State *L, int state_idx, int module_idx);      /* io.c: files, safetensors */
mg_status mgL_table_to_tensor(lua_State *L, int idx, int has_dtype, mg_dtype dt, mg_tensor **out);
void mgL_push_totable(lua_State *L, const mg_tensor *t);
void mgL_push_element(lua_State *L, const mg_tensor *t, int64_t flat);

#endif
